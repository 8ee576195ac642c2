"""Network cases cross-checked against neural-tangents 0.6.5 (pure data + a builder).

This module is imported from two environments:

* the oracle virtualenv ``.nt-oracle/venv`` (neural-tangents 0.6.5 on jax 0.4.23),
  by ``tests/oracle/make_reference.py``, which writes ``tests/data/nt_reference.npz``;
* the project virtualenv ``.venv`` (current jax), by the tests that compare
  ``ntkcourse.stax`` against those stored values.

It therefore imports only numpy and the standard library at module level.

A network SPEC is a nested JSON-like structure:

* ``["serial", [SPEC, ...]]`` or ``["parallel", [SPEC, ...]]``;
* ``[LayerName, {kwargs}]`` for one layer, where ``LayerName`` is a name of
  ``neural_tangents.stax`` (and, by contract, of ``ntkcourse.stax``) and the
  kwargs are that layer's keyword arguments, spelled as in neural-tangents.
  Lists inside kwargs (``filter_shape``, ``strides``, ``window_shape``) are
  turned into tuples by :func:`build`.  For ``ElementwiseNumerical`` the ``fn``
  kwarg is a key of :data:`ELEMENTWISE_FNS`.

Each case is ``{"name", "net", "input", "x2"}``: ``input`` is ``"fc"`` or
``"image"`` (see :func:`make_inputs`), ``x2`` says whether the kernel is taken
between ``x1`` and ``x2`` (True) or between ``x1`` and itself (``x2=None``).
The reference values were computed as ``kernel_fn(x1, x2_or_None, ("nngp", "ntk"))``
in float64.
"""
from __future__ import annotations

import copy
import math

import numpy as np

__all__ = [
    "CASES",
    "DROPPED",
    "ELEMENTWISE_FNS",
    "INPUT_SEED",
    "LAYER_NAMES",
    "build",
    "case_by_name",
    "make_inputs",
]

# Seed used for the stored reference inputs (the npz also stores the inputs
# themselves; prefer those in tests).
INPUT_SEED = 0

LAYER_NAMES = frozenset({
    "Dense", "Conv", "AvgPool", "GlobalAvgPool", "Flatten", "Identity",
    "FanOut", "FanInSum", "Relu", "LeakyRelu", "ABRelu", "Abs", "Erf", "Gelu",
    "Sin", "ElementwiseNumerical",
})
COMBINATORS = frozenset({"serial", "parallel"})


# --------------------------------------------------------------------------
# Activation functions for ElementwiseNumerical: name -> (np_module -> callable).
# Each side passes its own jax.numpy so the callable traces/differentiates there.
def _tanh(np_module):
    return np_module.tanh


def _softplus(np_module):
    def softplus(x):
        return np_module.logaddexp(x, 0.0)
    return softplus


def _sigmoid(np_module):
    def sigmoid(x):
        return 1.0 / (1.0 + np_module.exp(-x))
    return sigmoid


ELEMENTWISE_FNS = {
    "tanh": _tanh,
    "softplus": _softplus,
    "sigmoid": _sigmoid,
}


# --------------------------------------------------------------------------
# Builder.
def _to_tuples(value):
    if isinstance(value, (list, tuple)):
        return tuple(_to_tuples(v) for v in value)
    return value


def build(spec, stax_module, jnp_module):
    """Build ``(init_fn, apply_fn, kernel_fn)`` for ``spec`` from ``stax_module``.

    Works with ``neural_tangents.stax`` and with ``ntkcourse.stax`` alike: it only
    looks up layer names with ``getattr`` and passes the keyword arguments on.
    ``jnp_module`` is the ``jax.numpy`` of the calling environment, used to
    instantiate ``ElementwiseNumerical`` activation functions.
    """
    if not isinstance(spec, (list, tuple)) or len(spec) != 2:
        raise ValueError(f"malformed spec: {spec!r}")
    head, body = spec
    if head in COMBINATORS:
        layers = [build(s, stax_module, jnp_module) for s in body]
        return getattr(stax_module, head)(*layers)
    if head not in LAYER_NAMES:
        raise ValueError(f"unknown layer name {head!r}")
    kwargs = {k: _to_tuples(v) for k, v in dict(body).items()}
    if head == "ElementwiseNumerical":
        kwargs["fn"] = ELEMENTWISE_FNS[kwargs["fn"]](jnp_module)
    return getattr(stax_module, head)(**kwargs)


