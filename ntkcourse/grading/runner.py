"""Run one notebook under nbval, in its own process, kernel and scratch directory.

Each run gets a fresh scratch directory::

    work/graded.ipynb          the notebook (deleted once nbval has read it)
    private/jupyter/kernels/   a kernelspec whose kernel is kernel_launcher.py
    private/results.jsonl      one line per cell, written as nbval goes
    private/pytest.log         pytest's own output

``private/`` belongs to the grader (mode 700); the kernel runs as the run
slot's user, in its own namespaces where the machine allows it (see
:mod:`~ntkcourse.grading.sandbox` and :mod:`~ntkcourse.grading.kernel_launcher`),
so student code can neither read nor write it.

and a fresh process, which calls ``pytest --nbval-lax`` on the notebook. The
process is forked from a small server (this file, run as a script) that has
already imported pytest and nbval, so that a run does not pay their import
time. (Not ``multiprocessing``'s fork server: it would re-run the caller's
main module in every child, and import the package, with JAX, in the server.)
Every cell only has to run (``--nbval-lax``); check cells report their data
(:data:`~ntkcourse.grading.checks.PAYLOAD_MIME` outputs), which the grader
judges. A small pytest plugin records each cell's outcome and outputs, counts
the bytes of output (a kernel past ``output_limit`` is killed), and notices
within a fraction of a second when the kernel has died (nbval alone would wait
for the cell timeout).

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

from ntkcourse.grading.checks import PAYLOAD_MIME
from ntkcourse.grading.sandbox import Sandbox

KERNEL_NAME = "ntkcourse-grader"
NOTEBOOK_NAME = "graded.ipynb"
IPC_FILE = "ipc_dir"  # in private/: where the kernel's Unix sockets are, when not over TCP
KERNEL_STARTUP_TIMEOUT = 60.0
# Characters of output (all cells together) a kernel may send before it is
# killed; the course's notebooks send well under 1 MB.
DEFAULT_OUTPUT_LIMIT = 32 * 2**20
MAX_PAYLOAD_CHARS = 8 * 2**20
_OUTPUT_LIMIT = [DEFAULT_OUTPUT_LIMIT]  # set in the grading process from the request
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
    seconds: float = 0.0
    output_exceeded: bool = False
    leftover_processes: int = 0  # processes of the submission still running when its run ended (killed)
    oom_kills: int = 0  # processes killed because the submission's processes together exceeded the memory
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

    def fork(self, scratch: Path, cell_timeout: float, output_limit: int) -> int:
        """Start a grading process on ``scratch``; return its pid."""
        with self._lock:
            for _ in range(2):
                self._ensure_running()
                try:
                    self._process.stdin.write(json.dumps({"scratch": str(scratch), "cell_timeout": cell_timeout,
                                                          "output_limit": output_limit}) + "\n")
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
                code = _child_main(request["scratch"], float(request["cell_timeout"]), int(request["output_limit"]))
            except BaseException:
                traceback.print_exc()  # into the run's pytest.log once _child_main has opened it
            finally:
                os._exit(code)
        sys.stdout.write(json.dumps({"pid": pid}) + "\n")
        sys.stdout.flush()


def _spawn_direct(scratch: Path, cell_timeout: float, output_limit: int) -> int:
    """Where there is no fork (Windows): a fresh interpreter per run."""
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--run", str(scratch),
                             str(cell_timeout), str(output_limit)]).pid


def write_kernelspec(private: Path, work: Path, memory_mb: int, sandbox: Sandbox) -> None:
    spec_dir = private / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, str(_HERE / "kernel_launcher.py"), "--memory-mb", str(int(memory_mb)),
                 *sandbox.launcher_options(), "--", "-f", "{connection_file}", "--HistoryManager.enabled=False"],
        "display_name": "ntkcourse grader",
        "language": "python",
        "env": {
            "NTKCOURSE_CHECKS_MODE": "report",
            "PYTHONPATH": _path_with_package(os.environ.get("PYTHONPATH", "")),
            "IPYTHONDIR": str(work / ".ipython"),
            "MPLCONFIGDIR": str(work / ".matplotlib"),
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
            entry = {"type": kind, "text": str(data.get("text/plain", ""))[:2000]}
            payload = data.get(PAYLOAD_MIME)
            if payload is not None:
                # Kept whole up to a bound: the grader parses it strictly.
                text = payload if isinstance(payload, str) else json.dumps(payload)
                entry["payload"] = text if len(text) <= MAX_PAYLOAD_CHARS else None
            summary.append(entry)
    return summary


def _count_output(kernel, message):
    """Add the size of an iopub message to the run's output; kill the kernel past the limit."""
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, dict):
        return
    size = sum(len(str(v)) for v in content.values())
    kernel._ntkcourse_output = getattr(kernel, "_ntkcourse_output", 0) + size
    if kernel._ntkcourse_output > _OUTPUT_LIMIT[0] and not getattr(kernel, "_ntkcourse_output_exceeded", False):
        kernel._ntkcourse_output_exceeded = True
        process = getattr(getattr(getattr(kernel, "km", None), "provisioner", None), "process", None)
        if process is not None:
            try:
                process.kill()
            except OSError:
                pass


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
                message = original(self, stream, timeout=step)
                _count_output(self, message)
                return message
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
            "output_exceeded": bool(getattr(kernel, "_ntkcourse_output_exceeded", False)),
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


