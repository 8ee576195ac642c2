r"""Graph layers: neural-tangents' ``Aggregate``.

Each input ``x`` of shape ``(batch, X_1, ..., X_N, channels)`` comes with a
*pattern*, the (weighted) adjacency of its graph over the aggregated axes.
The layer replaces every vertex by the weighted sum of its predecessors:

.. math:: y_{n, j, c} = \sum_i x_{n, i, c} \, A_{n, i, j},

with ``A[n, i, j]`` the weight of the arc from tail ``i`` to head ``j`` in
input ``n`` (neural-tangents' convention: ``y = x @ A`` along the aggregated
axes). It has no parameters and is linear, so its kernels are those of its
input multiplied by the patterns on both sides, for the NNGP and the NTK
alike (Du et al. 2019, the aggregation step of the GNTK):

.. math:: \Sigma'(x, x')_{j j'} = \sum_{i i'} A_{i j} \, \Sigma(x, x')_{i i'} \, A'_{i' j'}
          = (A^\top \Sigma A')_{j j'}.

It needs the covariance of every pair of vertices of its input (no
``diagonal_spatial``).

References:
  Du, Hou, Póczos, Salakhutdinov, Wang, Xu. Graph Neural Tangent Kernel:
  Fusing Graph Neural Networks with Graph Kernels. NeurIPS 2019.
  Novak et al. Neural Tangents: Fast and Easy Infinite Neural Networks in
  Python. ICLR 2020 (the layer's API).
"""
from __future__ import annotations

import math
import string
from typing import Callable, Optional, Sequence, Tuple, Union

import jax.numpy as jnp
import numpy as np

from .. import validation
from ..kernel import Kernel
from .conv_specs import axis_arg, check_layout
from .layer import layer

__all__ = ["Aggregate"]

_IMPLEMENTATIONS = ("DENSE", "SPARSE")


def _identity(p):
    return p


def _every_pair(output_diagonal):
    return False