# --------------------------------------------------------------------------
# Inputs.
FC_SHAPES = ((5, 7), (4, 7))
IMAGE_SHAPES = ((3, 6, 5, 2), (2, 6, 5, 2))  # NHWC


def make_inputs(kind, seed=INPUT_SEED):
    """Deterministic float64 inputs ``(x1, x2)`` for ``kind`` in {"fc", "image"}.

    "fc": x1 (5, 7), x2 (4, 7), with x1[1] = -x1[0] (antipodal pair, cosine -1),
    x1[2] = x1[0] (repeated row, cosine +1) and x2[0] = x1[0] (a row shared
    between the two batches).
    "image": NHWC x1 (3, 6, 5, 2), x2 (2, 6, 5, 2), with x2[0] = x1[0].
    """
    rng = np.random.default_rng(seed)
    if kind == "fc":
        s1, s2 = FC_SHAPES
    elif kind == "image":
        s1, s2 = IMAGE_SHAPES
    else:
        raise ValueError(f"unknown input kind {kind!r}")
    x1 = rng.standard_normal(s1).astype(np.float64)
    x2 = rng.standard_normal(s2).astype(np.float64)
    if kind == "fc":
        x1[1] = -x1[0]
        x1[2] = x1[0]
    x2[0] = x1[0]
    return x1, x2


# --------------------------------------------------------------------------
# Spec helpers (produce plain lists/dicts).
def _L(name, **kwargs):
    return [name, kwargs]


def _serial(*layers):
    return ["serial", list(layers)]


def _parallel(*layers):
    return ["parallel", list(layers)]


def _mlp(depth, width=64, W_std=1.0, b_std=None, parameterization="ntk",
         activation=None):
    act = activation if activation is not None else _L("Relu")
    dense = dict(W_std=W_std, b_std=b_std, parameterization=parameterization)
    layers = []
    for _ in range(depth):
        layers += [_L("Dense", out_dim=width, **dense), copy.deepcopy(act)]
    layers.append(_L("Dense", out_dim=1, **dense))
    return _serial(*layers)


def _act_net(act):
    return _serial(_L("Dense", out_dim=64, W_std=1.5, b_std=0.3), act,
                   _L("Dense", out_dim=1, W_std=1.5, b_std=0.3))


def _conv(out_chan=8, filter_shape=(3, 3), **kw):
    return _L("Conv", out_chan=out_chan, filter_shape=list(filter_shape), **kw)


