"""Networks for ``make_compat_reference_d.py`` and ``tests/contract/test_nt_compat_layers_d.py``
(issue 19, part D: ``ConvTranspose``, ``ConvLocal``, ``DotGeneral`` and the
layout arguments), as plain data built by either library's ``stax``
(neural-tangents' or ours), the same way as ``compat_cases.py``.

Every network ends in a readout (``Flatten``, ``GlobalAvgPool``) and a
``Dense``: neural-tangents stores the spatial axes of a kernel reversed after
an odd number of weight-shared convolutions, so only flat kernels are
compared value for value.
"""
import numpy as np

from compat_cases import build  # noqa: F401  (the shared builder)

_RELU = ("Relu", (), {})
_OUT = ("Dense", (1,), {"W_std": 1.5})
_GAP = ("GlobalAvgPool", (), {})
_FLAT = ("Flatten", (), {})


def _conv_net(layer, readout, head=True):
    first = [("Conv", (4, (2, 2)), {"padding": "SAME", "W_std": 1.4, "b_std": 0.1}), _RELU] if head else []
    return first + [layer, _RELU, readout, _OUT]


def _t(pad, filters=(3, 2), strides=None, **kw):
    kw = {"W_std": 1.3, "b_std": 0.2, "padding": pad, **kw}
    return ("ConvTranspose", (4, filters, strides), kw)


def _l(pad, filters=(3, 2), strides=None, **kw):
    kw = {"W_std": 1.3, "b_std": 0.2, "padding": pad, **kw}
    return ("ConvLocal", (4, filters, strides), kw)


# name -> (input kind, [layer spec])
CASES = {
    "conv_transpose_valid_gap": ("image", _conv_net(_t("VALID"), _GAP)),
    "conv_transpose_same_strided_gap": ("image", _conv_net(_t("SAME", strides=(2, 1)), _GAP)),
    "conv_transpose_circular_gap": ("image", _conv_net(_t("CIRCULAR"), _GAP)),
    "conv_transpose_circular_strided_flatten": ("image", _conv_net(_t("CIRCULAR", (2, 3), (2, 2)), _FLAT)),
    "conv_transpose_valid_strided_flatten": ("image", _conv_net(_t("VALID", (2, 2), (2, 3)), _FLAT)),
    "conv_transpose_standard_first": ("image", _conv_net(_t("SAME", (2, 2), (1, 2), parameterization="standard"),
                                                         _GAP, head=False)),
    "conv_transpose_1d": ("seq", _conv_net(("ConvTranspose", (4, (3,), (2,)), {"padding": "SAME", "b_std": 0.1}),
                                           _GAP, head=False)),
    "conv_local_valid_flatten": ("image", _conv_net(_l("VALID"), _FLAT)),
    "conv_local_same_gap": ("image", _conv_net(_l("SAME"), _GAP)),
    # After one weight-shared Conv neural-tangents holds the spatial axes reversed and applies ConvLocal's
    # filter and strides to the wrong axes (NT_WRONG in the test); square filters and unit strides, or
    # ConvLocal first, are not affected.
    "conv_local_circular_strided_gap": ("image", _conv_net(_l("CIRCULAR", (2, 2), (2, 1)), _GAP)),
    "conv_local_square_gap": ("image", _conv_net(_l("SAME", (2, 2)), _GAP)),
    "conv_local_first_gap": ("image", _conv_net(_l("CIRCULAR", (3, 2), (2, 1)), _GAP, head=False)),
    "conv_local_standard_flatten": ("image", _conv_net(_l("SAME", (2, 2), parameterization="standard"), _FLAT,
                                                       head=False)),
    "dot_general_scalar": ("image", [("Conv", (4, (2, 2)), {"padding": "SAME", "W_std": 1.4, "b_std": 0.1}),
                                     ("DotGeneral", (), {"rhs": 2.0}), _RELU, _GAP, _OUT]),
    "dot_general_rows": ("image", [("Conv", (4, (2, 2)), {"padding": "SAME", "W_std": 1.4, "b_std": 0.1}),
                                   ("DotGeneral", (), {"rhs": np.array([1.0, -0.5, 0.0, 2.0]),
                                                       "dimension_numbers": (((1,), (0,)), ((), ()))}),
                                   _RELU, ("Conv", (4, (2,)), {"W_std": 1.2}), _RELU, _GAP, _OUT]),
    # after an activation (not Gaussian): a linear readout is still exact
    "dot_general_after_relu": ("image", [("Conv", (4, (2, 2)), {"padding": "SAME", "W_std": 1.4, "b_std": 0.1}),
                                         _RELU, ("DotGeneral", (), {"rhs": np.array([1.0, -1.0, 0.5, 0.0]),
                                                                    "dimension_numbers": (((1,), (0,)), ((), ()))}),
                                         _GAP, _OUT]),
    "dot_general_lhs_columns": ("image", [("Conv", (4, (2, 2)), {"padding": "SAME", "W_std": 1.4}), _RELU,
                                          ("DotGeneral", (), {"lhs": np.array([0.5, 1.5, -1.0]),
                                                              "dimension_numbers": (((0,), (2,)), ((), ()))}),
                                          _FLAT, _OUT]),
    "conv_oihw_filters": ("image", [("Conv", (4, (3, 2)), {"padding": "SAME", "W_std": 1.4, "b_std": 0.1,
                                                           "dimension_numbers": ("NHWC", "OIHW", "NHWC")}),
                                    _RELU, _GAP, _OUT]),
    "conv_whio_filters": ("image", [("Conv", (4, (3, 2)), {"strides": (2, 1), "W_std": 1.4,
                                                           "dimension_numbers": ("NHWC", "WHIO", "NHWC")}),
                                    _RELU, _FLAT, _OUT]),
    "dense_on_images_explicit_axes": ("image", [("Dense", (4,), {"W_std": 1.4, "b_std": 0.1, "batch_axis": 0,
                                                                 "channel_axis": 3}),
                                                _RELU, ("GlobalAvgPool", (), {"batch_axis": 0, "channel_axis": -1}),
                                                _OUT]),
}


