"""No file can stop the run: submissions found, named and read defensively; results files verified."""
import csv
import json
import os
import shutil
from pathlib import Path

import pytest

from ntkcourse.grading.grade import _csv_cell, grade
from ntkcourse.grading.results import ResultError, SubmissionResult, load_key, read_result
from ntkcourse.grading.sandbox import Isolation
from ntkcourse.grading.submissions import find_submissions, safe_name

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "grading_corpus" / "ch00_warmup"


def test_safe_name_escapes_everything_but_letters_digits_dot_dash_underscore():
    assert [safe_name(n) for n in ("alice", "a.b-c_d", ".hidden", "=cmd", "a/b", "caf\udce9", "é")] == \
        ["alice", "a.b-c_d", "%2Ehidden", "%3Dcmd", "a%2Fb", "caf%E9", "%C3%A9"]


def test_safe_name_is_injective_on_names_that_look_alike():
    assert len({safe_name(n) for n in ("a b", "a%20b", "a_b", "a\tb")}) == 4


def test_a_symlink_and_a_file_outside_the_folder_are_refused_without_reading_them(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "secret.ipynb").write_text("{}")
    (tmp_path / "in" / "link.ipynb").symlink_to(tmp_path / "secret.ipynb")
    found = find_submissions([tmp_path / "in"], "ch00_warmup")
    assert (found["link"].data, found["link"].problem.code) == (None, "not-a-regular-file")


def test_a_huge_sparse_file_is_refused_by_its_size_before_reading(tmp_path):
    with open(tmp_path / "huge.ipynb", "wb") as handle:
        handle.truncate(2**40)  # 1 TB apparent size: reading it would never end
    found = find_submissions([tmp_path], "ch00_warmup")
    assert (found["huge"].data, found["huge"].problem.code) == (None, "too-large")


def test_two_files_for_one_student_both_get_an_error_and_the_others_are_kept(tmp_path):
    (tmp_path / "bob").mkdir()
    for path in (tmp_path / "bob.ipynb", tmp_path / "bob" / "ch00_warmup.ipynb", tmp_path / "carol.ipynb"):
        path.write_text("{}")
    found = find_submissions([tmp_path], "ch00_warmup")
    assert sorted(found) == ["bob~1", "bob~2", "carol"]
    assert {found[s].problem.code for s in ("bob~1", "bob~2")} == {"duplicate-student"}
    assert found["carol"].problem is None and found["carol"].data == b"{}"


def test_a_name_that_is_not_utf8_is_escaped(tmp_path):
    with open(os.path.join(os.fsencode(tmp_path), b"\xff\xfe.ipynb"), "w") as handle:
        handle.write("{}")
    assert list(find_submissions([tmp_path], "ch00_warmup")) == ["%FF%FE"]


def test_csv_cells_a_spreadsheet_would_run_get_a_quote_mark():
    assert [_csv_cell(t) for t in ("=1+1", "+1", "-1", "@SUM(A1)", "alice")] == \
        ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "alice"]


def _result(**changes):
    fields = dict(student="alice", assignment="ch00_warmup", file="alice.ipynb", submission_sha256="0" * 64,
                  reference_sha256="1" * 64, options={}, grader_version=2, status="ok")
    return SubmissionResult(**{**fields, **changes})


def test_a_result_reads_back_as_the_same_typed_object(tmp_path):
    key = load_key(tmp_path / "key")
    (tmp_path / "alice.json").write_text(_result(total=3.0, max=8.0).to_json(key))
    assert read_result(tmp_path / "alice.json", key) == _result(total=3.0, max=8.0)


def test_a_written_result_follows_the_documented_json_schema(tmp_path):
    import jsonschema

    from ntkcourse.grading.results import SCHEMA, CheckResult, Problem, QuestionResult

    result = _result(problems=(Problem("cell-error", "raised ValueError"),), total=2.0, max=3.0,
                     questions={"q1": QuestionResult(2.0, 2.0, True, (CheckResult(False, True, ""),)),
                                "q2": QuestionResult(0.0, 1.0, False, (CheckResult(True, False, "K: differs"),))})
    jsonschema.validate(json.loads(result.to_json(load_key(tmp_path / "key"))), SCHEMA)


@pytest.mark.parametrize("edit", ["forge", "schema", "not json", "nested"])
def test_a_forged_or_malformed_result_is_refused(tmp_path, edit):
    key = load_key(tmp_path / "key")
    data = json.loads(_result().to_json(key))
    path = tmp_path / "alice.json"
    if edit == "forge":
        path.write_text(json.dumps({**data, "total": 8.0}))  # signature of total 0
    elif edit == "schema":
        path.write_text(json.dumps({**data, "status": "great"}))
    elif edit == "not json":
        path.write_text("{")
    else:
        path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ResultError):
        read_result(path, key)


