"""What a failing check tells the student: the label, the value, the expected shape or bound, never less.

A check's message is read by a student deciding what to fix, so the parts
that carry information (the label, the entry, the values, the shapes, the
tolerances) are checked here, one claim per test; the wording around them is not.
"""
import re

import numpy as np
import pytest

from ntkcourse.grading import checks


def failure(call, *args, **kwargs):
    """The message of the CheckFailed that ``call(*args, **kwargs)`` raises."""
    with pytest.raises(checks.CheckFailed) as raised:
        call(*args, **kwargs)
    return str(raised.value)


def test_judge_shape_names_the_label_and_both_shapes():
    assert failure(checks.judge_shape, [3, 2], (2, 3), "K") == "K: has shape (3, 2), expected (2, 3)"


def run_block(session, body, question="q", hidden=False):
    """The verdict line printed by one ``checking`` block run in ``session``, with ``body(check)`` inside."""
    import contextlib
    import io

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checks, "_SESSION", session)
        with contextlib.redirect_stdout(out):
            with checks.checking(question, hidden=hidden) as check:
                body(check)
    return out.getvalue()


def grade(expected=None):
    return checks._Session("grade", expected=expected)


def reported(body, hidden=False):
    """The payload a report-mode block sends, with ``body(check)`` inside."""
    sent = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checks, "_send", sent.append)
        assert run_block(checks._Session("report"), body, hidden=hidden) == ""
    [payload] = sent
    return payload


# --- where expected values come from -------------------------------------------------------------

def test_an_unknown_session_mode_is_refused_naming_it():
    with pytest.raises(ValueError, match="`mode` must be one of .*got 'bogus'"):
        checks._Session("bogus")


def test_a_session_without_references_finds_none():
    assert checks._Session("grade").reference("q", "K") is None


def test_a_reference_of_another_question_is_not_found():
    assert grade({"q": {"K": 1.0}}).reference("other", "K") is None


def test_the_environment_selects_report_mode():
    assert checks._Session.from_environ({checks.MODE_ENV: "report"}).mode == "report"


@pytest.mark.parametrize("environ", [{}, {checks.MODE_ENV: ""}])
def test_student_mode_is_the_default(environ):
    assert checks._Session.from_environ(environ).mode == "student"


def test_grade_mode_cannot_be_chosen_from_the_environment():
    with pytest.raises(ValueError, match="`NTKCOURSE_CHECKS_MODE` must be one of .*got 'grade'"):
        checks._Session.from_environ({checks.MODE_ENV: "grade"})


# --- formatting helpers --------------------------------------------------------------------------

def test_one_line_joins_the_lines_of_a_message():
    assert checks._one_line("line one\n  line two\t!") == "line one line two !"


def test_one_line_cuts_a_long_message_at_600_characters():
    cut = checks._one_line("x" * 1000)
    assert len(cut) == 600 and cut == "x" * 597 + "..."


def test_one_line_keeps_a_message_of_exactly_600_characters():
    assert checks._one_line("y" * 600) == "y" * 600


def test_numbers_are_shown_with_six_significant_digits():
    assert (checks._fmt(1 / 3), checks._fmt(123456789.0)) == ("0.333333", "1.23457e+08")


@pytest.mark.parametrize("idx, text", [((), "value"), ((4,), "entry 4"), ((np.int64(0), np.int64(2)), "entry (0, 2)")])
def test_an_entry_is_named_by_its_index(idx, text):
    assert checks._index(idx) == text


# --- reading an answer as numbers ----------------------------------------------------------------

@pytest.mark.parametrize("value, kind", [(None, "NoneType"), ("0.5", "str"), (b"0.5", "bytes"), ({"a": 1}, "dict")])
def test_a_value_that_is_not_numbers_is_named_by_its_type(value, kind):
    assert failure(checks.as_numbers, value, "v") == f"v: expected numbers, got {kind}"


def test_a_ragged_list_is_refused_with_numpys_reason():
    message = failure(checks.as_numbers, [[1.0, 2.0], [3.0]], "v")
    assert message.startswith("v: could not be read as an array of numbers, ValueError: ")


def test_an_object_array_of_numbers_is_read_as_floats():
    got = checks.as_numbers(np.array([1, 2.5], dtype=object), "v")
    assert got.dtype == np.float64 and got.tolist() == [1.0, 2.5]


def test_an_object_array_holding_non_numbers_is_refused():
    assert failure(checks.as_numbers, [1.0, {}], "v") == "v: expected numbers, got list holding non-numbers"


def test_a_complex_answer_with_an_imaginary_part_is_refused():
    assert failure(checks.as_numbers, [1 + 0j, 1 + 1e-3j], "v") == \
        "v: has a nonzero imaginary part; expected real numbers"


def test_a_complex_answer_with_zero_imaginary_part_is_read_as_its_real_part():
    got = checks.as_numbers(np.array([1.5 + 0j, -2 + 0j]), "v")
    assert got.dtype == np.float64 and got.tolist() == [1.5, -2.0]


@pytest.mark.parametrize("value, dtype", [([True, False], "bool"), (["a", "b"], "<U1")])
def test_an_array_of_booleans_or_text_is_refused_naming_its_dtype(value, dtype):
    assert failure(checks.as_numbers, value, "v") == f"v: expected numbers, got an array of dtype {dtype}"


def test_an_integer_answer_is_read_as_float64():
    got = checks.as_numbers(np.array([1, 2], dtype=np.int32), "v")
    assert got.dtype == np.float64 and got.tolist() == [1.0, 2.0]


