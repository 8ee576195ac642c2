r"""Layers that define a finite network and its infinite-width kernels at once.

Every layer is a triple ``(init_fn, apply_fn, kernel_fn)``:

* ``init_fn(key, input_shape) -> (output_shape, params)`` draws parameters;
* ``apply_fn(params, x) -> y`` runs the finite network;
* ``kernel_fn(x1, x2=None, get=None)`` returns the NNGP and NTK of the same
  network in the limit of infinite width (channels), computed in float64.

The API, the argument names and defaults, the parameterisations and the kernel
values follow ``neural_tangents.stax`` (Novak et al. 2020), so that a user of
that library can switch by changing the import. Conventions (as there):

* inputs are ``(batch, features)`` or NHWC images ``(batch, H, W, C)``;
* the input kernel is :math:`\Sigma^{(0)}(x, x') = x \cdot x' / d` (mean over
  the channel axis; ERRATA #5);
* NTK parameterisation (default): :math:`z = \sigma_w W x / \sqrt{n_{in}} + \sigma_b b`
  with standard normal ``W`` and ``b``; standard parameterisation:
  :math:`W \sim N(0, \sigma_w^2/n_{in})`, :math:`b \sim N(0, \sigma_b^2)`;
* ``b_std=None`` means no bias at all (no bias parameter, no NTK term);
* after a ``Dense`` layer, :math:`\Sigma \mapsto \sigma_w^2 \Sigma + \sigma_b^2`
  and :math:`\Theta \mapsto \sigma_w^2 \Theta + \Sigma_{\text{new}}` (NTK
  parameterisation); after an activation, :math:`\Sigma \mapsto \check\phi(\Sigma)`
  and :math:`\Theta \mapsto \Theta \cdot \check{\phi'}(\Sigma)`. This is the
  recursion of Jacot et al. (2018) and Arora et al. (2019):
  :math:`\Theta^{(\ell)} = \Sigma^{(\ell)} + \Theta^{(\ell-1)} \dot\Sigma^{(\ell)}`
  (ERRATA #1 gives a wrong version found in the source notes);
* convolutional kernels keep the full covariance between spatial positions:
  ``nngp`` has shape ``(n1, n2, H1, H2, W1, W2)`` until a ``Flatten`` or
  ``GlobalAvgPool`` removes the spatial axes (Novak et al. 2019;
  Garriga-Alonso et al. 2019; Arora et al. 2019).

Precision: kernels are computed in float64 whatever the global
``jax_enable_x64`` setting. Pass ``dtype=jnp.float32`` to ``kernel_fn`` for
float32 (about twice as fast, relative error around 1e-6).
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import math
import numbers
import os
from collections import namedtuple
from typing import Any, Callable, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import dual

__all__ = [
    "Kernel",
    "LayerSpec",
    "layer_spec",
    "serial",
    "parallel",
    "FanOut",
    "FanInSum",
    "Dense",
    "Conv",
    "AvgPool",
    "GlobalAvgPool",
    "Flatten",
    "Identity",
    "Relu",
    "LeakyRelu",
    "ABRelu",
    "Abs",
    "Erf",
    "Gelu",
    "Sin",
    "ElementwiseNumerical",
    "Elementwise",
]

_GET_NAMES = ("nngp", "ntk")


# --------------------------------------------------------------------------- #
# The kernel object
# --------------------------------------------------------------------------- #


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True)
class Kernel:
    """Kernels of the layer outputs, passed from layer to layer.

    Attributes:
      nngp: covariance between outputs for x1 and x2, shape
        ``(n1, n2)`` or ``(n1, n2, H1, H2, W1, W2)`` for spatial outputs.
      ntk: the neural tangent kernel, same shape (``None`` when not requested).
      cov1: covariance of each x1 with itself, shape ``(n1,)`` or
        ``(n1, H, H, W, W)``.
      cov2: the same for x2, or ``None`` when x2 is x1.
      shape1, shape2: shapes of the finite activations (for the standard
        parameterisation, which needs the fan-in).
      is_gaussian: whether the outputs are Gaussian (true after an affine layer);
        an activation needs Gaussian inputs.
    """

    nngp: Any
    ntk: Any
    cov1: Any
    cov2: Any
    shape1: Tuple[int, ...]
    shape2: Tuple[int, ...]
    is_gaussian: bool = False

    def tree_flatten(self):
        return (self.nngp, self.ntk, self.cov1, self.cov2), (self.shape1, self.shape2, self.is_gaussian)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, *aux)

    def replace(self, **changes) -> "Kernel":
        return dataclasses.replace(self, **changes)

    @property
    def spatial_ndim(self) -> int:
        return len(self.shape1) - 2


# --------------------------------------------------------------------------- #
# Argument checking
# --------------------------------------------------------------------------- #


def _check_nonneg(layer: str, name: str, value, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        expected = "a finite number >= 0" + (" or None" if allow_none else "")
        raise ValueError(f"{layer}: `{name}` must be {expected}, got {value!r}.")
    return float(value)


def _check_pos_int(layer: str, name: str, value) -> int:
    if not isinstance(value, (numbers.Integral,)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{layer}: `{name}` must be a positive integer, got {value!r}.")
    return int(value)


def _check_parameterization(layer: str, value: str) -> str:
    if value not in ("ntk", "standard"):
        raise ValueError(f"{layer}: `parameterization` must be 'ntk' or 'standard', got {value!r}.")
    return value


def _check_padding(layer: str, value: str) -> str:
    if not isinstance(value, str) or value.upper() not in ("SAME", "VALID"):
        raise ValueError(f"{layer}: `padding` must be 'SAME' or 'VALID', got {value!r}.")
    return value.upper()


def _check_tuple(layer: str, name: str, value, length: Optional[int] = None) -> Tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise ValueError(f"{layer}: `{name}` must be a sequence of positive integers, got {value!r}.") from None
    if not out or any(v < 1 for v in out) or (length is not None and len(out) != length):
        size = f"{length} " if length else ""
        raise ValueError(f"{layer}: `{name}` must be a sequence of {size}positive integers, got {value!r}.")
    return out


# --------------------------------------------------------------------------- #
# Helpers on kernels with spatial pairs of axes
# --------------------------------------------------------------------------- #


def _spatial_diagonal(cov, batch_ndim: int, spatial_ndim: int):
    """``(b..., S1, S1, S2, S2, ...) -> (b..., S1, S2, ...)``: the variance at each position."""
    for _ in range(spatial_ndim):
        cov = jnp.diagonal(cov, axis1=batch_ndim, axis2=batch_ndim + 1)
    return cov


def _interleave_ones(var, batch_ndim: int, spatial_ndim: int, left: bool, batch_pair: bool):
    """Reshape per-position variances so that they broadcast against a pair kernel.

    ``var`` has shape ``(n, S1, S2, ...)``. For a cross kernel
    (``batch_pair=True``, shape ``(n1, n2, S1, S1', ...)``) the left factor is
    ``(n1, 1, S1, 1, ...)`` and the right one ``(1, n2, 1, S1', ...)``. For a
    self kernel ``(n, S1, S1', ...)`` they are ``(n, S1, 1, ...)`` and
    ``(n, 1, S1', ...)``.
    """
    n = var.shape[0]
    spatial = var.shape[1:]
    shape = []
    if batch_pair:
        shape += [n, 1] if left else [1, n]
    else:
        shape += [n]
    for s in spatial:
        shape += [s, 1] if left else [1, s]
    return var.reshape(shape)


def _pad_amounts(size: int, window: int, stride: int, padding: str) -> Tuple[int, int, int]:
    """(output size, low pad, high pad) of a window op, as ``lax.conv``/``reduce_window`` do it."""
    if padding == "VALID":
        if size < window:
            raise ValueError(f"a window of size {window} does not fit an input of size {size} with 'VALID' padding.")
        return (size - window) // stride + 1, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return out, total // 2, total - total // 2


def _conv_pair_axes(x, axis: int, window: int, stride: int, padding: str):
    """Average ``x[..., i + d, j + d, ...]`` over filter offsets d on the pair (axis, axis + 1).

    This is the covariance of a convolution's output at positions (o, o') with
    a filter shared across positions: the same offset applies to both members
    of the pair. Zero padding contributes zeros; the average divides by the
    full filter size, as the finite layer's fan-in does.
    """
    size = x.shape[axis]
    out, lo, hi = _pad_amounts(size, window, stride, padding)
    if lo or hi:
        pads = [(0, 0)] * x.ndim
        pads[axis] = pads[axis + 1] = (lo, hi)
        x = jnp.pad(x, pads)
    acc = None
    for d in range(window):
        sl = [slice(None)] * x.ndim
        sl[axis] = sl[axis + 1] = slice(d, d + stride * (out - 1) + 1, stride)
        term = x[tuple(sl)]
        acc = term if acc is None else acc + term
    return acc / window


def _pool_matrix(size: int, window: int, stride: int, padding: str, normalize_edges: bool) -> np.ndarray:
    """Matrix P (out x size) with ``pooled = P @ x`` along one spatial axis."""
    out, lo, _ = _pad_amounts(size, window, stride, padding)
    p = np.zeros((out, size))
    for o in range(out):
        start = o * stride - lo
        idx = [i for i in range(start, start + window) if 0 <= i < size]
        p[o, idx] = 1.0 / (len(idx) if normalize_edges else window)
    return p


def _pool_pair_axes(x, axis: int, p: np.ndarray):
    """Apply P on both axes of a pair: ``K -> P K P^T``."""
    pm = jnp.asarray(p, dtype=x.dtype)
    x = jnp.moveaxis(jnp.tensordot(pm, x, axes=([1], [axis])), 0, axis)
    x = jnp.moveaxis(jnp.tensordot(pm, x, axes=([1], [axis + 1])), 0, axis + 1)
    return x


def _fused_pair(nngp, ntk):
    """Return (nngp, ntk) through one complex array, ``nngp + i ntk``.

    Both outputs of an activation share the expensive part (the angle of the
    arc-cosine kernels, the square roots). XLA on CPU does not fuse two
    outputs into one loop: it would duplicate that work into each consumer,
    and through a deep chain of layers the duplication compounds. Packing the
    pair into one complex value gives every layer a single output, so a whole
    fully connected network becomes one fused loop over the kernel entries.
    """
    z = lax.complex(nngp, ntk)
    return jnp.real(z), jnp.imag(z)


def _map_kernel(k: Kernel, fn: Callable[[Any, int], Any], ntk_too: bool = True) -> Kernel:
    """Apply a linear map ``fn(array, batch_ndim)`` to every covariance in k."""
    return k.replace(
        nngp=fn(k.nngp, 2),
        ntk=fn(k.ntk, 2) if (ntk_too and k.ntk is not None) else k.ntk,
        cov1=fn(k.cov1, 1),
        cov2=None if k.cov2 is None else fn(k.cov2, 1),
    )


# --------------------------------------------------------------------------- #
# Input kernel and the public kernel_fn wrapper
# --------------------------------------------------------------------------- #


def _as_input(x, name: str):
    if isinstance(x, Kernel):
        return x
    if isinstance(x, jax.Array):
        # Already on a device (e.g. a block placed by ntkcourse.batching): check
        # it there rather than copying it back to the host.
        arr = x
        finite = bool(jnp.all(jnp.isfinite(x))) if jnp.issubdtype(x.dtype, jnp.inexact) else True
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # pragma: no cover - numpy gives a clear message
            raise TypeError(f"kernel_fn: `{name}` must be an array, got {type(x).__name__}.") from exc
        finite = None
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"kernel_fn: `{name}` must be a numeric array, got dtype {arr.dtype}.")
    if arr.ndim < 2:
        raise ValueError(
            f"kernel_fn: `{name}` must have a batch axis and a feature axis, shape (batch, features) "
            f"or (batch, H, W, C); got shape {arr.shape}."
        )
    if arr.size == 0:
        raise ValueError(f"kernel_fn: `{name}` is empty (shape {arr.shape}); expected at least one input.")
    if finite is None:
        # A NaN or an infinity makes the sum non-finite; a finite sum settles
        # it in one pass without a boolean temporary (an overflowing sum of
        # finite values falls through to the full check).
        with np.errstate(all="ignore"):
            total = arr.sum()
        finite = bool(np.isfinite(total)) or bool(np.all(np.isfinite(arr)))
    if not finite:
        raise ValueError(f"kernel_fn: `{name}` contains NaN or infinite values.")
    return x


def _input_kernel(x1, x2, compute_ntk: bool, dtype) -> Kernel:
    """Sigma^(0) = x . x' / C (mean over the channel axis), with the spatial pairs kept."""
    x1 = jnp.asarray(x1, dtype)
    x2_ = None if x2 is None else jnp.asarray(x2, dtype)
    channels = x1.shape[-1]
    s = x1.ndim - 2
    letters = "hwdefgijkl"[:s]
    big = letters.upper()
    pair = "".join(a + b for a, b in zip(letters, big))
    if s == 0:
        cov1 = jnp.sum(x1 * x1, axis=-1) / channels
        other = x1 if x2_ is None else x2_
        nngp = x1 @ other.T / channels
        cov2 = None if x2_ is None else jnp.sum(x2_ * x2_, axis=-1) / channels
    else:
        self_spec = f"n{letters}c,n{big}c->n{pair}"
        cross_spec = f"n{letters}c,m{big}c->nm{pair}"
        cov1 = jnp.einsum(self_spec, x1, x1) / channels
        other = x1 if x2_ is None else x2_
        nngp = jnp.einsum(cross_spec, x1, other) / channels
        cov2 = None if x2_ is None else jnp.einsum(self_spec, x2_, x2_) / channels
    if x2_ is None:
        # The diagonal of the self-kernel equals cov1 exactly, not up to the
        # different summation order of a matrix product: correlations of an
        # input with itself are then exactly 1 (see dual._relu_parts).
        n = x1.shape[0]
        idx = jnp.arange(n)
        nngp = nngp.at[idx, idx].set(cov1)
    shape2 = x1.shape if x2_ is None else x2_.shape
    return _kernel_from_gram(nngp, cov1, cov2, tuple(x1.shape), tuple(shape2), compute_ntk)


def _kernel_from_gram(nngp, cov1, cov2, shape1, shape2, compute_ntk: bool) -> Kernel:
    ntk = jnp.zeros_like(nngp) if compute_ntk else None
    return Kernel(nngp, ntk, cov1, cov2, tuple(shape1), tuple(shape2), False)


def _host_inputs(x1, x2, originals=(None, None)):
    """Flat inputs as host (NumPy) arrays for :func:`_host_gram`, or None.

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


def _host_gram(a: np.ndarray, b: Optional[np.ndarray]):
    """``(nngp, cov1, cov2)`` of the input layer for host arrays (``b=None``:
    a against itself, with the diagonal set to ``cov1`` exactly as in
    :func:`_input_kernel`)."""
    other = a if b is None else b
    channels = a.shape[-1]
    cov1 = np.einsum("nc,nc->n", a, a) / channels
    gram = np.matmul(a, other.T, out=_aligned_empty((a.shape[0], other.shape[0]), a.dtype))
    gram /= channels
    if b is None:
        np.fill_diagonal(gram, cov1)
        return gram, cov1, None
    return gram, cov1, np.einsum("nc,nc->n", b, b) / channels


def _aligned_empty(shape, dtype, align: int = 64) -> np.ndarray:
    """An uninitialised C-contiguous array whose data is ``align``-byte aligned,
    so that JAX can take it over without a copy (``jax.dlpack.from_dlpack``)."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(size + align, np.uint8)
    offset = (-raw.ctypes.data) % align
    return raw[offset : offset + size].view(dtype).reshape(shape)


def _scatter_tile(outs, parts, ri: slice, rj: slice, lo: int, hi: int, rows: int = 32):
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
def _single_threaded_blas():
    """BLAS limited to one thread per call inside the block (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a declared dependency
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _host_gram_tiles(a: np.ndarray, pairs, sq_norms: np.ndarray) -> np.ndarray:
    """The tiles ``(ri, rj)`` of ``a a^T`` (undivided) in a new aligned n x n
    buffer; the other entries are left unset. Diagonal tiles get ``sq_norms``
    on their diagonal exactly (the same numbers as the input variances).

    One single-threaded BLAS call per tile, as many tiles at once as there are
    cores: as fast as multi-threaded BLAS on these sizes, and without its
    spinning worker threads, which would slow the XLA computation that follows.
    """
    n = a.shape[0]
    out = _aligned_empty((n, n), a.dtype)

    def one(pair):
        ri, rj = pair
        block = out[ri, rj]
        np.matmul(a[ri], a[rj].T, out=block)  # a[ri] @ a[ri].T: NumPy uses syrk
        if ri == rj:
            np.fill_diagonal(block, sq_norms[ri])

    workers = max(1, min(len(pairs), os.cpu_count() or 1))
    with _single_threaded_blas(), concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, pairs))
    return out


def _to_device(a: np.ndarray, device):
    """A host array as a JAX array on ``device``, without a copy where JAX can alias it."""
    if a.flags.c_contiguous and a.ctypes.data % 64 == 0:
        return jax.device_put(jax.dlpack.from_dlpack(a), device)
    return jax.device_put(a, device)


# The kernel recursions are long chains of elementwise arithmetic that XLA
# fuses into one loop over the kernel entries. On CPUs with AVX-512, XLA's
# default of 256-bit vectors leaves half of each vector unit idle: asking for
# 512-bit vectors makes a fully connected ReLU recursion about 2x faster
# (CPUs without AVX-512 use their widest vectors; other backends ignore it).
_KERNEL_COMPILER_OPTIONS = {"xla_cpu_prefer_vector_width": 512}


def _kernel_jit(fn=None, **jit_kwargs):
    """``jax.jit`` with :data:`_KERNEL_COMPILER_OPTIONS`, where this JAX accepts them."""
    if fn is None:
        return functools.partial(_kernel_jit, **jit_kwargs)
    try:
        return jax.jit(fn, compiler_options=_KERNEL_COMPILER_OPTIONS, **jit_kwargs)
    except TypeError:  # a JAX without per-function compiler options
        return jax.jit(fn, **jit_kwargs)


_real = jax.jit(jnp.real)
_imag = jax.jit(jnp.imag)


# kernel_fn(x, None) with at least two tiles of this many inputs is computed
# tile by tile, using the symmetry (see _run_symmetric_tiles).
_SYMMETRIC_TILE = 1024


def _transpose_pair_axes(a):
    """Kernel of (x2, x1) from that of (x1, x2): swap the batch axes and the
    members of every spatial pair."""
    axes = list(range(a.ndim))
    for i in range(0, a.ndim, 2):
        axes[i], axes[i + 1] = axes[i + 1], axes[i]
    return jnp.transpose(a, axes)


@functools.partial(jax.jit, static_argnames=("n_tiles", "packed"))
def _assemble_tiles(blocks, n_tiles, packed):
    def full(get_part):
        rows = []
        for i in range(n_tiles):
            row = [
                get_part(blocks[(i, j)]) if i <= j else _transpose_pair_axes(get_part(blocks[(j, i)]))
                for j in range(n_tiles)
            ]
            rows.append(jnp.concatenate(row, axis=1))
        return jnp.concatenate(rows, axis=0)

    if packed:
        return full(lambda b: jnp.real(b[0])), full(lambda b: jnp.imag(b[0]))
    has_ntk = blocks[(0, 0)][1] is not None
    return full(lambda b: b[0]), (full(lambda b: b[1]) if has_ntk else None)


def _normalise_get(get):
    if get is None:
        return None
    names = (get,) if isinstance(get, str) else tuple(get)
    if not names:
        raise ValueError("kernel_fn: `get` must name at least one of 'nngp', 'ntk'; got an empty sequence.")
    for g in names:
        if g not in _GET_NAMES:
            raise ValueError(f"kernel_fn: unknown `get` name {g!r}; expected 'nngp', 'ntk' or a tuple of them.")
    return names


def _make_public_kernel_fn(kernel_layer_fn: Callable[[Kernel], Kernel]):
    """Wrap a Kernel -> Kernel map into ``kernel_fn(x1, x2=None, get=None, dtype=float64)``."""

    def _packed(k):
        if isinstance(k, Kernel) and k.ntk is not None and k.ntk.shape == k.nngp.shape:
            # One output for the pair (see _fused_pair); unpacked outside the jit.
            return k.replace(nngp=lax.complex(k.nngp, k.ntk), ntk=None)
        return k

    @_kernel_jit(static_argnames=("compute_ntk", "dtype"))
    def _from_inputs(x1, x2, compute_ntk, dtype):
        return _packed(kernel_layer_fn(_input_kernel(x1, x2, compute_ntk, dtype)))

    @_kernel_jit(static_argnames=("shape1", "shape2", "compute_ntk"))
    def _from_gram(gram, cov1, cov2, shape1, shape2, compute_ntk):
        return _packed(kernel_layer_fn(_kernel_from_gram(gram, cov1, cov2, shape1, shape2, compute_ntk)))

    @_kernel_jit(static_argnames=("rows", "cols", "channels", "compute_ntk"))
    def _from_gram_tile(gram, sq_norms, i0, j0, rows, cols, channels, compute_ntk):
        """The network's kernel on the tile ``[i0:i0+rows, j0:j0+cols]`` of the
        undivided input Gram ``x x^T`` (``sq_norms``: its diagonal, ``|x|^2``).

        The division by the number of features happens here, fused into the
        recursion, so that the host never makes a pass over the Gram for it.
        """
        g = lax.dynamic_slice(gram, (i0, j0), (rows, cols)) / channels
        cov1 = lax.dynamic_slice_in_dim(sq_norms, i0, rows) / channels
        cov2 = lax.dynamic_slice_in_dim(sq_norms, j0, cols) / channels
        k = _kernel_from_gram(g, cov1, cov2, (rows, channels), (cols, channels), compute_ntk)
        return _packed(kernel_layer_fn(k))

    def _on_device_of(x, arrays):
        """NumPy arrays as JAX arrays on the (single) device that holds x."""
        device = next(iter(x.devices()))
        return [None if a is None else _to_device(a, device) for a in arrays]

    def _is_packed(k):
        return isinstance(k, Kernel) and k.ntk is None and jnp.iscomplexobj(k.nngp)

    def _run(x1, x2, compute_ntk, dtype, originals=(None, None)):
        n = np.shape(x1)[0]
        host = _host_inputs(x1, x2, originals)
        if x2 is None and n >= 2 * _SYMMETRIC_TILE:
            if host is None:
                return _run_symmetric_tiles(x1, compute_ntk, dtype)
            return _run_symmetric_tiles_host(x1, compute_ntk, host[0])
        if host is None:
            k = _from_inputs(x1, x2, compute_ntk, dtype)
        else:
            gram, cov1, cov2 = _on_device_of(x1, _host_gram(*host))
            shape2 = x1.shape if x2 is None else x2.shape
            k = _from_gram(gram, cov1, cov2, tuple(x1.shape), tuple(shape2), compute_ntk)
        if _is_packed(k):
            z = k.nngp
            k = k.replace(nngp=_real(z), ntk=_imag(z))
        return k

    def _run_symmetric_tiles(x1, compute_ntk, dtype):
        """K(x, x) from the tiles on and above the diagonal only.

        The kernel of x against itself is symmetric (with the spatial pairs
        swapped), so for T tiles of inputs only T (T + 1) / 2 of the T^2 tile
        pairs are computed: 5/8 of the work for T = 4. The tiles are
        assembled by one jitted concatenation.
        """
        n = np.shape(x1)[0]
        n_tiles = -(-n // _SYMMETRIC_TILE)
        bounds = np.linspace(0, n, n_tiles + 1).astype(int)
        tiles = [x1[bounds[i] : bounds[i + 1]] for i in range(n_tiles)]
        blocks, covs, packed, first = {}, [], False, None
        for i in range(n_tiles):
            for j in range(i, n_tiles):
                k = _from_inputs(tiles[i], None if i == j else tiles[j], compute_ntk, dtype)
                packed = _is_packed(k)
                blocks[(i, j)] = (k.nngp, k.ntk)
                if i == j:
                    covs.append(k.cov1)
                    first = first or k
        nngp, ntk = _assemble_tiles(blocks, n_tiles, packed)
        full_shape = (n,) + tuple(first.shape1[1:])
        return Kernel(nngp, ntk, jnp.concatenate(covs), None, full_shape, full_shape, first.is_gaussian)

    def _run_symmetric_tiles_host(x1, compute_ntk, a):
        """:func:`_run_symmetric_tiles` for flat inputs on the host (``a``,
        the NumPy view of ``x1``; see :func:`_host_inputs`).

        Two phases:

        1. The upper tiles of the input Gram ``a a^T`` are computed by BLAS,
           one single-threaded call per tile, a tile per core
           (:func:`_host_gram_tiles`), into a host buffer that will hold the
           NNGP. (Multi-threaded BLAS leaves its worker threads spinning for
           a while after each call, which slows the XLA work that follows
           by up to 2x.)
        2. XLA computes each tile's network kernel from its Gram tile (read in
           place, without a copy); as soon as a tile is done it is copied,
           with its transpose below the diagonal, into the output buffers
           while XLA works on the next one. The NNGP tile overwrites the Gram
           tile it came from, which no tile reads again (tiles read only the
           Gram on and above the diagonal).

        The buffers become the output arrays without a further copy.
        """
        n, channels = a.shape
        device = next(iter(x1.devices()))
        n_tiles = -(-n // _SYMMETRIC_TILE)
        bounds = np.linspace(0, n, n_tiles + 1).astype(int)
        spans = [slice(int(bounds[i]), int(bounds[i + 1])) for i in range(n_tiles)]
        pairs = [(spans[i], spans[j]) for i in range(n_tiles) for j in range(i, n_tiles)]
        sq_norms = np.einsum("nc,nc->n", a, a)
        nngp_out = _host_gram_tiles(a, pairs, sq_norms)
        gram = _to_device(nngp_out, device)
        sq_norms_dev = jax.device_put(sq_norms, device)
        outs = [nngp_out] + ([_aligned_empty((n, n), a.dtype)] if compute_ntk else [])

        def dispatch(pair):
            ri, rj = pair
            rows, cols = ri.stop - ri.start, rj.stop - rj.start
            return _from_gram_tile(gram, sq_norms_dev, ri.start, rj.start, rows, cols, channels, compute_ntk)

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
                list(pool.map(lambda rows: _scatter_tile(outs, parts, ri, rj, *rows),
                              [(0, half), (half, ri.stop - ri.start)]))
            del gram, k, pending
        nngp = _to_device(outs[0], device)
        ntk = _to_device(outs[1], device) if compute_ntk else None
        return Kernel(nngp, ntk, jnp.concatenate(covs), None, (n, channels), (n, channels), first.is_gaussian)

    def kernel_fn(x1, x2=None, get=None, *, dtype=jnp.float64, **unused_kwargs):
        """Infinite-width kernels of the network for inputs x1 and x2.

        Args:
          x1: inputs, shape ``(n1, features)`` or NHWC ``(n1, H, W, C)``;
            or a :class:`Kernel` (to continue a computation).
          x2: second inputs with the same trailing shape, or ``None`` for x1.
          get: ``'nngp'``, ``'ntk'``, a tuple of them, or ``None`` for the full
            :class:`Kernel`.
          dtype: ``jnp.float64`` (default, whatever the global JAX setting) or
            ``jnp.float32``.

        Returns:
          an array for a single name; a named tuple with fields in the order of
          ``get`` for a tuple; the :class:`Kernel` for ``None``.
        """
        names = _normalise_get(get)
        if isinstance(x1, Kernel):
            with jax.enable_x64(True):
                out = kernel_layer_fn(x1)
        else:
            _as_input(x1, "x1")
            if x2 is not None:
                _as_input(x2, "x2")
                s1, s2 = np.shape(x1), np.shape(x2)
                if s1[1:] != s2[1:]:
                    raise ValueError(
                        f"kernel_fn: `x2` must have the same shape as `x1` apart from the batch axis; "
                        f"got x1 {s1} and x2 {s2}."
                    )
            if dtype not in (jnp.float64, jnp.float32, np.float64, np.float32):
                raise ValueError(f"kernel_fn: `dtype` must be jnp.float64 or jnp.float32, got {dtype!r}.")
            compute_ntk = names is None or "ntk" in names
            with jax.enable_x64(True):
                # Convert here, under x64: an array JAX has seen before outside
                # x64 (e.g. captured as a float32 constant by another jit) must
                # not reach the jitted computation in its old type.
                originals = (x1, x2)
                x1 = jnp.asarray(x1, dtype)
                x2 = None if x2 is None else jnp.asarray(x2, dtype)
                out = _run(x1, x2, compute_ntk, jnp.dtype(dtype), originals)
        if isinstance(out, (list, tuple)):
            raise ValueError(
                "kernel_fn: the network ends with several branches (FanOut/parallel without FanInSum); "
                "combine them before asking for a kernel."
            )
        if names is None:
            return out
        if len(names) == 1:
            return getattr(out, names[0])
        return namedtuple("Kernel", names)(*(getattr(out, n) for n in names))

    kernel_fn.kernel_layer = kernel_layer_fn
    return kernel_fn


class LayerSpec(NamedTuple):
    """What a layer is, for introspection (e.g. the structured empirical NTK).

    Attributes:
      name: the constructor's name (``"Dense"``, ``"serial"``, ``"Relu"``, ...).
      config: its arguments after validation (``W_std``, ``b_std``, ...); for
        activations ``{"activation": DualActivation}``.
      children: the sub-layers (triples) of ``serial`` and ``parallel``.
    """

    name: str
    config: dict
    children: tuple = ()


def _layer(init_fn, apply_fn, kernel_layer_fn, name: str, config: Optional[dict] = None, children=()):
    """Make the public triple, remembering the Kernel -> Kernel map for
    composition and the layer's description (``kernel_fn.spec``)."""
    kernel_fn = _make_public_kernel_fn(kernel_layer_fn)
    kernel_fn.spec = LayerSpec(name, dict(config or {}), tuple(children))
    # apply_fn carries the description too, so that tools given only
    # (init_fn, apply_fn) can find the structure (ntkcourse.empirical).
    apply_fn.spec = kernel_fn.spec
    return init_fn, apply_fn, kernel_fn


def layer_spec(layer) -> LayerSpec:
    """The :class:`LayerSpec` of a layer triple made by this module."""
    _kernel_map_of(layer)
    return layer[2].spec


def _kernel_map_of(layer) -> Callable:
    if not (isinstance(layer, tuple) and len(layer) == 3 and hasattr(layer[2], "kernel_layer")):
        raise TypeError(
            f"expected a layer made by ntkcourse.stax (a triple init_fn, apply_fn, kernel_fn), got {layer!r}."
        )
    return layer[2].kernel_layer


# --------------------------------------------------------------------------- #
# Combinators
# --------------------------------------------------------------------------- #


def serial(*layers):
    """Compose layers in sequence: ``serial(Dense(512), Relu(), Dense(1))``."""
    if not layers:
        raise ValueError("serial: needs at least one layer.")
    maps = [_kernel_map_of(layer) for layer in layers]
    inits = [layer[0] for layer in layers]
    applies = [layer[1] for layer in layers]

    def init_fn(key, input_shape):
        params = []
        for init in inits:
            key, sub = jax.random.split(key)
            input_shape, p = init(sub, input_shape)
            params.append(p)
        return input_shape, tuple(params)

    def apply_fn(params, inputs, **kwargs):
        if len(params) != len(applies):
            raise ValueError(f"serial: `params` has {len(params)} entries for a network of {len(applies)} layers.")
        for fn, p in zip(applies, params):
            inputs = fn(p, inputs, **kwargs)
        return inputs

    def kernel_layer(k):
        for m in maps:
            k = m(k)
        return k

    return _layer(init_fn, apply_fn, kernel_layer, "serial", children=layers)


def parallel(*layers):
    """Apply layer i to input i of a list (for use after ``FanOut``)."""
    if not layers:
        raise ValueError("parallel: needs at least one layer.")
    maps = [_kernel_map_of(layer) for layer in layers]
    inits = [layer[0] for layer in layers]
    applies = [layer[1] for layer in layers]

    def _check_len(obj, what):
        if not isinstance(obj, (list, tuple)) or len(obj) != len(layers):
            n = len(obj) if isinstance(obj, (list, tuple)) else 1
            raise ValueError(f"parallel: expected {len(layers)} {what} (one per branch), got {n}.")

    def init_fn(key, input_shape):
        _check_len(input_shape, "input shapes")
        keys = jax.random.split(key, len(layers))
        outs = [init(k, s) for init, k, s in zip(inits, keys, input_shape)]
        return [o[0] for o in outs], tuple(o[1] for o in outs)

    def apply_fn(params, inputs, **kwargs):
        _check_len(inputs, "inputs")
        return [fn(p, x, **kwargs) for fn, p, x in zip(applies, params, inputs)]

    def kernel_layer(ks):
        _check_len(ks, "kernels")
        return [m(k) for m, k in zip(maps, ks)]

    return _layer(init_fn, apply_fn, kernel_layer, "parallel", children=layers)


def FanOut(num: int):
    """Copy the input into ``num`` branches."""
    num = _check_pos_int("FanOut", "num", num)

    def init_fn(key, input_shape):
        return [input_shape] * num, ()

    def apply_fn(params, inputs, **kwargs):
        return [inputs] * num

    return _layer(init_fn, apply_fn, lambda k: [k] * num, "FanOut", {"num": num})


def FanInSum():
    """Sum the branches. The kernel of the sum is the sum of the kernels: the
    branches are assumed uncorrelated, which holds when at most one branch is
    not preceded by an independent zero-mean affine layer (e.g. a residual
    ``x + f(x)`` with ``f`` ending in ``Dense``)."""

    def init_fn(key, input_shape):
        shapes = list(input_shape)
        if any(tuple(s) != tuple(shapes[0]) for s in shapes):
            raise ValueError(f"FanInSum: all branches must have the same shape, got {shapes}.")
        return shapes[0], ()

    def apply_fn(params, inputs, **kwargs):
        return functools.reduce(jnp.add, inputs)

    def kernel_layer(ks):
        if not isinstance(ks, (list, tuple)) or not ks:
            raise ValueError("FanInSum: expects a list of branches (use FanOut/parallel before it).")
        first = ks[0]
        for k in ks[1:]:
            if k.nngp.shape != first.nngp.shape or k.shape1[1:] != first.shape1[1:]:
                raise ValueError(
                    f"FanInSum: branch outputs differ in shape: {first.shape1} and {k.shape1}."
                )

        def total(attr):
            vals = [getattr(k, attr) for k in ks]
            if any(v is None for v in vals):
                return None
            return functools.reduce(jnp.add, vals)

        return first.replace(
            nngp=total("nngp"),
            ntk=total("ntk"),
            cov1=total("cov1"),
            cov2=total("cov2"),
            is_gaussian=all(k.is_gaussian for k in ks),
        )

    return _layer(init_fn, apply_fn, kernel_layer, "FanInSum")


def Identity():
    """The identity layer."""
    return _layer(lambda key, s: (s, ()), lambda params, x, **kw: x, lambda k: k, "Identity")


# --------------------------------------------------------------------------- #
# Affine layers
# --------------------------------------------------------------------------- #


def _affine(x, w_var: float, b_var: Optional[float]):
    out = w_var * x
    return out if b_var is None else out + b_var


def Dense(
    out_dim: int,
    W_std: float = 1.0,
    b_std: Optional[float] = None,
    parameterization: str = "ntk",
):
    r"""Fully connected layer acting on the last (channel) axis.

    NTK parameterisation: :math:`z = \frac{\sigma_w}{\sqrt{n_{in}}} x W + \sigma_b b`,
    ``W``, ``b`` standard normal. Kernel:
    :math:`\Sigma' = \sigma_w^2 \Sigma + \sigma_b^2`,
    :math:`\Theta' = \sigma_w^2\Theta + \Sigma'` (Jacot et al. 2018).

    Standard parameterisation: :math:`z = x W + b`,
    :math:`W \sim N(0, \sigma_w^2/n_{in})`, :math:`b \sim N(0, \sigma_b^2)`;
    the NTK gains the gradients with respect to ``W`` and ``b`` directly:
    :math:`\Theta' = n_{in}\Sigma + \sigma_w^2 \Theta + 1` (the 1 only with a bias).

    ``b_std=None`` (default) means no bias.
    """
    out_dim = _check_pos_int("Dense", "out_dim", out_dim)
    W_std = _check_nonneg("Dense", "W_std", W_std)
    b_std = _check_nonneg("Dense", "b_std", b_std, allow_none=True)
    parameterization = _check_parameterization("Dense", parameterization)
    w_var = W_std**2
    b_var = None if b_std is None else b_std**2

    def init_fn(key, input_shape):
        n_in = input_shape[-1]
        k1, k2 = jax.random.split(key)
        W = jax.random.normal(k1, (n_in, out_dim))
        b = None if b_std is None else jax.random.normal(k2, (out_dim,))
        if parameterization == "standard":
            W = W * (W_std / math.sqrt(n_in))
            b = None if b is None else b * b_std
        return tuple(input_shape[:-1]) + (out_dim,), (W, b)

    def apply_fn(params, inputs, **kwargs):
        W, b = params
        if inputs.shape[-1] != W.shape[0]:
            raise ValueError(
                f"Dense: input has {inputs.shape[-1]} features but the layer's `params` expect {W.shape[0]}."
            )
        if parameterization == "ntk":
            out = (W_std / math.sqrt(inputs.shape[-1])) * (inputs @ W)
            return out if b is None else out + b_std * b
        out = inputs @ W
        return out if b is None else out + b

    def kernel_layer(k: Kernel) -> Kernel:
        n_in = k.shape1[-1]
        nngp = _affine(k.nngp, w_var, b_var)
        ntk = k.ntk
        if ntk is not None:
            if parameterization == "ntk":
                ntk = w_var * ntk + nngp
            else:
                ntk = n_in * k.nngp + w_var * ntk + (0.0 if b_std is None else 1.0)
        return Kernel(
            nngp,
            ntk,
            _affine(k.cov1, w_var, b_var),
            None if k.cov2 is None else _affine(k.cov2, w_var, b_var),
            k.shape1[:-1] + (out_dim,),
            k.shape2[:-1] + (out_dim,),
            True,
        )

    return _layer(
        init_fn,
        apply_fn,
        kernel_layer,
        "Dense",
        dict(out_dim=out_dim, W_std=W_std, b_std=b_std, parameterization=parameterization),
    )


def Conv(
    out_chan: int,
    filter_shape: Sequence[int],
    strides: Optional[Sequence[int]] = None,
    padding: str = "VALID",
    W_std: float = 1.0,
    b_std: Optional[float] = None,
    parameterization: str = "ntk",
):
    r"""2-D convolution on NHWC inputs with an HWIO filter (``lax.conv_general_dilated``).

    NTK parameterisation: :math:`z = \frac{\sigma_w}{\sqrt{C_{in} f_h f_w}} W * x + \sigma_b b`.
    The kernel of the output at positions (p, p') averages the input kernel
    over the filter offsets applied to both positions,
    :math:`\Sigma'(p, p') = \sigma_w^2 \frac{1}{f_h f_w}\sum_d \Sigma(p+d, p'+d) + \sigma_b^2`
    (Novak et al. 2019; Arora et al. 2019), and
    :math:`\Theta'(p,p') = \sigma_w^2 \frac{1}{f_h f_w}\sum_d\Theta(p+d,p'+d) + \Sigma'(p,p')`.
    Standard parameterisation: the fan-in is :math:`C_{in} f_h f_w`, as in :func:`Dense`.
    """
    out_chan = _check_pos_int("Conv", "out_chan", out_chan)
    filter_shape = _check_tuple("Conv", "filter_shape", filter_shape)
    nd = len(filter_shape)
    strides = (1,) * nd if strides is None else _check_tuple("Conv", "strides", strides, nd)
    padding = _check_padding("Conv", padding)
    W_std = _check_nonneg("Conv", "W_std", W_std)
    b_std = _check_nonneg("Conv", "b_std", b_std, allow_none=True)
    parameterization = _check_parameterization("Conv", parameterization)
    w_var = W_std**2
    b_var = None if b_std is None else b_std**2
    spatial = "HWDEFG"[:nd]
    dimension_numbers = ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")

    def _check_rank(shape, what):
        if len(shape) != nd + 2:
            raise ValueError(
                f"Conv: `{what}` must have {nd + 2} axes (batch, {nd} spatial, channels) for a filter of shape "
                f"{filter_shape}; got shape {tuple(shape)}."
            )

    def _out_spatial(shape):
        return tuple(_pad_amounts(shape[1 + i], filter_shape[i], strides[i], padding)[0] for i in range(nd))

    def init_fn(key, input_shape):
        _check_rank(input_shape, "input_shape")
        c_in = input_shape[-1]
        k1, k2 = jax.random.split(key)
        W = jax.random.normal(k1, filter_shape + (c_in, out_chan))
        b = None if b_std is None else jax.random.normal(k2, (1,) * (nd + 1) + (out_chan,))
        if parameterization == "standard":
            W = W * (W_std / math.sqrt(c_in * math.prod(filter_shape)))
            b = None if b is None else b * b_std
        out_shape = (input_shape[0],) + _out_spatial(input_shape) + (out_chan,)
        return out_shape, (W, b)

    def apply_fn(params, inputs, **kwargs):
        _check_rank(inputs.shape, "inputs")
        W, b = params
        out = lax.conv_general_dilated(inputs, W, strides, padding, dimension_numbers=dimension_numbers)
        if parameterization == "ntk":
            out = (W_std / math.sqrt(inputs.shape[-1] * math.prod(filter_shape))) * out
            return out if b is None else out + b_std * b
        return out if b is None else out + b

    def kernel_layer(k: Kernel) -> Kernel:
        _check_rank(k.shape1, "x1")

        def conv_unscaled(x, batch_ndim):
            for i in range(nd):
                x = _conv_pair_axes(x, batch_ndim + 2 * i, filter_shape[i], strides[i], padding)
            return x

        nngp_u = conv_unscaled(k.nngp, 2)
        nngp = _affine(nngp_u, w_var, b_var)
        ntk = k.ntk
        if ntk is not None:
            if parameterization == "ntk":
                ntk = w_var * conv_unscaled(ntk, 2) + nngp
            else:
                fan_in = k.shape1[-1] * math.prod(filter_shape)
                ntk = fan_in * nngp_u + w_var * conv_unscaled(ntk, 2) + (0.0 if b_std is None else 1.0)
        cov1 = _affine(conv_unscaled(k.cov1, 1), w_var, b_var)
        cov2 = None if k.cov2 is None else _affine(conv_unscaled(k.cov2, 1), w_var, b_var)
        shape1 = (k.shape1[0],) + _out_spatial(k.shape1) + (out_chan,)
        shape2 = (k.shape2[0],) + _out_spatial(k.shape2) + (out_chan,)
        return Kernel(nngp, ntk, cov1, cov2, shape1, shape2, True)

    return _layer(
        init_fn,
        apply_fn,
        kernel_layer,
        "Conv",
        dict(
            out_chan=out_chan,
            filter_shape=filter_shape,
            strides=strides,
            padding=padding,
            W_std=W_std,
            b_std=b_std,
            parameterization=parameterization,
            dimension_numbers=dimension_numbers,
        ),
    )


# --------------------------------------------------------------------------- #
# Pooling and reshaping
# --------------------------------------------------------------------------- #


def AvgPool(
    window_shape: Sequence[int],
    strides: Optional[Sequence[int]] = None,
    padding: str = "VALID",
    normalize_edges: bool = False,
):
    r"""Average pooling over spatial windows (NHWC).

    ``strides`` defaults to ones (overlapping windows), as in neural-tangents
    and ``jax.example_libraries.stax``.
    With 'SAME' padding, windows at the edges average over the full window
    size (zeros padded) unless ``normalize_edges=True``, which averages over
    the positions inside the image. Kernel: :math:`K \mapsto P K P^\top` on
    each spatial pair of axes, with P the pooling matrix.
    """
    window_shape = _check_tuple("AvgPool", "window_shape", window_shape)
    nd = len(window_shape)
    strides = (1,) * nd if strides is None else _check_tuple("AvgPool", "strides", strides, nd)
    padding = _check_padding("AvgPool", padding)
    normalize_edges = bool(normalize_edges)

    def _check_rank(shape, what):
        if len(shape) != nd + 2:
            raise ValueError(
                f"AvgPool: `{what}` must have {nd + 2} axes (batch, {nd} spatial, channels) for a window of "
                f"shape {window_shape}; got shape {tuple(shape)}."
            )

    def _matrices(shape):
        return [_pool_matrix(shape[1 + i], window_shape[i], strides[i], padding, normalize_edges) for i in range(nd)]

    def _out_shape(shape):
        return (shape[0],) + tuple(m.shape[0] for m in _matrices(shape)) + (shape[-1],)

    def init_fn(key, input_shape):
        _check_rank(input_shape, "input_shape")
        return _out_shape(input_shape), ()

    def apply_fn(params, inputs, **kwargs):
        _check_rank(inputs.shape, "inputs")
        out = inputs
        for i, m in enumerate(_matrices(inputs.shape)):
            out = jnp.moveaxis(jnp.tensordot(jnp.asarray(m, inputs.dtype), out, axes=([1], [1 + i])), 0, 1 + i)
        return out

    def kernel_layer(k: Kernel) -> Kernel:
        _check_rank(k.shape1, "x1")
        m1, m2 = _matrices(k.shape1), _matrices(k.shape2)

        def pool_self(mats):
            def fn(x, batch_ndim):
                for i, m in enumerate(mats):
                    x = _pool_pair_axes(x, batch_ndim + 2 * i, m)
                return x

            return fn

        def pool_cross(x):
            for i, (a, b) in enumerate(zip(m1, m2)):
                ax = 2 + 2 * i
                x = jnp.moveaxis(jnp.tensordot(jnp.asarray(a, x.dtype), x, axes=([1], [ax])), 0, ax)
                x = jnp.moveaxis(jnp.tensordot(jnp.asarray(b, x.dtype), x, axes=([1], [ax + 1])), 0, ax + 1)
            return x

        return k.replace(
            nngp=pool_cross(k.nngp),
            ntk=None if k.ntk is None else pool_cross(k.ntk),
            cov1=pool_self(m1)(k.cov1, 1),
            cov2=None if k.cov2 is None else pool_self(m2)(k.cov2, 1),
            shape1=_out_shape(k.shape1),
            shape2=_out_shape(k.shape2),
        )

    return _layer(
        init_fn,
        apply_fn,
        kernel_layer,
        "AvgPool",
        dict(window_shape=window_shape, strides=strides, padding=padding, normalize_edges=normalize_edges),
    )


def GlobalAvgPool():
    """Average over all spatial positions: ``(n, H, W, C) -> (n, C)``.

    Kernel: the mean of the kernel over all pairs of positions.
    """

    def init_fn(key, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"GlobalAvgPool: expects inputs with spatial axes, got shape {tuple(input_shape)}.")
        return (input_shape[0], input_shape[-1]), ()

    def apply_fn(params, inputs, **kwargs):
        if inputs.ndim < 3:
            raise ValueError(f"GlobalAvgPool: expects inputs with spatial axes, got shape {inputs.shape}.")
        return jnp.mean(inputs, axis=tuple(range(1, inputs.ndim - 1)))

    def kernel_layer(k: Kernel) -> Kernel:
        if k.spatial_ndim < 1:
            raise ValueError(f"GlobalAvgPool: expects inputs with spatial axes, got shape {k.shape1}.")

        def fn(x, batch_ndim):
            return jnp.mean(x, axis=tuple(range(batch_ndim, x.ndim)))

        k = _map_kernel(k, fn)
        return k.replace(shape1=(k.shape1[0], k.shape1[-1]), shape2=(k.shape2[0], k.shape2[-1]))

    return _layer(init_fn, apply_fn, kernel_layer, "GlobalAvgPool")


def Flatten():
    """Flatten all non-batch axes: ``(n, H, W, C) -> (n, H W C)``.

    Kernel: the mean of the kernel over the spatial diagonal (p, p), since
    the flattened features at different positions are paired position by position.
    The output is marked non-Gaussian: features at different positions have
    different variances, which the averaged kernel no longer holds, so an
    activation right after ``Flatten`` is refused (put a ``Dense`` first).
    """

    def init_fn(key, input_shape):
        return (input_shape[0], int(np.prod(input_shape[1:]))), ()

    def apply_fn(params, inputs, **kwargs):
        return inputs.reshape(inputs.shape[0], -1)

    def kernel_layer(k: Kernel) -> Kernel:
        s = k.spatial_ndim
        if s == 0:
            return k

        def fn(x, batch_ndim):
            return jnp.mean(_spatial_diagonal(x, batch_ndim, s), axis=tuple(range(batch_ndim, batch_ndim + s)))

        k2 = _map_kernel(k, fn)
        return k2.replace(
            shape1=(k.shape1[0], int(np.prod(k.shape1[1:]))),
            shape2=(k.shape2[0], int(np.prod(k.shape2[1:]))),
            is_gaussian=False,
        )

    return _layer(init_fn, apply_fn, kernel_layer, "Flatten")


# --------------------------------------------------------------------------- #
# Activations
# --------------------------------------------------------------------------- #


def _activation_layer(act: dual.DualActivation):
    """A layer applying ``act.fn`` elementwise, with its dual on the kernels."""

    def kernel_layer(k: Kernel) -> Kernel:
        if not k.is_gaussian:
            raise ValueError(
                f"{act.name}: an activation needs Gaussian inputs; put a Dense or Conv layer before it "
                "(the input of the network, or the output of another activation, is not Gaussian)."
            )
        s = k.spatial_ndim
        var1 = _spatial_diagonal(k.cov1, 1, s)
        var2 = var1 if k.cov2 is None else _spatial_diagonal(k.cov2, 1, s)
        a = _interleave_ones(var1, 1, s, left=True, batch_pair=True)
        b = _interleave_ones(var2, 1, s, left=False, batch_pair=True)
        nngp = act.nngp(a, b, k.nngp)
        ntk = None if k.ntk is None else k.ntk * act.dnngp(a, b, k.nngp)
        if ntk is not None:
            nngp, ntk = _fused_pair(nngp, ntk)

        def self_cov(cov, var):
            if s == 0:
                return act.nngp_diag(cov)
            left = _interleave_ones(var, 1, s, left=True, batch_pair=False)
            right = _interleave_ones(var, 1, s, left=False, batch_pair=False)
            return act.nngp(left, right, cov)

        cov1 = self_cov(k.cov1, var1)
        cov2 = None if k.cov2 is None else self_cov(k.cov2, var2)
        return k.replace(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2, is_gaussian=False)

    def init_fn(key, input_shape):
        return input_shape, ()

    def apply_fn(params, inputs, **kwargs):
        return act.fn(inputs)

    return _layer(init_fn, apply_fn, kernel_layer, act.name, {"activation": act})


def Relu():
    """ReLU, ``max(x, 0)``; kernels by the arc-cosine formulas (Cho & Saul 2009)."""
    return _activation_layer(dual.relu())


def LeakyRelu(alpha: float):
    """``x`` for x > 0, ``alpha x`` otherwise."""
    if not isinstance(alpha, numbers.Real) or not math.isfinite(alpha):
        raise ValueError(f"LeakyRelu: `alpha` must be a finite number, got {alpha!r}.")
    return _activation_layer(dual.leaky_relu(alpha))


def ABRelu(a: float, b: float):
    """``a min(x, 0) + b max(x, 0)``."""
    for name, v in (("a", a), ("b", b)):
        if not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"ABRelu: `{name}` must be a finite number, got {v!r}.")
    return _activation_layer(dual.ab_relu(a, b))


def Abs():
    """``|x|``."""
    return _activation_layer(dual.abs_activation())


def Erf(a: float = 1.0, b: float = 1.0, c: float = 0.0):
    """``a erf(b x) + c`` (Williams 1997; see ERRATA #2 for erf(x / sqrt 2))."""
    for name, v in (("a", a), ("b", b), ("c", c)):
        if not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"Erf: `{name}` must be a finite number, got {v!r}.")
    return _activation_layer(dual.erf(a, b, c))


def Gelu(approximate: bool = False):
    """Exact GELU ``x Phi(x)``. The tanh approximation has no closed form here:
    ``approximate=True`` raises (use ``ElementwiseNumerical`` with it)."""
    if approximate:
        raise ValueError(
            "Gelu: `approximate=True` (the tanh approximation) has no closed-form kernel; use "
            "ElementwiseNumerical(lambda x: jax.nn.gelu(x, approximate=True), deg=25) instead."
        )
    return _activation_layer(dual.gelu())


def Sin(a: float = 1.0, b: float = 1.0, c: float = 0.0):
    """``a sin(b x + c)``."""
    for name, v in (("a", a), ("b", b), ("c", c)):
        if not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"Sin: `{name}` must be a finite number, got {v!r}.")
    return _activation_layer(dual.sin(a, b, c))


