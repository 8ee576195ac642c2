"""The kernel contract: same network definition as neural-tangents -> same kernels.

The reference values in tests/data/nt_reference.npz were computed by
neural-tangents 0.6.5 (on jax 0.4.23, float64) by tests/oracle/make_reference.py
for every case of tests/oracle/nt_cases.py. Here the same specs are built with
``ntkcourse.stax`` and compared.

Tolerance: rtol 1e-12, plus atol 1e-8 times the largest entry. Both
libraries evaluate the same closed forms in float64 and agree to round-off
(median worst-entry error over the cases 2.4e-16, all but four cases below
2e-15, measured with the script in this docstring's history) except where the
ReLU-family derivative kernel (pi - arccos rho) / 2 pi is evaluated at a
correlation within round-off of +-1 (an input against itself, after Conv +
Flatten). There one ulp of rho moves arccos by ~1e-8: ntkcourse snaps such
correlations to exactly +-1 (dual._relu_parts) and neural-tangents does not,
and the largest difference seen is 1.1e-9 of the kernel's scale.
"""
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax
from oracle import nt_cases

DATA = Path(__file__).resolve().parents[1] / "data"
REF = np.load(DATA / "nt_reference.npz")
META = json.loads((DATA / "nt_reference.json").read_text())
CASES = {c["name"]: c for c in META["cases"]}


def _reference(case, what):
    key = f"{case['name']}/{what}_canonical"
    return REF[key] if key in REF.files else REF[f"{case['name']}/{what}"]


def _inputs(case):
    kind = case["input"]
    x1 = REF[f"inputs/{kind}/x1"]
    x2 = REF[f"inputs/{kind}/x2"] if case["x2"] else None
    return x1, x2


@pytest.mark.parametrize("name", sorted(CASES))
def test_nngp_and_ntk_equal_neural_tangents(name):
    case = CASES[name]
    _, _, kernel_fn = nt_cases.build(case["net"], stax, jnp)
    x1, x2 = _inputs(case)
    ours = kernel_fn(x1, x2, ("nngp", "ntk"))
    for what in ("nngp", "ntk"):
        got, ref = np.asarray(getattr(ours, what)), _reference(case, what)
        assert got.shape == ref.shape, what
        scale = np.max(np.abs(ref))
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-8 * scale, err_msg=what)


def test_every_reference_case_is_checked():
    """The test above runs over every case stored by the oracle script."""
    assert len(CASES) == META["n_cases"] == len(nt_cases.CASES)
