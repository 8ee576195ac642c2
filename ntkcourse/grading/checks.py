"""The helper that check cells call: compare answers within a tolerance, print one verdict.

A check cell of an exercise notebook reads::

    import numpy as np
    from ntkcourse.grading.checks import checking

    with checking("q1_relu_expectation") as check:
        check.close(relu_expectation(2.0, 2.0, 2.0), 1.0, label="equal inputs: E[relu(u)^2] = a/2")
        check.close_to_reference(relu_expectation(a, b, c), label="three covariances")

and prints exactly one line when the block ends::

    PASS q1_relu_expectation (2 checks)
    FAIL q1_relu_expectation: equal inputs: E[relu(u)^2] = a/2: value is 0.5, expected 1 (...)

(in a student's notebook; a grading kernel prints nothing and reports data
instead, see below). Numbers are compared with a tolerance, never by their
printed digits. An answer is read with ``numpy.asarray`` and
compared in float64, so float32 results, lists and JAX arrays all work, and a
column ``(n, 1)`` matches a vector ``(n,)``. Anything raised inside the block
(``NotImplementedError`` from an unanswered stub, a ``NameError``...) becomes a
``FAIL`` line that names the statement that raised; output printed inside the
block is kept out of the verdict.

Where the expected values come from depends on the mode, fixed from the
environment (``NTKCOURSE_CHECKS_MODE``) when this module is first imported:

``student`` (default)
    every check is judged here, at once, except ``close_to_reference``: the
    reference values are not shipped, so it only checks that the answer is
    finite numbers and says that the comparison happens at grading.
``report`` (the grader's kernels)
    nothing is judged in the student's process. Each check turns what it was
    given (the answer, and for ``close`` the expected value, as plain arrays of
    numbers of bounded size; for ``true`` one boolean) into data, and the block
    sends the list of them, with the exception that stopped the block if any,
    as one ``display_data`` output of type :data:`PAYLOAD_MIME`. The grader
    reads it from the cell's outputs and judges it in its own process with the
    functions below (:func:`judge_entry`), against what the reference
    solution's run reported for the same check: the labels, kinds and
    tolerances of the reference, and, for ``close_to_reference``, the
    reference's answer, which never enters the student's process.
``grade`` (in memory only, ``_Session("grade", expected=...)``)
    judged here against given reference values; what the tests use.

This module imports NumPy and the standard library only (IPython, lazily, to
send a report): the grader preloads it into every kernel, before any student
code, and imports it in its own process to judge the reports.

Code that patches this module or NumPy in a grading kernel can change the data
it reports, never the verdict: it can forge the answers of ``close``,
``true``, ``shape``, ``finite``, ``symmetric`` and ``psd`` (their expected
values are computed in the student's process), but a forged value matches a
``close_to_reference`` value only if it is the answer.
"""
from __future__ import annotations

import io
import math
import os
import sys
import traceback
import warnings

import numpy as np

MODE_ENV = "NTKCOURSE_CHECKS_MODE"
MODES = ("student", "report", "grade")
ENVIRON_MODES = ("student", "report")

# The MIME type of the data a ``checking`` block sends to the grader in report mode.
PAYLOAD_MIME = "application/vnd.ntkcourse.checks+json"
PAYLOAD_VERSION = 1
# At most this many numbers per reported array: the largest answer of the
# course is a few hundred numbers; the bound keeps a payload (JSON) under a
# few MB whatever the student's code returns.
MAX_REPORTED_ENTRIES = 100_000
MAX_REPORTED_DIMS = 8
# Kinds of check, in the order of the methods of Checker.
KINDS = ("close", "close_to_reference", "shape", "finite", "symmetric", "psd", "true")
# Why an answer could not be reported as numbers; the grader words the message
# itself from this code (never from text that comes from the student's process).
INVALID_REASONS = {
    "not-numbers": "expected numbers",
    "ragged": "could not be read as an array of numbers",
    "complex": "has a nonzero imaginary part; expected real numbers",
    "too-large": f"has more than {MAX_REPORTED_ENTRIES} entries (or {MAX_REPORTED_DIMS} dimensions)",
}