def test_an_unknown_invalid_reason_is_worded_generically():
    assert checks._invalid_message("whatever") == "could not be read as numbers"


# --- the data a grading kernel reports -----------------------------------------------------------

def test_encode_array_keeps_shape_and_nonfinite_values():
    encoded = checks.encode_array(np.array([[1.0, np.nan, np.inf]]))
    assert encoded["shape"] == [1, 3] and encoded["data"][0] == 1.0 and np.isnan(encoded["data"][1]) \
        and encoded["data"][2] == np.inf


def test_encode_array_accepts_exactly_the_largest_reported_size():
    assert len(checks.encode_array(np.zeros(checks.MAX_REPORTED_ENTRIES))["data"]) == 100_000


def test_encode_array_accepts_eight_dimensions_and_refuses_nine():
    assert checks.encode_array(np.zeros((1,) * 8))["shape"] == [1] * 8
    with pytest.raises(checks._Invalid):
        checks.encode_array(np.zeros((1,) * 9))


def test_decode_array_accepts_eight_dimensions_and_the_largest_size():
    assert checks.decode_array({"shape": [1] * 8, "data": [2]}).shape == (1,) * 8
    assert checks.decode_array({"shape": [100_000], "data": [0.0] * 100_000}).size == 100_000


@pytest.mark.parametrize("shape", [[1] * 9, [100_001], [1.0], [True]])
def test_decode_array_refuses_a_shape_it_never_sends(shape):
    with pytest.raises(ValueError, match="decode_array: bad shape"):
        checks.decode_array({"shape": shape, "data": [0.0]})


def test_decode_array_refuses_data_that_is_not_a_list():
    with pytest.raises(ValueError, match="decode_array: data is not a list"):
        checks.decode_array({"shape": [2], "data": (1.0, 2.0)})


def test_decode_array_reads_an_empty_array():
    assert checks.decode_array({"shape": [0, 3], "data": []}).shape == (0, 3)


def test_decode_array_refuses_a_mapping_without_its_two_keys():
    with pytest.raises(ValueError, match=r"decode_array: expected \{'shape'"):
        checks.decode_array({"shape": [1]})


# --- comparing numbers -----------------------------------------------------------------------------

def compare(got, expected, reveal=True, **options):
    return checks.compare(np.asarray(got, dtype=float), np.asarray(expected, dtype=float), "v",
                          options.pop("rtol", 1e-4), options.pop("atol", 1e-6), reveal, **options)


def test_a_failing_comparison_shows_the_difference_and_the_tolerance():
    assert failure(compare, 2.0, 1.0) == \
        "v: value is 2, expected 1 (|difference| 1 > tolerance 0.000101); the value differs"


def test_a_failing_comparison_names_the_worst_entry_and_counts_the_bad_ones():
    message = failure(compare, [1.1, 2.0, 3.5, 4.0], [1.0, 2.0, 3.0, 4.0])
    assert message.startswith("v: entry 2 is 3.5, expected 3 ") and message.endswith("; 2 of 4 entries differ")


def test_a_hidden_comparison_names_its_tolerances_and_what_it_compared_with():
    message = failure(compare, [1.0, 2.0], [1.0, 3.0], reveal=False, rtol=1e-3, atol=1e-5, what="the targets")
    assert message == "v: 1 of 2 entries differ from the targets beyond the tolerance (rtol=0.001, atol=1e-05)"


def test_nan_where_a_number_is_expected_names_the_entry_and_the_cure():
    message = failure(compare, [[0.5, 0.5], [np.nan, 0.5]], [[0.5, 0.5], [0.5, 0.5]])
    assert message.startswith("v: entry (1, 0) is NaN") and "clip it" in message


def test_nan_where_nan_is_expected_passes():
    compare([np.nan, 1.0], [np.nan, 1.0])


def test_matching_infinities_pass():
    compare([np.inf, -np.inf], [np.inf, -np.inf])


def test_infinity_of_the_wrong_sign_fails():
    assert failure(compare, [np.inf], [-np.inf]).startswith("v: entry 0 is inf, expected -inf")


def test_an_infinite_answer_for_a_finite_value_fails_as_the_worst_entry():
    message = failure(compare, [1.5, np.inf], [1.0, 1.0])
    assert message.startswith("v: entry 1 is inf") and message.endswith("2 of 2 entries differ")


def test_a_row_matches_a_vector_of_the_same_values():
    compare([[1.0, 2.0]], [1.0, 2.0])


def test_a_hidden_shape_mismatch_does_not_name_the_expected_shape():
    assert failure(compare, [1.0, 2.0, 3.0], [[1.0, 2.0]], reveal=False) == \
        "v: has shape (3,), which is not the expected shape"


def test_a_hidden_comparison_may_still_name_the_expected_shape():
    assert failure(compare, [1.0, 2.0, 3.0], [[1.0, 2.0]], reveal=False, reveal_shape=True) == \
        "v: has shape (3,), expected shape (1, 2)"


# --- the other judgements --------------------------------------------------------------------------

def test_a_hidden_shape_judgement_does_not_name_the_expected_shape():
    assert failure(checks.judge_shape, [3], [2], "K", reveal=False) == \
        "K: has shape (3,), which is not the expected shape"


def test_judge_shape_accepts_a_list_for_a_tuple():
    checks.judge_shape([2, 3], (2, 3), "K")


@pytest.mark.parametrize("value, text", [(np.nan, "nan"), (-np.inf, "-inf")])
def test_judge_finite_names_the_first_nonfinite_entry_and_its_value(value, text):
    assert failure(checks.judge_finite, np.array([1.0, 2.0, value]), "v") == \
        f"v: entry 2 is {text}; expected finite numbers"


