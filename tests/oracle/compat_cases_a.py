"""Networks for ``make_compat_reference_a.py`` and ``tests/contract/test_nt_compat_layers_a.py``
(issue 19, part A: the remaining activations and simple layers), as plain data
built by either library's ``stax`` (neural-tangents' or ours), the same way as
``compat_cases.py``.
"""
import numpy as np

from compat_cases import build as _build_plain

_IN = ("Dense", (16,), {"W_std": 1.5, "b_std": 0.1})
_OUT = ("Dense", (1,), {"W_std": 1.5})


def _act(name, *args, **kwargs):
    """Dense -> activation -> Dense on flat inputs."""
    return ("fc", [_IN, (name, args, kwargs), _OUT])


# name -> (input kind, [layer spec]); a layer spec is (name, args, kwargs) or
# ("parallel", [branches of specs]).
CASES = {
    "sigmoid_like": _act("Sigmoid_like"),
    "sign": _act("Sign"),
    "exp": _act("Exp", a=1.2, b=0.4),
    "exp_normalized": _act("ExpNormalized", gamma=1.3, shift=-0.5),
    "exp_normalized_clip": _act("ExpNormalized", do_clip=True),
    "gaussian": _act("Gaussian", a=1.1, b=-0.7),
    "rbf": _act("Rbf", gamma=0.6),
    "monomial_0": _act("Monomial", 0),
    "monomial_3": _act("Monomial", 3),
    "monomial_4": _act("Monomial", 4),
    "rectified_monomial_0": _act("RectifiedMonomial", 0),
    "rectified_monomial_1": _act("RectifiedMonomial", 1),
    "rectified_monomial_2": _act("RectifiedMonomial", 2),
    "rectified_monomial_3": _act("RectifiedMonomial", 3),
    "polynomial": _act("Polynomial", [0.3, -1.0, 0.5, 0.2]),
    "gabor": _act("Gabor"),
    "relu_stabilized": _act("Relu", do_stabilize=True),
    "abrelu_stabilized": _act("ABRelu", -0.4, 1.3, do_stabilize=True),
}

# Hermite assumes unit-variance inputs in neural-tangents: compared on inputs
# of unit second moment per feature through Dense(W_std=1, b_std=None), where
# its kernel and ours agree (``unit_inputs``).
HERMITE_CASES = {f"hermite_{n}": ("unit", [("Dense", (16,), {"W_std": 1.0, "b_std": None}), ("Hermite", (n,), {}),
                                           _OUT]) for n in (0, 1, 2, 3)}


def inputs(kind):
    rng = np.random.default_rng(0)
    if kind == "unit":
        x1, x2 = rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
        return (x1 / np.sqrt(np.mean(x1**2, axis=1, keepdims=True)),
                x2 / np.sqrt(np.mean(x2**2, axis=1, keepdims=True)))
    if kind == "small_image":
        return 0.8 * rng.normal(size=(2, 3, 2, 2)), 0.8 * rng.normal(size=(2, 3, 2, 2))
    if kind == "fc":
        return 0.8 * rng.normal(size=(4, 5)), 0.8 * rng.normal(size=(3, 5))
    return 0.8 * rng.normal(size=(3, 5, 4, 2)), 0.8 * rng.normal(size=(2, 5, 4, 2))

_RELU = ("Relu", (), {})
_CONV = ("Conv", (8, (2, 2)), {"padding": "SAME", "W_std": 1.5, "b_std": 0.1})
LAYER_CASES = {
    "layernorm": ("fc", [_IN, ("LayerNorm", (), {}), _RELU, _OUT]),
    "layernorm_eps": ("fc", [_IN, ("LayerNorm", (), {"eps": 0.3}), _RELU, _OUT]),
    "layernorm_conv_channels": ("small_image", [_CONV, ("LayerNorm", (), {}), _RELU, ("Flatten", (), {}), _OUT]),
    "layernorm_conv_all": ("small_image", [_CONV, ("LayerNorm", ((1, 2, 3),), {}), _RELU, ("Flatten", (), {}),
                                           _OUT]),
    "fan_in_prod": ("fc", [_IN, ("FanOut", (2,), {}),
                           ("parallel", [[("Dense", (8,), {"W_std": 1.2})], [_RELU, ("Dense", (8,), {"b_std": 0.2})]]),
                           ("FanInProd", (), {}), _OUT]),
    "fan_in_prod_identity": ("fc", [_IN, ("FanOut", (2,), {}),
                                    ("parallel", [[("Identity", (), {})], [_RELU, ("Dense", (16,), {})]]),
                                    ("FanInProd", (), {}), _OUT]),
    "index_crop": ("small_image", [_CONV, _RELU, ("Index", ((slice(None), slice(1, 4), slice(None, None, -1)),), {}),
                             ("Conv", (8, (2, 2)), {"W_std": 1.3}), _RELU, ("Flatten", (), {}), _OUT]),
    "index_row": ("small_image", [_CONV, ("Index", ((slice(None), 2, Ellipsis),), {}), _RELU,
                            ("Conv", (8, (2,)), {"padding": "SAME"}), ("GlobalAvgPool", (), {}), _OUT]),
    # ImageResize first: after an odd number of Conv layers neural-tangents resizes the wrong spatial axes
    # (its kernel's axes are stored reversed there); tests/kernels/test_stax_simple_layers.py checks that case.
    "image_resize_linear_up": ("small_image", [("ImageResize", ((-1, 5, 3, -1), "linear"), {}), _CONV, _RELU,
                                               ("Flatten", (), {}), _OUT]),
    "image_resize_linear_down": ("small_image", [("ImageResize", ((-1, 2, 1, -1), "linear"), {}), _CONV, _RELU,
                                                 ("Flatten", (), {}), _OUT]),
    "image_resize_nearest_two_convs": ("small_image", [_CONV, _RELU, _CONV,
                                                       ("ImageResize", ((-1, 4, -1, -1), "nearest"), {}), _RELU,
                                                       ("GlobalAvgPool", (), {}), _OUT]),
    "repeat": ("fc", [_IN, ("repeat", ([("Dense", (16,), {"W_std": 1.3, "b_std": 0.2}), _RELU], 3), {}), _OUT]),
}


def build(stax, spec):
    """``compat_cases.build``, plus ``("repeat", ([layer specs], n), {})``."""
    layers = []
    for name, args, *rest in spec:
        if name == "repeat":
            layers.append(stax.repeat(build(stax, args[0]), args[1]))
        else:
            layers.append(_build_plain(stax, [(name, args, *rest)]))
    return stax.serial(*layers)
