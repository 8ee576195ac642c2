r"""A constant linear map of the inputs (neural-tangents' ``DotGeneral``).

``DotGeneral(rhs=A)`` computes ``lax.dot_general(x, A, dimension_numbers)``
and ``DotGeneral(lhs=A)`` computes ``lax.dot_general(A, x, dimension_numbers)``:
a fixed (non-trainable) linear map of the layer's input. A linear map L of
the spatial axes turns the covariance of the inputs into that of the outputs
by acting on both positions of every pair, :math:`\Sigma' = (L \otimes L)\,\Sigma`:
with ``A`` contracted against the spatial axes ``h`` of ``x``,

.. math:: \Sigma'(p, p') = \sum_{h, h'} A_h A_{h'} \, \Sigma((h, p), (h', p')),

and the same for the NTK (the layer has no parameters; Novak et al. 2020).
The kernel is bilinear in ``A``: scaling ``A`` by c scales it by c².
"""
from __future__ import annotations

import string

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import validation
from ..kernel import Kernel
from .conv_specs import check_default_axes
from .layer import layer, pass_requirement

__all__ = ["DotGeneral"]

_WHERE = "DotGeneral"


def _dimension_numbers(value):
    expected = "((lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch)), four tuples of axis indices"
    try:
        (lc, rc), (lb, rb) = value
        out = tuple(tuple(tuple(int(i) for i in axes) for axes in pair) for pair in ((lc, rc), (lb, rb)))
    except (TypeError, ValueError):
        raise validation.fail(_WHERE, "dimension_numbers", expected, value) from None
    (lc, rc), (lb, rb) = out
    if len(lc) != len(rc) or len(lb) != len(rb):
        raise validation.fail(_WHERE, "dimension_numbers", expected + " (pairs of equal length)", value)
    return out


