"""The graph neural tangent kernel (GNTK) of Du et al. (2019), over collections of graphs.

A graph is a pair ``(adjacency, node_features)``: a symmetric 0/1 adjacency
matrix ``A`` of shape ``(n, n)`` *without* self-loops, and features ``X`` of
shape ``(n, d)``. :func:`gntk` returns the Gram matrix of the GNTK of a
collection of graphs, equal (to round-off) to the values of the authors'
reference code (``GNTK(num_layers, num_mlp_layers, jk, scale)`` in ``gntk.py``
of https://github.com/KangchengHou/gntk), constant factors included, so that
hyper-parameters published with that code carry over.

**The recursion** (Du et al. 2019, section 4), for a pair of graphs ``G, G'``
with ``n`` and ``n'`` nodes. Every quantity is a node-pair matrix of shape
``(n, n')``. Write ``Â = A + I`` (self-loops added) and ``c = 1`` for
``scale='uniform'`` or ``c_u = 1 / (deg_u + 1)`` (one over the row sum of
``Â``) for ``scale='degree'``; aggregation is ``agg(M) = C Â M Â'ᵀ C'`` with
``C = diag(c)``. Then::

    Σ = agg(X X'ᵀ),  Θ = Σ,  J = X X'ᵀ                     (input, before any block)
    for each of the num_layers - 1 blocks:
        for each of the num_mlp_layers ReLU layers:
            ρ = Σ / (√diag Σ_GG ⊗ √diag Σ_G'G')             (the norms from each graph with itself)
            Σ̇ = (π - arccos ρ) / π                         = 2 E[relu'(u) relu'(v)]
            Σ = √.. ⊗ √.. · (ρ (π - arccos ρ) + √(1 - ρ²)) / π = 2 E[relu(u) relu(v)]
            Θ = Θ ⊙ Σ̇ + Σ
        J = J + Θ
        Σ, Θ = agg(Σ), agg(Θ)                               (except after the last block)
    GNTK(G, G') = 2 · Σ_{u,u'} (J if jk else Θ)[u, u']

``num_layers`` counts the input layer, so ``num_layers=L`` performs ``L - 1``
blocks; ``num_layers=1`` gives ``2 Σ agg(X X'ᵀ)`` (or ``2 Σ X X'ᵀ`` with
``jk=True``). Jumping knowledge (``jk=True``) sums the read-outs of the raw
features and of every block.

**Conventions, against those of** :mod:`ntkcourse.stax`. ``stax`` (like
neural-tangents) starts from the input kernel ``x·x'/d`` and multiplies by
``W_std²`` at a ``Dense`` layer (NTK parameterisation, ``W_std/√fan_in``).
The GNTK differs in three constants, all kept here to match the authors:

* the input kernel is ``X X'ᵀ``, *not* divided by ``d``: the first dense layer
  of each graph network is ``Dense(W_std=√d)`` in ``stax`` terms;
* every ReLU layer carries ``c_σ = 2`` (``W_std=√2``, the usual He factor),
  which is why ``Σ`` and ``Σ̇`` above are *twice* the ReLU expectations;
* the read-out is multiplied by 2: the network's output is ``√2`` times the
  sum over nodes of a last ``Dense(1, W_std=√2)`` layer (for ``jk``, of one
  such head per block, and a ``Dense(1, W_std=√d)`` head on the raw
  features).

No layer has a bias. :mod:`ntkcourse.graph_network` builds the finite graph
network whose NTK converges to exactly this kernel.

Two numerical differences from the reference code, both where it is
ill-conditioned: correlations within 8 ulps of ±1 (a node paired with itself,
or two nodes with identical neighbourhoods) are taken as exactly ±1, where the
reference's ``arccos(1 - 1 ulp) ≈ 1.5e-8`` shifts each ReLU layer's Σ̇ by
about 5e-9 (so Gram entries with such pairs differ by up to ~2e-8 relative:
every diagonal entry, and off-diagonal ones of graphs with identical
one-hot neighbourhoods, 1e-9 on MUTAG; all others agree to ~1e-15); and a node whose variance is 0 (zero features and no
neighbours) contributes 0, where the reference divides 0 by 0.

**Computation.** All nodes of a collection are laid out one after another;
contiguous groups of graphs with at most ``block_nodes`` nodes in all form
tiles, and each pair of tiles is one compiled XLA computation on node-pair
matrices (aggregation as a batched product with each graph's ``C Â`` block,
read-out as a product with 0/1 membership matrices). No node-pair matrix is
larger than ``block_nodes²`` (the default 256 keeps a tile's few matrices in
the processor's caches: on MUTAG 256 is 5x faster than 2048); besides them,
memory holds the tiles' inputs, linear in the number of nodes, and the
output. ``gntk(graphs)`` computes only the tiles on and above the diagonal.
Everything is float64.

References:
  Du, Hou, Póczos, Salakhutdinov, Wang, Xu. Graph Neural Tangent Kernel:
  Fusing Graph Neural Networks with Graph Kernels. NeurIPS 2019.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import dual

__all__ = ["gntk", "check_graphs", "check_settings", "aggregation_matrix", "relu_layer"]

_SCALES = ("uniform", "degree")


def _error(message: str) -> ValueError:
    return ValueError(f"gntk: {message}")


def check_settings(num_layers, num_mlp_layers, jk, scale, size, *, function="gntk", size_name="block_nodes"):
    """Validate the GNTK's settings; return them as ``(int, int, bool, str, int)``.

    ``jk`` may be a bool or the authors' command-line 0/1; ``size`` is the
    caller's positive size argument (``block_nodes`` of :func:`gntk`).

    Raises:
      ValueError: naming ``function``, the argument, the value and what was expected.
    """
    def positive_int(name, value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{function}: `{name}` must be an integer >= 1, got {value!r}.")
        return int(value)

    num_layers = positive_int("num_layers", num_layers)
    num_mlp_layers = positive_int("num_mlp_layers", num_mlp_layers)
    if isinstance(jk, (bool, np.bool_)) or (isinstance(jk, (int, np.integer)) and jk in (0, 1)):
        jk = bool(jk)
    else:
        raise ValueError(f"{function}: `jk` must be True or False (or 1 or 0), got {jk!r}.")
    if not isinstance(scale, str) or scale not in _SCALES:
        raise ValueError(f"{function}: `scale` must be 'uniform' or 'degree', got {scale!r}.")
    return num_layers, num_mlp_layers, jk, scale, positive_int(size_name, size)


def check_graphs(graphs, name: str = "graphs", function: str = "gntk"):
    """Validate a collection of graphs; return a list of (adjacency, features) float64 arrays.

    Args:
      graphs: a non-empty sequence of ``(adjacency, node_features)`` pairs:
        ``adjacency`` a symmetric 0/1 array (or SciPy sparse matrix) of shape
        ``(n, n)`` with a zero diagonal (no self-loops), ``n >= 1``;
        ``node_features`` a finite array of shape ``(n, d)``, the same ``d``
        for every graph.
      name: the argument's name, for error messages.
      function: the calling function's name, for error messages.

    Returns:
      A list of ``(adjacency, features)`` pairs of float64 NumPy arrays.

    Raises:
      ValueError: naming the graph's index and what is wrong with it.
    """
    def fail(message):
        return ValueError(f"{function}: {message}")

    if isinstance(graphs, (str, bytes)) or not isinstance(graphs, Sequence):
        raise fail(f"`{name}` must be a list of (adjacency, node_features) pairs, got {type(graphs).__name__}.")
    if len(graphs) == 0:
        raise fail(f"`{name}` is empty; expected at least one graph.")
    out = []
    feature_dim = None
    for i, graph in enumerate(graphs):
        where = f"graph {i} of `{name}`"
        if not isinstance(graph, (tuple, list)) or len(graph) != 2:
            raise fail(f"{where} must be an (adjacency, node_features) pair, got {type(graph).__name__}.")
        adjacency, features = graph
        if hasattr(adjacency, "toarray"):  # a SciPy sparse matrix
            adjacency = adjacency.toarray()
        adjacency = np.asarray(adjacency, dtype=np.float64)
        features = np.asarray(features, dtype=np.float64)
        if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
            raise fail(f"{where}: the adjacency must be a square matrix, got shape {adjacency.shape}.")
        n = adjacency.shape[0]
        if n == 0:
            raise fail(f"{where} is empty (0 nodes); expected at least one node.")
        if not np.all((adjacency == 0) | (adjacency == 1)):
            bad = tuple(int(k) for k in np.argwhere((adjacency != 0) & (adjacency != 1))[0])
            raise fail(f"{where}: the adjacency must hold only 0 and 1, got A[{bad[0]}, {bad[1]}] = {adjacency[bad]:g}.")
        if np.any(np.diag(adjacency) != 0):
            u = int(np.flatnonzero(np.diag(adjacency))[0])
            raise fail(f"{where}: the adjacency has a self-loop at node {u} (A[{u}, {u}] = 1); "
                       "pass it without self-loops: gntk adds them, as Du et al. do.")
        if not np.array_equal(adjacency, adjacency.T):
            u, v = (int(k) for k in np.argwhere(adjacency != adjacency.T)[0])
            raise fail(f"{where}: the adjacency is not symmetric (A[{u}, {v}] = {adjacency[u, v]:g} but "
                       f"A[{v}, {u}] = {adjacency[v, u]:g}); expected an undirected graph.")
        if features.ndim != 2:
            raise fail(f"{where}: node_features must have shape (n_nodes, d) = ({n}, d), got shape {features.shape}.")
        if features.shape[0] != n:
            raise fail(f"{where}: node_features has {features.shape[0]} rows but the adjacency has {n} nodes; "
                       "expected one row per node.")
        if not np.all(np.isfinite(features)):
            raise fail(f"{where}: node_features contains NaN or infinite values.")
        if feature_dim is None:
            feature_dim = features.shape[1]
        elif features.shape[1] != feature_dim:
            raise fail(f"{where} has {features.shape[1]} features per node but graph 0 has {feature_dim}; "
                       "expected the same feature dimension for every graph.")
        out.append((adjacency, features))
    return out


def aggregation_matrix(adjacency: np.ndarray, scale: str) -> np.ndarray:
    """The matrix ``C Â`` of one aggregation: ``Â = A + I``; ``C = I`` or ``diag(1 / rowsum Â)``."""
    a_hat = adjacency + np.eye(adjacency.shape[0])
    if scale == "degree":
        a_hat = a_hat / a_hat.sum(axis=1, keepdims=True)
    return a_hat


_RELU = dual.relu()


def relu_layer(sigma, var1, var2):
    """One ReLU layer with c_σ = 2: ``(2 E[relu(u) relu(v)], 2 E[relu'(u) relu'(v)])``.

    ``sigma`` is a covariance block, ``var1`` and ``var2`` the variances of its
    rows and columns, shaped to broadcast against it. Uses the arc-cosine
    closed forms of :func:`ntkcourse.dual.relu` (Cho & Saul 2009), which take
    correlations within 8 ulps of ±1 as exactly ±1 (what exact arithmetic
    gives for a node paired with itself); zero variances give zero.
    """
    return 2.0 * _RELU.nngp(var1, var2, sigma), 2.0 * _RELU.dnngp(var1, var2, sigma)


class _Side(NamedTuple):
    """The graphs of one argument, laid out node after node, and their tiles."""
    features: np.ndarray       # (N, d) raw features
    aggregated: np.ndarray     # (N, d) C Â X, graph by graph
    variances: np.ndarray      # (K, N) diag Σ (each graph with itself) before each of the K = (L-1) R ReLU layers
    blocks: list               # per graph: its C Â (n_g, n_g)
    offsets: np.ndarray        # (G + 1,) first node of each graph
    groups: list               # tiles: (first graph, end graph)


def _self_variances(blocks, aggregated, offsets, num_layers, num_mlp_layers):
    """diag Σ of each graph with itself before each ReLU layer, by a padded batch over graphs."""
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
    x1, xa1, d1, a1, s1, n1, p1 = side1
    x2, xa2, d2, a2, s2, n2, p2 = side2

    def aggregate(m):
        m = _aggregate_rows(m, a1, s1, n1)
        return _aggregate_rows(m.T, a2, s2, n2).T

    sigma = xa1 @ xa2.T
    ntk = sigma
    jump = x1 @ x2.T if jk else None
    k = 0
    for layer in range(1, num_layers):
        for _ in range(num_mlp_layers):
            sigma, dot_sigma = relu_layer(sigma, d1[k][:, None], d2[k][None, :])
            ntk = ntk * dot_sigma + sigma
            k += 1
        if jk:
            jump = jump + ntk
        if layer != num_layers - 1:
            sigma, ntk = aggregate(sigma), aggregate(ntk)
    readout = jump if jk else ntk
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


def gntk(graphs, graphs2=None, *, num_layers, num_mlp_layers, jk, scale, block_nodes: int = 256):
    """The GNTK Gram matrix of Du et al. (2019), equal to their reference code's values.

    See the module docstring for the recursion and its constants. With
    ``graphs2=None`` the result is the symmetric ``(N, N)`` Gram matrix of
    ``graphs``; otherwise the ``(N, N2)`` block between ``graphs`` and
    ``graphs2`` (e.g. test against train).

    Args:
      graphs: a list of ``(adjacency, node_features)`` pairs: ``adjacency`` a
        symmetric 0/1 ``(n, n)`` array or SciPy sparse matrix *without*
        self-loops (they are added here), ``node_features`` ``(n, d)``.
      graphs2: a second list of graphs with the same ``d``, or ``None``.
      num_layers: layers *including the input layer* (the authors' meaning):
        ``num_layers - 1`` BLOCK operations.
      num_mlp_layers: ReLU layers in each block.
      jk: jumping knowledge: the read-out sums the raw features' and every
        block's read-out; otherwise only the last block's.
      scale: ``'uniform'`` (aggregation sums over the node and its
        neighbours) or ``'degree'`` (divides by their number).
      block_nodes: tile size in nodes; memory use grows with its square.

    Returns:
      A float64 NumPy array of shape ``(len(graphs), len(graphs2 or graphs))``.

    Raises:
      ValueError: for bad settings, or a bad graph (naming its index).

    Example:
      >>> import numpy as np
      >>> triangle = (np.ones((3, 3)) - np.eye(3), np.ones((3, 1)))
      >>> float(gntk([triangle], num_layers=1, num_mlp_layers=1, jk=False, scale='uniform')[0, 0])
      162.0
    """
    num_layers, num_mlp_layers, jk, scale, block_nodes = check_settings(
        num_layers, num_mlp_layers, jk, scale, block_nodes)
    checked1 = check_graphs(graphs, "graphs")
    checked2 = None if graphs2 is None else check_graphs(graphs2, "graphs2")
    if checked2 is not None and checked2[0][1].shape[1] != checked1[0][1].shape[1]:
        raise _error(f"graph 0 of `graphs2` has {checked2[0][1].shape[1]} features per node but the graphs of "
                     f"`graphs` have {checked1[0][1].shape[1]}; expected the same feature dimension.")
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
