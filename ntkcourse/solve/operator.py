"""The kernel matrix as a linear operator ``v ↦ K v``, held or computed block by block.

Conjugate gradient needs only products ``K v`` and, for its preconditioner, a
few columns ``K[:, S]``. :func:`kernel_operator` gives both without ever
holding ``K`` whole when it does not fit:

* ``store="hold"``: the rows this process owns are computed once, block by
  block, and kept in host memory (``n²/P`` numbers for ``P`` processes);
  a product is then one BLAS pass over them. Fastest when it fits.
* ``store="stream"``: nothing is kept; every product recomputes the row
  blocks from ``kernel_fn`` (memory: one block of rows, ``block_size × n``).
  Each product then costs a whole kernel evaluation.
* ``store="auto"`` (default): ``"hold"`` when the held rows fit in the
  memory budget of :mod:`ntkcourse.engine.plan`, else ``"stream"``.

A kernel matrix already in memory is wrapped with :func:`matrix_operator`.
Row blocks are dealt out to processes (:mod:`ntkcourse.solve.processes`) and,
within a process, to its JAX devices in turn, as :func:`ntkcourse.batching.batch`
does (Novak et al. 2020 spread blocks over the devices of one host).
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import jax
import numpy as np

from .. import validation
from ..progress import progress_bar
from ..engine import ExecutionPlan, KernelMemoryError, default_plan
from .processes import gather_blocks, owned_blocks

__all__ = ["KernelOperator", "kernel_operator", "matrix_operator", "NotPositiveDefiniteError"]

_BYTES = 8  # float64


class NotPositiveDefiniteError(ValueError):
    """The kernel (plus ridge) is not positive (semi-)definite: it cannot be a kernel matrix."""


class KernelOperator:
    """``K`` of ``n`` training points: products ``matvec(v) = K v`` and columns ``columns(S) = K[:, S]``.

    Attributes:
      n: the number of rows (training points).
      store: ``"matrix"``, ``"hold"`` or ``"stream"``.
      held_bytes: host memory this process holds for ``K``.
      block_devices: for each block this process computed, the id of the JAX device that did.
    """

    def __init__(self, n, rows_fn, store, block_size, held_bytes=0, progress=None):
        self.n = n
        self.store = store
        self.block_size = block_size
        self.held_bytes = held_bytes
        self._rows_fn = rows_fn          # (block index, v (n, k)) -> rows of K v
        self._columns_fn = None
        self._progress = progress
        self.rows = [(s, min(s + block_size, n)) for s in range(0, n, block_size)]
        self.matvecs = 0
        self.block_devices = {}          # block index -> id of the JAX device that computed it last

    def matvec(self, v) -> np.ndarray:
        """``K v`` for ``v`` of shape ``(n,)`` or ``(n, k)``, in every process."""
        v = np.asarray(v, dtype=np.float64)
        vec = v.ndim == 1
        v2 = v[:, None] if vec else v
        if v2.shape[0] != self.n:
            raise validation.fail("KernelOperator.matvec", "v", f"an array with {self.n} rows", v.shape)
        mine = owned_blocks(len(self.rows))
        local = [self._rows_fn(i, v2) for i in mine]
        self.matvecs += 1
        out = gather_blocks(local, len(self.rows), self.rows)
        return out[:, 0] if vec else out

    def columns(self, index) -> np.ndarray:
        """``K[:, index]`` of shape ``(n, len(index))``, in every process."""
        index = np.asarray(index)
        mine = owned_blocks(len(self.rows))
        local = [self._columns_fn(i, index) for i in mine]
        return gather_blocks(local, len(self.rows), self.rows)


def matrix_operator(k) -> KernelOperator:
    """A :class:`KernelOperator` over a kernel matrix ``k`` (n, n) already in memory.

    ``k`` is checked to be square, finite and symmetric to ``√ε·max|K|``
    (the rule of :func:`ntkcourse.spectral.as_kernel_matrix`), block by block,
    with no ``n × n`` temporary; a negative diagonal entry means it is not
    PSD and raises :class:`NotPositiveDefiniteError`.
    """
    k = np.asarray(k)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] == 0:
        raise validation.fail("matrix_operator", "k", "a non-empty square kernel matrix (n, n)", k.shape)
    if not np.issubdtype(k.dtype, np.floating):
        k = k.astype(np.float64)
    n = k.shape[0]
    eps = float(np.finfo(k.dtype).eps)
    block = max(1, min(n, 2**22 // n))
    scale = max(float(np.max(np.abs(k[r:r + block]))) for r in range(0, n, block))
    for r in range(0, n, block):
        part = k[r:r + block]
        if not np.all(np.isfinite(part)):
            raise validation.fail("matrix_operator", "k", "a finite kernel matrix", "a matrix with NaN or inf")
        asym = float(np.max(np.abs(part - k[:, r:r + block].T)))
        if asym > math.sqrt(eps) * scale:
            raise ValueError(f"matrix_operator: `k` is not symmetric: max|K − Kᵀ| ≥ {asym:.3g}, more than "
                             f"√ε·max|K| = {math.sqrt(eps) * scale:.3g}; expected a kernel matrix k(X, X).")
    diag = np.diagonal(k)
    if np.min(diag) < 0:
        i = int(np.argmin(diag))
        raise NotPositiveDefiniteError(f"matrix_operator: `k` is not positive semi-definite: its diagonal entry "
                                       f"K[{i}, {i}] = {diag[i]:.3g} is negative.")
    op = KernelOperator(n, None, "matrix", block_size=n)
    op.rows = [(0, n)]
    op._rows_fn = lambda i, v: np.asarray(k @ v, dtype=np.float64)
    op._columns_fn = lambda i, index: np.asarray(k[:, index], dtype=np.float64)
    op.held_bytes = k.nbytes
    return op


def _devices():
    return jax.local_devices()


def kernel_operator(
    kernel_fn: Callable,
    x,
    get: str = "ntk",
    *,
    store: str = "auto",
    block_size: int = 1024,
    plan: Optional[ExecutionPlan] = None,
    progress: Optional[bool] = None,
    **kernel_kwargs,
) -> KernelOperator:
    """The kernel ``k(x, x)`` of a ``kernel_fn`` as a :class:`KernelOperator`, by blocks of rows.

    Block ``i`` (rows ``x[i·b : (i+1)·b]``) is ``kernel_fn(x[rows], x, get)``;
    process ``p`` of ``P`` owns blocks ``i ≡ p (mod P)`` and deals them to its
    local devices in turn.

    Args:
      kernel_fn: a ``kernel_fn`` of :mod:`ntkcourse.stax`.
      x: training inputs, ``(n, ...)``.
      get: ``"ntk"`` or ``"nngp"``.
      store: ``"auto"``, ``"hold"`` or ``"stream"`` (module docstring).
      block_size: rows per block ``b``; memory for one block is ``b·n·8`` bytes.
      plan: whose ``memory_budget`` bounds what is held (default: the
        engine's default plan: ``NTKCOURSE_MEMORY_BUDGET`` or half the
        available memory).
      progress: bar over the blocks when holding (policy of ``ntkcourse.progress``).
      **kernel_kwargs: passed to ``kernel_fn``.

    Raises:
      KernelMemoryError: ``store="hold"`` and this process's rows exceed the
        budget, or one block of rows alone exceeds it (the message says how
        much is needed and how to change budget or ``block_size``).
    """
    where = "kernel_operator"
    validation.callable_arg(where, "kernel_fn", kernel_fn)
    get = validation.one_of(where, "get", get, ("ntk", "nngp"))
    store = validation.one_of(where, "store", store, ("auto", "hold", "stream"))
    block_size = validation.positive_int(where, "block_size", block_size)
    if plan is not None and not isinstance(plan, ExecutionPlan):
        raise validation.fail(where, "plan", "an ExecutionPlan or None", plan)
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise validation.fail(where, "x", "an array of inputs (n, ...) with n >= 1", x.shape)
    n = x.shape[0]
    b = min(block_size, n)
    rows = [(s, min(s + b, n)) for s in range(0, n, b)]
    mine = owned_blocks(len(rows))
    budget = (plan or default_plan()).budget_bytes()
    held = sum(rows[i][1] - rows[i][0] for i in mine) * n * _BYTES
    one_block = b * n * _BYTES
    advice = ("pass plan=ExecutionPlan(memory_budget=...), use `ntkcourse.engine.execution_plan(memory_budget=...)` "
              "or set NTKCOURSE_MEMORY_BUDGET")
    if one_block > budget:
        raise KernelMemoryError(
            f"{where}: one block of {b} rows of the {n} x {n} kernel takes {one_block / 1e9:.3g} GB, more than the "
            f"memory budget of {budget / 1e9:.3g} GB; choose block_size <= {max(1, budget // (n * _BYTES))} or "
            f"{advice}.")
    if store == "hold" and held > budget:
        raise KernelMemoryError(
            f"{where}: holding this process's {held // (n * _BYTES)} rows of the {n} x {n} kernel takes "
            f"{held / 1e9:.3g} GB, more than the memory budget of {budget / 1e9:.3g} GB; use store='stream' (every "
            f"product recomputes the kernel), more processes, or {advice} to at least {math.ceil(held / 1e9)} GB.")
    if store == "auto":
        store = "hold" if held <= budget else "stream"
    devices = _devices()

    def compute(i, cols=None):
        # Every block has b rows (the last one overlaps its neighbour), so one compiled program serves all.
        r0, r1 = rows[i]
        start = min(r0, n - b)
        dev = devices[(i // jax.process_count()) % len(devices)]
        op.block_devices[i] = dev.id
        with jax.enable_x64(True):
            a = jax.device_put(x[start:start + b], dev)
            c = jax.device_put(x if cols is None else x[cols], dev)
            return kernel_fn(a, c, get, **kernel_kwargs)[r0 - start:]

    def computed_rows(blocks):
        # One block per device in flight: launches are asynchronous, so devices compute concurrently.
        for start in range(0, len(blocks), len(devices)):
            group = blocks[start:start + len(devices)]
            for i, result in [(i, compute(i)) for i in group]:
                yield i, np.asarray(result, dtype=np.float64)

    op = KernelOperator(n, None, store, b, progress=progress)
    if store == "hold":
        held_rows = {}
        bar = progress_bar(len(mine), "kernel rows", "block", progress)
        try:
            for i, block in computed_rows(mine):
                held_rows[i] = block
                bar.update(1)
        finally:
            bar.close()
        op._rows_fn = lambda i, v: held_rows[i] @ v
        op._columns_fn = lambda i, index: held_rows[i][:, index]
        op.held_bytes = held
    else:
        pending = []

        def stream_rows(i, v):
            # A product asks for this process's blocks in order; each group of
            # one block per device is computed when reached and then dropped.
            if i == mine[0]:
                pending[:] = [computed_rows(mine)]
            j, block = next(pending[0])
            assert j == i
            return block @ v

        op._rows_fn = stream_rows
        op._columns_fn = lambda i, index: np.asarray(compute(i, index), dtype=np.float64)
    return op
