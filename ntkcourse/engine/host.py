"""Host (NumPy) side of the fast path for flat inputs on the CPU.

For a fully connected network most of the work is the input Gram ``x x^T``;
on the CPU, NumPy's BLAS computes it as fast as XLA's dot or faster, in half
the operations for ``x x^T`` (``syrk``), and into a buffer that becomes the
output without a copy. These helpers compute Gram matrices and tiles on the
host, hand host buffers to JAX without copying, and copy finished tiles into
the outputs.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import os
from typing import Optional

import jax
import numpy as np

__all__ = ["host_inputs", "host_gram", "aligned_empty", "scatter_tile", "single_threaded_blas",
           "host_gram_tiles", "to_device"]


def host_inputs(x1, x2, originals=(None, None)):
    """Flat inputs as host (NumPy) arrays for :func:`host_gram`, or None.

    On CPU, NumPy's matrix product (OpenBLAS, with the symmetric ``syrk``
    routine for ``x @ x.T``) is as fast as XLA's float64 dot or faster (1.7x
    on one machine measured, equal on an AVX-512 one), computes ``x x^T`` in
    half the operations, and writes into a buffer that can become the output;
    for a fully connected network this product is most of the work. So
    concrete (not traced) flat inputs that live on one CPU device have their
    input kernel computed by NumPy; anything else (traced, spatial, on an
    accelerator) by XLA. ``originals`` are the arrays the caller passed: a
    NumPy array already of the right type is used as it is, without a copy
    back from JAX.
    """
    arrays = [x1] if x2 is None else [x1, x2]
    for x in arrays:
        if isinstance(x, jax.core.Tracer) or x.ndim != 2:
            return None
        devices = x.devices()
        if len(devices) != 1 or next(iter(devices)).platform != "cpu":
            return None
    def host(x, original):
        if isinstance(original, np.ndarray) and original.dtype == x.dtype and original.flags.c_contiguous:
            return original
        return np.asarray(x)

    return [None if x is None else host(x, o) for x, o in zip((x1, x2), originals)]


def host_gram(a: np.ndarray, b: Optional[np.ndarray]):
    """``(nngp, cov1, cov2)`` of the input layer for host arrays (``b=None``:
    a against itself, with the diagonal set to ``cov1`` exactly as in
    :func:`ntkcourse.engine.inputs.input_kernel`).
    """
    other = a if b is None else b
    channels = a.shape[-1]
    cov1 = np.einsum("nc,nc->n", a, a) / channels
    gram = np.matmul(a, other.T, out=aligned_empty((a.shape[0], other.shape[0]), a.dtype))
    gram /= channels
    if b is None:
        np.fill_diagonal(gram, cov1)
        return gram, cov1, None
    return gram, cov1, np.einsum("nc,nc->n", b, b) / channels


def aligned_empty(shape, dtype, align: int = 64) -> np.ndarray:
    """An uninitialised C-contiguous array whose data is ``align``-byte aligned,
    so that JAX can take it over without a copy (``jax.dlpack.from_dlpack``).
    """
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(size + align, np.uint8)
    offset = (-raw.ctypes.data) % align
    return raw[offset : offset + size].view(dtype).reshape(shape)


def scatter_tile(outs, parts, ri: slice, rj: slice, lo: int, hi: int, rows: int = 32):
    """Rows ``lo:hi`` of each tile ``parts[p]`` into ``outs[p][ri, rj]`` and, for a
    tile off the diagonal, their transpose into ``outs[p][rj, ri]``.

    Strip by strip of ``rows`` rows, every output written from the same strip
    while it is in cache: each tile is read from memory once, and a
    transposed strip is written in cache-sized pieces.
    """
    for r0 in range(lo, hi, rows):
        r1 = min(r0 + rows, hi)
        dst = slice(ri.start + r0, ri.start + r1)
        for out, part in zip(outs, parts):
            strip = part[r0:r1]
            out[dst, rj] = strip
            if ri != rj:
                out[rj, dst] = strip.T


@contextlib.contextmanager
def single_threaded_blas():
    """BLAS limited to one thread per call inside the block (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a declared dependency
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def host_gram_tiles(a: np.ndarray, pairs, sq_norms: np.ndarray) -> np.ndarray:
    """The tiles ``(ri, rj)`` of ``a a^T`` (undivided) in a new aligned n x n
    buffer; the other entries are left unset. Diagonal tiles get ``sq_norms``
    on their diagonal exactly (the same numbers as the input variances).

    One single-threaded BLAS call per tile, as many tiles at once as there are
    cores: as fast as multi-threaded BLAS on these sizes, and without its
    spinning worker threads, which would slow the XLA computation that follows.
    """
    n = a.shape[0]
    out = aligned_empty((n, n), a.dtype)

    def one(pair):
        ri, rj = pair
        block = out[ri, rj]
        np.matmul(a[ri], a[rj].T, out=block)  # a[ri] @ a[ri].T: NumPy uses syrk
        if ri == rj:
            np.fill_diagonal(block, sq_norms[ri])

    workers = max(1, min(len(pairs), os.cpu_count() or 1))
    with single_threaded_blas(), concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, pairs))
    return out


def to_device(a: np.ndarray, device):
    """A host array as a JAX array on ``device``, without a copy where JAX can alias it."""
    if a.flags.c_contiguous and a.ctypes.data % 64 == 0:
        return jax.device_put(jax.dlpack.from_dlpack(a), device)
    return jax.device_put(a, device)
