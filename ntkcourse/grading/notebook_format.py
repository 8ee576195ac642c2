"""The cell format of solution notebooks, and its validation.

A solution notebook (``solutions/<assignment>.ipynb``) is an ordinary Jupyter
notebook in which some code cells carry an ``"ntkcourse"`` entry in their
metadata:

answer cell
    ``{"role": "answer", "question": "q1_relu_expectation", "points": 2,
    "hint": "..."}``. The student fills it in. The reference code sits between
    the marker lines ``### BEGIN SOLUTION`` and ``### END SOLUTION``, inside a
    function body; ``release`` replaces each such block by a stub that raises
    ``NotImplementedError`` with the hint.
check cell
    ``{"role": "check", "question": "q1_relu_expectation"}``. Graded, and
    visible to students. It calls :func:`ntkcourse.grading.checks.checking`
    and prints one verdict line.
hidden check cell
    ``{"role": "check", "question": "...", "hidden": true}``. Graded, kept out
    of the released exercises; its ``checking(...)`` call passes
    ``hidden=True`` so that failure messages never show expected values.

Every other cell is an ordinary cell: released as is (outputs cleared), and
taken from the reference when grading. The notebook's own metadata records the
assignment name: ``{"ntkcourse": {"assignment": "ch00_warmup"}}``.

A question is worth its answer cell's points, awarded when every one of its
check cells (visible and hidden) passes.
"""
from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

METADATA_KEY = "ntkcourse"
ANSWER = "answer"
CHECK = "check"
ROLES = (ANSWER, CHECK)

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"

_QUESTION_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[ \t]*$")
_END = re.compile(r"^(?P<indent>[ \t]*)### END SOLUTION[ \t]*$")


class FormatError(ValueError):
    """A solution notebook does not follow the cell format; lists every problem found."""

    def __init__(self, path, problems):
        self.path = str(path)
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{self.path} does not follow the exercise cell format:\n{lines}")


@dataclass(frozen=True)
class CellInfo:
    """The grading metadata of one cell (``None`` is returned for ordinary cells)."""

    role: str
    question: str
    points: float = 0.0
    hidden: bool = False
    hint: str = ""


@dataclass(frozen=True)
class Question:
    """One graded question: its answer cell and its check cells (indices into the notebook)."""

    id: str
    points: float
    hint: str
    answer_index: int
    check_indices: tuple[int, ...]
    hidden_check_indices: tuple[int, ...]

    @property
    def all_check_indices(self) -> tuple[int, ...]:
        return tuple(sorted(self.check_indices + self.hidden_check_indices))


@dataclass(frozen=True)
class Assignment:
    """A validated solution notebook."""

    name: str
    path: Path
    notebook: nbformat.NotebookNode
    questions: tuple[Question, ...]
    sha256: str = ""  # of the file's bytes, as read once by load_assignment

    @property
    def max_points(self) -> float:
        return float(sum(q.points for q in self.questions))

    @property
    def question_ids(self) -> tuple[str, ...]:
        return tuple(q.id for q in self.questions)

    def question(self, question_id: str) -> Question:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(f"question={question_id!r} is not in assignment {self.name!r}; "
                       f"its questions are {list(self.question_ids)}")


def cell_info(cell) -> CellInfo | None:
    """The grading role of ``cell``, or ``None`` for an ordinary cell.

    Tolerant of anything a student's notebook may contain: metadata that is not
    a mapping, an unknown role or a missing question id all read as "ordinary".
    """
    metadata = cell.get("metadata") if hasattr(cell, "get") else None
    if not hasattr(metadata, "get"):
        return None
    entry = metadata.get(METADATA_KEY)
    if not hasattr(entry, "get"):
        return None
    role = entry.get("role")
    question = entry.get("question")
    if role not in ROLES or not isinstance(question, str) or not question:
        return None
    points = entry.get("points", 0)
    if isinstance(points, bool) or not isinstance(points, (int, float)):
        points = 0
    hint = entry.get("hint", "")
    return CellInfo(role=role, question=question, points=float(points),
                    hidden=entry.get("hidden") is True,
                    hint=hint if isinstance(hint, str) else "")


