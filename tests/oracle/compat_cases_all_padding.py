"""Networks for ``make_compat_reference_all_padding.py`` and
``tests/kernels/test_stax_all_padding.py``: padded sequences
(``mask_constant=MASK_CONSTANT``) among which some are made only of padding
(a batch padded with dummy inputs to a fixed size, for ``jit``), as plain
data built by either library's ``stax`` the same way as ``compat_cases.py``.

One network carries the layers that read padding over a whole input
(softmax ``GlobalSelfAttention``, ``LayerNorm`` over the positions right
before a ``ReLU``, whose gradient met a zero variance there, ``GlobalAvgPool``)
and a ``Dense`` with a bias after the readout (where an
input made only of padding stays padding in neural-tangents: zero kernel
entries, not ``b_std**2``); one compilation, the suite's time. Checked by
hand in session 9 against neural-tangents the same way, 1e-9: 13 more
networks (global sum pool, ``Flatten``, ``AvgPool``, ``LayerNorm`` over the
channels, attention with ``SUM``/``CONCAT`` embeddings, ``IDENTITY``
without linear scaling, ``RELU``, ``FanInSum``/``FanInConcat``/``FanInProd``,
2-D images, biases and activations after each readout).
"""
import numpy as np

from compat_cases import build  # noqa: F401  (the shared builder)

MASK_CONSTANT = 100.0

# name -> (input kind, [layer spec])
CASES = {
    "attention_layer_norm_gap_bias": ("seq", [
        ("Dense", (3,), {"b_std": 0.1}), ("GlobalSelfAttention", (2, 2, 2, 1), {"b_std": 0.1}),
        ("LayerNorm", (), {"axis": (1, 2)}), ("Relu", (), {}), ("GlobalAvgPool", (), {}),
        ("Dense", (1,), {"W_std": 1.5, "b_std": 0.3})]),
}

# Networks whose parameters neural-tangents draws and whose masked apply_fn this package reproduces
# (LayerNorm left out: neural-tangents' finite layer adds mean**2 for every padded entry of a normalised
# group to the variance, which this package does not, README "Different on purpose").
PARAMS = {
    "attention_gap_bias": ("seq", [
        ("Dense", (3,), {"b_std": 0.1}), ("GlobalSelfAttention", (2, 2, 2, 1), {"b_std": 0.1}), ("Relu", (), {}),
        ("GlobalAvgPool", (), {}), ("Dense", (1,), {"W_std": 1.5, "b_std": 0.3})]),
}


def inputs(kind):
    """``(x1, x2)`` sequences ``(3, 4, 2)`` and ``(2, 4, 2)`` padded with
    MASK_CONSTANT: ``x1[1]`` and ``x2[0]`` are made only of padding, ``x1[2]``
    has its last two steps padded and ``x2[1]`` its first.
    """
    assert kind == "seq", kind
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(size=(3, 4, 2)), rng.normal(size=(2, 4, 2))
    x1[1] = MASK_CONSTANT
    x2[0] = MASK_CONSTANT
    x1[2, 2:] = MASK_CONSTANT
    x2[1, :1] = MASK_CONSTANT
    return x1, x2
