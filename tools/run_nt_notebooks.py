r"""Run neural-tangents' notebooks with this package in its place, and report
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

Options that change what runs (each is off unless given, and a run that
uses one says so in its report):

* ``--timeit-once`` rewrites every ``%%timeit``/``%timeit`` magic to
  ``-n1 -r1``: the timed statement runs once (its first call, compilation
  included) instead of IPython's repetitions, which on this machine take
  tens of minutes for the Myrtle notebook;
* ``--replace 'OLD=>NEW'`` (repeatable) substitutes text in the code cells,
  e.g. ``'training_steps = 10000=>training_steps = 1000'`` to shorten a
  training loop; a replacement that matches nothing is an error;
* ``--prelude CODE`` runs CODE in the kernel before the first cell, e.g.
  ``jax.config.update('jax_threefry_partitionable', False)`` so that two
  JAX versions draw the same random inputs from the same keys;
* ``--append CODE`` runs CODE after the last cell, e.g. to save arrays the
  notebook computed (``np.savez(...)``) for a comparison;
* ``--python PY`` runs the kernel with another interpreter, and
  ``--keep-imports`` leaves ``neural_tangents`` imported: together they run
  the same notebook with neural-tangents itself in its own environment
  (that environment needs ``ipykernel``; ``--extra-path`` can provide it).

Usage (the notebooks are read from a git checkout or bare mirror of
google/neural-tangents)::

    .venv/bin/python tools/run_nt_notebooks.py --nt-repo /path/to/neural-tangents \
        [--cell-timeout 300] [--extra-path DIR] [--timeit-once] [names ...]

Prints one line per notebook (status, wall time, the kernel's CPU time) and
writes the executed notebooks to ``--out``, each cell's wall time in its
``metadata.execution``; ``--cell-times`` also prints the slowest cells.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

STANDINS = Path(__file__).resolve().parent / "nt_notebook_standins"

IMPORTS = [
    (re.compile(r"\bimport neural_tangents as nt\b"), "import ntkcourse as nt"),
    (re.compile(r"\bfrom neural_tangents import\b"), "from ntkcourse import"),
    (re.compile(r"\bimport neural_tangents\b"), "import ntkcourse as neural_tangents"),
]
# Not an import of neural-tangents: IPython moved this function (both runs need it).
MATPLOTLIB_FORMATS = (re.compile(r"\bfrom IPython.display import set_matplotlib_formats\b"),
                      "from matplotlib_inline.backend_inline import set_matplotlib_formats")
TIMEIT = re.compile(r"^(%%?timeit)\b(.*)$")
# IPython's timeit options: -n N, -r R, -p P take a number; -t, -c, -q, -o do not.
TIMEIT_OPTION = re.compile(r"^(-[nrp]\s*\d+|-[tcqo])(\s+|$)")
# The kernel's CPU time (user + system, children included), printed by a last cell.
CPU_PROBE = ("import resource as _r\n"
             "print('__cpu__', sum(getattr(_r.getrusage(w), f) for w in (_r.RUSAGE_SELF, _r.RUSAGE_CHILDREN)"
             " for f in ('ru_utime', 'ru_stime')))")


def list_notebooks(repo: str):
    """Names of the notebooks under ``notebooks/`` (not ``experimental/``) at HEAD."""
    out = subprocess.run(["git", "-C", repo, "ls-tree", "--name-only", "HEAD", "notebooks/"],
                         capture_output=True, text=True, check=True).stdout
    return [Path(p).name for p in out.split() if p.endswith(".ipynb")]


def read_notebook(repo: str, name: str):
    text = subprocess.run(["git", "-C", repo, "show", f"HEAD:notebooks/{name}"],
                          capture_output=True, text=True, check=True).stdout
    return nbformat.reads(text, as_version=4)


def switch_imports(nb, keep_imports=False, timeit_once=False):
    """The notebook with its neural_tangents imports switched, ready to run.

    Imports are replaced unless ``keep_imports``; shell lines are dropped; with
    ``timeit_once`` every timeit magic runs its statement once.
    """
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = [line for line in cell.source.splitlines() if not line.lstrip().startswith(("!", "%pip"))]
        magic = [i for i, line in enumerate(lines) if line.startswith("%%")]
        if magic and all(line.lstrip().startswith("#") or not line.strip() for line in lines[:magic[0]]):
            # Colab accepts comments above a cell magic; IPython needs it first.
            lines.insert(0, lines.pop(magic[0]))
        if timeit_once:
            lines = [timeit_once_line(line) for line in lines]
        source = "\n".join(lines)
        for pattern, repl in ([] if keep_imports else IMPORTS) + [MATPLOTLIB_FORMATS]:
            source = pattern.sub(repl, source)
        cell.source = source
    return nb


def timeit_once_line(line: str) -> str:
    """``line`` with a timeit magic's own repetition options replaced by ``-n1 -r1``.

    The statement (``%timeit``) or setup code (``%%timeit``) after the
    options is kept; a line that is not a timeit magic is returned unchanged.
    """
    match = TIMEIT.match(line)
    if not match:
        return line
    rest = match.group(2).lstrip()
    while (option := TIMEIT_OPTION.match(rest)):
        rest = rest[option.end():]
    return f"{match.group(1)} -n1 -r1 {rest}".rstrip()


def apply_replacements(nb, replacements):
    """Each ``'OLD=>NEW'`` substituted in every code cell; one that matches nothing raises."""
    for spec in replacements:
        if "=>" not in spec:
            raise SystemExit(f"run_nt_notebooks: --replace expects 'OLD=>NEW', got {spec!r}")
        old, new = spec.split("=>", 1)
        hits = 0
        for cell in nb.cells:
            if cell.cell_type == "code" and old in cell.source:
                hits += cell.source.count(old)
                cell.source = cell.source.replace(old, new)
        if not hits:
            raise SystemExit(f"run_nt_notebooks: --replace {spec!r} matches no code cell")
    return nb


def kernel_for(python: str, folder: str):
    """A kernel spec named ``ntrun`` that starts ``python``'s ipykernel, under ``folder``."""
    spec = Path(folder) / "kernels" / "ntrun"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"python ({python})", "language": "python"}))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (folder, os.environ.get("JUPYTER_PATH", "")) if p)
    return "ntrun"