@pytest.mark.parametrize("judge", [lambda m: checks.judge_symmetric(m, "K", 1e-7, 1e-10),
                                   lambda m: checks.judge_psd(m, "K", 1e-8)], ids=["symmetric", "psd"])
@pytest.mark.parametrize("shape", [(2, 3), (4,)])
def test_symmetry_and_psd_judgements_refuse_a_non_square_answer_naming_its_shape(judge, shape):
    assert failure(judge, np.zeros(shape)) == f"K: expected a square matrix, got shape {shape}"


def test_judge_symmetric_reports_the_largest_asymmetry():
    message = failure(checks.judge_symmetric, np.array([[1.0, 0.25], [0.0, 1.0]]), "K", 1e-7, 1e-10)
    assert message == "K: is not symmetric: max |K - K^T| = 0.25"


def test_judge_symmetric_accepts_an_empty_matrix():
    checks.judge_symmetric(np.zeros((0, 0)), "K", 1e-7, 1e-10)


def test_judge_symmetric_refuses_nan_off_the_diagonal():
    assert "is not symmetric" in failure(checks.judge_symmetric, np.array([[1.0, np.nan], [0.0, 1.0]]),
                                         "K", 1e-7, 1e-10)


def test_the_symmetry_default_absolute_tolerance_decides_for_tiny_matrices():
    """Entries of 1e-9: rtol adds 1e-16, so atol 1e-10 decides: 0.5 atol passes, 2 atol fails."""
    def run(asymmetry):
        return run_block(grade(), lambda c: c.symmetric([[1e-9, 1e-9 + asymmetry], [1e-9, 1e-9]], label="K"))
    assert run(0.5e-10).startswith("PASS q") and run(2e-10).startswith("FAIL q: K: is not symmetric")


def test_judge_psd_refuses_infinity_without_computing_eigenvalues():
    assert failure(checks.judge_psd, np.array([[1.0, np.inf], [np.inf, 1.0]]), "K", 1e-8) == \
        "K: contains NaN or infinity"


def test_judge_psd_accepts_an_empty_matrix():
    checks.judge_psd(np.zeros((0, 0)), "K", 1e-8)


def test_judge_psd_names_the_smallest_eigenvalue():
    message = failure(checks.judge_psd, np.diag([3.0, -0.5, 1.0]), "K", 1e-8)
    assert message.startswith("K: is not positive semi-definite: smallest eigenvalue -0.5 ")


def test_judge_psd_scales_its_tolerance_by_the_largest_eigenvalue_in_absolute_value():
    """Eigenvalues -200 and 1e-3 ... with tol 1: the scale is |-200|, so -200 >= -1 * 200 passes."""
    checks.judge_psd(np.diag([-200.0, 1e-3]), "K", 1.0)


def test_judge_true_fails_naming_the_property():
    assert failure(checks.judge_true, False, "K is symmetric") == "K is symmetric: does not hold"


def test_judge_true_refuses_a_truthy_value_that_is_not_true():
    assert failure(checks.judge_true, 1, "p") == "p: does not hold"


def test_a_finite_answer_for_an_infinite_value_fails():
    """The tolerance atol + rtol |inf| is infinite; a finite answer must still not match +inf."""
    assert failure(compare, [1.0], [np.inf]).startswith("v: entry 0 is 1, expected inf")


# --- judging a reported check in the grader's process ---------------------------------------------

def entry(kind, options=None, **values):
    return {"kind": kind, "label": "K", "options": {} if options is None else options, **values}


def array(values):
    return checks.encode_array(np.asarray(values, dtype=float))


def test_judge_entry_refuses_a_report_of_another_kind():
    with pytest.raises(ValueError, match="not the reference's"):
        checks.judge_entry(entry("finite"), entry("psd", answer=array([[1.0]])), hidden=False)


def test_judge_entry_refuses_a_report_with_another_label():
    with pytest.raises(ValueError, match="not the reference's"):
        checks.judge_entry(entry("finite"), dict(entry("finite", answer=array([1.0])), label="L"), hidden=False)


@pytest.mark.parametrize("reason", list(checks.INVALID_REASONS))
def test_judge_entry_words_an_invalid_answer_from_its_reason_code(reason):
    assert failure(checks.judge_entry, entry("finite"), entry("finite", invalid=reason), hidden=False) == \
        f"K: {checks.INVALID_REASONS[reason]}"


def test_judge_entry_does_not_repeat_an_unknown_reason_code():
    assert failure(checks.judge_entry, entry("finite"), entry("finite", invalid="<b>forged</b>"), hidden=False) == \
        "K: could not be read as numbers"


def test_judge_entry_refuses_a_true_check_whose_value_is_not_a_boolean():
    with pytest.raises(ValueError, match="not a boolean"):
        checks.judge_entry(entry("true"), entry("true", value=1), hidden=False)


def test_judge_entry_fails_a_false_property():
    assert failure(checks.judge_entry, entry("true"), entry("true", value=False), hidden=False) == "K: does not hold"


def test_judge_entry_passes_a_true_property():
    checks.judge_entry(entry("true"), entry("true", value=True), hidden=False)


@pytest.mark.parametrize("shape", [None, [2.0], [1] * 33])
def test_judge_entry_refuses_a_reported_shape_that_is_not_a_short_list_of_ints(shape):
    with pytest.raises(ValueError, match="'shape' is not a list of ints"):
        checks.judge_entry(entry("shape", {"shape": [2]}), entry("shape", {"shape": [2]}, shape=shape), hidden=False)