def inputs(kind):
    rng = np.random.default_rng(4)
    if kind == "seq":
        return rng.normal(size=(3, 5, 2)), rng.normal(size=(2, 5, 2))
    return rng.normal(size=(3, 4, 3, 2)), rng.normal(size=(2, 4, 3, 2))

# Networks whose parameters neural-tangents draws and this package applies
# (finite layers only: the layouts that kernel_fn refuses are included).
_NCHW = ("NCHW", "OIHW", "NCHW")
PARAMS = {
    "conv_transpose_circular": ("image", [_t("CIRCULAR", (3, 2), (2, 1)), _RELU, _t("SAME", (2, 2), (1, 2))]),
    "conv_transpose_valid_standard": ("image", [_t("VALID", (2, 3), (2, 2), parameterization="standard")]),
    "conv_local_circular": ("image", [_l("CIRCULAR", (2, 2), (2, 1)), _RELU, _l("VALID", (2, 1))]),
    "conv_local_same_standard": ("image", [_l("SAME", (3, 2), parameterization="standard")]),
    "nchw_network": ("image", [("Conv", (3, (2, 2)), {"padding": "SAME", "b_std": 0.1, "dimension_numbers": _NCHW}),
                               ("Relu", (), {}),
                               ("ConvTranspose", (3, (2, 1), (1, 2)), {"b_std": 0.1, "dimension_numbers": _NCHW}),
                               ("ConvLocal", (3, (2, 2)), {"b_std": 0.1, "dimension_numbers": _NCHW}),
                               ("Dense", (2,), {"b_std": 0.1, "channel_axis": 1}),
                               ("GlobalAvgPool", (), {"channel_axis": 1})]),
    "flatten_batch_last": ("image", [("Dense", (2,), {"b_std": 0.1}), ("Flatten", (), {"batch_axis_out": 1}),
                                     ("Dense", (3,), {"channel_axis": 0, "batch_axis": 1})]),
    "dot_general_flip": ("image", [("Conv", (2, (2, 2)), {}),
                                   ("DotGeneral", (), {"lhs": np.eye(3)[::-1],
                                                       "dimension_numbers": (((1,), (1,)), ((), ()))})]),
}
