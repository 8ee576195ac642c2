r"""Concatenating branches along the channel axis (neural-tangents' ``FanInConcat``).

If branch :math:`i` has :math:`n_i` channels with kernel :math:`K_i`, the
concatenation's kernel (the average over its channels, as every kernel of
:mod:`ntkcourse.stax`) is :math:`\sum_i n_i K_i / \sum_i n_i`, and so is its
NTK. No covariance between branches enters: a following ``Dense`` or
``Conv`` multiplies each branch by its own independent weights, and
elementwise layers act on each channel alone, so concatenating correlated
branches of one ``FanOut`` is exact (unlike summing them, see
:func:`~ntkcourse.stax.FanInSum`).
"""
from __future__ import annotations

import jax.numpy as jnp

from ..kernel import Kernel
from .layer import layer

__all__ = ["FanInConcat"]


def FanInConcat(axis: int = -1):
    """Concatenate the branches along the channel axis (``axis=-1``, the only one implemented)."""
    if axis != -1:
        raise NotImplementedError(
            f"FanInConcat: only axis=-1 (the channel axis) is implemented; got axis={axis!r}. Concatenating along "
            "the batch or spatial axes needs covariances this package does not track."
        )

    def init_fn(key, input_shape):
        shapes = [tuple(s) for s in input_shape]
        if any(s[:-1] != shapes[0][:-1] for s in shapes):
            raise ValueError(f"FanInConcat: branches must agree on every axis but the channels, got {shapes}.")
        return shapes[0][:-1] + (sum(s[-1] for s in shapes),), ()

    def apply_fn(params, inputs, **kwargs):
        return jnp.concatenate(inputs, axis=-1)

    def kernel_map(ks):
        if not isinstance(ks, (list, tuple)) or not ks:
            raise ValueError("FanInConcat: expects a list of branches (use FanOut/parallel before it).")
        widths = [k.shape1[-1] for k in ks]
        total = float(sum(widths))

        def mix(attr):
            vals = [getattr(k, attr) for k in ks]
            if any(v is None for v in vals):
                return None
            return sum((w / total) * v for w, v in zip(widths, vals))

        levels = [k.fork_independent for k in ks]
        if len(set(len(level) for level in levels)) != 1:
            raise ValueError("FanInConcat: the branches come from different FanOut levels.")
        first: Kernel = ks[0]
        return first.replace(
            nngp=mix("nngp"), ntk=mix("ntk"), cov1=mix("cov1"), cov2=mix("cov2"),
            shape1=first.shape1[:-1] + (sum(widths),), shape2=first.shape2[:-1] + (sum(widths),),
            is_gaussian=all(k.is_gaussian for k in ks),
            fork_independent=tuple(all(level) for level in zip(*levels))[:-1] if levels[0] else (),
        )

    return layer(init_fn, apply_fn, kernel_map, "FanInConcat", {"axis": axis})
