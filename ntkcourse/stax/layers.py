r"""Affine, pooling and reshaping layers, each with its kernel formula.

Conventions (those of neural-tangents): NHWC inputs, HWIO filters, the input
kernel :math:`x \cdot x' / C`, the NTK parameterisation by default. A kernel
over images keeps the covariance of every pair of positions,
``(n1, n2, H, H', W, W')``, or only of equal positions, ``(n1, n2, H, W)``,
when the readout needs no more (``Kernel.diagonal_spatial``, decided by the
engine from each layer's ``input_diagonal``).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import validation
from ..kernel import Kernel, spatial_diagonal
from .conv_specs import (axis_arg, bias_shape_param, check_layout, conv_dimension_numbers, conv_layouts,
                         filter_shape_param, kernel_geometry, layout_value, spatial_permutation, width_scalings)
from .layer import StructuredRule, layer, remask, same_mask
from .masked import MaskedActivations, layout_axes, masked_output, read_out_masks
from .spatial import (circular_pad, circular_pool_matrix, circular_window_average, conv_relayout, map_kernel,
                      pad_amounts, pool_matrix, pool_pair_axes, window_average, window_step_mask)

__all__ = ["Dense", "Conv", "AvgPool", "GlobalAvgPool", "Flatten"]

_PARAMETERIZATIONS = ("ntk", "standard")
_PADDINGS = ("SAME", "VALID", "CIRCULAR")


def check_spatial_rank(where: str, what: str, shape, window_kind: str, window_shape) -> None:
    """Inputs of a window layer: batch, one axis per window dimension, channels."""
    nd = len(window_shape)
    if len(shape) != nd + 2:
        raise ValueError(
            f"{where}: `{what}` must have {nd + 2} axes (batch, {nd} spatial, channels) for {window_kind} of "
            f"shape {window_shape}; got shape {tuple(shape)}."
        )


def affine_covariance(x, w_var: float, b_var: Optional[float]):
    out = w_var * x
    return out if b_var is None else out + b_var


def affine_rule(parameterization, W_std, b_std, fan_in_factor: int, patches, s_in: int = 1):
    def scales(channels):
        if parameterization == "ntk":
            return W_std**2 / (channels * fan_in_factor), (b_std or 0.0) ** 2
        return 1.0 / s_in, 1.0

    return StructuredRule(scales, patches)


def affine_ntk(parameterization, nngp_unscaled, ntk_unscaled, nngp, w_var, fan_in, has_bias):
    r"""The NTK after an affine layer. NTK parameterisation:
    :math:`\Theta' = \sigma_w^2 \Theta + \Sigma'`; standard parameterisation
    (the gradients with respect to W and b enter unscaled):
    :math:`\Theta' = n_{in}\Sigma + \sigma_w^2 \Theta + 1` (the 1 only with a bias),
    with ``fan_in`` = :math:`n_{in}` the fan-in divided by the layer's ``s[0]``
    (:func:`~ntkcourse.stax.conv_specs.width_scalings`).
    """
    if parameterization == "ntk":
        return w_var * ntk_unscaled + nngp
    return fan_in * nngp_unscaled + w_var * ntk_unscaled + (1.0 if has_bias else 0.0)


def Dense(
    out_dim: int,
    W_std: float = 1.0,
    b_std: Optional[float] = None,
    batch_axis: int = 0,
    channel_axis: int = -1,
    parameterization: str = "ntk",
    s: Tuple[int, int] = (1, 1),
):
    r"""Fully connected layer acting on the channel axis (by default the last).

    NTK parameterisation: :math:`z = \frac{\sigma_w}{\sqrt{n_{in}}} x W + \sigma_b b`,
    ``W``, ``b`` standard normal. Kernel:
    :math:`\Sigma' = \sigma_w^2 \Sigma + \sigma_b^2`,
    :math:`\Theta' = \sigma_w^2\Theta + \Sigma'` (Jacot et al. 2018).

    Standard parameterisation: :math:`z = x W + b`,
    :math:`W \sim N(0, \sigma_w^2/n_{in})`, :math:`b \sim N(0, \sigma_b^2)`;
    the NTK gains the gradients with respect to ``W`` and ``b`` directly:
    :math:`\Theta' = n_{in}\Sigma + \sigma_w^2 \Theta + 1` (the 1 only with a bias).

    ``b_std=None`` (default) means no bias.

    ``s = (s_in, s_out)`` (neural-tangents' argument, standard
    parameterisation only; Sohl-Dickstein et al. 2020): the widths of the
    input and the output are ``s_in`` and ``s_out`` times the nominal ones:
    ``W`` is ``(n_in, s_out * out_dim)`` with variance
    :math:`\sigma_w^2 s_{in}/n_{in}`, the output is
    :math:`x W / \sqrt{s_{in}} + b`, so the NNGP does not change and the NTK is
    :math:`\Theta' = (n_{in}/s_{in})\Sigma + \sigma_w^2\Theta + 1`. A
    layer's ``s_in`` should equal the previous layer's ``s_out`` (1 for the
    first layer). Ignored, with a warning, under ``parameterization='ntk'``
    (as neural-tangents ignores it).

    ``batch_axis``, ``channel_axis`` (neural-tangents' arguments): the finite
    layer acts on any ``channel_axis`` (its bias has ``out_dim`` there and
    ones elsewhere), and so does ``kernel_fn``; it refuses axes that are not
    where the activations reaching it keep them (the limit is then not
    defined; :mod:`ntkcourse.stax.conv_specs`).

    Example:
      >>> import numpy as np
      >>> from ntkcourse import stax
      >>> _, _, kernel_fn = stax.Dense(1, W_std=2.0, b_std=0.5)
      >>> float(kernel_fn(np.ones((1, 3)), None, "nngp")[0, 0])  # 2^2 * 1 + 0.5^2
      4.25
    """
    out_dim = validation.positive_int("Dense", "out_dim", out_dim)
    W_std = validation.nonnegative("Dense", "W_std", W_std)
    b_std = validation.nonnegative("Dense", "b_std", b_std, allow_none=True)
    batch_axis = axis_arg("Dense", "batch_axis", batch_axis)
    channel_axis = axis_arg("Dense", "channel_axis", channel_axis)
    parameterization = validation.one_of("Dense", "parameterization", parameterization, _PARAMETERIZATIONS)
    s_in, s_out = width_scalings("Dense", s, parameterization)
    standard = parameterization == "standard"
    width = out_dim * s_out if standard else out_dim
    w_var = W_std**2
    b_var = None if b_std is None else b_std**2

    def init_fn(key, input_shape):
        c = channel_axis % len(input_shape)
        n_in = input_shape[c]
        k1, k2 = jax.random.split(key)
        W = jax.random.normal(k1, (n_in, width))
        # Bias shaped (1, ..., width, ..., 1) like the input, as in neural-tangents.
        b_shape = tuple(width if i == c else 1 for i in range(len(input_shape)))
        b = None if b_std is None else jax.random.normal(k2, b_shape)
        if standard:
            W = W * (W_std / math.sqrt(n_in / s_in))
            b = None if b is None else b * b_std
        return tuple(input_shape[:c]) + (width,) + tuple(input_shape[c + 1:]), (W, b)

    def apply_fn(params, inputs, **kwargs):
        W, b = params
        c = channel_axis % inputs.ndim
        if inputs.shape[c] != W.shape[0]:
            raise ValueError(
                f"Dense: input has {inputs.shape[c]} features but the layer's `params` expect {W.shape[0]}."
            )
        prod = inputs @ W if c == inputs.ndim - 1 else jnp.moveaxis(jnp.tensordot(inputs, W, (c, 0)), -1, c)
        if parameterization == "ntk":
            out = (W_std / math.sqrt(inputs.shape[c])) * prod
            return out if b is None else out + b_std * b
        out = prod if s_in == 1 else prod / math.sqrt(s_in)
        return out if b is None else out + b

    def kernel_map(k: Kernel) -> Kernel:
        check_layout("Dense", k, batch_axis, channel_axis)
        nngp = affine_covariance(k.nngp, w_var, b_var)
        ntk = k.ntk
        if ntk is not None:
            ntk = affine_ntk(parameterization, k.nngp, ntk, nngp, w_var, k.shape1[-1] / s_in, b_std is not None)
        return k.after_affine(
            nngp=nngp,
            ntk=ntk,
            cov1=affine_covariance(k.cov1, w_var, b_var),
            cov2=None if k.cov2 is None else affine_covariance(k.cov2, w_var, b_var),
            shape1=k.shape1[:-1] + (width,),
            shape2=k.shape2[:-1] + (width,),
        )

    return layer(
        init_fn,
        apply_fn,
        kernel_map,
        "Dense",
        dict(out_dim=out_dim, W_std=W_std, b_std=b_std, batch_axis=batch_axis, channel_axis=channel_axis,
             parameterization=parameterization, s=(s_in, s_out)),
        has_params=True,
        # The structured empirical NTK multiplies W on the last axis.
        structured=(affine_rule(parameterization, W_std, b_std, 1, lambda a: a, s_in) if channel_axis == -1
                    else None),
        mask_fn=same_mask,
        input_layout=(batch_axis, channel_axis),
        finite_layouts=same_layouts(batch_axis, channel_axis),
    )


def Conv(
    out_chan: int,
    filter_shape: Sequence[int],
    strides: Optional[Sequence[int]] = None,
    padding: str = "VALID",
    W_std: float = 1.0,
    b_std: Optional[float] = None,
    dimension_numbers=None,
    parameterization: str = "ntk",
    s: Tuple[int, int] = (1, 1),
):
    r"""Convolution on NHWC inputs with an HWIO filter (``lax.conv_general_dilated``).

    NTK parameterisation: :math:`z = \frac{\sigma_w}{\sqrt{C_{in} f_h f_w}} W * x + \sigma_b b`.
    The kernel of the output at positions (p, p') averages the input kernel
    over the filter offsets applied to both positions,
    :math:`\Sigma'(p, p') = \sigma_w^2 \frac{1}{f_h f_w}\sum_d \Sigma(p+d, p'+d) + \sigma_b^2`
    (Novak et al. 2019; Arora et al. 2019), and
    :math:`\Theta'(p,p') = \sigma_w^2 \frac{1}{f_h f_w}\sum_d\Theta(p+d,p'+d) + \Sigma'(p,p')`.
    The offset p - p' is kept, so the diagonal p = p' of the output needs
    only the diagonal of the input. Standard parameterisation: the fan-in is
    :math:`C_{in} f_h f_w`, as in :func:`Dense`, and ``s`` (neural-tangents'
    width scalings) has :func:`Dense`'s meaning with that fan-in: ``s_out *
    out_chan`` output channels, the output divided by :math:`\sqrt{s_{in}}`,
    and :math:`\Theta' = (C_{in} f_h f_w / s_{in})\,\bar\Sigma + \sigma_w^2\bar\Theta + 1`
    (bars: averages over the filter offsets).

    Padding: ``'VALID'`` (no padding), ``'SAME'`` (zeros, output size
    ``ceil(n / stride)``), or ``'CIRCULAR'`` (neural-tangents' periodic
    convolution: the output size of ``'SAME'``, the image wrapping around, so
    position p + d is read modulo the image size in the finite network and on
    both positions of the covariance in the kernel).

    ``dimension_numbers`` (neural-tangents' argument, as in
    ``lax.conv_general_dilated``; ``None``: ``('NHWC', 'HWIO', 'NHWC')``):
    the finite layer takes any layout, with ``filter_shape`` and ``strides``
    in the order of the filter's spatial axes; ``kernel_fn`` too (e.g.
    ``('NCHW', 'OIHW', 'NCHW')``): the output kernel's spatial axes follow
    the output spec's order of the spatial letters, as in neural-tangents,
    and an input spec that disagrees with the layout of the activations
    reaching the layer is refused (:mod:`ntkcourse.stax.conv_specs`).

    Padded sequences and images (``kernel_fn(..., mask_constant=c)``, as
    neural-tangents): padded positions enter as zero, and an output position
    is padding when its window is centred on a padded one (``'CIRCULAR'``:
    the geometry of ``'SAME'``), in ``kernel_fn`` (every layout) and
    ``apply_fn`` (the default layout).
    """
    out_chan = validation.positive_int("Conv", "out_chan", out_chan)
    filter_shape = validation.int_tuple("Conv", "filter_shape", filter_shape)
    nd = len(filter_shape)
    strides = (1,) * nd if strides is None else validation.int_tuple("Conv", "strides", strides, nd)
    padding = validation.one_of("Conv", "padding", padding, _PADDINGS, upper=True)
    # CIRCULAR: pad periodically, then a VALID window op (neural-tangents' definition).
    op_padding = "VALID" if padding == "CIRCULAR" else padding
    W_std = validation.nonnegative("Conv", "W_std", W_std)
    b_std = validation.nonnegative("Conv", "b_std", b_std, allow_none=True)
    parameterization = validation.one_of("Conv", "parameterization", parameterization, _PARAMETERIZATIONS)
    s_in, s_out = width_scalings("Conv", s, parameterization)
    width = out_chan * s_out if parameterization == "standard" else out_chan
    w_var = W_std**2
    b_var = None if b_std is None else b_std**2
    dimension_numbers = conv_dimension_numbers("Conv", dimension_numbers, nd)
    default_layout = dimension_numbers == conv_dimension_numbers("Conv", None, nd)
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    lhs_spatial = [lhs_spec.index(c) for c in rhs_spec if c not in "IO"]
    filter_size = math.prod(filter_shape)

    def _check_rank(shape, what):
        check_spatial_rank("Conv", what, shape, "a filter", filter_shape)

    def _out_spatial(shape, filters=filter_shape, steps=strides):
        """Output sizes of the spatial axes of ``shape`` (NHWC), ``filters`` and ``steps`` in that order."""
        return tuple(pad_amounts(shape[1 + i], filters[i], steps[i], padding)[0] for i in range(nd))

    def init_fn(key, input_shape):
        _check_rank(input_shape, "input_shape")
        c_in = input_shape[lhs_spec.index("C")]
        k1, k2 = jax.random.split(key)
        W = jax.random.normal(k1, filter_shape_param(rhs_spec, filter_shape, c_in, width))
        b = None if b_std is None else jax.random.normal(k2, bias_shape_param(out_spec, width))
        if parameterization == "standard":
            W = W * (W_std / math.sqrt(c_in * filter_size / s_in))
            b = None if b is None else b * b_std
        sizes = dict(N=input_shape[lhs_spec.index("N")], C=width)
        for i, axis in enumerate(lhs_spatial):
            sizes[lhs_spec[axis]] = pad_amounts(input_shape[axis], filter_shape[i], strides[i], padding)[0]
        return tuple(sizes[c] for c in out_spec), (W, b)

    def apply_fn(params, inputs, **kwargs):
        _check_rank(inputs.shape, "inputs")
        W, b = params
        out = lax.conv_general_dilated(_wrap_input(inputs), W, strides, op_padding,
                                       dimension_numbers=dimension_numbers)
        if parameterization == "ntk":
            out = (W_std / math.sqrt(inputs.shape[lhs_spec.index("C")] * filter_size)) * out
            return out if b is None else out + b_std * b
        out = out if s_in == 1 else out / math.sqrt(s_in)
        return out if b is None else out + b

    def _wrap_input(a):
        if padding != "CIRCULAR":
            return a
        return circular_pad(a, [((axis,), filter_shape[i], strides[i]) for i, axis in enumerate(lhs_spatial)])

    def patches(a):
        return lax.conv_general_dilated_patches(_wrap_input(a), filter_shape, strides, op_padding,
                                                dimension_numbers=dimension_numbers)

    def conv_mask(mask):
        """Masks of the kernel's positions (the input's spatial order) to those of the output's order."""
        filters, steps = kernel_geometry("Conv", dimension_numbers, filter_shape, strides)
        out = window_step_mask("Conv", mask, filters, steps, padding)
        return jnp.transpose(out, (0,) + tuple(1 + p for p in spatial_permutation(dimension_numbers)))

    def finite_layouts(ndim):
        (b_in, c_in), (b_out, c_out) = conv_layouts(dimension_numbers)
        return layout_value(b_in, c_in, ndim), layout_value(b_out, c_out, ndim)

    def kernel_map(k: Kernel) -> Kernel:
        _check_rank(k.shape1, "x1")
        check_layout("Conv", k, *conv_layouts(dimension_numbers)[0])
        filters, steps = kernel_geometry("Conv", dimension_numbers, filter_shape, strides)

        def conv_unscaled(x, batch_ndim):
            if k.diagonal_spatial:
                axes = [(batch_ndim + i,) for i in range(nd)]
            else:
                axes = [(batch_ndim + 2 * i, batch_ndim + 2 * i + 1) for i in range(nd)]
            if padding == "CIRCULAR":
                return circular_window_average(x, list(zip(axes, filters, steps)))
            return window_average(x, list(zip(axes, filters, steps)), padding)

        nngp_u = conv_unscaled(k.nngp, 2)
        nngp = affine_covariance(nngp_u, w_var, b_var)
        ntk = k.ntk
        if ntk is not None:
            ntk = affine_ntk(parameterization, nngp_u, conv_unscaled(ntk, 2), nngp, w_var,
                              k.shape1[-1] * filter_size / s_in, b_std is not None)
        return conv_relayout(k.after_affine(
            nngp=nngp,
            ntk=ntk,
            cov1=affine_covariance(conv_unscaled(k.cov1, 1), w_var, b_var),
            cov2=None if k.cov2 is None else affine_covariance(conv_unscaled(k.cov2, 1), w_var, b_var),
            shape1=(k.shape1[0],) + _out_spatial(k.shape1, filters, steps) + (width,),
            shape2=(k.shape2[0],) + _out_spatial(k.shape2, filters, steps) + (width,),
        ), dimension_numbers)

    return layer(
        init_fn,
        apply_fn,
        kernel_map,
        "Conv",
        dict(
            out_chan=out_chan,
            filter_shape=filter_shape,
            strides=strides,
            padding=padding,
            W_std=W_std,
            b_std=b_std,
            parameterization=parameterization,
            dimension_numbers=dimension_numbers,
            s=(s_in, s_out),
        ),
        mask_fn=conv_mask,
        finite_layouts=finite_layouts,
        has_params=True,
        # The structured empirical NTK reads patches and filters in the default layout.
        structured=affine_rule(parameterization, W_std, b_std, filter_size, patches, s_in) if default_layout else None,
        reads_neighbours=True,
        input_layout=conv_layouts(dimension_numbers)[0],
    )


