"""What the merge tells a student and an instructor: each refusal and note carries its numbers and names.

A note is read by a person deciding what happened to a submission: the parts
that carry information (the question id, the counts, the size and its limit,
the function names found, the cause of a parse error) are checked here; the
surrounding wording is not.
"""
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
Q1, Q2, Q3 = "q1_relu_expectation", "q2_relu_prime_expectation", "q3_relu_ntk"


@pytest.fixture(scope="module")
def assignment():
    return warmup_assignment()


@pytest.fixture
def exercise():
    return warmup_exercise()


def note(graded, code):
    [found] = [p.detail for p in graded.notes if p.code == code]
    return found


def notebook_bytes(cells):
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}).encode()


def code_cell(source):
    return {"cell_type": "code", "source": source, "metadata": {}, "outputs": [], "execution_count": None}


# --- read_submission: refusals -------------------------------------------------------------------

def test_too_large_names_the_size_and_the_limit_in_megabytes(monkeypatch):
    monkeypatch.setattr(merge, "MAX_SUBMISSION_BYTES", 2 * 2**20)
    _, problem = read_submission(b" " * (5 * 2**20), "ch00_warmup")
    assert (problem.code, problem.detail) == ("too-large", "5 MB; the limit is 2 MB")


def test_a_file_of_exactly_the_size_limit_is_not_refused_as_too_large(monkeypatch):
    data = notebook_bytes([code_cell("x = 1")])
    monkeypatch.setattr(merge, "MAX_SUBMISSION_BYTES", len(data))
    notebook, problem = read_submission(data, "ch00_warmup")
    assert problem is None and notebook.cells[0].source == "x = 1"


def test_not_json_quotes_the_decoders_reason():
    _, problem = read_submission(b"\x89PNG", "ch00_warmup")
    assert problem.code == "not-json" and problem.detail.startswith("the file is not JSON")
    assert "can't decode byte 0x89" in problem.detail


def test_deeply_nested_json_is_refused_as_too_deep():
    _, problem = read_submission(b"[" * 100_000, "ch00_warmup")
    assert problem.code == "not-json" and problem.detail.startswith("the file's JSON is nested too deeply")


def test_json_that_is_not_a_notebook_says_what_is_missing():
    _, problem = read_submission(json.dumps({"cells": []}).encode(), "ch00_warmup")
    assert problem.code == "not-a-notebook" and problem.detail.startswith("the file is JSON but not a Jupyter notebook")
    assert problem.detail.endswith("(no 'nbformat' and 'cells')")


def test_a_notebook_without_a_cells_key_is_refused_as_unreadable():
    _, problem = read_submission(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}}).encode(),
                                 "ch00_warmup")
    assert problem.code == "not-a-notebook" and problem.detail.startswith("the notebook cannot be read (")
    assert "cells" in problem.detail


def test_too_many_cells_names_the_count_and_the_limit(monkeypatch):
    monkeypatch.setattr(merge, "MAX_CELLS", 3)
    _, problem = read_submission(notebook_bytes([code_cell("x = 1")] * 4), "ch00_warmup")
    assert (problem.code, problem.detail) == ("too-many-cells", "4 cells; the limit is 3")


def test_exactly_the_cell_limit_is_accepted(monkeypatch):
    monkeypatch.setattr(merge, "MAX_CELLS", 3)
    notebook, problem = read_submission(notebook_bytes([code_cell("x = 1")] * 3), "ch00_warmup")
    assert problem is None and len(notebook.cells) == 3


def test_a_cell_source_that_is_not_text_is_named_as_the_reason():
    _, problem = read_submission(notebook_bytes([code_cell(5)]), "ch00_warmup")
    assert (problem.code, problem.detail) == ("not-a-notebook",
                                              "the notebook cannot be read (a cell's source is not text)")


def test_a_cell_of_an_unknown_type_is_named_as_the_reason():
    cell = dict(code_cell("x = 1"), cell_type="widget")
    _, problem = read_submission(notebook_bytes([cell]), "ch00_warmup")
    assert problem.code == "not-a-notebook"
    assert problem.detail == "the notebook cannot be read (a cell is not a code, markdown or raw cell)"


@pytest.mark.parametrize("kind", ["markdown", "raw"])
def test_markdown_and_raw_cells_are_accepted(kind):
    cell = {"cell_type": kind, "source": "text", "metadata": {}}
    notebook, problem = read_submission(notebook_bytes([cell, code_cell("x = 1")]), "ch00_warmup")
    assert problem is None and [c.cell_type for c in notebook.cells] == [kind, "code"]


def test_empty_notebook_says_it_has_no_cells():
    _, problem = read_submission(notebook_bytes([]), "ch00_warmup")
    assert (problem.code, problem.detail) == ("empty-notebook", "the notebook has no cells")


def test_wrong_assignment_names_both_assignments(exercise):
    exercise.metadata["ntkcourse"]["assignment"] = "ch01_gp_limit"
    _, problem = read_submission(nbformat.writes(exercise).encode(), "ch00_warmup")
    assert problem.detail == "this notebook is for assignment 'ch01_gp_limit', not 'ch00_warmup'"


