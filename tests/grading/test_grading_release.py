"""Release: exercises/ is generated from solutions/, deterministically, and CI notices when it is stale."""
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from ntkcourse.grading.notebook_format import cell_info, load_assignment
from ntkcourse.grading.release import release, release_notebook, stale_exercises, stub_source

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"


@pytest.fixture(scope="module")
def released():
    return release_notebook(load_assignment(SOLUTIONS / "ch00_warmup.ipynb"))


def test_committed_exercises_match_a_fresh_release(tmp_path):
    release(SOLUTIONS, tmp_path)
    fresh = {p.name: p.read_bytes() for p in tmp_path.glob("*.ipynb")}
    committed = {p.name: p.read_bytes() for p in EXERCISES.glob("*.ipynb")}
    assert fresh == committed, "exercises/ is stale: run `python -m ntkcourse release` and commit"


def test_releasing_twice_changes_nothing(tmp_path):
    release(SOLUTIONS, tmp_path)
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert release(SOLUTIONS, tmp_path) == [] and first == {p.name: p.read_bytes() for p in tmp_path.iterdir()}


def test_stub_raises_not_implemented_with_the_hint_and_keeps_the_signature():
    source = 'def f(x):\n    """Doc."""\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n'
    assert stub_source(source, "q1", "double it") == (
        'def f(x):\n    """Doc."""\n    # YOUR ANSWER HERE: replace the next line.\n'
        "    raise NotImplementedError('q1 is not answered yet. Hint: double it')")


def test_released_answers_contain_no_solution_code(released):
    solution = load_assignment(SOLUTIONS / "ch00_warmup.ipynb").notebook
    answers = [c for c in released.cells if cell_info(c) and cell_info(c).role == "answer"]
    assert len(answers) == 5
    for cell in answers:
        assert "raise NotImplementedError" in cell.source and "BEGIN SOLUTION" not in cell.source
    assert "np.clip" not in "".join(c.source for c in answers)
    assert "np.clip" in "".join(c.source for c in solution.cells)


def test_released_exercise_has_no_hidden_checks(released):
    assert not any(cell_info(c) and cell_info(c).hidden for c in released.cells)
    assert "hidden=True" not in nbformat.writes(released)


def test_released_exercise_has_no_outputs(tmp_path):
    solution = nbformat.read(str(SOLUTIONS / "ch00_warmup.ipynb"), as_version=4)
    for cell in solution.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="PASS\n")]
            cell.execution_count = 7
    (tmp_path / "solutions").mkdir()
    nbformat.write(solution, str(tmp_path / "solutions" / "ch00_warmup.ipynb"))
    release(tmp_path / "solutions", tmp_path / "exercises")
    exercise = nbformat.read(str(tmp_path / "exercises" / "ch00_warmup.ipynb"), as_version=4)
    code = [c for c in exercise.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)


def test_released_check_cells_are_locked_against_editing(released):
    checks = [c for c in released.cells if cell_info(c) and cell_info(c).role == "check"]
    assert checks and all(c.metadata["editable"] is False and c.metadata["deletable"] is False for c in checks)


def test_released_exercise_records_its_assignment(released):
    assert released.metadata["ntkcourse"] == {"assignment": "ch00_warmup"}


def test_stale_exercise_is_reported(tmp_path):
    shutil.copytree(EXERCISES, tmp_path / "exercises")
    stale = tmp_path / "exercises" / "ch00_warmup.ipynb"
    stale.write_text(stale.read_text().replace("YOUR ANSWER HERE", "YOUR ANSWER"))
    assert stale_exercises(SOLUTIONS, tmp_path / "exercises") == [f"{stale} differs from a release of "
                                                                  f"{SOLUTIONS / 'ch00_warmup.ipynb'}"]


def test_cli_release_check_fails_on_stale_exercises(tmp_path):
    (tmp_path / "exercises").mkdir()
    result = subprocess.run([sys.executable, "-m", "ntkcourse", "release", "--check", "--solutions",
                             str(SOLUTIONS), "--exercises", str(tmp_path / "exercises")],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and "ch00_warmup.ipynb is missing" in result.stderr


def _run_in_student_mode(path, tmp_path):
    import os

    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NTKCOURSE_CHECKS")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)  # raises CellExecutionError if any cell raises
    return {cell_info(c).question: "".join(o.get("text", "") for o in c.outputs)
            for c in nb.cells if cell_info(c) and cell_info(c).role == "check" and not cell_info(c).hidden}


@pytest.mark.notebook
def test_released_exercise_runs_top_to_bottom_and_every_check_gives_a_hint(tmp_path):
    verdicts = _run_in_student_mode(EXERCISES / "ch00_warmup.ipynb", tmp_path)
    assert len(verdicts) == 5
    assert all(v.startswith(f"FAIL {q}: ") and "not answered yet. Hint: " in v for q, v in verdicts.items())


@pytest.mark.notebook
def test_reference_solution_passes_every_student_check(tmp_path):
    verdicts = _run_in_student_mode(SOLUTIONS / "ch00_warmup.ipynb", tmp_path)
    assert len(verdicts) == 5 and all(v.startswith(f"PASS {q} (") for q, v in verdicts.items())


def test_release_removes_the_orphans_that_check_reports(tmp_path):
    # Issue 18: `release --check` flagged an orphan exercise that `release` kept.
    release(SOLUTIONS, tmp_path)
    (tmp_path / "dropped_assignment.ipynb").write_text("{}")
    assert stale_exercises(SOLUTIONS, tmp_path) == [
        f"{tmp_path / 'dropped_assignment.ipynb'} has no solution notebook in {SOLUTIONS} (`release` removes it)"]
    assert release(SOLUTIONS, tmp_path) == [tmp_path / "dropped_assignment.ipynb"]
    assert stale_exercises(SOLUTIONS, tmp_path) == [] and not (tmp_path / "dropped_assignment.ipynb").exists()