def _needs_all_positions(where: str, k: Kernel):
    if k.diagonal_spatial:
        raise ValueError(
            f"{where}: needs the covariance of every pair of positions, but the kernel holds only the spatial "
            "diagonal (computed for a Flatten readout or diagonal_spatial=True)."
        )


def _every_pair(output_diagonal):
    return False


def AvgPool(
    window_shape: Sequence[int],
    strides: Optional[Sequence[int]] = None,
    padding: str = "VALID",
    normalize_edges: bool = False,
    batch_axis: int = 0,
    channel_axis: int = -1,
):
    r"""Average pooling over spatial windows (NHWC by default).

    ``strides`` defaults to ones (overlapping windows), as in neural-tangents
    and ``jax.example_libraries.stax``.
    With 'SAME' padding, windows at the edges average over the full window
    size (zeros padded) unless ``normalize_edges=True``, which averages over
    the positions inside the image. ``'CIRCULAR'`` padding (neural-tangents'
    periodic pooling) has the output size of 'SAME' and wraps each window
    around the image, so every window is full and ``normalize_edges`` has no
    effect. Kernel: :math:`K \mapsto P K P^\top` on
    each spatial pair of axes, with P the pooling matrix; it mixes positions,
    so it needs every pair of positions of its input.

    ``batch_axis``, ``channel_axis`` (neural-tangents' arguments): the
    spatial axes are the others, in order, and ``window_shape`` and
    ``strides`` apply to them in that order (finite layer and kernel).

    Padded sequences and images (``mask_constant``): padded positions enter
    as zero and an output position is padding when its window is centred on
    a padded position (:func:`~ntkcourse.stax.spatial.window_step_mask`;
    ``'CIRCULAR'`` with the geometry of ``'SAME'``), in ``kernel_fn`` and
    ``apply_fn``, as in neural-tangents.
    """
    window_shape = validation.int_tuple("AvgPool", "window_shape", window_shape)
    batch_axis = axis_arg("AvgPool", "batch_axis", batch_axis)
    channel_axis = axis_arg("AvgPool", "channel_axis", channel_axis)
    nd = len(window_shape)
    strides = (1,) * nd if strides is None else validation.int_tuple("AvgPool", "strides", strides, nd)
    padding = validation.one_of("AvgPool", "padding", padding, _PADDINGS, upper=True)
    normalize_edges = bool(normalize_edges)

    def _check_rank(shape, what):
        check_spatial_rank("AvgPool", what, shape, "a window", window_shape)

    def _spatial(ndim, finite=True):
        """The spatial axes of activations with ``ndim`` axes (of the kernel's
        batch-first, channels-last shapes when not ``finite``).
        """
        if not finite:
            return tuple(range(1, ndim - 1))
        return global_pool_axes("AvgPool", ndim, batch_axis, channel_axis)

    def _matrices(shape, finite=True):
        axes = _spatial(len(shape), finite)
        if padding == "CIRCULAR":
            return [circular_pool_matrix(shape[a], window_shape[i], strides[i]) for i, a in enumerate(axes)]
        return [pool_matrix(shape[a], window_shape[i], strides[i], padding, normalize_edges)
                for i, a in enumerate(axes)]

    def _out_shape(shape, finite=True):
        out = list(shape)
        for a, m in zip(_spatial(len(shape), finite), _matrices(shape, finite)):
            out[a] = m.shape[0]
        return tuple(out)

    def init_fn(key, input_shape):
        _check_rank(input_shape, "input_shape")
        return _out_shape(tuple(input_shape)), ()

    def apply_fn(params, inputs, **kwargs):
        _check_rank(inputs.shape, "inputs")
        out = inputs
        for a, m in zip(_spatial(inputs.ndim), _matrices(inputs.shape)):
            out = jnp.moveaxis(jnp.tensordot(jnp.asarray(m, inputs.dtype), out, axes=([1], [a])), 0, a)
        return out

    def kernel_map(k: Kernel) -> Kernel:
        _check_rank(k.shape1, "x1")
        check_layout("AvgPool", k, batch_axis, channel_axis)
        _needs_all_positions("AvgPool", k)
        m1, m2 = _matrices(k.shape1, False), _matrices(k.shape2, False)

        def pool(mats_left, mats_right, batch_ndim):
            def fn(x):
                for i, (p, q) in enumerate(zip(mats_left, mats_right)):
                    x = pool_pair_axes(x, batch_ndim + 2 * i, p, q)
                return x

            return fn

        return k.replace(
            nngp=pool(m1, m2, 2)(k.nngp),
            ntk=None if k.ntk is None else pool(m1, m2, 2)(k.ntk),
            cov1=pool(m1, m1, 1)(k.cov1),
            cov2=None if k.cov2 is None else pool(m2, m2, 1)(k.cov2),
            shape1=_out_shape(k.shape1, False),
            shape2=_out_shape(k.shape2, False),
        )

    return layer(
        init_fn,
        apply_fn,
        kernel_map,
        "AvgPool",
        dict(window_shape=window_shape, strides=strides, padding=padding, normalize_edges=normalize_edges,
             batch_axis=batch_axis, channel_axis=channel_axis),
        input_diagonal=_every_pair,
        reads_neighbours=True,
        input_layout=(batch_axis, channel_axis),
        mask_fn=lambda mask: window_step_mask("AvgPool", mask, window_shape, strides, padding),
        finite_layouts=same_layouts(batch_axis, channel_axis),
    )


