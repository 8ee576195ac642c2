"""Kernels of image inputs block by block, within a memory budget.

A convolutional kernel holds, for every pair of inputs, the covariance
between every pair of spatial positions: ``(H W)^2`` numbers per pair, and
its intermediates several times that. For more than a few dozen images the
whole computation does not fit in memory at once, so the inputs are cut into
blocks of ``b`` images and the network's kernel is computed for one pair of
blocks at a time, into output arrays held in host memory:

* the block size keeps the largest kernel array of a block near the plan's
  ``cache_bytes`` (blocks that stay in cache are several times faster), and
  is reduced until the memory XLA reports for the compiled block
  (``memory_analysis``) fits the plan's memory budget, so the limit holds
  whatever the network;
* for ``K(x, x)`` only the blocks on and above the diagonal are computed;
  the others are their transposes (with the members of each spatial pair
  swapped);
* the last block is padded with copies of a real input, so that every block
  has one shape and one compiled program (the padding is discarded);
* the next block is dispatched before the last one is copied out, so XLA
  computes while the host copies.

If the outputs alone, or one block of a single pair of inputs, do not fit the
budget, :class:`KernelMemoryError` says how much is needed and how to change
the budget.
"""
from __future__ import annotations

import logging
import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ..progress import progress_bar
from ..kernel import Kernel
from .host import aligned_empty, to_device
from .plan import ExecutionPlan
from .tiles import transpose_pair_axes

__all__ = ["KernelMemoryError", "blocked_kernel", "footprint"]

_log = logging.getLogger(__name__)

# Blocks larger than this gain nothing in speed (the work per entry is the
# same), and smaller blocks keep the first touch of fresh memory cheap.
_MAX_BLOCK_BYTES = 2 * 10**9  # a ceiling on one block, whatever the budget


class KernelMemoryError(MemoryError):
    """The kernel cannot be computed within the memory budget."""


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB"


def _advice(needed: float) -> str:
    return (
        f"raise the budget to at least {_gb(needed)}: kernel_fn(..., plan=ExecutionPlan(memory_budget='"
        f"{math.ceil(needed / 1e9)}GB')), `with ntkcourse.engine.execution_plan(memory_budget=...)`, or the "
        "environment variable NTKCOURSE_MEMORY_BUDGET"
    )


def footprint(compiled) -> Optional[int]:
    """Bytes a compiled XLA program needs (arguments, outputs, temporaries), or
    ``None`` where the backend does not report it.
    """
    try:
        m = compiled.memory_analysis()
    except Exception:  # pragma: no cover - backends without the analysis
        return None
    if m is None:  # pragma: no cover
        return None
    alias = getattr(m, "alias_size_in_bytes", 0) or 0
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - alias)


def _pad_rows(x, rows: int):
    """``x`` with its batch axis padded to ``rows`` by repeating its last input."""
    missing = rows - x.shape[0]
    if missing <= 0:
        return x
    return jnp.concatenate([x, jnp.repeat(x[-1:], missing, axis=0)], axis=0)


def _parts(k: Kernel, compute_ntk: bool):
    """(nngp, ntk or None) of a block's result as NumPy arrays."""
    if k.ntk is None and jnp.iscomplexobj(k.nngp):
        z = np.asarray(k.nngp)
        return z.real, z.imag
    return np.asarray(k.nngp), (np.asarray(k.ntk) if compute_ntk else None)


def _layout(tree):
    """The shapes and types of the arrays of a pytree, in order."""
    return [(leaf.shape, leaf.dtype) for leaf in jax.tree_util.tree_leaves(tree)]


class _Chain:
    """The input stage and the network's stages, compiled for one block shape.

    A stage whose output has the layout of its input (same arrays, shapes and
    types) runs as its donating variant when one is given: its output is
    written into the memory of its input, which no one reads again. Each
    block would otherwise take fresh memory for every intermediate, and the
    operating system's first touch of those pages (page faults, zeroing) cost
    as much as a third of the time on all 1797 digits (system time 96 s of
    232 s of CPU, 2-core machine); with donation the page faults of a
    256-digit CNN-GAP kernel fell from 1.0-1.9 million to under 11,000 and
    its time from 3.9-4.2 s to 2.2-2.5 s (real-time priority, one process
    after the other).
    """

    def __init__(self, input_stage, stages, a, b, statics, donating_stages=None):
        self.input = input_stage.lower(a, b, **statics).compile()
        k = input_stage.eval_shape(a, b, **statics)
        self.stages = []
        for i, stage in enumerate(stages):
            out = stage.eval_shape(k)
            if donating_stages is not None and _layout(out) == _layout(k):
                stage = donating_stages[i]
            self.stages.append(stage.lower(k).compile())
            k = out
        self.out = k

    def footprint(self) -> Optional[int]:
        sizes = [footprint(c) for c in [self.input, *self.stages]]
        return None if any(v is None for v in sizes) else max(sizes)

    def __call__(self, a, b):
        k = self.input(a, b)
        for stage in self.stages:
            k = stage(k)
        return k