def test_judge_entry_judges_a_shape_against_the_references_shape():
    reference = entry("shape", {"shape": [2, 3]})
    checks.judge_entry(reference, entry("shape", {"shape": [3, 2]}, shape=[2, 3]), hidden=False)
    assert failure(checks.judge_entry, reference, entry("shape", {"shape": [3, 2]}, shape=[3, 2]), hidden=False) == \
        "K: has shape (3, 2), expected (2, 3)"


def test_judge_entry_shows_the_expected_value_of_a_visible_close_check():
    reference = entry("close", {"rtol": 1e-4, "atol": 1e-6})
    message = failure(checks.judge_entry, reference, entry("close", answer=array(2.0), expected=array(1.5)),
                      hidden=False)
    assert message.startswith("K: value is 2, expected 1.5")


def test_judge_entry_hides_the_expected_value_of_a_hidden_close_check():
    reference = entry("close", {"rtol": 1e-4, "atol": 1e-6})
    message = failure(checks.judge_entry, reference, entry("close", answer=array(2.0), expected=array(1.5)),
                      hidden=True)
    assert message.startswith("K: the value differs from the expected values") and "1.5" not in message


def test_judge_entry_names_the_reference_shape_of_a_visible_reference_comparison():
    reference = entry("close_to_reference", {"rtol": 1e-4, "atol": 1e-6}, answer=array([[1.0, 2.0]]))
    assert failure(checks.judge_entry, reference, entry("close_to_reference", answer=array([1.0, 2.0, 3.0])),
                   hidden=False) == "K: has shape (3,), expected shape (1, 2)"


def test_judge_entry_applies_the_references_rtol_to_a_reference_comparison():
    """The reference's rtol of 1e-2: 0.5 % off passes, 2 % fails."""
    reference = entry("close_to_reference", {"rtol": 1e-2, "atol": 0.0}, answer=array([100.0]))
    checks.judge_entry(reference, entry("close_to_reference", answer=array([100.5])), hidden=False)
    with pytest.raises(checks.CheckFailed):
        checks.judge_entry(reference, entry("close_to_reference", answer=array([102.0])), hidden=False)


def test_judge_entry_applies_the_references_atol_to_a_reference_comparison():
    reference = entry("close_to_reference", {"rtol": 0.0, "atol": 1e-2}, answer=array([0.0]))
    checks.judge_entry(reference, entry("close_to_reference", answer=array([0.005])), hidden=False)
    with pytest.raises(checks.CheckFailed):
        checks.judge_entry(reference, entry("close_to_reference", answer=array([0.02])), hidden=False)


def test_judge_entry_judges_a_reported_finite_check():
    assert failure(checks.judge_entry, entry("finite"), entry("finite", answer=array([1.0, np.nan])),
                   hidden=False) == "K: entry 1 is nan; expected finite numbers"


def test_judge_entry_applies_the_references_symmetry_tolerances():
    reference = entry("symmetric", {"rtol": 1e-2, "atol": 0.0})
    checks.judge_entry(reference, entry("symmetric", answer=array([[1.0, 0.505], [0.5, 1.0]])), hidden=False)
    with pytest.raises(checks.CheckFailed, match="is not symmetric"):
        checks.judge_entry(reference, entry("symmetric", answer=array([[1.0, 0.52], [0.5, 1.0]])), hidden=False)


def test_judge_entry_applies_the_symmetry_atol_of_the_reference():
    reference = entry("symmetric", {"rtol": 0.0, "atol": 1e-2})
    checks.judge_entry(reference, entry("symmetric", answer=array([[1.0, 0.505], [0.5, 1.0]])), hidden=False)


def test_judge_entry_applies_the_references_psd_tolerance():
    reference = entry("psd", {"tol": 1e-2})
    checks.judge_entry(reference, entry("psd", answer=array(np.diag([1.0, -0.005]))), hidden=False)
    with pytest.raises(checks.CheckFailed, match="not positive semi-definite"):
        checks.judge_entry(reference, entry("psd", answer=array(np.diag([1.0, -0.02]))), hidden=False)


def test_judge_entry_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="unknown kind 'mystery'"):
        checks.judge_entry(entry("mystery"), entry("mystery", answer=array(1.0)), hidden=False)


# --- the checks in a block -------------------------------------------------------------------------

def test_every_passed_check_is_counted_in_the_verdict():
    def body(check):
        check.close(1.0, 1.0, label="a")
        check.finite([1.0], label="b")
        check.symmetric(np.eye(2), label="c")
        check.psd(np.eye(2), label="d")
        check.shape(np.zeros(2), (2,), label="e")
        check.true(True, label="f")
    assert run_block(grade(), body) == "PASS q (6 checks)\n"


def test_a_closeness_check_passes_its_rtol_and_atol_on():
    """The check's own rtol (1e-2) passes 0.5 % off; its own atol (0.5) passes 0.4 off near 0."""
    assert run_block(grade(), lambda c: c.close(100.5, 100.0, label="v", rtol=1e-2)).startswith("PASS")
    assert run_block(grade(), lambda c: c.close(0.4, 0.0, label="v", atol=0.5)).startswith("PASS")


def test_a_reference_comparison_passes_its_atol_on():
    session = grade({"q": {"K": np.array([0.0])}})
    assert run_block(session, lambda c: c.close_to_reference([0.4], label="K", atol=0.5)).startswith("PASS q")


