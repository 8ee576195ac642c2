"""Issue 19, part H: padded images (``kernel_fn(..., mask_constant=c)``)
through ``ConvTranspose`` (``'SAME'``, ``'VALID'``, ``'CIRCULAR'``, strides,
an ``'NCHW'`` output), ``ConvLocal`` (strides, swapped spatial letters),
``ImageResize`` (``'linear'``, ``'nearest'``) and ``Index`` (slices, integers
removing spatial axes), and ``ImageResize``, ``Index`` and ``LayerNorm`` with
``batch_axis``/``channel_axis`` (padded and unpadded), against neural-tangents 0.6.5 (float64 values from
``tests/oracle/make_compat_reference_h.py``, networks in
``tests/oracle/compat_cases_h.py``, part F's padded images: whole rows and
columns of pixels padded, and one entry of a real pixel equal to the constant).

The output masks are neural-tangents' rules: a ``ConvTranspose`` output is
padding when any input position reaching it is, a ``ConvLocal`` output when
its window is centred on padding (as ``Conv``), an ``ImageResize`` output only
when every contributing input position is, and ``Index`` selects the masks
with the positions.

Tolerances: kernels 1e-9 relative to neural-tangents (the same float64 sums
in another order: measured below 1.6e-15, while the ``ConvTranspose`` output
mask taken one reached position more lenient moves values by 5-16 %);
finite outputs 1e-10 relative (the same float64 parameters through the same
operations).
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ntkcourse import stax

sys.path.insert(0, str(Path(__file__).parents[1] / "oracle"))
from compat_cases_h import CASES, LAYOUTS, MASK_CONSTANT, PARAMS, build, inputs  # noqa: E402
from compat_checks import assert_masked_outputs_match, assert_padded_kernels_match  # noqa: E402
from compat_params import outputs_with_their_parameters  # noqa: E402

DATA = Path(__file__).parents[1] / "data"
REF = json.loads((DATA / "nt_compat_reference_h.json").read_text())
REF_LAYOUTS = json.loads((DATA / "nt_compat_reference_h_layouts.json").read_text())
ARRAYS = np.load(DATA / "nt_params_h.npz")

@pytest.mark.parametrize("name", sorted(CASES))
def test_padded_images_through_these_layers_match_neural_tangents(name):
    # Pairs (x1, x2) with mask_constant (their cov1 is x1's own covariance); a kernel of x1 with
    # itself is another compilation of the network, and parts E and F check that path.
    kind, spec = CASES[name]
    x1, x2 = inputs(kind)
    assert_padded_kernels_match(build(stax, spec)[2], x1, x2, REF[name], MASK_CONSTANT, alone=False)


# A readout of one pixel that is padding for some images: compared apart (what the outermost apply_fn returns there).
_PIXEL = "index_one_pixel_dense"


@pytest.mark.parametrize("name", sorted(set(PARAMS) - {_PIXEL}))
def test_neural_tangents_parameters_give_its_outputs_on_padded_images(name):
    # apply_fn(..., mask_constant=c): padded positions zero at the input of every layer,
    # the global average over the real pixels only.
    kind, spec = PARAMS[name]
    x1, _ = inputs(kind)
    assert_masked_outputs_match(build(stax, spec), x1, ARRAYS, name, MASK_CONSTANT)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layer_norm_and_index_in_other_layouts_match_neural_tangents(name):
    # batch_axis/channel_axis of LayerNorm and Index (channels first and batch second; ImageResize and Index
    # in NCHW are in CASES, padded); unpadded images, pairs (x1, x2). Before, each refused other layouts.
    kind, spec = LAYOUTS[name]
    x1, x2 = inputs(kind)
    k = build(stax, spec)[2](x1, x2, ("nngp", "ntk", "cov1"))
    for key in ("nngp", "ntk", "cov1"):
        want = np.asarray(REF_LAYOUTS[name][key], dtype=float)
        np.testing.assert_allclose(np.asarray(getattr(k, key)), want, rtol=1e-9, atol=1e-12 * np.abs(want).max(),
                                   err_msg=key)


@pytest.mark.parametrize("make, kwargs", [
    (lambda **kw: stax.ImageResize((-1, 3, 6, -1) if not kw else (-1, -1, 3, 6), "linear", **kw), {}),
    (lambda **kw: stax.Index((slice(None), slice(1, 4), 2) if not kw else (slice(None), slice(None), slice(1, 4), 2),
                             **kw), {}),
    (lambda **kw: stax.LayerNorm(axis=(1, 3) if not kw else (1, 2), **kw), {}),
], ids=["ImageResize", "Index", "LayerNorm"])
def test_finite_layers_in_channels_second_layout_are_the_default_layer_on_moved_axes(make, kwargs):
    # apply_fn with channel_axis=1 on NCHW activations = the default layer on NHWC, axes moved back.
    x = np.random.default_rng(3).normal(size=(2, 3, 5, 4))  # N C H W
    nhwc = np.moveaxis(x, 1, -1)
    got = make(channel_axis=1)[1]((), x)
    want = np.moveaxis(np.asarray(make()[1]((), nhwc)), -1, 1)
    # float32 (JAX's default): the same operations, sums taken in another order (measured 8.7e-7 relative for
    # LayerNorm's mean over two axes); a wrong axis would change values by O(1).
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)


def test_a_padded_pixel_read_out_by_index_returns_the_padding_value():
    # Index(4, 3) picks a pixel that is padding in images 0 and 1 (a padded row, a padded column) and real in
    # image 2: the real output is neural-tangents' (1e-10), the padded ones come back as mask_constant (this
    # package's outermost apply_fn marks outputs of padded positions so; neural-tangents' unmask_fn gives 0).
    kind, spec = PARAMS[_PIXEL]
    x1, _ = inputs(kind)
    got = outputs_with_their_parameters(build(stax, spec), x1, ARRAYS, _PIXEL, mask_constant=MASK_CONSTANT)
    want = ARRAYS[f"{_PIXEL}/output"]
    np.testing.assert_array_equal(want[:2], 0.0)  # the stored outputs: neural-tangents masks images 0 and 1
    np.testing.assert_array_equal(got[:2], MASK_CONSTANT)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-10)