def test_a_notebook_of_the_right_assignment_is_read(exercise):
    notebook, problem = read_submission(nbformat.writes(exercise).encode(), "ch00_warmup")
    assert problem is None and len(notebook.cells) == len(exercise.cells)


def test_short_collapses_whitespace_and_cuts_long_text_at_the_limit():
    assert merge._short("a\n  b\tc") == "a b c"
    cut = merge._short("x" * 300)
    assert len(cut) == 200 and cut.endswith("...") and cut.startswith("x" * 197)


def test_short_keeps_text_of_exactly_the_limit():
    assert merge._short("y" * 200) == "y" * 200


# --- merge_submission: notes -----------------------------------------------------------------------

def test_duplicate_answer_note_names_the_question_and_the_count(assignment, exercise):
    cell = answer_cell(exercise, Q1)
    exercise.cells.insert(exercise.cells.index(cell) + 1, copy.deepcopy(cell))
    exercise.cells.insert(exercise.cells.index(cell) + 1, copy.deepcopy(cell))
    detail = note(merge_submission(assignment, exercise), "duplicate-answer")
    assert detail.startswith(f"{Q1}: 3 answer cells") and detail.endswith("the last one was graded")


def test_recovered_answer_note_names_the_question_and_the_function_found(assignment, exercise):
    del answer_cell(exercise, Q3).metadata["ntkcourse"]
    detail = note(merge_submission(assignment, exercise), "recovered-answer")
    assert detail.startswith(f"{Q3}: no answer cell with this question id") and detail.endswith("defines relu_ntk")


def test_missing_answer_note_names_the_question(assignment, exercise):
    exercise.cells.remove(answer_cell(exercise, Q2))
    assert note(merge_submission(assignment, exercise), "missing-answer") == \
        f"{Q2}: no answer cell (graded as unanswered)"


def test_a_cell_defining_only_some_of_the_answers_names_is_not_recovered(assignment, exercise):
    """The ch00 answer for q3 defines relu_ntk; a cell defining other names is an extra cell, not the answer."""
    cell = answer_cell(exercise, Q3)
    cell.source = "def relu_ntk_draft(x1, x2, depth):\n    return 0"
    del cell.metadata["ntkcourse"]
    graded = merge_submission(assignment, exercise)
    assert sorted(p.code for p in graded.notes if p.code != "unanswered") == ["extra-cells", "missing-answer"]


def test_one_extra_cell_is_counted_in_the_singular(assignment, exercise):
    exercise.cells.insert(2, nbformat.v4.new_code_cell("scratch = 1"))
    assert note(merge_submission(assignment, exercise), "extra-cells").startswith(
        "1 code cell outside the answer cells ignored")


def test_extra_cells_are_counted(assignment, exercise):
    for source in ("scratch = 1", "scratch = 2", "scratch = 3"):
        exercise.cells.insert(2, nbformat.v4.new_code_cell(source))
    assert note(merge_submission(assignment, exercise), "extra-cells").startswith(
        "3 code cells outside the answer cells ignored")


def test_a_copy_of_a_reference_cell_is_not_an_extra_cell(assignment, exercise):
    ordinary = next(c for c in assignment.notebook.cells if c.cell_type == "code" and cell_info(c) is None)
    exercise.cells.append(nbformat.v4.new_code_cell(ordinary.source + "\n   \n"))
    assert "extra-cells" not in [p.code for p in merge_submission(assignment, exercise).notes]


def test_a_markdown_cell_is_not_an_extra_cell(assignment, exercise):
    exercise.cells.insert(2, nbformat.v4.new_markdown_cell("my notes"))
    assert "extra-cells" not in [p.code for p in merge_submission(assignment, exercise).notes]


def test_check_edited_note_names_the_question_of_the_edited_check(assignment, exercise):
    check = next(c for c in exercise.cells if cell_info(c) and cell_info(c).role == "check"
                 and cell_info(c).question == Q2)
    check.source += "\nprint('edited')"
    detail = note(merge_submission(assignment, exercise), "check-edited")
    assert detail.startswith(f"{Q2}: a check cell differs") and detail.endswith("the released check was run")


def test_a_check_cell_with_only_trailing_whitespace_changed_is_not_edited(assignment, exercise):
    check = next(c for c in exercise.cells if cell_info(c) and cell_info(c).role == "check")
    check.source = check.source.replace("\n", "   \n") + "\n\n"
    assert "check-edited" not in [p.code for p in merge_submission(assignment, exercise).notes]


def test_unanswered_note_names_each_question_left_as_the_stub(assignment, exercise):
    graded = merge_submission(assignment, exercise)
    assert [p.detail.split(":")[0] for p in graded.notes if p.code == "unanswered"] == \
        [q.id for q in assignment.questions]


def test_an_answered_question_is_not_noted_as_unanswered(assignment, exercise):
    answer_cell(exercise, Q1).source = "def relu_expectation(a, b, c):\n    return 0.5"
    graded = merge_submission(assignment, exercise)
    assert Q1 not in [p.detail.split(":")[0] for p in graded.notes if p.code == "unanswered"]


# --- merge_submission: the graded notebook ---------------------------------------------------------

def test_code_cells_list_each_cells_role_question_and_hidden_flag(assignment, exercise):
    graded = merge_submission(assignment, exercise)
    expected = [(cell_info(c).role, cell_info(c).question, bool(cell_info(c).hidden)) if cell_info(c)
                else (None, None, False) for c in assignment.notebook.cells if c.cell_type == "code"]
    assert graded.code_cells == expected and ("check", Q1, True) in expected


def test_graded_code_cells_carry_no_outputs_and_no_nbval_tags(assignment, exercise):
    reference = copy.deepcopy(assignment)
    first = next(c for c in reference.notebook.cells if c.cell_type == "code")
    first.metadata["tags"] = ["nbval-ignore-output", "keep-me"]
    first.outputs = [nbformat.v4.new_output("stream", text="old output")]
    first.execution_count = 7
    graded = merge_submission(reference, exercise).notebook
    cell = next(c for c in graded.cells if c.cell_type == "code")
    assert (cell.metadata["tags"], cell.outputs, cell.execution_count) == (["keep-me"], [], None)


def test_graded_notebook_records_the_assignment_name(assignment, exercise):
    reference = copy.deepcopy(assignment)
    reference.notebook.metadata.pop("ntkcourse", None)
    graded = merge_submission(reference, exercise).notebook
    assert graded.metadata["ntkcourse"]["assignment"] == "ch00_warmup"


def test_merging_leaves_the_reference_notebook_unchanged(assignment, exercise):
    before = nbformat.writes(assignment.notebook)
    answer_cell(exercise, Q1).source = "def relu_expectation(a, b, c):\n    return 0.5"
    merge_submission(assignment, exercise)
    assert nbformat.writes(assignment.notebook) == before


def test_reordered_note_says_the_original_order_was_graded(assignment, exercise):
    first, second = answer_cell(exercise, Q1), answer_cell(exercise, Q2)
    i, j = exercise.cells.index(first), exercise.cells.index(second)
    exercise.cells[i], exercise.cells[j] = second, first
    detail = note(merge_submission(assignment, exercise), "reordered")
    assert detail.startswith("answer cells were not in the original order") and \
        detail.endswith("graded in the original order")


def test_defined_names_of_a_broken_cell_include_capitalised_function_names():
    assert merge.defined_names("def MyKernel(x):\n    return (x\n") == {"MyKernel"}


def test_a_code_copy_of_the_reference_answer_is_an_extra_cell(assignment, exercise):
    """Only ordinary and check cells of the reference are "not extra work": the answer's code is not one."""
    exercise.cells.insert(2, nbformat.v4.new_code_cell(assignment.notebook.cells[assignment.questions[0].answer_index]
                                                        .source))
    assert "extra-cells" in [p.code for p in merge_submission(assignment, exercise).notes]


def test_a_code_cell_holding_the_text_of_a_markdown_cell_is_an_extra_cell(assignment, exercise):
    markdown = next(c for c in assignment.notebook.cells if c.cell_type == "markdown")
    exercise.cells.insert(2, nbformat.v4.new_code_cell(markdown.source))
    assert "extra-cells" in [p.code for p in merge_submission(assignment, exercise).notes]


def test_a_plain_copy_of_a_check_cell_is_not_an_extra_cell(assignment, exercise):
    check = next(c for c in assignment.notebook.cells if cell_info(c) and cell_info(c).role == "check")
    exercise.cells.append(nbformat.v4.new_code_cell(check.source))
    assert "extra-cells" not in [p.code for p in merge_submission(assignment, exercise).notes]


def test_two_extra_cells_are_counted_in_the_plural(assignment, exercise):
    for source in ("scratch = 1", "scratch = 2"):
        exercise.cells.insert(2, nbformat.v4.new_code_cell(source))
    assert note(merge_submission(assignment, exercise), "extra-cells").startswith("2 code cells outside")


def test_a_question_whose_check_cells_were_deleted_is_merged_without_an_edit_note(assignment, exercise):
    exercise.cells = [c for c in exercise.cells if not (cell_info(c) and cell_info(c).role == "check"
                                                        and cell_info(c).question == Q1)]
    assert "check-edited" not in [p.code for p in merge_submission(assignment, exercise).notes]


def test_merging_does_not_write_into_the_reference_notebooks_metadata(assignment, exercise):
    reference = copy.deepcopy(assignment)
    reference.notebook.metadata.pop("ntkcourse", None)
    merge_submission(reference, exercise)
    assert "ntkcourse" not in reference.notebook.metadata


def test_recovered_answer_note_lists_every_name_the_answer_defines(assignment, exercise):
    reference = copy.deepcopy(assignment)
    index = reference.questions[2].answer_index
    reference.notebook.cells[index].source += "\n\ndef helper_two():\n    return 2\n"
    cell = answer_cell(exercise, Q3)
    del cell.metadata["ntkcourse"]
    cell.source = "def relu_ntk(x1, x2, depth):\n    return 0\n\ndef helper_two():\n    return 2"
    assert note(merge_submission(reference, exercise), "recovered-answer").endswith("defines helper_two, relu_ntk")
