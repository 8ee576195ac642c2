"""Issue 19, part G: neural-tangents' parameters through our finite networks on
padded inputs (``apply_fn(..., mask_constant=0)``) give its outputs, on
networks where hidden activations of real steps or pixels are exactly zero
(a ReLU with one or two channels), which a layer re-reading the padding from
the values takes for padding. Networks and inputs in
``tests/oracle/compat_cases_g.py``; neural-tangents 0.6.5's parameters and
outputs from ``tests/oracle/make_compat_reference_g.py``, which checks first
that neural-tangents is right there (its masked outputs equal its outputs on
each input cut to its real positions, to 1e-12) and that such a zero position
exists in every network.

Tolerance: 1e-10 relative (the same float64 parameters through the same
operations; measured below 1.1e-15), while the masks re-read from the values
at every layer (before this part) were 25 % to 200 % off relative to the
largest output, and the concatenation of padded branches was refused.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

from ntkcourse import stax

sys.path.insert(0, str(Path(__file__).parents[1] / "oracle"))
from compat_cases_g import MASK_CONSTANT, PARAMS, build, inputs  # noqa: E402
from compat_params import outputs_with_their_parameters  # noqa: E402

ARRAYS = np.load(Path(__file__).parents[1] / "data" / "nt_params_g.npz")


# about 0.5 s of CPU each (our parameters' structure traced, not drawn: tests/oracle/compat_params.py)
@pytest.mark.parametrize("name", sorted(PARAMS))
def test_neural_tangents_parameters_give_its_outputs_where_hidden_real_positions_are_zero(name):
    kind, spec = PARAMS[name]
    x, _ = inputs(kind)
    got = outputs_with_their_parameters(build(stax, spec), x, ARRAYS, name, mask_constant=MASK_CONSTANT)
    want = ARRAYS[f"{name}/output"]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())
