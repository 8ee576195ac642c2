"""From a submitted file to the notebook that is graded: read defensively, merge by question id."""
import copy
import json
from pathlib import Path

import nbformat
import pytest

from ntkcourse.grading import merge
from ntkcourse.grading.merge import merge_submission, read_submission
from ntkcourse.grading.notebook_format import cell_info
from warmup_notebooks import answer_cell, warmup_assignment, warmup_exercise

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def assignment():
    return warmup_assignment()


@pytest.fixture
def exercise():
    return warmup_exercise()


def codes(graded):
    return sorted(p.code for p in graded.notes)


def test_graded_notebook_is_the_reference_with_the_students_answers(assignment, exercise):
    answer_cell(exercise, "q2_relu_prime_expectation").source = "def relu_prime_expectation(a, b, c):\n    return 0.25"
    graded = merge_submission(assignment, exercise).notebook
    assert [c.id for c in graded.cells] == [c.id for c in assignment.notebook.cells]
    assert answer_cell(graded, "q2_relu_prime_expectation").source.endswith("return 0.25")
    others = [(c.source, c.id) for c in graded.cells if not (cell_info(c) and cell_info(c).role == "answer")]
    assert others == [(c.source, c.id) for c in assignment.notebook.cells
                      if not (cell_info(c) and cell_info(c).role == "answer")]


def test_check_cells_carry_no_expected_output_and_no_nbval_comparison(assignment, exercise):
    # Their reports are judged by the grader, not compared by nbval: nothing of the
    # reference's run (values, verdicts) goes into the notebook the kernel runs.
    graded = merge_submission(assignment, exercise).notebook
    checks = [c for c in graded.cells if cell_info(c) and cell_info(c).role == "check"]
    assert len(checks) == 10
    assert not any(c.outputs or c.metadata.get("tags") for c in checks)


def test_edited_check_cell_has_no_effect_but_is_reported(assignment, exercise):
    for cell in exercise.cells:
        if cell_info(cell) and cell_info(cell).role == "check":
            cell.source = 'print("PASS")'
    graded = merge_submission(assignment, exercise)
    assert 'print("PASS")' not in nbformat.writes(graded.notebook)
    assert codes(graded) == ["check-edited"] * 5 + ["unanswered"] * 5


def test_missing_answer_cell_is_graded_as_the_stub(assignment, exercise):
    exercise.cells.remove(answer_cell(exercise, "q1_relu_expectation"))
    graded = merge_submission(assignment, exercise)
    assert "raise NotImplementedError" in answer_cell(graded.notebook, "q1_relu_expectation").source
    assert "missing-answer" in codes(graded)


def test_last_of_duplicated_answer_cells_is_graded(assignment, exercise):
    cell = answer_cell(exercise, "q1_relu_expectation")
    second = copy.deepcopy(cell)
    second.source = "def relu_expectation(a, b, c):\n    return 1.0"
    exercise.cells.insert(exercise.cells.index(cell) + 3, second)
    graded = merge_submission(assignment, exercise)
    assert answer_cell(graded.notebook, "q1_relu_expectation").source.endswith("return 1.0")
    assert "duplicate-answer" in codes(graded)


def test_answer_cell_without_metadata_is_found_by_the_function_it_defines(assignment, exercise):
    cell = answer_cell(exercise, "q3_relu_ntk")
    del cell.metadata["ntkcourse"]
    cell.source = "def relu_ntk(x1, x2, depth):\n    return x1 @ x2.T"
    graded = merge_submission(assignment, exercise)
    assert answer_cell(graded.notebook, "q3_relu_ntk").source.endswith("return x1 @ x2.T")
    assert "recovered-answer" in codes(graded)


def test_extra_cells_are_left_out_of_the_graded_notebook(assignment, exercise):
    exercise.cells.insert(2, nbformat.v4.new_code_cell("import os\nos._exit(1)"))
    graded = merge_submission(assignment, exercise)
    assert "os._exit" not in nbformat.writes(graded.notebook) and "extra-cells" in codes(graded)