def run_one(nb, cell_timeout: int, cwd: str, kernel_name="python3", prelude="", append=""):
    """``(status, cell index or None, reason, seconds, kernel CPU seconds or None)``."""
    if append:
        nb.cells.append(nbformat.v4.new_code_cell(append))
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": cwd}})
    start = time.time()
    current = None
    status, reason = "ran", ""
    cpu = None
    try:
        with client.setup_kernel():
            try:
                if prelude:  # not kept in the notebook: the cell numbers stay its own
                    run_extra(client, nb, prelude, 0)
                for i, cell in enumerate(nb.cells):
                    if cell.cell_type == "code":
                        current = i
                        client.execute_cell(cell, i)
                current = None
            finally:
                cpu = kernel_cpu(client)
    except CellTimeoutError:
        status, reason = "failed", f"no result within {cell_timeout} s"
    except CellExecutionError as err:
        status = "failed"
        reason = f"{getattr(err, 'ename', '')}: {getattr(err, 'evalue', '')}".strip(": ")
        reason = re.sub(r"\x1b\[[0-9;]*m", "", reason)[:300]
    except DeadKernelError as err:
        status, reason = "failed", f"kernel died: {str(err)[:200]}"
    seconds = time.time() - start
    return status, current, reason, seconds, cpu


def run_extra(client, nb, code, where):
    """Run ``code`` as a cell placed at index ``where`` for the time it runs (nbclient
    writes a cell's outputs through its index), then remove it; the cell is returned.
    """
    cell = nbformat.v4.new_code_cell(code)
    nb.cells.insert(where, cell)
    try:
        client.execute_cell(cell, where)
    finally:
        nb.cells.pop(where)
    return cell


def kernel_cpu(client):
    """The kernel's CPU seconds so far, or None if it does not answer."""
    try:
        probe = run_extra(client, client.nb, CPU_PROBE, len(client.nb.cells))
    except Exception:  # noqa: BLE001 - a dead or stuck kernel: no figure
        return None
    for out in probe.get("outputs", []):
        match = re.search(r"__cpu__ ([0-9.]+)", out.get("text", ""))
        if match:
            return float(match.group(1))
    return None


def cell_seconds(cell):
    """Wall seconds of one executed cell, from nbclient's timing record."""
    meta = cell.get("metadata", {}).get("execution", {})
    begin, end = meta.get("iopub.execute_input"), meta.get("shell.execute_reply")
    if not (begin and end):
        return None
    parse = lambda stamp: datetime.fromisoformat(stamp.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(begin)).total_seconds()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nt-repo", required=True, help="git checkout or bare mirror of google/neural-tangents")
    parser.add_argument("--cell-timeout", type=int, default=300)
    parser.add_argument("--out", default="/tmp/nt_notebooks")
    parser.add_argument("--extra-path", default="", help="folder added to the kernel's PYTHONPATH (e.g. seaborn)")
    parser.add_argument("--timeit-once", action="store_true", help="run each %%%%timeit statement once")
    parser.add_argument("--replace", action="append", default=[], metavar="'OLD=>NEW'",
                        help="substitute text in the code cells (repeatable)")
    parser.add_argument("--prelude", default="", help="code run before the notebook's first cell")
    parser.add_argument("--append", default="", help="code run after the notebook's last cell")
    parser.add_argument("--python", default="", help="interpreter of the kernel (default: this one's python3 kernel)")
    parser.add_argument("--keep-imports", action="store_true", help="leave neural_tangents imported")
    parser.add_argument("--cell-times", type=int, default=0, metavar="N", help="print the N slowest cells")
    parser.add_argument("names", nargs="*", help="notebook file names (default: all)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.names or list_notebooks(args.nt_repo)
    # The kernel inherits the environment: the data stand-ins (and extras) go on its path.
    paths = [str(STANDINS)] + ([args.extra_path] if args.extra_path else []) + [os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    with tempfile.TemporaryDirectory() as specs:
        kernel_name = kernel_for(args.python, specs) if args.python else "python3"
        for name in names:
            nb = switch_imports(read_notebook(args.nt_repo, name), args.keep_imports, args.timeit_once)
            nb = apply_replacements(nb, args.replace)
            status, cell, reason, seconds, cpu = run_one(nb, args.cell_timeout, str(out), kernel_name,
                                                         args.prelude, args.append)
            nbformat.write(nb, out / name)
            where = "" if cell is None else f" at cell {cell}"
            cpu_text = "" if cpu is None else f", kernel CPU {cpu:.0f} s"
            print(f"{name}: {status}{where} ({seconds:.0f} s{cpu_text}){': ' + reason if reason else ''}",
                  flush=True)
            timed = sorted(((cell_seconds(c) or 0.0, i) for i, c in enumerate(nb.cells)
                            if c.cell_type == "code"), reverse=True)
            for secs, i in timed[:args.cell_times]:
                print(f"    cell {i}: {secs:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