def ElementwiseNumerical(fn: Callable, deg: int, df: Optional[Callable] = None):
    """Any elementwise activation, its kernels by Gauss–Hermite quadrature with
    ``deg`` nodes (see :func:`ntkcourse.dual.quadrature` for the accuracy)."""
    return _activation_layer(dual.quadrature(fn, deg, df))


def Elementwise(fn: Callable, nngp_fn: Callable, d_nngp_fn: Callable):
    """An activation with user-given dual functions.

    ``nngp_fn(cov12, var1, var2) -> E[fn(u) fn(v)]`` and
    ``d_nngp_fn(cov12, var1, var2) -> E[fn'(u) fn'(v)]`` (argument order of
    neural-tangents).
    """
    for name, f in (("fn", fn), ("nngp_fn", nngp_fn), ("d_nngp_fn", d_nngp_fn)):
        if not callable(f):
            raise TypeError(f"Elementwise: `{name}` must be callable, got {type(f).__name__}.")
    act = dual.DualActivation(
        getattr(fn, "__name__", "Elementwise"),
        fn,
        lambda a, b, c: nngp_fn(c, a, b),
        lambda a, b, c: d_nngp_fn(c, a, b),
        lambda a: nngp_fn(a, a, a),
        lambda a: d_nngp_fn(a, a, a),
    )
    return _activation_layer(act)