# A well-conditioned float32 computation of a few dozen operations stays well
# inside rtol 1e-4 (float32 epsilon is 1.2e-7), and atol 1e-6 absorbs float32
# rounding of values that are exactly 0 in float64 (sin(pi) is -8.7e-8 in
# float32), for the O(1) kernel values of this course. The wrong answers the
# course anticipates (a swapped recursion, a missing factor of 2) are off by
# tens of percent. Pass a larger rtol for ill-conditioned quantities (arccos
# near 1 loses about half of float32's digits).
DEFAULT_RTOL = 1e-4
DEFAULT_ATOL = 1e-6

_MAX_MESSAGE = 600


__all__ = ["checking", "Checker", "CheckFailed", "DEFAULT_RTOL", "DEFAULT_ATOL", "PAYLOAD_MIME",
           "judge_entry", "decode_array", "encode_array"]


class CheckFailed(AssertionError):
    """Raised by a failing check; ``checking`` turns it into a ``FAIL`` line."""


class _Invalid(Exception):
    """An answer that cannot be read as numbers; ``reason`` is a key of :data:`INVALID_REASONS`."""

    def __init__(self, reason, detail=""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class _Session:
    """Where expected values come from (see the module docstring for the three modes)."""

    def __init__(self, mode="student", expected=None):
        if mode not in MODES:
            # The one wording of ntkcourse.validation, written out: this module is loaded without the package.
            raise ValueError(f"grading session: `mode` must be one of {', '.join(map(repr, MODES))}, got {mode!r}.")
        self.mode = mode
        self.expected = expected if expected is not None else {}

    @classmethod
    def from_environ(cls, environ=None):
        environ = os.environ if environ is None else environ
        mode = environ.get(MODE_ENV) or "student"
        if mode not in ENVIRON_MODES:
            raise ValueError(f"grading session: the environment variable `{MODE_ENV}` must be one of "
                             f"{', '.join(map(repr, ENVIRON_MODES))}, got {mode!r}.")
        return cls(mode)

    def reference(self, question, label):
        return self.expected.get(question, {}).get(label)


# Fixed at import: the grader imports this module before any student code runs.
# Switching it later changes nothing the grader trusts: in report mode the
# verdicts are made by the grader, and a block that prints a verdict instead
# of reporting its data reports nothing, which fails.
_SESSION = _Session.from_environ()


def _one_line(text):
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE - 3] + "..."


def _fmt(x):
    return f"{float(x):.6g}"


def _index(idx):
    return "value" if idx == () else f"entry {idx[0] if len(idx) == 1 else tuple(int(i) for i in idx)}"


def _fail(label, problem):
    raise CheckFailed(f"{label}: {problem}")


def _as_float_array(value):
    """``value`` as a float64 array, or :class:`_Invalid` saying why not."""
    if value is None or isinstance(value, (str, bytes, dict)):
        raise _Invalid("not-numbers", f"got {type(value).__name__}")
    try:
        array = np.asarray(value)
    except Exception as error:  # ragged lists, objects numpy cannot read
        raise _Invalid("ragged", f"{type(error).__name__}: {error}") from None
    if array.dtype == object:
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            raise _Invalid("not-numbers", f"got {type(value).__name__} holding non-numbers") from None
    if array.dtype.kind == "c":
        if np.any(array.imag != 0):
            raise _Invalid("complex")
        array = array.real
    if array.dtype.kind not in "iuf":
        raise _Invalid("not-numbers", f"got an array of dtype {array.dtype}")
    return array.astype(np.float64)


def as_numbers(value, label):
    """``value`` as a float64 array, or a :class:`CheckFailed` that says what it was instead."""
    try:
        return _as_float_array(value)
    except _Invalid as invalid:
        _fail(label, _invalid_message(invalid.reason, invalid.detail))


def _invalid_message(reason, detail=""):
    text = INVALID_REASONS.get(reason, "could not be read as numbers")
    return f"{text}, {detail}" if detail else text


