#!/usr/bin/env python3
"""The two commands of the README, runnable with nothing but python3 and pip.

    python3 tasks.py book    # create .venv if needed, execute and build the book, open it
    python3 tasks.py test    # same environment, then the whole test suite

Both create the virtual environment in ``.venv/`` at the repository root when it
is missing, install the pinned versions of ``requirements.lock`` and this
package (editable), and reinstall only when the lock file changes.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import webbrowser
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".ntkcourse-installed"
BUILD_HTML = ROOT / "_build" / "html"
BROWSER_DEB_PACKAGES = ("chromium",)


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(cmd, **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kwargs)


def _lock_digest() -> str:
    text = LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()
    return hashlib.sha256(text).hexdigest()


def ensure_env() -> Path:
    """Create .venv and install the pinned environment when missing or stale."""
    py = _venv_python()
    if not py.exists():
        print(f"Creating the virtual environment in {VENV}", flush=True)
        _run([sys.executable, "-m", "venv", VENV])
    if not STAMP.exists() or STAMP.read_text() != _lock_digest():
        _run([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
        _run([py, "-m", "pip", "install", "--quiet", "-r", LOCK])
        _run([py, "-m", "pip", "install", "--quiet", "--no-deps", "-e", ROOT])
        STAMP.write_text(_lock_digest())
    return py


def ensure_browser() -> None:
    """The browser tests need Debian's chromium; install it when we can (root)."""
    if shutil.which("chromium"):
        return
    if os.name != "nt" and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        _run(["apt-get", "update", "-qq"], env=env)
        _run(["apt-get", "install", "-y", "-qq", *BROWSER_DEB_PACKAGES], env=env)
    if not shutil.which("chromium"):
        print("The browser tests need Chromium: install it with "
              "`apt-get install chromium` (Debian/Ubuntu) and run again.", flush=True)


def book(open_browser: bool = True) -> Path:
    py = ensure_env()
    # One page per exercise notebook, generated from exercises/ (tests/book/test_book.py checks them).
    _run([py, ROOT / "tools" / "exercise_pages.py"])
    cold = not (ROOT / "_build" / ".doctrees").exists()
    cached = sum(1 for _ in (ROOT / "_build" / ".jupyter_cache" / "executed").glob("*"))
    # Figures come from the notebooks' inline backend: a MPLBACKEND set in the
    # shell would silence them (and be stored in the execution cache).
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    start = time.perf_counter()
    try:
        _run([py.parent / "jupyter-book", "build", ROOT, "-W", "--keep-going"], env=env)
    except subprocess.CalledProcessError:
        print(f"\nThe book build failed after {time.perf_counter() - start:.0f} s.", flush=True)
        raise
    elapsed = time.perf_counter() - start
    index = BUILD_HTML / "index.html"
    kind = (f"cold build: no previous build, {cached} notebooks in the execution cache" if cold
            else "incremental build; `rm -rf _build` for a cold one")
    print(f"\nBook built in {elapsed:.0f} s ({kind}). Open {index.as_uri()}", flush=True)
    if open_browser and not os.environ.get("CI") and (os.environ.get("DISPLAY") or sys.platform == "darwin"):
        webbrowser.open(index.as_uri())
    return index


def test(extra) -> int:
    py = ensure_env()
    ensure_browser()
    # One worker (pytest-xdist) more than the machine has cores, up to 4, where it has two or more: the
    # suite waits at times (kernels starting, the browser, the book build's Sphinx), and a third worker on
    # the 2-core machine fills those gaps (README: 30 min 6 s with three workers, 31 min 43 s with four).
    # The suite keeps the book build, each assignment's grading run and each file's tests on one worker
    # (tests/conftest.py). `python3 tasks.py test -n 0` runs in one process.
    if not any(a == "-n" or a.startswith(("-n=", "--numprocesses")) or (a.startswith("-n") and a[2:].isdigit())
               for a in extra):
        cores = os.cpu_count() or 1
        workers = min(cores + 1, 4) if cores > 1 else 1
        extra = (["-n", str(workers)] if workers > 1 else []) + list(extra)
    cmd = [py, "-m", "pytest", *extra]
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=ROOT).returncode


def main(argv) -> int:
    try:
        return _main(argv)
    except subprocess.CalledProcessError as exc:
        print(f"\nFailed (exit status {exc.returncode}): {' '.join(map(str, exc.cmd))}", file=sys.stderr)
        return exc.returncode or 1


def _main(argv) -> int:
    if not argv or argv[0] not in {"book", "test", "env"}:
        print(__doc__)
        return 2
    if argv[0] == "book":
        book()
        return 0
    if argv[0] == "env":
        ensure_env()
        return 0
    return test(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