def same_layouts(batch_axis: int, channel_axis: int):
    """``finite_layouts`` (see :func:`ntkcourse.stax.layer.layer`) of a layer
    whose output keeps its input's batch and channel axes.
    """
    def layouts(ndim):
        value = layout_value(batch_axis, channel_axis, ndim)
        return value, value

    return layouts


def global_pool_axes(where: str, ndim: int, batch_axis: int, channel_axis: int):
    """The spatial axes of inputs with ``ndim`` axes: all but the batch and channel axes."""
    kept = (batch_axis % ndim, channel_axis % ndim)
    if kept[0] == kept[1]:
        raise ValueError(f"{where}: `batch_axis` and `channel_axis` must differ, got {batch_axis} and {channel_axis} "
                         f"for inputs with {ndim} axes.")
    return tuple(i for i in range(ndim) if i not in kept)


def global_pool_layout(ndim: int, batch_axis: int, channel_axis: int):
    """``Kernel.layout`` of a global pool's output: neural-tangents' rule, the
    batch and channel axes kept in their order (``(1, 0)`` when the channels
    come first).
    """
    return None if batch_axis % ndim < channel_axis % ndim else (1, 0)


def GlobalAvgPool(batch_axis: int = 0, channel_axis: int = -1):
    r"""Average over all spatial positions: ``(n, H, W, C) -> (n, C)``.

    Kernel: the mean of the kernel over all pairs of positions, so it needs
    every pair of positions of its input. For padded sequences
    (``kernel_fn(..., mask_constant=...)``) the mean over the real steps only,
    :math:`\sum_{t, t' \text{ real}} K_{tt'} / (T_1 T_2)` with :math:`T_i` the
    numbers of real steps (neural-tangents' masked mean). The finite layer
    does the same: ``apply_fn(params, x, mask_constant=c)`` on sequences
    ``(batch, T, features)`` averages over the real steps (those whose
    features are not all ``c`` in the network's inputs: inside a network the
    masks come from the layers before, :mod:`ntkcourse.stax.masked`), with
    entries of the inputs equal to ``c`` counted as zero (as ``kernel_fn``
    treats them), so that the kernel is the limit of the finite network.

    ``batch_axis``, ``channel_axis`` (neural-tangents' arguments): the finite
    layer averages over every other axis and keeps these two in their
    order, and so does ``kernel_fn`` (a ``(C, N)`` output when the channels
    come first, as neural-tangents).
    """
    batch_axis = axis_arg("GlobalAvgPool", "batch_axis", batch_axis)
    channel_axis = axis_arg("GlobalAvgPool", "channel_axis", channel_axis)

    def init_fn(key, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"GlobalAvgPool: expects inputs with spatial axes, got shape {tuple(input_shape)}.")
        spatial = global_pool_axes("GlobalAvgPool", len(input_shape), batch_axis, channel_axis)
        return tuple(n for i, n in enumerate(input_shape) if i not in spatial), ()

    def apply_fn(params, inputs, **kwargs):
        masked = isinstance(inputs, MaskedActivations)
        shape = inputs.values.shape if masked else inputs.shape
        if len(shape) < 3:
            raise ValueError(f"GlobalAvgPool: expects inputs with spatial axes, got shape {shape}.")
        axes = global_pool_axes("GlobalAvgPool", len(shape), batch_axis, channel_axis)
        if not masked:
            return jnp.mean(inputs, axis=axes)
        return masked_step_pool("GlobalAvgPool", inputs, axes)

    def kernel_map(k: Kernel) -> Kernel:
        if k.spatial_ndim < 1:
            raise ValueError(f"GlobalAvgPool: expects inputs with spatial axes, got shape {k.shape1}.")
        check_layout("GlobalAvgPool", k, batch_axis, channel_axis)
        out_layout = global_pool_layout(len(k.shape1), batch_axis, channel_axis)
        _needs_all_positions("GlobalAvgPool", k)
        if k.is_masked:
            return masked_global_pool(k, True).replace(layout=out_layout)

        def fn(x, batch_ndim):
            return jnp.mean(x, axis=tuple(range(batch_ndim, x.ndim)))

        k = map_kernel(k, fn)
        return k.replace(shape1=(k.shape1[0], k.shape1[-1]), shape2=(k.shape2[0], k.shape2[-1]),
                         diagonal_spatial=False, layout=out_layout)

    return layer(init_fn, apply_fn, kernel_map, "GlobalAvgPool", dict(batch_axis=batch_axis, channel_axis=channel_axis),
                 input_diagonal=_every_pair, reads_neighbours=True,
                 handles_masks=True, input_layout=(batch_axis, channel_axis))


