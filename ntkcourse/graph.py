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

**Computation.** This module holds the formulas (validation, aggregation,
the ReLU layer, :func:`readout_matrix`); :mod:`ntkcourse.graph_tiles` decides
how they are evaluated on many graphs at once: node-pair tiles of at most
``block_nodes`` nodes a side, each tile pair one compiled XLA computation, so
memory stays bounded whatever the number of graphs. Everything is float64.

References:
  Du, Hou, Póczos, Salakhutdinov, Wang, Xu. Graph Neural Tangent Kernel:
  Fusing Graph Neural Networks with Graph Kernels. NeurIPS 2019.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import dual, validation

__all__ = ["gntk", "check_graphs", "check_settings", "aggregation_matrix", "relu_layer", "readout_matrix"]

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
    num_layers = validation.positive_int(function, "num_layers", num_layers)
    num_mlp_layers = validation.positive_int(function, "num_mlp_layers", num_mlp_layers)
    if isinstance(jk, (bool, np.bool_)) or (isinstance(jk, (int, np.integer)) and jk in (0, 1)):
        jk = bool(jk)
    else:
        raise validation.fail(function, "jk", "True or False (or 1 or 0)", jk)
    scale = validation.one_of(function, "scale", scale, _SCALES)
    return num_layers, num_mlp_layers, jk, scale, validation.positive_int(function, size_name, size)


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
            raise fail(
                f"{where}: the adjacency must hold only 0 and 1, got A[{bad[0]}, {bad[1]}] = {adjacency[bad]:g}."
            )
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


def readout_matrix(sigma, jump, var1, var2, aggregate, *, num_layers, num_mlp_layers, jk):
    """The node-pair matrix whose sum, times 2, is the GNTK: the blocks of the recursion above.

    Args:
      sigma: the aggregated input covariance ``C Â X X'ᵀ Â'ᵀ C'`` (also the first Θ).
      jump: ``X X'ᵀ`` (used with ``jk`` only).
      var1, var2: sequences of ``(L - 1) R`` variance arrays (each graph with
        itself, before each ReLU layer), shaped to broadcast against ``sigma``.
      aggregate: ``M -> C Â M Â'ᵀ C'`` for this pair of graphs (or tiles).
      num_layers, num_mlp_layers, jk: as in :func:`gntk`.

    Returns:
      ``J`` (with ``jk``) or the last ``Θ``, same shape as ``sigma``.
    """
    ntk = sigma
    k = 0
    for layer in range(1, num_layers):
        for _ in range(num_mlp_layers):
            sigma, dot_sigma = relu_layer(sigma, var1[k], var2[k])
            ntk = ntk * dot_sigma + sigma
            k += 1
        if jk:
            jump = jump + ntk
        if layer != num_layers - 1:
            sigma, ntk = aggregate(sigma), aggregate(ntk)
    return jump if jk else ntk


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
    from .graph_tiles import tiled_gram  # execution lives apart from the formulas

    return tiled_gram(checked1, checked2, num_layers=num_layers, num_mlp_layers=num_mlp_layers, jk=jk,
                      scale=scale, block_nodes=block_nodes)