# --------------------------------------------------------------------------
# The cases.  (name, net, input kind, also with x2?)
_NETS = [
    # ---- single Dense layers: pins b_std None vs 0.0 under both parameterizations
    ("dense_ntk_bnone", _L("Dense", out_dim=16, W_std=1.5, b_std=None), "fc", True),
    ("dense_ntk_b0", _L("Dense", out_dim=16, W_std=1.5, b_std=0.0), "fc", False),
    ("dense_ntk_b03", _L("Dense", out_dim=16, W_std=1.5, b_std=0.3), "fc", True),
    ("dense_std_bnone", _L("Dense", out_dim=16, W_std=1.5, b_std=None,
                           parameterization="standard"), "fc", False),
    ("dense_std_b0", _L("Dense", out_dim=16, W_std=1.5, b_std=0.0,
                        parameterization="standard"), "fc", False),
    ("dense_std_b03", _L("Dense", out_dim=16, W_std=1.5, b_std=0.3,
                         parameterization="standard"), "fc", False),
    ("dense_defaults", _L("Dense", out_dim=16), "fc", False),

    # ---- ReLU MLPs
    ("mlp1_ntk_w1_bnone", _mlp(1, W_std=1.0, b_std=None), "fc", True),
    ("mlp2_ntk_w15_b03", _mlp(2, W_std=1.5, b_std=0.3), "fc", True),
    ("mlp3_ntk_w2_b0", _mlp(3, W_std=2.0, b_std=0.0), "fc", False),
    ("mlp5_ntk_w15_b03", _mlp(5, W_std=1.5, b_std=0.3), "fc", True),
    ("mlp1_std_w15_b03", _mlp(1, W_std=1.5, b_std=0.3,
                              parameterization="standard"), "fc", False),
    ("mlp2_std_w1_bnone", _mlp(2, W_std=1.0, b_std=None,
                               parameterization="standard"), "fc", False),
    ("mlp3_std_w2_b0", _mlp(3, W_std=2.0, b_std=0.0,
                            parameterization="standard"), "fc", False),
    ("mlp5_std_w15_b03", _mlp(5, W_std=1.5, b_std=0.3,
                              parameterization="standard"), "fc", True),
    # erratum case: 3 hidden ReLU layers, W_std = sqrt(2), no bias
    ("mlp3_erratum_sqrt2_nobias", _mlp(3, W_std=math.sqrt(2.0), b_std=None),
     "fc", True),

    # ---- each activation between two Dense layers
    ("act_relu", _act_net(_L("Relu")), "fc", False),
    ("act_leakyrelu", _act_net(_L("LeakyRelu", alpha=0.1)), "fc", False),
    ("act_abrelu", _act_net(_L("ABRelu", a=-0.5, b=1.2)), "fc", True),
    ("act_abs", _act_net(_L("Abs")), "fc", True),
    ("act_erf", _act_net(_L("Erf")), "fc", False),
    ("act_erf_abc", _act_net(_L("Erf", a=1.3, b=0.7, c=0.2)), "fc", True),
    ("act_gelu", _act_net(_L("Gelu", approximate=False)), "fc", True),
    ("act_sin", _act_net(_L("Sin")), "fc", False),
    ("act_sin_abc", _act_net(_L("Sin", a=0.8, b=1.7, c=0.3)), "fc", True),
    ("act_identity", _act_net(_L("Identity")), "fc", False),
    ("act_numerical_tanh",
     _act_net(_L("ElementwiseNumerical", fn="tanh", deg=25)), "fc", True),
    ("act_numerical_softplus",
     _act_net(_L("ElementwiseNumerical", fn="softplus", deg=25)), "fc", False),

    # ---- residual block.  The branches meet before the ReLU (both Gaussian);
    # the literal post-ReLU version is refused by neural-tangents, see DROPPED.
    ("residual_relu",
     _serial(_L("Dense", out_dim=64, W_std=1.5, b_std=0.1),
             _L("FanOut", num=2),
             _parallel(_L("Identity"),
                       _serial(_L("Relu"),
                               _L("Dense", out_dim=64, W_std=1.5, b_std=0.1),
                               _L("Relu"),
                               _L("Dense", out_dim=64, W_std=1.5, b_std=0.1))),
             _L("FanInSum"),
             _L("Relu"),
             _L("Dense", out_dim=1, W_std=1.5, b_std=0.1)),
     "fc", True),

    # ---- CNNs on NHWC images
    ("cnn_same_ntk_flatten",
     _serial(_conv(padding="SAME", W_std=1.5, b_std=0.1), _L("Relu"),
             _L("Flatten"), _L("Dense", out_dim=1, W_std=1.5, b_std=0.1)),
     "image", True),
    ("cnn_valid_std_flatten",
     _serial(_conv(padding="VALID", W_std=1.5, b_std=None,
                   parameterization="standard"), _L("Relu"),
             _L("Flatten"),
             _L("Dense", out_dim=1, W_std=1.5, parameterization="standard")),
     "image", False),
    ("cnn_same_s21_ntk_gap",
     _serial(_conv(padding="SAME", strides=[2, 1], W_std=1.5, b_std=0.1),
             _L("Relu"), _L("GlobalAvgPool"),
             _L("Dense", out_dim=1, W_std=1.5, b_std=0.1)),
     "image", True),
    ("cnn_valid_s21_std_gap",
     _serial(_conv(padding="VALID", strides=[2, 1], W_std=2.0, b_std=0.1,
                   parameterization="standard"),
             _L("Relu"), _L("GlobalAvgPool"),
             _L("Dense", out_dim=1, W_std=2.0, b_std=0.1,
                parameterization="standard")),
     "image", False),
    ("cnn_same_std_avgpool_flatten",
     _serial(_conv(padding="SAME", W_std=1.5, b_std=0.1,
                   parameterization="standard"),
             _L("Relu"), _L("AvgPool", window_shape=[2, 2]), _L("Flatten"),
             _L("Dense", out_dim=1, W_std=1.5, b_std=0.1,
                parameterization="standard")),
     "image", True),
    ("cnn_valid_ntk_avgpool_flatten",
     _serial(_conv(padding="VALID", W_std=1.0, b_std=None),
             _L("Relu"), _L("AvgPool", window_shape=[2, 2]), _L("Flatten"),
             _L("Dense", out_dim=1, W_std=1.0)),
     "image", False),
    ("cnn_same_ntk_avgpool_same_gap",
     _serial(_conv(padding="SAME", W_std=1.5, b_std=None),
             _L("Relu"),
             _L("AvgPool", window_shape=[2, 2], strides=[1, 1], padding="SAME"),
             _L("GlobalAvgPool"), _L("Dense", out_dim=1, W_std=1.5)),
     "image", True),
    ("cnn2_erf_same_gap",
     _serial(_conv(padding="SAME", W_std=1.5, b_std=0.1), _L("Erf"),
             _conv(padding="SAME", W_std=1.5, b_std=0.1), _L("Erf"),
             _L("GlobalAvgPool"), _L("Dense", out_dim=1, W_std=1.5, b_std=0.1)),
     "image", True),
    ("conv_defaults_flatten",
     _serial(_conv(), _L("Relu"), _L("Flatten"), _L("Dense", out_dim=1)),
     "image", False),

    # ---- CIRCULAR (periodic) padding: Conv and AvgPool wrap around the image
    ("cnn2_circular_relu_gap",
     _serial(_conv(padding="CIRCULAR", W_std=1.5, b_std=0.1), _L("Relu"),
             _conv(padding="CIRCULAR", strides=[2, 1], W_std=1.5, b_std=0.1),
             _L("Relu"), _L("GlobalAvgPool"),
             _L("Dense", out_dim=1, W_std=1.5, b_std=0.1)),
     "image", True),
    ("cnn_circular_std_flatten",
     _serial(_conv(padding="CIRCULAR", W_std=1.5, b_std=0.1,
                   parameterization="standard"), _L("Relu"),
             _L("Flatten"),
             _L("Dense", out_dim=1, W_std=1.5, b_std=0.1,
                parameterization="standard")),
     "image", True),
    ("cnn_circular_f44_avgpool_circular_gap",
     _serial(_conv(filter_shape=(4, 4), padding="CIRCULAR", W_std=1.5),
             _L("Relu"),
             _L("AvgPool", window_shape=[2, 3], strides=[2, 1],
                padding="CIRCULAR"),
             _L("GlobalAvgPool"), _L("Dense", out_dim=1, W_std=1.5)),
     "image", True),
    ("cnn_noreadout_circular_f31_s21_relu",
     _serial(_conv(filter_shape=(3, 1), strides=[2, 1], padding="CIRCULAR",
                   W_std=1.5, b_std=0.1), _L("Relu")),
     "image", False),

    # ---- no readout: the full spatial kernel is the output
    ("cnn_noreadout_same_relu",
     _serial(_conv(padding="SAME", W_std=1.5, b_std=0.1), _L("Relu")),
     "image", True),
    # non-square filter + stride: pins the order of the spatial axes
    ("cnn_noreadout_f31_s21_relu",
     _serial(_conv(filter_shape=(3, 1), strides=[2, 1], padding="SAME",
                   W_std=1.5, b_std=0.1, parameterization="standard"),
             _L("Relu")),
     "image", False),
    # two convs (even number): NT returns the spatial axes in input order
    ("cnn2_noreadout_valid_relu",
     _serial(_conv(filter_shape=(3, 1), padding="VALID", W_std=1.5),
             _L("Relu"),
             _conv(filter_shape=(2, 2), padding="VALID", W_std=1.5, b_std=0.1),
             _L("Relu")),
     "image", False),
]


