r"""Resizing images (neural-tangents' ``ImageResize``, after ``jax.image.resize``).

``jax.image.resize`` with ``"linear"`` or ``"nearest"`` is linear and
separable: along each resized spatial axis the output is :math:`y = M x` for
a matrix :math:`M` fixed by the two sizes, the method and ``antialias``. The
kernel between two resized activations is then
:math:`K'(p_1, p_2) = \sum_{a, b} M_{p_1 a} M_{p_2 b} K(a, b)` on each axis,
which is the same resize applied to both position axes of the kernel
(neural-tangents computes it the same way). The NTK transforms alike (no
parameters).

Padded inputs (``mask_constant``): an output position is padding only when
every input position that contributes to it is padding (neural-tangents'
rule), and the layer's map runs with padded positions zero.

Refused with the reason: resizing the channel axis (no infinite-width
limit), resizing the batch axis (each output would mix the inputs of a
batch; kernels here are computed in blocks of inputs), and, in ``kernel_fn``
only, the methods other than linear and nearest (as neural-tangents).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from .. import validation
from .conv_specs import axis_arg, check_layout
from .layer import layer

__all__ = ["ImageResize"]

_KERNEL_METHODS = (jax.image.ResizeMethod.LINEAR, jax.image.ResizeMethod.NEAREST)


def ImageResize(shape: Sequence[int], method, antialias: bool = True,
                precision=jax.lax.Precision.HIGHEST, batch_axis: int = 0, channel_axis: int = -1):
    """Resize the activations to ``shape`` (``-1`` keeps an axis), as ``jax.image.resize``.

    ``shape`` lists every axis of the activations in their layout, batch and
    channels included (``batch_axis``, ``channel_axis``: where the
    activations keep them, any layout); both must be ``-1``. ``method``: a
    ``jax.image.ResizeMethod`` or its name; ``kernel_fn`` supports
    ``"linear"`` and ``"nearest"``.
    """
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise validation.fail("ImageResize", "shape", "a sequence of integers (-1 keeps an axis)", shape) from None
    if any(s < 1 and s != -1 for s in shape):
        raise validation.fail("ImageResize", "shape", "positive sizes or -1", shape)
    try:
        resize_method = (method if isinstance(method, jax.image.ResizeMethod)
                         else jax.image.ResizeMethod.from_string(method))
    except (ValueError, AttributeError, TypeError):
        raise validation.fail("ImageResize", "method", "a jax.image.ResizeMethod or its name ('linear', "
                              "'nearest', 'cubic', 'lanczos3', 'lanczos5')", method) from None
    batch_axis = axis_arg("ImageResize", "batch_axis", batch_axis)
    channel_axis = axis_arg("ImageResize", "channel_axis", channel_axis)
    ndim = len(shape)
    if not -ndim <= batch_axis < ndim or not -ndim <= channel_axis < ndim or batch_axis % ndim == channel_axis % ndim:
        raise ValueError(f"ImageResize: `batch_axis`={batch_axis} and `channel_axis`={channel_axis} must be two "
                         f"different axes of the {ndim} that `shape` {shape} lists.")
    b, c = batch_axis % ndim, channel_axis % ndim
    if shape[c] != -1:
        raise ValueError(f"ImageResize: resizing the channel axis has no infinite-width limit; set shape[{c}] = -1 "
                         f"(channel_axis), got shape={shape}.")
    if shape[b] != -1:
        raise NotImplementedError(f"ImageResize: resizing the batch axis mixes the inputs of a batch; not "
                                  f"implemented (set shape[{b}] = -1, batch_axis), got shape={shape}.")
    spatial_sizes = tuple(n for a, n in enumerate(shape) if a not in (b, c))  # the activations' spatial order
    resizes_space = any(n != -1 for n in spatial_sizes)

    def out_shape(input_shape):
        if len(input_shape) != len(shape):
            raise ValueError(f"ImageResize: `shape` {shape} has {len(shape)} entries for inputs with "
                             f"{len(input_shape)} axes {tuple(input_shape)}.")
        return tuple(int(n) if s == -1 else s for s, n in zip(shape, input_shape))

    def resize(x, new_shape):
        return jax.image.resize(x, new_shape, method=resize_method, antialias=antialias, precision=precision)

    def init_fn(key, input_shape):
        return out_shape(input_shape), ()

    def apply_fn(params, inputs, **kwargs):
        return resize(inputs, out_shape(inputs.shape))

    def kernel_spatial(kernel_shape):
        """The output's spatial sizes from a kernel's shape (batch first, channels last, spatial axes in the
        activations' order).
        """
        if len(kernel_shape) != ndim:
            raise ValueError(f"ImageResize: `shape` {shape} has {ndim} entries for inputs with "
                             f"{len(kernel_shape)} axes.")
        return tuple(int(n) if s == -1 else s for s, n in zip(spatial_sizes, kernel_shape[1:-1]))

    def kernel_map(k):
        if resize_method not in _KERNEL_METHODS:
            raise NotImplementedError(f"ImageResize: kernel_fn supports only the methods 'linear' and 'nearest' "
                                      f"(as neural-tangents), got {resize_method}.")
        check_layout("ImageResize", k, batch_axis, channel_axis)
        spatial1, spatial2 = kernel_spatial(k.shape1), kernel_spatial(k.shape2)
        if not resizes_space:
            return k
        shape1 = (k.shape1[0],) + spatial1 + (k.shape1[-1],)
        shape2 = (k.shape2[0],) + spatial2 + (k.shape2[-1],)

        def pair_shape(batch, left, right):
            return batch + tuple(n for a, b in zip(left, right) for n in (a, b))

        def apply(cov, batch, left, right):
            return None if cov is None else resize(cov, pair_shape(batch, left, right))

        n1, n2 = k.nngp.shape[:2]
        return k.replace(
            nngp=apply(k.nngp, (n1, n2), spatial1, spatial2), ntk=apply(k.ntk, (n1, n2), spatial1, spatial2),
            cov1=apply(k.cov1, (k.cov1.shape[0],), spatial1, spatial1),
            cov2=None if k.cov2 is None else apply(k.cov2, (k.cov2.shape[0],), spatial2, spatial2),
            shape1=shape1, shape2=shape2)

    def input_diagonal(output_diagonal):
        # Resizing mixes positions: the diagonal of the output needs every pair of input positions.
        return False if resizes_space else output_diagonal

    def mask_fn(mask):
        # Padded inputs: an output position is real when any real input position contributes to it
        # (neural-tangents' rule, "content over mask": the real positions resized, rounded up to True).
        if not resizes_space:
            return mask
        real = resize(mask.astype(jnp.float32), (mask.shape[0],) + kernel_spatial(mask.shape + (1,)))
        return real != 0

    return layer(init_fn, apply_fn, kernel_map, "ImageResize",
                 {"shape": shape, "method": resize_method, "antialias": antialias, "batch_axis": batch_axis,
                  "channel_axis": channel_axis},
                 input_diagonal=input_diagonal, reads_neighbours=resizes_space, mask_fn=mask_fn,
                 input_layout=(batch_axis, channel_axis))
