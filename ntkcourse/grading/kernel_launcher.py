"""Start the IPython kernel that runs a graded notebook, inside its sandbox.

Run as a script, by path (``python .../kernel_launcher.py [options] -- -f
CONNECTION_FILE ...``), so that starting a kernel never imports the
``ntkcourse`` package itself (which may import JAX). Before any student code,
with what the operating system provides (no home-made sandbox):

1. with ``--namespaces`` (the grader runs as root and Linux allows it): new
   mount, PID, IPC and network namespaces (``unshare(2)``): no network at
   all; the kernel talks to the grader over Unix sockets in ``--ipc-dir``,
   bound into its view at the same path. The kernel is process 1 of
   its PID namespace, so it sees only its own processes in a fresh ``/proc``
   (not the grader's arguments or working directory), and when it ends the
   kernel of Linux kills every process left in the namespace. Fresh, size-capped
   ``tmpfs`` on ``/tmp``, ``/var/tmp`` and ``/dev/shm`` are the only writable
   places; every ``--hide`` folder (solutions, submissions, ``--out``, the
   grader's key, the scratch folders of all runs) is covered by an empty
   read-only ``tmpfs``, and so is any folder closed to other users (such as
   ``/root``) above the Python environment, into which only the environment
   and the package (``--expose``) are bound back. With ``--compile-cache``,
   that folder (JAX's persistent compilation cache of the grading run) is
   bound at ``/tmp/.jax-compile-cache``: writable for the reference solution's
   run (``--compile-cache-writable``), read-only for a submission, which also
   cannot list it (mode 711, set by the grader): it can read a compiled
   program only by its key, a hash of the program itself;
2. with ``--cgroup``: joins that memory cgroup, which caps the memory of all
   the submission's processes together; limits (``setrlimit``): address space
   per process (``--memory-mb``),
   processes and threads of the slot user (``--nproc``), bytes per written
   file (``--fsize-mb``), no core files;
3. with ``--uid``/``--gid``: drops to the run slot's unprivileged user (no
   supplementary groups, ``PR_SET_NO_NEW_PRIVS`` so no setuid program gives
   the rights back) and asks Linux to kill the kernel if the launcher dies;
4. imports :mod:`ntkcourse.grading.checks` in ``report`` mode (set by the
   kernelspec's environment), then hands over to ipykernel.

The launcher process itself stays outside, as root, waiting for the kernel:
jupyter_client's signals reach the kernel through its process group, and a
kill of the launcher takes the kernel's whole namespace down.
"""
import ctypes
import os
import signal
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
KERNEL_HOME = "/tmp/work"
FRESH = ("/tmp", "/var/tmp", "/dev/shm")
CONNECTION_COPY = "/tmp/.kernel-connection.json"
COMPILE_CACHE = "/tmp/.jax-compile-cache"


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    return libc


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(libc, source, target, fstype, flags, data):
    def enc(s):
        return None if s is None else s.encode()

    _check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _parse(argv):
    options = {"memory_mb": 0, "nproc": 0, "fsize_mb": 0, "uid": None, "gid": None, "hide": [], "expose": [],
               "namespaces": False, "tmpfs_mb": 256, "ipc_dir": None, "cgroup": None, "compile_cache": None,
               "compile_cache_writable": False}
    while argv and argv[0] != "--":
        name = argv.pop(0)
        if name in ("--namespaces", "--compile-cache-writable"):
            options[name[2:].replace("-", "_")] = True
        elif name in ("--hide", "--expose"):
            options[name[2:]].append(argv.pop(0))
        elif name in ("--ipc-dir", "--cgroup", "--compile-cache"):
            options[name[2:].replace("-", "_")] = argv.pop(0)
        elif name in ("--memory-mb", "--nproc", "--fsize-mb", "--uid", "--gid", "--tmpfs-mb"):
            options[name[2:].replace("-", "_")] = int(argv.pop(0))
        else:
            raise SystemExit(f"kernel_launcher: unknown option {name!r}")
    return options, argv[1:]


