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

from .engine.kernel_fn import _same_inputs
from .engine.outputs import host_array
from .engine.tiles import transpose_pair_axes
from .kernel import Kernel
from .progress import progress_bar

__all__ = ["batch"]


def _blocks(n: int, size: int):
    return [(start, min(start + size, n)) for start in range(0, n, size)]


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
        get = kwargs.get("get", args[0] if args else None)
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
        assembly = _Assembly(x1.shape[0], x2_.shape[0], symmetric, get, bool(kwargs.get("diagonal_spatial", False)))
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

        # One block per device in flight: launches are asynchronous, so the
        # devices compute concurrently while the host copies earlier results.
        try:
            for group in _chunks(pairs, len(devices)):
                launched = [(pair, launch(pair, dev)) for pair, dev in zip(group, devices)]
                for (i, j), result in launched:
                    assembly.store(i, j, rows[i], cols[j], result)
                    bar.update(1)
        finally:
            bar.close()
        same = symmetric or (patterns is None and _same_inputs(x1, x2_) is True)
        return assembly.result(same)

    batched_kernel_fn.devices = tuple(devices)
    return batched_kernel_fn


# How the parts of a kernel (neural-tangents' Kernel fields) are put together from the blocks' parts.
_BY_PAIR = ("nngp", "ntk")          # (n1, n2, ...): one tile per pair of blocks
_BY_ROW = ("cov1", "mask1")         # (n1, ...): from one block of each row
_BY_COLUMN = ("cov2", "mask2")      # (n2, ...): from one block of each column; None for x2 = None
_PER_KERNEL = ("nngp", "ntk", "cov1", "cov2", "mask1", "mask2", "shape1", "shape2", "is_gaussian",
               "diagonal_spatial", "layout", "is_input")  # the fields of a whole Kernel that batch assembles


class _Assembly:
    """The result of a batched call, filled block by block (:meth:`store`), in host memory.

    A block's result is an array (named by ``get``: a tile of ``nngp``/``ntk``,
    or the named part), a named tuple of parts, or a whole
    :class:`~ntkcourse.kernel.Kernel` (``get=None``). Kernels are tiled;
    ``cov1``/``mask1`` are taken from the first block of each row of blocks
    computed, ``cov2``/``mask2`` from the first row (``None`` when x2 is
    ``None``, as ``kernel_fn`` gives); ``shape1``/``shape2`` get the whole
    batch sizes; the other parts are the same in every block; ``x1_is_x2`` is
    the test of the whole inputs.
    """

    def __init__(self, n1: int, n2: int, symmetric: bool, get, diagonal_spatial: bool):
        self.n1, self.n2, self.symmetric = n1, n2, symmetric
        self.diagonal_spatial = diagonal_spatial  # the tiles' spatial axes hold diagonals, not pairs
        self.single = get if isinstance(get, str) else None
        self.kind = None  # "array", "tuple" or "kernel", from the first block
        self.names: list[str] = []
        self.parts: dict = {}
        self.pieces: dict[str, dict] = {name: {} for name in _BY_ROW + _BY_COLUMN}

    def store(self, i: int, j: int, row: tuple, col: tuple, result) -> None:
        if self.kind is None:
            if isinstance(result, Kernel):
                self.kind, self.names = "kernel", list(_PER_KERNEL)
                self.diagonal_spatial = bool(result.diagonal_spatial)
            elif hasattr(result, "_fields"):
                self.kind, self.names = "tuple", list(result._fields)
            else:
                self.kind, self.names = "array", [self.single or "nngp"]
        for name in self.names:
            value = result if self.kind == "array" else getattr(result, name)
            if name == "x1_is_x2":
                continue  # the test of the whole inputs (result)
            if name in _BY_PAIR:
                self._tile(name, value, i, j, row, col)
            elif name in _BY_ROW:
                if j == (i if self.symmetric else 0) and value is not None:
                    self.pieces[name][row[0]] = np.asarray(value)
            elif name in _BY_COLUMN:
                if not self.symmetric and i == 0 and value is not None:
                    self.pieces[name][col[0]] = np.asarray(value)
            elif name in ("shape1", "shape2"):
                n = self.n1 if name == "shape1" else self.n2
                self.parts.setdefault(name, (n,) + tuple(value[1:]))
            else:
                self.parts.setdefault(name, value)

    def _tile(self, name, value, i, j, row, col):
        if value is None:
            self.parts[name] = None
            return
        block = np.asarray(value)
        if name not in self.parts:
            self.parts[name] = np.empty((self.n1, self.n2) + block.shape[2:], block.dtype)
        (r0, r1), (c0, c1) = row, col
        self.parts[name][r0:r1, c0:c1] = block
        if self.symmetric and i != j:
            self.parts[name][c0:c1, r0:r1] = transpose_pair_axes(block, self.diagonal_spatial)

    def _value(self, name, same):
        if name == "x1_is_x2":
            return same
        if name in self.pieces:
            pieces = self.pieces[name]
            return host_array(np.concatenate([pieces[k] for k in sorted(pieces)])) if pieces else None
        value = self.parts.get(name)
        return host_array(value) if isinstance(value, np.ndarray) else value

    def result(self, same: bool):
        values = {name: self._value(name, same) for name in self.names}
        if self.kind == "kernel":
            return Kernel(**values, same_inputs=False if self.symmetric else same)
        if self.kind == "tuple":
            from collections import namedtuple

            return namedtuple("Kernel", self.names)(*values.values())
        return values[self.names[0]]


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
