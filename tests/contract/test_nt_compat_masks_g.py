"""Issue 19, part G: neural-tangents' parameters through our finite networks on
padded inputs (``apply_fn(..., mask_constant=0)``) give its outputs, on
networks where hidden activations of real steps or pixels are exactly zero
(a ReLU with one or two channels), which a layer re-reading the padding from
the values takes for padding. Networks and inputs in
``tests/oracle/compat_cases_g.py``; neural-tangents 0.6.5's parameters and
outputs from ``tests/oracle/make_compat_reference_g.py``, which checks first
that neural-tangents is right there (its masked outputs equal its outputs on
each input cut to its real positions, to 1e-12) and that such a zero position
exists in every network. And kernels of branches whose masks differ,
combined by ``FanInSum`` or ``FanInConcat`` (before: refused with masks).

Tolerance: 1e-10 relative (the same float64 parameters through the same
operations; measured below 1.1e-15), while the masks re-read from the values
at every layer (before this part) were 25 % to 200 % off relative to the
largest output, and the concatenation of padded branches was refused.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ntkcourse import stax

sys.path.insert(0, str(Path(__file__).parents[1] / "oracle"))
from compat_cases_g import CASES, MASK_CONSTANT, PARAMS, PARAMS_LAYOUTS, build, inputs  # noqa: E402
from compat_checks import assert_padded_kernels_match  # noqa: E402
from compat_params import outputs_with_their_parameters  # noqa: E402

DATA = Path(__file__).parents[1] / "data"
ARRAYS = np.load(DATA / "nt_params_g.npz")
REF = json.loads((DATA / "nt_compat_reference_g.json").read_text())


# about 0.5 s of CPU each (our parameters' structure traced, not drawn: tests/oracle/compat_params.py)
@pytest.mark.parametrize("name", sorted(PARAMS))
def test_neural_tangents_parameters_give_its_outputs_where_hidden_real_positions_are_zero(name):
    kind, spec = PARAMS[name]
    x, _ = inputs(kind)
    got = outputs_with_their_parameters(build(stax, spec), x, ARRAYS, name, mask_constant=MASK_CONSTANT)
    want = ARRAYS[f"{name}/output"]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())


# Other layouts (before: apply_fn(..., mask_constant=) refused them, naming the layer): NCHW convolution and
# pools, channels before the batch.
@pytest.mark.parametrize("name", sorted(PARAMS_LAYOUTS))
def test_neural_tangents_parameters_give_its_outputs_on_padded_inputs_in_other_layouts(name):
    kind, spec = PARAMS_LAYOUTS[name]
    x, _ = inputs(kind)
    got = outputs_with_their_parameters(build(stax, spec), x, ARRAYS, name, mask_constant=MASK_CONSTANT)
    want = ARRAYS[f"{name}/output"]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())


# Slow (about 5 s of CPU each): in the default suite the kernel of a sum of such branches is checked against
# the finite network's Jacobian (tests/kernels/test_stax_pool_masks.py), which fails too with the masks of
# the combination real only where every branch is.
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_branches_with_different_masks_combine_as_neural_tangents_does(name):
    # Pairs (x1, x2) and x1 with itself; a combination is real where any branch is (1e-9, see
    # compat_checks; a combination real only where every branch is moves the values by far more).
    kind, spec = CASES[name]
    x1, x2 = inputs(kind)
    assert_padded_kernels_match(build(stax, spec)[2], x1, x2, REF[name], MASK_CONSTANT)