def encode_array(array):
    """A float64 array as plain JSON data: ``{"shape": [...], "data": [...]}`` (NaN and inf kept)."""
    array = np.asarray(array, dtype=np.float64)
    if array.size > MAX_REPORTED_ENTRIES or array.ndim > MAX_REPORTED_DIMS:
        raise _Invalid("too-large")
    return {"shape": [int(n) for n in array.shape], "data": [float(x) for x in array.ravel()]}


def decode_array(entry):
    """The float64 array of :func:`encode_array`'s data; ``ValueError`` for anything else.

    Strict, because the data comes from a student's process: a mapping with
    exactly a list of at most :data:`MAX_REPORTED_DIMS` non-negative ints and a
    list of that many numbers (booleans and strings refused).
    """
    if not isinstance(entry, dict) or set(entry) != {"shape", "data"}:
        raise ValueError("decode_array: expected {'shape': [...], 'data': [...]}")
    shape, data = entry["shape"], entry["data"]
    if not isinstance(shape, list) or len(shape) > MAX_REPORTED_DIMS or \
            not all(type(n) is int and 0 <= n <= MAX_REPORTED_ENTRIES for n in shape):
        raise ValueError(f"decode_array: bad shape {str(shape)[:80]}")
    if not isinstance(data, list) or len(data) != math.prod(shape) or len(data) > MAX_REPORTED_ENTRIES or \
            not all(type(x) in (int, float) for x in data):
        raise ValueError("decode_array: data is not a list of numbers matching the shape")
    return np.array(data, dtype=np.float64).reshape(shape)


def _matching_shape(got, expected, label, reveal=True):
    if got.shape == expected.shape:
        return got
    if got.size == expected.size and np.squeeze(got).shape == np.squeeze(expected).shape:
        return got.reshape(expected.shape)
    if reveal:
        _fail(label, f"has shape {got.shape}, expected shape {expected.shape}")
    _fail(label, f"has shape {got.shape}, which is not the expected shape")


def compare(got, expected, label, rtol, atol, reveal, what="the expected values", reveal_shape=None):
    """``|got - expected| <= atol + rtol |expected|`` entrywise, else :class:`CheckFailed`.

    ``reveal=False`` keeps the expected numbers out of the message, and the
    expected shape too unless ``reveal_shape`` says otherwise.
    """
    got = _matching_shape(got, expected, label, reveal if reveal_shape is None else reveal_shape)
    got_nan, expected_nan = np.isnan(got), np.isnan(expected)
    if np.any(got_nan & ~expected_nan):
        where = tuple(np.argwhere(got_nan & ~expected_nan)[0])
        _fail(label, f"{_index(where)} is NaN (look for 0/0, or arccos of a value "
                     "just outside [-1, 1]: clip it)")
    with np.errstate(invalid="ignore", over="ignore"):
        difference = np.abs(got - expected)
        tolerance = atol + rtol * np.abs(expected)
        # An infinite expected value makes the tolerance infinite: only the same infinity matches it.
        good = ((difference <= tolerance) & np.isfinite(expected)) | (got == expected) | (got_nan & expected_nan)
        if np.all(good):
            return
        excess = np.where(good, -np.inf, np.nan_to_num(difference - tolerance, nan=np.inf))
    where = np.unravel_index(int(np.argmax(excess)), got.shape) if got.shape else ()
    bad = int(np.size(good) - np.count_nonzero(good))
    count = f"{bad} of {got.size} entries differ" if got.size > 1 else "the value differs"
    if reveal:
        _fail(label, f"{_index(where)} is {_fmt(got[where])}, expected {_fmt(expected[where])} "
                     f"(|difference| {difference[where]:.3g} > tolerance {tolerance[where]:.3g}); "
                     f"{count}")
    _fail(label, f"{count} from {what} beyond the tolerance (rtol={rtol:g}, atol={atol:g})")


def judge_shape(got, shape, label, reveal=True):
    if tuple(got) != tuple(shape):
        _fail(label, f"has shape {tuple(got)}, expected {tuple(shape)}" if reveal
              else f"has shape {tuple(got)}, which is not the expected shape")


