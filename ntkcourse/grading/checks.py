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

The verdict of a passing check is a fixed string, so nbval can compare it with
the reference output as text; numbers are compared here, with a tolerance,
never by their printed digits. An answer is read with ``numpy.asarray`` and
compared in float64, so float32 results, lists and JAX arrays all work, and a
column ``(n, 1)`` matches a vector ``(n,)``. Anything raised inside the block
(``NotImplementedError`` from an unanswered stub, a ``NameError``...) becomes a
``FAIL`` line that names the statement that raised; output printed inside the
block is kept out of the verdict.

Where the expected values come from depends on the mode, fixed from the
environment when this module is first imported:

``student`` (default)
    ``close_to_reference`` cannot compare (the reference values are not
    shipped); it checks that the answer is finite numbers and says the
    comparison happens at grading. All other checks run.
``record`` (``NTKCOURSE_CHECKS_MODE=record``, ``NTKCOURSE_CHECKS_FILE=path``)
    the grader runs the reference solution; ``close_to_reference`` stores the
    reference's value under the question and label, in a JSON file outside any
    student notebook.
``grade`` (``NTKCOURSE_CHECKS_MODE=grade``, ``NTKCOURSE_CHECKS_FILE=path``)
    ``close_to_reference`` compares with the stored value.

