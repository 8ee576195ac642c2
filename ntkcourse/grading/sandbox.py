"""Which isolation the grader can give each submission here, and the run slots' users.

The kernel itself is put in its sandbox by :mod:`kernel_launcher` (run by
path, in the kernel's process); this module is the grader's side:

- :func:`probe` finds out, once per run, what this machine allows: a dedicated
  unprivileged user per run slot (only when the grader runs as root: it can
  create ``ntkgrade<k>`` users with ``useradd`` and switch to them) and Linux
  namespaces (mount, PID, IPC; root only). It returns an :class:`Isolation`
  whose :meth:`Isolation.missing` says, in words, what protection is missing;
- :class:`SlotPool` hands each concurrent run its own slot (and so its own
  user, so that ``RLIMIT_NPROC`` counts that submission's processes only, and
  :func:`kill_user_processes` can end all of them without touching another's);
- :class:`Sandbox` is what one run passes to the kernel launcher.
"""
from __future__ import annotations

import os
import pwd
import queue
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

import psutil

SLOT_USER_PREFIX = "ntkgrade"
# Processes and threads of one submission (RLIMIT_NPROC counts threads): a
# kernel that has run a jitted JAX function has about 30 on a 2-core machine.
DEFAULT_NPROC = 128
# Largest file a submission may write (RLIMIT_FSIZE), and its /tmp.
DEFAULT_FSIZE_MB = 64
DEFAULT_TMPFS_MB = 256

_PROBE = ("import ctypes, os, sys\n"
          "libc = ctypes.CDLL(None, use_errno=True)\n"
          "sys.exit(0 if libc.unshare(0x00020000 | 0x20000000 | 0x08000000 | 0x40000000) == 0 else 1)\n")


CGROUP_MEMORY = "/sys/fs/cgroup/memory"  # cgroup v1's memory controller


@dataclass(frozen=True)
class Isolation:
    """What this machine lets the grader do for each submission."""

    root: bool
    slot_users: bool
    namespaces: bool
    memory_cgroup: bool = False

    def missing(self) -> list[str]:
        """The protections that are missing here, in words for the instructor (empty when none is)."""
        missing = []
        if not self.root:
            missing.append("the grader is not root, so every submission runs as your own user: it can read "
                           "and write everything you can (your files, --out, solutions/), see and signal your "
                           "processes, and its process count is not limited; run as root, or in a container, "
                           "for a dedicated user per run slot and private namespaces")
        elif not self.slot_users:
            missing.append("no dedicated user per run slot (useradd failed, or without namespaces that user "
                           "cannot read the Python environment): submissions run as root")
        if self.root and not self.memory_cgroup:
            missing.append("no writable memory cgroup (cgroup v1 at /sys/fs/cgroup/memory): the memory limit "
                           "holds per process, not for all processes of a submission together")
        if self.root and not self.namespaces:
            missing.append("Linux namespaces are not available (unshare failed; a container without "
                           "CAP_SYS_ADMIN?): submissions can see other processes' arguments and read every "
                           "file that is readable by all users, such as solutions/ and --out")
        return missing


