"""Issue 19, part A: the remaining activations and simple layers give
neural-tangents' kernels (reference values from neural-tangents 0.6.5 in
float64, ``tests/oracle/make_compat_reference_a.py``, networks in
``tests/oracle/compat_cases_a.py``).

Tolerance 1e-9 relative: both sides evaluate closed forms in float64, in a
different order and sometimes by a different route (a Hermite expansion or
an exact recurrence here where neural-tangents writes a case per degree or
differentiates by autodiff); round-off of those routes is below 1e-13 on
these inputs, so 1e-9 leaves a wide margin while any formula error (a
missing factor, a wrong sign, a wrong degree) shows at 1e-3 or more.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ntkcourse import stax

sys.path.insert(0, str(Path(__file__).parents[1] / "oracle"))
from compat_cases_a import CASES, HERMITE_CASES, LAYER_CASES, build, inputs  # noqa: E402

# neural-tangents returns NaN for cov1 after RectifiedMonomial: it evaluates
# the arc-cosine formula at angle 0, where its (pi - t)/sin t is inf.
NT_NAN = {"cov1": {name for name in CASES if "rectified_monomial" in name}}
REF = json.loads((Path(__file__).parents[1] / "data" / "nt_compat_reference_a.json").read_text())
ALL = {**CASES, **HERMITE_CASES, **LAYER_CASES}


# ImageResize cases took 10-72 s each at load ~30 (compilation of the resize of
# the 6-axis kernel at the input): slow.
SLOW = {name for name in ALL if name.startswith("image_resize")}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(ALL)])
def test_kernels_match_neural_tangents(name):
    kind, spec = ALL[name]
    x1, x2 = inputs(kind)
    k = build(stax, spec)[2](x1, x2, ("nngp", "ntk", "cov1"))
    for field in ("nngp", "ntk", "cov1"):
        want = np.asarray(REF[name][field], dtype=float)
        if name in NT_NAN.get(field, ()):
            assert np.all(np.isnan(want)), "neural-tangents no longer returns NaN here: compare the values"
            continue
        np.testing.assert_allclose(np.asarray(getattr(k, field)), want, rtol=1e-9,
                                   atol=1e-12 * np.abs(want).max(), err_msg=field)


@pytest.mark.parametrize("name", sorted(NT_NAN["cov1"]))
def test_cov1_where_neural_tangents_gives_nan_is_the_diagonal_of_the_nngp(name):
    # The diagonal of nngp(x1, x1) is computed by the off-diagonal formula, whose
    # values are checked against neural-tangents above, at correlation 1.
    kind, spec = ALL[name]
    x1, _ = inputs(kind)
    k = build(stax, spec)[2](x1, None, ("nngp", "cov1"))
    np.testing.assert_allclose(np.asarray(k.cov1), np.diag(np.asarray(k.nngp)), rtol=1e-12)


@pytest.mark.parametrize("make, match", [
    (lambda: stax.Monomial(-1), r"Monomial: `degree` must be an integer >= 0, got -1"),
    (lambda: stax.Monomial(2.5), r"Monomial: `degree` must be an integer >= 0, got 2.5"),
    (lambda: stax.RectifiedMonomial(True), r"RectifiedMonomial: `degree` must be an integer >= 0, got True"),
    (lambda: stax.Hermite(-2), r"Hermite: `degree` must be an integer >= 0"),
    (lambda: stax.Polynomial([[1.0, 2.0]]), r"Polynomial: `coef` must be a 1-D sequence"),
    (lambda: stax.Polynomial(["a"]), r"Polynomial: `coef` must be a sequence of real numbers"),
    (lambda: stax.Rbf(-1.0), r"Rbf: `gamma` must be a real number >= 0"),
    (lambda: stax.Exp(b="2"), r"Exp: `b`"),
    (lambda: stax.ExpNormalized(do_clip=1), r"ExpNormalized: `do_clip` must be True or False"),
    (lambda: stax.Relu(do_stabilize="yes"), r"Relu: `do_stabilize` must be True or False"),
])
def test_bad_arguments_are_refused_with_the_function_and_argument_named(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


@pytest.mark.parametrize("make", [stax.Sign, stax.Gabor, lambda: stax.Hermite(2), lambda: stax.RectifiedMonomial(1)])
def test_non_gaussian_input_is_refused(make):
    # After an activation the pre-activations are not Gaussian: the dual formulas do not apply.
    x = np.random.default_rng(0).normal(size=(2, 3))
    with pytest.raises(ValueError, match="needs Gaussian inputs"):
        stax.serial(stax.Dense(4), stax.Relu(), make())[2](x, None, "nngp")


def test_exp_normalized_has_no_finite_network():
    with pytest.raises(NotImplementedError, match="ExpNormalized: there is no finite network"):
        stax.ExpNormalized()[1]((), np.ones((2, 3), np.float32))


def test_do_stabilize_gives_the_same_values_where_q1_q2_overflows():
    # Variances ~1e200 (W_std = 1e100): q1 q2 = 1e400 overflows float64, which is what neural-tangents'
    # do_stabilize guards against; the kernel is homogeneous of degree 1, so it must be 1e200 times
    # the kernel at W_std = 1 (the Dense output's bias is 0), with and without the flag.
    x = np.random.default_rng(0).normal(size=(3, 4))

    def net(w_std, flag):
        return stax.serial(stax.Dense(8, W_std=w_std), stax.Relu(do_stabilize=flag), stax.Dense(1))[2]

    unit = np.asarray(net(1.0, False)(x, None, "nngp"))
    for flag in (False, True):
        np.testing.assert_allclose(np.asarray(net(1e100, flag)(x, None, "nngp")) / 1e200, unit, rtol=1e-13)
