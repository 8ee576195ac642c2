r"""Layouts of convolutions: neural-tangents' ``dimension_numbers`` and the axis arguments.

A convolution's ``dimension_numbers`` is a triple of strings ``(lhs, rhs,
out)`` as in :func:`jax.lax.conv_general_dilated`: ``lhs`` names the input
axes (``N`` batch, ``C`` channels, one letter per spatial axis), ``rhs`` the
filter axes (``I`` input and ``O`` output channels, the same spatial
letters), ``out`` the output axes. The spatial axes are matched by letter,
and ``filter_shape`` and ``strides`` follow the order of the spatial letters
in ``rhs`` (as in ``lax`` and neural-tangents). Default: ``('NHWC', 'HWIO',
'NHWC')`` (for two spatial axes).

The finite layers (``init_fn``, ``apply_fn``) take any layout, like
neural-tangents. The kernels of this package are held in one internal
layout, batch first and channels last with the spatial axes in input order,
and the input kernel is formed from inputs in that layout; a ``kernel_fn``
therefore accepts the layouts that keep the batch axis first and the
channels last (any filter layout ``rhs``, e.g. ``'OIHW'``) and refuses the
others (e.g. ``'NCHW'``) with an error that says how to transpose the inputs.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from .. import validation

__all__ = ["conv_dimension_numbers", "filter_shape_param", "bias_shape_param", "kernel_geometry",
           "check_default_axes", "axis_arg"]

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
    """``filter_shape`` and ``strides`` in the order of the input's spatial axes, for the kernel.

    Raises:
      ValueError: when the input or output layout is not batch first and
        channels last with the same spatial order (the kernel's internal
        layout), naming the layer and the argument.
    """
    lhs, rhs, out = dimension_numbers
    if lhs[0] != "N" or lhs[-1] != "C" or out != lhs:
        raise ValueError(
            f"{where}: kernel_fn supports `dimension_numbers` whose input and output layouts are batch first and "
            f"channels last with one spatial order (e.g. ('NHWC', 'HWIO', 'NHWC') or ('NHWC', 'OIHW', 'NHWC')), "
            f"got {tuple(dimension_numbers)!r}. Kernels are computed from inputs laid out as (batch, spatial..., "
            "channels): transpose the inputs (e.g. x.transpose(0, 2, 3, 1) for NCHW) and use that layout; "
            "init_fn and apply_fn accept any layout."
        )
    filter_order = [c for c in rhs if c not in "IO"]
    perm = [filter_order.index(c) for c in lhs[1:-1]]
    return tuple(filter_shape[p] for p in perm), tuple(strides[p] for p in perm)


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
