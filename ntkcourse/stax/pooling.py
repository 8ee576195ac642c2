r"""Sum pooling (neural-tangents' ``SumPool`` and ``GlobalSumPool``).

A sum over a window of ``m`` positions is ``m`` times their average, so its
kernels are :math:`m^2` times those of :func:`~ntkcourse.stax.AvgPool` (with
zeros padded at the edges, ``normalize_edges=False``) and of
:func:`~ntkcourse.stax.GlobalAvgPool`, with ``m`` the window size or the
number of positions (Novak et al. 2019, 2020).

Padded inputs (``mask_constant``), as neural-tangents: ``SumPool`` keeps
``AvgPool``'s masks; ``GlobalSumPool`` sums over the real positions (padded
ones are zero), in ``kernel_fn`` and ``apply_fn``.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

from .. import validation
from ..kernel import Kernel
from .conv_specs import check_layout
from .layer import kernel_map_of, layer, layer_spec
from .layers import (AvgPool, GlobalAvgPool, global_pool_axes, global_pool_layout, masked_global_pool,
                     masked_step_pool, same_layouts)
from .masked import MaskedActivations
from .spatial import map_kernel, window_step_mask

__all__ = ["SumPool", "GlobalSumPool"]


def _scaled(where: str, avg, size_of, config, kernel_size_of=None, mask_fn=None, global_axes=None,
            finite_layouts=None):
    """The triple of ``avg`` with outputs times ``size_of(input_shape)`` and kernels times its square
    (``kernel_size_of(k.shape1)``, the same size from the kernel's batch-first, channels-last shape;
    default ``size_of``). ``mask_fn``: that of a window pool (see :func:`ntkcourse.stax.layer`);
    ``global_axes``: ``(batch_axis, channel_axis)`` of a global sum, which reads masks itself;
    ``finite_layouts``: that of a window pool (see :func:`ntkcourse.stax.layer`).
    """
    kernel_size_of = size_of if kernel_size_of is None else kernel_size_of
    init_avg, apply_avg, _ = avg
    avg_map = kernel_map_of(avg)
    spec = layer_spec(avg)

    def apply_fn(params, inputs, **kwargs):
        if isinstance(inputs, MaskedActivations):  # a global sum (a window pool's layer() passes it the values)
            axes = global_pool_axes(where, inputs.values.ndim, *global_axes)
            return masked_step_pool(where, inputs, axes, average=False)
        return apply_avg(params, inputs, **kwargs) * size_of(inputs.shape)

    def kernel_map(k: Kernel) -> Kernel:
        if k.is_masked:  # a global sum
            check_layout(where, k, *global_axes)
            return masked_global_pool(k, average=False).replace(layout=global_pool_layout(len(k.shape1),
                                                                                          *global_axes))
        factor = float(kernel_size_of(k.shape1)) ** 2
        return map_kernel(avg_map(k), lambda x, batch_ndim: factor * x)

    return layer(init_avg, apply_fn, kernel_map, where, config, input_diagonal=spec.input_diagonal,
                 reads_neighbours=True, input_layout=spec.input_layout, mask_fn=mask_fn,
                 handles_masks=global_axes is not None, finite_layouts=finite_layouts)


def SumPool(window_shape: Sequence[int], strides: Optional[Sequence[int]] = None, padding: str = "VALID",
            batch_axis: int = 0, channel_axis: int = -1):
    r"""Sum over spatial windows (NHWC by default), zeros padded with ``'SAME'``.

    Kernel: :math:`m^2` times :func:`AvgPool`'s, with :math:`m = \prod` ``window_shape``.
    ``batch_axis``, ``channel_axis`` as in :func:`AvgPool`.
    """
    window_shape = validation.int_tuple("SumPool", "window_shape", window_shape)
    size = math.prod(window_shape)
    avg = AvgPool(window_shape, strides, padding, normalize_edges=False, batch_axis=batch_axis,
                  channel_axis=channel_axis)
    config = dict(layer_spec(avg).config)
    config.pop("normalize_edges")

    def mask_fn(mask):
        return window_step_mask("SumPool", mask, window_shape, config["strides"], config["padding"])

    return _scaled("SumPool", avg, lambda shape: size, config, mask_fn=mask_fn,
                   finite_layouts=same_layouts(batch_axis, channel_axis))


def GlobalSumPool(batch_axis: int = 0, channel_axis: int = -1):
    r"""Sum over all spatial positions: ``(n, H, W, C) -> (n, C)``.

    Kernel: :math:`(HW)^2` times :func:`GlobalAvgPool`'s. ``batch_axis`` and
    ``channel_axis`` as in :func:`GlobalAvgPool`.
    """
    avg = GlobalAvgPool(batch_axis, channel_axis)

    def size_of(shape):
        return math.prod(shape[i] for i in global_pool_axes("GlobalSumPool", len(shape), batch_axis, channel_axis))

    return _scaled("GlobalSumPool", avg, size_of, dict(layer_spec(avg).config),
                   kernel_size_of=lambda shape: math.prod(shape[1:-1]), global_axes=(batch_axis, channel_axis))
