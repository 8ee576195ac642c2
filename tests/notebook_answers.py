"""Answer cells of the course's notebooks, for tests: read them, run them, and
build submissions from them.

* :func:`answer_sources` maps each question id of a notebook to the code of its
  answer cell (cells found by their ``ntkcourse`` metadata, never by position).
* :func:`solution_namespace` runs a reference solution's ordinary and answer
  cells (not its checks) and returns the names they define, so that a test can
  call the answer functions directly.
* :func:`submission` fills the released exercise with answer code, the way a
  student hands it in; :func:`with_outputs_as` rewrites a solution's answer so
  that its functions return float32 arrays, lists or JAX arrays, and
  :func:`replaced` plants a mistake by replacing one exact piece of code.
"""
from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# How each kind of alternative answer converts a returned value (NumPy array,
# scalar, list). Strings, integers and booleans (predictions) are returned as
# they are, and so are returned functions (ch05's lazy model is called inside
# jax.jit, where a NumPy conversion cannot run).
CONVERSIONS = {
    "float32": "np.asarray(value, dtype=np.float32)",
    "list": "np.asarray(value, dtype=np.float64).tolist()",
    "jax": "jax.numpy.asarray(value)",
}

_WRAPPER = '''

def _answer_variant(value):
    import jax
    import numpy as np
    if isinstance(value, tuple):
        return tuple(_answer_variant(v) for v in value)
    if isinstance(value, (str, bool, int)) or callable(value):
        return value
    return {conversion}


def _answer_wrap(function):
    def wrapped(*args, **kwargs):
        return _answer_variant(function(*args, **kwargs))
    return wrapped
'''


def read(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _role(cell):
    meta = cell.get("metadata", {}).get("ntkcourse") or {}
    return meta.get("role"), meta.get("question"), bool(meta.get("hidden", False))


def answer_sources(notebook: dict) -> dict:
    """``{question id: source of its answer cell}``, in notebook order."""
    out = {}
    for cell in notebook["cells"]:
        role, question, _ = _role(cell)
        if role == "answer":
            assert question not in out, f"two answer cells for {question}"
            out[question] = "".join(cell["source"])
    return out


def reference_labels(notebook: dict) -> set:
    """Labels of the ``close_to_reference`` calls of a notebook's visible check cells.

    Only those checks behave differently for a student (they compare at grading only).
    """
    labels = set()
    for cell in notebook["cells"]:
        role, _, hidden = _role(cell)
        if role == "check" and not hidden:
            labels |= set(re.findall(r'close_to_reference\((?:[^"]|"[^"]*")*?label="([^"]+)"', "".join(cell["source"])))
    return labels


def defined_functions(source: str) -> list:
    """Names of the functions an answer cell defines at its top level."""
    return [node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)]


def solution_namespace(name: str) -> dict:
    """Run ``solutions/<name>.ipynb`` without its check cells; return its global names.

    Display calls of ordinary cells (figures) are swallowed.
    """
    namespace = {"display": lambda *args, **kwargs: None, "__name__": f"solution_{name}"}
    for cell in read(ROOT / "solutions" / f"{name}.ipynb")["cells"]:
        if cell["cell_type"] != "code" or _role(cell)[0] == "check":
            continue
        exec(compile("".join(cell["source"]), f"<{name} cell>", "exec"), namespace)
    return namespace


def with_outputs_as(source: str, kind: str, skip=()) -> str:
    """The answer ``source`` with each of its functions (except ``skip``) returning ``kind`` values.

    ``kind`` is ``"float32"`` (and then the computation itself runs in float32
    wherever the reference casts to float64), ``"list"`` or ``"jax"``.
    """
    if kind == "float32":
        source = source.replace("np.float64", "np.float32").replace("jnp.float64", "jnp.float32")
    lines = [source, _WRAPPER.format(conversion=CONVERSIONS[kind])]
    lines += [f"{f} = _answer_wrap({f})" for f in defined_functions(source) if f not in skip]
    return "\n".join(lines) + "\n"


def replaced(source: str, old: str, new: str) -> str:
    """``source`` with the one occurrence of ``old`` replaced by ``new`` (fails if not exactly one)."""
    count = source.count(old)
    assert count == 1, f"{old!r} occurs {count} times in the answer:\n{source}"
    return source.replace(old, new)


def called_elsewhere(sources: dict, question: str) -> set:
    """Functions of ``question``'s answer that the answer cells of other questions call."""
    others = "\n".join(s for q, s in sources.items() if q != question)
    return {f for f in defined_functions(sources[question]) if re.search(rf"\b{f}\s*\(", others)}


def submission(name: str, answers: dict) -> dict:
    """The released exercise ``exercises/<name>.ipynb`` with its answer cells' code set from ``answers``.

    ``answers`` maps every question id to its code; a missing id is an error.
    """
    notebook = copy.deepcopy(read(ROOT / "exercises" / f"{name}.ipynb"))
    filled = set()
    for cell in notebook["cells"]:
        role, question, _ = _role(cell)
        if role == "answer":
            code = answers[question]
            cell["source"] = code.splitlines(keepends=True)
            filled.add(question)
    assert filled == set(answers), f"answers for unknown questions: {set(answers) - filled}"
    return notebook
