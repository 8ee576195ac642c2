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
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import validation
from ..kernel import Kernel, spatial_diagonal
from .layer import StructuredRule, layer
from .spatial import (circular_pad, circular_pool_matrix, circular_window_average, map_kernel, pad_amounts,
                      pool_matrix, pool_pair_axes, window_average)

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


def affine_rule(parameterization, W_std, b_std, fan_in_factor: int, patches):
    def scales(channels):
        if parameterization == "ntk":
            return W_std**2 / (channels * fan_in_factor), (b_std or 0.0) ** 2
        return 1.0, 1.0

    return StructuredRule(scales, patches)


def affine_ntk(parameterization, nngp_unscaled, ntk_unscaled, nngp, w_var, fan_in, has_bias):
    r"""The NTK after an affine layer. NTK parameterisation:
    :math:`\Theta' = \sigma_w^2 \Theta + \Sigma'`; standard parameterisation
    (the gradients with respect to W and b enter unscaled):
    :math:`\Theta' = n_{in}\Sigma + \sigma_w^2 \Theta + 1` (the 1 only with a bias).
    """
    if parameterization == "ntk":
        return w_var * ntk_unscaled + nngp
    return fan_in * nngp_unscaled + w_var * ntk_unscaled + (1.0 if has_bias else 0.0)


