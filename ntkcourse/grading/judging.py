"""Judge, in the grader's process, what a check cell of a student's kernel reported.

A check cell run by a grading kernel outputs one payload
(:data:`~ntkcourse.grading.checks.PAYLOAD_MIME`): the question, the list of
checks with the values they were given (plain numbers), and the exception that
stopped the block, if any. Everything in it comes from the student's process,
so it is parsed strictly and used only as data:

- the kinds, labels and tolerances, and the reference values of
  ``close_to_reference``, are the reference run's (:func:`reference_entries`);
  check ``i`` of the student's payload must be check ``i`` of the reference;
- the verdict is :func:`~ntkcourse.grading.checks.judge_entry`, run here;
- text for the student's feedback is written here: an exception from student
  code is shown as its type and, for a visible check only, a short message with
  decimal numbers removed and the statement of the (visible) check that was
  running, taken from the grader's copy of the cell. A message that quotes a
  line of a hidden check is withheld; a hidden check's failure says what was
  checked (its label), never the expected value or shape.
"""
from __future__ import annotations

import json
import re

from .checks import KINDS, CheckFailed, judge_entry

MAX_REPORTED_CHECKS = 500
_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,79}$")
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][-+]?\d+)?")


class PayloadError(ValueError):
    """A payload that is not what the check helper sends."""


def parse_payload(text) -> dict:
    """The payload as a dict, checked for its structure (:class:`PayloadError` otherwise)."""
    if not isinstance(text, str):
        raise PayloadError("parse_payload: the payload is missing or larger than the grader accepts")
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        raise PayloadError("parse_payload: not JSON (or nested too deeply)") from None
    if not isinstance(payload, dict) or payload.get("version") != 1 or not isinstance(payload.get("question"), str):
        raise PayloadError("parse_payload: not a payload of the check helper")
    checks = payload.get("checks")
    if not isinstance(checks, list) or len(checks) > MAX_REPORTED_CHECKS or \
            not all(isinstance(c, dict) and c.get("kind") in KINDS and isinstance(c.get("label"), str)
                    for c in checks):
        raise PayloadError("parse_payload: 'checks' is not a list of checks")
    error = payload.get("error")
    if error is not None and not (isinstance(error, dict) and isinstance(error.get("type"), str)):
        raise PayloadError("parse_payload: 'error' is malformed")
    return payload


def payloads(record) -> list:
    """The payload texts among a cell's recorded outputs (``None`` for one too large to keep)."""
    return [out.get("payload") for out in (record or {}).get("outputs", []) if "payload" in out]


def other_outputs(record) -> list[str]:
    """What a cell printed besides its payload (texts, shortened; stderr, where libraries log, left out)."""
    texts = []
    for out in (record or {}).get("outputs", []):
        if "payload" in out or (out.get("type") == "stream" and out.get("name") == "stderr"):
            continue
        if out.get("type") == "error":
            texts.append(f"{out.get('ename')}: {out.get('evalue')}")
        else:
            texts.append(str(out.get("text", "")))
    return [" ".join(t.split())[:200] for t in texts if t.strip()]


def reference_entries(record, question: str, hidden: bool) -> list:
    """The checks of one check cell of the reference run; ``ValueError`` saying why it is unusable.

    The reference must report once, for its own question, without an
    exception, with every value readable, print nothing else, and pass every
    one of its own checks.
    """
    found = payloads(record)
    if len(found) != 1:
        raise ValueError(f"reported {len(found)} times (expected once: one `with checking(...)` block per "
                         "check cell)")
    extra = other_outputs(record)
    if extra:
        raise ValueError(f"prints extra lines besides its check: {extra[0]!r}; a check cell must print nothing "
                         "else (its output is not shown to the grader's judge)")
    payload = parse_payload(found[0])
    if payload["question"] != question:
        raise ValueError(f"calls checking({payload['question']!r}) in a check cell of {question!r}")
    if payload["error"] is not None:
        raise ValueError(f"raised {payload['error'].get('type')}: {str(payload['error'].get('message'))[:300]}")
    if not payload["checks"]:
        raise ValueError("makes no check")
    for entry in payload["checks"]:
        if entry.get("invalid"):
            raise ValueError(f"{entry['label']}: the reference's value is not numbers ({entry['invalid']})")
        try:
            judge_entry(entry, entry, hidden)
        except CheckFailed as failure:
            raise ValueError(f"does not pass its own check: {failure}") from None
    return payload["checks"]


