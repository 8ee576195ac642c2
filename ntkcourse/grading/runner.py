"""Run one notebook under nbval, in its own process, kernel and scratch directory.

Each run gets a fresh scratch directory::

    work/graded.ipynb          the notebook; the kernel's working directory
    private/jupyter/kernels/   a kernelspec whose kernel is kernel_launcher.py
    private/values.json        reference values (read by the kernel, then deleted)
    private/results.jsonl      one line per cell, written as nbval goes
    private/pytest.log         pytest's own output

and a fresh process, which calls ``pytest --nbval-lax`` on the notebook. The
process is forked from a small server (this file, run as a script) that has
already imported pytest and nbval, so that a run does not pay their import
time. (Not ``multiprocessing``'s fork server: it would re-run the caller's
main module in every child, and import the package, with JAX, in the server.)
Check cells carry the ``nbval-check-output`` tag and the reference's outputs,
so nbval compares their verdict lines; every other cell only has to run. A small pytest plugin
records each cell's outcome and outputs, and notices within a fraction of a
second when the kernel has died (nbval alone would wait for the cell timeout).

The parent waits with an overall time limit and kills the whole process tree
(pytest and the kernel) when it is exceeded, so no submission can hang a run.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import nbformat
import psutil

KERNEL_NAME = "ntkcourse-grader"
NOTEBOOK_NAME = "graded.ipynb"
KERNEL_STARTUP_TIMEOUT = 60.0
_POLL_SECONDS = 0.25
_HERE = Path(__file__).resolve().parent
PACKAGE_ROOT = _HERE.parent.parent


@dataclass
class RunResult:
    """What happened to each code cell (keyed by nbval's cell number), and to the run."""

    cells: dict = field(default_factory=dict)
    collect_error: str | None = None
    exit_code: int | None = None
    wall_timeout: bool = False
    wall_limit: float = 0.0
    log_tail: str = ""
    values: dict | None = None
    seconds: float = 0.0
    cpu_seconds: float | None = None  # the grading process and its kernel; None when unknown


def _path_with_package(existing: str) -> str:
    """``existing`` PYTHONPATH, with the directory holding ``ntkcourse`` in front when needed."""
    root = str(PACKAGE_ROOT)
    parts = [p for p in existing.split(os.pathsep) if p]
    # An installed package is found anyway; putting site-packages ahead of the
    # standard library could shadow it.
    if root in parts or Path(root).name in ("site-packages", "dist-packages"):
        return existing
    return os.pathsep.join([root, *parts])


class _ForkServer:
    """A child process that has imported pytest and nbval and forks one grading process per request.

    Requests and replies are JSON lines on its stdin and stdout. Started on
    first use, one per grading process, and shared by its threads.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._process = None

    def _ensure_running(self):
        if self._process is None or self._process.poll() is not None:
            # A session of its own: Ctrl-C in the terminal reaches the grader,
            # which stops the runs it started, not the server.
            self._process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve"],
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                             bufsize=1, start_new_session=True)

    def fork(self, scratch: Path, cell_timeout: float) -> int:
        """Start a grading process on ``scratch``; return its pid."""
        with self._lock:
            for _ in range(2):
                self._ensure_running()
                try:
                    self._process.stdin.write(json.dumps({"scratch": str(scratch), "cell_timeout": cell_timeout})
                                              + "\n")
                    self._process.stdin.flush()
                    reply = self._process.stdout.readline()
                except (BrokenPipeError, OSError):
                    reply = ""
                if reply:
                    return int(json.loads(reply)["pid"])
                self._process = None  # the server died: start another one, once
            raise RuntimeError("the grading fork server does not answer")


_SERVER = _ForkServer()


def prestart() -> None:
    """Start the fork server now, so that its imports overlap with the caller's own work."""
    if hasattr(os, "fork"):
        with _SERVER._lock:
            _SERVER._ensure_running()


def _serve() -> None:
    """Body of the fork server: fork a grading process for each request on stdin."""
    import importlib

    import nbval.plugin  # noqa: F401 -- preloaded for the children
    from _pytest.config import default_plugins

    for name in default_plugins:  # pytest imports these in every session
        try:
            importlib.import_module(f"_pytest.{name}")
        except ImportError:
            pass
    # nbformat compiles its JSON-schema validator on first use (0.4 s): once, here.
    nbformat.validate(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")]))

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # exited children are reaped by the OS
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                code = _child_main(request["scratch"], float(request["cell_timeout"]))
            except BaseException:
                traceback.print_exc()  # into the run's pytest.log once _child_main has opened it
            finally:
                os._exit(code)
        sys.stdout.write(json.dumps({"pid": pid}) + "\n")
        sys.stdout.flush()


def _spawn_direct(scratch: Path, cell_timeout: float) -> int:
    """Where there is no fork (Windows): a fresh interpreter per run."""
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--run", str(scratch),
                             str(cell_timeout)]).pid


