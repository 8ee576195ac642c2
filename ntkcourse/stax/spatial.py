"""Formulas on kernels with spatial axes: convolution and pooling of covariances.

A kernel over images holds, for each pair of inputs, the covariance between
every pair of positions, with the two positions of each spatial axis next to
each other: ``(n1, n2, H, H', W, W')``; or only equal positions,
``(n1, n2, H, W)``, when ``Kernel.diagonal_spatial``.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Tuple

import jax.numpy as jnp
import numpy as np
from jax import lax

from ..engine import in_one_program, linear_pair
from ..kernel import Kernel
from .conv_specs import conv_layouts, layout_value, spatial_permutation

__all__ = ["pad_amounts", "window_average", "window_sum_as_conv", "conv_pair_axes", "pool_matrix", "pool_pair_axes",
           "interleave_ones", "map_kernel", "circular_pad", "circular_window_average", "circular_pool_matrix",
           "permute_spatial", "conv_relayout", "window_step_mask"]


def pad_amounts(size: int, window: int, stride: int, padding: str) -> Tuple[int, int, int]:
    """(output size, low pad, high pad) of a window op, as ``lax.conv``/``reduce_window`` do it."""
    if padding == "VALID":
        if size < window:
            raise ValueError(f"a window of size {window} does not fit an input of size {size} with 'VALID' padding.")
        return (size - window) // stride + 1, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return out, total // 2, total - total // 2


def _window_span(size: int, offset: int, stride: int, out: int, lo: int):
    """For one filter offset: the output positions ``first..last`` whose input
    position ``o * stride + offset - lo`` lies inside the input, and the
    input position of ``first``; ``None`` when every one falls in the padding.
    """
    valid = [o for o in range(out) if 0 <= o * stride + offset - lo < size]
    if not valid:
        return None
    return valid[0], valid[-1], valid[0] * stride + offset - lo


def window_average(x, dims, padding: str):
    r"""Average over the filter offsets of a convolution, on several spatial
    dimensions at once.

    Args:
      x: the array.
      dims: one ``(axes, window, stride)`` per spatial dimension; ``axes`` are
        the axes of ``x`` that hold that dimension (two for a pair of
        positions, which move together; one for a diagonal).
      padding: ``'SAME'`` or ``'VALID'``.

    Returns:
      :math:`\frac{1}{\prod w}\sum_{d} x[o \cdot s + d - lo]` on every
      listed axis, zero where an index falls in the padding.

    Each term is a strided slice of ``x`` followed by a zero pad, one term per
    combination of offsets, never a slice of a padded copy: every term then has
    a single consumer, and XLA fuses the whole sum into the loop that uses it,
    reading ``x`` in place instead of writing shifted copies first.

    Inside :func:`ntkcourse.engine.one_program` (the whole network as one XLA
    program, under the caller's ``jit``) the same sum is one convolution,
    :func:`window_sum_as_conv`: XLA would fuse the producer of ``x`` into
    every shifted read. The terms are the same; only the order of the
    additions differs.
    """
    if in_one_program():
        return window_sum_as_conv(x, dims, padding) / math.prod(window for _, window, _ in dims)
    per_dim = []
    for axes, window, stride in dims:
        size = x.shape[axes[0]]
        out, lo, _ = pad_amounts(size, window, stride, padding)
        spans = [_window_span(size, d, stride, out, lo) for d in range(window)]
        per_dim.append([(axes, stride, out, span) for span in spans if span is not None])
    total = None
    for combo in itertools.product(*per_dim):
        sl = [slice(None)] * x.ndim
        pads = [(0, 0)] * x.ndim
        for axes, stride, out, (first, last, start) in combo:
            for axis in axes:
                sl[axis] = slice(start, start + stride * (last - first) + 1, stride)
                pads[axis] = (first, out - 1 - last)
        term = x[tuple(sl)]
        if any(p != (0, 0) for p in pads):
            term = jnp.pad(term, pads)
        total = term if total is None else total + term
    return total / math.prod(window for _, window, _ in dims)


def window_sum_as_conv(x, dims, padding: str):
    r"""The window sum of :func:`window_average` (not divided by the window
    size) as one ``lax.conv_general_dilated`` with a filter of ones.

    A pair of axes (h, h') moves together: its window reads
    :math:`x[h + d, h' + d]`. After padding both axes to P entries, the pair
    is flattened to one axis of length :math:`P^2`, where the offset (d, d) is
    the offset :math:`d (P + 1)`: a one-dimensional window of the filter's
    size with dilation P + 1 (the padding keeps it from wrapping from one row
    to the next). Output position (o, o') is then entry
    :math:`(s o) P + s o'` of that axis, for stride s. A single axis is an
    ordinary window with stride s. The other axes are the convolution's batch.

    Args:
      x: the array (real or complex).
      dims: as in :func:`window_average`.
      padding: ``'SAME'`` or ``'VALID'``.

    Returns:
      :math:`\sum_{d} x[o \cdot s + d - lo]` on every listed axis, zero where
      an index falls in the padding.
    """
    if jnp.iscomplexobj(x):
        return lax.complex(window_sum_as_conv(jnp.real(x), dims, padding),
                           window_sum_as_conv(jnp.imag(x), dims, padding))
    listed = [a for axes, _, _ in dims for a in axes]
    rest = [a for a in range(x.ndim) if a not in listed]
    moved = jnp.transpose(x, rest + listed)
    batch_shape = tuple(x.shape[a] for a in rest)
    config = [(0, 0, 0)] * len(rest)
    flat, dilation, strides, geometry = [], [], [], []
    for axes, window, stride in dims:
        size = x.shape[axes[0]]
        out, lo, _ = pad_amounts(size, window, stride, padding)
        full = stride * (out - 1) + window  # the padded length the windows cover (a negative pad crops)
        config += [(lo, full - size - lo, 0)] * len(axes)
        if len(axes) == 2:
            flat.append(full * full)
            dilation.append(full + 1)
            strides.append(1)
        else:
            flat.append(full)
            dilation.append(1)
            strides.append(stride)
        geometry.append((len(axes), window, stride, out, full))
    moved = lax.pad(moved, jnp.zeros((), x.dtype), config)
    lhs = moved.reshape((math.prod(batch_shape), 1) + tuple(flat))
    rhs = jnp.ones((1, 1) + tuple(g[1] for g in geometry), x.dtype)
    y = lax.conv_general_dilated(lhs, rhs, tuple(strides), "VALID", rhs_dilation=tuple(dilation))[:, 0]
    shape = []
    for i, (n_axes, window, stride, out, full) in enumerate(geometry):
        if n_axes == 2:
            # Stride-1 entries r P + c, r, c < full - window + 1; keep r, c multiples of the stride.
            rows = full - window + 1
            pads = [(0, 0)] * y.ndim
            pads[1 + i] = (0, rows * full - y.shape[1 + i])
            y = jnp.pad(y, pads)
            y = y.reshape(y.shape[:1 + i] + (rows, full) + y.shape[2 + i:])
            index = [slice(None)] * y.ndim
            index[1 + i] = slice(None, None, stride)
            index[2 + i] = slice(None, rows, stride)
            y = y[tuple(index)]
            y = y.reshape(y.shape[:1 + i] + (out * out,) + y.shape[3 + i:])
            shape += [out, out]
        else:
            shape.append(out)
    y = y.reshape(batch_shape + tuple(shape))
    return jnp.transpose(y, np.argsort(rest + listed))


def circular_pad(x, dims):
    """Pad ``x`` periodically so that a ``'VALID'`` window op gives ``'CIRCULAR'`` padding.

    Each listed axis gets the low and high pad amounts of ``'SAME'`` padding,
    filled with the entries from the other end of the axis (``numpy.pad``'s
    ``'wrap'`` mode), as neural-tangents defines ``Padding.CIRCULAR``. A
    window then reads input position ``(o * stride + d - lo) mod size``.

    Args:
      x: the array.
      dims: one ``(axes, window, stride)`` per spatial dimension, as in
        :func:`window_average`; every axis of a pair is padded (the two
        positions of a covariance both wrap around).
    """
    pads = [(0, 0)] * x.ndim
    for axes, window, stride in dims:
        for axis in axes:
            _, lo, hi = pad_amounts(x.shape[axis], window, stride, "SAME")
            pads[axis] = (lo, hi)
    return jnp.pad(x, pads, mode="wrap")


def circular_window_average(x, dims):
    r""":func:`window_average` with periodic (``'CIRCULAR'``) padding.

    :math:`\frac{1}{\prod w}\sum_{d} x[(o \cdot s + d - lo) \bmod n]` on every
    listed axis (the same offset d for both axes of a pair), so the window
    slides along the diagonal of (h, h') and wraps around the image: no
    position sees padding, and a circular shift of the input shifts the output.
    """
    return window_average(circular_pad(x, dims), dims, "VALID")


def circular_pool_matrix(size: int, window: int, stride: int) -> np.ndarray:
    """Matrix P (out x size) of average pooling with periodic padding.

    Row o averages the inputs ``(o * stride + d - lo) mod size``, d = 0..window-1,
    with the output size and ``lo`` of ``'SAME'`` padding; every window is
    full, so no edge normalisation arises.
    """
    out, lo, _ = pad_amounts(size, window, stride, "SAME")
    p = np.zeros((out, size))
    for o in range(out):
        np.add.at(p[o], (o * stride - lo + np.arange(window)) % size, 1.0 / window)
    return p


def conv_pair_axes(x, axis: int, window: int, stride: int, padding: str):
    """Average ``x[..., i + d, j + d, ...]`` over filter offsets d on the pair (axis, axis + 1).

    This is the covariance of a convolution's output at positions (o, o') with
    a filter shared across positions: the same offset applies to both members
    of the pair, so the window slides along the diagonal of (o, o'). Zero
    padding contributes zeros; the average divides by the full filter size,
    as the finite layer's fan-in does. (:func:`window_average` does all
    spatial dimensions at once.)
    """
    return window_average(x, [((axis, axis + 1), window, stride)], padding)


def pool_matrix(size: int, window: int, stride: int, padding: str, normalize_edges: bool) -> np.ndarray:
    """Matrix P (out x size) with ``pooled = P @ x`` along one spatial axis."""
    out, lo, _ = pad_amounts(size, window, stride, padding)
    p = np.zeros((out, size))
    for o in range(out):
        start = o * stride - lo
        idx = [i for i in range(start, start + window) if 0 <= i < size]
        p[o, idx] = 1.0 / (len(idx) if normalize_edges else window)
    return p


def pool_pair_axes(x, axis: int, p: np.ndarray, q: np.ndarray = None):
    """Apply P on the first axis of a pair and Q (default P) on the second: ``K -> P K Q^T``."""
    q = p if q is None else q
    x = jnp.moveaxis(jnp.tensordot(jnp.asarray(p, dtype=x.dtype), x, axes=([1], [axis])), 0, axis)
    x = jnp.moveaxis(jnp.tensordot(jnp.asarray(q, dtype=x.dtype), x, axes=([1], [axis + 1])), 0, axis + 1)
    return x


def interleave_ones(var, spatial_ndim: int, left: bool, batch_pair: bool, diagonal: bool = False):
    """Reshape per-position variances ``(n, S1, S2, ...)`` so that they broadcast
    against a kernel.

    For a cross kernel (``batch_pair=True``, shape ``(n1, n2, S1, S1', ...)``)
    the left factor is ``(n1, 1, S1, 1, ...)`` and the right one
    ``(1, n2, 1, S1', ...)``; for a self kernel ``(n, S1, S1', ...)`` they are
    ``(n, S1, 1, ...)`` and ``(n, 1, S1', ...)``. With ``diagonal`` (kernels
    of equal positions only) the spatial axes stay as they are.
    """
    n = var.shape[0]
    spatial = var.shape[1:]
    shape = ([n, 1] if left else [1, n]) if batch_pair else [n]
    for s in spatial:
        shape += [s] if diagonal else ([s, 1] if left else [1, s])
    return var.reshape(shape)


def map_kernel(k: Kernel, fn: Callable[[Any, int], Any], ntk_too: bool = True) -> Kernel:
    """Apply a linear map ``fn(array, batch_ndim)`` to every covariance in k.

    ``fn`` must be linear with real coefficients: the NNGP and NTK go through
    it together as one complex array (:func:`ntkcourse.engine.linear_pair`).
    """
    if ntk_too:
        nngp, ntk = linear_pair(lambda x: fn(x, 2), k.nngp, k.ntk)
    else:
        nngp, ntk = fn(k.nngp, 2), k.ntk
    return k.replace(
        nngp=nngp,
        ntk=ntk,
        cov1=fn(k.cov1, 1),
        cov2=None if k.cov2 is None else fn(k.cov2, 1),
    )


def permute_spatial(k: Kernel, perm) -> Kernel:
    """``k`` with its spatial axes reordered: spatial axis ``j`` of the result
    is spatial axis ``perm[j]`` of ``k`` (both positions of a pair move
    together; ``shape1``/``shape2`` follow).
    """
    perm = tuple(perm)
    if perm == tuple(range(len(perm))):
        return k

    def move(x, batch_ndim):
        if x is None:
            return None
        if k.diagonal_spatial:
            order = [batch_ndim + p for p in perm]
        else:
            order = [batch_ndim + 2 * p + e for p in perm for e in (0, 1)]
        return jnp.transpose(x, tuple(range(batch_ndim)) + tuple(order))

    def shape(s):
        return (s[0],) + tuple(s[1 + p] for p in perm) + (s[-1],)

    return k.replace(nngp=move(k.nngp, 2), ntk=move(k.ntk, 2), cov1=move(k.cov1, 1), cov2=move(k.cov2, 1),
                     shape1=shape(k.shape1), shape2=shape(k.shape2))


def conv_relayout(k: Kernel, dimension_numbers) -> Kernel:
    """The output kernel of a convolution in its output spec's layout: the
    spatial axes in the order of the output spec's letters (as
    neural-tangents' ``Kernel.transpose``) and ``layout`` its batch and
    channel axes.
    """
    _, (batch_axis, channel_axis) = conv_layouts(dimension_numbers)
    k = permute_spatial(k, spatial_permutation(dimension_numbers))
    return k.replace(layout=layout_value(batch_axis, channel_axis, len(k.shape1)))


def window_step_mask(where: str, mask, window_shape, strides, padding: str):
    """The real positions of the output of a window op (convolution, pooling)
    on padded inputs, from those of its input ``mask`` (``(batch, *spatial)``,
    ``True`` at real positions, one spatial axis per window axis): an output
    position is padding when its window is centred (rounding down) on a
    padded position, as neural-tangents' ``_pool_mask``. ``'CIRCULAR'``
    padding has the geometry of ``'SAME'`` here (neural-tangents' ``Conv``
    masks it so: its windows wrap around, their centres do not).

    Raises:
      ValueError: the window has not one axis per spatial axis of the mask,
        naming the layer.
    """
    if len(window_shape) != mask.ndim - 1:
        raise ValueError(
            f"{where}: padded inputs (kernel_fn(..., mask_constant=...)) have masks over {mask.ndim - 1} spatial "
            f"axes, but the window has shape {tuple(window_shape)}."
        )
    geometry = "SAME" if padding == "CIRCULAR" else padding
    index = [slice(None)]
    for i, (window, stride) in enumerate(zip(window_shape, strides)):
        out, lo, _ = pad_amounts(mask.shape[1 + i], window, stride, geometry)
        start = (window - 1) // 2 - lo
        index.append(slice(start, start + 1 + (out - 1) * stride, stride))
    return mask[tuple(index)]