def _widest_per_pair(input_stage, stages, a, b, statics) -> int:
    k = input_stage.eval_shape(a, b, **statics)
    sizes = []
    for stage in [None, *stages]:
        if stage is not None:
            k = stage.eval_shape(k)
        for leaf in jax.tree_util.tree_leaves(k):
            if len(leaf.shape) >= 2:
                sizes.append(math.prod(leaf.shape[2:]))
    return max(sizes + [1])


def blocked_kernel(
    input_stage: Callable,
    stages,
    x1,
    x2,
    compute_ntk: bool,
    dtype,
    diagonal_spatial: bool,
    plan: ExecutionPlan,
    progress: Optional[bool] = None,
    donating_stages=None,
) -> Kernel:
    """The network's kernel of ``x1`` and ``x2`` (``None``: x1) block by block.

    Args:
      input_stage: the jitted ``(x1, x2, compute_ntk, dtype,
        diagonal_spatial) -> Kernel`` of the inputs (the input kernel,
        possibly followed by the network's first maps in the same program).
      stages: the jitted maps ``Kernel -> Kernel`` whose composition with
        ``input_stage`` is the network (with the NNGP and NTK packed as one
        complex array where they have the same shape); each is run as its
        own program, so that its output is stored once.
      x1, x2: JAX arrays of inputs, ``x2`` may be ``None``.
      plan: the execution plan (memory budget, optional fixed block size).
      progress: show a progress bar (``None``: the package's default).
      donating_stages: ``stages`` compiled with their input donated
        (``jax.jit(..., donate_argnums=0)``), used where a stage's output has
        its input's layout (see :class:`_Chain`); ``None``: never donate.
    """
    n1 = x1.shape[0]
    symmetric = x2 is None
    n2 = n1 if symmetric else x2.shape[0]
    x2_ = x1 if symmetric else x2
    budget = plan.budget_bytes()
    statics = dict(compute_ntk=compute_ntk, dtype=dtype, diagonal_spatial=diagonal_spatial)

    def chain_for(b, self_block=False):
        a = jax.ShapeDtypeStruct((b,) + x1.shape[1:], x1.dtype)
        c = None if self_block else jax.ShapeDtypeStruct((b,) + x2_.shape[1:], x2_.dtype)
        return _Chain(input_stage, stages, a, c, statics, donating_stages)

    def run_whole():
        k = input_stage(x1, x2, **statics)
        for stage in stages:
            k = stage(k)
        return k

    # Shapes of one pair's result: what the outputs will hold per pair.
    def pair_shapes(a, c):
        k = input_stage.eval_shape(a, c, **statics)
        for stage in stages:
            k = stage.eval_shape(k)
        return k

    try:
        k = pair_shapes(x1[:1], x2_[:1])
    except ValueError:
        # A layer refusing its input: let it see (and name) the caller's shapes, not the one-row probe.
        pair_shapes(x1, x2_)
        raise
    if not isinstance(k, Kernel):
        return run_whole()  # several branches: kernel_fn reports it
    per_pair = k.nngp.shape[2:]
    itemsize = jnp.dtype(dtype).itemsize
    out_bytes = n1 * n2 * math.prod(per_pair) * itemsize * (2 if compute_ntk else 1)
    if out_bytes > budget:
        raise KernelMemoryError(
            f"kernel_fn: the output kernels alone take {_gb(out_bytes)} ({n1} x {n2} inputs, {per_pair or 'no'} "
            f"spatial entries per pair, {'NNGP and NTK' if compute_ntk else 'one kernel'}), more than the memory "
            f"budget of {_gb(budget)}. Read the network out with Flatten or GlobalAvgPool, ask for "
            f"diagonal_spatial=True, compute fewer inputs at a time, or {_advice(out_bytes * 1.2)}."
        )
    room = min(budget - out_bytes, _MAX_BLOCK_BYTES)

    # The largest kernel array any stage holds per pair of inputs.
    widest = _widest_per_pair(input_stage, stages, x1[:1], x2_[:1], statics)
    if plan.block_size is not None:
        b = min(plan.block_size, max(n1, n2))
    else:
        b = max(1, math.isqrt(int(plan.cache_bytes // (widest * 2 * itemsize))))
        b = min(b, max(n1, n2))
    if b >= n1 and b >= n2:
        # One block would hold every pair: compile the chain for the inputs' own shapes, and run that same
        # compiled chain when it fits, rather than compiling a (b, b) chain only to read its footprint and then
        # the same work again through jit (twice the compilation of a small kernel's first call).
        whole = _Chain(input_stage, stages, jax.ShapeDtypeStruct(x1.shape, x1.dtype),
                       None if symmetric else jax.ShapeDtypeStruct(x2.shape, x2.dtype), statics, donating_stages)
        need = whole.footprint()
        if need is None or need <= room:
            _log.debug("one block of %d x %d inputs (%s, budget %s)", n1, n2, _gb(need or 0), _gb(budget),
                       extra={"block_size": max(n1, n2)})
            return whole(x1, x2)
        b = max(1, int(b * 0.8 * math.sqrt(room / need)))
    cross = chain_for(b)
    need = cross.footprint()
    while need is not None and need > room and b > 1:
        b = max(1, int(b * 0.8 * math.sqrt(room / need)))
        cross = chain_for(b)
        need = cross.footprint()
    if need is not None and need > budget - out_bytes:
        raise KernelMemoryError(
            f"kernel_fn: one block of {b} x {b} inputs needs {_gb(need)} besides the outputs' {_gb(out_bytes)}, "
            f"more than the memory budget of {_gb(budget)}; {_advice(need + out_bytes)}."
        )

    _log.debug("blocks of %d inputs (%s per block, budget %s)", b, _gb(need or 0), _gb(budget),
               extra={"block_size": b})
    if b >= n1 and b >= n2:
        return run_whole()
    own = chain_for(b, self_block=True) if symmetric else None

    rows = [slice(s, min(s + b, n1)) for s in range(0, n1, b)]
    cols = rows if symmetric else [slice(s, min(s + b, n2)) for s in range(0, n2, b)]
    pairs = [(i, j) for i in range(len(rows)) for j in range(len(cols)) if not symmetric or i <= j]
    blocks1 = [_pad_rows(x1[r], b) for r in rows]
    blocks2 = blocks1 if symmetric else [_pad_rows(x2[c], b) for c in cols]

    nngp = aligned_empty((n1, n2) + per_pair, np.dtype(dtype))
    ntk = aligned_empty((n1, n2) + per_pair, np.dtype(dtype)) if compute_ntk else None
    cov1, cov2 = [None] * len(rows), [None] * len(cols)
    mask1, mask2 = [None] * len(rows), [None] * len(cols)  # padded sequences' masks, as kernel_fn's whole call

    def dispatch(pair):
        i, j = pair
        if symmetric and i == j:
            return own(blocks1[i], None)
        return cross(blocks1[i], blocks2[j])

    def store(pair, k):
        i, j = pair
        r, c = rows[i], cols[j]
        nr, nc = r.stop - r.start, c.stop - c.start
        parts = _parts(k, compute_ntk)
        for out, part in zip((nngp, ntk), parts):
            if out is None:
                continue
            out[r, c] = part[:nr, :nc]
            if symmetric and i != j:
                out[c, r] = transpose_pair_axes(part[:nr, :nc], diagonal_spatial)
        if cov1[i] is None:
            cov1[i] = np.asarray(k.cov1)[:nr]
            mask1[i] = None if k.mask1 is None else np.asarray(k.mask1)[:nr]
        if not symmetric and cov2[j] is None:
            cov2[j] = np.asarray(k.cov2)[:nc]
            mask2[j] = None if k.mask2 is None else np.asarray(k.mask2)[:nc]
        return k

    bar = progress_bar(len(pairs), "kernel blocks", "block", progress)
    first = None
    try:
        pending = dispatch(pairs[0])
        for t, pair in enumerate(pairs):
            k = pending
            if t + 1 < len(pairs):
                pending = dispatch(pairs[t + 1])
            first = first or k
            store(pair, k)
            bar.update(1)
    finally:
        bar.close()
    shape1 = (n1,) + tuple(first.shape1[1:])
    shape2 = (n2,) + tuple(first.shape2[1:])
    device = next(iter(x1.devices()))
    return Kernel(
        to_device(nngp, device),
        None if ntk is None else to_device(ntk, device),
        jnp.asarray(np.concatenate(cov1)),
        None if symmetric else jnp.asarray(np.concatenate(cov2)),
        shape1,
        shape2,
        first.is_gaussian,
        first.diagonal_spatial,
        mask1=None if mask1[0] is None else jnp.asarray(np.concatenate(mask1)),
        mask2=None if symmetric or mask2[0] is None else jnp.asarray(np.concatenate(mask2)),
        layout=first.layout,
    )
