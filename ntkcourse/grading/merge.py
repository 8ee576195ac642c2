"""From a submitted file to the notebook that is graded.

The graded notebook is the reference solution with its answer cells replaced by
the student's, matched by question id: every other cell (ordinary cells, check
cells, hidden checks) and every output that nbval compares come from the
reference, so a student who edits or deletes a check cell changes nothing.

What the student did to the notebook's structure is reported as notes, never
as a crash: answer cells missing, duplicated (the last one wins, as it would
when running the notebook top to bottom), moved, or with their id changed
(found again by the names they define), extra cells (ignored), edited check
cells (the reference copy runs).
"""
from __future__ import annotations

import ast
import copy
import json
import re
import warnings
from dataclasses import dataclass, field

import nbformat

from .notebook_format import ANSWER, CHECK, METADATA_KEY, Assignment, cell_info, notebook_assignment
from .release import stub_source
from .results import Problem
from .submissions import MAX_SUBMISSION_BYTES

# Codes of the problems a submission can have. The first group means the grade
# may not reflect the student's work and the instructor should look (status
# "error"); the second is reported in the feedback but the grade stands ("ok").
ERROR_CODES = ("not-json", "not-a-notebook", "too-large", "too-many-cells", "empty-notebook", "wrong-assignment",
               "timeout", "kernel-died", "memory-limit", "output-limit", "process-limit", "grader-error", "unreadable",
               "not-a-regular-file", "duplicate-student")
NOTE_CODES = ("missing-answer", "duplicate-answer", "recovered-answer", "reordered", "extra-cells",
              "check-edited", "unanswered", "cell-error", "leftover-processes")

# A notebook of the course has a few dozen cells; 2000 leaves room for any
# honest one and keeps a merge cheap.
MAX_CELLS = 2000


@dataclass
class GradedNotebook:
    """The notebook to run, and what each of its code cells is (index = nbval's cell number)."""

    notebook: nbformat.NotebookNode
    code_cells: list  # [(role or None, question or None, hidden)]
    notes: list = field(default_factory=list)


def read_submission(data: bytes, assignment_name: str):
    """``(notebook, None)`` for a usable submission, ``(None, Problem)`` otherwise."""
    if len(data) > MAX_SUBMISSION_BYTES:
        return None, Problem("too-large", f"{len(data) / 2**20:.0f} MB; the limit is "
                                          f"{MAX_SUBMISSION_BYTES // 2**20} MB")
    try:
        raw = json.loads(data.decode("utf-8"))
    except RecursionError:
        return None, Problem("not-json", "the file's JSON is nested too deeply to be a notebook")
    except (UnicodeDecodeError, ValueError) as error:
        return None, Problem("not-json", f"the file is not JSON, so not a notebook ({_short(error)})")
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", []), list) or "nbformat" not in raw:
        return None, Problem("not-a-notebook", "the file is JSON but not a Jupyter notebook "
                                               "(no 'nbformat' and 'cells')")
    if len(raw.get("cells", [])) > MAX_CELLS:
        return None, Problem("too-many-cells", f"{len(raw['cells'])} cells; the limit is {MAX_CELLS}")
    try:
        with warnings.catch_warnings():
            # Not nbformat.reads: it validates and logs every schema complaint.
            # Only the cells' type and source matter here, checked below.
            warnings.simplefilter("ignore")
            nb = nbformat.convert(nbformat.reader.reads(data.decode("utf-8")), 4)
        cells = nb.get("cells")
        if not isinstance(cells, list):
            raise ValueError("'cells' is not a list")
        for cell in cells:
            if not hasattr(cell, "get") or cell.get("cell_type") not in ("code", "markdown", "raw"):
                raise ValueError("a cell is not a code, markdown or raw cell")
            if not isinstance(cell.get("source", ""), str):
                raise ValueError("a cell's source is not text")
    except Exception as error:  # nbformat raises many types for malformed notebooks
        return None, Problem("not-a-notebook", f"the notebook cannot be read ({_short(error)})")
    if not nb.cells:
        return None, Problem("empty-notebook", "the notebook has no cells")
    recorded = notebook_assignment(nb)
    if recorded is not None and recorded != assignment_name:
        return None, Problem("wrong-assignment", f"this notebook is for assignment {recorded!r}, "
                                                 f"not {assignment_name!r}")
    return nb, None