@pytest.mark.parametrize("data, code", [
    (b"\x89PNG\r\n", "not-json"),
    (b"print('hello')", "not-json"),
    (b"[1, 2, 3]", "not-a-notebook"),
    (b'{"cells": "nope", "nbformat": 4}', "not-a-notebook"),
    (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                 "cells": [{"cell_type": "code", "source": 5}]}).encode(), "not-a-notebook"),
    (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "widget"}]}).encode(),
     "not-a-notebook"),
    (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}).encode(), "empty-notebook"),
])
def test_unusable_files_get_a_reason_instead_of_an_exception(data, code):
    notebook, problem = read_submission(data, "ch00_warmup")
    assert notebook is None and problem.code == code


def test_notebook_in_the_old_v3_format_is_read():
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [
        {"cell_type": "code", "input": ["x = 1\n", "y = 2"], "metadata": {}, "outputs": [], "language": "python"}]}]}
    notebook, problem = read_submission(json.dumps(v3).encode(), "ch00_warmup")
    assert problem is None and notebook.cells[0].source == "x = 1\ny = 2"


def test_notebook_of_another_assignment_is_rejected(exercise):
    exercise.metadata["ntkcourse"]["assignment"] = "ch01_gp_limit"
    _, problem = read_submission(nbformat.writes(exercise).encode(), "ch00_warmup")
    assert problem.code == "wrong-assignment"


def test_oversized_file_is_rejected_before_parsing(monkeypatch):
    monkeypatch.setattr(merge, "MAX_SUBMISSION_BYTES", 10)
    _, problem = read_submission(b"{" + b" " * 20 + b"}", "ch00_warmup")
    assert problem.code == "too-large"


def test_answer_cells_in_the_released_order_are_not_reported_as_reordered(assignment, exercise):
    assert "reordered" not in codes(merge_submission(assignment, exercise))


def test_swapped_answer_cells_are_graded_in_place_and_reported_as_reordered(assignment, exercise):
    first, second = answer_cell(exercise, "q1_relu_expectation"), answer_cell(exercise, "q2_relu_prime_expectation")
    first.source = "def relu_expectation(a, b, c):\n    return 1.0"
    second.source = "def relu_prime_expectation(a, b, c):\n    return 2.0"
    i, j = exercise.cells.index(first), exercise.cells.index(second)
    exercise.cells[i], exercise.cells[j] = second, first
    graded = merge_submission(assignment, exercise)
    assert "reordered" in codes(graded)
    assert answer_cell(graded.notebook, "q1_relu_expectation").source.endswith("return 1.0")
    assert answer_cell(graded.notebook, "q2_relu_prime_expectation").source.endswith("return 2.0")


def test_the_last_cell_defining_a_missing_answers_function_is_graded(assignment, exercise):
    """Two cells without metadata define relu_ntk (a draft, then the answer), a third defines another
    function: the last one that defines every name of the reference answer is graded."""
    cell = answer_cell(exercise, "q3_relu_ntk")
    position = exercise.cells.index(cell)
    exercise.cells.remove(cell)
    for offset, source in enumerate(["def relu_ntk(x1, x2, depth):\n    return 'draft'",
                                     "def relu_ntk(x1, x2, depth):\n    return 'answer'",
                                     "def helper(x1, x2, depth):\n    return 'helper'"]):
        exercise.cells.insert(position + offset, nbformat.v4.new_code_cell(source))
    graded = merge_submission(assignment, exercise)
    assert answer_cell(graded.notebook, "q3_relu_ntk").source.endswith("return 'answer'")
    assert "recovered-answer" in codes(graded) and "extra-cells" in codes(graded)


def test_defined_names_are_the_top_level_functions_classes_and_assigned_names():
    source = ("import numpy as np\nx = y = 1\nclass Model:\n    z = 2\n"
              "async def fetch():\n    pass\ndef f(a):\n    b = a\n")
    assert merge.defined_names(source) == {"x", "y", "Model", "fetch", "f"}


def test_defined_names_of_a_cell_with_a_syntax_error_are_its_def_lines():
    """A cell that does not parse still shows which functions it meant to define (on any line)."""
    source = "import numpy as np\n\ndef relu_ntk(x1, x2, depth):\n    return (x1 @ x2.T\n\nasync def helper():\n"
    assert merge.defined_names(source) == {"relu_ntk", "helper"}
