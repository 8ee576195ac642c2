r"""Layouts of convolutions: neural-tangents' ``dimension_numbers`` and the axis arguments.

A convolution's ``dimension_numbers`` is a triple of strings ``(lhs, rhs,
out)`` as in :func:`jax.lax.conv_general_dilated`: ``lhs`` names the input
axes (``N`` batch, ``C`` channels, one letter per spatial axis), ``rhs`` the
filter axes (``I`` input and ``O`` output channels, the same spatial
letters), ``out`` the output axes. The spatial axes are matched by letter,
and ``filter_shape`` and ``strides`` follow the order of the spatial letters
in ``rhs`` (as in ``lax`` and neural-tangents). Default: ``('NHWC', 'HWIO',
'NHWC')`` (for two spatial axes).

The finite layers (``init_fn``, ``apply_fn``) and ``kernel_fn`` take any
layout, like neural-tangents. The kernels of this package are held in one
internal layout, batch first and channels last with the spatial axes in the
order the finite activations hold them; ``Kernel.layout`` records where the
activations keep their batch and channel axes. A network's ``kernel_fn``
moves the inputs' batch axis first and channel axis last (as the first
layer that names them says, :func:`input_layout`), and each layer checks its
own axis arguments against the layout of the kernel it receives
(:func:`check_layout`): a mismatch (e.g. ``Dense(channel_axis=-1)`` after a
``Conv`` whose output is ``'NCHW'``) would make the limit ill-defined and is
refused, as in neural-tangents. A convolution whose output spec orders the
spatial letters differently from its input spec permutes the kernel's
spatial axes (:func:`spatial_permutation`), as neural-tangents does.
"""
from __future__ import annotations

import warnings
from typing import Optional, Sequence, Tuple

import numpy as np

from .. import validation

__all__ = ["conv_dimension_numbers", "filter_shape_param", "bias_shape_param", "kernel_geometry",
           "check_default_axes", "axis_arg", "width_scalings", "spatial_permutation", "conv_layouts",
           "layout_value", "kernel_layout", "check_layout", "input_layout"]

_SPATIAL_LETTERS = "HWDEFGJKLM"


def conv_dimension_numbers(where: str, dimension_numbers, nd: int) -> Tuple[str, str, str]:
    """The validated ``(lhs, rhs, out)`` strings for ``nd`` spatial axes (``None``: NHWC, HWIO, NHWC)."""
    if dimension_numbers is None:
        spatial = _SPATIAL_LETTERS[:nd]
        return ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")
    expected = (f"three strings (lhs, rhs, out) of {nd + 2} letters such as ('NHWC', 'HWIO', 'NHWC') or "
                "('NCHW', 'OIHW', 'NCHW'): lhs and out with N, C and one letter per spatial axis, rhs with I, O "
                "and the same spatial letters")
    if (not isinstance(dimension_numbers, (tuple, list)) or len(dimension_numbers) != 3
            or not all(isinstance(s, str) for s in dimension_numbers)):
        raise validation.fail(where, "dimension_numbers", expected, dimension_numbers)
    lhs, rhs, out = dimension_numbers
    spatial = set(lhs) - {"N", "C"}
    ok = (all(len(s) == nd + 2 and len(set(s)) == nd + 2 for s in (lhs, rhs, out))
          and {"N", "C"} <= set(lhs) and set(out) == set(lhs) and set(rhs) == spatial | {"I", "O"})
    if not ok:
        raise validation.fail(where, "dimension_numbers", expected, dimension_numbers)
    return (lhs, rhs, out)


def filter_shape_param(rhs_spec: str, filter_shape: Sequence[int], c_in: int, channels: int) -> Tuple[int, ...]:
    """The filter's shape in the order of ``rhs_spec`` (``I``: ``c_in``, ``O``: ``channels``,
    spatial letters: ``filter_shape`` in order).
    """
    sizes = iter(filter_shape)
    return tuple(channels if c == "O" else c_in if c == "I" else next(sizes) for c in rhs_spec)


def bias_shape_param(out_spec: str, channels: int) -> Tuple[int, ...]:
    """A bias shaped like the output, with ones except ``channels`` on its ``C`` axis (neural-tangents' shape)."""
    return tuple(channels if c == "C" else 1 for c in out_spec)


def kernel_geometry(where: str, dimension_numbers, filter_shape, strides) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """``filter_shape`` and ``strides`` (given in the order of the filter's
    spatial letters) in the order of the input's spatial axes, for the kernel.
    """
    lhs, rhs, _ = dimension_numbers
    filter_order = [c for c in rhs if c not in "IO"]
    perm = [filter_order.index(c) for c in lhs if c not in "NC"]
    return tuple(filter_shape[p] for p in perm), tuple(strides[p] for p in perm)


def spatial_permutation(dimension_numbers) -> Tuple[int, ...]:
    """For each spatial axis of the output spec, the position of its letter
    among the input spec's spatial letters (the identity when both order
    them alike).
    """
    lhs, _, out = dimension_numbers
    lhs_spatial = [c for c in lhs if c not in "NC"]
    return tuple(lhs_spatial.index(c) for c in out if c not in "NC")


