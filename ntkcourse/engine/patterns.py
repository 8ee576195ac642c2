r"""Graph inputs: ``kernel_fn(x1, x2, pattern=(pattern1, pattern2))``.

The convention is neural-tangents': each input comes with an array
describing its graph (read by :func:`ntkcourse.stax.Aggregate`), whose
leading axis is the batch axis of the inputs — a dense adjacency
``(batch, V, V)``, an edge list ``(batch, n_edges, 2)``, ... The engine does
not interpret it; it only has to keep each input's pattern next to that
input wherever the inputs are cut into blocks.

So, as the masks of :mod:`ntkcourse.engine.masks` do, the pattern travels
as extra features of the input (:func:`with_pattern_channels`): the
``prod(pattern.shape[1:])`` numbers of one input's pattern are laid out over
its spatial positions in ``ceil(q / positions)`` extra channels (zeros fill
the rest), and the first stage of the computation
(:func:`patterned_input_kernel`) splits them off again, builds the input
kernel of the real features and puts the patterns in the
:class:`~ntkcourse.kernel.Kernel` (``pattern1``/``pattern2``). Blocks, the
symmetric ``K(x, x)`` path (only blocks on and above the diagonal) and the
padding of the last block then need no change.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from .inputs import input_kernel

__all__ = ["pattern_pair", "with_pattern_channels", "patterned_input_kernel"]


def _check_one(p, name: str, x, x_name: str):
    if isinstance(p, jax.core.Tracer):
        arr = p
    else:
        try:
            arr = np.asarray(p)
        except Exception as exc:  # pragma: no cover - numpy's message is clear
            raise TypeError(f"kernel_fn: `{name}` must be an array, got {type(p).__name__}.") from exc
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(f"kernel_fn: `{name}` must be a numeric or boolean array, got dtype {arr.dtype}.")
        if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
            raise ValueError(f"kernel_fn: `{name}` contains NaN or infinite values.")
    if arr.ndim < 2 or arr.shape[0] != np.shape(x)[0]:
        raise ValueError(
            f"kernel_fn: `{name}` must have the batch axis of `{x_name}` first (one graph pattern per input), "
            f"shape ({np.shape(x)[0]}, ...); got shape {np.shape(arr)}."
        )
    return arr


def pattern_pair(pattern, x1, x2):
    """``(pattern1, pattern2)`` from ``kernel_fn``'s ``pattern`` argument, checked.

    ``pattern`` is neural-tangents' pair ``(pattern1, pattern2)``, one for
    ``x1`` and one for ``x2``. With ``x2=None`` the second may be ``None``,
    the same object as the first, or equal to it; a single array is then
    also accepted (the pattern of ``x1``). ``pattern2`` is returned as
    ``None`` when x2 is x1.

    Raises:
      ValueError: for a pattern that does not fit its inputs, or one of the
        two patterns missing when ``x2`` is given.
    """
    if isinstance(pattern, (tuple, list)):
        if len(pattern) != 2:
            raise ValueError(
                f"kernel_fn: `pattern` must be a pair (pattern1, pattern2), one for x1 and one for x2; got a "
                f"{type(pattern).__name__} of {len(pattern)} entries."
            )
        p1, p2 = pattern
    elif x2 is None:
        p1, p2 = pattern, None
    else:
        raise ValueError(
            "kernel_fn: with `x2` given, `pattern` must be a pair (pattern1, pattern2), one for x1 and one for "
            f"x2; got a single {type(pattern).__name__}."
        )
    if p1 is None and p2 is None:
        return None, None
    if p1 is None or (p2 is None and x2 is not None):
        raise ValueError(
            "kernel_fn: `pattern` gives the graph of one of x1 and x2 but not of the other "
            f"(pattern1 {'None' if p1 is None else 'given'}, pattern2 {'None' if p2 is None else 'given'}); "
            "give both, or neither (no aggregation)."
        )
    p1 = _check_one(p1, "pattern[0]", x1, "x1")
    if x2 is None:
        if p2 is not None and p2 is not pattern[0]:
            same = (not isinstance(p2, jax.core.Tracer) and not isinstance(p1, jax.core.Tracer)
                    and np.shape(p2) == np.shape(p1) and np.array_equal(np.asarray(p2), np.asarray(p1)))
            if not same:
                raise ValueError(
                    "kernel_fn: with `x2=None` (x2 is x1) the two patterns must be the same; got a different "
                    "pattern[1]. Pass x2 explicitly to pair x1 with other graphs."
                )
        return p1, None
    return p1, _check_one(p2, "pattern[1]", x2, "x2")


def with_pattern_channels(x, pattern, dtype):
    """``x`` with the pattern of each input appended as extra channels.

    Returns:
      ``(x_with_pattern, layout)``: the array ``(n, *spatial, channels +
      extra)`` and ``(channels, pattern.shape[1:])``, what
      :func:`patterned_input_kernel` needs to split it again.
    """
    xp = jnp if isinstance(x, jax.core.Tracer) or isinstance(pattern, jax.core.Tracer) else np
    n, spatial, channels = np.shape(x)[0], tuple(np.shape(x)[1:-1]), np.shape(x)[-1]
    shape = tuple(np.shape(pattern)[1:])
    positions = math.prod(spatial)
    q = math.prod(shape)
    extra = max(1, -(-q // positions))
    flat = xp.reshape(xp.asarray(pattern).astype(dtype), (n, q))
    flat = xp.concatenate([flat, xp.zeros((n, extra * positions - q), dtype)], axis=1)
    # Position-major, so that each position's extra channels hold consecutive pattern entries.
    side = xp.reshape(flat, (n,) + spatial + (extra,))
    return xp.concatenate([xp.asarray(x).astype(dtype), side], axis=-1), (channels, shape)


def _split(x, channels: int, shape):
    n = x.shape[0]
    side = x[..., channels:]
    q = math.prod(shape)
    return x[..., :channels], jnp.reshape(jnp.reshape(side, (n, -1))[:, :q], (n,) + tuple(shape))


def patterned_input_kernel(x1, x2, compute_ntk: bool, dtype, diagonal_spatial: bool, layout1, layout2):
    r"""The input kernel :math:`x \cdot x' / C` of the real features of inputs
    made by :func:`with_pattern_channels`, with ``pattern1``/``pattern2`` set
    (``layout1``, ``layout2``: the layouts that function returned; ``layout2``
    is ignored when x2 is ``None``).
    """
    x1, p1 = _split(x1, *layout1)
    p2 = None
    if x2 is not None:
        x2, p2 = _split(x2, *layout2)
    k = input_kernel(x1, x2, compute_ntk, dtype, diagonal_spatial)
    return k.replace(pattern1=p1, pattern2=p2)