def Aggregate(
    aggregate_axis: Optional[Union[int, Sequence[int]]] = None,
    batch_axis: int = 0,
    channel_axis: int = -1,
    to_dense: Optional[Callable] = _identity,
    implementation: str = "DENSE",
):
    r"""Aggregation over the vertices of a graph (neural-tangents' ``stax.Aggregate``).

    ``apply_fn(params, x, pattern=A)`` and ``kernel_fn(x1, x2, get,
    pattern=(A1, A2))``; ``pattern=None`` (or not given) means no
    aggregation: the layer is the identity, as in neural-tangents. Kernel:
    :math:`K' = A_1^\top K A_2` over the aggregated axes, for the NNGP and
    the NTK (see the module docstring).

    Args:
      aggregate_axis: the axes of the inputs to aggregate over, as axes of
        the inputs (``None``: every axis but the batch and channel axes).
      batch_axis, channel_axis: where the inputs keep their batch and channel
        axes (neural-tangents' arguments; default 0 and -1). The pattern is
        batch first whatever they are, its vertex axes in the order of the
        aggregated axes; ``kernel_fn`` checks them against the layout of
        the activations reaching the layer
        (:func:`ntkcourse.stax.conv_specs.check_layout`).
      to_dense: with ``implementation='DENSE'``, a function applied to each
        pattern before use (default: the identity); it is applied to blocks
        of patterns inside compiled code, so it must be a ``jax.numpy``
        function of an array whose leading axis is the batch.
      implementation: ``'DENSE'``: ``pattern`` is the adjacency
        ``(batch, X_i1, ..., X_iK, X_i1, ..., X_iK)`` of the ``K`` aggregated
        axes (float or boolean weights); ``'SPARSE'``: ``pattern`` is an
        integer edge list ``(batch, n_edges, K, 2)`` (or ``(batch, n_edges,
        2)`` when ``K = 1``) of (tail, head) vertices, repeated edges adding
        up; an edge with a negative coordinate is padding and is dropped.
        Both give the same values (here the edge list is turned into the
        dense adjacency: no saving of memory).

    Returns:
      ``(init_fn, apply_fn, kernel_fn)``.

    Example:
      >>> import numpy as np
      >>> from ntkcourse import stax
      >>> x = np.ones((1, 3, 2))                     # one graph, 3 vertices, 2 features
      >>> path = np.array([[[0., 1, 0], [1, 0, 1], [0, 1, 0]]])
      >>> _, apply_fn, kernel_fn = stax.Aggregate()
      >>> apply_fn((), x, pattern=path)[0, :, 0].tolist()  # number of neighbours
      [1.0, 2.0, 1.0]
      >>> kernel_fn(x, None, "nngp", pattern=path)[0, 0].tolist()  # degrees' outer product
      [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    where = "Aggregate"
    if aggregate_axis is not None:
        given = aggregate_axis
        axes = (given,) if isinstance(given, (int, np.integer)) else given
        try:
            ok = len(axes) > 0 and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes)
        except TypeError:
            ok = False
        if not ok:
            raise validation.fail(where, "aggregate_axis", "None, an integer axis or a non-empty sequence of them",
                                  given)
        aggregate_axis = tuple(int(a) for a in axes)
    batch_axis = axis_arg(where, "batch_axis", batch_axis)
    channel_axis = axis_arg(where, "channel_axis", channel_axis)
    if to_dense is None:
        to_dense = _identity
    to_dense = validation.callable_arg(where, "to_dense", to_dense)
    implementation = validation.one_of(where, "implementation", implementation, _IMPLEMENTATIONS, upper=True)

    def axes_for(ndim: int) -> Tuple[int, ...]:
        """The aggregated axes as indices among the spatial axes (the inputs'
        axes other than batch and channels, in order: the kernel's order).
        """
        spatial = layout_spatial_axes(ndim)
        if not spatial:
            raise ValueError(
                f"{where}: inputs need vertex axes besides the batch and channel axes, (batch, vertices, ..., "
                f"channels); got {ndim} axes."
            )
        if aggregate_axis is None:
            return tuple(range(len(spatial)))
        out = []
        for a in aggregate_axis:
            a_ = a % ndim if -ndim <= a < ndim else None
            if a_ not in spatial:
                raise ValueError(
                    f"{where}: `aggregate_axis` must name axes of the input other than the batch axis "
                    f"({batch_axis % ndim}) and the channel axis ({channel_axis % ndim}) for inputs with {ndim} axes; "
                    f"got {aggregate_axis!r}."
                )
            out.append(spatial.index(a_))
        if len(set(out)) != len(out):
            raise validation.fail(where, "aggregate_axis", "distinct axes", aggregate_axis)
        return tuple(out)

    def layout_spatial_axes(ndim: int):
        b, c = batch_axis % ndim, channel_axis % ndim
        if b == c:
            raise ValueError(f"{where}: `batch_axis` and `channel_axis` must differ, got {batch_axis} and "
                             f"{channel_axis} for inputs with {ndim} axes.")
        return [i for i in range(ndim) if i not in (b, c)]

    def dense_pattern(pattern, batch: int, agg_shape: Tuple[int, ...], k_shape):
        """The adjacency ``(batch, *agg_shape, *agg_shape)`` of ``pattern``."""
        k = len(agg_shape)
        expected = (batch,) + agg_shape + agg_shape
        if implementation == "DENSE":
            dense = to_dense(pattern)
            if tuple(jnp.shape(dense)) != expected:
                want = ", ".join(str(v) for v in agg_shape + agg_shape)
                raise ValueError(
                    f"{where}: `pattern` (after `to_dense`) must have shape (batch, *aggregated axes, *aggregated "
                    f"axes) = (batch, {want}) for inputs of shape (batch, {', '.join(map(str, k_shape[1:]))}); got "
                    f"shape (batch, {', '.join(str(v) for v in jnp.shape(dense)[1:])})."
                )
            return jnp.asarray(dense)
        p = jnp.asarray(pattern)
        if k == 1 and p.ndim == 3:
            p = p[:, :, None, :]
        if p.ndim != 4 or p.shape[0] != batch or p.shape[2] != k or p.shape[3] != 2:
            raise ValueError(
                f"{where}: with implementation='SPARSE', `pattern` must be integer edges of shape (batch, n_edges, "
                f"{k}, 2){' or (batch, n_edges, 2)' if k == 1 else ''} for {k} aggregated axes; got shape "
                f"(batch, {', '.join(str(v) for v in jnp.shape(pattern)[1:])})."
            )
        p = jnp.round(p).astype(jnp.int32) if jnp.issubdtype(p.dtype, jnp.floating) else p.astype(jnp.int32)
        size = math.prod(agg_shape)
        strides = np.cumprod((1,) + agg_shape[::-1])[:-1][::-1]

        def flat(coords):  # (batch, n_edges, K) -> vertex index, or `size` (dropped) for padding
            index = jnp.sum(coords * jnp.asarray(strides, jnp.int32), axis=-1)
            inside = jnp.all((coords >= 0) & (coords < jnp.asarray(agg_shape, jnp.int32)), axis=-1)
            return jnp.where(inside, index, size)

        tails, heads = flat(p[..., 0]), flat(p[..., 1])
        keep = (tails < size) & (heads < size)
        rows = jnp.broadcast_to(jnp.arange(batch)[:, None], tails.shape)
        dense = jnp.zeros((batch, size, size)).at[rows, jnp.where(keep, tails, size), heads].add(1.0, mode="drop")
        return dense.reshape(expected)

    def init_fn(key, input_shape):
        axes_for(len(input_shape))
        return input_shape, ()

    def apply_fn(params, inputs, *, pattern=None, **kwargs):
        if pattern is None:
            return inputs
        inputs = jnp.asarray(inputs)
        axes = axes_for(inputs.ndim)
        # batch first, channels last (the spatial axes in order) for the product, then back
        order = [batch_axis % inputs.ndim] + layout_spatial_axes(inputs.ndim) + [channel_axis % inputs.ndim]
        return jnp.transpose(aggregate(jnp.transpose(inputs, order), axes, pattern), np.argsort(order))

    def aggregate(inputs, axes, pattern):
        """``apply_fn`` on inputs batch first and channels last."""
        agg_shape = tuple(inputs.shape[1 + a] for a in axes)
        a = dense_pattern(pattern, inputs.shape[0], agg_shape, inputs.shape).astype(inputs.dtype)
        letters = iter(c for c in string.ascii_letters if c not in "nz")
        xs = ["n"] + [next(letters) for _ in range(inputs.ndim - 2)] + ["z"]
        heads = {ax: next(letters) for ax in axes}
        p = ["n"] + [xs[1 + ax] for ax in axes] + [heads[ax] for ax in axes]
        out = [heads.get(i - 1, s) if 0 < i < inputs.ndim - 1 else s for i, s in enumerate(xs)]
        return jnp.einsum(f"{''.join(xs)},{''.join(p)}->{''.join(out)}", inputs, a)

    def aggregated(x, a1, a2, batch_ndim: int, s: int, axes):
        """``x`` with each pair ``(i, i')`` of the aggregated axes taken to ``(j, j')``
        by ``a1`` on the first and ``a2`` on the second member (``a1^T x a2``).
        """
        letters = iter(c for c in string.ascii_letters if c not in "nm")
        batch = "nm"[:batch_ndim] if batch_ndim == 2 else "n"
        first = [next(letters) for _ in range(s)]
        second = [next(letters) for _ in range(s)]
        x_idx = batch + "".join(f + t for f, t in zip(first, second))
        new1 = {ax: next(letters) for ax in axes}
        new2 = {ax: next(letters) for ax in axes}
        b2 = batch[-1]
        p1 = batch[0] + "".join(first[ax] for ax in axes) + "".join(new1[ax] for ax in axes)
        p2 = b2 + "".join(second[ax] for ax in axes) + "".join(new2[ax] for ax in axes)
        out = batch + "".join(new1.get(t, first[t]) + new2.get(t, second[t]) for t in range(s))
        return jnp.einsum(f"{x_idx},{p1},{p2}->{out}", x, a1, a2, optimize=True)

    def kernel_map(k: Kernel) -> Kernel:
        if k.pattern1 is None:
            return k  # no pattern given: no aggregation (neural-tangents' pattern=None)
        if k.diagonal_spatial:
            raise ValueError(f"{where}: needs the covariance of every pair of vertices, not only the diagonal.")
        check_layout(where, k, batch_axis, channel_axis)
        ndim = len(k.shape1)
        axes = axes_for(ndim)
        s = ndim - 2
        agg_shape = tuple(k.shape1[1 + a] for a in axes)
        dtype = k.nngp.dtype
        a1 = dense_pattern(k.pattern1, k.shape1[0], agg_shape, k.shape1).astype(dtype)
        a2 = a1 if k.pattern2 is None else dense_pattern(k.pattern2, k.shape2[0], agg_shape, k.shape2).astype(dtype)
        return k.replace(
            nngp=aggregated(k.nngp, a1, a2, 2, s, axes),
            ntk=None if k.ntk is None else aggregated(k.ntk, a1, a2, 2, s, axes),
            cov1=aggregated(k.cov1, a1, a1, 1, s, axes),
            cov2=None if k.cov2 is None else aggregated(k.cov2, a2, a2, 1, s, axes),
        )

    config = {"aggregate_axis": aggregate_axis, "batch_axis": batch_axis, "channel_axis": channel_axis,
              "to_dense": to_dense, "implementation": implementation}
    return layer(init_fn, apply_fn, kernel_map, where, config, input_diagonal=_every_pair, reads_neighbours=True,
                 reads_patterns=True, input_layout=(batch_axis, channel_axis))