def judge_finite(got, label):
    if not np.all(np.isfinite(got)):
        where = tuple(np.argwhere(~np.isfinite(got))[0])
        _fail(label, f"{_index(where)} is {_fmt(got[where])}; expected finite numbers")


def judge_symmetric(got, label, rtol, atol):
    if got.ndim != 2 or got.shape[0] != got.shape[1]:
        _fail(label, f"expected a square matrix, got shape {got.shape}")
    scale = float(np.max(np.abs(got))) if got.size else 0.0
    asymmetry = float(np.max(np.abs(got - got.T))) if got.size else 0.0
    if not asymmetry <= atol + rtol * scale:
        _fail(label, f"is not symmetric: max |K - K^T| = {asymmetry:.3g}")


def judge_psd(got, label, tol):
    if got.ndim != 2 or got.shape[0] != got.shape[1]:
        _fail(label, f"expected a square matrix, got shape {got.shape}")
    if not np.all(np.isfinite(got)):
        _fail(label, "contains NaN or infinity")
    eigenvalues = np.linalg.eigvalsh((got + got.T) / 2)
    scale = max(1.0, float(np.max(np.abs(eigenvalues))) if eigenvalues.size else 1.0)
    if eigenvalues.size and eigenvalues[0] < -tol * scale:
        _fail(label, f"is not positive semi-definite: smallest eigenvalue {eigenvalues[0]:.3g} "
                     "(a kernel matrix has none below 0)")


def judge_true(value, label):
    if value is not True:
        _fail(label, "does not hold")


def judge_entry(reference, reported, hidden):
    """Judge one check reported by a student's kernel against the same check of the reference run.

    ``reference`` and ``reported`` are entries of a payload (dicts with
    ``kind``, ``label``, ``options`` and the values); the kind, the label and
    the options (tolerances) are the reference's, whatever the student's
    process reported. Raises :class:`CheckFailed` with a message for the
    student; ``ValueError`` when ``reported`` is malformed.
    """
    kind, label, options = reference["kind"], reference["label"], reference.get("options", {})
    if reported.get("kind") != kind or reported.get("label") != label:
        raise ValueError("judge_entry: the reported check is not the reference's")
    invalid = reported.get("invalid")
    if invalid is not None:
        known = isinstance(invalid, str) and invalid in INVALID_REASONS  # a forged list is not hashable
        _fail(label, _invalid_message(invalid if known else ""))
    if kind == "true":
        value = reported.get("value")
        if type(value) is not bool:
            raise ValueError("judge_entry: 'value' of a true check is not a boolean")
        judge_true(value, label)
        return
    if kind == "shape":
        shape = reported.get("shape")
        if not isinstance(shape, list) or len(shape) > 32 or not all(type(n) is int for n in shape):
            raise ValueError("judge_entry: 'shape' is not a list of ints")
        judge_shape(shape, options["shape"], label, reveal=not hidden)
        return
    got = decode_array(reported.get("answer"))
    if kind == "close":
        compare(got, decode_array(reported.get("expected")), label, options["rtol"], options["atol"],
                reveal=not hidden)
    elif kind == "close_to_reference":
        # Hidden or not, the reference solution's values stay out of messages:
        # they are the answer.
        compare(got, decode_array(reference["answer"]), label, options["rtol"], options["atol"],
                reveal=False, what="the reference solution's values (the comparison with the reference)",
                reveal_shape=not hidden)
    elif kind == "finite":
        judge_finite(got, label)
    elif kind == "symmetric":
        judge_symmetric(got, label, options["rtol"], options["atol"])
    elif kind == "psd":
        judge_psd(got, label, options["tol"])
    else:
        raise ValueError(f"judge_entry: unknown kind {kind!r}")