def probe() -> Isolation:
    """What isolation is available, measured (not guessed) on this machine."""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    if not root or not sys.platform.startswith("linux"):
        return Isolation(root=root, slot_users=False, namespaces=False)
    try:
        uid, gid = ensure_slot_user(0)
        slot_users = True
    except OSError:
        slot_users = False
    try:
        namespaces = subprocess.run([sys.executable, "-c", _PROBE], timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        namespaces = False
    if slot_users and not namespaces:
        # Without a mount namespace the slot user must reach the environment itself.
        try:
            slot_users = subprocess.run([sys.executable, "-c", "import numpy"], user=uid, group=gid,
                                        extra_groups=[], cwd="/", capture_output=True, timeout=60).returncode == 0
        except (OSError, subprocess.SubprocessError):
            slot_users = False
    memory_cgroup = os.access(CGROUP_MEMORY, os.W_OK) and os.path.isfile(os.path.join(CGROUP_MEMORY, "cgroup.procs"))
    return Isolation(root=True, slot_users=slot_users, namespaces=namespaces, memory_cgroup=memory_cgroup)


def slot_user_name(slot: int) -> str:
    return f"{SLOT_USER_PREFIX}{int(slot)}"


def ensure_slot_user(slot: int) -> tuple[int, int]:
    """``(uid, gid)`` of slot ``slot``'s user, created (a system user without home or shell) if missing."""
    name = slot_user_name(slot)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        result = subprocess.run([useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent",
                                 "--shell", "/usr/sbin/nologin", "--user-group", name],
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            try:
                entry = pwd.getpwnam(name)  # another grader created it meanwhile
            except KeyError:
                raise OSError(f"ensure_slot_user: useradd {name} failed: {result.stderr.strip()[:300]}") from None
        else:
            entry = pwd.getpwnam(name)
    if entry.pw_uid == 0:
        raise OSError(f"ensure_slot_user: user {name} has uid 0")
    return entry.pw_uid, entry.pw_gid


def user_processes(uid: int) -> list[psutil.Process]:
    """The live processes of ``uid`` (zombies, already dead and waiting to be reaped, left out)."""
    found = []
    for process in psutil.process_iter(["uids", "status"]):
        try:
            if process.info["uids"] is not None and process.info["status"] != psutil.STATUS_ZOMBIE and \
                    uid in (process.info["uids"].real, process.info["uids"].effective):
                found.append(process)
        except psutil.Error:
            pass
    return found


def kill_user_processes(uid: int, rounds: int = 20) -> int:
    """SIGKILL every process of ``uid`` until none is left (a fork bomb respawns); how many were killed."""
    killed = 0
    for _ in range(rounds):
        processes = user_processes(uid)
        if not processes:
            return killed
        for process in processes:
            try:
                process.kill()
                killed += 1
            except psutil.Error:
                pass
        psutil.wait_procs(processes, timeout=1)
    return killed


@dataclass
class Sandbox:
    """How one run's kernel is confined (the kernel launcher's options)."""

    uid: int | None = None
    gid: int | None = None
    namespaces: bool = False
    hide: list = field(default_factory=list)
    expose: list = field(default_factory=list)
    ipc_dir: str = ""  # the kernel's Unix sockets (set by the run, with namespaces)
    cgroup: str = ""  # a memory cgroup the kernel's launcher joins (all its processes together)
    nproc: int = DEFAULT_NPROC
    fsize_mb: int = DEFAULT_FSIZE_MB
    tmpfs_mb: int = DEFAULT_TMPFS_MB
    # JAX's persistent compilation cache of the run (a folder outside the sandbox, bound into it; namespaces
    # only): written by the reference solution's run, read-only and unlistable for submissions (see grade.py).
    compile_cache: str = ""
    compile_cache_writable: bool = False

    def launcher_options(self) -> list[str]:
        options = ["--fsize-mb", str(self.fsize_mb), "--tmpfs-mb", str(self.tmpfs_mb)]
        if self.uid is not None:
            options += ["--uid", str(self.uid), "--gid", str(self.gid), "--nproc", str(self.nproc)]
        if self.cgroup:
            options += ["--cgroup", self.cgroup]
        if self.namespaces:
            options.append("--namespaces")
            for path in self.hide:
                options += ["--hide", str(path)]
            for path in self.expose:
                options += ["--expose", str(path)]
            if self.ipc_dir:
                options += ["--ipc-dir", self.ipc_dir]
            if self.compile_cache:
                options += ["--compile-cache", self.compile_cache]
                if self.compile_cache_writable:
                    options.append("--compile-cache-writable")
        return options

    def oom_kills(self) -> int:
        """How many processes the memory cgroup's OOM killer has killed so far (0 without a cgroup)."""
        if not self.cgroup:
            return 0
        try:
            with open(os.path.join(self.cgroup, "memory.oom_control")) as handle:
                for line in handle:
                    if line.startswith("oom_kill "):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0

    def cleanup(self, grace: float = 0.0) -> int:
        """Kill every process of this slot's user still there after ``grace`` seconds; how many there were.

        (A kernel being shut down needs a moment to exit; what outlives that
        was left running by the submission.)
        """
        if self.uid is None:
            return 0
        deadline = time.monotonic() + grace
        while user_processes(self.uid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return kill_user_processes(self.uid)


class SlotPool:
    """Run slots, one per concurrent run; each slot has its own user when the isolation has them.

    A slot's user is held under an exclusive lock (``flock`` on
    ``<tmp>/ntkcourse-slots/<k>.lock``) while a run uses it, so two graders on
    one machine never share a user (each kills its user's processes at the end
    of a run).
    """

    def __init__(self, isolation: Isolation, slots: int, hide=(), expose=(), nproc=DEFAULT_NPROC, memory_mb=0):
        self.isolation = isolation
        self.memory_mb = int(memory_mb)
        self.hide = [str(p) for p in hide]
        self.expose = [str(p) for p in expose]
        self.nproc = nproc
        self.compile_cache = ""  # a compilation cache every run reads, read-only (set by grade.py)
        self._free = queue.Queue()
        for slot in range(slots):
            self._free.put(slot)

    def acquire(self) -> tuple[tuple, Sandbox]:
        """A free slot (blocks while all are in use): ``(token for release, its Sandbox)``."""
        slot = self._free.get()
        sandbox = Sandbox(namespaces=self.isolation.namespaces, hide=list(self.hide), expose=list(self.expose),
                          nproc=self.nproc, compile_cache=self.compile_cache if self.isolation.namespaces else "")
        lock = None
        if self.isolation.slot_users:
            try:
                user, lock = _lock_a_user()
                sandbox.uid, sandbox.gid = ensure_slot_user(user)
            except BaseException:
                if lock is not None:
                    lock.close()
                self._free.put(slot)
                raise
            sandbox.cleanup()  # a previous run that was killed may have left some
            if self.isolation.memory_cgroup and self.memory_mb > 0:
                sandbox.cgroup = _memory_cgroup(slot_user_name(user), self.memory_mb)
        return (slot, lock), sandbox

    def release(self, token) -> None:
        slot, lock = token
        if lock is not None:
            lock.close()  # closing the file releases the flock
        self._free.put(slot)


def _memory_cgroup(name: str, memory_mb: int) -> str:
    """A cgroup (v1) capping the memory of all processes in it together at ``memory_mb`` MB."""
    path = os.path.join(CGROUP_MEMORY, name)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "memory.limit_in_bytes"), "w") as handle:
        handle.write(str(memory_mb * 2**20))
    return path


def _lock_a_user():
    """``(k, open lock file)`` for the first slot user ``k`` no other run on this machine holds."""
    import fcntl
    import itertools
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.gettempdir()) / "ntkcourse-slots"
    folder.mkdir(mode=0o700, exist_ok=True)
    for k in itertools.count():
        handle = open(folder / f"{k}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return k, handle
        except BlockingIOError:
            handle.close()
