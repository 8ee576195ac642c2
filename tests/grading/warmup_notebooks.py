"""The warm-up assignment (ch00) as the merge tests use it: its parsed reference, its released exercise,
and a way to find a question's answer cell."""
from pathlib import Path

import nbformat

from ntkcourse.grading.notebook_format import cell_info, load_assignment

ROOT = Path(__file__).resolve().parents[2]


def warmup_assignment():
    return load_assignment(ROOT / "solutions" / "ch00_warmup.ipynb")


def warmup_exercise():
    return nbformat.read(str(ROOT / "exercises" / "ch00_warmup.ipynb"), as_version=4)


def answer_cell(nb, question):
    return next(c for c in nb.cells if cell_info(c) and cell_info(c).role == "answer"
                and cell_info(c).question == question)
