"""Issue 19, part H: padded images (``kernel_fn(..., mask_constant=c)``)
through ``ConvTranspose`` (``'SAME'``, ``'VALID'``, ``'CIRCULAR'``, strides,
an ``'NCHW'`` output), ``ConvLocal`` (strides, swapped spatial letters),
``ImageResize`` (``'linear'``, ``'nearest'``) and ``Index`` (slices, integers
removing spatial axes), against neural-tangents 0.6.5 (float64 values from
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
from compat_cases_h import CASES, MASK_CONSTANT, PARAMS, build, inputs  # noqa: E402
from compat_checks import assert_masked_outputs_match, assert_padded_kernels_match  # noqa: E402

DATA = Path(__file__).parents[1] / "data"
REF = json.loads((DATA / "nt_compat_reference_h.json").read_text())
ARRAYS = np.load(DATA / "nt_params_h.npz")

@pytest.mark.parametrize("name", sorted(CASES))
def test_padded_images_through_these_layers_match_neural_tangents(name):
    # Pairs (x1, x2) with mask_constant (their cov1 is x1's own covariance); a kernel of x1 with
    # itself is another compilation of the network, and parts E and F check that path.
    kind, spec = CASES[name]
    x1, x2 = inputs(kind)
    assert_padded_kernels_match(build(stax, spec)[2], x1, x2, REF[name], MASK_CONSTANT, alone=False)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_neural_tangents_parameters_give_its_outputs_on_padded_images(name):
    # apply_fn(..., mask_constant=c): padded positions zero at the input of every layer,
    # the global average over the real pixels only.
    kind, spec = PARAMS[name]
    x1, _ = inputs(kind)
    assert_masked_outputs_match(build(stax, spec), x1, ARRAYS, name, MASK_CONSTANT)
