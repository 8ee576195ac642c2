"""How :func:`ntkcourse.graph.gntk` is computed: node layout, tiles and their XLA computation.

The formulas live in :mod:`ntkcourse.graph`; this module only decides how to
evaluate them on many graphs at once. All nodes of a collection are laid out
one after another; contiguous groups of graphs with at most ``block_nodes``
nodes in all form tiles, and each pair of tiles is one compiled XLA
computation on node-pair matrices: aggregation as a batched product with each
graph's ``C Â`` block (graphs padded to the largest one), read-out as a
product with 0/1 membership matrices. No node-pair matrix is larger than
``block_nodes²`` (the default 256 keeps a tile's few matrices in the
processor's caches: on MUTAG 256 was about 5x faster than 2048 on the 2-core
machine); besides them, memory holds the tiles' inputs, linear in the number
of nodes, and the output. For one collection only the tiles on and above the
diagonal are computed. Everything is float64.

Measured alternatives, slower on MUTAG and kept out: one vmapped XLA call per
batch of tile pairs, and aggregation by gathering each node's neighbours.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .graph import aggregation_matrix, readout_matrix, relu_layer

__all__ = ["tiled_gram"]


class _Side(NamedTuple):
    """The graphs of one argument, laid out node after node, and their tiles."""
    features: np.ndarray       # (N, d) raw features
    aggregated: np.ndarray     # (N, d) C Â X, graph by graph
    variances: np.ndarray      # (K, N) diag Σ (each graph with itself) before each of the K = (L-1) R ReLU layers
    blocks: list               # per graph: its C Â (n_g, n_g)
    offsets: np.ndarray        # (G + 1,) first node of each graph
    groups: list               # tiles: (first graph, end graph)


def _self_variances(blocks, aggregated, offsets, num_layers, num_mlp_layers):
    """The diagonal of Σ of each graph with itself before each ReLU layer, by a padded batch over graphs."""
    sizes = np.diff(offsets)
    g, n = len(blocks), int(sizes.max())
    a_pad = np.zeros((g, n, n))
    x_pad = np.zeros((g, n, aggregated.shape[1]))
    for i, block in enumerate(blocks):
        a_pad[i, :sizes[i], :sizes[i]] = block
        x_pad[i, :sizes[i]] = aggregated[offsets[i]:offsets[i + 1]]
    mask = np.arange(n)[None, :] < sizes[:, None]
    with jax.enable_x64(True):
        variances = np.asarray(_self_variances_jit(jnp.asarray(a_pad), jnp.asarray(x_pad),
                                                   num_layers=num_layers, num_mlp_layers=num_mlp_layers))
    return variances[:, mask]


def _self_variances_padded(a_pad, x_pad, *, num_layers, num_mlp_layers):
    sigma = x_pad @ x_pad.transpose(0, 2, 1)
    variances = []
    for layer in range(1, num_layers):
        for _ in range(num_mlp_layers):
            v = jnp.diagonal(sigma, axis1=1, axis2=2)
            variances.append(v)
            sigma, _ = relu_layer(sigma, v[:, :, None], v[:, None, :])
        if layer != num_layers - 1:
            sigma = a_pad @ sigma @ a_pad.transpose(0, 2, 1)
    return jnp.stack(variances) if variances else jnp.zeros((0,) + x_pad.shape[:2])


def _groups(sizes: np.ndarray, block_nodes: int) -> list:
    """Contiguous ranges of graphs with about equal node counts, each at most block_nodes (or one graph)."""
    ends = np.cumsum(sizes)
    count = max(1, math.ceil(ends[-1] / block_nodes))
    while True:
        cuts = np.searchsorted(ends, ends[-1] * np.arange(1, count) / count, side="right")
        bounds = np.unique(np.concatenate([[0], cuts, [len(sizes)]]))
        groups = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        too_big = any(b - a > 1 and sizes[a:b].sum() > block_nodes for a, b in groups)
        if not too_big or count >= len(sizes):
            return groups
        count += 1


def _side(graphs, scale, num_layers, num_mlp_layers, block_nodes) -> _Side:
    blocks = [aggregation_matrix(a, scale) for a, _ in graphs]
    sizes = np.array([a.shape[0] for a, _ in graphs])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    features = np.concatenate([x for _, x in graphs])
    aggregated = np.concatenate([b @ x for b, (_, x) in zip(blocks, graphs)])
    variances = _self_variances(blocks, aggregated, offsets, num_layers, num_mlp_layers)
    return _Side(features, aggregated, variances, blocks, offsets, _groups(sizes, block_nodes))


def _tile_inputs(side: _Side, group, n_nodes: int, n_graphs: int, n_max: int):
    """One tile's arrays, padded to (n_nodes nodes, n_graphs graphs, n_max nodes per graph)."""
    first, end = group
    lo, hi = side.offsets[first], side.offsets[end]
    m = hi - lo
    feats = np.zeros((n_nodes, side.features.shape[1]))
    feats[:m] = side.features[lo:hi]
    aggr = np.zeros_like(feats)
    aggr[:m] = side.aggregated[lo:hi]
    variances = np.zeros((side.variances.shape[0], n_nodes))
    variances[:, :m] = side.variances[:, lo:hi]
    blocks = np.zeros((n_graphs, n_max, n_max))
    slot_node = np.full((n_graphs, n_max), n_nodes, dtype=np.int32)   # padding slots read a zero row
    node_slot = np.full(n_nodes, n_graphs * n_max, dtype=np.int32)    # padding nodes read a zero slot
    member = np.zeros((n_nodes, n_graphs))
    for k, g in enumerate(range(first, end)):
        a, b = side.offsets[g] - lo, side.offsets[g + 1] - lo
        blocks[k, :b - a, :b - a] = side.blocks[g]
        slot_node[k, :b - a] = np.arange(a, b)
        node_slot[a:b] = k * n_max + np.arange(b - a)
        member[a:b, k] = 1.0
    return feats, aggr, variances, blocks, slot_node, node_slot, member


