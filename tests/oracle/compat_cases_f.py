"""Networks for ``make_compat_reference_f.py`` and ``tests/contract/test_nt_compat_layers_f.py``
(issue 19, part F: padded images, ``kernel_fn(..., mask_constant=MASK_CONSTANT)``,
through ``Conv`` (``'SAME'``, ``'VALID'``, ``'CIRCULAR'``, strides), 2-D
``AvgPool``/``SumPool``, the global pools and ``Flatten``, in the default
layout and in others (``'NCHW'``, swapped spatial letters, channels before
the batch); and graph patterns with inputs in other layouts), as plain data
built by either library's ``stax`` the same way as ``compat_cases.py``.

Every network ends in a flat readout (neural-tangents stores spatial axes
reversed after an odd number of convolutions).
"""
import numpy as np

from compat_cases import build  # noqa: F401  (the shared builder)

MASK_CONSTANT = 100.0
_RELU = ("Relu", (), {})
_NCHW = ("NCHW", "OIHW", "NCHW")
_OUT = ("Dense", (1,), {"W_std": 1.5})

# name -> (input kind, [layer spec])
CASES = {
    "conv_same_avgpool_circular_gap": ("image", [
        ("Conv", (3, (3, 2)), {"padding": "SAME", "W_std": 1.4, "b_std": 0.1}), _RELU,
        ("AvgPool", ((2, 2),), {"strides": (2, 1), "padding": "SAME"}),
        ("Conv", (3, (2, 2)), {"padding": "CIRCULAR", "b_std": 0.1}), _RELU, ("GlobalAvgPool", (), {}), _OUT]),
    "conv_valid_strided_flatten": ("image", [
        ("Conv", (3, (2, 2)), {"strides": (2, 1), "W_std": 1.3, "b_std": 0.2}), _RELU, ("Flatten", (), {}),
        ("Dense", (2,), {"W_std": 1.2}), ("Erf", (), {}), _OUT]),
    "sumpool_global_sum": ("image", [
        ("Conv", (3, (2, 2)), {"padding": "SAME", "W_std": 1.4, "b_std": 0.1}), ("Erf", (), {}),
        ("SumPool", ((2, 2),), {}), ("GlobalSumPool", (), {}), _OUT]),
    "dense_circular_strided_global_sum": ("image", [
        ("Dense", (3,), {"W_std": 1.2, "b_std": 0.3}), _RELU,
        ("Conv", (2, (3, 3)), {"strides": (2, 2), "padding": "CIRCULAR", "W_std": 1.3}), _RELU,
        ("GlobalSumPool", (), {}), _OUT]),
    "avgpool_normalized_edges_flatten": ("image", [
        ("Conv", (3, (3, 3)), {"padding": "SAME", "b_std": 0.1}), _RELU,
        ("AvgPool", ((3, 2),), {"strides": (1, 2), "padding": "SAME", "normalize_edges": True}),
        ("Flatten", (), {}), _OUT]),
    # layouts: the masks follow the kernel's positions
    "nchw_conv_avgpool_gap": ("nchw", [
        ("Conv", (3, (3, 2)), {"strides": (2, 1), "padding": "SAME", "W_std": 1.4, "b_std": 0.1,
                               "dimension_numbers": _NCHW}), _RELU,
        ("AvgPool", ((2, 2),), {"padding": "SAME", "channel_axis": 1}),
        ("GlobalAvgPool", (), {"channel_axis": 1}), _OUT]),
    "swapped_spatial_letters": ("image", [
        ("Conv", (3, (3, 2)), {"strides": (2, 1), "padding": "SAME", "b_std": 0.1,
                               "dimension_numbers": ("NHWC", "HWIO", "NWHC")}), _RELU,
        ("Conv", (2, (2, 1)), {"dimension_numbers": ("NWHC", "WHIO", "NHWC")}), _RELU,
        ("GlobalAvgPool", (), {}), _OUT]),
    "channels_first_batch_second": ("cnhw", [
        ("Dense", (3,), {"b_std": 0.1, "batch_axis": 1, "channel_axis": 0}), _RELU,
        ("GlobalSumPool", (), {"batch_axis": 1, "channel_axis": 0}),
        ("Dense", (1,), {"batch_axis": 1, "channel_axis": 0})]),
}