def masked_step_pool(where: str, inputs: MaskedActivations, axes, average: bool = True):
    """The mean (``average``) or sum over the real positions of the finite
    activations of padded inputs (:class:`~ntkcourse.stax.masked.MaskedActivations`,
    zero at padded positions), pooled over the spatial ``axes`` of the layout
    they arrive in; the batch and channel axes keep their order.

    Raises:
      ValueError: ``axes`` are not the spatial axes of that layout (the pool's
        ``batch_axis``/``channel_axis`` name other axes), naming ``where``.
    """
    values = inputs.values
    batch_axis, channel_axis = layout_axes(inputs.layout, values.ndim)
    if tuple(axes) != tuple(i for i in range(values.ndim) if i not in (batch_axis, channel_axis)):
        raise ValueError(
            f"{where}: apply_fn(..., mask_constant=...): the activations reaching this layer keep their batch and "
            f"channel axes at ({batch_axis}, {channel_axis}) of {values.ndim}, but the layer pools over axes "
            f"{tuple(axes)}; give it the batch_axis and channel_axis of its inputs."
        )
    total = jnp.sum(values, axis=tuple(axes))
    layout = None if batch_axis < channel_axis else (1, 0)
    if average:
        # An input made only of padding averages to zero (neural-tangents' max(count, 1)), also under jit.
        count = jnp.maximum(jnp.sum(inputs.real, axis=tuple(range(1, inputs.real.ndim))), 1).astype(values.dtype)
        total = total / (count[:, None] if layout is None else count[None, :])
    return masked_output(total, read_out_masks(inputs.real), layout)