def DotGeneral(*, lhs=None, rhs=None, dimension_numbers=(((), ()), ((), ())), precision=None, batch_axis: int = 0,
               channel_axis: int = -1):
    r"""Multiply the inputs by a constant array with ``lax.dot_general``.

    Args:
      lhs: the constant left factor (the inputs are then the right one), or ``None``.
      rhs: the constant right factor (the inputs are then the left one), or
        ``None``. With both ``None`` the layer is the identity.
      dimension_numbers: ``((lhs_contracting, rhs_contracting), (lhs_batch,
        rhs_batch))`` as in :func:`jax.lax.dot_general`.
      precision: passed to ``lax.dot_general`` in ``apply_fn`` (kernels are
        computed in float64).
      batch_axis, channel_axis: the inputs' batch and channel axes.

    ``init_fn`` and ``apply_fn`` accept every case ``lax.dot_general`` does.
    ``kernel_fn`` computes the case where the output keeps the batch axis
    first and the channels last: the inputs' contracted axes are spatial
    (not the batch or channel axis), there are no ``dot_general`` batch
    axes, and every axis of the constant is contracted (or it is a scalar);
    e.g. ``DotGeneral(rhs=2.)``, or ``DotGeneral(rhs=jnp.array([1., -1.]),
    dimension_numbers=(((1,), (0,)), ((), ())))`` to subtract the second row
    of an image from the first. Other cases raise ``ValueError`` in
    ``kernel_fn`` with the reason. A contraction mixes positions, so the
    layer then needs every pair of positions of its input kernel.

    Example:
      >>> import numpy as np
      >>> from ntkcourse import stax
      >>> _, _, kernel_fn = stax.serial(stax.Dense(1), stax.DotGeneral(rhs=3.0))
      >>> float(kernel_fn(np.ones((1, 2)), None, "nngp")[0, 0])  # 3^2 * 1
      9.0
    """
    if lhs is not None and rhs is not None:
        raise ValueError(f"{_WHERE}: give at most one of `lhs` and `rhs` (the inputs are the other factor), got both.")
    dimension_numbers = _dimension_numbers(dimension_numbers)
    for name, value in (("batch_axis", batch_axis), ("channel_axis", channel_axis)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise validation.fail(_WHERE, name, "an integer axis", value)
    identity = lhs is None and rhs is None
    is_lhs = rhs is None
    other = None if identity else np.asarray(lhs if is_lhs else rhs)
    if other is not None and not np.issubdtype(other.dtype, np.number):
        raise validation.fail(_WHERE, "lhs" if is_lhs else "rhs", "a numeric array or number", lhs if is_lhs else rhs)
    (lc, rc), (lb, rb) = dimension_numbers
    input_contract, other_contract = (rc, lc) if is_lhs else (lc, rc)
    input_batch = rb if is_lhs else lb

    def dot_fn(x):
        if identity:
            return x
        a = jnp.asarray(other, x.dtype)
        args = (a, x) if is_lhs else (x, a)
        return lax.dot_general(*args, dimension_numbers, precision)

    def init_fn(key, input_shape):
        out = jax.eval_shape(dot_fn, jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32))
        return tuple(out.shape), ()

    def apply_fn(params, inputs, **kwargs):
        return dot_fn(inputs)

    def _check_kernel_case(ndim):
        check_default_axes(_WHERE, ndim, batch_axis, channel_axis)
        contracted = sorted(i % ndim for i in input_contract)
        problem = None
        if input_batch:
            problem = "`dimension_numbers` has dot_general batch axes, which move to the front of the output"
        elif 0 in contracted or ndim - 1 in contracted:
            problem = "the batch or channel axis of the inputs is contracted"
        elif other.ndim != len(other_contract):
            problem = ("the constant has axes that are not contracted; they would come "
                       + ("before the batch axis" if is_lhs else "after the channel axis") + " of the output")
        if problem:
            raise ValueError(
                f"{_WHERE}: kernel_fn computes only maps that keep the batch axis first and the channels last; "
                f"here {problem} (dimension_numbers={dimension_numbers}, constant of shape {other.shape}, inputs "
                f"with {ndim} axes). apply_fn computes this case."
            )
        # input spatial index (0-based) -> constant axis, in the constant's order of contraction
        return {int(i) % ndim - 1: int(c) % max(other.ndim, 1) for i, c in zip(input_contract, other_contract)}

    def _contract(x, batch_ndim, nd, pairs, spatial_to_const):
        letters = iter(string.ascii_letters)
        batch = [next(letters) for _ in range(batch_ndim)]
        first = [next(letters) for _ in range(nd)]
        second = [next(letters) for _ in range(nd)] if pairs else first
        sub_x = batch + [s for j in range(nd) for s in ((first[j], second[j]) if pairs else (first[j],))]
        const_left = [None] * other.ndim
        const_right = [None] * other.ndim
        for j, c in spatial_to_const.items():
            const_left[c], const_right[c] = first[j], second[j]
        out = batch + [s for j in range(nd) if j not in spatial_to_const
                       for s in ((first[j], second[j]) if pairs else (first[j],))]
        a = jnp.asarray(other, x.dtype)
        spec = f"{''.join(sub_x)},{''.join(const_left)},{''.join(const_right)}->{''.join(out)}"
        return jnp.einsum(spec, x, a, a)

    def kernel_map(k: Kernel) -> Kernel:
        if identity:
            return k
        ndim = len(k.shape1)
        spatial_to_const = _check_kernel_case(ndim)
        nd = ndim - 2
        if spatial_to_const and k.diagonal_spatial:
            raise ValueError(f"{_WHERE}: a contraction over spatial axes needs every pair of positions, but the "
                             "kernel holds only the spatial diagonal.")

        def fn(x, batch_ndim):
            if x is None:
                return None
            if not spatial_to_const:
                return x * jnp.asarray(other, x.dtype) ** 2
            return _contract(x, batch_ndim, nd, not k.diagonal_spatial, spatial_to_const)

        def shape(s):
            return tuple(jax.eval_shape(dot_fn, jax.ShapeDtypeStruct(tuple(s), jnp.float32)).shape)

        return k.replace(nngp=fn(k.nngp, 2), ntk=fn(k.ntk, 2), cov1=fn(k.cov1, 1), cov2=fn(k.cov2, 1),
                         shape1=shape(k.shape1), shape2=shape(k.shape2))

    spatial_contraction = bool(input_contract) and not identity

    def input_diagonal(output_diagonal):
        return False if spatial_contraction else pass_requirement(output_diagonal)

    return layer(init_fn, apply_fn, kernel_map, _WHERE,
                 dict(lhs=lhs, rhs=rhs, dimension_numbers=dimension_numbers, precision=precision,
                      batch_axis=batch_axis, channel_axis=channel_axis),
                 input_diagonal=input_diagonal, reads_neighbours=spatial_contraction)
