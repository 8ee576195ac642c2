r"""Checking inputs and the input kernel :math:`\Sigma^{(0)}(x, x') = x \cdot x' / C`."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..kernel import Kernel

__all__ = ["check_input", "input_kernel", "kernel_from_gram"]


def check_input(x, name: str, where: str = "kernel_fn"):
    """Refuse what cannot be a batch of inputs (with a message naming ``name``);
    return ``x`` unchanged.
    """
    if isinstance(x, Kernel):
        return x
    if isinstance(x, jax.Array):
        # Already on a device (e.g. a block placed by ntkcourse.batching): check
        # it there rather than copying it back to the host.
        arr = x
        if isinstance(x, jax.core.Tracer):
            finite = True  # values unknown while tracing
        elif jnp.issubdtype(x.dtype, jnp.inexact):
            # A concrete array inside someone's jit (a closed-over constant):
            # evaluate the check now instead of staging it into their program.
            with jax.ensure_compile_time_eval():
                finite = bool(jnp.all(jnp.isfinite(x)))
        else:
            finite = True
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # pragma: no cover - numpy gives a clear message
            raise TypeError(f"{where}: `{name}` must be an array, got {type(x).__name__}.") from exc
        finite = None
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{where}: `{name}` must be a numeric array, got dtype {arr.dtype}.")
    if arr.ndim < 2:
        raise ValueError(
            f"{where}: `{name}` must have a batch axis and a feature axis, shape (batch, features) "
            f"or (batch, H, W, C); got shape {arr.shape}."
        )
    if arr.size == 0:
        raise ValueError(f"{where}: `{name}` is empty (shape {arr.shape}); expected at least one input.")
    if finite is None:
        # A NaN or an infinity makes the sum non-finite; a finite sum settles
        # it in one pass without a boolean temporary (an overflowing sum of
        # finite values falls through to the full check).
        with np.errstate(all="ignore"):
            total = arr.sum()
        finite = bool(np.isfinite(total)) or bool(np.all(np.isfinite(arr)))
    if not finite:
        raise ValueError(f"{where}: `{name}` contains NaN or infinite values.")
    return x


def input_kernel(x1, x2, compute_ntk: bool, dtype, diagonal_spatial: bool = False) -> Kernel:
    r"""The kernel of the inputs themselves: :math:`\Sigma^{(0)} = x \cdot x' / C`
    (mean over the channel axis, ERRATA #5), with every pair of spatial
    positions, or only equal positions when ``diagonal_spatial``.
    """
    x1 = jnp.asarray(x1, dtype)
    x2_ = None if x2 is None else jnp.asarray(x2, dtype)
    other = x1 if x2_ is None else x2_
    channels = x1.shape[-1]
    s = x1.ndim - 2
    letters = "hwdefgijkl"[:s]
    big = letters.upper()
    if s == 0:
        cov1 = jnp.sum(x1 * x1, axis=-1) / channels
        nngp = x1 @ other.T / channels
        cov2 = None if x2_ is None else jnp.sum(x2_ * x2_, axis=-1) / channels
    elif diagonal_spatial:
        cov1 = jnp.einsum(f"n{letters}c,n{letters}c->n{letters}", x1, x1) / channels
        nngp = jnp.einsum(f"n{letters}c,m{letters}c->nm{letters}", x1, other) / channels
        cov2 = None if x2_ is None else jnp.einsum(f"n{letters}c,n{letters}c->n{letters}", x2_, x2_) / channels
    else:
        pair = "".join(a + b for a, b in zip(letters, big))
        self_spec = f"n{letters}c,n{big}c->n{pair}"
        cov1 = jnp.einsum(self_spec, x1, x1) / channels
        nngp = jnp.einsum(f"n{letters}c,m{big}c->nm{pair}", x1, other) / channels
        cov2 = None if x2_ is None else jnp.einsum(self_spec, x2_, x2_) / channels
    if x2_ is None:
        # The diagonal of the self-kernel equals cov1 exactly, not up to the
        # different summation order of a matrix product: correlations of an
        # input with itself are then exactly 1 (see dual._relu_parts).
        idx = jnp.arange(x1.shape[0])
        nngp = nngp.at[idx, idx].set(cov1)
    shape2 = x1.shape if x2_ is None else x2_.shape
    return kernel_from_gram(nngp, cov1, cov2, tuple(x1.shape), tuple(shape2), compute_ntk, diagonal_spatial and s > 0)


def kernel_from_gram(nngp, cov1, cov2, shape1, shape2, compute_ntk: bool, diagonal_spatial: bool = False) -> Kernel:
    """The input :class:`Kernel` from its parts (the NTK of the inputs is zero)."""
    ntk = jnp.zeros_like(nngp) if compute_ntk else None
    return Kernel(nngp, ntk, cov1, cov2, tuple(shape1), tuple(shape2), False, diagonal_spatial, is_input=True)
