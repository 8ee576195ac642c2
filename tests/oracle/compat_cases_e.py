"""Networks for ``make_compat_reference_e.py`` and ``tests/contract/test_nt_compat_layers_e.py``
(issue 19, part E: the ``s`` argument of the standard parameterisation, and
kernels for other layouts: ``dimension_numbers`` such as ``'NCHW'``,
``batch_axis``/``channel_axis`` of ``Dense`` and the pools, ``Flatten``'s
batch axes), as plain data built by either library's ``stax`` the same way
as ``compat_cases.py``.

Every network ends in a flat readout: neural-tangents stores the spatial axes
of a kernel reversed after an odd number of weight-shared convolutions, so
only flat kernels are compared value for value. ``ConvLocal`` appears first
or with a square filter and unit strides (elsewhere neural-tangents 0.6.5
applies its filter to the wrong axes, see ``compat_cases_d.py``).
"""
import numpy as np

from compat_cases import build  # noqa: F401  (the shared builder)

_RELU = ("Relu", (), {})
_NCHW = ("NCHW", "OIHW", "NCHW")


def _std(s, **kw):
    return {"W_std": 1.3, "b_std": 0.2, "parameterization": "standard", "s": s, **kw}


# name -> (input kind, [layer spec])
CASES = {
    # s: widths s_out * n of each layer; the NTK's weight term is (fan-in / s_in) * Sigma.
    "dense_s": ("fc", [("Dense", (6,), _std((1, 3))), ("Erf", (), {}), ("Dense", (4,), _std((3, 2))), _RELU,
                       ("Dense", (1,), _std((2, 1), b_std=None))]),
    "conv_s_flatten": ("image", [("Conv", (4, (2, 2)), _std((1, 2), padding="SAME")), _RELU,
                                 ("Conv", (3, (3, 2)), _std((2, 3), strides=(2, 1))), _RELU, ("Flatten", (), {}),
                                 ("Dense", (1,), _std((3, 1)))]),
    "conv_transpose_s_gap": ("image", [("ConvTranspose", (4, (2, 2), (2, 1)), _std((1, 2), padding="SAME")), _RELU,
                                       ("GlobalAvgPool", (), {}), ("Dense", (1,), _std((2, 1)))]),
    # neural-tangents' ConvLocal keeps out_chan channels whatever s[1]; the next layer's fan-in is out_chan / s_in.
    "conv_local_s_flatten": ("image", [("ConvLocal", (4, (2, 2)), _std((1, 3))), _RELU, ("Flatten", (), {}),
                                       ("Dense", (1,), _std((3, 1)))]),
    # layouts
    "nchw_cnn_gap": ("nchw", [("Conv", (3, (3, 2)), {"padding": "SAME", "W_std": 1.4, "b_std": 0.1,
                                                     "dimension_numbers": _NCHW}), _RELU,
                              ("ConvTranspose", (3, (2, 1), (1, 2)), {"b_std": 0.1, "dimension_numbers": _NCHW}),
                              _RELU, ("Dense", (2,), {"W_std": 1.2, "b_std": 0.1, "channel_axis": 1}), _RELU,
                              ("GlobalAvgPool", (), {"channel_axis": 1}), ("Dense", (1,), {"W_std": 1.5})]),
    "nchw_avgpool_flatten": ("nchw", [("Conv", (3, (2, 2)), {"padding": "SAME", "W_std": 1.4, "b_std": 0.1,
                                                             "dimension_numbers": _NCHW}), _RELU,
                                      ("AvgPool", ((2, 2),), {"strides": (2, 1), "padding": "SAME",
                                                              "channel_axis": 1}),
                                      ("SumPool", ((2, 1),), {"channel_axis": 1}), ("Flatten", (), {}),
                                      ("Dense", (1,), {"W_std": 1.5})]),
    "nchw_conv_local_first": ("nchw", [("ConvLocal", (3, (3, 2)), {"strides": (2, 1), "padding": "CIRCULAR",
                                                                  "b_std": 0.1, "dimension_numbers": _NCHW}),
                                       _RELU, ("Flatten", (), {}), ("Dense", (1,), {"W_std": 1.5})]),
    "layout_switch": ("image", [("Conv", (3, (2, 2)), {"padding": "SAME", "b_std": 0.1,
                                                       "dimension_numbers": ("NHWC", "HWIO", "NCHW")}), _RELU,
                                ("Conv", (3, (3, 2)), {"W_std": 1.3, "dimension_numbers": ("NCHW", "OIHW", "NHWC")}),
                                _RELU, ("GlobalAvgPool", (), {}), ("Dense", (1,), {"W_std": 1.5})]),
    # the output spec orders the spatial letters the other way: the kernel's spatial axes follow
    "swapped_spatial_axes": ("image", [("Conv", (3, (3, 2)), {"strides": (1, 2), "padding": "SAME", "b_std": 0.1,
                                                              "dimension_numbers": ("NHWC", "HWIO", "NWHC")}),
                                       _RELU, ("AvgPool", ((2, 1),), {}),
                                       ("Conv", (2, (1, 2)), {"dimension_numbers": ("NWHC", "WHIO", "NHWC")}),
                                       _RELU, ("Flatten", (), {}), ("Dense", (1,), {"W_std": 1.5})]),
    "dense_batch_last": ("fc_t", [("Dense", (4,), {"W_std": 1.4, "b_std": 0.1, "batch_axis": 1, "channel_axis": 0}),
                                  _RELU, ("Dense", (1,), {"batch_axis": -1, "channel_axis": -2})]),
    "flatten_batch_out": ("image", [("Conv", (3, (2, 2)), {"b_std": 0.1}), _RELU,
                                    ("Flatten", (), {"batch_axis_out": 1}),
                                    ("Dense", (2,), {"batch_axis": 1, "channel_axis": 0}), _RELU,
                                    ("Dense", (1,), {"batch_axis": 1, "channel_axis": 0})]),
    # channels before the batch: global pooling keeps that order, (C, N)
    "global_pool_channels_first": ("cnhw", [("Dense", (3,), {"b_std": 0.1, "batch_axis": 1, "channel_axis": 0}),
                                            _RELU, ("GlobalSumPool", (), {"batch_axis": 1, "channel_axis": 0}),
                                            ("Dense", (1,), {"batch_axis": 1, "channel_axis": 0})]),
}


