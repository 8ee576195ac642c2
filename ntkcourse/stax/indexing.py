r"""Indexing the activations (neural-tangents' ``Index`` and its helper ``Slice``).

``Index(idx)`` applies ``x[idx]`` to the finite network's activations, as
NumPy indexing. For the kernels, an index on a spatial axis selects the same
positions on both of the kernel's position axes of that axis (and an integer
removes both), so ``K(x, p; x', p')`` becomes ``K(x, idx(p); x', idx(p'))``:
the kernel of the selected positions is a sub-array of the kernel of all of
them. Any layout (``batch_axis``, ``channel_axis``). Indexing the channel
axis is refused in the kernel (the channels are infinitely many, as in
neural-tangents), and so is indexing the batch axis:
this package computes kernels in blocks of inputs, so select the inputs
before calling ``kernel_fn`` (``x[::2]``); ``apply_fn`` accepts any index.
Padded inputs (``mask_constant``): the masks of the selected positions
follow, as in neural-tangents.
"""
from __future__ import annotations

import numpy as np

from .conv_specs import axis_arg, check_layout
from .layer import layer

__all__ = ["Index", "Slice"]


class _SliceMaker:
    """``Slice[1:3, ..., 0]`` returns the index ``(slice(1, 3), Ellipsis, 0)``."""

    def __getitem__(self, idx):
        return idx


Slice = _SliceMaker()


def _entries(idx, where: str = "Index"):
    """The index as a tuple, its entries checked: slices, integers, at most one ``...``."""
    entries = idx if isinstance(idx, tuple) else (idx,)
    for e in entries:
        if not (e is Ellipsis or isinstance(e, slice) or (isinstance(e, (int, np.integer))
                                                            and not isinstance(e, bool))):
            raise TypeError(f"{where}: `idx` may hold only slices, integers and `...` (build it with stax.Slice[...]), "
                            f"got {e!r} in {idx!r}.")
    if sum(e is Ellipsis for e in entries) > 1:
        raise ValueError(f"{where}: `idx` may hold at most one `...`, got {idx!r}.")
    return entries


def _expand(idx, ndim: int, where: str = "Index"):
    """The index as a tuple of ``ndim`` slices or integers (Ellipsis expanded)."""
    entries = _entries(idx, where)
    if Ellipsis in entries:
        i = entries.index(Ellipsis)
        fill = ndim - (len(entries) - 1)
        entries = entries[:i] + (slice(None),) * fill + entries[i + 1:]
    if len(entries) > ndim:
        raise ValueError(f"{where}: `idx` {idx!r} has {len(entries)} entries for activations with {ndim} axes.")
    return tuple(entries) + (slice(None),) * (ndim - len(entries))


def _is_all(e):
    return isinstance(e, slice) and e == slice(None)


def Index(idx, batch_axis: int = 0, channel_axis: int = -1):
    """``x[idx]`` (NumPy indexing; build ``idx`` with ``stax.Slice[...]``); see the module docstring.

    ``batch_axis``, ``channel_axis`` (neural-tangents' arguments): where the
    activations keep those axes (any layout, for ``kernel_fn`` too); ``idx``
    indexes the activations in that layout. An integer that removes a
    spatial axis moves the batch and channel axes after it one place down,
    as the activations' shape says.
    """
    batch_axis = axis_arg("Index", "batch_axis", batch_axis)
    channel_axis = axis_arg("Index", "channel_axis", channel_axis)
    _entries(idx)  # the entries now; their number against the activations' axes once the shape is known

    def shape_after(shape):
        full = _expand(idx, len(shape))
        return np.empty(tuple(shape), dtype=np.bool_)[full].shape

    def init_fn(key, input_shape):
        return shape_after(input_shape), ()

    def apply_fn(params, x, **kwargs):
        return x[_expand(idx, x.ndim)]

    def axes(ndim):
        b, c = batch_axis % ndim, channel_axis % ndim
        if b == c:
            raise ValueError(f"Index: `batch_axis` and `channel_axis` must differ, got {batch_axis} and "
                             f"{channel_axis} for activations with {ndim} axes.")
        return b, c

    def spatial_entries(ndim):
        """The index's entries on the spatial axes, in the activations' (and the kernel's) order."""
        b, c = axes(ndim)
        return tuple(e for a, e in enumerate(_expand(idx, ndim)) if a not in (b, c))

    def kernel_map(k):
        ndim = len(k.shape1)
        check_layout("Index", k, batch_axis, channel_axis)
        full = _expand(idx, ndim)
        b, c = axes(ndim)
        if not _is_all(full[c]):
            raise NotImplementedError(f"Index: indexing the channel axis ({full[c]!r} in {idx!r}) is not "
                                      "possible in the kernel: the channels are infinitely many.")
        if not _is_all(full[b]):
            raise NotImplementedError(
                f"Index: indexing the batch axis ({full[b]!r} in {idx!r}) is not implemented in kernel_fn (the "
                "kernel is computed in blocks of inputs); select the inputs before calling kernel_fn, e.g. "
                "kernel_fn(x1[::2], x2[::2]).")
        if all(_is_all(e) for e in full):
            return k
        # The Kernel indexes as the activations in its layout: the same entry on both positions of each
        # spatial pair, shapes and layout after the removed axes (neural-tangents' Kernel.__getitem__).
        return k[full]

    def mask_fn(mask):
        # Padded inputs: the masks ((n, *spatial)) of the selected positions.
        return mask[(slice(None),) + spatial_entries(mask.ndim + 1)]

    return layer(init_fn, apply_fn, kernel_map, "Index", {"idx": idx, "batch_axis": batch_axis,
                                                          "channel_axis": channel_axis},
                 mask_fn=mask_fn, input_layout=(batch_axis, channel_axis))
