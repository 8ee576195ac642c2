"""Kernels of large input sets, computed block by block within a memory bound.

``batch(kernel_fn, batch_size)`` returns a function with the signature of
``kernel_fn`` that splits ``x1`` and ``x2`` into blocks of at most
``batch_size`` inputs, computes the kernel of each pair of blocks, and writes
it into a result held in host memory (NumPy). Only the blocks in flight live
on the accelerator: one pair per device. With several JAX devices (GPUs, or
CPU devices made with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``)
the blocks are dealt out to the devices in turn and computed concurrently.

For ``x2=None`` the kernel is symmetric: only the blocks on and above the
diagonal are computed, the others are their transposes. This mirrors
``neural_tangents.batch`` (Novak et al. 2020) for the layers of
:mod:`ntkcourse.stax`.
"""
from __future__ import annotations

import itertools
from typing import Callable, Optional

import jax
import numpy as np

from .engine.outputs import host_array
from .progress import progress_bar

__all__ = ["batch"]


def _blocks(n: int, size: int):
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def _transpose_pairs(block: np.ndarray) -> np.ndarray:
    """Kernel of (x2, x1) from the kernel of (x1, x2): swap the batch axes and
    the two members of every spatial pair.
    """
    axes = list(range(block.ndim))
    for i in range(0, block.ndim, 2):
        axes[i], axes[i + 1] = axes[i + 1], axes[i]
    return np.transpose(block, axes)


