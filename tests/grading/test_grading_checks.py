"""The check helper: numbers compared within a tolerance, one stable verdict line per block."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ntkcourse.grading import checks
from ntkcourse.grading.checks import checking

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def grade_mode(monkeypatch):
    """Grade mode with one stored reference value: q/"K" = [[2, 1], [1, 2]]."""
    session = checks._Session("grade", expected={"q": {"K": np.array([[2.0, 1.0], [1.0, 2.0]])}})
    monkeypatch.setattr(checks, "_SESSION", session)
    return session


@pytest.fixture
def student_mode(monkeypatch):
    monkeypatch.setattr(checks, "_SESSION", checks._Session("student"))


def verdict(capsys):
    return capsys.readouterr().out


def test_float32_answer_within_tolerance_passes(grade_mode, capsys):
    with checking("q") as check:
        check.close(np.float32(1 / 3), 1 / 3, label="a third")
    assert verdict(capsys) == "PASS q (1 checks)\n"


def test_list_answer_passes_against_reference_array(grade_mode, capsys):
    with checking("q") as check:
        check.close_to_reference([[2.0, 1.0], [1.0, 2.0 + 1e-9]], label="K")
    assert verdict(capsys) == "PASS q (1 checks)\n"


def test_column_vector_matches_a_vector_of_the_same_values(grade_mode, capsys):
    with checking("q") as check:
        check.close(np.array([[1.0], [2.0]]), [1.0, 2.0], label="column")
    assert verdict(capsys).startswith("PASS q")


def test_wrong_value_fails_naming_label_entry_got_and_expected(grade_mode, capsys):
    with checking("q") as check:
        check.close([1.0, 1.91], [1.0, 5.47], label="diagonal")
    out = verdict(capsys)
    assert out.startswith("FAIL q: diagonal: entry 1 is 1.91, expected 5.47")
    assert "1 of 2 entries differ" in out


def test_hidden_check_failure_does_not_show_the_expected_value(grade_mode, monkeypatch, capsys):
    with checking("q", hidden=True) as check:
        check.close([1.0, 1.91], [1.0, 5.47], label="diagonal")
    out = verdict(capsys)
    assert out.startswith("FAIL q: diagonal: 1 of 2 entries differ")
    assert "5.47" not in out


def test_reference_comparison_failure_never_shows_the_reference_value(grade_mode, capsys):
    with checking("q") as check:
        check.close_to_reference([[2.0, 1.5], [1.5, 2.0]], label="K")
    out = verdict(capsys)
    assert out.startswith("FAIL q: K: 2 of 4 entries differ from the reference solution's values "
                          "(the comparison with the reference)")
    assert "1.5" not in out.split("entries")[0] and " 1," not in out and "expected 1" not in out


def test_nan_answer_fails_with_a_hint_about_clipping(grade_mode, capsys):
    with checking("q") as check:
        check.close([0.5, np.nan], [0.5, 0.25], label="theta")
    assert "entry 1 is NaN" in verdict(capsys)


def test_non_numeric_answer_fails_naming_its_type(grade_mode, capsys):
    with checking("q") as check:
        check.close(None, 1.0, label="answer")
    assert verdict(capsys) == "FAIL q: answer: expected numbers, got NoneType\n"


def test_shape_mismatch_fails_with_both_shapes(grade_mode, capsys):
    with checking("q") as check:
        check.close_to_reference(np.ones(3), label="K")
    assert "has shape (3,), expected shape (2, 2)" in verdict(capsys)


def test_symmetric_rejects_an_asymmetric_matrix(grade_mode, capsys):
    with checking("q") as check:
        check.symmetric([[1.0, 0.5], [0.4, 1.0]], label="K")
    assert "is not symmetric" in verdict(capsys)


def test_psd_rejects_a_negative_eigenvalue(grade_mode, capsys):
    with checking("q") as check:
        check.psd([[1.0, 2.0], [2.0, 1.0]], label="K")
    assert "not positive semi-definite: smallest eigenvalue -1" in verdict(capsys)


def test_exception_in_the_block_becomes_a_fail_line_naming_the_statement(grade_mode, capsys):
    def student_function():
        raise NotImplementedError("q is not answered yet. Hint: use arccos")

    with checking("q") as check:
        check.close(student_function(), 1.0, label="value")
    assert verdict(capsys) == ("FAIL q: while running `check.close(student_function(), 1.0, label=\"value\")`: "
                               "NotImplementedError: q is not answered yet. Hint: use arccos\n")


def test_output_printed_inside_the_block_does_not_change_the_graded_verdict(grade_mode, capsys):
    with checking("q") as check:
        print("PASS q (1 checks)\ndebugging output")
        print("a warning", file=sys.stderr)
        check.true(True, label="always")
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("PASS q (1 checks)\n", "")


def test_verdict_is_one_line_even_for_a_multiline_message(grade_mode, capsys):
    with checking("q"):
        raise ValueError("line one\nline two")
    assert verdict(capsys).count("\n") == 1


def test_keyboard_interrupt_from_the_grader_timeout_is_not_swallowed(grade_mode, capsys):
    with pytest.raises(KeyboardInterrupt):
        with checking("q"):
            raise KeyboardInterrupt
    assert verdict(capsys) == ""


def test_student_mode_defers_reference_comparisons_and_says_so(student_mode, capsys):
    with checking("q") as check:
        check.close(1.0, 1.0, label="known value")
        check.close_to_reference([[9.0, 9.0], [9.0, 9.0]], label="K")
    assert verdict(capsys) == ("PASS q (1 checks passed here; 1 comparison with the reference solution "
                               "will be made when your notebook is graded)\n")


def test_student_mode_still_catches_nan_in_a_deferred_comparison(student_mode, capsys):
    with checking("q") as check:
        check.close_to_reference([1.0, np.nan], label="K")
    assert verdict(capsys) == "FAIL q: K: contains NaN or infinity\n"


def test_student_mode_shows_what_the_student_printed(student_mode, capsys):
    with checking("q") as check:
        print("my debugging output")
        check.true(True, label="always")
    assert verdict(capsys) == "my debugging output\nPASS q (1 checks)\n"


@pytest.fixture
def report_mode(monkeypatch):
    """Report mode, with the payloads the block would send to the grader collected in a list."""
    sent = []
    monkeypatch.setattr(checks, "_SESSION", checks._Session("report"))
    monkeypatch.setattr(checks, "_send", sent.append)
    return sent


def test_report_mode_sends_plain_values_and_judges_nothing(report_mode, capsys):
    with checking("q") as check:
        check.close(np.float32(0.5), 1.0, label="wrong, but not judged here", rtol=1e-3)
        check.close_to_reference([[1.0, 2.0]], label="K")
        check.true(np.int64(0), label="a property")
        check.shape(np.zeros((2, 3)), (2, 3), label="shape")
    assert verdict(capsys) == ""
    [payload] = report_mode
    assert json.loads(json.dumps(payload)) == payload  # plain JSON data: no objects, no pickles
    assert payload["checks"] == [
        {"kind": "close", "label": "wrong, but not judged here", "options": {"rtol": 1e-3, "atol": 1e-6},
         "answer": {"shape": [], "data": [0.5]}, "expected": {"shape": [], "data": [1.0]}},
        {"kind": "close_to_reference", "label": "K", "options": {"rtol": 1e-4, "atol": 1e-6},
         "answer": {"shape": [1, 2], "data": [1.0, 2.0]}},
        {"kind": "true", "label": "a property", "options": {}, "value": False},
        {"kind": "shape", "label": "shape", "options": {"shape": [2, 3]}, "shape": [2, 3]}]
    assert payload["error"] is None


def test_report_mode_sends_the_exception_that_stopped_the_block(report_mode):
    def student_function():
        raise NotImplementedError("not answered")

    with checking("q") as check:
        check.close(student_function(), 1.0, label="value")
    error = report_mode[0]["error"]
    assert report_mode[0]["checks"] == []
    # The line number lets the grader quote the statement from its own copy of the check cell.
    assert (error["type"], error["message"], type(error["line"])) == ("NotImplementedError", "not answered", int)


def test_report_mode_refuses_an_answer_beyond_the_size_bound(report_mode):
    with checking("q") as check:
        check.finite(np.zeros(checks.MAX_REPORTED_ENTRIES + 1), label="huge")
    assert report_mode[0]["checks"][0]["invalid"] == "too-large" and "answer" not in report_mode[0]["checks"][0]


def test_judge_entry_uses_the_reference_tolerance_not_the_reported_one():
    reference = {"kind": "close_to_reference", "label": "K", "options": {"rtol": 1e-4, "atol": 1e-6},
                 "answer": {"shape": [1], "data": [1.0]}}
    forged = {"kind": "close_to_reference", "label": "K", "options": {"rtol": 1e9, "atol": 1e9},
              "answer": {"shape": [1], "data": [2.0]}}
    with pytest.raises(checks.CheckFailed, match="comparison with the reference"):
        checks.judge_entry(reference, forged, hidden=False)


def test_decode_array_refuses_what_encode_array_never_sends():
    for bad in ({"shape": [2], "data": [1.0]}, {"shape": [1], "data": ["1"]}, {"shape": [1], "data": [True]},
                {"shape": [-1], "data": []}, {"shape": [1], "data": [1.0], "extra": 1}, [1.0]):
        with pytest.raises(ValueError):
            checks.decode_array(bad)
    assert checks.decode_array(checks.encode_array(np.eye(2))).tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_hidden_reference_shape_mismatch_does_not_reveal_the_shape():
    reference = {"kind": "close", "label": "K", "options": {"rtol": 1e-4, "atol": 1e-6},
                 "answer": {"shape": [1], "data": [1.0]}, "expected": {"shape": [3, 5], "data": [0.0] * 15}}
    reported = dict(reference, expected={"shape": [3, 5], "data": [0.0] * 15}, answer={"shape": [2], "data": [0, 0]})
    with pytest.raises(checks.CheckFailed) as failure:
        checks.judge_entry(reference, reported, hidden=True)
    assert "(3, 5)" not in str(failure.value) and "not the expected shape" in str(failure.value)


def _python(code, **env):
    import os

    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, check=True).stdout


def test_checks_module_itself_imports_no_jax():
    # Loaded by path, as the grader's kernel launcher does: only NumPy and the standard library.
    code = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('checks', "
            "'ntkcourse/grading/checks.py'); spec.loader.exec_module(importlib.util.module_from_spec(spec)); "
            "print('jax' in sys.modules)")
    assert _python(code).strip() == "False"


def test_checks_import_through_the_package_does_not_import_jax():
    out = _python("import sys, ntkcourse.grading.checks; print('jax' in sys.modules)")
    assert out.strip() == "False"


def test_mode_is_fixed_when_the_module_is_imported(tmp_path):
    code = ("import os; import ntkcourse.grading.checks; os.environ['NTKCOURSE_CHECKS_MODE'] = 'report'; "
            "from ntkcourse.grading.checks import checking; import ntkcourse.grading.checks as c; "
            "print(c._SESSION.mode)")
    assert _python(code, NTKCOURSE_CHECKS_MODE="student").strip() == "student"


def test_a_hidden_shape_check_does_not_reveal_the_expected_shape():
    reference = {"kind": "shape", "label": "K", "options": {"shape": [5, 3]}}
    with pytest.raises(checks.CheckFailed) as failure:
        checks.judge_entry(reference, dict(reference, shape=[3]), hidden=True)
    assert str(failure.value) == "K: has shape (3,), which is not the expected shape"
