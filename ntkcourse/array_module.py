"""Which array module computes a formula: NumPy on the host, or ``jax.numpy`` on traced values.

The closed forms of :mod:`ntkcourse.dynamics` and :mod:`ntkcourse.inference`
are written once, against an array module ``xp`` and a linear-algebra module
``linalg`` (the ``array API`` idiom). Concrete inputs (NumPy arrays, lists,
concrete JAX arrays) take the host path: float64 NumPy and SciPy, with every
check on values, warning and refusal of those modules. Inputs that are JAX
tracers (the function runs inside the caller's ``jax.jit``, ``jax.vmap``,
``jax.grad`` or ``lax.scan``) take ``jax.numpy`` and ``jax.scipy.linalg``, in
the widest float dtype of JAX's current mode (float64 in 64-bit mode, float32
otherwise): the same formulas become part of the caller's computation.

JAX is never imported here: without it in ``sys.modules`` no value can be a
tracer, and tools that need no JAX stay fast.

Example:
    >>> import numpy as np
    >>> array_module(np.eye(2), 1.0).numpy is np
    True
"""
from __future__ import annotations

import sys
from types import ModuleType
from typing import NamedTuple

import numpy as np
import scipy.linalg

__all__ = ["ArrayModule", "is_traced", "array_module", "host_only"]


class ArrayModule(NamedTuple):
    """The modules and dtype a formula computes with.

    ``numpy``: ``numpy`` or ``jax.numpy``; ``linalg``: ``scipy.linalg`` or
    ``jax.scipy.linalg`` (``cho_factor``, ``cho_solve``, ``solve_triangular``
    with SciPy's signatures); ``float``: the dtype arrays are converted to;
    ``traced``: whether the inputs are JAX tracers, so that checks on values
    (finiteness, signs, conditioning) cannot run.
    """

    numpy: ModuleType
    linalg: ModuleType
    float: type
    traced: bool


HOST = ArrayModule(np, scipy.linalg, np.float64, False)


def is_traced(*values) -> bool:
    """Whether any of ``values`` (or a leaf of them: kernel objects, tuples) is a JAX tracer.

    Lists count as one leaf each (nested lists of numbers are data, not containers of
    tracers, and can be long).
    """
    jax = sys.modules.get("jax")
    if jax is None:
        return False
    leaves = jax.tree_util.tree_leaves(values, is_leaf=lambda v: isinstance(v, list))
    return any(isinstance(v, jax.core.Tracer) for v in leaves)


def array_module(*values) -> ArrayModule:
    """The :class:`ArrayModule` for computing with ``values``: :data:`HOST`
    unless one of them is a JAX tracer, then ``jax.numpy`` in the mode's widest float.
    """
    if not is_traced(*values):
        return HOST
    import jax
    import jax.numpy as jnp
    import jax.scipy.linalg

    return ArrayModule(jnp, jax.scipy.linalg, jax.dtypes.canonicalize_dtype(jnp.float64), True)


def host_only(where: str, name: str) -> TypeError:
    """The refusal of a traced ``name`` by ``where``, a function that computes on the host only."""
    return TypeError(
        f"{where}: `{name}` is a traced JAX value (the call is inside jax.jit, vmap or grad), but {where} "
        "computes on the host, with checks on values; expected a concrete array: call it outside the "
        "transformation."
    )