def _short(error, limit=200):
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def defined_names(source: str) -> set[str]:
    """Top-level function, class and variable names that ``source`` defines."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        # A cell with a syntax error still shows which function it meant to define.
        return set(re.findall(r"^(?:async\s+)?def\s+([A-Za-z_]\w*)", source, flags=re.MULTILINE))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _normal(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def merge_submission(assignment: Assignment, submission) -> GradedNotebook:
    """The notebook to grade: ``assignment``'s cells with ``submission``'s answers.

    Check cells are the reference's, without outputs: what they report is
    judged by the grader (:mod:`~ntkcourse.grading.judging`).
    """
    reference = assignment.notebook
    notes = []
    by_question: dict[str, list[int]] = {}
    unclaimed = []
    # Copies of the reference's ordinary and check cells are not "extra" work.
    reference_sources = {_normal(c.source) for c in reference.cells if c.cell_type == "code"
                         and not (cell_info(c) and cell_info(c).role == ANSWER)}
    submitted_checks: dict[str, list[str]] = {}
    for index, cell in enumerate(submission.cells):
        info = cell_info(cell)
        if info is not None and info.role == ANSWER and info.question in assignment.question_ids \
                and cell.get("cell_type") == "code":
            by_question.setdefault(info.question, []).append(index)
        elif info is not None and info.role == CHECK:
            submitted_checks.setdefault(info.question, []).append(cell.source)
        elif cell.get("cell_type") == "code" and _normal(cell.source) not in reference_sources:
            unclaimed.append(index)

    chosen: dict[str, int] = {}
    for question in assignment.questions:
        indices = by_question.get(question.id, [])
        if len(indices) > 1:
            notes.append(Problem("duplicate-answer", f"{question.id}: {len(indices)} answer cells; "
                                                     "the last one was graded"))
        if indices:
            chosen[question.id] = indices[-1]
            continue
        wanted = defined_names(reference.cells[question.answer_index].source)
        candidates = [i for i in unclaimed if wanted and wanted <= defined_names(submission.cells[i].source)]
        if candidates:
            chosen[question.id] = candidates[-1]
            unclaimed.remove(candidates[-1])
            notes.append(Problem("recovered-answer", f"{question.id}: no answer cell with this question id; "
                                                     f"graded the cell that defines {', '.join(sorted(wanted))}"))
        else:
            notes.append(Problem("missing-answer", f"{question.id}: no answer cell (graded as unanswered)"))

    order = [q.id for q in assignment.questions if q.id in chosen]
    if sorted(order, key=lambda q: chosen[q]) != order:
        notes.append(Problem("reordered", "answer cells were not in the original order; "
                                          "they were graded in the original order"))
    if unclaimed:
        notes.append(Problem("extra-cells", f"{len(unclaimed)} code cell{'s' if len(unclaimed) > 1 else ''} "
                                            "outside the answer cells ignored (only answer cells are graded)"))
    for question in assignment.questions:
        released = [reference.cells[i].source for i in question.all_check_indices]
        edited = [s for s in submitted_checks.get(question.id, []) if _normal(s) not in map(_normal, released)]
        if edited:
            notes.append(Problem("check-edited", f"{question.id}: a check cell differs from the released "
                                                 "one; the released check was run"))

    cells, code_cells = [], []
    for index, cell in enumerate(reference.cells):
        info = cell_info(cell)
        new = copy.deepcopy(cell)
        if cell.cell_type == "code":
            new.outputs, new.execution_count = [], None
            tags = [t for t in new.metadata.get("tags", []) if not str(t).startswith("nbval-")]
            new.metadata["tags"] = tags
            if info is not None and info.role == ANSWER:
                question = assignment.question(info.question)
                stub = stub_source(cell.source, question.id, question.hint)
                if question.id in chosen:
                    new.source = submission.cells[chosen[question.id]].source
                    if _normal(new.source) == _normal(stub):
                        notes.append(Problem("unanswered", f"{question.id}: the answer cell is the released stub"))
                else:
                    new.source = stub
            code_cells.append((info.role if info else None, info.question if info else None,
                               bool(info and info.hidden)))
        cells.append(new)
    graded = copy.deepcopy(reference)
    graded.cells = cells
    graded.metadata.setdefault(METADATA_KEY, {})["assignment"] = assignment.name
    return GradedNotebook(notebook=graded, code_cells=code_cells, notes=notes)
