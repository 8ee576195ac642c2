"""``K(x, x)`` of flat inputs tile by tile, using its symmetry.

The kernel of x against itself is symmetric, so for T tiles of inputs only
the T (T + 1) / 2 tiles on and above the diagonal are computed: 5/8 of the
work for T = 4. Two runners: one all in XLA (traced inputs, accelerators),
and one for concrete inputs on the CPU whose input Gram is computed by BLAS
on the host (see :mod:`ntkcourse.engine.host`).
"""
from __future__ import annotations

import concurrent.futures
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..kernel import Kernel
from .host import aligned_empty, host_gram_tiles, scatter_tile, to_device

__all__ = ["tile_bounds", "transpose_pair_axes", "symmetric_tiles", "symmetric_tiles_host"]


def tile_bounds(n: int, tile: int):
    """Slices cutting ``n`` inputs into ``ceil(n / tile)`` tiles of near-equal size."""
    n_tiles = -(-n // tile)
    bounds = np.linspace(0, n, n_tiles + 1).astype(int)
    return [slice(int(bounds[i]), int(bounds[i + 1])) for i in range(n_tiles)]


def transpose_pair_axes(a, diagonal_spatial: bool = False):
    """Kernel of (x2, x1) from that of (x1, x2): swap the batch axes and the
    members of every spatial pair (only the batch axes when the spatial axes
    hold diagonals).
    """
    axes = list(range(a.ndim))
    for i in [0] if diagonal_spatial else range(0, a.ndim - 1, 2):
        axes[i], axes[i + 1] = axes[i + 1], axes[i]
    return (jnp if isinstance(a, jax.Array) else np).transpose(a, axes)


@functools.partial(jax.jit, static_argnames=("n_tiles", "packed"))
def _assemble(blocks, n_tiles, packed):
    def full(get_part):
        rows = []
        for i in range(n_tiles):
            row = [
                get_part(blocks[(i, j)]) if i <= j else transpose_pair_axes(get_part(blocks[(j, i)]))
                for j in range(n_tiles)
            ]
            rows.append(jnp.concatenate(row, axis=1))
        return jnp.concatenate(rows, axis=0)

    if packed:
        return full(lambda b: jnp.real(b[0])), full(lambda b: jnp.imag(b[0]))
    has_ntk = blocks[(0, 0)][1] is not None
    return full(lambda b: b[0]), (full(lambda b: b[1]) if has_ntk else None)


def _is_packed(k) -> bool:
    return isinstance(k, Kernel) and k.ntk is None and jnp.iscomplexobj(k.nngp)


def symmetric_tiles(from_inputs, x1, tile: int, compute_ntk: bool, dtype) -> Kernel:
    """``K(x1, x1)`` from the upper tiles, each computed by ``from_inputs(a, b)``
    (``b=None`` on the diagonal) and assembled by one jitted concatenation.
    """
    n = np.shape(x1)[0]
    spans = tile_bounds(n, tile)
    tiles = [x1[s] for s in spans]
    blocks, covs, packed, first = {}, [], False, None
    for i in range(len(spans)):
        for j in range(i, len(spans)):
            k = from_inputs(tiles[i], None if i == j else tiles[j], compute_ntk, dtype)
            if not isinstance(k, Kernel):
                return k  # several branches: kernel_fn reports it
            packed = _is_packed(k)
            blocks[(i, j)] = (k.nngp, k.ntk)
            if i == j:
                covs.append(k.cov1)
                first = first or k
    nngp, ntk = _assemble(blocks, len(spans), packed)
    full_shape = (n,) + tuple(first.shape1[1:])
    return Kernel(nngp, ntk, jnp.concatenate(covs), None, full_shape, full_shape, first.is_gaussian,
                  layout=first.layout)


def symmetric_tiles_host(from_gram_tile, x1, a: np.ndarray, tile: int, compute_ntk: bool) -> Kernel:
    """:func:`symmetric_tiles` for flat inputs on the host (``a``, the NumPy
    view of ``x1``).

    Two phases:

    1. The upper tiles of the input Gram ``a a^T`` are computed by BLAS, one
       single-threaded call per tile, a tile per core
       (:func:`ntkcourse.engine.host.host_gram_tiles`), into a host buffer that
       will hold the NNGP. (Multi-threaded BLAS leaves its worker threads
       spinning for a while after each call, which slows the XLA work that
       follows by up to 2x.)
    2. XLA computes each tile's network kernel from its Gram tile
       (``from_gram_tile(gram, sq_norms, i0, j0, rows, cols, channels,
       compute_ntk)``, reading the Gram in place); as soon as a tile is done
       it is copied, with its transpose below the diagonal, into the output
       buffers while XLA works on the next one. The NNGP tile overwrites the
       Gram tile it came from, which no tile reads again (tiles read only the
       Gram on and above the diagonal).

    The buffers become the output arrays without a further copy.
    """
    n, channels = a.shape
    device = next(iter(x1.devices()))
    spans = tile_bounds(n, tile)
    pairs = [(spans[i], spans[j]) for i in range(len(spans)) for j in range(i, len(spans))]
    sq_norms = np.einsum("nc,nc->n", a, a)
    nngp_out = host_gram_tiles(a, pairs, sq_norms)
    gram = to_device(nngp_out, device)
    sq_norms_dev = jax.device_put(sq_norms, device)
    outs = [nngp_out] + ([aligned_empty((n, n), a.dtype)] if compute_ntk else [])

    def dispatch(pair):
        ri, rj = pair
        rows, cols = ri.stop - ri.start, rj.stop - rj.start
        return from_gram_tile(gram, sq_norms_dev, ri.start, rj.start, rows, cols, channels, compute_ntk)

    def parts_of(k):
        if _is_packed(k):
            z = np.asarray(k.nngp)
            return (z.real, z.imag)
        return (np.asarray(k.nngp),) + ((np.asarray(k.ntk),) if compute_ntk else ())

    covs, first = [], None
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        pending = dispatch(pairs[0])
        for t, (ri, rj) in enumerate(pairs):
            k = pending
            if not isinstance(k, Kernel):
                return k  # several branches: kernel_fn reports it
            if t + 1 < len(pairs):
                pending = dispatch(pairs[t + 1])
            first = first or k
            if ri == rj:
                covs.append(k.cov1)
            parts = parts_of(k)
            half = (ri.stop - ri.start + 1) // 2
            # NumPy releases the GIL while copying: two threads, half a tile each.
            list(pool.map(lambda rows: scatter_tile(outs, parts, ri, rj, *rows),
                          [(0, half), (half, ri.stop - ri.start)]))
        gram = k = pending = None  # release the device buffers before the outputs are handed over
    nngp = to_device(outs[0], device)
    ntk = to_device(outs[1], device) if compute_ntk else None
    return Kernel(nngp, ntk, jnp.concatenate(covs), None, (n, channels), (n, channels), first.is_gaussian,
                  layout=first.layout)
