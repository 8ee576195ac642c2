"""Find the submitted files, name their students, and snapshot their bytes before any code runs.

The student's identity comes from the path, never from the file's content:

- one folder per student, with the file named after the assignment
  (``alice/ch00_warmup.ipynb``): the folder's name, ``alice``;
- otherwise the file's name without ``.ipynb`` (``alice.ipynb`` → ``alice``).

Names are escaped into a safe file stem (:func:`safe_name`: letters, digits,
``.``, ``_`` and ``-`` kept, every other byte written ``%XX``), so a name that
is not UTF-8, holds a slash-like character or starts with a dot cannot break
the results folder. Only regular files are read: a symbolic link, or a path
that resolves outside the folder it was found in, is refused with a reason;
the size is checked (``stat``) before a byte is read. Two files for one student
both get an error row; everyone else is graded.
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .results import Problem

MAX_SUBMISSION_BYTES = 50 * 2**20
_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_MAX_NAME = 120


class SubmissionsError(ValueError):
    """A path given on the command line does not exist (nothing can be graded from it)."""


@dataclass(frozen=True)
class Submission:
    """One submitted file: the student's (escaped) name, where it was, and its bytes read once."""

    student: str
    file: str
    data: bytes | None
    problem: Problem | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest() if self.data is not None else ""


def safe_name(raw: str) -> str:
    """``raw`` as a file stem: safe characters kept, every other UTF-8 byte as ``%XX`` (injective)."""
    data = os.fsencode(raw) if isinstance(raw, str) else bytes(raw)
    out = []
    for i, byte in enumerate(data):
        char = chr(byte)
        if char in _SAFE and not (i == 0 and char == "."):
            out.append(char)
        else:
            out.append(f"%{byte:02X}")
    name = "".join(out) or "%00"
    if len(name) > _MAX_NAME:
        name = name[:_MAX_NAME - 17] + "~" + hashlib.sha256(data).hexdigest()[:16]
    return name


def student_name(path: Path, assignment: str) -> str:
    """``alice.ipynb`` → ``alice``; ``alice/ch00_warmup.ipynb`` (one folder per student) → ``alice``."""
    path = Path(path)
    if path.stem == assignment and path.parent.name:
        return safe_name(path.parent.name)
    return safe_name(path.stem)


def _shown(path) -> str:
    """A path as printable text (undecodable bytes escaped)."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def _candidates(paths):
    """``(path, root)`` for every ``*.ipynb`` given or found; ``root`` is the folder it must stay inside."""
    for path in map(Path, paths):
        if path.is_dir() and not path.is_symlink():
            root = path.resolve()
            for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
                dirnames[:] = sorted(d for d in dirnames if d != ".ipynb_checkpoints")
                for name in sorted(filenames):
                    if name.endswith(".ipynb"):
                        yield Path(dirpath) / name, root
        elif path.exists() or path.is_symlink():
            yield path, path.parent.resolve()
        else:
            raise SubmissionsError(f"find_submissions: submission path {_shown(path)} does not exist")


def _snapshot(path: Path, root: Path):
    """``(bytes, None)`` or ``(None, Problem)``: regular files inside ``root`` only, size checked first."""
    try:
        info = os.lstat(path)
    except OSError as error:
        return None, Problem("unreadable", f"cannot read the file ({type(error).__name__})")
    if stat.S_ISLNK(info.st_mode):
        return None, Problem("not-a-regular-file", "a symbolic link; only regular files are graded")
    if not stat.S_ISREG(info.st_mode):
        return None, Problem("not-a-regular-file", "not a regular file")
    try:
        resolved = path.resolve(strict=True)
    except OSError:
        return None, Problem("unreadable", "the path cannot be resolved")
    if root not in resolved.parents:
        return None, Problem("not-a-regular-file", "the path resolves outside the submissions folder")
    if info.st_size > MAX_SUBMISSION_BYTES:
        return None, Problem("too-large", f"{info.st_size / 2**20:.0f} MB; the limit is "
                                          f"{MAX_SUBMISSION_BYTES // 2**20} MB")
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None, Problem("not-a-regular-file", "not a regular file")
            data = handle.read(MAX_SUBMISSION_BYTES + 1)
    except OSError as error:
        return None, Problem("unreadable", f"cannot read the file ({type(error).__name__})")
    if len(data) > MAX_SUBMISSION_BYTES:
        return None, Problem("too-large", f"more than {MAX_SUBMISSION_BYTES // 2**20} MB")
    return data, None


def find_submissions(paths, assignment: str) -> dict:
    """``{student: Submission}`` for the files and folders in ``paths``, each file read once, now.

    Two files for one student become two error rows, ``<name>~1`` and
    ``<name>~2`` (in path order), neither graded.
    """
    found: dict[str, list] = {}
    for path, root in _candidates(paths):
        found.setdefault(student_name(path, assignment), []).append((path, root))
    submissions = {}
    for name, entries in found.items():
        if len(entries) > 1:
            files = ", ".join(_shown(p) for p, _ in entries)
            for number, (path, _) in enumerate(entries, start=1):
                submissions[f"{name}~{number}"] = Submission(
                    f"{name}~{number}", _shown(path), None,
                    Problem("duplicate-student", f"{len(entries)} submissions map to student {name!r} ({files}); "
                                                 "none was graded: keep one and grade again"))
            continue
        path, root = entries[0]
        data, problem = _snapshot(path, root)
        submissions[name] = Submission(name, _shown(path), data, problem)
    return submissions
