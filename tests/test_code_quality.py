"""The package's code: one docstring dialect (Google, checked by ruff's
pydocstyle rules with the configuration in pyproject.toml) and docstring
examples that run (doctest of every module)."""
import doctest
import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ntkcourse

ROOT = Path(__file__).resolve().parents[1]
# ntkcourse.__main__ runs the command line when imported: it has no examples.
MODULES = sorted(m.name for m in pkgutil.walk_packages(ntkcourse.__path__, "ntkcourse.") if m.name != "ntkcourse.__main__")


def test_ruff_finds_nothing_in_the_package():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    run = subprocess.run([ruff, "check", "ntkcourse", "--output-format", "concise"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed"