def _become_subreaper() -> None:
    """Linux: orphans of this run (a sandboxed kernel whose launcher was killed) become our children.

    So they are reaped at once (no zombie lingers with the slot user's uid) and
    their CPU time is counted in this run's ``RUSAGE_CHILDREN``.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        except (OSError, AttributeError):
            pass


def _reap_children(timeout: float = 2.0) -> None:
    """Wait for the children that have ended (or end within ``timeout`` s); never block longer."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.01)


def _use_ipc_transport(ipc_dir: Path) -> None:
    """Make nbval talk to its kernel over Unix sockets in ``ipc_dir`` instead of loopback TCP.

    The sockets are files in a folder only the run's kernel (its slot user)
    and root can enter, so no other submission's kernel can connect to them,
    and the kernel needs no network at all (the launcher gives it none).
    """
    import nbval.kernel
    from jupyter_client.manager import KernelManager

    class IpcKernelManager(KernelManager):
        def __init__(self, **kwargs):
            super().__init__(transport="ipc", ip=str(ipc_dir / "k"), **kwargs)

    nbval.kernel.KernelManager = IpcKernelManager


def _child_main(scratch: str, cell_timeout: float, output_limit: int) -> int:
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
    _OUTPUT_LIMIT[0] = int(output_limit)
    _become_subreaper()
    import pytest

    import nbval.plugin

    ipc_dir = (private / IPC_FILE).read_text(encoding="utf-8") if (private / IPC_FILE).is_file() else ""
    if ipc_dir:
        _use_ipc_transport(Path(ipc_dir))

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
    _reap_children()
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

    def __init__(self, notebook, *, cell_timeout, memory_mb, sandbox=None, scratch_root=None,
                 keep_scratch=False, output_limit=DEFAULT_OUTPUT_LIMIT):
        self.notebook = notebook
        self.cell_timeout = float(cell_timeout)
        self.memory_mb = int(memory_mb)
        self.sandbox = sandbox if sandbox is not None else Sandbox()
        self.scratch_root = scratch_root
        self.keep_scratch = keep_scratch
        self.output_limit = int(output_limit)
        self.scratch = None
        self.pid = None
        self._process = None
        self.killed = False

    def start(self):
        self.scratch = Path(tempfile.mkdtemp(prefix="ntkcourse-grade-", dir=self.scratch_root))
        private, work = self.scratch / "private", self.scratch / "work"
        private.mkdir(mode=0o700)
        work.mkdir()
        if self.sandbox.uid is not None:
            # The slot's user may enter work/ (its kernel's folder), nothing else here.
            os.chmod(self.scratch, 0o711)
            os.chown(work, self.sandbox.uid, self.sandbox.gid)
            os.chmod(work, 0o700)
        (private / "runtime").mkdir()
        (private / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        if self.sandbox.namespaces:
            # Short (a Unix socket path has at most 107 bytes), outside the scratch folder.
            self.sandbox.ipc_dir = tempfile.mkdtemp(prefix="ntk-ipc-", dir="/tmp")
            if self.sandbox.uid is not None:
                os.chown(self.sandbox.ipc_dir, self.sandbox.uid, self.sandbox.gid)
            (private / IPC_FILE).write_text(self.sandbox.ipc_dir, encoding="utf-8")
        write_kernelspec(private, work, self.memory_mb, self.sandbox)
        nbformat.write(self.notebook, str(work / NOTEBOOK_NAME))
        if self.keep_scratch:
            nbformat.write(self.notebook, str(private / NOTEBOOK_NAME))
        self._oom_before = self.sandbox.oom_kills()
        self._started = time.monotonic()
        if hasattr(os, "fork"):
            self.pid = _SERVER.fork(self.scratch, self.cell_timeout, self.output_limit)
        else:
            self.pid = _spawn_direct(self.scratch, self.cell_timeout, self.output_limit)
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
            kill_leftovers(self.scratch)  # the kernel's launcher, if nbval did not wait for it
            leftovers = self.sandbox.cleanup(grace=2.0)
            result = RunResult(exit_code=_read_number(private / "exit_code", int), wall_timeout=wall_timeout,
                               wall_limit=self.wall_limit, seconds=time.monotonic() - self._started,
                               cpu_seconds=_read_number(private / "cpu_seconds", float),
                               leftover_processes=leftovers,
                               oom_kills=self.sandbox.oom_kills() - self._oom_before)
            self._read_results(private, result)
            return result
        finally:
            if self.sandbox.ipc_dir:
                shutil.rmtree(self.sandbox.ipc_dir, ignore_errors=True)
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
                result.output_exceeded = result.output_exceeded or bool(record.get("output_exceeded"))
        try:
            result.log_tail = (private / "pytest.log").read_text(encoding="utf-8", errors="replace")[-3000:]
        except OSError:
            pass


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
        sys.exit(_child_main(sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
    else:
        sys.exit("usage: runner.py --serve | --run SCRATCH CELL_TIMEOUT OUTPUT_LIMIT")
