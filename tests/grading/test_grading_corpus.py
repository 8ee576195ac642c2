"""End to end: the whole robustness corpus graded in one run, every row and status as expected.

The corpus (tests/grading_corpus/ch00_warmup/, made by make_corpus.py) holds a
submission for each way a notebook can go wrong; expected.json says what each
must get. It is graded once, with two jobs, a 10 s cell timeout and a 1 GB
memory limit per kernel (so that the memory bomb meets the limit quickly).
"""
import csv
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import psutil
import pytest

from ntkcourse.grading import checks
from ntkcourse.grading.grade import grade
from ntkcourse.grading.notebook_format import cell_info, load_assignment

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "grading_corpus" / "ch00_warmup"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
QUESTIONS = ("q1_relu_expectation", "q2_relu_prime_expectation", "q3_relu_ntk", "q4_kernel_regression",
             "q5_predict_depth_correlation")
CELL_TIMEOUT = 10.0
GRADE_OPTIONS = dict(solutions_dir=ROOT / "solutions", jobs=2, cell_timeout=CELL_TIMEOUT, memory_mb=1024)

pytestmark = [pytest.mark.slow, pytest.mark.notebook]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    out = tmp_path_factory.mktemp("grades")
    scratch = tmp_path_factory.mktemp("scratch")
    GRADE_OPTIONS["key_path"] = tmp_path_factory.mktemp("key") / "grader.key"
    summary = grade([CORPUS], "ch00_warmup", out, scratch_root=scratch, **GRADE_OPTIONS)
    with open(out / "gradebook.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    return {"out": out, "scratch": scratch, "summary": summary, "rows": rows,
            "results": {r["student"]: r for r in summary.results}}


def feedback(graded, student):
    return (graded["out"] / "feedback" / f"{student}.md").read_text()


def test_corpus_files_are_what_the_generator_makes():
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS.parent / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    on_disk = {p.name: p.read_bytes() for p in CORPUS.iterdir()}
    assert on_disk == module.corpus_files(), "run `python tests/grading_corpus/make_corpus.py`"


def test_every_submission_has_exactly_one_gradebook_row(graded):
    assert sorted(graded["rows"]) == sorted(EXPECTED)


def test_gradebook_columns_are_student_assignment_questions_total_max_status_reason(graded):
    header = (graded["out"] / "gradebook.csv").read_text().splitlines()[0]
    assert header.split(",") == ["student", "assignment", *QUESTIONS, "total", "max", "status", "reason"]


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_submission_gets_the_expected_status_and_reasons(graded, student):
    result = graded["results"][student]
    got = (result["status"], sorted({p["code"] for p in result["problems"]}))
    assert got == (EXPECTED[student]["status"], EXPECTED[student]["codes"]), EXPECTED[student]["description"]


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_submission_gets_the_expected_points(graded, student):
    row = graded["rows"][student]
    assert {q: float(row[q]) for q in QUESTIONS} == EXPECTED[student]["points"], EXPECTED[student]["description"]


def test_error_rows_give_their_reason_in_the_gradebook(graded):
    errors = {s: row["reason"] for s, row in graded["rows"].items() if row["status"] == "error"}
    assert errors and all(reason.split(":")[0] in EXPECTED[s]["codes"] for s, reason in errors.items())


def test_reference_solution_gets_full_marks(graded):
    row = graded["rows"]["reference"]
    assert (row["total"], row["max"], row["status"]) == ("10", "10", "ok")


def test_untouched_released_exercise_gets_zero_for_every_answer(graded):
    row = graded["rows"]["untouched"]
    assert [row[q] for q in QUESTIONS] == ["0"] * 5


def test_swapped_ntk_recursion_loses_question_3_and_the_measurement_made_with_it(graded):
    rows = graded["rows"]
    assert float(rows["correct"]["total"]) - float(rows["swapped_recursion"]["total"]) == 5
    assert [rows["swapped_recursion"][q] for q in QUESTIONS] == ["2", "1", "0", "2", "0"]


def test_feedback_says_what_was_checked_and_what_went_wrong(graded):
    text = feedback(graded, "swapped_recursion")
    assert "## q3_relu_ntk: 0 / 3 (fail)" in text
    assert ("check 1: **failed**: diagonal of relu_ntk(x, x, 3) = (depth + 1) |x|^2 / d: entry 0 is 3.07099, "
            "expected 6.66667") in text


def _hidden_reference_values(monkeypatch):
    """Every value the hidden checks compare with, computed from the reference solution."""
    assignment = load_assignment(ROOT / "solutions" / "ch00_warmup.ipynb")
    namespace = {}
    for cell in assignment.notebook.cells:
        info = cell_info(cell)
        if cell.cell_type == "code" and not (info and info.role == "check"):
            exec(cell.source, namespace)
    sent = []
    monkeypatch.setattr(checks, "_SESSION", checks._Session("report"))
    monkeypatch.setattr(checks, "_send", sent.append)
    for cell in assignment.notebook.cells:
        if cell_info(cell) and cell_info(cell).hidden:
            exec(cell.source, namespace)
    return [v for payload in sent for entry in payload["checks"] for name in ("answer", "expected")
            if name in entry for v in entry[name]["data"]]


def test_feedback_of_a_failed_hidden_check_never_shows_the_reference_values(graded, monkeypatch):
    secrets = _hidden_reference_values(monkeypatch)
    hidden_lines = [line for student in EXPECTED for line in feedback(graded, student).splitlines()
                    if line.startswith("- hidden check") and "failed" in line]
    assert hidden_lines and secrets
    shown = {float(x) for line in hidden_lines for x in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", line)}
    assert not any(np.isclose(shown_value, secret, rtol=1e-3) for shown_value in shown for secret in secrets
                   if abs(secret) > 1e-6)


def test_rerun_skips_every_submission_already_graded(graded):
    before = (graded["out"] / "gradebook.csv").read_bytes()
    summary = grade([CORPUS], "ch00_warmup", graded["out"], scratch_root=graded["scratch"], **GRADE_OPTIONS)
    assert (summary.graded, sorted(summary.skipped)) == ([], sorted(EXPECTED))
    assert (graded["out"] / "gradebook.csv").read_bytes() == before


def test_no_kernel_process_or_scratch_directory_is_left_behind(graded):
    leftovers = []
    for process in psutil.process_iter(["cmdline"]):
        if any(str(graded["scratch"]) in part for part in process.info["cmdline"] or []):
            leftovers.append(process.pid)
    assert leftovers == [] and list(graded["scratch"].iterdir()) == []