This module imports NumPy and the standard library only (no JAX, nothing else
from ``ntkcourse``): the grader preloads it into every kernel.
"""
from __future__ import annotations

import io
import json
import os
import sys
import traceback
import warnings

import numpy as np

MODE_ENV = "NTKCOURSE_CHECKS_MODE"
FILE_ENV = "NTKCOURSE_CHECKS_FILE"
MODES = ("student", "record", "grade")

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


__all__ = ["checking", "Checker", "CheckFailed", "DEFAULT_RTOL", "DEFAULT_ATOL"]


class CheckFailed(AssertionError):
    """Raised by a failing check; ``checking`` turns it into a ``FAIL`` line."""


def _load_values(path):
    with open(path, encoding="utf-8") as handle:
        raw = json.load(handle)
    return {question: {label: np.asarray(entry["values"], dtype=np.float64).reshape(entry["shape"])
                       for label, entry in labels.items()}
            for question, labels in raw.items()}


class _Session:
    """Where expected values come from (see the module docstring for the three modes)."""

    def __init__(self, mode="student", path=None, expected=None, error=None):
        if mode not in MODES:
            raise ValueError(f"{MODE_ENV}={mode!r}: expected one of {list(MODES)}")
        if mode in ("record", "grade") and not path and expected is None:
            raise ValueError(f"mode={mode!r} needs {FILE_ENV} (the file of reference values)")
        self.mode = mode
        self.path = path
        self.expected = expected if expected is not None else {}
        self.error = error
        self.recorded = {}

    @classmethod
    def from_environ(cls, environ=None):
        environ = os.environ if environ is None else environ
        mode = environ.get(MODE_ENV) or "student"
        path = environ.get(FILE_ENV) or None
        if mode != "grade":
            return cls(mode, path)
        try:
            return cls(mode, path, expected=_load_values(path))
        except (OSError, ValueError, KeyError, TypeError) as error:
            return cls(mode, path, expected={}, error=f"{type(error).__name__}: {error}")

    def record(self, question, label, value):
        labels = self.recorded.setdefault(question, {})
        if label in labels:
            raise ValueError(f"label={label!r} is used twice for question {question!r}; "
                             "each close_to_reference call needs its own label (it is the key of the value)")
        labels[label] = value
        payload = {q: {lab: {"shape": list(v.shape), "values": v.ravel().tolist()}
                       for lab, v in labs.items()}
                   for q, labs in self.recorded.items()}
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, sort_keys=True)
        os.replace(tmp, self.path)

    def reference(self, question, label):
        return self.expected.get(question, {}).get(label)


# Fixed at import: the grader imports this module before any student code runs,
# so changing os.environ from a notebook cannot switch the mode.
_SESSION = _Session.from_environ()


def _one_line(text):
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE - 3] + "..."


def _fmt(x):
    return f"{float(x):.6g}"


def _index(idx):
    return "value" if idx == () else f"entry {idx[0] if len(idx) == 1 else tuple(int(i) for i in idx)}"


class Checker:
    """The checks of one ``checking`` block. Each method raises :class:`CheckFailed` on failure.

    Every check takes a ``label`` (what is checked, in words a student
    understands); it is quoted in failure messages and, for
    ``close_to_reference``, is the key of the stored reference value.
    """

    def __init__(self, question, hidden=False, session=None):
        self.question = question
        self.hidden = hidden
        self._session = session if session is not None else _SESSION
        self.passed = 0
        self.deferred = 0

    def _fail(self, label, problem):
        raise CheckFailed(f"{label}: {problem}")

    def _numbers(self, value, label):
        """``value`` as a float64 array, or a failure that says what it was instead."""
        if value is None or isinstance(value, (str, bytes, dict)):
            self._fail(label, f"expected numbers, got {type(value).__name__}")
        try:
            array = np.asarray(value)
        except Exception as error:  # ragged lists, objects numpy cannot read
            self._fail(label, f"could not be read as an array of numbers ({type(error).__name__}: {error})")
        if array.dtype == object:
            try:
                array = array.astype(np.float64)
            except (TypeError, ValueError):
                self._fail(label, f"expected numbers, got {type(value).__name__} holding non-numbers")
        if array.dtype.kind == "c":
            if np.any(array.imag != 0):
                self._fail(label, "has a nonzero imaginary part; expected real numbers")
            array = array.real
        if array.dtype.kind not in "iuf":
            self._fail(label, f"expected numbers, got an array of dtype {array.dtype}")
        return array.astype(np.float64)

    def _matching_shape(self, got, expected, label):
        if got.shape == expected.shape:
            return got
        if got.size == expected.size and np.squeeze(got).shape == np.squeeze(expected).shape:
            return got.reshape(expected.shape)
        self._fail(label, f"has shape {got.shape}, expected shape {expected.shape}")

    def _compare(self, got, expected, label, rtol, atol, reveal):
        got = self._matching_shape(got, expected, label)
        got_nan, expected_nan = np.isnan(got), np.isnan(expected)
        if np.any(got_nan & ~expected_nan):
            where = tuple(np.argwhere(got_nan & ~expected_nan)[0])
            self._fail(label, f"{_index(where)} is NaN (look for 0/0, or arccos of a value "
                              "just outside [-1, 1]: clip it)")
        with np.errstate(invalid="ignore", over="ignore"):
            difference = np.abs(got - expected)
            tolerance = atol + rtol * np.abs(expected)
            good = (difference <= tolerance) | (got == expected) | (got_nan & expected_nan)
        if np.all(good):
            return
        excess = np.where(good, -np.inf, np.nan_to_num(difference - tolerance, nan=np.inf))
        where = np.unravel_index(int(np.argmax(excess)), got.shape) if got.shape else ()
        bad = int(np.size(good) - np.count_nonzero(good))
        count = f"{bad} of {got.size} entries differ" if got.size > 1 else "the value differs"
        if reveal:
            self._fail(label, f"{_index(where)} is {_fmt(got[where])}, expected {_fmt(expected[where])} "
                              f"(|difference| {difference[where]:.3g} > tolerance {tolerance[where]:.3g}); "
                              f"{count}")
        self._fail(label, f"{count} from the expected values beyond the tolerance "
                          f"(rtol={rtol:g}, atol={atol:g})")

    def close(self, answer, expected, *, label, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL):
        """``|answer - expected| <= atol + rtol |expected|`` entrywise, for a value written in the check."""
        got = self._numbers(answer, label)
        want = np.asarray(expected, dtype=np.float64)
        self._compare(got, want, label, rtol, atol, reveal=not self.hidden)
        self.passed += 1

    def close_to_reference(self, answer, *, label, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL):
        """Like :meth:`close`, against the reference solution's value for the same ``label``.

        In student mode only checks that ``answer`` is finite numbers.
        """
        got = self._numbers(answer, label)
        mode = self._session.mode
        if mode == "student":
            if not np.all(np.isfinite(got)):
                self._fail(label, "contains NaN or infinity")
            self.deferred += 1
            return
        if mode == "record":
            self._session.record(self.question, label, got)
            self.passed += 1
            return
        want = self._session.reference(self.question, label)
        if want is None:
            detail = f" ({self._session.error})" if self._session.error else ""
            self._fail(label, f"the grader has no reference value for this check{detail}; "
                              "tell your instructor")
        # Hidden or not, the reference solution's values stay out of messages:
        # they are the answer.
        self._compare(got, want, label, rtol, atol, reveal=False)
        self.passed += 1

    def shape(self, answer, shape, *, label):
        """``numpy.shape(answer) == shape``."""
        try:
            got = tuple(np.shape(answer))
        except Exception as error:  # a ragged list has no shape
            self._fail(label, f"could not be read as an array ({type(error).__name__}: {error})")
        if got != tuple(shape):
            self._fail(label, f"has shape {got}, expected {tuple(shape)}")
        self.passed += 1

    def finite(self, answer, *, label):
        """No NaN and no infinity in ``answer``."""
        got = self._numbers(answer, label)
        if not np.all(np.isfinite(got)):
            where = tuple(np.argwhere(~np.isfinite(got))[0])
            self._fail(label, f"{_index(where)} is {_fmt(got[where])}; expected finite numbers")
        self.passed += 1

    def symmetric(self, matrix, *, label, rtol=1e-7, atol=1e-10):
        """A square matrix equal to its transpose, to ``atol + rtol max|matrix|``."""
        got = self._numbers(matrix, label)
        if got.ndim != 2 or got.shape[0] != got.shape[1]:
            self._fail(label, f"expected a square matrix, got shape {got.shape}")
        scale = float(np.max(np.abs(got))) if got.size else 0.0
        asymmetry = float(np.max(np.abs(got - got.T))) if got.size else 0.0
        if not asymmetry <= atol + rtol * scale:
            self._fail(label, f"is not symmetric: max |K - K^T| = {asymmetry:.3g}")
        self.passed += 1

    def psd(self, matrix, *, label, tol=1e-8):
        """Positive semi-definite: smallest eigenvalue of the symmetric part >= -tol max(1, |largest|)."""
        got = self._numbers(matrix, label)
        if got.ndim != 2 or got.shape[0] != got.shape[1]:
            self._fail(label, f"expected a square matrix, got shape {got.shape}")
        if not np.all(np.isfinite(got)):
            self._fail(label, "contains NaN or infinity")
        eigenvalues = np.linalg.eigvalsh((got + got.T) / 2)
        scale = max(1.0, float(np.max(np.abs(eigenvalues))) if eigenvalues.size else 1.0)
        if eigenvalues.size and eigenvalues[0] < -tol * scale:
            self._fail(label, f"is not positive semi-definite: smallest eigenvalue {eigenvalues[0]:.3g} "
                              "(a kernel matrix has none below 0)")
        self.passed += 1

    def true(self, condition, *, label):
        """A property stated in ``label`` holds (``condition`` is truthy)."""
        if not bool(condition):
            self._fail(label, "does not hold")
        self.passed += 1


def _statement_that_raised(tb):
    """The check-cell line that was running when the exception was raised."""
    frames = traceback.extract_tb(tb)
    if not frames:
        return ""
    line = (frames[0].line or "").strip()
    return f"while running `{line[:160]}`: " if line else ""


class checking:
    """Context manager around the checks of one question; prints the verdict when it ends.

    ``hidden=True`` in hidden check cells: their failure messages name what was
    checked but never the expected values.
    """

    def __init__(self, question, *, hidden=False):
        if not isinstance(question, str) or not question or any(ch.isspace() for ch in question):
            raise ValueError(f"question={question!r}: expected the question id, a string without spaces")
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
                problem = f"{_statement_that_raised(tb)}{exc_type.__name__}: {exc}"
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
