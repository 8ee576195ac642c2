r"""Combining branches: concatenation along the channel axis (neural-tangents'
``FanInConcat``) and the elementwise product (``FanInProd``).

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

import functools

import jax.numpy as jnp

from ..kernel import Kernel
from .combinators import close_fork
from .layer import layer
from .masked import combined_branches, combined_kernel_masks

__all__ = ["FanInConcat", "FanInProd"]


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
        if any(getattr(x, "layout", None) is not None for x in inputs):
            raise ValueError("FanInConcat: apply_fn(..., mask_constant=...) concatenates the channels of "
                             "activations with the batch axis first and the channels last (as its kernel_fn).")
        return combined_branches("FanInConcat", inputs, lambda values: jnp.concatenate(values, axis=-1))

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
            **combined_kernel_masks("FanInConcat", ks),
        )

    return layer(init_fn, apply_fn, kernel_map, "FanInConcat", {"axis": axis}, handles_masks=True)


def FanInProd():
    r"""Multiply the branches elementwise (neural-tangents' ``FanInProd``).

    For branches that are independent in the infinite-width limit, the kernel
    of a product is the product of the kernels,
    :math:`K = \prod_i K_i`, and by the product rule the NTK is
    :math:`\Theta = \sum_i \Theta_i \prod_{j \ne i} K_j` (the cross terms
    involve :math:`\mathbb{E}[z_i] = 0` of an independent zero-mean branch).
    Independence is what :func:`~ntkcourse.stax.combinators.close_fork`
    checks: at most one branch may lack an affine layer with its own weights
    after the ``FanOut``. Otherwise the network is refused: for ``z * z``
    neural-tangents returns :math:`K^2` where the truth is
    :math:`\mathbb{E}[u^2 v^2] = q_1 q_2 + 2 q_{12}^2`.
    """

    def init_fn(key, input_shape):
        shapes = [tuple(s) for s in input_shape]
        if any(s != shapes[0] for s in shapes):
            raise ValueError(f"FanInProd: all branches must have the same shape, got {shapes}.")
        return shapes[0], ()

    def apply_fn(params, inputs, **kwargs):
        return combined_branches("FanInProd", inputs, lambda values: functools.reduce(jnp.multiply, values))

    def kernel_map(ks):
        if not isinstance(ks, (list, tuple)) or not ks:
            raise ValueError("FanInProd: expects a list of branches (use FanOut/parallel before it).")
        first: Kernel = ks[0]
        for k in ks[1:]:
            if k.nngp.shape != first.nngp.shape or k.shape1 != first.shape1:
                raise ValueError(f"FanInProd: branch outputs differ in shape: {first.shape1} and {k.shape1}.")
        fork = close_fork("FanInProd", ks)

        def product(attr):
            vals = [getattr(k, attr) for k in ks]
            return None if any(v is None for v in vals) else functools.reduce(jnp.multiply, vals)

        ntk = None
        if all(k.ntk is not None for k in ks):
            ntk = sum(k.ntk * functools.reduce(jnp.multiply, [o.nngp for j, o in enumerate(ks) if j != i], 1.0)
                      for i, k in enumerate(ks))
        return first.replace(nngp=product("nngp"), ntk=ntk, cov1=product("cov1"), cov2=product("cov2"),
                             is_gaussian=len(ks) == 1 and first.is_gaussian, fork_independent=fork,
                             **combined_kernel_masks("FanInProd", ks))

    return layer(init_fn, apply_fn, kernel_map, "FanInProd", layout_free=True, handles_masks=True)
