"""Run neural-tangents' notebooks with this package in its place, and report
per notebook whether it ran, or its first failing cell and why.

Not part of the test suite (the notebooks download data and train networks).
Changes made to a notebook: the imports (``neural_tangents`` -> ``ntkcourse``,
as a user switching would do); shell lines (``!pip install ...``), which
cannot run offline, are dropped; a cell magic (``%%timeit``) below comment
lines is moved to the cell's first line (Colab, where the notebooks were
written, accepts it there; IPython does not); every other line runs as
written, except IPython's ``set_matplotlib_formats``, removed from
``IPython.display`` after the notebooks were written, which is taken from
``matplotlib_inline`` (where IPython moved it). Data that a notebook
downloads with ``tensorflow_datasets`` is replaced by the offline stand-in in
``tools/nt_notebook_standins/`` (scikit-learn's digits in MNIST's or
CIFAR-10's layout: the code runs on real digits, but the accuracies are not
those of the original data sets). Some notebooks also import ``seaborn``
(plot styles only), which is not a dependency of this package: install it
where the kernel can import it, e.g. ``pip install --target DIR seaborn
pandas`` and ``--extra-path DIR``.

Usage (the notebooks are read from a git checkout or bare mirror of
google/neural-tangents)::

    .venv/bin/python tools/run_nt_notebooks.py --nt-repo /path/to/neural-tangents \\
        [--cell-timeout 300] [--extra-path DIR] [names ...]

Prints one line per notebook and writes the executed notebooks to ``--out``.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

STANDINS = Path(__file__).resolve().parent / "nt_notebook_standins"

IMPORTS = [
    (re.compile(r"\bimport neural_tangents as nt\b"), "import ntkcourse as nt"),
    (re.compile(r"\bfrom neural_tangents import\b"), "from ntkcourse import"),
    (re.compile(r"\bimport neural_tangents\b"), "import ntkcourse as neural_tangents"),
    (re.compile(r"\bfrom IPython.display import set_matplotlib_formats\b"),
     "from matplotlib_inline.backend_inline import set_matplotlib_formats"),
]


def list_notebooks(repo: str):
    """Names of the notebooks under ``notebooks/`` (not ``experimental/``) at HEAD."""
    out = subprocess.run(["git", "-C", repo, "ls-tree", "--name-only", "HEAD", "notebooks/"],
                         capture_output=True, text=True, check=True).stdout
    return [Path(p).name for p in out.split() if p.endswith(".ipynb")]


def read_notebook(repo: str, name: str):
    text = subprocess.run(["git", "-C", repo, "show", f"HEAD:notebooks/{name}"],
                          capture_output=True, text=True, check=True).stdout
    return nbformat.reads(text, as_version=4)


def switch_imports(nb):
    """The notebook with neural_tangents imports replaced and shell lines dropped."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = [line for line in cell.source.splitlines() if not line.lstrip().startswith(("!", "%pip"))]
        magic = [i for i, line in enumerate(lines) if line.startswith("%%")]
        if magic and all(line.lstrip().startswith("#") or not line.strip() for line in lines[:magic[0]]):
            # Colab accepts comments above a cell magic; IPython needs it first.
            lines.insert(0, lines.pop(magic[0]))
        source = "\n".join(lines)
        for pattern, repl in IMPORTS:
            source = pattern.sub(repl, source)
        cell.source = source
    return nb


def run_one(nb, cell_timeout: int, cwd: str):
    """``(status, cell index or None, reason, seconds)``."""
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", resources={"metadata": {"path": cwd}})
    start = time.time()
    current = None
    try:
        with client.setup_kernel():
            for i, cell in enumerate(nb.cells):
                if cell.cell_type == "code":
                    current = i
                    client.execute_cell(cell, i)
    except CellTimeoutError:
        return "failed", current, f"no result within {cell_timeout} s", time.time() - start
    except CellExecutionError as err:
        reason = f"{getattr(err, 'ename', '')}: {getattr(err, 'evalue', '')}".strip(": ")
        return "failed", current, re.sub(r"\x1b\[[0-9;]*m", "", reason)[:300], time.time() - start
    except DeadKernelError as err:
        return "failed", current, f"kernel died: {str(err)[:200]}", time.time() - start
    return "ran", None, "", time.time() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nt-repo", required=True, help="git checkout or bare mirror of google/neural-tangents")
    parser.add_argument("--cell-timeout", type=int, default=300)
    parser.add_argument("--out", default="/tmp/nt_notebooks")
    parser.add_argument("--extra-path", default="", help="folder added to the kernel's PYTHONPATH (e.g. seaborn)")
    parser.add_argument("names", nargs="*", help="notebook file names (default: all)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.names or list_notebooks(args.nt_repo)
    # The kernel inherits the environment: the data stand-ins (and extras) go on its path.
    paths = [str(STANDINS)] + ([args.extra_path] if args.extra_path else []) + [os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    for name in names:
        nb = switch_imports(read_notebook(args.nt_repo, name))
        status, cell, reason, seconds = run_one(nb, args.cell_timeout, str(out))
        nbformat.write(nb, out / name)
        where = "" if cell is None else f" at cell {cell}"
        print(f"{name}: {status}{where} ({seconds:.0f} s){': ' + reason if reason else ''}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