def _make_cases():
    cases = []
    for name, net, kind, with_x2 in _NETS:
        cases.append({"name": name, "net": net, "input": kind, "x2": False})
        if with_x2:
            cases.append({"name": name + "__x2", "net": copy.deepcopy(net),
                          "input": kind, "x2": True})
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    return cases


CASES = _make_cases()


# Networks that neural-tangents 0.6.5 itself refuses (no reference values).
DROPPED = [
    {"name": "residual_postrelu",
     "net": _serial(
         _L("Dense", out_dim=64, W_std=1.5, b_std=0.1), _L("Relu"),
         _L("FanOut", num=2),
         _parallel(_L("Identity"),
                   _serial(_L("Dense", out_dim=64, W_std=1.5, b_std=0.1),
                           _L("Relu"),
                           _L("Dense", out_dim=64, W_std=1.5, b_std=0.1))),
         _L("FanInSum"),
         _L("Dense", out_dim=1, W_std=1.5, b_std=0.1)),
     "input": "fc",
     "reason": ("NotImplementedError: FanInSum requires every branch to be "
                "mean-zero Gaussian (is_gaussian=True); the Identity branch "
                "carries a post-ReLU activation (is_gaussian=False)."),
     },
]


def case_by_name(name):
    for case in CASES:
        if case["name"] == name:
            return case
    raise KeyError(name)
