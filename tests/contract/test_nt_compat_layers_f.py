"""Issue 19, part F: padded images (``kernel_fn(..., mask_constant=c)``)
through ``Conv`` (``'SAME'``, ``'VALID'``, ``'CIRCULAR'``, strides), 2-D
``AvgPool``/``SumPool``, ``GlobalAvgPool``/``GlobalSumPool`` and ``Flatten``,
in the default layout and in others (``'NCHW'``, swapped spatial letters,
channels before the batch), and graph patterns (``Aggregate``) with inputs
in other layouts, against neural-tangents 0.6.5 (float64 values
from ``tests/oracle/make_compat_reference_f.py``, networks and inputs in
``tests/oracle/compat_cases_f.py``: whole rows and columns of pixels padded,
and one entry of a real pixel equal to the constant).

Tolerances: kernels 1e-9 relative to neural-tangents (the same float64 sums
in another order: measured below 1.1e-15, while an output pixel's mask taken
one position off moves values by 0.27 or more, and ignoring the masks by far
more); finite outputs 1e-10 relative (the same float64 parameters through
the same operations).
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ntkcourse import stax

sys.path.insert(0, str(Path(__file__).parents[1] / "oracle"))
from compat_cases_f import CASES, GRAPH_LAYOUTS, MASK_CONSTANT, PARAMS, build, inputs  # noqa: E402
from compat_checks import assert_masked_outputs_match, assert_padded_kernels_match  # noqa: E402

DATA = Path(__file__).parents[1] / "data"
REF = json.loads((DATA / "nt_compat_reference_f.json").read_text())
ARRAYS = np.load(DATA / "nt_params_f.npz")

# In the default suite: the channels before the batch (the masks read from
# inputs whose axes are moved, a global sum over the real pixels; about 3.5 s
# of CPU); the others are slow (each compiles its own programs). Strided
# CIRCULAR convolutions and the finite network's masks are checked in the
# default suite by tests/kernels/test_stax_pool_masks.py (kernel = J J^T of
# the masked apply_fn).
FAST = {"channels_first_batch_second"}
FAST_PARAMS = set()


def _params(names, fast):
    return [n if n in fast else pytest.param(n, marks=pytest.mark.slow) for n in sorted(names)]


@pytest.mark.parametrize("name", _params(CASES, FAST))
def test_padded_images_match_neural_tangents(name):
    # Pairs (x1, x2) and x1 with itself, both with mask_constant.
    kind, spec = CASES[name]
    x1, x2 = inputs(kind)
    assert_padded_kernels_match(build(stax, spec)[2], x1, x2, REF[name], MASK_CONSTANT)


@pytest.mark.parametrize("name", _params(PARAMS, FAST_PARAMS))
def test_neural_tangents_parameters_give_its_outputs_on_padded_images(name):
    # apply_fn(..., mask_constant=c): padded pixels zero at the input of every layer,
    # the global average over the real pixels only.
    kind, spec = PARAMS[name]
    x1, _ = inputs(kind)
    assert_masked_outputs_match(build(stax, spec), x1, ARRAYS, name, MASK_CONSTANT)


@pytest.mark.slow  # each network compiles its own programs (about 3 s of CPU each)
@pytest.mark.parametrize("name", sorted(GRAPH_LAYOUTS))
def test_graph_patterns_with_inputs_in_other_layouts_match_neural_tangents(name):
    # Aggregate(batch_axis=, channel_axis=, aggregate_axis=) with the patterns batch first; pairs and x1 alone.
    kind, spec = GRAPH_LAYOUTS[name]
    x1, x2, p1, p2 = inputs(kind)
    kernel_fn = build(stax, spec)[2]
    pair = kernel_fn(x1, x2, ("nngp", "ntk", "cov1"), pattern=(p1, p2))
    alone = kernel_fn(x1, None, ("nngp", "ntk"), pattern=(p1, p1))
    for got, key in [(pair.nngp, "nngp"), (pair.ntk, "ntk"), (pair.cov1, "cov1"), (alone.nngp, "self_nngp"),
                     (alone.ntk, "self_ntk")]:
        want = np.asarray(REF[name][key], dtype=float)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-12 * np.abs(want).max(), err_msg=key)
