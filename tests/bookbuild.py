"""Build the book the way a fresh checkout would, for tests/test_book*.py.

The build runs in a temporary copy of the checkout holding only the files git
would ship (tracked files, and untracked files that .gitignore does not
exclude): no Sphinx environment, no doctrees, no stale HTML, and none of the
ignored files (.venv/, _build/, test-artifacts/, ...), so a page that builds
here builds on a clean clone and nothing ignored can leak into the book.

The build is also the one execution of the chapters in the suite: execution
errors fail it (``execute.allow_errors: false``), and :func:`execution_reports`
reads, from the build's Sphinx environment, each notebook's execution record
(succeeded or not, the traceback of the cell that raised, the run time) for
tests/book/test_course_notebooks.py.

The execution cache (jupyter-cache, which keys notebooks on their code only)
is shared between test runs, but in a folder named after
:func:`package_fingerprint`, a hash of the package's files and the pinned
environment: a change to ``ntkcourse/`` or to ``requirements.lock``
re-executes every chapter, and a chapter whose code and package did not change
is not executed again. With ``NTKCOURSE_BOOK_CACHE=off`` (or ``CI`` set) the
build uses a fresh, empty cache.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
# One execution cache per package fingerprint, under this folder (see the module docstring).
EXECUTION_CACHES = ROOT / "_build" / ".jupyter_cache-tests"
# What a chapter's outputs depend on besides its own code.
FINGERPRINTED = ("ntkcourse/", "requirements.lock", "pyproject.toml")
# Pages Sphinx writes besides the documents of _toc.yml; index.html at the top
# is the redirect to the root document written by sphinx-external-toc.
SPHINX_PAGES = {"index.html", "search.html", "genindex.html"}
BUILD_TIMEOUT_S = 1800


def checkout_files(root: Path = ROOT) -> list[str]:
    """The files a clean clone of ``root`` has, as paths relative to it."""
    if shutil.which("git") is None:
        raise RuntimeError("git is needed to list the files of the checkout (apt-get install git)")
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root, check=True, capture_output=True,
    ).stdout.decode()
    return sorted({path for path in out.split("\0") if path and (root / path).is_file()})


def package_fingerprint(root: Path = ROOT) -> str:
    """A hash of the checkout's files under :data:`FINGERPRINTED` (paths and contents)."""
    digest = hashlib.sha256()
    for rel in checkout_files(root):
        if rel.startswith(FINGERPRINTED):
            digest.update(rel.encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def execution_cache(root: Path = ROOT) -> Path | None:
    """The shared execution cache for the current package, or None for a fresh one (CI, or asked)."""
    if os.environ.get("CI") or os.environ.get("NTKCOURSE_BOOK_CACHE", "").lower() in {"0", "off", "no"}:
        return None
    cache = EXECUTION_CACHES / package_fingerprint(root)
    if EXECUTION_CACHES.is_dir():  # caches of earlier package versions can never match again
        for old in EXECUTION_CACHES.iterdir():
            if old != cache:
                shutil.rmtree(old, ignore_errors=True)
    return cache


def execution_reports(source: Path) -> dict[str, dict]:
    """Each executed notebook's record from the build of ``source``: docname -> MyST-NB's exec data.

    The record (``succeeded``, ``error``, ``traceback``, ``runtime`` in seconds,
    ``method``) is what MyST-NB stored in the Sphinx environment of the build;
    a notebook taken from the execution cache reports the run time of the
    execution that filled the cache. Empty when the build wrote no environment.
    """
    pickled = source / "_build" / ".doctrees" / "environment.pickle"
    if not pickled.exists():
        return {}
    with pickled.open("rb") as handle:
        env = pickle.load(handle)
    metadata = getattr(env, "nb_metadata", {})
    return {docname: dict(data["exec_data"]) for docname, data in metadata.items() if data.get("exec_data")}


def copy_checkout(dest: Path, root: Path = ROOT) -> None:
    for rel in checkout_files(root):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)


def toc_docnames(source: Path) -> list[str]:
    """The documents _toc.yml asks for, in order (globs expanded like Sphinx does)."""
    toc = yaml.safe_load((source / "_toc.yml").read_text(encoding="utf8"))
    names: list[str] = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                names.append(str(node["file"]))
            if "glob" in node:
                found = {p.relative_to(source).with_suffix("").as_posix()
                         for suffix in (".md", ".ipynb") for p in source.glob(node["glob"] + suffix)}
                names.extend(sorted(found - set(names)))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({k: v for k, v in toc.items() if k != "root"})
    return list(dict.fromkeys(re.sub(r"\.(md|ipynb)$", "", n) for n in names))


