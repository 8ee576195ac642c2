"""Benchmark: grading N submissions with -j J, against executing them with plain nbclient.

    .venv/bin/python benchmarks/bench_grading.py            # 30 submissions, -j 2
    .venv/bin/python benchmarks/bench_grading.py --serial   # also grade with -j 1 (the overhead)

The submissions are the well-behaved cases of the grading corpus (correct,
wrong, float32, unanswered, edited...), repeated to N. In the same run it
times (1) executing the N notebooks one after another with nbclient, as a
student would run them, and (2) ``ntkcourse grade`` on them with ``-j J``,
which includes running the reference solution once. It prints both wall
times and their ratio (goal: at most 0.75 with -j 2 on 2 cores).

For a fair baseline, the plain kernels import the check helper without JAX,
as the grader's kernels do: while ``ntkcourse/__init__.py`` imports JAX
eagerly, ``import ntkcourse.grading.checks`` would add a JAX import (about
1.5 s) to every plain kernel only. Pass ``--baseline-through-package`` to
measure that case instead.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KERNEL_PYTHONPATH = [""]
WELL_BEHAVED = ("correct", "swapped_recursion", "float32_lists_equivalent", "untouched", "reference",
                "deleted_answer", "duplicated_answer", "reordered_answers", "changed_ids", "extra_cell",
                "cell_raises", "check_edited")


def _corpus_module():
    spec = importlib.util.spec_from_file_location("make_corpus", ROOT / "tests" / "grading_corpus" / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_submissions(folder: Path, count: int) -> list[Path]:
    files = _corpus_module().corpus_files()
    paths = []
    for i in range(count):
        case = WELL_BEHAVED[i % len(WELL_BEHAVED)]
        path = folder / f"student{i:02d}_{case}.ipynb"
        path.write_bytes(files[f"{case}.ipynb"])
        paths.append(path)
    return paths


def _cpu_seconds(*who) -> float:
    usage = [resource.getrusage(w) for w in who]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _server_cpu_seconds() -> float:
    """CPU time so far of the grader's fork server (its imports), 0 before it starts."""
    import psutil

    from ntkcourse.grading import runner

    process = runner._SERVER._process
    try:
        times = psutil.Process(process.pid).cpu_times() if process is not None else None
    except psutil.NoSuchProcess:
        times = None
    return times.user + times.system if times else 0.0


def time_nbclient(paths, workdir: Path) -> tuple[float, float]:
    """Wall time, and CPU time of this process and the kernels it ran."""
    import nbformat
    from nbclient import NotebookClient

    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = KERNEL_PYTHONPATH[0]  # for the plain kernels only, not the grader's
    try:
        start, cpu = time.perf_counter(), _cpu_seconds(resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        for path in paths:
            nb = nbformat.read(str(path), as_version=4)
            NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True,
                           resources={"metadata": {"path": str(workdir)}}).execute()
        return time.perf_counter() - start, _cpu_seconds(resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) - cpu
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def time_grade(folder: Path, out: Path, jobs: int) -> tuple[float, float]:
    """Wall time, and CPU time of this process and of every grading run (pytest and its kernel)."""
    from ntkcourse.grading.grade import grade

    start, cpu, server = time.perf_counter(), _cpu_seconds(resource.RUSAGE_SELF), _server_cpu_seconds()
    summary = grade([folder], "ch00_warmup", out, solutions_dir=ROOT / "solutions", jobs=jobs, cell_timeout=60,
                    key_path=out.parent / "grader.key")
    elapsed = time.perf_counter() - start
    cpu = (_cpu_seconds(resource.RUSAGE_SELF) - cpu + _server_cpu_seconds() - server
           + sum(r.cpu_seconds or 0.0 for r in summary.results))
    bad = [r.student for r in summary.results if r.status != "ok"]
    if len(summary.graded) != len(list(folder.glob("*.ipynb"))) or bad:
        raise SystemExit(f"grading went wrong: graded {len(summary.graded)}, status error for {bad}")
    return elapsed, cpu


