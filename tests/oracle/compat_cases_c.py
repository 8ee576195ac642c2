"""Networks for ``make_compat_reference_c.py`` and the issue-19 (part C) contract
tests, as plain data built by either library's ``stax`` (neural-tangents' or
ours): graph layers (``Aggregate``, dense and sparse patterns; ``GRAPH``) and
padded sequences through convolutions and self-attention (``MASKED``, as in
neural-tangents' ``examples/imdb.py``).

Each case is ``(input kind, [layer spec])``; :func:`inputs` gives, for a kind,
the inputs ``x1``, ``x2`` and their patterns ``p1``, ``p2`` (the keyword
``pattern=(p1, p2)`` of ``kernel_fn`` and ``pattern=p1`` of ``apply_fn``;
``None`` for padded sequences, whose padding value is :data:`MASK_CONSTANT`).
"""
import numpy as np

from compat_cases import build  # noqa: F401  (the same builder as the other case tables)

_RELU = ("Relu", (), {})
_AGG = ("Aggregate", (), {})
_SUM_OUT = [("GlobalSumPool", (), {}), ("Dense", (1,), {"W_std": 1.2})]

GRAPH = {
    # A GIN-like network: aggregate, dense, ReLU, dense, aggregate, ...
    "gin_dense": ("graph", [_AGG, ("Dense", (4,), {"W_std": 1.5, "b_std": 0.2}), _RELU,
                            ("Dense", (4,), {"W_std": 1.4}), _AGG, _RELU] + _SUM_OUT),
    # Weighted (real-valued) adjacency, aggregation after a nonlinearity, mean readout.
    "weighted_erf": ("graph_weighted", [("Dense", (4,), {"W_std": 1.1, "b_std": 0.3}), ("Erf", (), {}), _AGG,
                                        ("Dense", (4,), {"W_std": 1.3}), _RELU, ("GlobalAvgPool", (), {}),
                                        ("Dense", (1,), {})]),
    # The same graphs as "gin_dense" as edge lists (with padding edges).
    "gin_sparse": ("graph_sparse", [("Aggregate", (), {"implementation": "SPARSE"}),
                                    ("Dense", (4,), {"W_std": 1.5, "b_std": 0.2}), _RELU,
                                    ("Dense", (4,), {"W_std": 1.4}), ("Aggregate", (), {"implementation": "SPARSE"}),
                                    _RELU] + _SUM_OUT),
    # Images whose pixels are the vertices (both spatial axes aggregated).
    "image_pixels": ("image_graph", [("Dense", (3,), {"W_std": 1.2}), _AGG, _RELU, ("Flatten", (), {}),
                                     ("Dense", (1,), {})]),
    # The same after a convolution (neural-tangents keeps the spatial axes reversed after an odd number).
    "conv_pixels": ("image_graph", [("Conv", (3, (2, 2)), {"padding": "SAME", "W_std": 1.2}), _AGG, _RELU,
                                    ("GlobalSumPool", (), {}), ("Dense", (1,), {})]),
    # Only the second spatial axis aggregated (neural-tangents' axis 2 of NHWC).
    "image_columns": ("image_columns", [("Dense", (3,), {"W_std": 1.2, "b_std": 0.1}),
                                        ("Aggregate", (2,), {}), _RELU, ("GlobalAvgPool", (), {}),
                                        ("Dense", (1,), {})]),
    # Sparse edges between pixels (K = 2 aggregated axes).
    "image_sparse": ("image_sparse", [("Dense", (3,), {"W_std": 1.2}), ("Aggregate", (), {"implementation": "SPARSE"}),
                                      _RELU, ("GlobalSumPool", (), {}), ("Dense", (1,), {})]),
}


MASK_CONSTANT = 100.0


def cauchy_decay(d):
    """neural-tangents' IMDB example's positional decay, 1 / (1 + d^2)."""
    return 1.0 / (1.0 + d**2)


def _gsa(**kwargs):
    base = {"n_chan_out": 3, "n_chan_key": 2, "n_chan_val": 2, "n_heads": 1}
    base.update(kwargs)
    return ("GlobalSelfAttention", (), base)


