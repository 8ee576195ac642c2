"""The cell format of solution notebooks: what load_assignment accepts and what it rejects."""
from pathlib import Path

import nbformat
import pytest

from ntkcourse.grading.notebook_format import FormatError, cell_info, load_assignment, solution_blocks

ROOT = Path(__file__).resolve().parents[2]

ANSWER = '''def f(x):
    """Twice x."""
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION'''
CHECK = '''from ntkcourse.grading.checks import checking
with checking("q1") as check:
    check.close(f(1.0), 2.0, label="f(1)")'''
HIDDEN = CHECK.replace('checking("q1")', 'checking("q1", hidden=True)')


def cell(source, **meta):
    new = nbformat.v4.new_code_cell(source)
    if meta:
        new.metadata["ntkcourse"] = meta
    return new


def answer(source=ANSWER, question="q1", points=1):
    return cell(source, role="answer", question=question, points=points)


def check(source=CHECK, question="q1", **extra):
    return cell(source, role="check", question=question, **extra)


def write(tmp_path, cells, name="hw"):
    nb = nbformat.v4.new_notebook(cells=cells)
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, str(path))
    return path


def problems(tmp_path, cells):
    with pytest.raises(FormatError) as error:
        load_assignment(write(tmp_path, cells))
    return "\n".join(error.value.problems)


def test_the_course_assignment_follows_the_format():
    assignment = load_assignment(ROOT / "solutions" / "ch00_warmup.ipynb")
    assert (len(assignment.questions), assignment.max_points) == (5, 10.0)


def test_every_question_of_the_course_assignment_has_a_hidden_check():
    assignment = load_assignment(ROOT / "solutions" / "ch00_warmup.ipynb")
    assert all(q.check_indices and q.hidden_check_indices for q in assignment.questions)


def test_a_minimal_assignment_is_accepted(tmp_path):
    assignment = load_assignment(write(tmp_path, [answer(), check(), check(HIDDEN, hidden=True)]))
    assert assignment.questions[0].check_indices == (1,) and assignment.questions[0].hidden_check_indices == (2,)


def test_answer_cell_without_solution_markers_is_rejected(tmp_path):
    assert "has no '### BEGIN SOLUTION'" in problems(tmp_path, [answer("def f(x):\n    return 2 * x"), check()])


def test_unclosed_solution_block_is_rejected(tmp_path):
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x"
    assert "is never closed" in problems(tmp_path, [answer(source), check()])


def test_solution_block_at_top_level_is_rejected(tmp_path):
    source = "### BEGIN SOLUTION\nx = 2\n### END SOLUTION"
    assert "must be inside a function body" in problems(tmp_path, [answer(source), check()])


def test_two_answer_cells_for_one_question_are_rejected(tmp_path):
    assert "already has an answer cell" in problems(tmp_path, [answer(), answer(), check()])


def test_check_before_its_answer_is_rejected(tmp_path):
    assert "comes before (or without)" in problems(tmp_path, [check(), answer()])


def test_hidden_check_that_does_not_hide_its_values_is_rejected(tmp_path):
    assert "hidden=True" in problems(tmp_path, [answer(), check(hidden=True)])


def test_question_without_a_check_is_rejected(tmp_path):
    assert "has no check cell" in problems(tmp_path, [answer()])


def test_answer_without_points_is_rejected(tmp_path):
    assert "'points' must be a positive number, got int 0" in problems(tmp_path, [answer(points=0), check()])


def test_metadata_naming_another_assignment_is_rejected(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[answer(), check()])
    nb.metadata["ntkcourse"] = {"assignment": "other"}
    path = tmp_path / "hw.ipynb"
    nbformat.write(nb, str(path))
    with pytest.raises(FormatError, match="names assignment 'other'"):
        load_assignment(path)


def test_nested_solution_markers_are_an_error():
    with pytest.raises(ValueError, match="inside another solution block"):
        solution_blocks("    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    ### END SOLUTION")


@pytest.mark.parametrize("metadata", [None, "text", {"ntkcourse": "text"}, {"ntkcourse": {"role": "answer"}},
                                      {"ntkcourse": {"role": "boss", "question": "q1"}}])
def test_garbage_cell_metadata_reads_as_an_ordinary_cell(metadata):
    assert cell_info({"cell_type": "code", "source": "", "metadata": metadata}) is None


# Issue 18: gaps in the validation.

def test_hidden_flag_that_is_a_string_is_rejected(tmp_path):
    # cell_info reads only `true` as hidden: the string "true" would ship the check to students.
    text = problems(tmp_path, [answer(), check(), check(HIDDEN, hidden="true")])
    assert "metadata 'hidden' must be true or false (a JSON boolean), got the string 'true'" in text


def test_points_given_as_a_string_are_named_as_such(tmp_path):
    text = problems(tmp_path, [answer(points="2"), check()])
    assert "'points' must be a positive number, got the string '2'" in text


def test_solution_block_under_a_top_level_if_is_rejected(tmp_path):
    source = "if True:\n    ### BEGIN SOLUTION\n    y = 2\n    ### END SOLUTION"
    text = problems(tmp_path, [answer(source), check()])
    assert "line 2 is indented but not inside a function" in text


def test_solution_block_in_a_method_or_nested_function_is_accepted(tmp_path):
    source = ("class A:\n    def f(self, x):\n        if x:\n            ### BEGIN SOLUTION\n"
              "            return 2 * x\n            ### END SOLUTION\n")
    assignment = load_assignment(write(tmp_path, [answer(source), check()]))
    assert assignment.question_ids == ("q1",)


def test_solution_file_that_is_not_json_is_a_format_error(tmp_path):
    path = tmp_path / "hw.ipynb"
    path.write_text("this is not a notebook")
    with pytest.raises(FormatError) as error:
        load_assignment(path)
    assert error.value.problems[0].startswith("the file is not a Jupyter notebook")


def test_cli_reports_a_non_json_solution_as_an_error_line(tmp_path, capsys):
    from ntkcourse.cli import main

    (tmp_path / "hw.ipynb").write_text("{not json")
    code = main(["release", "--solutions", str(tmp_path), "--exercises", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
