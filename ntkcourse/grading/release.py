"""Release: generate the student notebooks in ``exercises/`` from ``solutions/``.

For each solution notebook: every solution block of an answer cell becomes a
stub that raises ``NotImplementedError`` with the question's hint, hidden check
cells are dropped, outputs and execution counts are cleared, and cell metadata
is reduced to what students need. The output depends on the solution notebook
only (cell ids are kept, JSON keys sorted), so releasing twice changes nothing,
and :func:`stale_exercises` can tell CI that ``exercises/`` is out of date.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from .notebook_format import (ANSWER, CHECK, METADATA_KEY, Assignment, cell_info, load_assignment,
                              solution_blocks)

# Cell metadata kept in the exercises; execution timings, collapsed/scrolled
# states and the like are dropped so that rerunning a solution does not change
# the release.
_KEPT_CELL_METADATA = ("tags", "slideshow")
_KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info", "jupytext")


def stub_source(source: str, question: str, hint: str) -> str:
    """``source`` with every solution block replaced by a ``NotImplementedError`` stub."""
    lines = source.splitlines()
    message = f"{question} is not answered yet."
    if hint:
        message += f" Hint: {hint}"
    out, last = [], 0
    for begin, end, indent in solution_blocks(source):
        out.extend(lines[last:begin])
        out.append(f"{indent}# YOUR ANSWER HERE: replace the next line.")
        out.append(f"{indent}raise NotImplementedError({message!r})")
        last = end + 1
    out.extend(lines[last:])
    return "\n".join(out)


def _cell_id(cell, index):
    return cell.get("id") or f"cell-{index}"


def release_notebook(assignment: Assignment) -> nbformat.NotebookNode:
    """The exercise notebook for ``assignment`` (a new notebook; the solution is not modified)."""
    source_nb = assignment.notebook
    nb = nbformat.v4.new_notebook()
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = {key: copy.deepcopy(source_nb.metadata[key])
                   for key in _KEPT_NOTEBOOK_METADATA if key in source_nb.metadata}
    nb.metadata[METADATA_KEY] = {"assignment": assignment.name}
    hints = {q.id: q.hint for q in assignment.questions}
    for index, cell in enumerate(source_nb.cells):
        info = cell_info(cell)
        if info is not None and info.role == CHECK and info.hidden:
            continue
        metadata = {key: copy.deepcopy(cell.metadata[key]) for key in _KEPT_CELL_METADATA
                    if key in cell.metadata}
        source = cell.source
        if info is not None:
            entry = {"role": info.role, "question": info.question}
            if info.role == ANSWER:
                entry["points"] = cell.metadata[METADATA_KEY]["points"]
                source = stub_source(source, info.question, hints[info.question])
            else:
                # Jupyter honours these flags: a check cell cannot be edited or
                # deleted by accident (grading uses the reference copy anyway).
                metadata["editable"] = False
                metadata["deletable"] = False
            metadata[METADATA_KEY] = entry
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(source=source, metadata=metadata)
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(source=source, metadata=metadata)
            if "attachments" in cell:
                new["attachments"] = copy.deepcopy(cell["attachments"])
        else:
            new = nbformat.v4.new_raw_cell(source=source, metadata=metadata)
        new["id"] = _cell_id(cell, index)
        nb.cells.append(new)
    nbformat.validate(nb)
    return nb


def exercise_text(assignment: Assignment) -> str:
    """The exact file content of the released exercise (what ``release`` writes)."""
    text = nbformat.writes(release_notebook(assignment), version=4)
    return text if text.endswith("\n") else text + "\n"


def _assignments(solutions_dir, names):
    solutions_dir = Path(solutions_dir)
    if names:
        return [solutions_dir / f"{name}.ipynb" for name in names]
    paths = sorted(solutions_dir.glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no solution notebooks (*.ipynb) in {solutions_dir}")
    return paths


def release(solutions_dir="solutions", exercises_dir="exercises", names=None) -> list[Path]:
    """Write the exercises of every assignment (or of ``names``); return the files that changed.

    A full release (no ``names``) also removes the exercises that have no
    solution notebook any more, exactly those that :func:`stale_exercises`
    reports as orphans; they are in the returned list (and no longer exist).
    """
    exercises_dir = Path(exercises_dir)
    exercises_dir.mkdir(parents=True, exist_ok=True)
    changed = []
    paths = _assignments(solutions_dir, names)
    for path in paths:
        text = exercise_text(load_assignment(path))
        target = exercises_dir / path.name
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            changed.append(target)
    if not names:
        for orphan in _orphans(exercises_dir, paths):
            orphan.unlink()
            changed.append(orphan)
    return changed


def _orphans(exercises_dir: Path, paths) -> list[Path]:
    expected = {p.name for p in paths}
    return [extra for extra in sorted(exercises_dir.glob("*.ipynb")) if extra.name not in expected]


def stale_exercises(solutions_dir="solutions", exercises_dir="exercises", names=None) -> list[str]:
    """Why ``exercises_dir`` does not match a fresh release (an empty list when it does)."""
    exercises_dir = Path(exercises_dir)
    problems = []
    paths = _assignments(solutions_dir, names)
    for path in paths:
        target = exercises_dir / path.name
        if not target.is_file():
            problems.append(f"{target} is missing")
        elif target.read_text(encoding="utf-8") != exercise_text(load_assignment(path)):
            problems.append(f"{target} differs from a release of {path}")
    if not names:
        for extra in _orphans(exercises_dir, paths):
            problems.append(f"{extra} has no solution notebook in {solutions_dir} (`release` removes it)")
    return problems