def write_kernelspec(private: Path, mode: str, values_path: Path, memory_mb: int) -> None:
    spec_dir = private / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, str(_HERE / "kernel_launcher.py"), "--memory-mb", str(int(memory_mb)),
                 "-f", "{connection_file}", "--HistoryManager.enabled=False"],
        "display_name": "ntkcourse grader",
        "language": "python",
        "env": {
            "NTKCOURSE_CHECKS_MODE": mode,
            "NTKCOURSE_CHECKS_FILE": str(values_path),
            "PYTHONPATH": _path_with_package(os.environ.get("PYTHONPATH", "")),
            "IPYTHONDIR": str(private / "ipython"),
            "MPLBACKEND": "Agg",
            # glibc gives each thread a 64 MB malloc arena of address space;
            # capping them keeps the address-space limit about real memory.
            "MALLOC_ARENA_MAX": "2",
        },
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")


def _summarise_outputs(outputs):
    summary = []
    for out in outputs or []:
        kind = out.get("output_type")
        if kind == "stream":
            summary.append({"type": "stream", "name": out.get("name"), "text": str(out.get("text", ""))[:8000]})
        elif kind == "error":
            summary.append({"type": "error", "ename": str(out.get("ename")), "evalue": str(out.get("evalue"))[:2000]})
        elif kind in ("display_data", "execute_result"):
            data = out.get("data", {}) or {}
            summary.append({"type": kind, "text": str(data.get("text/plain", ""))[:2000]})
    return summary