def notebook_assignment(nb) -> str | None:
    """The assignment name recorded in a notebook's metadata, if any."""
    metadata = nb.get("metadata") if hasattr(nb, "get") else None
    entry = metadata.get(METADATA_KEY) if hasattr(metadata, "get") else None
    name = entry.get("assignment") if hasattr(entry, "get") else None
    return name if isinstance(name, str) else None


def solution_blocks(source: str) -> list[tuple[int, int, str]]:
    """The ``(begin_line, end_line, indent)`` of each solution block of ``source``.

    Line numbers are 0-based and point at the marker lines. Raises
    ``ValueError`` for unbalanced or nested markers.
    """
    blocks = []
    begin = None
    for number, line in enumerate(source.splitlines()):
        if _BEGIN.match(line):
            if begin is not None:
                raise ValueError(f"line {number + 1}: {BEGIN_SOLUTION!r} inside another solution block")
            begin = (number, _BEGIN.match(line).group("indent"))
        elif _END.match(line):
            if begin is None:
                raise ValueError(f"line {number + 1}: {END_SOLUTION!r} without a {BEGIN_SOLUTION!r} before it")
            blocks.append((begin[0], number, begin[1]))
            begin = None
        elif BEGIN_SOLUTION in line or END_SOLUTION in line:
            raise ValueError(f"line {number + 1}: a solution marker must be alone on its line, got {line.strip()!r}")
    if begin is not None:
        raise ValueError(f"line {begin[0] + 1}: {BEGIN_SOLUTION!r} is never closed by {END_SOLUTION!r}")
    return blocks