class HiddenText:
    """The text of the hidden check cells, to recognise it when student code quotes it.

    A message quotes a hidden check when one of its windows of
    :attr:`WINDOW` characters (whitespace collapsed) is in a hidden check cell
    and in no released cell (text the student has anyway). A quotation
    shorter than the window is not recognised.
    """

    WINDOW = 24

    def __init__(self, hidden_sources=(), public_sources=()):
        self.hidden = "\n".join(" ".join(source.split()) for source in hidden_sources)
        self.public = "\n".join(" ".join(source.split()) for source in public_sources)

    def quoted_in(self, message: str) -> bool:
        text = " ".join(str(message).split())
        width = self.WINDOW
        return any(text[i:i + width] in self.hidden and text[i:i + width] not in self.public
                   for i in range(0, len(text) - width + 1))


def student_error(error_type, message, *, hidden, statement="", secret=None) -> str:
    """An exception raised by student code, in words safe to put in feedback.

    Its type, and for a visible check a message of at most 200 characters
    with decimal numbers replaced by ``<number>``; withheld when it quotes a
    hidden check (``secret``, a :class:`HiddenText`).
    """
    kind = error_type if isinstance(error_type, str) and _TYPE_NAME.match(error_type) else "an exception"
    if hidden:
        return f"raised {kind} (a hidden check: its message is not shown)"
    text = " ".join(str(message or "").split())[:2000]
    if secret is not None and secret.quoted_in(text):
        text = "(message withheld: it quotes a hidden check)"
    else:
        text = _NUMBER.sub("<number>", text)[:200]
    where = f"while running `{statement.strip()[:160]}`: " if statement.strip() else ""
    return f"{where}{kind}: {text}" if text else f"{where}{kind}"


def judge_check_cell(reference, record, *, question, hidden, source, secret=None) -> tuple[bool, str]:
    """``(passed, message)`` for one check cell of a graded run, ``record`` being nbval's record of it.

    Only called when the cell ran (the caller words "not run", "timeout",
    "kernel died" itself). ``reference`` is :func:`reference_entries`' list.
    """
    found = payloads(record)
    if not found:
        outputs = (record or {}).get("outputs", [])
        errors = [o for o in outputs if o.get("type") == "error"]
        if errors:
            return False, student_error(errors[0].get("ename"), errors[0].get("evalue"), hidden=hidden,
                                        secret=secret)
        return False, "the check reported nothing (was the check helper replaced or its output redirected?)"
    if len(found) > 1:
        return False, "the check cell reported more than once (student code sent check data of its own)"
    try:
        payload = parse_payload(found[0])
    except PayloadError:
        return False, "the check's report could not be read (student code altered it)"
    if payload["question"] != question:
        return False, "the check reported for another question (student code altered it)"
    reported = payload["checks"]
    for number, entry in enumerate(reference):
        if number >= len(reported):
            error = payload["error"]
            if error is not None:
                lines = source.splitlines()
                line = error.get("line")
                statement = lines[line - 1] if type(line) is int and 0 < line <= len(lines) and not hidden else ""
                return False, student_error(error.get("type"), error.get("message"), hidden=hidden,
                                            statement=statement, secret=secret)
            return False, f"{entry['label']}: not checked (the block ended before this check)"
        if reported[number].get("kind") != entry["kind"] or reported[number].get("label") != entry["label"]:
            return False, f"{entry['label']}: not checked (student code changed which checks ran)"
        try:
            judge_entry(entry, reported[number], hidden)
        except CheckFailed as failure:
            return False, " ".join(str(failure).split())[:600]
        except (ValueError, KeyError, TypeError):
            return False, f"{entry['label']}: the values reported for this check are malformed"
    if len(reported) > len(reference):
        return False, "the check reported more checks than it makes (student code altered it)"
    if payload["error"] is not None:
        return False, student_error(payload["error"].get("type"), payload["error"].get("message"), hidden=hidden,
                                    secret=secret)
    return True, ""
