"""Each graded notebook opens with a cell that installs the course's package
where it is missing (Colab, Binder, a plain Jupyter), pinned to the course's
version, and does nothing where the package is importable (grading, the tests)."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest
import yaml

from notebook_answers import ROOT, read

NOTEBOOKS = sorted((ROOT / "solutions").glob("*.ipynb")) + sorted((ROOT / "exercises").glob("*.ipynb"))
URL = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]
VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M).group(1)
PINNED = f"ntkcourse @ git+{URL}@v{VERSION}"


def _install_cell(path):
    cells = read(path)["cells"]
    first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    return cells[first_code - 1], cells[first_code]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_first_code_cell_is_an_ordinary_install_cell_pinned_to_the_course_version(path):
    note, cell = _install_cell(path)
    source = "".join(cell["source"])
    assert "ntkcourse" not in cell["metadata"], "the install cell must be an ordinary cell (taken from the reference)"
    assert f'"{PINNED}"' in source
    assert note["cell_type"] == "markdown" and "installs the course's package" in "".join(note["source"])
    assert f"`ntkcourse` {VERSION}" in "".join(note["source"])


def _run(source):
    exec(compile(source, "<install cell>", "exec"), {"__name__": "install_cell"})


def test_install_cell_does_nothing_where_the_package_is_importable(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append(args))
    _run("".join(_install_cell(NOTEBOOKS[0])[1]["source"]))
    assert calls == []


def test_install_cell_pip_installs_the_pinned_package_where_it_is_missing(monkeypatch):
    calls = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "ntkcourse" else real_find_spec(name, *args))
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: calls.append((command, kwargs)))
    _run("".join(_install_cell(NOTEBOOKS[0])[1]["source"]))
    assert calls == [([sys.executable, "-m", "pip", "install", "--quiet", PINNED], {"check": True})]