def read_notebook(path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def _describe(value) -> str:
    kind = {str: "the string", bool: "the boolean", type(None): "null"}.get(type(value), type(value).__name__)
    return kind if value is None else f"{kind} {value!r}"


def _blocks_outside_functions(source: str, blocks) -> list[int]:
    """The 0-based begin lines of ``blocks`` that no ``def`` encloses (``ValueError`` if ``source`` does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise ValueError(f"the cell does not parse as Python (line {error.lineno}: {error.msg})") from None
    spans = [(node.lineno, node.end_lineno or node.lineno) for node in ast.walk(tree)
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return [begin for begin, _end, _indent in blocks
            if not any(first < begin + 1 <= last for first, last in spans)]


def validate_solution(nb, name: str) -> list[str]:
    """Every way in which ``nb`` breaks the cell format (an empty list when it follows it)."""
    problems = []
    recorded = notebook_assignment(nb)
    if recorded is not None and recorded != name:
        problems.append(f"notebook metadata names assignment {recorded!r}, but the file is for {name!r}")
    answers: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        where = f"cell {index}"
        entry = cell.get("metadata", {}).get(METADATA_KEY)
        info = cell_info(cell)
        has_markers = BEGIN_SOLUTION in cell.source or END_SOLUTION in cell.source
        if entry is not None and info is None:
            problems.append(f"{where}: metadata {METADATA_KEY!r} must have a role in {list(ROLES)} "
                            f"and a question id, got {dict(entry)!r}")
            continue
        if info is not None and "hidden" in entry and type(entry.get("hidden")) is not bool:
            problems.append(f"{where}: metadata 'hidden' must be true or false (a JSON boolean), got "
                            f"{_describe(entry.get('hidden'))}; a check that is not exactly true is released "
                            "to students")
        if info is None:
            if has_markers:
                problems.append(f"{where}: solution markers outside an answer cell")
            continue
        if cell.cell_type != "code":
            problems.append(f"{where}: a {info.role} cell must be a code cell, got a {cell.cell_type} cell")
            continue
        if not _QUESTION_ID.match(info.question):
            problems.append(f"{where}: question id {info.question!r} must start with a letter and use only "
                            "letters, digits, '_', '-' and '.' (at most 64 characters)")
        if info.role == ANSWER:
            if info.question in answers:
                problems.append(f"{where}: question {info.question!r} already has an answer cell "
                                f"(cell {answers[info.question]})")
            answers[info.question] = index
            raw_points = entry.get("points")
            if type(raw_points) not in (int, float) or not raw_points > 0:
                problems.append(f"{where}: answer cell for {info.question!r}: 'points' must be a positive number, "
                                f"got {_describe(raw_points) if 'points' in entry else 'no points'}")
            try:
                blocks = solution_blocks(cell.source)
            except ValueError as error:
                problems.append(f"{where}: {error}")
                continue
            if not blocks:
                problems.append(f"{where}: answer cell for {info.question!r} has no "
                                f"{BEGIN_SOLUTION!r} ... {END_SOLUTION!r} block")
            for begin, _end, indent in blocks:
                # A stub at the top level would raise as soon as a student runs
                # the cell, and "Run all" would stop there; inside a function it
                # raises only when the function is called, from a check.
                if not indent:
                    problems.append(f"{where}: the solution block at line {begin + 1} must be inside a "
                                    "function body (indented), so that the released stub raises only "
                                    "when the function is called")
            try:
                outside = [b for b in _blocks_outside_functions(cell.source, blocks)
                           if any(b == begin and indent for begin, _e, indent in blocks)]
            except ValueError as error:
                problems.append(f"{where}: {error}")
                outside = []
            for begin in outside:
                problems.append(f"{where}: the solution block at line {begin + 1} is indented but not inside a "
                                "function (under `if`, `for`, `with` ...?): the released stub would raise as "
                                "soon as the cell runs and stop Run All; put it in a function body")
        else:
            if has_markers:
                problems.append(f"{where}: solution markers in a check cell")
            if info.question not in answers:
                problems.append(f"{where}: check cell for {info.question!r} comes before (or without) "
                                "that question's answer cell")
            if f'checking("{info.question}"' not in cell.source and f"checking('{info.question}'" not in cell.source:
                problems.append(f"{where}: check cell for {info.question!r} must call "
                                f'checking("{info.question}", ...)')
            if info.hidden and "hidden=True" not in cell.source:
                problems.append(f"{where}: hidden check cell for {info.question!r} must call "
                                f'checking("{info.question}", hidden=True) so that its messages '
                                "never show expected values")
    checked = {cell_info(c).question for c in nb.cells if cell_info(c) and cell_info(c).role == CHECK}
    for question in answers:
        if question not in checked:
            problems.append(f"question {question!r} has no check cell, so it could never earn points")
    if not answers:
        problems.append("no answer cell: nothing to grade")
    return problems


def load_assignment(path) -> Assignment:
    """Read and validate the solution notebook at ``path``; its name is the file's stem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no solution notebook at {path} (expected solutions/<assignment>.ipynb)")
    data = path.read_bytes()
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as error:  # nbformat raises many types for a file that is not a notebook
        raise FormatError(path, [f"the file is not a Jupyter notebook ({type(error).__name__}: "
                                 f"{' '.join(str(error).split())[:200]})"]) from None
    problems = validate_solution(nb, path.stem)
    if problems:
        raise FormatError(path, problems)
    questions = []
    for index, cell in enumerate(nb.cells):
        info = cell_info(cell)
        if info is None or info.role != ANSWER:
            continue
        visible, hidden = [], []
        for j, other in enumerate(nb.cells):
            other_info = cell_info(other)
            if other_info and other_info.role == CHECK and other_info.question == info.question:
                (hidden if other_info.hidden else visible).append(j)
        questions.append(Question(id=info.question, points=info.points, hint=info.hint,
                                  answer_index=index, check_indices=tuple(visible),
                                  hidden_check_indices=tuple(hidden)))
    return Assignment(name=path.stem, path=path, notebook=nb, questions=tuple(questions),
                      sha256=hashlib.sha256(data).hexdigest())


def find_assignment(solutions_dir, name: str) -> Path:
    """The solution notebook of assignment ``name`` in ``solutions_dir``."""
    path = Path(solutions_dir) / f"{name}.ipynb"
    if not path.is_file():
        available = sorted(p.stem for p in Path(solutions_dir).glob("*.ipynb"))
        raise FileNotFoundError(f"assignment={name!r}: no {path}; the assignments in {solutions_dir} "
                                f"are {available}")
    return path
