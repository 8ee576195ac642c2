"""Networks for ``make_compat_reference_dropout.py`` and
``tests/kernels/test_stax_dropout.py``: ``Dropout`` in its training mode
(neural-tangents' default), after affine layers, in a fully connected
network, before a global average pool, before a ``Flatten`` (whose kernel
carries only the spatial diagonal) and on padded sequences
(``mask_constant``), as plain data built by either library's ``stax`` the
same way as ``compat_cases.py``.
"""
import numpy as np

from compat_cases import build  # noqa: F401  (the shared builder)

MASK_CONSTANT = 100.0
_RELU = ("Relu", (), {})
_OUT = ("Dense", (1,), {"W_std": 1.5})

# name -> (input kind, [layer spec])
CASES = {
    "dense_two_dropouts": ("flat", [
        ("Dense", (1,), {"W_std": 1.5, "b_std": 0.1}), _RELU, ("Dropout", (0.6,), {}),
        ("Dense", (1,), {"W_std": 1.3, "b_std": 0.2}), _RELU, ("Dropout", (0.8,), {"mode": "train"}), _OUT]),
    "conv_dropout_gap": ("image", [
        ("Conv", (1, (2, 2)), {"padding": "SAME", "W_std": 1.4, "b_std": 0.1}), _RELU, ("Dropout", (0.5,), {}),
        ("GlobalAvgPool", (), {}), _OUT]),
    "conv_dropout_flatten": ("image", [
        ("Conv", (1, (2, 2)), {"W_std": 1.3, "b_std": 0.2}), _RELU, ("Dropout", (0.6,), {}),
        ("Flatten", (), {}), _OUT]),
    "masked_sequences_dropout_gap": ("sequence", [
        ("Dense", (1,), {"W_std": 1.2, "b_std": 0.1}), _RELU, ("Dropout", (0.6,), {}), ("GlobalAvgPool", (), {}),
        _OUT]),
}


def inputs(kind):
    """``(x1, x2)``: flat vectors, small images, or sequences padded with ``MASK_CONSTANT``."""
    rng = np.random.default_rng(7)
    if kind == "flat":
        return rng.normal(size=(3, 5)), rng.normal(size=(2, 5))
    if kind == "image":
        return rng.normal(size=(3, 4, 3, 2)), rng.normal(size=(2, 4, 3, 2))
    x1, x2 = rng.normal(size=(3, 5, 2)), rng.normal(size=(2, 5, 2))
    x1[0, 3:] = MASK_CONSTANT  # lengths 3, 5, 4 and 2, 5
    x1[2, 4:] = MASK_CONSTANT
    x2[0, 2:] = MASK_CONSTANT
    return x1, x2


def keywords(data):
    """``kernel_fn`` keywords of a case's inputs ``(x1, x2)``: ``mask_constant`` for the sequences."""
    return {"mask_constant": MASK_CONSTANT} if np.ndim(data[0]) == 3 else {}