def _aggregate_rows(m, blocks, slot_node, node_slot):
    """Rows of ``m`` multiplied graph by graph by their C Â block (rows of padding stay zero)."""
    padded = jnp.concatenate([m, jnp.zeros((1, m.shape[1]), m.dtype)])[slot_node]   # (g, n_max, cols)
    mixed = jnp.einsum("gab,gbk->gak", blocks, padded).reshape(-1, m.shape[1])
    return jnp.concatenate([mixed, jnp.zeros((1, m.shape[1]), m.dtype)])[node_slot]


def _tile_gram(side1, side2, *, num_layers, num_mlp_layers, jk):
    """The GNTK block of two tiles: the recursion on their node-pair matrix, then the read-out sums."""
    x1, xa1, d1, a1, s1, n1, p1 = side1
    x2, xa2, d2, a2, s2, n2, p2 = side2

    def aggregate(m):
        m = _aggregate_rows(m, a1, s1, n1)
        return _aggregate_rows(m.T, a2, s2, n2).T

    readout = readout_matrix(xa1 @ xa2.T, x1 @ x2.T if jk else None, d1[:, :, None], d2[:, None, :], aggregate,
                             num_layers=num_layers, num_mlp_layers=num_mlp_layers, jk=jk)
    return 2.0 * (p1.T @ readout @ p2)


def _jit(fn, **kwargs):
    # 512-bit vectors where the CPU has them: the arc-cosine loop runs about
    # twice as fast as with XLA's default of 256 (other backends ignore it).
    try:
        return jax.jit(fn, compiler_options={"xla_cpu_prefer_vector_width": 512}, **kwargs)
    except TypeError:  # a JAX without per-function compiler options
        return jax.jit(fn, **kwargs)


_tile_gram_jit = _jit(_tile_gram, static_argnames=("num_layers", "num_mlp_layers", "jk"))
_self_variances_jit = _jit(_self_variances_padded, static_argnames=("num_layers", "num_mlp_layers"))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def tiled_gram(checked1, checked2, *, num_layers, num_mlp_layers, jk, scale, block_nodes):
    """The GNTK Gram matrix of validated graphs (see :func:`ntkcourse.graph.gntk`), tile pair by tile pair."""
    settings = (scale, num_layers, num_mlp_layers, block_nodes)
    side1 = _side(checked1, *settings)
    side2 = side1 if checked2 is None else _side(checked2, *settings)
    sides = (side1,) if checked2 is None else (side1, side2)
    n_max = max(int(np.diff(s.offsets).max()) for s in sides)

    def tiles(side):
        nodes = max(int(side.offsets[e] - side.offsets[f]) for f, e in side.groups)
        graphs_per = max(e - f for f, e in side.groups)
        shape = (_round_up(nodes, 64), _round_up(graphs_per, 8), n_max)
        return [_tile_inputs(side, group, *shape) for group in side.groups]

    tiles1 = tiles(side1)
    tiles2 = tiles1 if checked2 is None else tiles(side2)
    out = np.zeros((len(checked1), len(side2.offsets) - 1))
    static = dict(num_layers=num_layers, num_mlp_layers=num_mlp_layers, jk=jk)
    with jax.enable_x64(True):
        dev1 = [tuple(jnp.asarray(a) for a in t) for t in tiles1]
        dev2 = dev1 if checked2 is None else [tuple(jnp.asarray(a) for a in t) for t in tiles2]
        pending = []
        for p, (f1, e1) in enumerate(side1.groups):
            for q, (f2, e2) in enumerate(side2.groups):
                if checked2 is None and q < p:
                    continue
                pending.append((p, q, _tile_gram_jit(dev1[p], dev2[q], **static)))
        for p, q, block in pending:
            (f1, e1), (f2, e2) = side1.groups[p], side2.groups[q]
            block = np.asarray(block)[:e1 - f1, :e2 - f2]
            if checked2 is None and p == q:
                block = 0.5 * (block + block.T)
            out[f1:e1, f2:e2] = block
            if checked2 is None and p != q:
                out[f2:e2, f1:e1] = block.T
    return out