_SEQ_TAIL = [_RELU, ("GlobalAvgPool", (), {}), ("Dense", (1,), {"W_std": 1.1})]
_IMDB = [("Conv", (3, (2,)), {"W_std": 1.3, "b_std": 0.2}), _RELU,
         _gsa(pos_emb_type="SUM", W_pos_emb_std=1.0, pos_emb_decay_fn=cauchy_decay)] + _SEQ_TAIL
MASKED = {
    # examples/imdb.py's network (VALID convolution, softmax attention with decaying positional embeddings).
    "imdb_like": ("padded", _IMDB),
    # The same with padding values also inside real steps (neural-tangents zeroes each such entry).
    "imdb_like_partial": ("padded_partial", _IMDB),
    "softmax_same_two_heads": ("padded", [("Conv", (3, (3,)), {"padding": "SAME", "b_std": 0.1}), _RELU,
                                          _gsa(n_heads=2, b_std=0.1, W_key_std=1.2)] + _SEQ_TAIL),
    # A strided convolution (the output steps' masks are those of the windows' centres) and ReLU attention.
    "relu_concat_strided": ("padded", [("Conv", (3, (2,)), {"strides": (2,), "W_std": 1.2}), _RELU,
                                       _gsa(attention_mechanism="RELU", pos_emb_type="CONCAT", n_chan_pos_emb=2,
                                            val_pos_emb=True)] + _SEQ_TAIL),
    "identity_sqrt_sum": ("padded", [("Conv", (3, (2,)), {"padding": "SAME"}), _RELU,
                                     _gsa(linear_scaling=False, attention_mechanism="IDENTITY", pos_emb_type="SUM",
                                          W_pos_emb_std=0.8)] + _SEQ_TAIL),
}


def _adjacency(rng, n, v, weighted=False):
    a = (rng.random((n, v, v)) < 0.45).astype(float)
    a = np.triu(a, 1)
    a = a + np.swapaxes(a, 1, 2) + np.eye(v)
    if weighted:
        a = a * rng.uniform(0.2, 1.5, size=a.shape)
    return a


def _edges(dense, n_edges):
    """(n, n_edges, 2) edge lists of 0/1 adjacencies ``dense`` (n, v, v), padded with (-1, -1)."""
    out = -np.ones((dense.shape[0], n_edges, 2), np.int64)
    for i, a in enumerate(dense):
        tails, heads = np.nonzero(a)
        out[i, :len(tails), 0], out[i, :len(tails), 1] = tails, heads
    return out


def inputs(kind):
    """``(x1, x2, p1, p2)`` for an input kind."""
    rng = np.random.default_rng(7)
    if kind.startswith("padded"):
        x1, x2 = rng.normal(size=(3, 7, 2)), rng.normal(size=(2, 7, 2))
        x1[0, 5:], x1[1, 2:], x2[1, 6:] = MASK_CONSTANT, MASK_CONSTANT, MASK_CONSTANT
        if kind == "padded_partial":
            x1[2, 3, 0], x2[0, 1, 1] = MASK_CONSTANT, MASK_CONSTANT
        return x1, x2, None, None
    if kind in ("graph", "graph_weighted", "graph_sparse"):
        x1, x2 = rng.normal(size=(3, 5, 2)), rng.normal(size=(2, 5, 2))
        p1, p2 = _adjacency(rng, 3, 5, kind == "graph_weighted"), _adjacency(rng, 2, 5, kind == "graph_weighted")
        if kind == "graph_sparse":
            p1, p2 = _edges(p1, 26), _edges(p2, 25)
        return x1, x2, p1, p2
    x1, x2 = rng.normal(size=(3, 3, 2, 2)), rng.normal(size=(2, 3, 2, 2))
    if kind == "image_columns":
        return x1, x2, _adjacency(rng, 3, 2, True), _adjacency(rng, 2, 2, True)
    p1, p2 = _adjacency(rng, 3, 6), _adjacency(rng, 2, 6)
    if kind == "image_sparse":
        e1, e2 = _edges(p1, 36), _edges(p2, 36)
        # vertex v of the 3 x 2 image is pixel (v // 2, v % 2): (n, n_edges, K=2, 2)
        to2d = lambda e: np.where(e[..., None, :] >= 0, np.stack([e // 2, e % 2], axis=-2), -1)  # noqa: E731
        return x1, x2, to2d(e1), to2d(e2)
    return x1, x2, p1.reshape(3, 3, 2, 3, 2), p2.reshape(2, 3, 2, 3, 2)
