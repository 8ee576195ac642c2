"""``Aggregate`` (graph layers) gives neural-tangents' kernels, with dense and
sparse patterns, for ``(x1, x2)`` and for ``(x1, None)``; and so do padded
sequences (``mask_constant``) through ``Conv``, ``GlobalSelfAttention`` and
``GlobalAvgPool``, the network of neural-tangents' ``examples/imdb.py``.

Reference values: neural-tangents 0.6.5 in float64
(``tests/oracle/make_compat_reference_c.py``; networks and inputs in
``tests/oracle/compat_cases_c.py``).

Tolerance 1e-9 relative: both sides evaluate the same closed forms in float64
with contractions in a different order, which moves the last few of 16
digits; a wrong pattern side or transpose shows at 1e-2 or more.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ntkcourse import stax

sys.path.insert(0, str(Path(__file__).parents[1] / "oracle"))
from compat_cases_c import GRAPH, MASK_CONSTANT, MASKED, build, inputs  # noqa: E402

REF = json.loads((Path(__file__).parents[1] / "data" / "nt_compat_reference_c.json").read_text())


def _close(got, want, what):
    want = np.asarray(want)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-9 * np.abs(want).max(), err_msg=what)


# The default suite checks two networks that between them cover sparse
# edges on one aggregated axis and a weighted dense adjacency of
# one axis of images (dense graphs are checked against graph.gntk in
# tests/graph/test_stax_aggregate.py); the others, and every x2=None kernel,
# run with the slow tests.
FAST = ("gin_sparse", "image_columns")
CASES = [name if name in FAST else pytest.param(name, marks=pytest.mark.slow) for name in sorted(GRAPH)]


@pytest.mark.parametrize("name", CASES)
def test_graph_kernels_match_neural_tangents(name):
    kind, spec = GRAPH[name]
    x1, x2, p1, p2 = inputs(kind)
    k = build(stax, spec)[2](x1, x2, ("nngp", "ntk", "cov1"), pattern=(p1, p2))
    for field in ("nngp", "ntk", "cov1"):
        _close(getattr(k, field), REF[name][field], field)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GRAPH))
def test_graph_kernels_of_x1_with_itself_match_neural_tangents(name):
    kind, spec = GRAPH[name]
    x1, _, p1, _ = inputs(kind)
    k = build(stax, spec)[2](x1, None, ("nngp", "ntk"), pattern=(p1, p1))
    _close(k.nngp, REF[name]["self_nngp"], "nngp")
    _close(k.ntk, REF[name]["self_ntk"], "ntk")


# Padded sequences (mask_constant) through Conv, GlobalSelfAttention and
# GlobalAvgPool. The default suite checks the IMDB-like network with padding
# values also inside real steps (pair and x2=None); the others run with the
# slow tests.
FAST_MASKED = ("imdb_like_partial",)
MASKED_CASES = [n if n in FAST_MASKED else pytest.param(n, marks=pytest.mark.slow) for n in sorted(MASKED)]


@pytest.mark.parametrize("name", MASKED_CASES)
def test_masked_attention_kernels_match_neural_tangents(name):
    kind, spec = MASKED[name]
    x1, x2, _, _ = inputs(kind)
    kernel_fn = build(stax, spec)[2]
    k = kernel_fn(x1, x2, ("nngp", "ntk", "cov1"), mask_constant=MASK_CONSTANT)
    for field in ("nngp", "ntk", "cov1"):
        _close(getattr(k, field), REF[name][field], field)
    if name == "imdb_like_partial":
        alone = kernel_fn(x1, None, ("nngp", "ntk"), mask_constant=MASK_CONSTANT)
        _close(alone.nngp, REF[name]["self_nngp"], "x2=None nngp")
        _close(alone.ntk, REF[name]["self_ntk"], "x2=None ntk")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MASKED))
def test_masked_attention_kernels_of_x1_with_itself_match_neural_tangents(name):
    kind, spec = MASKED[name]
    x1, _, _, _ = inputs(kind)
    k = build(stax, spec)[2](x1, None, ("nngp", "ntk"), mask_constant=MASK_CONSTANT)
    _close(k.nngp, REF[name]["self_nngp"], "nngp")
    _close(k.ntk, REF[name]["self_ntk"], "ntk")