def conv_layouts(dimension_numbers) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """``((batch_axis, channel_axis) of the input, the same of the output)`` of a convolution."""
    lhs, _, out = dimension_numbers
    return (lhs.index("N"), lhs.index("C")), (out.index("N"), out.index("C"))


def layout_value(batch_axis: int, channel_axis: Optional[int], ndim: int):
    """``Kernel.layout`` for activations with ``ndim`` axes: ``None`` for batch
    first and channels last, else the non-negative ``(batch_axis, channel_axis)``.
    """
    b = batch_axis % ndim
    c = None if channel_axis is None else channel_axis % ndim
    return None if (b, c) == (0, ndim - 1) else (b, c)


def kernel_layout(k) -> Tuple[int, Optional[int]]:
    """``(batch_axis, channel_axis)`` of the activations a kernel describes."""
    return (0, len(k.shape1) - 1) if k.layout is None else tuple(k.layout)


def check_layout(where: str, k, batch_axis: Optional[int], channel_axis: Optional[int]) -> None:
    """Refuse, in ``kernel_fn``, a ``batch_axis`` or ``channel_axis`` that is not
    where the activations reaching the layer keep their batch or channel axis
    (as neural-tangents refuses it: the infinite-width limit is then ill-defined).
    ``None`` skips an axis.
    """
    ndim = len(k.shape1)
    have = kernel_layout(k)
    for name, value, axis in (("batch_axis", batch_axis, have[0]), ("channel_axis", channel_axis, have[1])):
        if value is None or axis is None or value % ndim == axis:
            continue
        raise ValueError(
            f"{where}: kernel_fn needs `{name}` = {value} to be the {name.split('_')[0]} axis of the activations it "
            f"receives, but the layers before it (or the input) keep that axis at {axis} of {ndim} (layout "
            f"batch_axis={have[0]}, channel_axis={have[1]}); the infinite-width limit of this network is not "
            f"defined. Give the layer `{name}={axis}`."
        )


def check_default_axes(where: str, ndim: int, batch_axis: Optional[int], channel_axis: Optional[int]) -> None:
    """Refuse, in ``kernel_fn``, a ``batch_axis`` other than the first or a
    ``channel_axis`` other than the last axis of inputs with ``ndim`` axes.
    """
    for name, value, want in (("batch_axis", batch_axis, 0), ("channel_axis", channel_axis, ndim - 1)):
        if value is not None and value % ndim != want:
            raise ValueError(
                f"{where}: kernel_fn supports `{name}` = {want} ({'first' if want == 0 else 'last'} axis of "
                f"inputs with {ndim} axes), got {value}. Kernels are computed from inputs laid out as (batch, "
                "spatial..., channels): move the axes of the inputs (jnp.moveaxis) and use the defaults; init_fn "
                "and apply_fn accept any axes."
            )


def axis_arg(where: str, name: str, value) -> int:
    """An integer axis index (negative counts from the end), as an int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise validation.fail(where, name, "an integer axis index", value)
    return int(value)


def width_scalings(where: str, s, parameterization: str, stacklevel: int = 3) -> Tuple[int, int]:
    r"""neural-tangents' ``s`` argument of the affine layers, validated.

    ``s = (s_in, s_out)``: in the standard parameterisation (Sohl-Dickstein et
    al. 2020, "On the infinite width limit of neural networks with a standard
    parameterization") a layer's input has ``s_in`` times and its output
    ``s_out`` times the nominal width, so its weight matrix is
    ``(s_in n_in, s_out n_out)``; the layer's output is divided by
    :math:`\sqrt{s_{in}}` and the weights are drawn with variance
    :math:`\sigma_w^2 s_{in} / C_{in}`, so the forward pass (and the NNGP) is
    that of ``s = (1, 1)``, while the NTK's term from the weights is
    :math:`(C_{in} / s_{in}) \Sigma`: the width in units of the nominal one.
    With ``parameterization='ntk'`` neural-tangents ignores ``s``; so does
    this package, with a warning when ``s != (1, 1)`` (nothing it is given
    is dropped silently).

    ``stacklevel``: that of the warning, so that it names the caller's line.

    Returns:
      ``(s_in, s_out)`` as ints.
    """
    expected = "a pair (s_in, s_out) of positive integers"
    try:
        pair = tuple(s)
    except TypeError:
        raise validation.fail(where, "s", expected, s) from None
    if (len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in pair)):
        raise validation.fail(where, "s", expected, s)
    pair = (int(pair[0]), int(pair[1]))
    if parameterization == "ntk" and pair != (1, 1):
        warnings.warn(
            f"{where}: `s`={pair} has no effect with parameterization='ntk' (as in neural-tangents, it scales the "
            "widths of the standard parameterisation only); pass parameterization='standard' to use it.",
            UserWarning, stacklevel=stacklevel)
    return pair


def input_layout(specs):
    """The ``(batch_axis, channel_axis)`` that the first of ``specs`` (layer
    specs in the order data reaches them) to name one requires of its input,
    or ``None`` when none does (neural-tangents' rule for the input kernel).
    """
    for spec in specs:
        found = getattr(spec, "input_layout", None)
        if found is not None:
            return found
    return None
