"""Where a notebook's execution time goes: each code cell's wall and CPU time.

    .venv/bin/python benchmarks/cell_times.py book/ch05_finite_width.md
    .venv/bin/python benchmarks/cell_times.py solutions/ch10_feature_learning.ipynb --top 8

Executes the notebook (a ``.ipynb``, or a chapter in MyST Markdown read with
jupytext) top to bottom in a fresh kernel, as the book build and the grader
do, and prints, for the slowest cells, the wall time, the CPU time of the
kernel process (user + system, all its threads) and the cell's first line,
then the totals with the kernel's start-up and the first import of the package
apart. CPU time is the figure to compare on a loaded machine: wall time
stretches with the load, CPU time much less.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def read_notebook(path: Path):
    if path.suffix == ".md":
        import jupytext

        return jupytext.read(path)
    return nbformat.read(path, as_version=4)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def cell_times(path: Path, allow_errors: bool = False):
    """[(index, wall_s, cpu_s, first_line)] for every code cell, and the kernel's start-up (wall, cpu)."""
    notebook = read_notebook(path)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=allow_errors, resources={"metadata": {"path": str(path.parent)}})
    rows = []
    env = dict(os.environ, MPLBACKEND=os.environ.get("MPLBACKEND", "module://matplotlib_inline.backend_inline"))
    start = time.perf_counter()
    with client.setup_kernel(env=env):
        kernel = psutil.Process(client.km.provisioner.process.pid)
        startup = (time.perf_counter() - start, _cpu(kernel))
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            cpu0, wall0 = _cpu(kernel), time.perf_counter()
            client.execute_cell(cell, index)
            first = next((line for line in cell.source.splitlines() if line.strip() and not line.startswith("#")), "")
            rows.append((index, time.perf_counter() - wall0, _cpu(kernel) - cpu0, first[:90]))
    return rows, startup


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--top", type=int, default=12, help="how many of the slowest cells to list")
    parser.add_argument("--allow-errors", action="store_true",
                        help="go on after a cell that raises (a released exercise, whose answers raise)")
    args = parser.parse_args(argv)
    rows, (start_wall, start_cpu) = cell_times(args.notebook.resolve(), args.allow_errors)
    print(f"{args.notebook}: {len(rows)} code cells, kernel start {start_wall:.1f} s wall / {start_cpu:.1f} s CPU")
    print(f"{'cell':>5} {'wall s':>8} {'CPU s':>8}  first line")
    for index, wall, cpu, first in sorted(rows, key=lambda r: -r[2])[:args.top]:
        print(f"{index:>5} {wall:>8.2f} {cpu:>8.2f}  {first}")
    print(f"total {sum(r[1] for r in rows) + start_wall:.1f} s wall, {sum(r[2] for r in rows) + start_cpu:.1f} s CPU "
          f"(load {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