def masked_global_pool(k: Kernel, average: bool) -> Kernel:
    r"""The kernel of the mean (``average``) or sum over the real positions of
    padded inputs: padded entries of ``k`` are zero (see
    :func:`ntkcourse.stax.layer.remask`), so the sum over all pairs of
    positions, divided for the mean by the numbers of real positions
    :math:`P_1 P_2` (neural-tangents' masked mean).
    """
    k = remask(k, k.mask1, k.mask2)  # padded entries zero whatever the layer before (e.g. Recurrent)
    spatial = tuple(range(1, k.mask1.ndim))
    real1 = jnp.sum(k.mask1, axis=spatial).astype(k.nngp.dtype)
    real2 = real1 if k.mask2 is None else jnp.sum(k.mask2, axis=spatial).astype(k.nngp.dtype)

    def total(x, batch_ndim):
        return jnp.sum(x, axis=tuple(range(batch_ndim, x.ndim)))

    one = jnp.ones((), k.nngp.dtype)
    # An input made only of padding pools to zero: its entries are zero, divided by max(count, 1) as
    # neural-tangents' masked mean (no 0/0, so no NaN in its row, nor in a gradient through it).
    pair, self1, self2 = ((jnp.maximum(real1[:, None] * real2[None, :], one), jnp.maximum(real1**2, one),
                           jnp.maximum(real2**2, one)) if average else (one, one, one))
    return k.replace(
        nngp=total(k.nngp, 2) / pair, ntk=None if k.ntk is None else total(k.ntk, 2) / pair,
        cov1=total(k.cov1, 1) / self1, cov2=None if k.cov2 is None else total(k.cov2, 1) / self2,
        shape1=(k.shape1[0], k.shape1[-1]), shape2=(k.shape2[0], k.shape2[-1]), diagonal_spatial=False,
        mask1=read_out_masks(k.mask1), mask2=None if k.mask2 is None else read_out_masks(k.mask2),
    )