def _connection_file(kernel_argv):
    for i, arg in enumerate(kernel_argv[:-1]):
        if arg == "-f":
            return i + 1
    return None


def _closed_ancestor(path):
    """The topmost folder above ``path`` that other users cannot enter (such as /root), or ``None``."""
    parts = os.path.abspath(path).split("/")[1:]
    for depth in range(1, len(parts)):
        folder = "/" + "/".join(parts[:depth])
        try:
            if not os.stat(folder).st_mode & 0o001:
                return folder
        except OSError:
            return None
    return None


def _expose(libc, paths):
    """Make ``paths`` (the Python environment, the package) reachable by the slot user.

    Where one lies under a folder others cannot enter (a pyenv in /root), that
    folder is covered by an empty tmpfs, and only ``paths`` are bound back into
    it: the rest of it stays out of sight.
    """
    plans = []
    for path in paths:
        closed = _closed_ancestor(path)
        if closed is not None and os.path.isdir(path):
            plans.append((closed, path, os.open(path, os.O_RDONLY | os.O_DIRECTORY)))
    for closed in sorted({c for c, _, _ in plans}):
        _mount(libc, "tmpfs", closed, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    for _, path, descriptor in plans:
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(libc, f"/proc/self/fd/{descriptor}", path, None, MS_BIND | MS_REC, None)
        os.close(descriptor)


def _enter_namespaces(libc, options, kernel_argv):
    """Inside the new namespaces, as root: the private file system view."""
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    index = _connection_file(kernel_argv)
    connection = open(kernel_argv[index], "rb").read() if index is not None else None
    ipc = os.open(options["ipc_dir"], os.O_RDONLY | os.O_DIRECTORY) if options["ipc_dir"] else None
    cache = os.open(options["compile_cache"], os.O_RDONLY | os.O_DIRECTORY) if options["compile_cache"] else None
    _mount(libc, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    _expose(libc, options["expose"])
    # What the kernel must read may itself lie in a place that gets a fresh
    # tmpfs (a clone of the repository in /tmp, as on a CI machine): keep a
    # handle on it now and bind it back into the fresh tmpfs, alone.
    under_fresh = [(path, os.open(path, os.O_RDONLY | os.O_DIRECTORY)) for path in options["expose"]
                   if os.path.isdir(path) and any(path == f or path.startswith(f + "/") for f in FRESH)]
    for place, size in zip(FRESH, (options["tmpfs_mb"], 16, 64)):
        if os.path.isdir(place):
            _mount(libc, "tmpfs", place, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size}m,mode=1777")
    for path, descriptor in under_fresh:
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(libc, f"/proc/self/fd/{descriptor}", path, None, MS_BIND | MS_REC, None)
        os.close(descriptor)
    for path in options["hide"]:
        if path in FRESH or any(path.startswith(f + "/") for f in FRESH):
            continue  # already a fresh, empty tmpfs
        if os.path.isdir(path):
            _mount(libc, "tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=000")
        elif os.path.exists(path):
            _mount(libc, "/dev/null", path, None, MS_BIND, None)
    if ipc is not None:
        # The folder of the kernel's sockets, at the same path as outside.
        os.makedirs(options["ipc_dir"], mode=0o700, exist_ok=True)
        _mount(libc, f"/proc/self/fd/{ipc}", options["ipc_dir"], None, MS_BIND, None)
        os.close(ipc)
    if cache is not None:
        _bind_compile_cache(libc, cache, options["compile_cache_writable"])
    os.makedirs(KERNEL_HOME, exist_ok=True)
    if connection is not None:
        with open(CONNECTION_COPY, "wb") as handle:
            handle.write(connection)
        kernel_argv[index] = CONNECTION_COPY
    if options["uid"] is not None:
        os.chown(KERNEL_HOME, options["uid"], options["gid"])
        if connection is not None:
            os.chown(CONNECTION_COPY, options["uid"], options["gid"])
    os.chmod(KERNEL_HOME, 0o700)
    os.chdir(KERNEL_HOME)
    os.environ.update({"HOME": KERNEL_HOME, "TMPDIR": "/tmp", "IPYTHONDIR": "/tmp/.ipython",
                       "MPLCONFIGDIR": "/tmp/.matplotlib", "XDG_CACHE_HOME": "/tmp/.cache"})
    # Process 1 of a namespace has no parent that ipykernel could poll.
    os.environ.pop("JPY_PARENT_PID", None)


def _bind_compile_cache(libc, descriptor, writable):
    """Bind the run's compilation cache (open as ``descriptor``) at :data:`COMPILE_CACHE` and point JAX at it.

    Read-only unless ``writable``; a reader never tries to write (a compile-time threshold no compilation
    reaches), so a submission's own programs are compiled as usual and leave no warning.
    """
    os.makedirs(COMPILE_CACHE, mode=0o755, exist_ok=True)
    _mount(libc, f"/proc/self/fd/{descriptor}", COMPILE_CACHE, None, MS_BIND, None)
    os.close(descriptor)
    if not writable:
        _mount(libc, None, COMPILE_CACHE, None,
               MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    os.environ.update({"JAX_COMPILATION_CACHE_DIR": COMPILE_CACHE,
                       "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0" if writable else "1e12",
                       "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"})


def _limit(options):
    import resource

    def cap(which, value):
        resource.setrlimit(which, (value, value))

    if options["memory_mb"] > 0:
        cap(resource.RLIMIT_AS, options["memory_mb"] * 2**20)
    if options["fsize_mb"] > 0:
        cap(resource.RLIMIT_FSIZE, options["fsize_mb"] * 2**20)
    if options["nproc"] > 0:
        cap(resource.RLIMIT_NPROC, options["nproc"])
    cap(resource.RLIMIT_CORE, 0)


def _drop_privileges(libc, options):
    if options["uid"] is None:
        return
    os.setgroups([])
    os.setgid(options["gid"])
    os.setuid(options["uid"])
    if os.getuid() != options["uid"] or os.geteuid() != options["uid"]:
        raise OSError("kernel_launcher: could not drop to the slot user")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _preload_checks(path):
    import importlib.util

    name = "ntkcourse.grading.checks"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered under its full name, so `from ntkcourse.grading.checks import
    # checking` in a check cell finds it without importing the package.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _run_kernel(kernel_argv):
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        del sys.path[0]
    _preload_checks(os.path.join(here, "checks.py"))
    sys.argv = [sys.argv[0], *kernel_argv]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


def _wait_for(pid):
    """The launcher outside the namespace: wait for the kernel and exit with its status."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the kernel gets it through the process group
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status))


def main(argv):
    options, kernel_argv = _parse(list(argv))
    # A compilation cache of the grader's own environment is never a submission's to read or write; the
    # grading run's own cache is bound in below (namespaces only).
    for name in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                 "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"):
        os.environ.pop(name, None)
    if not sys.platform.startswith("linux"):
        # No namespaces, users or prctl here (the grader runs without them and says so).
        if options["memory_mb"] > 0 and hasattr(os, "fork"):
            import resource

            limit = options["memory_mb"] * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        _run_kernel(kernel_argv)
        return
    libc = _libc()
    if options["cgroup"]:
        # Every process of the submission is born in it: their memory is capped together.
        with open(os.path.join(options["cgroup"], "cgroup.procs"), "w") as handle:
            handle.write(str(os.getpid()))
    if options["namespaces"]:
        _check(libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET), "unshare")
        pid = os.fork()
        if pid:
            _wait_for(pid)
        _enter_namespaces(libc, options, kernel_argv)
    _limit(options)
    _drop_privileges(libc, options)
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
    _run_kernel(kernel_argv)


if __name__ == "__main__":
    main(sys.argv[1:])