def missing_toc_pages(source: Path) -> list[str]:
    return [name for name in toc_docnames(source)
            if not any((source / f"{name}{suffix}").exists() for suffix in (".md", ".ipynb"))]


def drop_missing_pages_from_toc(source: Path) -> list[str]:
    """Rewrite the copy's _toc.yml without the pages that do not exist yet; return them."""
    missing = set(missing_toc_pages(source))
    if not missing:
        return []
    toc = yaml.safe_load((source / "_toc.yml").read_text(encoding="utf8"))

    def keep(entries):
        kept = []
        for entry in entries:
            if "file" in entry and entry["file"] in missing:
                continue
            if "sections" in entry:
                entry["sections"] = keep(entry["sections"])
            kept.append(entry)
        return kept

    for part in toc.get("parts", []):
        part["chapters"] = keep(part["chapters"])
    toc["parts"] = [part for part in toc.get("parts", []) if part["chapters"]]
    if "chapters" in toc:
        toc["chapters"] = keep(toc["chapters"])
    (source / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf8")
    return sorted(missing)


@dataclass
class BookBuild:
    """One ``jupyter-book build -W --keep-going`` of a copy of the checkout."""

    source: Path
    returncode: int
    log: str
    seconds: float
    left_out: list[str] = field(default_factory=list)  # pages of _toc.yml left out on request
    executions: dict[str, dict] = field(default_factory=dict)  # see execution_reports

    @property
    def html(self) -> Path:
        return self.source / "_build" / "html"

    @property
    def docnames(self) -> list[str]:
        return toc_docnames(self.source)

    def page(self, docname: str) -> Path:
        return self.html / f"{docname}.html"

    def warnings(self) -> list[str]:
        return [line for line in strip_ansi(self.log).splitlines()
                if re.search(r"\b(WARNING|ERROR|CRITICAL|SEVERE):|Traceback", line)]


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def jupyter_book() -> Path:
    exe = Path(sys.executable).parent / "jupyter-book"
    if not exe.exists():
        raise RuntimeError(f"jupyter-book is not installed next to {sys.executable}: run `python3 tasks.py env`")
    return exe


def run_build(source: Path) -> tuple[int, str, float]:
    """``jupyter-book build SOURCE -W --keep-going``: return code, log, seconds."""
    # The notebooks must run as they do under `python3 tasks.py book`: in particular
    # without the MPLBACKEND=Agg that conftest.py sets for the tests, which would
    # silence every figure (and be stored in the shared execution cache).
    env = {k: v for k, v in os.environ.items() if k not in {"MPLBACKEND", "PYTEST_CURRENT_TEST"}}
    start = time.perf_counter()
    proc = subprocess.run(
        [str(jupyter_book()), "build", str(source), "-W", "--keep-going"],
        cwd=source, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=env,
    )
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - start


def build_clean_copy(dest: Path, *, existing_pages_only: bool = False) -> BookBuild:
    """Copy the checkout to ``dest`` and build it there, with the package's execution cache.

    The execution reports are read right after this build (a later rebuild of
    the copy replaces the environment they come from) and their run times
    written to test-artifacts/chapter-times.txt.
    """
    copy_checkout(dest)
    left_out = drop_missing_pages_from_toc(dest) if existing_pages_only else []
    (dest / "_build").mkdir(exist_ok=True)
    cache = execution_cache()
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        (dest / "_build" / ".jupyter_cache").symlink_to(cache, target_is_directory=True)
    returncode, log, seconds = run_build(dest)
    build = BookBuild(dest, returncode, log, seconds, left_out, execution_reports(dest))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "book-build.log").write_text(strip_ansi(log), encoding="utf8")
    (ARTIFACTS / "chapter-times.txt").write_text("".join(
        f"{docname}: {report.get('runtime') or 0:.1f} s "
        f"({'executed' if 'Executing' in _executing_line(log, docname) else 'from the cache'}, "
        f"{'succeeded' if report.get('succeeded') else 'FAILED'})\n"
        for docname, report in sorted(build.executions.items())), encoding="utf8")
    return build


def _executing_line(log: str, docname: str) -> str:
    """The build log's line saying that ``docname`` was executed, if it was ('' if from the cache)."""
    for line in strip_ansi(log).splitlines():
        if "Executing notebook" in line and docname in line:
            return line
    return ""