def _only_diagonal(output_diagonal):
    return True


def Flatten(batch_axis: int = 0, batch_axis_out: int = 0):
    """Flatten all non-batch axes: ``(n, H, W, C) -> (n, H W C)``.

    Kernel: the mean of the kernel over the spatial diagonal (p, p), since
    the flattened features at different positions are paired position by
    position; so only the diagonal of its input is needed.
    The output is marked non-Gaussian: features at different positions have
    different variances, which the averaged kernel no longer holds, so an
    activation right after ``Flatten`` is refused (put a ``Dense`` first).

    ``batch_axis`` (the input's batch axis) and ``batch_axis_out`` (0 or 1,
    the output's; neural-tangents' arguments): the finite layer moves the
    batch axis and flattens the rest in order; ``kernel_fn`` computes every
    value (the kernel does not depend on them; later layers name the output's
    axes accordingly).

    Padded sequences and images (``mask_constant``): padded positions are
    zero, so the kernel is the sum over the real positions divided by the
    padded number of positions, and
    ``apply_fn(..., mask_constant=c)`` flattens the activations with padded
    positions zero (and entries of the inputs equal to ``c`` zero), as
    neural-tangents' masked ``Flatten``; the output's masks are one per input
    (an input made only of padding stays padding, as there).
    """
    batch_axis = axis_arg("Flatten", "batch_axis", batch_axis)
    batch_axis_out = axis_arg("Flatten", "batch_axis_out", batch_axis_out)
    if batch_axis_out not in (0, 1, -1, -2):
        raise validation.fail("Flatten", "batch_axis_out", "0 or 1 (or -2, -1)", batch_axis_out)
    batch_axis_out %= 2

    def _out_shape(shape):
        n = shape[batch_axis]
        rest = int(np.prod([m for i, m in enumerate(shape) if i != batch_axis % len(shape)]))
        return (n, rest) if batch_axis_out == 0 else (rest, n)

    def init_fn(key, input_shape):
        return _out_shape(tuple(input_shape)), ()

    def apply_fn(params, inputs, **kwargs):
        if isinstance(inputs, MaskedActivations):
            have = layout_axes(inputs.layout, inputs.values.ndim)[0]
            if batch_axis % inputs.values.ndim != have:
                raise ValueError(
                    f"Flatten: apply_fn(..., mask_constant=...): the activations reaching this layer keep their "
                    f"batch axis at {have}, but the layer takes batch_axis={batch_axis}; give it the batch axis of "
                    "its inputs."
                )
            moved = jnp.moveaxis(inputs.values, batch_axis, 0)  # zero at padded positions, as the kernel reads them
            out = moved.reshape(moved.shape[0], -1)
            return masked_output(out if batch_axis_out == 0 else out.T, read_out_masks(inputs.real),
                                 None if batch_axis_out == 0 else (1, 0))
        moved = jnp.moveaxis(inputs, batch_axis, 0)
        out = moved.reshape(moved.shape[0], -1)
        return out if batch_axis_out == 0 else out.T

    def kernel_map(k: Kernel) -> Kernel:
        check_layout("Flatten", k, batch_axis, None)
        out_layout = layout_value(batch_axis_out, 1 - batch_axis_out, 2)
        s = k.spatial_ndim
        if s == 0:
            return k.replace(layout=out_layout)
        if k.is_masked:
            k = remask(k, k.mask1, k.mask2)  # padded steps count as zero over the padded length

        def fn(x, batch_ndim):
            diag = x if k.diagonal_spatial else spatial_diagonal(x, batch_ndim, s)
            return jnp.mean(diag, axis=tuple(range(batch_ndim, batch_ndim + s)))

        k2 = map_kernel(k, fn)
        return k2.replace(
            shape1=(k.shape1[0], int(np.prod(k.shape1[1:]))),
            shape2=(k.shape2[0], int(np.prod(k.shape2[1:]))),
            is_gaussian=False,
            diagonal_spatial=False,
            layout=out_layout,
            mask1=None if k.mask1 is None else read_out_masks(k.mask1),
            mask2=None if k.mask2 is None else read_out_masks(k.mask2),
        )

    return layer(init_fn, apply_fn, kernel_map, "Flatten", dict(batch_axis=batch_axis, batch_axis_out=batch_axis_out),
                 input_diagonal=_only_diagonal, reads_neighbours=True, input_layout=(batch_axis, None),
                 handles_masks=True)
