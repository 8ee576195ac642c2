"""Networks for ``make_compat_reference_g.py`` and ``tests/contract/test_nt_compat_masks_g.py``
(issue 19, part G: padded inputs through finite networks, ``apply_fn(...,
mask_constant=0)``, where hidden activations of real positions are exactly
zero after a ReLU with few channels), as plain data built by either library's
``stax`` the same way as ``compat_cases.py``.

With ``mask_constant=0`` such a real position looks like padding to a layer
that re-reads the padding from the values; the masks must come from the
inputs only (``ntkcourse.stax.masked``). Every network ends in a flat readout.
"""
import numpy as np

from compat_cases import build  # noqa: F401  (the shared builder)

MASK_CONSTANT = 0.0
_RELU = ("Relu", (), {})
_OUT = ("Dense", (1,), {"W_std": 1.5})

# Real lengths of the three sequences (6 steps padded) and real sizes of the three images (5 x 4 padded).
LENGTHS = (6, 4, 3)
SIZES = ((5, 4), (4, 4), (3, 3))

# name -> (input kind, [layer spec])
PARAMS = {
    "seq_dense_relu_gap": ("seq", [("Dense", (1,), {"W_std": 1.5, "b_std": 0.1}), _RELU,
                                   ("GlobalAvgPool", (), {}), _OUT]),
    "seq_attention_stack": ("seq", [("Dense", (2,), {"W_std": 1.5, "b_std": 0.1}), _RELU,
                                    ("GlobalSelfAttention", (2, 2, 2, 1), {"b_std": 0.1}), _RELU,
                                    ("GlobalAvgPool", (), {}), _OUT]),
    "seq_concat_branches": ("seq", [("Dense", (2,), {"W_std": 1.5, "b_std": 0.1}), _RELU, ("FanOut", (2,), {}),
                                    ("parallel", [[("Dense", (1,), {"b_std": 0.1}), _RELU],
                                                  [("Dense", (1,), {"W_std": 1.2}), _RELU]]),
                                    # neural-tangents' pools refuse masks that differ per channel, as a
                                    # concatenation's are there: a Dense first (its masks are per position)
                                    ("FanInConcat", (), {}), ("Dense", (3,), {"W_std": 1.3, "b_std": 0.1}), _RELU,
                                    ("GlobalAvgPool", (), {}), _OUT]),
    "image_conv_avgpool_gap": ("image", [("Conv", (2, (2, 2)), {"padding": "SAME", "W_std": 1.4, "b_std": 0.1}),
                                         _RELU, ("AvgPool", ((2, 2), (1, 1), "SAME"), {}),
                                         ("GlobalAvgPool", (), {}), _OUT]),
}

# The same fault in other layouts (apply_fn's masks read over the channel axis the first layer names).
_NCHW = ("NCHW", "OIHW", "NCHW")
PARAMS_LAYOUTS = {
    "nchw_conv_avgpool_gap": ("image_nchw", [
        ("Conv", (2, (2, 2)), {"padding": "SAME", "W_std": 1.4, "b_std": 0.1, "dimension_numbers": _NCHW}), _RELU,
        ("AvgPool", ((2, 2), (1, 1), "SAME"), {"channel_axis": 1}), ("GlobalAvgPool", (), {"channel_axis": 1}),
        _OUT]),
    "channels_first_batch_second": ("image_cnhw", [
        ("Dense", (1,), {"W_std": 1.5, "b_std": 0.1, "batch_axis": 1, "channel_axis": 0}), _RELU,
        ("GlobalSumPool", (), {"batch_axis": 1, "channel_axis": 0}),
        ("Dense", (1,), {"batch_axis": 1, "channel_axis": 0})]),
}


def _branches(fan_in):
    """Two branches whose masks differ (a window of 3 is centred one step later
    than two windows of 2), combined by ``fan_in``.
    """
    return [("FanOut", (2,), {}),
            ("parallel", [[("Conv", (2, (3,)), {"W_std": 1.3, "b_std": 0.2})],
                          [("Conv", (2, (2,)), {"b_std": 0.1}), ("AvgPool", ((2,),), {})]]),
            (fan_in, (), {})]


# Kernels (kernel_fn(..., mask_constant=0)) of branches with different masks: a combination is real where any
# branch is (neural-tangents' _sum_masks); neural-tangents' pools refuse masks that differ per channel, as a
# concatenation's are there: a Dense first.
CASES = {
    "sum_of_branches_with_different_masks": ("seq_pairs", _branches("FanInSum") + [
        _RELU, ("GlobalAvgPool", (), {}), _OUT]),
    "concat_of_branches_with_different_masks": ("seq_pairs", _branches("FanInConcat") + [
        ("Dense", (2,), {"W_std": 1.2, "b_std": 0.1}), _RELU, ("GlobalAvgPool", (), {}), _OUT]),
}


def inputs(kind):
    """``(x, None)``: sequences ``(3, 6, 3)`` or images ``(3, 5, 4, 2)`` padded
    at the end with ``MASK_CONSTANT`` (see ``LENGTHS``, ``SIZES``); for
    ``'seq_pairs'`` those sequences and two more (5 and 2 real steps).
    """
    if kind == "seq_pairs":
        x2 = np.random.default_rng(13).normal(size=(2, 6, 3))
        x2[0, 5:], x2[1, 2:] = MASK_CONSTANT, MASK_CONSTANT
        return inputs("seq")[0], x2
    if kind in ("image_nchw", "image_cnhw"):
        x = inputs("image")[0]
        return x.transpose((0, 3, 1, 2) if kind == "image_nchw" else (3, 0, 1, 2)), None
    if kind in ("image_nchw", "image_cnhw"):
        x = inputs("image")[0]
        return x.transpose((0, 3, 1, 2) if kind == "image_nchw" else (3, 0, 1, 2)), None
    if kind == "seq":
        x = np.random.default_rng(11).normal(size=(3, 6, 3))
        for i, n in enumerate(LENGTHS):
            x[i, n:] = MASK_CONSTANT
        return x, None
    x = np.random.default_rng(12).normal(size=(3, 5, 4, 2))
    for i, (h, w) in enumerate(SIZES):
        x[i, h:], x[i, :, w:] = MASK_CONSTANT, MASK_CONSTANT
    return x, None


def real_part(kind, x, i):
    """Input ``i`` cut to its real positions, ``(1, ...)``: a network without
    positional parameters gives on it what the padded input gives with
    ``mask_constant`` (padding at the end; stride-1 windows).
    """
    if kind == "seq":
        return x[i:i + 1, :LENGTHS[i]]
    h, w = SIZES[i]
    if kind == "image_nchw":
        return x[i:i + 1, :, :h, :w]
    if kind == "image_cnhw":
        return x[:, i:i + 1, :h, :w]
    return x[i:i + 1, :h, :w]
