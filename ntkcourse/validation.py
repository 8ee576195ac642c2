"""Argument checks shared by the whole package, with one wording.

Every message says where (the function or layer), which argument, the value
received, and what was expected::

    Dense: `W_std` must be a finite number >= 0, got -1.0.

The checks return the normalised value, so a constructor reads
``W_std = nonnegative("Dense", "W_std", W_std)``.
"""
from __future__ import annotations

import math
import numbers
import sys
from typing import Iterable, Optional, Sequence, Tuple

__all__ = [
    "fail",
    "nonnegative",
    "positive",
    "momentum",
    "times",
    "finite_real",
    "positive_int",
    "one_of",
    "int_tuple",
    "callable_arg",
    "get_names",
    "no_unknown_kwargs",
]


def fail(where: str, name: str, expected: str, value) -> ValueError:
    """The package's ValueError: ``where: `name` must be expected, got value.``"""
    return ValueError(f"{where}: `{name}` must be {expected}, got {value!r}.")


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _traced_scalar(value) -> bool:
    """A real scalar JAX tracer (a hyper-parameter under ``jax.grad``/``jit``):
    its value is unknown while tracing, so it cannot be checked here.
    """
    jax = sys.modules.get("jax")  # never imported here: tools without JAX stay fast
    if jax is None or not isinstance(value, jax.core.Tracer):
        return False
    return value.shape == () and jax.numpy.issubdtype(value.dtype, jax.numpy.floating)


def _as_real(value):
    """A scalar array (NumPy or concrete JAX, e.g. ``jnp.sqrt(2.)``) as a float;
    anything else unchanged.
    """
    if not _is_real(value) and not isinstance(value, bool) and getattr(value, "shape", None) == ():
        kind = getattr(getattr(value, "dtype", None), "kind", None)
        if kind in ("f", "i", "u"):
            return float(value)
    return value


def nonnegative(where: str, name: str, value, allow_none: bool = False) -> Optional[float]:
    """A finite real number >= 0 (or ``None`` when allowed), as a float; a
    scalar JAX tracer passes unchecked (hyper-parameters under ``jax.grad``).
    """
    if value is None and allow_none:
        return None
    if _traced_scalar(value):
        return value
    value = _as_real(value)
    if not _is_real(value) or not math.isfinite(value) or value < 0:
        raise fail(where, name, "a finite number >= 0" + (" or None" if allow_none else ""), value)
    return float(value)


def positive(where: str, name: str, value) -> float:
    """A finite real number > 0, as a float."""
    value = _as_real(value)
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise fail(where, name, "a finite number > 0", value)
    return float(value)


def momentum(where: str, value) -> float:
    """A momentum coefficient in [0, 1), as a float."""
    value = _as_real(value)
    if not _is_real(value) or not math.isfinite(value) or not 0.0 <= value < 1.0:
        raise fail(where, "momentum", "a number in [0, 1)", value)
    return float(value)


def times(where: str, name: str, t, integer: bool = False):
    """Training times or step counts: ``(a 1-D float64 array, whether t was a scalar)``.

    Rejects arrays of more than one axis, NaN, negative times (training runs
    forward from t = 0) and, with ``integer``, fractional numbers of steps;
    ``inf`` (the end of training) is allowed. Traced times (a JAX tracer,
    inside the caller's ``jit``/``vmap``/``grad``) are only checked for their
    number of axes, and returned as a ``jax.numpy`` array in the mode's widest
    float (:mod:`ntkcourse.array_module`): their values are unknown while tracing.
    """
    from .array_module import array_module  # here, so that importing this module stays light

    am = array_module(t)
    xp = am.numpy
    arr = xp.asarray(t, dtype=am.float)
    scalar = arr.ndim == 0
    if arr.ndim > 1:
        raise ValueError(f"{where}: `{name}` must be a scalar or a 1-D array of times, got shape {arr.shape}.")
    arr = xp.atleast_1d(arr)
    if am.traced:
        return arr, scalar
    np = xp
    if np.any(np.isnan(arr)):
        raise ValueError(f"{where}: `{name}` must hold non-negative times, got NaN.")
    if np.any(arr < 0):
        raise ValueError(
            f"{where}: `{name}` must be non-negative (training runs forward from t = 0), got {arr[arr < 0][0]:g}."
        )
    if integer:
        finite = arr[np.isfinite(arr)]
        if np.any(finite != np.round(finite)):
            raise ValueError(
                f"{where}: `{name}` must hold whole numbers of steps, got {finite[finite != np.round(finite)][0]:g}."
            )
    return arr, scalar


def finite_real(where: str, name: str, value) -> float:
    """A finite real number, as a float; a scalar JAX tracer passes unchecked."""
    if _traced_scalar(value):
        return value
    value = _as_real(value)
    if not _is_real(value) or not math.isfinite(value):
        raise fail(where, name, "a finite number", value)
    return float(value)


def positive_int(where: str, name: str, value) -> int:
    """An integer >= 1."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise fail(where, name, "a positive integer", value)
    return int(value)


def one_of(where: str, name: str, value, choices: Sequence[str], upper: bool = False) -> str:
    """One of ``choices`` (compared in upper case when ``upper``)."""
    key = value.upper() if (upper and isinstance(value, str)) else value
    if not isinstance(value, str) or key not in choices:
        raise fail(where, name, " or ".join(repr(c) for c in choices), value)
    return key


def int_tuple(where: str, name: str, value, length: Optional[int] = None) -> Tuple[int, ...]:
    """A non-empty sequence of positive integers (of ``length`` entries if given)."""
    expected = f"a sequence of {length or ''}{' ' if length else ''}positive integers"
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise fail(where, name, expected, value) from None
    if not out or any(v < 1 for v in out) or (length is not None and len(out) != length):
        raise fail(where, name, expected, value)
    return out


def callable_arg(where: str, name: str, value):
    """A callable."""
    if not callable(value):
        raise TypeError(f"{where}: `{name}` must be callable, got {type(value).__name__}.")
    return value


def get_names(where: str, get, allowed: Iterable[str], allow_none: bool = True) -> Optional[Tuple[str, ...]]:
    """The names asked for by a ``get=`` argument, as a tuple (``None`` stays
    ``None`` where allowed: the whole object).
    """
    allowed = tuple(allowed)
    if get is None:
        if allow_none:
            return None
        raise fail(where, "get", "a name or a tuple of names among " + ", ".join(map(repr, allowed)), get)
    names = (get,) if isinstance(get, str) else tuple(get)
    if not names:
        raise fail(where, "get", "at least one of " + ", ".join(map(repr, allowed)), get)
    for g in names:
        if g not in allowed:
            raise fail(where, "get", "a name or a tuple of names among " + ", ".join(map(repr, allowed)), g)
    return names


def no_unknown_kwargs(where: str, kwargs: dict, hints: Optional[dict] = None) -> None:
    """Refuse keyword arguments a function does not implement (none is
    silently ignored); ``hints`` maps a known-but-unsupported name to advice.
    """
    if not kwargs:
        return
    name = sorted(kwargs)[0]
    advice = (hints or {}).get(name)
    if advice:
        raise TypeError(f"{where}: the keyword argument `{name}` is not supported: {advice}")
    raise TypeError(
        f"{where}: unexpected keyword argument `{name}` (got {sorted(kwargs)}); it would be ignored, so it is refused."
    )