def test_a_malformed_results_file_is_reported_and_regraded_and_a_stale_row_is_marked(tmp_path):
    # Unreadable submissions: no kernel is needed, the rules are the same for all.
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    for name in ("dave", "erin"):
        shutil.copy(CORPUS / "not_json.ipynb", submissions / f"{name}.ipynb")
    options = dict(solutions_dir=ROOT / "solutions", scratch_root=tmp_path, key_path=tmp_path / "key")
    grade([submissions], "ch00_warmup", tmp_path / "out", **options)
    (tmp_path / "out" / "results" / "dave.json").write_text('{"student": "dave", "total": 8')
    (submissions / "erin.ipynb").unlink()
    messages = []
    summary = grade([submissions], "ch00_warmup", tmp_path / "out", progress=messages.append, **options)
    assert (summary.regraded_untrusted, summary.graded, summary.stale) == (["dave"], ["dave"], ["erin"])
    assert any(m.startswith("warning: results/dave.json not trusted, regraded") for m in messages)
    with open(tmp_path / "out" / "gradebook.csv", newline="") as handle:
        erin = next(row for row in csv.DictReader(handle) if row["student"] == "erin")
    assert (erin["status"], erin["reason"].startswith("no submission in this run")) == ("stale", True)


def test_without_root_the_missing_protection_is_said_plainly():
    missing = Isolation(root=False, slot_users=False, namespaces=False).missing()
    assert len(missing) == 1 and missing[0].startswith("the grader is not root, so every submission runs as "
                                                       "your own user")
    assert Isolation(root=True, slot_users=True, namespaces=True, memory_cgroup=True).missing() == []


def test_a_change_of_the_reference_solution_during_the_run_is_reported(tmp_path):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    shutil.copy(ROOT / "solutions" / "ch00_warmup.ipynb", solutions)
    shutil.copy(CORPUS / "not_json.ipynb", tmp_path / "dave.ipynb")

    def touch_the_solution(message):
        with open(solutions / "ch00_warmup.ipynb", "a") as handle:
            handle.write(" ")

    summary = grade([tmp_path / "dave.ipynb"], "ch00_warmup", tmp_path / "out", solutions_dir=solutions,
                    key_path=tmp_path / "key", progress=touch_the_solution)
    assert any("changed on disk during the run" in w for w in summary.warnings)


def test_a_kernel_that_does_not_start_is_tried_again(monkeypatch):
    from ntkcourse.grading import grade as grade_module
    from ntkcourse.grading.runner import RunResult
    from ntkcourse.grading.sandbox import SlotPool

    attempts = []

    class FlakyRun:
        def __init__(self, notebook, **options):
            attempts.append(options["sandbox"])

        def start(self):
            return self

        def wait(self):
            if len(attempts) < 3:  # two failed starts, then a kernel
                return RunResult(cells={0: {"when": "setup", "outcome": "failed", "error": "no kernel"}})
            return RunResult(cells={0: {"when": "call", "outcome": "passed", "outputs": []}})

    monkeypatch.setattr(grade_module, "NotebookRun", FlakyRun)
    pool = SlotPool(Isolation(root=False, slot_users=False, namespaces=False), slots=1)
    _, result = grade_module._run_with_retries(None, pool, cell_timeout=1, memory_mb=0)
    assert len(attempts) == 3 and result.cells[0]["when"] == "call"


def test_the_reference_run_is_tried_again_once_before_the_run_gives_up(monkeypatch):
    from ntkcourse.grading import grade as grade_module
    from ntkcourse.grading.notebook_format import load_assignment
    from ntkcourse.grading.runner import RunResult

    runs = []

    def failing_run(notebook, pool, **options):
        runs.append(notebook)
        return None, RunResult(collect_error="nbval could not start")

    monkeypatch.setattr(grade_module, "_run_with_retries", failing_run)
    with pytest.raises(grade_module.GradingError, match=r"does not pass its own checks \(two runs\)"):
        grade_module.record_reference(load_assignment(ROOT / "solutions" / "ch00_warmup.ipynb"), None,
                                      cell_timeout=1, memory_mb=0)
    assert len(runs) == 2


def test_a_notebook_with_too_many_cells_is_refused_before_it_is_parsed():
    from ntkcourse.grading.merge import MAX_CELLS, read_submission

    data = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                       "cells": [{"cell_type": "raw", "source": "", "metadata": {}}] * (MAX_CELLS + 1)})
    notebook, problem = read_submission(data.encode(), "ch00_warmup")
    assert (notebook, problem.code) == (None, "too-many-cells")


def test_two_pools_on_one_machine_never_hold_the_same_slot_user():
    # Each run kills its slot user's processes at its end: sharing one would kill a neighbour's kernel.
    from ntkcourse.grading.sandbox import SlotPool, probe

    isolation = probe()
    assert isolation.slot_users, f"needs the grader to run as root (as in CI): {isolation.missing()}"
    first, second = SlotPool(isolation, slots=1), SlotPool(isolation, slots=1)
    token_a, sandbox_a = first.acquire()
    token_b, sandbox_b = second.acquire()
    assert sandbox_a.uid != sandbox_b.uid
    first.release(token_a)
    second.release(token_b)


@pytest.mark.parametrize("option, value", [("nproc", 4), ("output_limit", 0), ("jobs", 0), ("cell_timeout", -1),
                                            ("share_compilations", "yes")])
def test_bad_grading_options_are_refused_naming_the_argument_and_value(tmp_path, option, value):
    from ntkcourse.grading.grade import GradingError

    with pytest.raises(GradingError, match=rf"^grade: `{option}` must be .*, got {value!r}\.$"):
        grade([tmp_path], "ch00_warmup", tmp_path / "out", solutions_dir=ROOT / "solutions", **{option: value})
