"""The `ntkcourse grade` command: one command, a gradebook and feedback, and runs that can be interrupted."""
import csv
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from ntkcourse.cli import main
from ntkcourse.grading.grade import find_submissions, grade

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "grading_corpus" / "ch00_warmup"


def rows(out):
    with open(out / "gradebook.csv", newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


@pytest.mark.notebook
def test_grade_command_writes_gradebook_feedback_and_results(tmp_path, capsys):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    shutil.copy(CORPUS / "correct.ipynb", submissions / "alice.ipynb")
    shutil.copy(CORPUS / "not_json.ipynb", submissions / "bob.ipynb")
    code = main(["grade", str(submissions), "--assignment", "ch00_warmup", "--out", str(tmp_path / "out"),
                 "-j", "2", "--timeout", "30", "--solutions", str(ROOT / "solutions")])
    assert code == 0, capsys.readouterr().err
    assert {s: (r["total"], r["status"]) for s, r in rows(tmp_path / "out").items()} == {
        "alice": ("10", "ok"), "bob": ("0", "error")}
    assert sorted(p.name for p in (tmp_path / "out" / "feedback").iterdir()) == ["alice.md", "bob.md"]
    assert json.loads((tmp_path / "out" / "results" / "alice.json").read_text())["total"] == 10


def test_unknown_assignment_is_an_error_that_names_the_available_ones(tmp_path, capsys):
    code = main(["grade", str(CORPUS / "correct.ipynb"), "--assignment", "ch99", "--out", str(tmp_path),
                 "--solutions", str(ROOT / "solutions")])
    err = capsys.readouterr().err
    assert code == 2 and "ch99" in err and "'ch00_warmup'" in err


def test_student_name_is_the_file_name_or_the_folder_of_a_per_student_layout(tmp_path):
    for path in (tmp_path / "alice.ipynb", tmp_path / "bob" / "ch00_warmup.ipynb"):
        path.parent.mkdir(exist_ok=True)
        path.write_text("{}")
    assert sorted(find_submissions([tmp_path], "ch00_warmup")) == ["alice", "bob"]


def test_changed_submission_is_regraded_on_rerun(tmp_path):
    # Unreadable files keep this test free of kernels: the rerun rule is the same for all.
    submission = tmp_path / "submissions" / "dave.ipynb"
    submission.parent.mkdir()
    shutil.copy(CORPUS / "not_json.ipynb", submission)
    options = dict(solutions_dir=ROOT / "solutions", scratch_root=tmp_path)
    grade([submission.parent], "ch00_warmup", tmp_path / "out", **options)
    shutil.copy(CORPUS / "not_a_notebook.ipynb", submission)
    summary = grade([submission.parent], "ch00_warmup", tmp_path / "out", **options)
    assert summary.graded == ["dave"] and rows(tmp_path / "out")["dave"]["reason"].startswith("not-a-notebook")


def _looping_submission(path):
    nb = nbformat.read(str(CORPUS / "correct.ipynb"), as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("ntkcourse", {})
        if meta.get("role") == "answer" and meta.get("question") == "q4_kernel_regression":
            cell.source = "while True:\n    pass"
    nbformat.write(nb, str(path))


@pytest.mark.slow
@pytest.mark.notebook
def test_interrupted_run_keeps_what_it_finished_and_a_rerun_grades_only_the_rest(tmp_path):
    submissions, out = tmp_path / "submissions", tmp_path / "out"
    submissions.mkdir()
    shutil.copy(CORPUS / "correct.ipynb", submissions / "a_first.ipynb")
    _looping_submission(submissions / "b_looping.ipynb")
    shutil.copy(CORPUS / "correct.ipynb", submissions / "c_last.ipynb")
    # Started with SIGINT ignored, as a background job of a non-interactive shell (or a test worker that
    # ignores it) starts it: the grader must still stop on Ctrl-C (before, it ran on to the end, exit 0).
    run = subprocess.Popen([sys.executable, "-m", "ntkcourse", "grade", str(submissions), "--assignment",
                            "ch00_warmup", "--out", str(out), "-j", "1", "--timeout", "4"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 120
    while not (out / "results" / "a_first.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # b_looping is now in its infinite loop
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130 and "rerun the same command" in stderr
    assert list(rows(out)) == ["a_first"]

    summary = grade([submissions], "ch00_warmup", out, solutions_dir=ROOT / "solutions", jobs=2, cell_timeout=4)
    assert (summary.skipped, sorted(summary.graded)) == (["a_first"], ["b_looping", "c_last"])
    assert {s: r["status"] for s, r in rows(out).items()} == {"a_first": "ok", "b_looping": "error",
                                                              "c_last": "ok"}
