"""Grading results as typed objects, their JSON schema, and the grader's signature on them.

One submission's result (``OUT/results/<student>.json``) is a
:class:`SubmissionResult`; it is written with :meth:`SubmissionResult.to_json`
and read back only through :func:`read_result`, which checks it against
:data:`SCHEMA` (the same rules, written as JSON Schema for other tools) and
against the grader's keyed hash (HMAC-SHA256, key kept outside ``--out``, see
:func:`load_key`). A file that fails either is reported and its submission
regraded, never trusted and never a crash.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

SCHEMA_VERSION = 2
STATUSES = ("ok", "error")
KEY_ENV = "NTKCOURSE_GRADER_KEY"
MAX_RESULT_BYTES = 4 * 2**20

_CHECK = {"type": "object", "required": ["hidden", "passed", "message"], "additionalProperties": False,
          "properties": {"hidden": {"type": "boolean"}, "passed": {"type": "boolean"},
                         "message": {"type": "string"}}}
_QUESTION = {"type": "object", "required": ["points", "max", "passed", "checks"], "additionalProperties": False,
             "properties": {"points": {"type": "number", "minimum": 0}, "max": {"type": "number", "minimum": 0},
                            "passed": {"type": "boolean"}, "checks": {"type": "array", "items": _CHECK}}}
_PROBLEM = {"type": "object", "required": ["code", "detail"], "additionalProperties": False,
            "properties": {"code": {"type": "string"}, "detail": {"type": "string"}}}
#: JSON Schema (draft 2020-12) of a results file.
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ntkcourse grading result of one submission",
    "type": "object",
    "additionalProperties": False,
    "required": ["schema_version", "student", "assignment", "file", "submission_sha256", "reference_sha256",
                 "options", "grader_version", "status", "problems", "questions", "total", "max", "seconds",
                 "cpu_seconds", "signature"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "student": {"type": "string"}, "assignment": {"type": "string"}, "file": {"type": "string"},
        "submission_sha256": {"type": "string"}, "reference_sha256": {"type": "string"},
        "options": {"type": "object"}, "grader_version": {"type": "integer"},
        "status": {"enum": list(STATUSES)},
        "problems": {"type": "array", "items": _PROBLEM},
        "questions": {"type": "object", "additionalProperties": _QUESTION},
        "total": {"type": "number"}, "max": {"type": "number"}, "seconds": {"type": "number"},
        "cpu_seconds": {"type": ["number", "null"]},
        "signature": {"type": "string", "description": "HMAC-SHA256 of the rest, keyed by the grader's key"},
    },
}


class ResultError(ValueError):
    """A results file that does not follow :data:`SCHEMA` or whose signature does not verify."""


@dataclass(frozen=True)
class Problem:
    """Something about a submission the instructor should know: a code and a detail."""

    code: str
    detail: str

    def as_dict(self):
        return {"code": self.code, "detail": self.detail}


@dataclass(frozen=True)
class CheckResult:
    hidden: bool
    passed: bool
    message: str = ""


@dataclass(frozen=True)
class QuestionResult:
    points: float
    max: float
    passed: bool
    checks: tuple = ()


@dataclass(frozen=True)
class SubmissionResult:
    """Everything the grader concluded about one submission (see :data:`SCHEMA`)."""

    student: str
    assignment: str
    file: str
    submission_sha256: str
    reference_sha256: str
    options: dict
    grader_version: int
    status: str
    problems: tuple = ()
    questions: dict = field(default_factory=dict)
    total: float = 0.0
    max: float = 0.0
    seconds: float = 0.0
    cpu_seconds: float | None = None

    def as_dict(self) -> dict:
        data = asdict(self)
        data["problems"] = [dict(p) for p in data["problems"]]
        data["questions"] = {q: {**v, "checks": [dict(c) for c in v["checks"]]} for q, v in data["questions"].items()}
        return {"schema_version": SCHEMA_VERSION, **data}

    def __getitem__(self, key):
        """Read access by key, as for the plain dicts of earlier versions (``result["total"]``)."""
        return self.as_dict()[key]

    def to_json(self, key: bytes) -> str:
        data = self.as_dict()
        data["signature"] = _signature(data, key)
        return json.dumps(data, indent=1, sort_keys=True)


def _signature(data: dict, key: bytes) -> str:
    body = json.dumps({k: v for k, v in data.items() if k != "signature"}, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()


def _expect(condition, where):
    if not condition:
        raise ResultError(f"read_result: {where}")


def _number(value):
    return type(value) in (int, float) and math.isfinite(value)


def from_dict(data) -> SubmissionResult:
    """A :class:`SubmissionResult` from data that must follow :data:`SCHEMA` (:class:`ResultError` otherwise)."""
    _expect(isinstance(data, dict), "not a JSON object")
    required = set(SCHEMA["required"])
    _expect(set(data) == required, f"keys {sorted(set(data) ^ required)} missing or unexpected")
    _expect(data["schema_version"] == SCHEMA_VERSION, f"schema_version {data['schema_version']!r}")
    for name in ("student", "assignment", "file", "submission_sha256", "reference_sha256", "signature"):
        _expect(isinstance(data[name], str), f"{name} is not a string")
    _expect(isinstance(data["options"], dict), "options is not an object")
    _expect(type(data["grader_version"]) is int, "grader_version is not an integer")
    _expect(data["status"] in STATUSES, f"status {data['status']!r}")
    for name in ("total", "max", "seconds"):
        _expect(_number(data[name]), f"{name} is not a number")
    _expect(data["cpu_seconds"] is None or _number(data["cpu_seconds"]), "cpu_seconds is not a number")
    _expect(isinstance(data["problems"], list), "problems is not a list")
    problems = []
    for p in data["problems"]:
        _expect(isinstance(p, dict) and set(p) == {"code", "detail"} and all(isinstance(v, str) for v in p.values()),
                "a problem is not {code, detail}")
        problems.append(Problem(p["code"], p["detail"]))
    _expect(isinstance(data["questions"], dict), "questions is not an object")
    questions = {}
    for qid, q in data["questions"].items():
        _expect(isinstance(q, dict) and set(q) == {"points", "max", "passed", "checks"}, f"question {qid!r}")
        _expect(_number(q["points"]) and _number(q["max"]) and 0 <= q["points"] <= q["max"], f"points of {qid!r}")
        _expect(type(q["passed"]) is bool and isinstance(q["checks"], list), f"question {qid!r}")
        checks = []
        for c in q["checks"]:
            _expect(isinstance(c, dict) and set(c) == {"hidden", "passed", "message"} and type(c["hidden"]) is bool
                    and type(c["passed"]) is bool and isinstance(c["message"], str), f"a check of {qid!r}")
            checks.append(CheckResult(c["hidden"], c["passed"], c["message"]))
        questions[qid] = QuestionResult(float(q["points"]), float(q["max"]), q["passed"], tuple(checks))
    return SubmissionResult(
        student=data["student"], assignment=data["assignment"], file=data["file"],
        submission_sha256=data["submission_sha256"], reference_sha256=data["reference_sha256"],
        options=data["options"], grader_version=data["grader_version"], status=data["status"],
        problems=tuple(problems), questions=questions, total=float(data["total"]), max=float(data["max"]),
        seconds=float(data["seconds"]), cpu_seconds=data["cpu_seconds"])


def read_result(path, key: bytes) -> SubmissionResult:
    """Read, check and verify one results file; :class:`ResultError` saying why when it cannot be trusted."""
    path = Path(path)
    try:
        if not path.is_file() or path.is_symlink():
            raise ResultError(f"read_result: {path.name} is not a regular file")
        if path.stat().st_size > MAX_RESULT_BYTES:
            raise ResultError(f"read_result: {path.name} is larger than {MAX_RESULT_BYTES} bytes")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        if isinstance(error, ResultError):
            raise
        raise ResultError(f"read_result: {path.name} cannot be read as JSON ({type(error).__name__})") from None
    result = from_dict(data)
    if not hmac.compare_digest(data["signature"], _signature(data, key)):
        raise ResultError(f"read_result: {path.name} was not written by this grader (its signature does not "
                          "verify with the grader's key)")
    return result


def default_key_path() -> Path:
    """Where the grader's key lives: ``$NTKCOURSE_GRADER_KEY``, else ``~/.config/ntkcourse/grader.key``."""
    configured = os.environ.get(KEY_ENV)
    return Path(configured) if configured else Path.home() / ".config" / "ntkcourse" / "grader.key"


def load_key(path=None) -> bytes:
    """The grader's 32-byte key, created (mode 600) on first use. Keep it outside ``--out``."""
    path = Path(path) if path is not None else default_key_path()
    if path.is_file():
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
    return key
