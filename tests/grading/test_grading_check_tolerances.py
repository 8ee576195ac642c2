"""The grading checks' tolerances, at their boundaries: what passes just inside, what fails just outside.

Each documented tolerance (``close``: rtol 1e-4 and atol 1e-6 by default;
``symmetric``: rtol 1e-7, atol 1e-10 of the largest entry; ``psd``: smallest
eigenvalue >= -1e-8 max(1, |largest|)) is probed at half of it (passes) and
twice it (fails), with the documented numbers written here rather than read
from the module, so that a loosened default fails a test. Answers in float32,
as JAX arrays and as lists are read the same way; an answer of the right size
but another shape is refused, never reshaped.
"""
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse.grading import checks
from ntkcourse.grading.checks import checking

# The defaults that check cells rely on (ntkcourse/grading/checks.py's docstrings).
RTOL, ATOL = 1e-4, 1e-6
SYMMETRY_RTOL, PSD_TOL = 1e-7, 1e-8


@pytest.fixture(autouse=True)
def grade_mode(monkeypatch):
    """Grade mode, with the reference value q/"K" = 100 * [[1, 2, 3], [4, 5, 6]] for close_to_reference."""
    session = checks._Session("grade", expected={"q": {"K": 100 * np.arange(1.0, 7.0).reshape(2, 3)}})
    monkeypatch.setattr(checks, "_SESSION", session)
    return session


def run(check_call):
    """The verdict line of one block holding one check."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        with checking("q") as check:
            check_call(check)
    return out.getvalue()


# Answers as a student may hand them in: float64, float32, a JAX array, a list.
FORMS = {
    "float64": lambda a: np.asarray(a, dtype=np.float64),
    "float32": lambda a: np.asarray(a, dtype=np.float32),
    "jax": lambda a: jnp.asarray(a, dtype=jnp.float32),
    "list": lambda a: np.asarray(a, dtype=np.float64).tolist(),
}
# 100 * (1 + factor * RTOL): the atol (1e-6) is 1e-8 of these values, so the relative
# tolerance alone decides. float32 resolves 100 to 7.6e-6, i.e. 0.08 RTOL: the
# float32 rounding moves half and twice the tolerance by at most 0.04 of it.
EXPECTED = np.array([100.0, -200.0, 300.0])


@pytest.mark.parametrize("form", FORMS)
def test_close_passes_at_half_the_default_relative_tolerance(form):
    answer = EXPECTED * (1 + 0.5 * RTOL)
    assert run(lambda c: c.close(FORMS[form](answer), EXPECTED, label="v")).startswith("PASS q")


@pytest.mark.parametrize("form", FORMS)
def test_close_fails_at_twice_the_default_relative_tolerance(form):
    answer = EXPECTED * (1 + 2 * RTOL)
    assert run(lambda c: c.close(FORMS[form](answer), EXPECTED, label="v")).startswith("FAIL q: v:")


def test_close_to_reference_has_the_same_default_relative_tolerance():
    reference = 100 * np.arange(1.0, 7.0).reshape(2, 3)
    inside = run(lambda c: c.close_to_reference(reference * (1 + 0.5 * RTOL), label="K"))
    outside = run(lambda c: c.close_to_reference(reference * (1 - 2 * RTOL), label="K"))
    assert inside.startswith("PASS q") and outside.startswith("FAIL q: K:"), (inside, outside)


def test_close_absolute_tolerance_decides_near_zero():
    """Expected 0: rtol contributes nothing, so 0.5 atol passes and 2 atol fails."""
    assert run(lambda c: c.close([0.5 * ATOL], [0.0], label="zero")).startswith("PASS q")
    assert run(lambda c: c.close([-2 * ATOL], [0.0], label="zero")).startswith("FAIL q: zero:")


def test_close_honours_a_larger_rtol_passed_by_the_check():
    """A check cell's own rtol replaces the default (ill-conditioned quantities): 1e-2 at 0.5 and 2 of it."""
    assert run(lambda c: c.close(EXPECTED * 1.005, EXPECTED, label="v", rtol=1e-2)).startswith("PASS q")
    assert run(lambda c: c.close(EXPECTED * 1.02, EXPECTED, label="v", rtol=1e-2)).startswith("FAIL q")


def test_an_answer_of_the_right_size_but_another_shape_is_not_reshaped():
    """(3, 2) for an expected (2, 3): its entries in reading order are the expected ones, yet it fails."""
    expected = np.arange(6.0).reshape(2, 3)
    out = run(lambda c: c.close(expected.reshape(3, 2), expected, label="M"))
    assert out.startswith("FAIL q: M: has shape (3, 2), expected shape (2, 3)"), out


def test_a_transposed_answer_fails_against_the_reference():
    reference = 100 * np.arange(1.0, 7.0).reshape(2, 3)
    out = run(lambda c: c.close_to_reference(reference.T, label="K"))
    assert out.startswith("FAIL q: K: has shape (3, 2)"), out


def test_a_transposed_square_answer_fails_on_its_values():
    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert run(lambda c: c.close(expected.T, expected, label="M")).startswith("FAIL q: M: entry (0, 1) is 3")


def _almost_symmetric(relative):
    """Largest entry 1, one off-diagonal pair apart by ``relative``."""
    return np.array([[1.0, 0.5 + relative], [0.5, 0.8]])


def test_symmetric_accepts_asymmetry_at_half_its_tolerance():
    assert run(lambda c: c.symmetric(_almost_symmetric(0.5 * SYMMETRY_RTOL), label="K")).startswith("PASS q")


def test_symmetric_rejects_asymmetry_at_twice_its_tolerance():
    out = run(lambda c: c.symmetric(_almost_symmetric(2 * SYMMETRY_RTOL), label="K"))
    assert out.startswith("FAIL q: K: is not symmetric"), out


def test_symmetric_tolerance_scales_with_the_largest_entry():
    """The same matrix times 1000: the asymmetry and the tolerance scale alike."""
    assert run(lambda c: c.symmetric(1000 * _almost_symmetric(0.5 * SYMMETRY_RTOL), label="K")).startswith("PASS")
    assert run(lambda c: c.symmetric(1000 * _almost_symmetric(2 * SYMMETRY_RTOL), label="K")).startswith("FAIL")


def _with_smallest_eigenvalue(largest, smallest):
    """A symmetric 2x2 matrix with eigenvalues ``largest`` and ``smallest`` (rotated off the axes)."""
    c, s = np.cos(0.3), np.sin(0.3)
    rotation = np.array([[c, -s], [s, c]])
    return rotation @ np.diag([largest, smallest]) @ rotation.T


@pytest.mark.parametrize("largest", [1.0, 0.5, 100.0])
def test_psd_accepts_a_negative_eigenvalue_at_half_its_tolerance(largest):
    """Tolerance 1e-8 times max(1, largest): 0.5 is scaled like 1, 100 widens it 100 times.
    Round-off of eigvalsh on a 2x2 is ~1e-16 of the largest, far below these margins."""
    matrix = _with_smallest_eigenvalue(largest, -0.5 * PSD_TOL * max(1.0, largest))
    assert run(lambda c: c.psd(matrix, label="K")).startswith("PASS q")


@pytest.mark.parametrize("largest", [1.0, 0.5, 100.0])
def test_psd_rejects_a_negative_eigenvalue_at_twice_its_tolerance(largest):
    matrix = _with_smallest_eigenvalue(largest, -2 * PSD_TOL * max(1.0, largest))
    out = run(lambda c: c.psd(matrix, label="K"))
    assert out.startswith("FAIL q: K: is not positive semi-definite"), out


def test_psd_judges_the_symmetric_part():
    """An antisymmetric part has no effect on xᵀ K x: [[1, 3], [-3, 1]] is PSD as a quadratic form."""
    assert run(lambda c: c.psd(np.array([[1.0, 3.0], [-3.0, 1.0]]), label="K")).startswith("PASS q")


def test_the_grader_judges_a_reported_check_at_the_same_boundaries():
    """judge_entry (the grader's process) applies the reference's tolerances: 0.5 rtol passes, 2 rtol fails."""
    reference = {"kind": "close", "label": "v", "options": {"rtol": RTOL, "atol": ATOL}}

    def reported(factor):
        return {"kind": "close", "label": "v", "options": {"rtol": 1.0, "atol": 1.0},
                "answer": checks.encode_array(EXPECTED * (1 + factor * RTOL)),
                "expected": checks.encode_array(EXPECTED)}

    checks.judge_entry(reference, reported(0.5), hidden=False)
    with pytest.raises(checks.CheckFailed):
        checks.judge_entry(reference, reported(2.0), hidden=False)


# A check written with a negative or infinite tolerance would pass wrong answers (an infinite one
# passes everything): the block reports the authoring error, naming the method and the argument.
@pytest.mark.parametrize("call, method, name", [
    (lambda c: c.close(EXPECTED, EXPECTED, label="v", rtol=-1e-4), "close", "rtol"),
    (lambda c: c.close(EXPECTED, EXPECTED, label="v", atol=float("inf")), "close", "atol"),
    (lambda c: c.close_to_reference(100 * np.arange(1.0, 7.0).reshape(2, 3), label="K", rtol=float("nan")),
     "close_to_reference", "rtol"),
    (lambda c: c.symmetric(np.eye(2), label="S", atol=-1.0), "symmetric", "atol"),
    (lambda c: c.psd(np.eye(2), label="P", tol=-0.1), "psd", "tol"),
])
def test_a_negative_or_infinite_tolerance_is_refused_naming_the_argument(call, method, name):
    verdict = run(call)
    assert not verdict.startswith("PASS"), verdict
    assert f"checking.{method}: `{name}` must be a finite number >= 0" in verdict, verdict


def test_a_forged_list_as_invalid_reason_is_worded_generically():
    reference = {"kind": "finite", "label": "K", "options": {}}
    with pytest.raises(checks.CheckFailed, match="could not be read as numbers"):
        checks.judge_entry(reference, dict(reference, invalid=["psd"]), hidden=False)