# Graph patterns with inputs in other layouts (kernel_fn(..., pattern=(p1, p2));
# the patterns stay batch first): the graphs and images of compat_cases_c.py
# with their axes moved.
GRAPH_LAYOUTS = {
    "graph_channels_second": ("graph_nch", [
        ("Aggregate", (), {"channel_axis": 1}), ("Dense", (4,), {"W_std": 1.5, "b_std": 0.2, "channel_axis": 1}),
        _RELU, ("Aggregate", (), {"channel_axis": 1}), ("GlobalSumPool", (), {"channel_axis": 1}), _OUT]),
    "graph_channels_first_batch_second": ("graph_cnv", [
        ("Dense", (4,), {"W_std": 1.4, "b_std": 0.1, "batch_axis": 1, "channel_axis": 0}), _RELU,
        ("Aggregate", (), {"batch_axis": 1, "channel_axis": 0}),
        ("GlobalAvgPool", (), {"batch_axis": 1, "channel_axis": 0}),
        ("Dense", (1,), {"batch_axis": 1, "channel_axis": 0})]),
    "nchw_image_columns": ("image_columns_nchw", [
        ("Dense", (3,), {"W_std": 1.2, "b_std": 0.1, "channel_axis": 1}),
        ("Aggregate", (3,), {"channel_axis": 1}), _RELU, ("GlobalAvgPool", (), {"channel_axis": 1}), _OUT]),
}


def padded_images():
    """Images (batch, 5, 4, 2) padded with MASK_CONSTANT: whole rows and
    columns of pixels (inputs of different sizes padded to one), and one
    entry of one channel inside a real pixel (masked alone: that pixel stays real).
    """
    rng = np.random.default_rng(7)
    x1, x2 = rng.normal(size=(3, 5, 4, 2)), rng.normal(size=(2, 5, 4, 2))
    x1[0, 4:] = MASK_CONSTANT
    x1[1, :, 3:] = MASK_CONSTANT
    x1[2, 1, 1, 0] = MASK_CONSTANT
    x2[1, 3:, 2:] = MASK_CONSTANT
    return x1, x2


def inputs(kind):
    """``(x1, x2)`` (padded images) or, for graph kinds, ``(x1, x2, p1, p2)``."""
    if kind.startswith("graph") or kind.startswith("image_columns"):
        from compat_cases_c import inputs as graphs
        x1, x2, p1, p2 = graphs("graph" if kind.startswith("graph") else "image_columns")
        order = {"graph_nch": (0, 2, 1), "graph_cnv": (2, 0, 1), "image_columns_nchw": (0, 3, 1, 2)}[kind]
        return x1.transpose(order), x2.transpose(order), p1, p2
    x1, x2 = padded_images()
    if kind == "nchw":
        return x1.transpose(0, 3, 1, 2), x2.transpose(0, 3, 1, 2)
    if kind == "cnhw":
        return x1.transpose(3, 0, 1, 2), x2.transpose(3, 0, 1, 2)
    return x1, x2


# Networks whose parameters neural-tangents draws and whose masked apply_fn
# (padded positions zero at the input of every layer) this package reproduces.
PARAMS = {
    "conv_pool_gap": ("image", [
        ("Conv", (3, (3, 2)), {"padding": "SAME", "b_std": 0.1}), _RELU,
        ("AvgPool", ((2, 2),), {"strides": (2, 1), "padding": "SAME"}),
        ("Conv", (2, (2, 2)), {"padding": "CIRCULAR", "b_std": 0.1}), _RELU, ("GlobalAvgPool", (), {}),
        ("Dense", (2,), {})]),
    "conv_flatten": ("image", [("Conv", (2, (2, 2)), {"strides": (2, 1)}), _RELU, ("Flatten", (), {}),
                               ("Dense", (2,), {})]),
}