def test_a_reference_comparison_passes_its_rtol_on():
    session = grade({"q": {"K": np.array([100.0])}})
    assert run_block(session, lambda c: c.close_to_reference([101.0], label="K", rtol=2e-2)).startswith("PASS q")


def test_a_reference_comparison_without_a_stored_value_tells_the_student_to_ask():
    out = run_block(grade(), lambda c: c.close_to_reference([1.0], label="K"))
    assert out == "FAIL q: K: the grader has no reference value for this check; tell your instructor\n"


def test_a_hidden_reference_comparison_does_not_name_the_reference_shape():
    session = grade({"q": {"K": np.zeros((2, 2))}})
    out = run_block(session, lambda c: c.close_to_reference(np.zeros(3), label="K"), hidden=True)
    assert out == "FAIL q: K: has shape (3,), which is not the expected shape\n"


def test_a_hidden_close_check_does_not_show_the_expected_value():
    out = run_block(grade(), lambda c: c.close(2.0, 1.5, label="v"), hidden=True)
    assert out.startswith("FAIL q: v: the value differs") and "1.5" not in out


def test_student_mode_counts_several_deferred_comparisons_in_the_plural():
    def body(check):
        check.close_to_reference([1.0], label="a")
        check.close_to_reference([2.0], label="b")
    assert run_block(checks._Session("student"), body) == \
        "PASS q (0 checks passed here; 2 comparisons with the reference solution will be made when your " \
        "notebook is graded)\n"


def test_student_mode_refuses_infinity_in_a_deferred_comparison():
    out = run_block(checks._Session("student"), lambda c: c.close_to_reference([np.inf], label="K"))
    assert out == "FAIL q: K: contains NaN or infinity\n"


def test_a_shape_check_of_a_ragged_answer_says_it_is_not_an_array():
    out = run_block(grade(), lambda c: c.shape([[1.0], [1.0, 2.0]], (2, 2), label="K"))
    assert out.startswith("FAIL q: K: could not be read as an array (ValueError")


def test_a_hidden_shape_check_does_not_name_the_expected_shape():
    out = run_block(grade(), lambda c: c.shape(np.zeros(3), (2, 2), label="K"), hidden=True)
    assert out == "FAIL q: K: has shape (3,), which is not the expected shape\n"


def test_a_finite_check_fails_on_nan():
    assert run_block(grade(), lambda c: c.finite([np.nan], label="v")) == \
        "FAIL q: v: entry 0 is nan; expected finite numbers\n"


def test_a_finite_check_of_text_names_its_type():
    assert run_block(grade(), lambda c: c.finite("1.0", label="v")) == "FAIL q: v: expected numbers, got str\n"


def test_a_symmetric_check_passes_its_tolerances_on():
    matrix = [[1.0, 0.505], [0.5, 1.0]]
    assert run_block(grade(), lambda c: c.symmetric(matrix, label="K", rtol=1e-2)).startswith("PASS q")
    assert run_block(grade(), lambda c: c.symmetric(matrix, label="K", rtol=0.0, atol=1e-2)).startswith("PASS q")


def test_a_psd_check_passes_its_tolerance_on():
    assert run_block(grade(), lambda c: c.psd(np.diag([1.0, -0.005]), label="K", tol=1e-2)).startswith("PASS q")


def test_a_false_property_fails_naming_it():
    assert run_block(grade(), lambda c: c.true(0, label="K is symmetric")) == "FAIL q: K is symmetric: does not hold\n"


def test_a_truthy_property_passes():
    assert run_block(grade(), lambda c: c.true(np.int64(3), label="p")) == "PASS q (1 checks)\n"


# --- what report mode sends --------------------------------------------------------------------------

def test_report_mode_sends_the_default_tolerances_of_each_check():
    def body(check):
        check.close(1.0, 1.0, label="a")
        check.symmetric(np.eye(2), label="b")
        check.psd(np.eye(2), label="c")
        check.finite([1.0], label="d")
    options = [c["options"] for c in reported(body)["checks"]]
    assert options == [{"rtol": 1e-4, "atol": 1e-6}, {"rtol": 1e-7, "atol": 1e-10}, {"tol": 1e-8}, {}]


def test_report_mode_sends_the_tolerances_a_check_passes():
    def body(check):
        check.close_to_reference([1.0], label="a", rtol=1e-2, atol=1e-3)
        check.symmetric(np.eye(2), label="b", rtol=1e-3, atol=1e-4)
        check.psd(np.eye(2), label="c", tol=1e-5)
    options = [c["options"] for c in reported(body)["checks"]]
    assert options == [{"rtol": 1e-2, "atol": 1e-3}, {"rtol": 1e-3, "atol": 1e-4}, {"tol": 1e-5}]


def test_report_mode_sends_the_answers_of_finite_symmetric_and_psd_checks():
    def body(check):
        check.finite([1.0, 2.0], label="a")
        check.symmetric([[1.0, 0.0], [0.0, 1.0]], label="b")
        check.psd([[2.0]], label="c")
    answers = [c["answer"] for c in reported(body)["checks"]]
    assert answers == [{"shape": [2], "data": [1.0, 2.0]}, {"shape": [2, 2], "data": [1.0, 0.0, 0.0, 1.0]},
                       {"shape": [1, 1], "data": [2.0]}]


def test_report_mode_cuts_a_label_at_300_characters():
    assert reported(lambda c: c.finite([1.0], label="x" * 400))["checks"][0]["label"] == "x" * 300


