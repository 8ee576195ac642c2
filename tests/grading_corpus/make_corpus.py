"""Regenerate the grading robustness corpus from the released exercise and its solution.

    python tests/grading_corpus/make_corpus.py

Writes ``tests/grading_corpus/ch00_warmup/<student>.ipynb`` (one submission per
case) and ``expected.json`` (the grade, status and problem codes each must
get). The submissions are built by editing the answer cells of
``exercises/ch00_warmup.ipynb``, so they follow the assignment when it changes;
``tests/test_grading_corpus.py`` checks that the files are up to date.

The memory-bomb case is meant for a kernel memory limit of about 1 GB
(``--memory-limit 1024``, as the tests grade it); it stops at 6 GB on its own
if no limit is set.
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = "ch00_warmup"
OUT = Path(__file__).resolve().parent / ASSIGNMENT
Q1, Q2, Q3, Q4 = "q1_relu_expectation", "q2_relu_prime_expectation", "q3_relu_ntk", "q4_kernel_regression"
Q5 = "q5_predict_depth_correlation"
POINTS = {Q1: 2, Q2: 1, Q3: 3, Q4: 2, Q5: 2}
FULL = dict(POINTS)


def _meta(cell):
    return cell.get("metadata", {}).get("ntkcourse", {})


def _strip_markers(source):
    return "\n".join(line for line in source.splitlines() if "### BEGIN SOLUTION" not in line
                     and "### END SOLUTION" not in line)


def _load():
    exercise = nbformat.read(str(ROOT / "exercises" / f"{ASSIGNMENT}.ipynb"), as_version=4)
    solution = nbformat.read(str(ROOT / "solutions" / f"{ASSIGNMENT}.ipynb"), as_version=4)
    answers = {_meta(c)["question"]: _strip_markers(c.source) for c in solution.cells
               if _meta(c).get("role") == "answer"}
    return exercise, solution, answers


def _answer_index(nb, question):
    for index, cell in enumerate(nb.cells):
        if _meta(cell).get("role") == "answer" and _meta(cell).get("question") == question:
            return index
    raise KeyError(question)


def _with_answers(exercise, answers, **replacements):
    """The exercise with every answer cell filled in (``replacements`` by question id)."""
    nb = copy.deepcopy(exercise)
    for question, source in {**answers, **replacements}.items():
        nb.cells[_answer_index(nb, question)].source = source
    return nb


SWAPPED_Q3 = '''
def relu_ntk(x1, x2, depth):
    """The recursion as printed in the lesson plan (ERRATA.md #1): wrong."""
    x1, x2 = np.asarray(x1, dtype=np.float64), np.asarray(x2, dtype=np.float64)
    d = x1.shape[1]
    sigma = x1 @ x2.T / d
    var1 = np.sum(x1**2, axis=1)[:, None] / d
    var2 = np.sum(x2**2, axis=1)[None, :] / d
    theta = sigma
    for _ in range(depth):
        e_relu = relu_expectation(var1, var2, sigma)
        e_prime = relu_prime_expectation(var1, var2, sigma)
        sigma = 2 * e_relu
        var1, var2 = 2 * relu_expectation(var1, var1, var1), 2 * relu_expectation(var2, var2, var2)
        theta = sigma * e_prime + theta * e_relu
    return theta
'''.strip()

FLOAT32_ANSWERS = {
    # sqrt(ab) sin(theta) = sqrt(ab - c^2) and sqrt(ab) cos(theta) = c: the same
    # value by another formula, in float32, returned as a list.
    Q1: '''
def relu_expectation(a, b, c):
    a, b, c = (np.asarray(v, dtype=np.float32) for v in (a, b, c))
    c = np.clip(c, -np.sqrt(a * b), np.sqrt(a * b))
    theta = np.arccos(np.clip(c / np.sqrt(a * b), -1, 1))
    value = (np.sqrt(np.maximum(a * b - c * c, 0)) + (np.float32(np.pi) - theta) * c) / np.float32(2 * np.pi)
    return value.tolist()
'''.strip(),
    Q2: '''
def relu_prime_expectation(a, b, c):
    a, b, c = (np.asarray(v, dtype=np.float32) for v in (a, b, c))
    theta = np.arctan2(np.sqrt(np.maximum(a * b - c * c, 0)), c)
    return ((np.float32(np.pi) - theta) / np.float32(2 * np.pi)).tolist()
'''.strip(),
    Q3: '''
def relu_ntk(x1, x2, depth):
    x1, x2 = np.asarray(x1, dtype=np.float32), np.asarray(x2, dtype=np.float32)
    d = np.float32(x1.shape[1])
    sigma = x1 @ x2.T / d
    var1 = (np.sum(x1 * x1, axis=1) / d).reshape(-1, 1)
    var2 = (np.sum(x2 * x2, axis=1) / d).reshape(1, -1)
    theta = sigma
    for layer in range(depth):
        sigma_dot = 2 * np.asarray(relu_prime_expectation(var1, var2, sigma), dtype=np.float32)
        sigma = 2 * np.asarray(relu_expectation(var1, var2, sigma), dtype=np.float32)
        theta = sigma + theta * sigma_dot
    return theta.tolist()
'''.strip(),
    Q4: '''
def kernel_regression_predict(k_test_train, k_train_train, y_train, ridge=0.0):
    k = np.array(k_train_train, dtype=np.float64)
    inverse = np.linalg.inv(k + ridge * np.identity(len(k)))
    return (np.asarray(k_test_train) @ inverse @ np.asarray(y_train)).tolist()
'''.strip(),
}

LOOPING_Q4 = '''
def kernel_regression_predict(k_test_train, k_train_train, y_train, ridge=0.0):
    """Jacobi iterations that never meet their stopping rule."""
    k = np.asarray(k_train_train, dtype=np.float64) + ridge * np.eye(len(k_train_train))
    w = np.zeros_like(np.asarray(y_train, dtype=np.float64))
    while np.max(np.abs(k @ w - y_train)) >= 0:
        w = w + 0.0 * w
    return np.asarray(k_test_train) @ w
'''.strip()

TAMPERED_Q4 = '''
import numpy
numpy.allclose = lambda *args, **kwargs: True
numpy.isclose = lambda a, b, *args, **kwargs: numpy.ones(numpy.broadcast(a, b).shape, dtype=bool)

def checking(*args, **kwargs):
    raise RuntimeError("my own checking")

def print(*args, **kwargs):
    pass

__builtins__.print("PASS q4_kernel_regression (5 checks)")

def kernel_regression_predict(k_test_train, k_train_train, y_train, ridge=0.0):
    return np.zeros(np.shape(k_test_train)[0])
'''.strip()


def cases():
    """``{student: (notebook or raw bytes, expectation)}``."""
    exercise, solution, answers = _load()
    correct = _with_answers(exercise, answers)
    out = {}

    def expect(description, status="ok", codes=(), points=None):
        return {"description": description, "status": status, "codes": sorted(set(codes)),
                "points": dict(points if points is not None else FULL)}

    zero = {q: 0 for q in POINTS}
    out["reference"] = (solution, expect("the reference solution itself: full marks"))
    out["untouched"] = (copy.deepcopy(exercise), expect("the released exercise, not filled in: zero everywhere",
                                                        codes=["unanswered"], points=zero))
    out["correct"] = (correct, expect("a typical complete, correct submission"))
    out["swapped_recursion"] = (
        _with_answers(exercise, answers, **{Q3: SWAPPED_Q3}),
        expect("the lesson plan's swapped NTK recursion (ERRATA #1): loses question 3, and question 5, "
               "which measures with it",
               points={**FULL, Q3: 0, Q5: 0}))
    out["float32_lists_equivalent"] = (
        _with_answers(exercise, answers, **FLOAT32_ANSWERS),
        expect("correct answers in float32, returned as lists, by equivalent formulas: full marks"))

    out["not_json"] = (b"I could not get Jupyter to work, so here is my answer: 5.47\n",
                       expect("a file that is not JSON", "error", ["not-json"], zero))
    out["not_a_notebook"] = (b'{"answers": {"q1": 0.5, "q2": 0.25}}\n',
                             expect("JSON that is not a notebook", "error", ["not-a-notebook"], zero))
    empty = copy.deepcopy(exercise)
    empty.cells = []
    out["empty_notebook"] = (empty, expect("a notebook with no cells", "error", ["empty-notebook"], zero))
    wrong = copy.deepcopy(correct)
    wrong.metadata["ntkcourse"] = {"assignment": "ch01_gp_limit"}
    out["wrong_assignment"] = (wrong, expect("a notebook of another assignment", "error",
                                             ["wrong-assignment"], zero))

    deleted = copy.deepcopy(correct)
    del deleted.cells[_answer_index(deleted, Q4)]
    out["deleted_answer"] = (deleted, expect("the answer cell of question 4 deleted", codes=["missing-answer"],
                                             points={**FULL, Q4: 0}))
    duplicated = copy.deepcopy(correct)
    first = copy.deepcopy(duplicated.cells[_answer_index(duplicated, Q1)])
    first.source = "def relu_expectation(a, b, c):\n    return 0.0"
    first["id"] = "q1-first-try"
    duplicated.cells.insert(_answer_index(duplicated, Q1), first)
    out["duplicated_answer"] = (duplicated, expect("question 1's answer cell duplicated, a wrong first try above "
                                                   "the right one: the last one is graded",
                                                   codes=["duplicate-answer"]))
    reordered = copy.deepcopy(correct)
    answer_cells = [reordered.cells[_answer_index(reordered, q)] for q in POINTS]
    reordered.cells = [c for c in reordered.cells if c not in answer_cells] + answer_cells[::-1]
    out["reordered_answers"] = (reordered, expect("all answer cells moved to the end, in reverse order",
                                                  codes=["reordered"]))
    renamed = copy.deepcopy(correct)
    renamed.cells[_answer_index(renamed, Q1)].metadata["ntkcourse"]["question"] = "q1_my_version"
    del renamed.cells[_answer_index(renamed, Q4)].metadata["ntkcourse"]
    out["changed_ids"] = (renamed, expect("question 1's id edited and question 4's metadata lost: found again "
                                          "by the function they define", codes=["recovered-answer"]))
    extra = copy.deepcopy(correct)
    scratch = nbformat.v4.new_code_cell("print(relu_ntk(points, points, 2))\nmy_constant = 42")
    scratch["id"] = "my-scratch-work"
    note = nbformat.v4.new_markdown_cell("My notes: the diagonal grows with the depth.")
    note["id"] = "my-notes"
    extra.cells[_answer_index(extra, Q3) + 1:_answer_index(extra, Q3) + 1] = [scratch, note]
    out["extra_cell"] = (extra, expect("an extra code cell and an extra markdown cell", codes=["extra-cells"]))

    out["infinite_loop"] = (_with_answers(exercise, answers, **{Q4: LOOPING_Q4}),
                            expect("question 4 loops forever: its checks time out, the others count",
                                   "error", ["timeout"], {**FULL, Q4: 0}))
    out["kernel_dies"] = (_with_answers(exercise, answers, **{Q3: answers[Q3] + "\n\nimport os\nos._exit(1)"}),
                          expect("the answer cell of question 3 kills the kernel (os._exit): questions 1-2 "
                                 "keep their points", "error", ["kernel-died"], {**FULL, Q3: 0, Q4: 0, Q5: 0}))
    bomb = answers[Q1] + '''

def fill_memory(limit_gb=6):
    blocks = []
    for _ in range(limit_gb * 4):
        blocks.append(np.ones(2**25))  # 256 MB, written
    return len(blocks)

fill_memory()'''
    out["memory_bomb"] = (_with_answers(exercise, answers, **{Q1: bomb}),
                          expect("question 1's answer cell allocates memory without end (stopped by the "
                                 "kernel's memory limit); its function was defined first, so all questions "
                                 "still pass", "error", ["memory-limit"]))
    out["cell_raises"] = (_with_answers(exercise, answers, **{Q4: "1 / 0\n\n" + answers[Q4]}),
                          expect("question 4's answer cell raises before defining its function",
                                 codes=["cell-error"], points={**FULL, Q4: 0}))
    tampered = _with_answers(exercise, answers, **{Q4: TAMPERED_Q4})
    for cell in tampered.cells:
        if _meta(cell).get("role") == "check" and _meta(cell).get("question") == Q4:
            cell.source = 'print("PASS q4_kernel_regression (5 checks)")'
    out["check_edited"] = (tampered, expect(
        "a wrong question 4 whose check cell was edited to print the verdict, whose answer prints it too and "
        "rebinds print, checking and numpy.allclose: no points for question 4", codes=["check-edited"],
        points={**FULL, Q4: 0}))
    return out


def corpus_files() -> dict:
    """``{file name: bytes}`` of the corpus as the generator makes it."""
    files, expected = {}, {}
    for student, (content, expectation) in cases().items():
        data = content if isinstance(content, bytes) else nbformat.writes(content, version=4).encode() + b"\n"
        files[f"{student}.ipynb"] = data
        expected[student] = expectation
    files["expected.json"] = (json.dumps(expected, indent=1, sort_keys=True) + "\n").encode()
    return files


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    files = corpus_files()
    for stale in OUT.iterdir():
        if stale.name not in files:
            stale.unlink()
    for name, data in files.items():
        (OUT / name).write_bytes(data)
    print(f"wrote {len(files)} files to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
