"""Networks for ``make_compat_reference_h.py`` and ``tests/contract/test_nt_compat_layers_h.py``
(issue 19, part H: padded images, ``kernel_fn(..., mask_constant=MASK_CONSTANT)``,
through ``ConvTranspose`` (``'SAME'``, ``'VALID'``, ``'CIRCULAR'``, strides,
``LayerNorm`` over rows and over all positions,
another output layout), ``ConvLocal`` (strides, swapped spatial letters),
``ImageResize`` (``'linear'``, ``'nearest'``, after convolutions) and
``Index`` (slices, an integer removing one spatial axis, integers removing
both), as plain data built by either library's ``stax`` the same way as
``compat_cases.py``. The inputs are part F's padded images.

Every network ends in a flat readout (neural-tangents stores spatial axes
reversed after an odd number of convolutions). ``ImageResize`` directly after
one ``Conv`` is left out: neural-tangents 0.6.5 fails there (its resize of a
kernel whose spatial axes are stored reversed); after two it is compared.
Each network carries several of these layers (one compilation each, the
suite's time); that each network's values depend on the layers' mask rules
was checked by changing the rules (5-16 % changes).
"""
import numpy as np

from compat_cases import build  # noqa: F401  (the shared builder)
from compat_cases_f import MASK_CONSTANT  # noqa: F401  (part F's constant)
from compat_cases_f import inputs as padded_inputs

_RELU = ("Relu", (), {})
_OUT = ("Dense", (1,), {"W_std": 1.5})
_GAP = ("GlobalAvgPool", (), {})
_AFFINE = {"W_std": 1.3, "b_std": 0.2}

# name -> (input kind, [layer spec]); each network carries several of the layers (one compilation each).
CASES = {
    "conv_transpose_same_then_conv_local_swapped": ("image", [
        ("Conv", (3, (2, 2)), {"padding": "SAME", "b_std": 0.1}), _RELU,
        ("ConvTranspose", (3, (3, 2)), {"strides": (2, 1), "padding": "SAME", **_AFFINE}), _RELU,
        ("ConvLocal", (3, (3, 2)), {"strides": (2, 1), "padding": "SAME", "dimension_numbers":
                                    ("NHWC", "HWIO", "NWHC"), **_AFFINE}), _RELU, ("Flatten", (), {}), _OUT]),
    "conv_transpose_circular_one_row": ("image", [
        ("ConvTranspose", (3, (3, 2)), {"strides": (2, 1), "padding": "CIRCULAR", **_AFFINE}), _RELU,
        ("Index", ((slice(None), 3),), {}), _GAP, _OUT]),
    "conv_transpose_valid_nchw_output": ("image", [
        ("ConvTranspose", (3, (2, 2)), {"strides": (1, 2), "padding": "VALID", "dimension_numbers":
                                        ("NHWC", "HWIO", "NCHW"), **_AFFINE}), _RELU,
        ("GlobalAvgPool", (), {"channel_axis": 1}), _OUT]),
    "conv_local_valid_resize_linear_slices": ("image", [
        ("ConvLocal", (3, (2, 2)), {"strides": (2, 1), **_AFFINE}),
        ("ImageResize", ((-1, 3, 6, -1), "linear"), {}), _RELU,
        ("Index", ((slice(None), slice(1, 3), slice(None, None, 2)),), {}), _GAP, _OUT]),
    "resize_nearest_after_two_convs_one_pixel": ("image", [
        ("Conv", (3, (2, 2)), {"padding": "SAME", "b_std": 0.1}), _RELU, ("Conv", (3, (2, 2)), {"padding": "SAME"}),
        ("ImageResize", ((-1, 8, 3, -1), "nearest"), {}), _RELU, ("Index", ((slice(None), 5, 2),), {}),
        ("Dense", (2,), {"b_std": 0.3}), _RELU, _OUT]),
    "layer_norm_over_rows_then_positions": ("image", [
        ("Dense", (3,), {"b_std": 0.1}), ("LayerNorm", (), {"axis": (2, 3)}), _RELU,
        ("Conv", (3, (2, 2)), {"padding": "SAME", "b_std": 0.1}), ("LayerNorm", (), {"axis": (1, 2, 3)}), _RELU,
        _GAP, _OUT]),
    "nchw_resize_nearest_index": ("nchw", [
        ("Dense", (3,), {"b_std": 0.1, "channel_axis": 1}), _RELU,
        ("ImageResize", ((-1, -1, 8, 3), "nearest"), {"channel_axis": 1}),
        ("Index", ((slice(None), slice(None), slice(2, 7), 1),), {"channel_axis": 1}),
        ("GlobalAvgPool", (), {"channel_axis": 1}), _OUT]),
}

# Unpadded inputs in other layouts (no mask_constant: LayerNorm takes none here), name -> (kind, spec).
LAYOUTS = {
    "cnhw_layer_norm_index": ("plain_cnhw", [
        ("Dense", (3,), {"b_std": 0.1, "batch_axis": 1, "channel_axis": 0}),
        ("LayerNorm", (), {"axis": (0, 3), "batch_axis": 1, "channel_axis": 0}), _RELU,
        ("Index", ((slice(None), slice(None), 2),), {"batch_axis": 1, "channel_axis": 0}),
        ("GlobalSumPool", (), {"batch_axis": 1, "channel_axis": 0}),
        ("Dense", (1,), {"batch_axis": 1, "channel_axis": 0})]),
}


def inputs(kind):
    """Part F's padded images (``image``, ``nchw``), or unpadded images with their axes moved (``plain_*``)."""
    if not kind.startswith("plain_"):
        return padded_inputs(kind)
    rng = np.random.default_rng(11)
    x1, x2 = rng.normal(size=(3, 5, 4, 2)), rng.normal(size=(2, 5, 4, 2))
    order = {"plain_cnhw": (3, 0, 1, 2)}[kind]
    return x1.transpose(order), x2.transpose(order)

# Networks whose parameters neural-tangents draws and whose masked apply_fn this package reproduces.
# (LayerNorm is left out here: neural-tangents' finite layer adds mean**2 for every padded entry of a
# normalised group to the variance, tests/kernels/test_stax_layer_norm_masks.py says why this package does not.)
PARAMS = {
    "conv_transpose_conv_local_resize_index": ("image", [
        ("ConvTranspose", (2, (3, 2)), {"strides": (2, 1), "padding": "SAME", "b_std": 0.1}), _RELU,
        ("ConvLocal", (2, (2, 2)), {"padding": "SAME", "b_std": 0.1}),
        ("ImageResize", ((-1, 5, 6, -1), "linear"), {}), _RELU, ("Index", ((slice(None), slice(0, 2)),), {}), _GAP,
        ("Dense", (2,), {})]),
    "index_one_pixel_dense": ("image", [
        ("Dense", (3,), {"b_std": 0.1}), _RELU, ("Index", ((slice(None), 4, 3),), {}), ("Dense", (2,), {"b_std": 0.3})]),
}