def test_report_mode_reports_an_answer_that_is_not_numbers_as_invalid_without_the_answer():
    [check] = reported(lambda c: c.close("text", 1.0, label="v", rtol=1e-3))["checks"]
    assert check == {"kind": "close", "label": "v", "options": {"rtol": 1e-3, "atol": 1e-6}, "invalid": "not-numbers"}


def test_report_mode_reports_a_ragged_shape_answer_as_invalid():
    [check] = reported(lambda c: c.shape([[1.0], [1.0, 2.0]], (2, 2), label="K"))["checks"]
    assert check == {"kind": "shape", "label": "K", "options": {"shape": [2, 2]}, "invalid": "ragged"}


def test_report_mode_reports_the_exception_on_one_line_with_its_type():
    def body(check):
        raise ValueError("first line\nsecond line")
    error = reported(body)["error"]
    assert (error["type"], error["message"]) == ("ValueError", "first line second line")


def test_report_mode_cuts_the_exception_message_at_300_characters():
    def body(check):
        raise ValueError("m" * 500)
    assert reported(body)["error"]["message"] == "m" * 300


def test_report_mode_sends_the_question_and_the_payload_version():
    payload = reported(lambda c: c.true(True, label="p"))
    assert (payload["question"], payload["version"]) == ("q", checks.PAYLOAD_VERSION)


# --- the block --------------------------------------------------------------------------------------

@pytest.mark.parametrize("question", ["", "q 1", 7])
def test_a_question_id_that_is_empty_or_has_spaces_is_refused(question):
    with pytest.raises(ValueError, match=re.escape(f"checking: `question` must be the question id, a string without "
                                                      f"spaces, got {question!r}.")):
        checks.checking(question)


def test_a_hidden_block_makes_hidden_checks():
    assert checks.checking("q", hidden=True).checker.hidden is True


def test_a_warning_raised_in_a_failing_block_is_appended_to_the_verdict():
    import warnings

    def body(check):
        warnings.warn("overflow in exp", RuntimeWarning)
        warnings.warn("overflow in exp", RuntimeWarning)
        warnings.warn("old API", DeprecationWarning)
        check.close(2.0, 1.0, label="v")
    out = run_block(grade(), body)
    assert out.endswith("[warnings: RuntimeWarning: overflow in exp]\n")


def test_at_most_two_distinct_warnings_are_appended():
    import warnings

    def body(check):
        for text in ("one", "two", "three"):
            warnings.warn(text, UserWarning)
        raise ValueError("stop")
    assert run_block(grade(), body).endswith("[warnings: UserWarning: one; UserWarning: two]\n")


def test_a_failing_block_without_warnings_adds_no_warning_note():
    assert "[warnings" not in run_block(grade(), lambda c: c.close(2.0, 1.0, label="v"))


def test_a_system_exit_in_the_block_becomes_a_fail_line():
    def body(check):
        raise SystemExit(3)
    assert run_block(grade(), body).startswith("FAIL q: while running `body(check)`: SystemExit: 3")


def test_grade_mode_keeps_what_the_block_printed_out_of_the_output():
    assert run_block(grade(), lambda c: print("debug")) == "PASS q (0 checks)\n"


def test_student_mode_shows_what_was_printed_before_a_failure():
    def body(check):
        print("debug")
        check.close(2.0, 1.0, label="v")
    assert run_block(checks._Session("student"), body).startswith("debug\nFAIL q: v:")


# --- exactly at a tolerance: "within" includes the boundary ----------------------------------------

def test_a_difference_exactly_at_the_tolerance_passes():
    """Binary fractions, so that |1.5 - 1| and atol = 0.5 are exactly equal."""
    compare([1.5], [1.0], rtol=0.0, atol=0.5)


def test_an_asymmetry_exactly_at_the_tolerance_passes():
    checks.judge_symmetric(np.array([[1.0, 0.25], [0.0, 1.0]]), "K", 0.0, 0.25)


def test_a_negative_eigenvalue_exactly_at_the_tolerance_passes():
    """diag(1, -0.5): eigvalsh returns -0.5 exactly; tol 0.5 times max(1, |largest| = 1)."""
    checks.judge_psd(np.diag([1.0, -0.5]), "K", 0.5)


def test_report_mode_sends_a_true_property_as_true():
    assert reported(lambda c: c.true(np.int64(3), label="p"))["checks"][0]["value"] is True


def test_a_block_run_from_code_without_source_names_no_statement():
    """No source line to quote (code compiled from a string): the verdict gives the exception alone."""
    import contextlib
    import io

    out = io.StringIO()
    code = compile('with checking("q") as check:\n    raise ValueError("x")\n', "<no source>", "exec")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checks, "_SESSION", grade())
        with contextlib.redirect_stdout(out):
            exec(code, {"checking": checks.checking})
    assert out.getvalue() == "FAIL q: ValueError: x\n"


# --- written from the survivors of a mutation run (tools/mutation.py grading/checks, session 5) -----
# The whole text of refusals and failures that no test read in full, the kind and label of every reported
# check, the read of the real environment, the boundary of 32 reported dimensions, and what _send displays.

def test_the_session_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv(checks.MODE_ENV, "report")
    assert checks._Session.from_environ().mode == "report"


def test_an_environment_mode_refusal_lists_the_allowed_modes_in_full():
    with pytest.raises(ValueError) as raised:
        checks._Session.from_environ({checks.MODE_ENV: "grade"})
    assert str(raised.value) == ("grading session: the environment variable `NTKCOURSE_CHECKS_MODE` must be one of "
                                 "'student', 'report', got 'grade'.")


