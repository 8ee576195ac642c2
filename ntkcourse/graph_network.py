r"""The finite graph network whose NTK converges to :func:`ntkcourse.graph.gntk`.

Du et al. (2019) define the GNTK as the limit of a GIN-like network; their
reference code fixes its constants (see :mod:`ntkcourse.graph`). The network
below has *exactly* that kernel as width :math:`m \to \infty`, in the NTK
parameterisation (every weight drawn N(0, 1), the scale written in the
forward pass). For one graph with aggregation matrix :math:`C\hat A` and
features :math:`X` (:math:`n \times d`)::

    z = (C Â X) W_in                                   (n, m)  covariance agg(X Xᵀ): no 1/√d
    for block l = 1 .. L-1:
        for r = 1 .. R-1:  z = √(2/m) relu(z) W_{l,r}  (n, m)  c_σ = 2
        h = √(2/m) relu(z)                             (n, m)
        head_l = √2 Σ_u h_u · w_l                      (scalar)
        if l < L-1:  z = C Â (h W_{l,R})               (n, m)  dense, then aggregate
    f = √2 Σ_u x_u · v_0 + Σ_l head_l                  (jk)
    f = head_{L-1}                                     (no jk)

(``num_layers=1`` without jk is ``f = √2 Σ_u (C Â X)_u · v``.) The constants
against a plain GNN: the first layer does not divide by √d (``W_std=√d`` in
``stax`` terms); every ReLU layer has :math:`c_\sigma = 2`; every read-out is
multiplied by √2 (the kernel's factor 2). With ``jk`` the heads' weights are
independent, so the cross terms between heads vanish in the limit
(fluctuations :math:`O(m^{-1/2})`), and the NTK of ``f`` is the sum of the
heads' NTKs, which is the authors' sum of read-outs.

Reference: Du, Hou, Póczos, Salakhutdinov, Wang, Xu, NeurIPS 2019.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from .graph import aggregation_matrix, check_graphs, check_settings

__all__ = ["gnn", "pack_graphs", "empirical_graph_ntk"]


def pack_graphs(graphs, scale: str, dtype=np.float32):
    """Pad a list of graphs to one batch: ``(C Â blocks (G, n, n), features (G, n, d))``.

    Padding nodes have zero features and zero rows and columns in ``C Â``, so
    they stay zero through every layer and add nothing to the read-outs.
    """
    checked = check_graphs(graphs, "graphs", "pack_graphs")
    check_settings(1, 1, False, scale, 1, function="pack_graphs")  # the scale only
    n = max(a.shape[0] for a, _ in checked)
    d = checked[0][1].shape[1]
    blocks = np.zeros((len(checked), n, n), dtype)
    features = np.zeros((len(checked), n, d), dtype)
    for i, (a, x) in enumerate(checked):
        blocks[i, :len(x), :len(x)] = aggregation_matrix(a, scale)
        features[i, :len(x)] = x
    return blocks, features


def gnn(*, num_layers: int, num_mlp_layers: int, jk: bool, width: int):
    """``(init_fn, apply_fn)`` of the graph network whose NTK tends to ``gntk`` (module docstring).

    The aggregation (``scale``) is in the packed input (:func:`pack_graphs`),
    not in the parameters.

    Args:
      num_layers, num_mlp_layers, jk: as in :func:`ntkcourse.graph.gntk`.
      width: hidden width ``m``.

    Returns:
      ``init_fn(key, feature_dim) -> params`` (a dict of N(0, 1) arrays) and
      ``apply_fn(params, packed) -> (G,)`` outputs for ``packed = (blocks, features)``.
    """
    num_layers, num_mlp_layers, jk, _, width = check_settings(
        num_layers, num_mlp_layers, jk, "uniform", width, function="gnn", size_name="width")

    def init_fn(key, feature_dim: int):
        keys = iter(jax.random.split(key, 3 + num_layers * (num_mlp_layers + 1)))
        normal = lambda shape: jax.random.normal(next(keys), shape)  # noqa: E731
        if num_layers == 1 and not jk:
            return {"v": normal((feature_dim,))}
        params = {"w_in": normal((feature_dim, width)), "blocks": []}
        if jk:
            params["v0"] = normal((feature_dim,))
        for layer in range(1, num_layers):
            dense = [normal((width, width)) for _ in range(num_mlp_layers - 1)]
            if layer < num_layers - 1:
                dense.append(normal((width, width)))
            head = normal((width,)) if (jk or layer == num_layers - 1) else None
            params["blocks"].append({"dense": dense, "head": head})
        return params

    def apply_one(params, block, x):
        if num_layers == 1 and not jk:
            return math.sqrt(2.0) * jnp.sum(block @ x @ params["v"])
        out = math.sqrt(2.0) * jnp.sum(x @ params["v0"]) if jk else 0.0
        z = block @ x @ params["w_in"]
        c = math.sqrt(2.0 / width)
        for layer, p in enumerate(params["blocks"], start=1):
            for w in p["dense"][:num_mlp_layers - 1]:
                z = c * jax.nn.relu(z) @ w
            h = c * jax.nn.relu(z)
            if p["head"] is not None:
                head = math.sqrt(2.0) * jnp.sum(h @ p["head"])
                out = out + head if jk else head
            if layer < num_layers - 1:
                z = block @ (h @ p["dense"][-1])
        return out

    def apply_fn(params, packed):
        blocks, features = packed
        return jax.vmap(apply_one, in_axes=(None, 0, 0))(params, blocks, features)

    return init_fn, apply_fn


def empirical_graph_ntk(apply_fn, params, packed):
    """``Θ̂[i, j] = ⟨∂f(G_i)/∂θ, ∂f(G_j)/∂θ⟩`` over all parameters, by per-graph gradients.

    A plain Jacobian contraction (the graphs are few and small); returns a
    ``(G, G)`` array in the parameters' dtype.
    """
    blocks, features = packed

    def single(p, block, x):
        return apply_fn(p, (block[None], x[None]))[0]

    grads = jax.vmap(jax.grad(single), in_axes=(None, 0, 0))(params, blocks, features)
    flat = [g.reshape(blocks.shape[0], -1) for g in jax.tree_util.tree_leaves(grads)]
    return sum(f @ f.T for f in flat)


def ntk_deviation_vs_width(graphs, widths, seeds: int, *, num_layers: int, num_mlp_layers: int, jk: bool,
                           scale: str, key=None):
    """Relative deviation ``‖Θ̂_m − Θ‖_F / ‖Θ‖_F`` of one network's NTK from ``gntk``, per width and seed.

    Θ is :func:`ntkcourse.graph.gntk` of ``graphs``; Θ̂_m the empirical NTK
    (float32) of :func:`gnn` of width ``m`` at ``seeds`` independent
    initialisations (keys split from ``key``, default ``PRNGKey(0)``).

    Returns:
      ``(deviations, mean_kernels)``: an array ``(len(widths), seeds)`` and,
      per width, the empirical NTK averaged over the seeds (float64).
    """
    from .graph import gntk  # the analytic kernel this network tends to

    exact = gntk(graphs, num_layers=num_layers, num_mlp_layers=num_mlp_layers, jk=jk, scale=scale)
    packed = tuple(jnp.asarray(a) for a in pack_graphs(graphs, scale))
    key = jax.random.PRNGKey(0) if key is None else key
    deviations = np.zeros((len(widths), seeds))
    means = []
    for i, width in enumerate(widths):
        init_fn, apply_fn = gnn(num_layers=num_layers, num_mlp_layers=num_mlp_layers, jk=jk, width=width)
        kernel = jax.jit(lambda p: empirical_graph_ntk(apply_fn, p, packed))  # noqa: B023
        total = np.zeros_like(exact)
        for s, k in enumerate(jax.random.split(jax.random.fold_in(key, width), seeds)):
            theta = np.asarray(kernel(init_fn(k, packed[1].shape[-1])), dtype=np.float64)
            deviations[i, s] = np.linalg.norm(theta - exact) / np.linalg.norm(exact)
            total += theta / seeds
        means.append(total)
    return deviations, means