class Checker:
    """The checks of one ``checking`` block. Each method raises :class:`CheckFailed` on failure.

    Every check takes a ``label`` (what is checked, in words a student
    understands); it is quoted in failure messages.
    """

    def __init__(self, question, hidden=False, session=None):
        self.question = question
        self.hidden = hidden
        self._session = session if session is not None else _SESSION
        self.passed = 0
        self.deferred = 0
        self.reports = []

    @property
    def reporting(self):
        return self._session.mode == "report"

    def _report(self, kind, label, options, **values):
        """Report mode: keep what this check was given, as plain data, for the grader."""
        entry = {"kind": kind, "label": str(label)[:300], "options": options}
        try:
            for name, value in values.items():
                if name == "value":
                    entry["value"] = value
                elif name == "shape":
                    entry["shape"] = value
                else:
                    entry[name] = encode_array(_as_float_array(value))
        except _Invalid as invalid:
            entry = {"kind": kind, "label": entry["label"], "options": options, "invalid": invalid.reason}
        self.reports.append(entry)

    def close(self, answer, expected, *, label, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL):
        """``|answer - expected| <= atol + rtol |expected|`` entrywise, for a value written in the check."""
        rtol, atol = _tolerances("close", rtol=rtol, atol=atol).values()
        if self.reporting:
            return self._report("close", label, {"rtol": float(rtol), "atol": float(atol)},
                                answer=answer, expected=expected)
        got = as_numbers(answer, label)
        want = np.asarray(expected, dtype=np.float64)
        compare(got, want, label, rtol, atol, reveal=not self.hidden)
        self.passed += 1

    def close_to_reference(self, answer, *, label, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL):
        """Like :meth:`close`, against the reference solution's value for the same ``label``.

        In student mode only checks that ``answer`` is finite numbers.
        """
        rtol, atol = _tolerances("close_to_reference", rtol=rtol, atol=atol).values()
        if self.reporting:
            return self._report("close_to_reference", label, {"rtol": float(rtol), "atol": float(atol)},
                                answer=answer)
        got = as_numbers(answer, label)
        if self._session.mode == "student":
            if not np.all(np.isfinite(got)):
                _fail(label, "contains NaN or infinity")
            self.deferred += 1
            return
        want = self._session.reference(self.question, label)
        if want is None:
            _fail(label, "the grader has no reference value for this check; tell your instructor")
        compare(got, np.asarray(want, dtype=np.float64), label, rtol, atol, reveal=False,
                what="the reference solution's values (the comparison with the reference)",
                reveal_shape=not self.hidden)
        self.passed += 1

    def shape(self, answer, shape, *, label):
        """``numpy.shape(answer) == shape``."""
        try:
            got = tuple(int(n) for n in np.shape(answer))
        except Exception as error:  # a ragged list has no shape
            if self.reporting:
                return self.reports.append({"kind": "shape", "label": str(label)[:300],
                                            "options": {"shape": [int(n) for n in shape]}, "invalid": "ragged"})
            _fail(label, f"could not be read as an array ({type(error).__name__}: {error})")
        if self.reporting:
            return self._report("shape", label, {"shape": [int(n) for n in shape]}, shape=list(got))
        judge_shape(got, shape, label, reveal=not self.hidden)
        self.passed += 1

    def finite(self, answer, *, label):
        """No NaN and no infinity in ``answer``."""
        if self.reporting:
            return self._report("finite", label, {}, answer=answer)
        judge_finite(as_numbers(answer, label), label)
        self.passed += 1

    def symmetric(self, matrix, *, label, rtol=1e-7, atol=1e-10):
        """A square matrix equal to its transpose, to ``atol + rtol max|matrix|``."""
        rtol, atol = _tolerances("symmetric", rtol=rtol, atol=atol).values()
        if self.reporting:
            return self._report("symmetric", label, {"rtol": float(rtol), "atol": float(atol)}, answer=matrix)
        judge_symmetric(as_numbers(matrix, label), label, rtol, atol)
        self.passed += 1

    def psd(self, matrix, *, label, tol=1e-8):
        """Positive semi-definite: smallest eigenvalue of the symmetric part >= -tol max(1, |largest|)."""
        (tol,) = _tolerances("psd", tol=tol).values()
        if self.reporting:
            return self._report("psd", label, {"tol": float(tol)}, answer=matrix)
        judge_psd(as_numbers(matrix, label), label, tol)
        self.passed += 1

    def true(self, condition, *, label):
        """A property stated in ``label`` holds (``condition`` is truthy)."""
        if self.reporting:
            return self._report("true", label, {}, value=bool(condition))
        judge_true(bool(condition), label)
        self.passed += 1