@pytest.mark.parametrize("entry_, message", [
    ([1.0], "decode_array: expected {'shape': [...], 'data': [...]}"),
    ({"shape": [3], "data": [1.0, 2.0]}, "decode_array: data is not a list of numbers matching the shape"),
], ids=["not-a-mapping", "three-entries-two-numbers"])
def test_decode_array_refusals_in_full(entry_, message):
    with pytest.raises(ValueError) as raised:
        checks.decode_array(entry_)
    assert str(raised.value) == message


def test_decode_array_quotes_a_bad_shape_cut_at_80_characters():
    """A shape of 40 dimensions (more than 8) is refused, quoting the first 80 characters of the list."""
    shape = [10] * 40
    with pytest.raises(ValueError) as raised:
        checks.decode_array({"shape": shape, "data": []})
    assert str(raised.value) == "decode_array: bad shape " + str(shape)[:80]


def test_decode_array_returns_float64_for_integer_data():
    """Integers in the JSON (2**70 does not fit an int64) are read as float64, as encode_array's floats are."""
    decoded = checks.decode_array({"shape": [2], "data": [1, 2 ** 70]})
    assert decoded.dtype == np.float64 and decoded.tolist() == [1.0, 2.0 ** 70]


def test_judge_psd_failure_in_full():
    assert failure(checks.judge_psd, np.diag([1.0, -1.0]), "K", 1e-8) == \
        "K: is not positive semi-definite: smallest eigenvalue -1 (a kernel matrix has none below 0)"


@pytest.mark.parametrize("reference, reported_, message", [
    (entry("close"), entry("finite"), "judge_entry: the reported check is not the reference's"),
    (entry("true"), entry("true", value=1), "judge_entry: 'value' of a true check is not a boolean"),
    (entry("shape", {"shape": [2]}), entry("shape", shape=[2.0]), "judge_entry: 'shape' is not a list of ints"),
], ids=["other-kind", "true-not-bool", "shape-not-ints"])
def test_judge_entry_refusals_in_full(reference, reported_, message):
    with pytest.raises(ValueError) as raised:
        checks.judge_entry(reference, reported_, hidden=False)
    assert str(raised.value) == message


def test_judge_entry_judges_a_reported_shape_of_32_dimensions_and_refuses_33():
    """32 dimensions is the most a reported shape may have: judged (here equal, so it passes); 33 is refused."""
    checks.judge_entry(entry("shape", {"shape": [1] * 32}), entry("shape", shape=[1] * 32), hidden=False)
    with pytest.raises(ValueError, match="'shape' is not a list of ints"):
        checks.judge_entry(entry("shape", {"shape": [1] * 33}), entry("shape", shape=[1] * 33), hidden=False)


def test_judge_entry_words_a_hidden_reference_comparison_in_full():
    reference = entry("close_to_reference", {"rtol": 1e-4, "atol": 1e-6}, answer=array([1.0]))
    message = failure(checks.judge_entry, reference, entry("close_to_reference", answer=array([2.0])), hidden=True)
    assert message == ("K: the value differs from the reference solution's values (the comparison with the "
                       "reference) beyond the tolerance (rtol=0.0001, atol=1e-06)")


@pytest.mark.parametrize("kind, options, text", [
    ("symmetric", {"rtol": 1e-7, "atol": 1e-10}, "K: is not symmetric"),
    ("psd", {"tol": 1e-8}, "K: is not positive semi-definite"),
])
def test_judge_entry_names_the_label_of_a_failed_symmetry_or_psd_check(kind, options, text):
    reported_ = entry(kind, answer=array([[1.0, 2.0], [0.0, -5.0]]))
    assert failure(checks.judge_entry, entry(kind, options), reported_, hidden=False).startswith(text)


@pytest.mark.parametrize("method", ["close_to_reference", "symmetric", "psd"])
def test_a_check_of_text_names_the_label(method):
    def body(check):
        getattr(check, method)("text", label="K")
    assert run_block(grade({"q": {"K": 1.0}}), body) == "FAIL q: K: expected numbers, got str\n"


def test_every_passed_reference_comparison_is_counted_in_the_verdict():
    def body(check):
        check.close_to_reference(1.0, label="a")
        check.close_to_reference(2.0, label="b")
    assert run_block(grade({"q": {"a": 1.0, "b": 2.0}}), body) == "PASS q (2 checks)\n"


def test_report_mode_cuts_the_label_of_a_ragged_shape_answer_at_300_characters():
    [check] = reported(lambda c: c.shape([[1.0], [1.0, 2.0]], (2, 2), label="x" * 400))["checks"]
    assert check["label"] == "x" * 300


def test_a_visible_shape_check_names_the_expected_shape():
    assert run_block(grade(), lambda c: c.shape(np.zeros((3, 2)), (2, 3), label="K")) == \
        "FAIL q: K: has shape (3, 2), expected (2, 3)\n"


def test_report_mode_sends_the_kind_and_label_of_finite_symmetric_and_psd_checks():
    def body(check):
        check.finite([1.0], label="a")
        check.symmetric(np.eye(2), label="b")
        check.psd(np.eye(2), label="c")
    kinds = [(c["kind"], c["label"]) for c in reported(body)["checks"]]
    assert kinds == [("finite", "a"), ("symmetric", "b"), ("psd", "c")]