def isolation_overhead(path: Path, repeats: int) -> None:
    """Per-submission cost of the sandbox: the same merged notebook run with and without it, alternately."""
    import nbformat

    from ntkcourse.grading.grade import _needed_paths, hidden_paths
    from ntkcourse.grading.merge import merge_submission, read_submission
    from ntkcourse.grading.notebook_format import load_assignment
    from ntkcourse.grading.runner import NotebookRun
    from ntkcourse.grading.sandbox import SlotPool, probe

    isolation = probe()
    if isolation.missing():
        print(f"isolation overhead not measured: {isolation.missing()}")
        return
    assignment = load_assignment(ROOT / "solutions" / "ch00_warmup.ipynb")
    notebook, _ = read_submission(path.read_bytes(), "ch00_warmup")
    merged = merge_submission(assignment, notebook).notebook
    pool = SlotPool(isolation, slots=1, hide=hidden_paths(ROOT / "solutions"),
                    expose=[str(p) for p in _needed_paths()])
    times = {"sandboxed": [], "plain": []}
    for _ in range(repeats):
        for kind in times:
            slot, sandbox = pool.acquire()
            run = NotebookRun(nbformat.from_dict(merged), cell_timeout=60, memory_mb=4096,
                              sandbox=sandbox if kind == "sandboxed" else None)
            start = time.perf_counter()
            result = run.start().wait()
            pool.release(slot)
            times[kind].append((time.perf_counter() - start, result.cpu_seconds or 0.0))
    for kind, values in times.items():
        wall = sorted(v[0] for v in values)
        cpu = sorted(v[1] for v in values)
        print(f"one submission, {kind:9s}: median {wall[len(wall) // 2]:.2f} s wall, "
              f"{cpu[len(cpu) // 2]:.2f} s CPU (pytest and kernel; {repeats} runs)", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="number of submissions (default: %(default)s)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="grading jobs (default: %(default)s)")
    parser.add_argument("--serial", action="store_true", help="also grade with -j 1, to show the overhead")
    parser.add_argument("--isolation-overhead", type=int, default=0, metavar="N",
                        help="also run one submission N times with and without the sandbox (root only)")
    parser.add_argument("--baseline-through-package", action="store_true",
                        help="let the plain kernels import the check helper through the ntkcourse package")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="ntkcourse-bench-"))
    helper_path = str(ROOT)
    if not args.baseline_through_package:
        shim = tmp / "shim" / "ntkcourse" / "grading"
        shim.mkdir(parents=True)
        (shim.parent / "__init__.py").write_text("")
        (shim / "__init__.py").write_text("")
        shutil.copy(ROOT / "ntkcourse" / "grading" / "checks.py", shim / "checks.py")
        helper_path = str(tmp / "shim")
    # The plain kernels find ntkcourse.grading.checks there.
    KERNEL_PYTHONPATH[0] = os.pathsep.join(p for p in (helper_path, os.environ.get("PYTHONPATH")) if p)
    try:
        folder = tmp / "submissions"
        folder.mkdir()
        paths = write_submissions(folder, args.n)
        time_nbclient(paths[:1], tmp)  # warm the file cache and the kernel's imports
        print(f"{args.n} submissions of ch00_warmup; {os.cpu_count()} CPUs; Python {platform.python_version()}; "
              f"load average {os.getloadavg()[0]:.1f}; plain kernels import the check helper "
              f"{'through the package' if args.baseline_through_package else 'without JAX'}", flush=True)
        baseline, baseline_cpu = time_nbclient(paths, tmp)
        print(f"nbclient, one after another: {baseline:6.1f} s wall  ({baseline / args.n:.2f} s per notebook); "
              f"{baseline_cpu:6.1f} s CPU", flush=True)
        graded, graded_cpu = time_grade(folder, tmp / f"out-j{args.jobs}", args.jobs)
        print(f"ntkcourse grade -j {args.jobs}:        {graded:6.1f} s wall  ratio {graded / baseline:.2f} "
              f"(goal <= 0.75); {graded_cpu:6.1f} s CPU, ratio {graded_cpu / baseline_cpu:.2f} (the overhead)",
              flush=True)
        if args.serial:
            serial, _ = time_grade(folder, tmp / "out-j1", 1)
            print(f"ntkcourse grade -j 1:        {serial:6.1f} s wall  ratio {serial / baseline:.2f} "
                  "(no parallelism)", flush=True)
        if args.isolation_overhead:
            isolation_overhead(paths[0], args.isolation_overhead)
        print(f"load average now {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