def _install_kernel_watch():
    """Make nbval notice a dead kernel at once, and remember its exit code."""
    from nbval.kernel import RunningKernel

    if getattr(RunningKernel, "_ntkcourse_watched", False):
        return
    original = RunningKernel.get_message

    def get_message(self, stream, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = _POLL_SECONDS if deadline is None else max(0.0, min(_POLL_SECONDS, deadline - time.monotonic()))
            try:
                return original(self, stream, timeout=step)
            except Empty:
                if hasattr(self, "km") and not self.is_alive():
                    if not getattr(self, "_ntkcourse_died", False):
                        process = getattr(getattr(self.km, "provisioner", None), "process", None)
                        self._ntkcourse_died = True
                        self._ntkcourse_exit_code = getattr(process, "returncode", None)
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    RunningKernel.get_message = get_message
    RunningKernel._ntkcourse_watched = True


class CellReporter:
    """pytest plugin: one JSON line per notebook cell, flushed as soon as the cell is done."""

    def __init__(self, path):
        self._file = open(path, "a", encoding="utf-8")
        self._pending = {}
        self._death_reported = False
        _install_kernel_watch()

    def _write(self, record):
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def pytest_collection_finish(self, session):
        # nbval has read the notebook: take it away from the kernel's working
        # directory, where student code could read the hidden checks.
        for item in session.items:
            try:
                Path(str(item.fspath)).unlink()
            except OSError:
                pass

    def pytest_collectreport(self, report):
        if report.failed:
            self._write({"cell": None, "when": "collect", "outcome": "failed",
                         "error": str(report.longrepr)[:4000]})

    def pytest_runtest_makereport(self, item, call):
        kernel = getattr(item.parent, "kernel", None)
        died = bool(getattr(kernel, "_ntkcourse_died", False))
        died_here = died and not self._death_reported
        self._death_reported = self._death_reported or died
        error = None
        if call.excinfo is not None:
            error = " ".join(str(call.excinfo.value).split())[:4000]
        self._pending[(item.nodeid, call.when)] = {
            "cell": getattr(item, "cell_num", None),
            "error": error,
            "outputs": _summarise_outputs(getattr(item, "test_outputs", None)) if call.when == "call" else [],
            "kernel_died": died_here,
            "kernel_exit_code": getattr(kernel, "_ntkcourse_exit_code", None) if died_here else None,
            "timed_out": bool(error and "Timeout of" in error and not died),
            "seconds": round(call.duration, 3),
        }

    def pytest_runtest_logreport(self, report):
        extra = self._pending.pop((report.nodeid, report.when), None)
        if extra is None or (report.when != "call" and not report.failed):
            return
        self._write({"when": report.when, "outcome": report.outcome,
                     "xfail": hasattr(report, "wasxfail"), **extra})


def _child_main(scratch: str, cell_timeout: float) -> int:
    """Body of the grading process: pytest --nbval-lax on the scratch notebook."""
    scratch = Path(scratch)
    private, work = scratch / "private", scratch / "work"
    log = open(private / "pytest.log", "w", encoding="utf-8")
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.environ.update({
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "JUPYTER_PATH": str(private / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(private / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    })
    os.chdir(work)
    import pytest

    import nbval.plugin

    # Only the plugins a notebook run needs; the others cost time in every run
    # (unraisableexception alone runs gc.collect several times at exit).
    unused = ("cacheprovider", "stepwise", "doctest", "junitxml", "pastebin", "unittest", "logging", "tmpdir",
              "monkeypatch", "recwarn", "setuponly", "setupplan", "unraisableexception", "threadexception",
              "faulthandler")
    code = pytest.main([
        "-c", str(private / "pytest.ini"), "--rootdir", str(work), "-s",
        *(arg for name in unused for arg in ("-p", f"no:{name}")),
        "--nbval-lax", "--nbval-kernel-name", KERNEL_NAME,
        "--nbval-cell-timeout", str(cell_timeout),
        "--nbval-kernel-startup-timeout", str(KERNEL_STARTUP_TIMEOUT),
        "-q", str(work / NOTEBOOK_NAME),
    ], plugins=[nbval.plugin, CellReporter(private / "results.jsonl")])
    log.flush()
    (private / "exit_code").write_text(str(int(code)), encoding="utf-8")
    try:
        import resource

        # This process and the kernel it waited for: the run's CPU cost, whatever the machine's load.
        usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        (private / "cpu_seconds").write_text(str(sum(u.ru_utime + u.ru_stime for u in usage)), encoding="utf-8")
    except (ImportError, OSError):
        pass
    return int(code)


def kill_tree(pid: int) -> None:
    """Kill process ``pid`` and all its descendants (kernels run in their own session)."""
    try:
        parent = psutil.Process(pid)
        processes = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=5)


def kill_leftovers(scratch: Path) -> list[int]:
    """Kill processes still working in ``scratch``: an orphaned kernel, or what student code started.

    They are recognised by their working directory (inherited from the
    kernel) or a path in their command line (the kernel's connection file).
    """
    scratch = str(scratch)
    killed = []
    for process in psutil.process_iter(["pid", "cwd", "cmdline"]):
        try:
            cwd = process.info["cwd"] or ""
            cmdline = process.info["cmdline"] or []
            if process.pid != os.getpid() and (cwd.startswith(scratch) or any(scratch in a for a in cmdline)):
                process.kill()
                killed.append(process.pid)
        except psutil.Error:
            pass
    return killed


def _read_number(path: Path, kind):
    try:
        return kind(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class NotebookRun:
    """One notebook run in a child process; ``start()``, then ``wait()``; ``kill()`` from any thread."""

    def __init__(self, notebook, *, mode, cell_timeout, memory_mb, values_json=None, scratch_root=None,
                 keep_scratch=False):
        if mode not in ("record", "grade"):
            raise ValueError(f"mode={mode!r}: expected 'record' or 'grade'")
        self.notebook = notebook
        self.mode = mode
        self.cell_timeout = float(cell_timeout)
        self.memory_mb = int(memory_mb)
        self.values_json = values_json
        self.scratch_root = scratch_root
        self.keep_scratch = keep_scratch
        self.scratch = None
        self.pid = None
        self._process = None
        self.killed = False

    def start(self):
        self.scratch = Path(tempfile.mkdtemp(prefix="ntkcourse-grade-", dir=self.scratch_root))
        private, work = self.scratch / "private", self.scratch / "work"
        private.mkdir()
        work.mkdir()
        (private / "runtime").mkdir()
        (private / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        values = private / "values.json"
        if self.values_json is not None:
            values.write_text(self.values_json, encoding="utf-8")
        write_kernelspec(private, self.mode, values, self.memory_mb)
        nbformat.write(self.notebook, str(work / NOTEBOOK_NAME))
        if self.keep_scratch:
            nbformat.write(self.notebook, str(private / NOTEBOOK_NAME))
        self._started = time.monotonic()
        if hasattr(os, "fork"):
            self.pid = _SERVER.fork(self.scratch, self.cell_timeout)
        else:
            self.pid = _spawn_direct(self.scratch, self.cell_timeout)
        try:
            self._process = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            self._process = None  # finished already
        return self

    def _running(self) -> bool:
        try:
            return self._process is not None and self._process.is_running() and \
                self._process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    @property
    def wall_limit(self) -> float:
        code_cells = sum(1 for c in self.notebook.cells if c.cell_type == "code")
        # nbval waits up to 5 s for a cell's output after interrupting it.
        return KERNEL_STARTUP_TIMEOUT + code_cells * (self.cell_timeout + 10.0) + 30.0

    def kill(self):
        self.killed = True
        if self._running():
            kill_tree(self.pid)

    def wait(self) -> RunResult:
        private = self.scratch / "private"
        try:
            deadline = self._started + self.wall_limit
            while self._running() and time.monotonic() < deadline:
                time.sleep(_POLL_SECONDS / 5)
            wall_timeout = self._running()
            if wall_timeout:
                kill_tree(self.pid)
            kill_leftovers(self.scratch)
            result = RunResult(exit_code=_read_number(private / "exit_code", int), wall_timeout=wall_timeout,
                               wall_limit=self.wall_limit, seconds=time.monotonic() - self._started,
                               cpu_seconds=_read_number(private / "cpu_seconds", float))
            self._read_results(private, result)
            return result
        finally:
            if not self.keep_scratch:
                shutil.rmtree(self.scratch, ignore_errors=True)

    def _read_results(self, private: Path, result: RunResult) -> None:
        try:
            lines = (private / "results.jsonl").read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill
            if record.get("when") == "collect":
                result.collect_error = record.get("error")
            elif record.get("cell") is not None:
                result.cells[int(record["cell"])] = record
        try:
            result.log_tail = (private / "pytest.log").read_text(encoding="utf-8", errors="replace")[-3000:]
        except OSError:
            pass
        if self.mode == "record":
            try:
                result.values = json.loads((private / "values.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                result.values = {}


def run_notebook(notebook, **options) -> RunResult:
    """Run ``notebook`` under nbval in a child process and wait for it (see :class:`NotebookRun`)."""
    return NotebookRun(notebook, **options).start().wait()


if __name__ == "__main__":
    # Run by path, so that neither the package (which may import JAX) nor this
    # folder (whose module names could shadow others) is on the import path.
    if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
        del sys.path[0]
    if sys.argv[1:2] == ["--serve"]:
        _serve()
    elif sys.argv[1:2] == ["--run"]:
        sys.exit(_child_main(sys.argv[2], float(sys.argv[3])))
    else:
        sys.exit("usage: runner.py --serve | --run SCRATCH CELL_TIMEOUT")