def test_send_displays_the_payload_raw_under_its_mime_type(monkeypatch):
    """In a kernel the payload goes out as one raw display_data output keyed by PAYLOAD_MIME (IPython's display
    is replaced by a recorder)."""
    import IPython.display

    calls = []
    monkeypatch.setattr(IPython.display, "display", lambda *args, **kwargs: calls.append((args, kwargs)))
    checks._send({"version": 1})
    assert calls == [(({checks.PAYLOAD_MIME: {"version": 1}},), {"raw": True})]


def test_a_non_numeric_tolerance_is_refused_naming_the_check_and_the_value():
    with pytest.raises(ValueError) as raised:
        checks.Checker("q", session=grade()).close(1.0, 1.0, label="v", rtol="abc")
    assert str(raised.value) == "checking.close: `rtol` must be a finite number >= 0, got 'abc'"


def test_nan_where_a_number_is_expected_in_full():
    assert failure(compare, np.nan, 0.5) == \
        "v: value is NaN (look for 0/0, or arccos of a value just outside [-1, 1]: clip it)"


def test_a_difference_beyond_the_largest_double_fails_without_a_runtime_warning():
    """1e308 − (−1e308) overflows to inf: a failed check, never a numpy RuntimeWarning (made an error here)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        message = failure(compare, 1e308, -1e308)
    assert message == "v: value is 1e+308, expected -1e+308 (|difference| inf > tolerance 1e+304); the value differs"


def test_a_number_where_nan_is_expected_fails():
    assert failure(compare, 1.0, np.nan).startswith("v: value is 1, expected nan")


@pytest.mark.parametrize("got, expected", [([np.inf, 2.0], [np.inf, 1.0]), ([np.nan, 2.0], [np.nan, 1.0])],
                         ids=["matching-infinity", "matching-nan"])
def test_the_worst_entry_is_never_one_that_matched(got, expected):
    """A matched infinity or NaN (its difference is NaN) is not named as the entry that differs."""
    assert failure(compare, got, expected).startswith("v: entry 1 is 2, expected 1 ")


def test_an_entry_where_nan_is_expected_is_the_worst():
    """A number where NaN is expected is infinitely wrong: named before an entry that is off by 4."""
    assert failure(compare, [1.0, 5.0], [np.nan, 1.0]).startswith("v: entry 0 is 1, expected nan")


def test_a_checker_made_directly_shows_expected_values():
    """Checker(question) is not hidden by default: a failure names the expected value."""
    with pytest.raises(checks.CheckFailed, match=r"^v: value is 2, expected 1 "):
        checks.Checker("q", session=grade()).close(2.0, 1.0, label="v")


def test_a_checker_uses_the_session_it_is_given():
    """In a grade session a reference comparison is judged (and counted as passed), not deferred."""
    checker = checks.Checker("q", session=grade({"q": {"a": 1.0}}))
    checker.close_to_reference(1.0, label="a")
    assert (checker.passed, checker.deferred) == (1, 0)


def test_an_expected_value_given_as_a_fraction_is_compared_as_its_float():
    """close(answer, Fraction(1, 3)): the expected value is read as the float 1/3."""
    from fractions import Fraction

    assert run_block(grade(), lambda c: c.close(1 / 3, Fraction(1, 3), label="v")) == "PASS q (1 checks)\n"


def test_every_passed_closeness_check_is_counted_in_the_verdict():
    def body(check):
        check.close(1.0, 1.0, label="a")
        check.close(2.0, 2.0, label="b")
    assert run_block(grade(), body) == "PASS q (2 checks)\n"


def test_a_session_is_in_student_mode_by_default():
    assert checks._Session().mode == "student"


def test_an_unknown_session_mode_refusal_in_full():
    with pytest.raises(ValueError) as raised:
        checks._Session("bogus")
    assert str(raised.value) == "grading session: `mode` must be one of 'student', 'report', 'grade', got 'bogus'."


def test_report_mode_cuts_the_exception_type_at_80_characters():
    error_type = type("E" * 100, (Exception,), {})

    def body(check):
        raise error_type("boom")
    assert reported(body)["error"]["type"] == "E" * 80


def test_the_statement_that_raised_is_quoted_up_to_160_characters(monkeypatch):
    """A check-cell line of 200 characters that raises is quoted cut at 160 (source from linecache)."""
    import contextlib
    import io
    import linecache

    statement = "raise ValueError('x') # " + "c" * 175
    source = f'with checking("q") as check:\n    {statement}\n'
    monkeypatch.setitem(linecache.cache, "<long cell>", (len(source), None, source.splitlines(True), "<long cell>"))
    monkeypatch.setattr(checks, "_SESSION", grade())
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<long cell>", "exec"), {"checking": checks.checking})
    assert out.getvalue() == f"FAIL q: while running `{statement[:160]}`: ValueError: x\n"


def test_the_warnings_note_follows_the_failure_it_explains():
    import warnings

    def body(check):
        warnings.warn("overflow in exp", RuntimeWarning)
        check.close(2.0, 1.0, label="v")
    assert run_block(grade(), body) == ("FAIL q: v: value is 2, expected 1 (|difference| 1 > tolerance 0.000101); the "
                                        "value differs [warnings: RuntimeWarning: overflow in exp]\n")


def test_the_verdict_is_flushed_to_standard_output(monkeypatch):
    """The verdict appears at once in a notebook: the block flushes sys.stdout (not only sys.stderr)."""
    import io

    class Recording(io.StringIO):
        flushes = 0

        def flush(self):
            self.flushes += 1

    out, err = Recording(), Recording()
    monkeypatch.setattr(checks, "_SESSION", grade())
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    with checks.checking("q"):
        pass
    assert (out.getvalue(), out.flushes) == ("PASS q (0 checks)\n", 1)
