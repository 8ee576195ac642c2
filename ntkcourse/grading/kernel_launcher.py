"""Start the IPython kernel that runs a graded notebook.

Run as a script, by path (``python .../kernel_launcher.py --memory-mb N -f
CONNECTION_FILE ...``), so that starting a kernel never imports the
``ntkcourse`` package itself (which may import JAX). Before any student code:

1. caps the kernel's address space (``RLIMIT_AS``) at ``--memory-mb``, so that a
   memory bomb ends in ``MemoryError`` instead of taking the machine down;
2. asks Linux to kill the kernel when the grading process that started it dies;
3. imports :mod:`ntkcourse.grading.checks`, which fixes the check mode and loads
   the reference values, then deletes the values file from disk;
4. hands over to ipykernel.
"""
import os
import sys


def _die_with_parent():
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


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


def main(argv):
    memory_mb = 0
    if argv[:1] == ["--memory-mb"]:
        memory_mb, argv = int(argv[1]), argv[2:]
    if memory_mb > 0:
        import resource

        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _die_with_parent()
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        del sys.path[0]
    checks = _preload_checks(os.path.join(here, "checks.py"))
    if checks._SESSION.mode == "grade" and checks._SESSION.path:
        try:
            os.unlink(checks._SESSION.path)
        except OSError:
            pass
    sys.argv = [sys.argv[0], *argv]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main(sys.argv[1:])