def batch(
    kernel_fn: Callable,
    batch_size: int = 0,
    device_count: int = -1,
    store_on_device: bool = False,
    progress: Optional[bool] = None,
) -> Callable:
    """Wrap ``kernel_fn`` to compute it over blocks of ``batch_size`` inputs.

    Args:
      kernel_fn: a ``kernel_fn`` of :mod:`ntkcourse.stax`
        (``kernel_fn(x1, x2, get, **kwargs)``), or an empirical kernel function
        of :mod:`ntkcourse.empirical` (``ntk_fn(x1, x2, params, **kwargs)``,
        ``kernel_fn(x1, x2, get, params, **kwargs)``), as neural-tangents'
        ``nt.batch`` accepts.
      batch_size: the largest number of inputs of x1 (and of x2) in one block;
        ``0`` (the default, as in neural-tangents) for no splitting. Memory on
        the device is about that of one ``batch_size x batch_size`` kernel per
        device (times the spatial pairs for CNNs).
      device_count: how many JAX devices to use; ``-1`` for all, ``0`` for
        the default device only (neural-tangents' "no parallelism").
      store_on_device: kept for neural-tangents compatibility; results are
        always assembled in host memory, which is what bounds device memory.
      progress: a progress bar over the blocks: ``None`` (default) shows it
        only on a terminal and for runs longer than 2 s, ``True`` always,
        ``False`` never (see ``ntkcourse.progress``).

    Returns:
      ``batched_kernel_fn(x1, x2=None, *args, **kwargs)``, called as
      ``kernel_fn`` is, returning NumPy arrays (or a named tuple of them)
      equal to ``kernel_fn``'s.
    """
    if not callable(kernel_fn):
        raise TypeError(f"batch: `kernel_fn` must be callable, got {type(kernel_fn).__name__}.")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 0:
        raise ValueError(f"batch: `batch_size` must be an integer >= 0 (0: no splitting), got {batch_size!r}.")
    available = jax.devices()
    if device_count == -1:
        devices = available
    elif isinstance(device_count, (int, np.integer)) and not isinstance(device_count, bool) and device_count == 0:
        devices = available[:1]
    elif isinstance(device_count, (int, np.integer)) and 1 <= device_count <= len(available):
        devices = available[:device_count]
    else:
        raise ValueError(
            f"batch: `device_count` must be -1 (all), 0 (the default device) or between 1 and {len(available)} "
            f"(the devices present), got {device_count!r}."
        )
    del store_on_device
    # Infinite-width kernel functions compute in float64 whatever the JAX mode: give them float64
    # blocks. Empirical ones (marked by ntkcourse.empirical) take the inputs in the current mode's
    # dtype, as when called directly.
    infinite_width = not getattr(kernel_fn, "empirical", False)

    def batched_kernel_fn(x1, x2=None, *args, **kwargs):
        if infinite_width and (not args or args[0] is None) and kwargs.get("get") is None:
            raise ValueError("batch: `get` must name the kernels to compute ('nngp', 'ntk' or both).")
        x1 = np.asarray(x1)
        symmetric = x2 is None
        x2_ = x1 if symmetric else np.asarray(x2)
        if x1.ndim < 2 or x1.shape[0] == 0:
            raise ValueError(f"batch: `x1` must have a non-empty batch axis, got shape {x1.shape}.")
        if x2_.ndim < 2 or x2_.shape[0] == 0:
            raise ValueError(f"batch: `x2` must have a non-empty batch axis, got shape {x2_.shape}.")
        layout = getattr(getattr(kernel_fn, "spec", None), "input_layout", None)
        if layout is not None and layout[0] % x1.ndim != 0:
            # Blocks are cut along axis 0 (neural-tangents' batch has the same limit).
            raise ValueError(f"batch: the network takes inputs with the batch axis at {layout[0]}; batching "
                             "cuts blocks along axis 0: move the batch axis first (and name it so in the layers).")
        patterns = _pattern_pair(kwargs.pop("pattern", None), symmetric)
        size = batch_size or max(x1.shape[0], x2_.shape[0])
        rows, cols = _blocks(x1.shape[0], size), _blocks(x2_.shape[0], size)
        pairs = [(i, j) for i in range(len(rows)) for j in range(len(cols)) if not symmetric or i <= j]

        outputs = {}
        fields = []
        bar = progress_bar(len(pairs), "kernel blocks", "block", progress)

        def launch(pair, device):
            i, j = pair
            (r0, r1), (c0, c1) = rows[i], cols[j]
            with jax.enable_x64(infinite_width or jax.config.jax_enable_x64):
                a = jax.device_put(x1[r0:r1], device)
                b = None if (symmetric and i == j) else jax.device_put(x2_[c0:c1], device)
            extra = {}
            if patterns is not None:
                # Each block's graphs: the rows of x1's and x2's patterns (neural-tangents' batching of `pattern`).
                p1, p2 = patterns
                extra["pattern"] = (p1[r0:r1], None if b is None else p2[c0:c1])
            return kernel_fn(a, b, *args, **kwargs, **extra)

        def store(pair, result):
            i, j = pair
            (r0, r1), (c0, c1) = rows[i], cols[j]
            if not fields:
                fields.extend(getattr(result, "_fields", None) or [None])
            for name in fields:
                block = np.asarray(result if name is None else getattr(result, name))
                if name not in outputs:
                    outputs[name] = np.empty((x1.shape[0], x2_.shape[0]) + block.shape[2:], block.dtype)
                outputs[name][r0:r1, c0:c1] = block
                if symmetric and i != j:
                    outputs[name][c0:c1, r0:r1] = _transpose_pairs(block)

        # One block per device in flight: launches are asynchronous, so the
        # devices compute concurrently while the host copies earlier results.
        try:
            for group in _chunks(pairs, len(devices)):
                launched = [(pair, launch(pair, dev)) for pair, dev in zip(group, devices)]
                for pair, result in launched:
                    store(pair, result)
                    bar.update(1)
        finally:
            bar.close()
        if fields == [None]:
            return host_array(outputs[None])
        from collections import namedtuple

        return namedtuple("Kernel", fields)(*(host_array(outputs[n]) for n in fields))

    batched_kernel_fn.devices = tuple(devices)
    return batched_kernel_fn


def _pattern_pair(pattern, symmetric: bool):
    """``kernel_fn``'s ``pattern`` (graph inputs, :func:`ntkcourse.stax.Aggregate`)
    as a pair of arrays to cut into blocks, or ``None``.
    """
    if pattern is None:
        return None
    if isinstance(pattern, (tuple, list)) and len(pattern) == 2:
        p1, p2 = pattern
        if p1 is None and p2 is None:
            return None
        if symmetric and p2 is None:
            p2 = p1
    elif symmetric:
        p1 = p2 = pattern
    else:
        raise ValueError("batch: with `x2` given, `pattern` must be a pair (pattern1, pattern2), one for x1 and one "
                         f"for x2; got a single {type(pattern).__name__}.")
    if p1 is None or p2 is None:
        raise ValueError("batch: `pattern` gives the graph of one of x1 and x2 but not of the other; give both.")
    return np.asarray(p1), np.asarray(p2)


def _chunks(seq, size):
    it = iter(seq)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk
