"""Networks for ``make_compat_reference_b.py`` and the issue-19 (part B) contract
tests (self-attention, parameters in neural-tangents' structure), as plain data
built by either library's ``stax`` (neural-tangents' or ours).
"""
import numpy as np


def cauchy_decay(d):
    """neural-tangents' IMDB example's positional decay, 1 / (1 + d^2)."""
    return 1.0 / (1.0 + d**2)


def geometric_decay(d):
    """An exponential decay written with ``**`` so that NumPy and JAX arrays both work."""
    return 0.6**d


def _gsa(**kwargs):
    base = {"n_chan_out": 4, "n_chan_key": 3, "n_chan_val": 5, "n_heads": 2}
    base.update(kwargs)
    return ("GlobalSelfAttention", (), base)


_HEAD = [("Conv", (4, (2,)), {"padding": "SAME", "W_std": 1.4, "b_std": 0.1}), ("Relu", (), {})]
_HEAD_2D = [("Conv", (4, (2, 2)), {"padding": "SAME", "W_std": 1.4, "b_std": 0.1}), ("Relu", (), {})]
_TAIL = [("Relu", (), {}), ("GlobalAvgPool", (), {}), ("Dense", (1,), {"W_std": 1.3})]

# name -> (input kind, [layer spec]); a layer spec is (name, args, kwargs) or
# ("parallel", [branches of specs]).
ATTENTION = {
    "softmax": ("seq", _HEAD + [_gsa(W_key_std=1.2, W_query_std=0.9, W_value_std=1.1, W_out_std=1.3,
                                     b_std=0.2)] + _TAIL),
    "imdb_like": ("seq", [("Conv", (1, (2,)), {})] + [("Relu", (), {})] + [
        ("GlobalSelfAttention", (), {"n_chan_out": 1, "n_chan_key": 1, "n_chan_val": 1, "pos_emb_type": "SUM",
                                     "W_pos_emb_std": 1.0, "pos_emb_decay_fn": cauchy_decay, "n_heads": 1})]
        + _TAIL[1:]),
    "identity_sqrt_concat_val": ("image", _HEAD_2D + [_gsa(linear_scaling=False, attention_mechanism="IDENTITY",
                                                           pos_emb_type="CONCAT", n_chan_pos_emb=3,
                                                           val_pos_emb=True, W_pos_emb_std=0.8, b_std=0.1)]
                                 + _TAIL),
    "identity_sqrt_sum": ("seq", _HEAD + [_gsa(linear_scaling=False, attention_mechanism="IDENTITY",
                                               pos_emb_type="SUM", W_key_std=0.7)] + _TAIL),
    "abs_sum": ("seq", _HEAD + [_gsa(attention_mechanism="ABS", pos_emb_type="SUM", W_pos_emb_std=0.5)] + _TAIL),
    "relu_concat_decay": ("image", _HEAD_2D + [_gsa(attention_mechanism="RELU", pos_emb_type="CONCAT",
                                                    pos_emb_decay_fn=geometric_decay, pos_emb_p_norm=1,
                                                    val_pos_emb=True)] + _TAIL),
    "softmax_output_kernel": ("seq", _HEAD + [_gsa(b_std=0.3, pos_emb_type="SUM",
                                                   pos_emb_decay_fn=cauchy_decay)]),
}

# Networks whose parameters neural-tangents draws and this package applies.
PARAMS = {
    "dense_ntk": ("fc", [("Dense", (8,), {"W_std": 1.5, "b_std": 0.1}), ("Relu", (), {}), ("Dense", (1,), {})]),
    "dense_standard": ("fc", [("Dense", (8,), {"W_std": 1.5, "b_std": 0.1, "parameterization": "standard"}),
                              ("Erf", (), {}), ("Dense", (2,), {"b_std": 0.2, "parameterization": "standard"})]),
    "conv_residual": ("image", [("Conv", (4, (2, 2)), {"padding": "SAME", "b_std": 0.1}), ("Relu", (), {}),
                                ("FanOut", (2,), {}),
                                ("parallel", [[("Conv", (4, (3, 3)), {"padding": "SAME", "W_std": 1.2})],
                                              [("Identity", (), {})]]),
                                ("FanInSum", (), {}), ("Flatten", (), {}), ("Dense", (1,), {"b_std": 0.1})]),
    "attention_softmax": ATTENTION["softmax"],
    "attention_identity_sqrt": ATTENTION["identity_sqrt_concat_val"],
    "attention_imdb_like_no_decay": ("seq", [("Conv", (3, (2,)), {}), ("Relu", (), {}),
                                             _gsa(pos_emb_type="SUM", W_pos_emb_std=0.7)] + _TAIL[1:]),
    "attention_concat_decay": ("image", [("Conv", (3, (2, 2)), {"padding": "SAME"}), ("Relu", (), {}),
                                         _gsa(pos_emb_type="CONCAT", n_chan_pos_emb=2, val_pos_emb=True,
                                              pos_emb_decay_fn=geometric_decay, pos_emb_p_norm=1,
                                              attention_mechanism="RELU")] + _TAIL[1:]),
}


def inputs(kind):
    rng = np.random.default_rng(1)
    if kind == "fc":
        return rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    if kind == "seq":
        return rng.normal(size=(3, 5, 2)), rng.normal(size=(2, 5, 2))
    return rng.normal(size=(3, 3, 2, 2)), rng.normal(size=(2, 3, 2, 2))


def build(stax, spec):
    layers = []
    for name, args, *rest in spec:
        if name == "parallel":
            layers.append(stax.parallel(*[build(stax, branch) for branch in args]))
        else:
            layers.append(getattr(stax, name)(*args, **(rest[0] if rest else {})))
    return stax.serial(*layers)
