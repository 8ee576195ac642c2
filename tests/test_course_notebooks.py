"""Every notebook of the course runs: the chapters under nbval, and each
assignment graded the way an instructor grades a class.

* Chapters: each ``book/chNN_*.md`` (a MyST notebook) is converted with
  jupytext and run by ``pytest --nbval-lax`` in a fresh kernel, outside the
  book build: a chapter whose code raises fails here with nbval's report of
  the cell, whatever the book's execution cache holds.
* Assignments: for each ``solutions/*.ipynb``, the reference solution and the
  released exercise of the same name are graded as two students by
  :func:`ntkcourse.grading.grade.grade` (the nbval runner behind
  ``python -m ntkcourse grade``). The solution must score full marks with no
  problem reported; the released exercise must run top to bottom (its
  answers raise ``NotImplementedError``, which is not an error of the run)
  and score zero on every question.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ntkcourse.grading.grade import grade

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("ch[0-9][0-9]_*.md"))
ASSIGNMENTS = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))

# The slowest chapter cell (ch05's width sweeps) takes ~30 s on the 2-core
# reference machine; 600 s leaves room for a loaded machine.
CELL_TIMEOUT_S = 600
# Grading: the slowest check cell takes a few seconds on the reference
# machine; 120 s per cell keeps a loaded CI machine from timing out.
GRADING_CELL_TIMEOUT_S = 120

pytestmark = [pytest.mark.slow, pytest.mark.notebook]


def test_the_course_has_its_chapters_and_their_assignments():
    assert CHAPTERS == ["ch01_gp_limit", "ch02_linearisation", "ch03_ntk_recursion",
                        "ch04_training_dynamics", "ch05_finite_width", "ch06_theory", "ch09_graph",
                        "ch10_feature_learning", "ch11_scaling", "ch12_connections"]
    assert set(CHAPTERS) <= set(ASSIGNMENTS)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_top_to_bottom_under_nbval(chapter, tmp_path):
    notebook = tmp_path / f"{chapter}.ipynb"
    subprocess.run([sys.executable, "-m", "jupytext", "--quiet", "--to", "ipynb", "-o", str(notebook),
                    str(ROOT / "book" / f"{chapter}.md")], check=True)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", f"--nbval-cell-timeout={CELL_TIMEOUT_S}", "-q",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(notebook)],
        cwd=tmp_path, capture_output=True, text=True, timeout=1800,
    )
    assert run.returncode == 0, f"nbval failed on {chapter}:\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
    assert " passed" in run.stdout.splitlines()[-1]


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def graded(request, tmp_path_factory):
    """(assignment, {'solution': result, 'exercise': result}) for one assignment."""
    name = request.param
    work = tmp_path_factory.mktemp(f"grade_{name}")
    for who, folder in (("solution", "solutions"), ("exercise", "exercises")):
        (work / "submissions" / who).mkdir(parents=True)
        (work / "submissions" / who / f"{name}.ipynb").write_bytes((ROOT / folder / f"{name}.ipynb").read_bytes())
    summary = grade([work / "submissions"], name, work / "out", solutions_dir=ROOT / "solutions", jobs=2,
                    cell_timeout=GRADING_CELL_TIMEOUT_S, scratch_root=work)
    results = {r["student"]: r for r in summary.results}
    assert sorted(results) == ["exercise", "solution"]
    return name, results


def _describe(result):
    return {q: (v["points"], v["max"]) for q, v in result["questions"].items()}, result["problems"]


def test_reference_solution_scores_full_marks(graded):
    name, results = graded
    solution = results["solution"]
    assert solution["status"] == "ok" and not solution["problems"], _describe(solution)
    assert solution["total"] == solution["max"] > 0, _describe(solution)


def test_released_exercise_runs_and_scores_zero(graded):
    name, results = graded
    exercise = results["exercise"]
    assert exercise["status"] == "ok", _describe(exercise)
    assert exercise["total"] == 0, _describe(exercise)


def test_assignment_has_at_least_four_graded_questions(graded):
    name, results = graded
    assert len(results["solution"]["questions"]) >= 4
