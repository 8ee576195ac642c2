"""Build the book the way a fresh checkout would, for tests/test_book*.py.

The build runs in a temporary copy of the checkout holding only the files git
would ship (tracked files, and untracked files that .gitignore does not
exclude): no Sphinx environment, no doctrees, no stale HTML, and none of the
ignored files (.venv/, _build/, test-artifacts/, ...), so a page that builds
here builds on a clean clone and nothing ignored can leak into the book. The
execution cache (notebook outputs keyed by their code) is the one thing
shared with the working tree: it lives in the checkout's
``_build/.jupyter_cache`` so that chapters whose code did not change are not
executed again on every test run.
"""
from __future__ import annotations

import os
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
EXECUTION_CACHE = ROOT / "_build" / ".jupyter_cache"
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
    """Copy the checkout to ``dest`` and build it there, sharing the execution cache."""
    copy_checkout(dest)
    left_out = drop_missing_pages_from_toc(dest) if existing_pages_only else []
    EXECUTION_CACHE.mkdir(parents=True, exist_ok=True)
    (dest / "_build").mkdir(exist_ok=True)
    (dest / "_build" / ".jupyter_cache").symlink_to(EXECUTION_CACHE, target_is_directory=True)
    returncode, log, seconds = run_build(dest)
    build = BookBuild(dest, returncode, log, seconds, left_out)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "book-build.log").write_text(strip_ansi(log), encoding="utf8")
    return build
