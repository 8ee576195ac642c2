"""Compilation of kernel recursions, and fusing the NNGP and NTK into one loop."""
from __future__ import annotations

import contextlib
import contextvars
import functools

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["WIDE_VECTOR_OPTIONS", "kernel_jit", "fused_pair", "linear_pair", "one_program", "in_one_program"]

# The kernel recursions are long chains of elementwise arithmetic that XLA
# fuses into one loop over the kernel entries. On CPUs with AVX-512, XLA's
# default of 256-bit vectors leaves half of each vector unit idle: asking for
# 512-bit vectors makes a fully connected ReLU recursion about 2x faster
# (CPUs without AVX-512 use their widest vectors; other backends ignore it).
WIDE_VECTOR_OPTIONS = {"xla_cpu_prefer_vector_width": 512}


def kernel_jit(fn=None, *, compiler_options=None, **jit_kwargs):
    """``jax.jit`` with ``compiler_options`` where this JAX accepts them."""
    if fn is None:
        return functools.partial(kernel_jit, compiler_options=compiler_options, **jit_kwargs)
    if not compiler_options:
        return jax.jit(fn, **jit_kwargs)
    try:
        return jax.jit(fn, compiler_options=compiler_options, **jit_kwargs)
    except TypeError:  # a JAX without per-function compiler options
        return jax.jit(fn, **jit_kwargs)


def fused_pair(nngp, ntk, materialise: bool = False):
    """Return (nngp, ntk) through one complex array, ``nngp + i ntk``.

    Both outputs of an activation share the expensive part (the angle of the
    arc-cosine kernels, the square roots). XLA on CPU does not fuse two
    outputs into one loop: it would duplicate that work into each consumer,
    and through a deep chain of layers the duplication compounds. Packing the
    pair into one complex value gives every layer a single output, so a whole
    fully connected network becomes one fused loop over the kernel entries.
    The values are unchanged.

    ``materialise=True`` (kernels over images) also stores the pair once in
    memory: a convolution that follows reads every entry at several filter
    offsets, and XLA would otherwise recompute the whole activation for each
    read.
    """
    z = lax.complex(nngp, ntk)
    if materialise:
        z = lax.optimization_barrier(z)
    return jnp.real(z), jnp.imag(z)


def linear_pair(fn, nngp, ntk):
    """Return ``(fn(nngp), fn(ntk))`` for a real-linear ``fn``, through one complex array.

    ``fn`` must be linear with real coefficients (a mean, a window sum, a
    pooling), so that ``fn(nngp + i ntk) = fn(nngp) + i fn(ntk)``: the values
    are those of applying it twice, up to the order of the additions. Between
    the engine's programs the pair travels as one complex array (see
    :func:`fused_pair`); XLA folds ``complex(real(z), imag(z))`` back into
    ``z``, so the map reads each entry once, contiguously, instead of once per
    part with a stride of two: the global average pool of a block of 11 x 11
    pairs of 8 x 8 images takes 0.25 ms instead of 0.75 ms (2-core machine).
    ``ntk`` may be ``None``; parts of different shapes or types are mapped
    one by one.
    """
    if ntk is None:
        return fn(nngp), None
    if (nngp.shape != ntk.shape or nngp.dtype != ntk.dtype or jnp.iscomplexobj(nngp)
            or not jnp.issubdtype(nngp.dtype, jnp.floating)):
        return fn(nngp), fn(ntk)
    z = fn(lax.complex(nngp, ntk))
    return jnp.real(z), jnp.imag(z)


_ONE_PROGRAM = contextvars.ContextVar("ntkcourse_one_program", default=False)


@contextlib.contextmanager
def one_program():
    """Trace kernel maps for a single XLA program that holds the whole network.

    Outside the caller's ``jit`` the engine runs a network as several
    programs, split before each map that reads its input at several positions
    (a convolution), so that XLA stores that input once. Under the caller's
    ``jit``, ``grad`` or ``vmap`` the network becomes part of the caller's one
    program, and XLA's CPU fusion would put the activation before a
    convolution into each of the window's shifted reads (nine evaluations of
    the arc-cosine formulas for a 3 x 3 filter; ``lax.optimization_barrier``
    does not stop it, XLA removes barriers before fusing). Maps traced inside
    this context write window sums as one ``lax.conv_general_dilated``
    instead, an operation XLA does not fuse with its producer (see
    :func:`ntkcourse.stax.spatial.window_average`).
    """
    token = _ONE_PROGRAM.set(True)
    try:
        yield
    finally:
        _ONE_PROGRAM.reset(token)


def in_one_program() -> bool:
    """Whether kernel maps are being traced inside :func:`one_program`."""
    return _ONE_PROGRAM.get()
