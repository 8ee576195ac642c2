"""What a grading kernel reports is judged in the grader's process: strictly, and without leaking."""
import json

import pytest

from ntkcourse.grading.judging import (HiddenText, PayloadError, judge_check_cell, parse_payload,
                                       reference_entries, student_error)

CLOSE = {"kind": "close", "label": "f(1) = 2", "options": {"rtol": 1e-4, "atol": 1e-6},
         "answer": {"shape": [], "data": [2.0]}, "expected": {"shape": [], "data": [2.0]}}
REFERENCE = {"kind": "close_to_reference", "label": "f at three points", "options": {"rtol": 1e-4, "atol": 1e-6},
             "answer": {"shape": [3], "data": [0.25, 0.5, 0.75]}}
SOURCE = 'with checking("q1") as check:\n    check.close(f(1.0), 2.0, label="f(1) = 2")\n'


def record(*payloads, printed=""):
    outputs = [{"type": "stream", "name": "stdout", "text": printed}] if printed else []
    outputs += [{"type": "display_data", "text": "", "payload": json.dumps(p) if isinstance(p, dict) else p}
                for p in payloads]
    return {"when": "call", "outcome": "passed", "outputs": outputs}


def payload(*checks, error=None, question="q1"):
    return {"version": 1, "question": question, "checks": list(checks), "error": error}


def judge(rec, hidden=False, secret=None):
    return judge_check_cell([CLOSE, REFERENCE], rec, question="q1", hidden=hidden, source=SOURCE, secret=secret)


def test_a_correct_report_passes():
    assert judge(record(payload(CLOSE, dict(REFERENCE, answer={"shape": [3], "data": [0.25, 0.5, 0.75]})))) \
        == (True, "")


def test_a_wrong_answer_fails_as_a_comparison_with_the_reference_without_its_values():
    passed, message = judge(record(payload(CLOSE, dict(REFERENCE, answer={"shape": [3], "data": [0.25, 0.5, 0.8]}))))
    assert not passed and "comparison with the reference" in message and "0.75" not in message


def test_no_report_fails_and_says_so():
    passed, message = judge(record(printed="PASS q1 (2 checks)\n"))
    assert not passed and "reported nothing" in message


def test_two_reports_fail():
    good = payload(CLOSE, REFERENCE)
    assert judge(record(good, good)) == (False, "the check cell reported more than once (student code sent "
                                                "check data of its own)")


def test_a_report_that_skips_or_renames_a_check_fails():
    assert not judge(record(payload(CLOSE)))[0]
    assert not judge(record(payload(CLOSE, dict(REFERENCE, label="something else"))))[0]


def test_malformed_or_deeply_nested_reports_fail_without_an_exception():
    for text in ("[" * 100_000 + "]" * 100_000, "not json", json.dumps({"version": 1}), None):
        passed, message = judge(record(text))
        assert not passed and "could not be read" in message
    with pytest.raises(PayloadError):
        parse_payload("[" * 100_000)


def test_an_exception_in_a_visible_check_names_the_statement_from_the_graders_copy():
    error = {"type": "NotImplementedError", "message": "q1 is not answered yet", "line": 2}
    passed, message = judge(record(payload(error=error)))
    assert message == ('while running `check.close(f(1.0), 2.0, label="f(1) = 2")`: '
                       "NotImplementedError: q1 is not answered yet")


def test_an_exception_in_a_hidden_check_shows_only_its_type():
    error = {"type": "ValueError", "message": "expected 0.123456", "line": 2}
    assert judge(record(payload(error=error)), hidden=True)[1] == \
        "raised ValueError (a hidden check: its message is not shown)"


def test_decimal_numbers_are_removed_from_student_messages():
    assert student_error("ValueError", "got 0.7853981 and 1e-3", hidden=False) == \
        "ValueError: got <number> and <number>"


def test_a_message_quoting_a_hidden_check_is_withheld_but_released_text_is_not():
    secret = HiddenText(['with checking("q1", hidden=True) as check:\n    x = secret_inputs_for_the_hidden_check()'],
                        ['with checking("q1") as check:\n    check.close(f(1.0), 2.0, label="f(1) = 2")'])
    assert "withheld" in student_error("RuntimeError", "x = secret_inputs_for_the_hidden_check()", hidden=False,
                                       secret=secret)
    assert "withheld" not in student_error("RuntimeError", 'with checking("q1") as check: nothing', hidden=False,
                                           secret=secret)


def test_a_type_name_that_is_not_an_identifier_is_not_shown():
    assert student_error("<script>", "boom", hidden=False) == "an exception: boom"


def test_reference_check_cell_that_prints_extra_lines_is_reported():
    with pytest.raises(ValueError, match="prints extra lines besides its check: 'debugging'"):
        reference_entries(record(payload(CLOSE), printed="debugging\n"), "q1", hidden=False)


def test_reference_check_cell_that_fails_its_own_check_is_reported():
    wrong = dict(CLOSE, answer={"shape": [], "data": [3.0]})
    with pytest.raises(ValueError, match="does not pass its own check"):
        reference_entries(record(payload(wrong)), "q1", hidden=False)
