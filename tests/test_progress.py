"""Progress bars: one policy for every function with ``progress=`` (ntkcourse.progress).

Claims:
- ``progress=None`` shows nothing when stderr is not a terminal (an executed notebook), however long the run;
- on a terminal it shows a bar for long runs, and nothing for runs shorter than the delay (2 s);
- ``True`` always shows a bar, ``False`` never;
- the former name ``ntkcourse._progress`` gives the same objects;
- inside a Jupyter kernel without ipywidgets no module warns (tqdm.auto's "IProgress not found" did, which
  fails book builds run with warnings as errors).

The length of a run is faked with a clock that tqdm reads (``tqdm.std.time``): each reading advances it by
10 s, so any run is "long"; a clock that never advances makes any run "short". The work itself is tiny.
"""
import io
import itertools
import sys
import textwrap

import jax
import numpy as np
import pytest
import tqdm.std

from ntkcourse import stax
from ntkcourse.batching import batch
from ntkcourse.empirical import monte_carlo_kernel_fn
from ntkcourse.training import train_network

NET = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))
X = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
_MC = {}


def _train(progress):
    _, params = NET[0](jax.random.PRNGKey(0), X.shape)
    train_network(NET[1], params, X, np.ones(4), steps=3, learning_rate=0.01, progress=progress)
    return "training"


def _monte_carlo(progress):
    # One kernel function per progress setting: compiled once for the whole module.
    if progress not in _MC:
        _MC[progress] = monte_carlo_kernel_fn(NET, None, jax.random.PRNGKey(0), 3, batch_size=1, progress=progress)
    _MC[progress](X, None, "ntk")
    return "Monte Carlo kernel"


def _batching(progress):
    batch(NET[2], batch_size=2, progress=progress)(X, None, "ntk")
    return "kernel blocks"


RUNS = pytest.mark.parametrize("run", [_train, _monte_carlo, _batching], ids=["training", "monte_carlo", "batching"])


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def long_runs(monkeypatch):
    clock = itertools.count(0.0, 10.0)
    monkeypatch.setattr(tqdm.std, "time", lambda: next(clock))


@pytest.fixture
def short_runs(monkeypatch):
    monkeypatch.setattr(tqdm.std, "time", lambda: 0.0)


def _on_terminal(monkeypatch):
    # Set in the test itself: pytest's output capture sets sys.stderr again between fixtures and the test.
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    return term


@RUNS
def test_default_shows_nothing_when_stderr_is_not_a_terminal(run, long_runs, capsys):
    run(None)
    assert capsys.readouterr().err == ""


@RUNS
def test_default_shows_long_runs_on_a_terminal(run, long_runs, monkeypatch):
    terminal = _on_terminal(monkeypatch)
    name = run(None)
    assert name in terminal.getvalue()


@RUNS
def test_default_hides_short_runs_on_a_terminal(run, short_runs, monkeypatch):
    terminal = _on_terminal(monkeypatch)
    run(None)
    assert terminal.getvalue() == ""


@RUNS
def test_true_always_shows_and_false_never(run, short_runs, capsys):
    name = run(True)
    assert name in capsys.readouterr().err
    run(False)
    assert capsys.readouterr().err == ""


NOTEBOOK = textwrap.dedent(
    """
    import warnings
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import numpy as np, jax, tqdm
        from ntkcourse import stax
        from ntkcourse.batching import batch
        from ntkcourse.empirical import monte_carlo_kernel_fn
        from ntkcourse.training import train_network
        net = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))
        x = np.ones((4, 3), np.float32)
        _, params = net[0](jax.random.PRNGKey(0), x.shape)
        train_network(net[1], params, x, np.ones(4), steps=2, learning_rate=0.01, progress=True)
        monte_carlo_kernel_fn(net, None, jax.random.PRNGKey(0), 2, progress=True)(x, None, "ntk")
        batch(net[2], batch_size=2, progress=True)(x, None, "ntk")
    print("TQDM WARNINGS:", [str(w.message) for w in caught if issubclass(w.category, tqdm.TqdmWarning)])
    """
)


def test_no_tqdm_warning_in_a_jupyter_kernel_without_ipywidgets():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(NOTEBOOK)]
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=300).execute()
    stdout = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.get("name") == "stdout")
    assert "TQDM WARNINGS: []" in stdout, stdout


def test_the_former_private_module_name_gives_the_same_objects():
    """Code written against ``ntkcourse._progress`` keeps working: it is the public module's objects."""
    import ntkcourse._progress as old
    import ntkcourse.progress as new

    assert (old.progress_bar, old.stderr_is_terminal, old.DELAY_S) == (new.progress_bar, new.stderr_is_terminal,
                                                                       new.DELAY_S)
