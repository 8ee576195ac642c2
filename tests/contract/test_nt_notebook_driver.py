"""The rewrites that ``tools/run_nt_notebooks.py`` makes to neural-tangents'
notebooks before running them. The README's table of notebooks rests on
them: the only changes to a notebook are the import switch and the options
a run names (``--timeit-once``, ``--replace``), so each is checked to change
exactly what it says and nothing else. No kernel is started (text only).
"""
import importlib.util
from pathlib import Path

import nbformat
import pytest

DRIVER = Path(__file__).resolve().parents[2] / "tools" / "run_nt_notebooks.py"


@pytest.fixture(scope="module")
def driver():
    spec = importlib.util.spec_from_file_location("run_nt_notebooks", DRIVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notebook(*sources):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


TIMING_CELL = "# First loop includes compilation.\n%%timeit\nk = ker_fn(x, None, 'nngp').block_until_ready()"
IMPORT_CELL = "\n".join(["import neural_tangents as nt", "from neural_tangents import stax",
                         "from IPython.display import set_matplotlib_formats"])


def test_timeit_once_runs_the_timed_statement_once_and_changes_no_other_line(driver):
    nb = driver.switch_imports(notebook(TIMING_CELL), timeit_once=True)
    assert nb.cells[0].source.splitlines() == [
        "%%timeit -n1 -r1",
        "# First loop includes compilation.",
        "k = ker_fn(x, None, 'nngp').block_until_ready()",
    ]


@pytest.mark.parametrize("line, once", [
    ("%timeit -n3 -r 5 -q f(x) - 1", "%timeit -n1 -r1 f(x) - 1"),  # the statement, its minus sign included
    ("%%timeit -o y = setup()", "%%timeit -n1 -r1 y = setup()"),  # a cell magic's setup code
    ("%timeit", "%timeit -n1 -r1"),
    ("x = '%timeit'", "x = '%timeit'"),  # not a magic
])
def test_timeit_once_replaces_only_the_repetition_options(driver, line, once):
    assert driver.timeit_once_line(line) == once


def test_without_the_option_timeit_keeps_its_own_repetitions(driver):
    nb = driver.switch_imports(notebook(TIMING_CELL))
    assert nb.cells[0].source.splitlines()[0] == "%%timeit"


def test_imports_are_switched_unless_kept_and_the_moved_ipython_function_always_is(driver):
    ours = driver.switch_imports(notebook(IMPORT_CELL)).cells[0].source.splitlines()
    theirs = driver.switch_imports(notebook(IMPORT_CELL), keep_imports=True).cells[0].source.splitlines()
    moved = "from matplotlib_inline.backend_inline import set_matplotlib_formats"
    assert ours == ["import ntkcourse as nt", "from ntkcourse import stax", moved]
    assert theirs == ["import neural_tangents as nt", "from neural_tangents import stax", moved]


def test_a_replacement_substitutes_every_occurrence_in_code_cells(driver):
    nb = driver.apply_replacements(notebook("steps = 10000\nts = arange(10 ** 3)", "xlim(10 ** 3)"),
                                   ["10 ** 3=>10 ** 1"])
    assert [c.source for c in nb.cells] == ["steps = 10000\nts = arange(10 ** 1)", "xlim(10 ** 1)"]


def test_a_replacement_that_matches_nothing_stops_the_run_naming_it(driver):
    with pytest.raises(SystemExit, match=r"--replace 'steps = 99=>steps = 1' matches no code cell"):
        driver.apply_replacements(notebook("steps = 10000"), ["steps = 99=>steps = 1"])