def inputs(kind):
    if kind == "padded":
        return padded_inputs()
    rng = np.random.default_rng(5)
    if kind in ("fc", "fc_t"):
        x1, x2 = rng.normal(size=(3, 5)), rng.normal(size=(2, 5))
        return (x1.T, x2.T) if kind == "fc_t" else (x1, x2)
    x1, x2 = rng.normal(size=(3, 4, 3, 2)), rng.normal(size=(2, 4, 3, 2))
    if kind == "nchw":
        return x1.transpose(0, 3, 1, 2), x2.transpose(0, 3, 1, 2)
    if kind == "cnhw":
        return x1.transpose(3, 0, 1, 2), x2.transpose(3, 0, 1, 2)
    return x1, x2


# Padded sequences (kernel_fn(..., mask_constant=MASK_CONSTANT)) through the
# layers that take them besides those of compat_cases_c.py: 1-D AvgPool and
# SumPool, Flatten, GlobalSumPool.
MASK_CONSTANT = 100.0
MASKED = {
    "masked_avgpool": ("padded", [("Conv", (4, (3,)), {"padding": "SAME", "W_std": 1.4, "b_std": 0.1}), _RELU,
                                  ("AvgPool", ((2,),), {"strides": (2,), "padding": "SAME", "normalize_edges": True}),
                                  ("Dense", (3,), {"W_std": 1.3, "b_std": 0.2}), _RELU, ("GlobalAvgPool", (), {}),
                                  ("Dense", (1,), {"W_std": 1.5})]),
    "masked_sumpool_flatten": ("padded", [("Conv", (4, (2,)), {"W_std": 1.4, "b_std": 0.1}), _RELU,
                                          ("SumPool", ((3,),), {}), ("Flatten", (), {}),
                                          ("Dense", (1,), {"W_std": 1.5})]),
    "masked_dense_flatten": ("padded", [("Dense", (4,), {"W_std": 1.4, "b_std": 0.1}), _RELU, ("Flatten", (), {}),
                                        ("Dense", (2,), {"W_std": 1.2}), ("Erf", (), {}),
                                        ("Dense", (1,), {"W_std": 1.5})]),
    "masked_global_sum": ("padded", [("Conv", (4, (3,)), {"strides": (2,), "padding": "SAME", "W_std": 1.4,
                                                          "b_std": 0.1}), _RELU, ("GlobalSumPool", (), {}),
                                     ("Dense", (1,), {"W_std": 1.5})]),
}


def padded_inputs():
    """Sequences (batch, 7, 2) with whole steps equal to MASK_CONSTANT at the end."""
    rng = np.random.default_rng(6)
    x1, x2 = rng.normal(size=(3, 7, 2)), rng.normal(size=(2, 7, 2))
    x1[0, 5:], x1[1, 3:], x2[1, 6:] = MASK_CONSTANT, MASK_CONSTANT, MASK_CONSTANT
    return x1, x2


# Networks whose parameters neural-tangents draws and this package applies.
PARAMS = {
    "dense_s": ("fc", [("Dense", (3,), _std((1, 2))), _RELU, ("Dense", (2,), _std((2, 1), b_std=None))]),
    "conv_s": ("image", [("Conv", (3, (2, 2)), _std((1, 2))), _RELU,
                         ("ConvTranspose", (2, (2, 2)), _std((2, 3), strides=(1, 2))),
                         ("ConvLocal", (2, (2, 1)), _std((3, 1)))]),
    "avgpool_channel_first": ("nchw", [("AvgPool", ((2, 2),), {"strides": (2, 1), "padding": "SAME",
                                                               "channel_axis": 1}),
                                       ("SumPool", ((2, 1),), {"channel_axis": 1, "padding": "CIRCULAR"})]),
}