def Dense(
    out_dim: int,
    W_std: float = 1.0,
    b_std: Optional[float] = None,
    parameterization: str = "ntk",
):
    r"""Fully connected layer acting on the last (channel) axis.

    NTK parameterisation: :math:`z = \frac{\sigma_w}{\sqrt{n_{in}}} x W + \sigma_b b`,
    ``W``, ``b`` standard normal. Kernel:
    :math:`\Sigma' = \sigma_w^2 \Sigma + \sigma_b^2`,
    :math:`\Theta' = \sigma_w^2\Theta + \Sigma'` (Jacot et al. 2018).

    Standard parameterisation: :math:`z = x W + b`,
    :math:`W \sim N(0, \sigma_w^2/n_{in})`, :math:`b \sim N(0, \sigma_b^2)`;
    the NTK gains the gradients with respect to ``W`` and ``b`` directly:
    :math:`\Theta' = n_{in}\Sigma + \sigma_w^2 \Theta + 1` (the 1 only with a bias).

    ``b_std=None`` (default) means no bias.

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
    parameterization = validation.one_of("Dense", "parameterization", parameterization, _PARAMETERIZATIONS)
    w_var = W_std**2
    b_var = None if b_std is None else b_std**2

    def init_fn(key, input_shape):
        n_in = input_shape[-1]
        k1, k2 = jax.random.split(key)
        W = jax.random.normal(k1, (n_in, out_dim))
        # Bias shaped (1, ..., 1, out_dim) like the input, as in neural-tangents.
        b = None if b_std is None else jax.random.normal(k2, (1,) * (len(input_shape) - 1) + (out_dim,))
        if parameterization == "standard":
            W = W * (W_std / math.sqrt(n_in))
            b = None if b is None else b * b_std
        return tuple(input_shape[:-1]) + (out_dim,), (W, b)

    def apply_fn(params, inputs, **kwargs):
        W, b = params
        if inputs.shape[-1] != W.shape[0]:
            raise ValueError(
                f"Dense: input has {inputs.shape[-1]} features but the layer's `params` expect {W.shape[0]}."
            )
        if parameterization == "ntk":
            out = (W_std / math.sqrt(inputs.shape[-1])) * (inputs @ W)
            return out if b is None else out + b_std * b
        out = inputs @ W
        return out if b is None else out + b

    def kernel_map(k: Kernel) -> Kernel:
        nngp = affine_covariance(k.nngp, w_var, b_var)
        ntk = k.ntk
        if ntk is not None:
            ntk = affine_ntk(parameterization, k.nngp, ntk, nngp, w_var, k.shape1[-1], b_std is not None)
        return k.after_affine(
            nngp=nngp,
            ntk=ntk,
            cov1=affine_covariance(k.cov1, w_var, b_var),
            cov2=None if k.cov2 is None else affine_covariance(k.cov2, w_var, b_var),
            shape1=k.shape1[:-1] + (out_dim,),
            shape2=k.shape2[:-1] + (out_dim,),
        )

    return layer(
        init_fn,
        apply_fn,
        kernel_map,
        "Dense",
        dict(out_dim=out_dim, W_std=W_std, b_std=b_std, parameterization=parameterization),
        has_params=True,
        structured=affine_rule(parameterization, W_std, b_std, 1, lambda a: a),
    )


def Conv(
    out_chan: int,
    filter_shape: Sequence[int],
    strides: Optional[Sequence[int]] = None,
    padding: str = "VALID",
    W_std: float = 1.0,
    b_std: Optional[float] = None,
    parameterization: str = "ntk",
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
    :math:`C_{in} f_h f_w`, as in :func:`Dense`.

    Padding: ``'VALID'`` (no padding), ``'SAME'`` (zeros, output size
    ``ceil(n / stride)``), or ``'CIRCULAR'`` (neural-tangents' periodic
    convolution: the output size of ``'SAME'``, the image wrapping around, so
    position p + d is read modulo the image size in the finite network and on
    both positions of the covariance in the kernel).
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
    w_var = W_std**2
    b_var = None if b_std is None else b_std**2
    spatial = "HWDEFG"[:nd]
    dimension_numbers = ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")
    filter_size = math.prod(filter_shape)

    def _check_rank(shape, what):
        check_spatial_rank("Conv", what, shape, "a filter", filter_shape)

    def _out_spatial(shape):
        return tuple(pad_amounts(shape[1 + i], filter_shape[i], strides[i], padding)[0] for i in range(nd))

    def init_fn(key, input_shape):
        _check_rank(input_shape, "input_shape")
        c_in = input_shape[-1]
        k1, k2 = jax.random.split(key)
        W = jax.random.normal(k1, filter_shape + (c_in, out_chan))
        b = None if b_std is None else jax.random.normal(k2, (1,) * (nd + 1) + (out_chan,))
        if parameterization == "standard":
            W = W * (W_std / math.sqrt(c_in * filter_size))
            b = None if b is None else b * b_std
        return (input_shape[0],) + _out_spatial(input_shape) + (out_chan,), (W, b)

    def apply_fn(params, inputs, **kwargs):
        _check_rank(inputs.shape, "inputs")
        W, b = params
        out = lax.conv_general_dilated(_wrap_input(inputs), W, strides, op_padding,
                                       dimension_numbers=dimension_numbers)
        if parameterization == "ntk":
            out = (W_std / math.sqrt(inputs.shape[-1] * filter_size)) * out
            return out if b is None else out + b_std * b
        return out if b is None else out + b

    def _wrap_input(a):
        if padding != "CIRCULAR":
            return a
        return circular_pad(a, [((1 + i,), filter_shape[i], strides[i]) for i in range(nd)])

    def patches(a):
        return lax.conv_general_dilated_patches(_wrap_input(a), filter_shape, strides, op_padding,
                                                dimension_numbers=dimension_numbers)

    def kernel_map(k: Kernel) -> Kernel:
        _check_rank(k.shape1, "x1")

        def conv_unscaled(x, batch_ndim):
            if k.diagonal_spatial:
                axes = [(batch_ndim + i,) for i in range(nd)]
            else:
                axes = [(batch_ndim + 2 * i, batch_ndim + 2 * i + 1) for i in range(nd)]
            if padding == "CIRCULAR":
                return circular_window_average(x, list(zip(axes, filter_shape, strides)))
            return window_average(x, list(zip(axes, filter_shape, strides)), padding)

        nngp_u = conv_unscaled(k.nngp, 2)
        nngp = affine_covariance(nngp_u, w_var, b_var)
        ntk = k.ntk
        if ntk is not None:
            ntk = affine_ntk(parameterization, nngp_u, conv_unscaled(ntk, 2), nngp, w_var,
                              k.shape1[-1] * filter_size, b_std is not None)
        return k.after_affine(
            nngp=nngp,
            ntk=ntk,
            cov1=affine_covariance(conv_unscaled(k.cov1, 1), w_var, b_var),
            cov2=None if k.cov2 is None else affine_covariance(conv_unscaled(k.cov2, 1), w_var, b_var),
            shape1=(k.shape1[0],) + _out_spatial(k.shape1) + (out_chan,),
            shape2=(k.shape2[0],) + _out_spatial(k.shape2) + (out_chan,),
        )

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
        ),
        has_params=True,
        structured=affine_rule(parameterization, W_std, b_std, filter_size, patches),
        reads_neighbours=True,
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
):
    r"""Average pooling over spatial windows (NHWC).

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
    """
    window_shape = validation.int_tuple("AvgPool", "window_shape", window_shape)
    nd = len(window_shape)
    strides = (1,) * nd if strides is None else validation.int_tuple("AvgPool", "strides", strides, nd)
    padding = validation.one_of("AvgPool", "padding", padding, _PADDINGS, upper=True)
    normalize_edges = bool(normalize_edges)

    def _check_rank(shape, what):
        check_spatial_rank("AvgPool", what, shape, "a window", window_shape)

    def _matrices(shape):
        if padding == "CIRCULAR":
            return [circular_pool_matrix(shape[1 + i], window_shape[i], strides[i]) for i in range(nd)]
        return [pool_matrix(shape[1 + i], window_shape[i], strides[i], padding, normalize_edges) for i in range(nd)]

    def _out_shape(shape):
        return (shape[0],) + tuple(m.shape[0] for m in _matrices(shape)) + (shape[-1],)

    def init_fn(key, input_shape):
        _check_rank(input_shape, "input_shape")
        return _out_shape(input_shape), ()

    def apply_fn(params, inputs, **kwargs):
        _check_rank(inputs.shape, "inputs")
        out = inputs
        for i, m in enumerate(_matrices(inputs.shape)):
            out = jnp.moveaxis(jnp.tensordot(jnp.asarray(m, inputs.dtype), out, axes=([1], [1 + i])), 0, 1 + i)
        return out

    def kernel_map(k: Kernel) -> Kernel:
        _check_rank(k.shape1, "x1")
        _needs_all_positions("AvgPool", k)
        m1, m2 = _matrices(k.shape1), _matrices(k.shape2)

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
            shape1=_out_shape(k.shape1),
            shape2=_out_shape(k.shape2),
        )

    return layer(
        init_fn,
        apply_fn,
        kernel_map,
        "AvgPool",
        dict(window_shape=window_shape, strides=strides, padding=padding, normalize_edges=normalize_edges),
        input_diagonal=_every_pair,
        reads_neighbours=True,
    )


def GlobalAvgPool():
    """Average over all spatial positions: ``(n, H, W, C) -> (n, C)``.

    Kernel: the mean of the kernel over all pairs of positions, so it needs
    every pair of positions of its input.
    """

    def init_fn(key, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"GlobalAvgPool: expects inputs with spatial axes, got shape {tuple(input_shape)}.")
        return (input_shape[0], input_shape[-1]), ()

    def apply_fn(params, inputs, **kwargs):
        if inputs.ndim < 3:
            raise ValueError(f"GlobalAvgPool: expects inputs with spatial axes, got shape {inputs.shape}.")
        return jnp.mean(inputs, axis=tuple(range(1, inputs.ndim - 1)))

    def kernel_map(k: Kernel) -> Kernel:
        if k.spatial_ndim < 1:
            raise ValueError(f"GlobalAvgPool: expects inputs with spatial axes, got shape {k.shape1}.")
        _needs_all_positions("GlobalAvgPool", k)

        def fn(x, batch_ndim):
            return jnp.mean(x, axis=tuple(range(batch_ndim, x.ndim)))

        k = map_kernel(k, fn)
        return k.replace(shape1=(k.shape1[0], k.shape1[-1]), shape2=(k.shape2[0], k.shape2[-1]),
                         diagonal_spatial=False)

    return layer(init_fn, apply_fn, kernel_map, "GlobalAvgPool", input_diagonal=_every_pair, reads_neighbours=True)


def _only_diagonal(output_diagonal):
    return True


def Flatten():
    """Flatten all non-batch axes: ``(n, H, W, C) -> (n, H W C)``.

    Kernel: the mean of the kernel over the spatial diagonal (p, p), since
    the flattened features at different positions are paired position by
    position; so only the diagonal of its input is needed.
    The output is marked non-Gaussian: features at different positions have
    different variances, which the averaged kernel no longer holds, so an
    activation right after ``Flatten`` is refused (put a ``Dense`` first).
    """

    def init_fn(key, input_shape):
        return (input_shape[0], int(np.prod(input_shape[1:]))), ()

    def apply_fn(params, inputs, **kwargs):
        return inputs.reshape(inputs.shape[0], -1)

    def kernel_map(k: Kernel) -> Kernel:
        s = k.spatial_ndim
        if s == 0:
            return k

        def fn(x, batch_ndim):
            diag = x if k.diagonal_spatial else spatial_diagonal(x, batch_ndim, s)
            return jnp.mean(diag, axis=tuple(range(batch_ndim, batch_ndim + s)))

        k2 = map_kernel(k, fn)
        return k2.replace(
            shape1=(k.shape1[0], int(np.prod(k.shape1[1:]))),
            shape2=(k.shape2[0], int(np.prod(k.shape2[1:]))),
            is_gaussian=False,
            diagonal_spatial=False,
        )

    return layer(init_fn, apply_fn, kernel_map, "Flatten", input_diagonal=_only_diagonal, reads_neighbours=True)