def _tolerances(method, **tolerances):
    """``{name: float}`` of a check's tolerances; a negative, NaN or infinite one is an authoring error."""
    out = {}
    for name, value in tolerances.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not (0.0 <= number < float("inf")):
            raise ValueError(f"checking.{method}: `{name}` must be a finite number >= 0, got {value!r}")
        out[name] = number
    return out


def _statement_that_raised(tb):
    """The check-cell line that was running when the exception was raised, and its number."""
    frames = traceback.extract_tb(tb)
    if not frames:
        return "", None
    return (frames[0].line or "").strip(), frames[0].lineno


def _send(payload):
    """Report mode: one display_data output carrying ``payload`` (plain JSON data)."""
    try:
        from IPython.display import display
    except ImportError:  # not in a kernel: nothing reads it
        return
    display({PAYLOAD_MIME: payload}, raw=True)


class checking:
    """Context manager around the checks of one question; prints the verdict when it ends.

    ``hidden=True`` in hidden check cells: their failure messages name what was
    checked but never the expected values.
    """

    def __init__(self, question, *, hidden=False):
        if not isinstance(question, str) or not question or any(ch.isspace() for ch in question):
            raise ValueError(
                f"checking: `question` must be the question id, a string without spaces, got {question!r}.")
        self.question = question
        self.checker = Checker(question, hidden=hidden)
        self._saved = None

    def __enter__(self):
        self._captured = io.StringIO()
        self._warnings = warnings.catch_warnings(record=True)
        self._saved = (sys.stdout, sys.stderr)
        self._caught = self._warnings.__enter__()
        warnings.simplefilter("always")
        sys.stdout = sys.stderr = self._captured
        return self.checker

    def __exit__(self, exc_type, exc, tb):
        sys.stdout, sys.stderr = self._saved
        self._warnings.__exit__(None, None, None)
        if exc_type is not None and not issubclass(exc_type, (Exception, SystemExit)):
            return False  # KeyboardInterrupt: the grader's timeout, let it through
        checker = self.checker
        if checker.reporting:
            error = None
            if exc_type is not None:
                statement, line = _statement_that_raised(tb)
                error = {"type": exc_type.__name__[:80], "message": _one_line(exc)[:300],
                         "line": line if isinstance(line, int) else None}
            _send({"version": PAYLOAD_VERSION, "question": self.question, "checks": checker.reports,
                   "error": error})
            return True
        mode = checker._session.mode
        if mode == "student" and self._captured.getvalue():
            self._saved[0].write(self._captured.getvalue())
        if exc_type is None:
            verdict = f"PASS {self.question} ({checker.passed + checker.deferred} checks)"
            if mode == "student" and checker.deferred:
                verdict = (f"PASS {self.question} ({checker.passed} checks passed here; {checker.deferred} "
                           f"comparison{'s' if checker.deferred > 1 else ''} with the reference solution "
                           "will be made when your notebook is graded)")
        else:
            if issubclass(exc_type, CheckFailed):
                problem = str(exc)
            else:
                statement, _ = _statement_that_raised(tb)
                where = f"while running `{statement[:160]}`: " if statement else ""
                problem = f"{where}{exc_type.__name__}: {exc}"
            caught = [w for w in self._caught if not issubclass(w.category, DeprecationWarning)]
            if caught:
                seen = []
                for w in caught:
                    text = f"{w.category.__name__}: {w.message}"
                    if text not in seen:
                        seen.append(text)
                problem += f" [warnings: {'; '.join(seen[:2])}]"
            verdict = f"FAIL {self.question}: {_one_line(problem)}"
        self._saved[0].write(verdict + "\n")
        self._saved[0].flush()
        return True
