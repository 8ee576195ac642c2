"""Grade a folder of submissions against the reference solution: gradebook and feedback.

1. Every submitted file is found, named and read once, before any code runs
   (:mod:`~ntkcourse.grading.submissions`); the reference solution is read and
   hashed once (:func:`~ntkcourse.grading.notebook_format.load_assignment`).
2. The reference solution runs once (retried once if it fails): each of its
   check cells reports the checks it makes and their values; they stay in the
   grader's memory.
3. Each submission is read defensively (:func:`merge.read_submission`), merged
   into the reference (:func:`merge.merge_submission`) and run under nbval with
   a per-cell timeout, in its own process, kernel, scratch directory and run
   slot (its own unprivileged user and namespaces where the machine allows it:
   :mod:`~ntkcourse.grading.sandbox`), ``jobs`` at a time. A kernel that does
   not start is tried again.
4. What each check cell reported is judged here, in the grader's process
   (:mod:`~ntkcourse.grading.judging`); a question earns its points when every
   one of its check cells passes. As each submission finishes,
   ``OUT/results/<student>.json`` (signed, :mod:`~ntkcourse.grading.results`),
   ``OUT/feedback/<student>.md`` and ``OUT/gradebook.csv`` are written by this
   process; a rerun skips students whose verified result is there for the same
   submission, reference and options.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from ..validation import fail
from .judging import HiddenText, judge_check_cell, reference_entries, student_error
from .merge import ERROR_CODES, merge_submission, read_submission
from .notebook_format import Assignment, find_assignment, load_assignment
from .results import (CheckResult, Problem, QuestionResult, ResultError, SubmissionResult, load_key,
                      default_key_path, read_result)
from .runner import DEFAULT_OUTPUT_LIMIT, PACKAGE_ROOT, NotebookRun, prestart
from .sandbox import DEFAULT_NPROC, SlotPool, probe
from .submissions import Submission, SubmissionsError, find_submissions

DEFAULT_CELL_TIMEOUT = 60.0
# Address-space cap per kernel process (RLIMIT_AS). Measured with the grader's
# kernel (MALLOC_ARENA_MAX=2): 0.3 GB after importing NumPy, 0.66 GB after
# running a jitted JAX function on a 2-core machine (thread stacks add a little
# per core). 4 GB leaves room for the course's notebooks.
DEFAULT_MEMORY_MB = 4096
GRADER_VERSION = 2
KERNEL_START_TRIES = 3
_CSV_ACTIVE = ("=", "+", "-", "@", "\t", "\r")


class GradingError(RuntimeError):
    """The grader cannot run at all (bad reference solution, bad arguments); no submission is at fault."""


@dataclass
class Reference:
    """What the reference run reported, by code-cell number: the checks of each check cell."""

    entries: dict
    sources: dict
    hidden: dict
    secret: HiddenText = field(default_factory=HiddenText)


@dataclass
class GradeSummary:
    results: list = field(default_factory=list)   # SubmissionResult of every student in the gradebook
    graded: list = field(default_factory=list)    # students graded in this run
    skipped: list = field(default_factory=list)   # students whose verified result was already up to date
    stale: list = field(default_factory=list)     # students with a result in --out but no submission now
    regraded_untrusted: list = field(default_factory=list)  # results files that failed verification
    warnings: list = field(default_factory=list)  # missing isolation, reference changed on disk...
    interrupted: bool = False


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _clean(notebook):
    import copy

    nb = copy.deepcopy(notebook)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata["tags"] = [t for t in cell.metadata.get("tags", []) if not str(t).startswith("nbval-")]
    return nb


def _kernel_never_started(result) -> bool:
    cells = list(result.cells.values())
    return bool(cells) and all(r.get("when") == "setup" for r in cells) and \
        not any(r.get("kernel_died") for r in cells)


def _run_with_retries(notebook, pool, *, tries=KERNEL_START_TRIES, compile_cache=None, **options):
    """Run ``notebook`` in a free slot; run again (up to ``tries``) while its kernel does not start.

    With ``compile_cache`` (a folder), the run's kernel writes the programs it compiles there.
    """
    for attempt in range(tries):
        slot, sandbox = pool.acquire()
        if compile_cache is not None:
            sandbox.compile_cache, sandbox.compile_cache_writable = str(compile_cache), True
            if sandbox.uid is not None:
                os.chown(compile_cache, sandbox.uid, sandbox.gid)
        try:
            run = NotebookRun(notebook, sandbox=sandbox, **options).start()
            try:
                result = run.wait()
            except BaseException:
                run.kill()
                raise
        finally:
            pool.release(slot)
        if not _kernel_never_started(result) or attempt == tries - 1:
            return run, result
    raise AssertionError("unreachable")


def record_reference(assignment: Assignment, pool: SlotPool, *, cell_timeout, memory_mb,
                     scratch_root=None, compile_cache=None) -> Reference:
    """Run the reference solution (again once if it fails): the checks each check cell reports.

    With ``compile_cache`` (a folder), the programs JAX compiles in the run are kept there (see
    :func:`compile_cache_for_submissions`).
    """
    problems = []
    for _ in range(2):
        problems = []
        _, result = _run_with_retries(_clean(assignment.notebook), pool, cell_timeout=cell_timeout,
                                      memory_mb=memory_mb, scratch_root=scratch_root, compile_cache=compile_cache)
        code_index = [i for i, c in enumerate(assignment.notebook.cells) if c.cell_type == "code"]
        if result.collect_error or not result.cells:
            problems.append(f"nbval could not run it: {result.collect_error or result.log_tail[-1500:]}")
        elif _kernel_never_started(result):
            error = next(iter(result.cells.values())).get("error")
            problems.append(f"the grading kernel did not start in {KERNEL_START_TRIES} tries: {str(error)[:500]}")
        entries, sources, hidden = {}, {}, {}
        for question in assignment.questions:
            for index in question.all_check_indices:
                number = code_index.index(index)
                is_hidden = index in question.hidden_check_indices
                record = result.cells.get(number)
                try:
                    if record is None or record.get("outcome") != "passed":
                        raise ValueError((record or {}).get("error") or "did not run")
                    entries[number] = reference_entries(record, question.id, is_hidden)
                except ValueError as error:
                    problems.append(f"cell {index} (check of {question.id}): {str(error)[:500]}")
                    continue
                sources[number] = assignment.notebook.cells[index].source
                hidden[number] = is_hidden
        if not problems:
            hidden_indices = {i for q in assignment.questions for i in q.hidden_check_indices}
            secret = HiddenText([assignment.notebook.cells[i].source for i in hidden_indices],
                                [c.source for i, c in enumerate(assignment.notebook.cells) if i not in hidden_indices])
            return Reference(entries=entries, sources=sources, hidden=hidden, secret=secret)
    raise GradingError(f"the reference solution {assignment.path} does not pass its own checks (two runs), "
                       "so nothing can be graded against it:\n" + "\n".join(f"  - {p}" for p in problems))


def compile_cache_for_submissions(folder) -> None:
    """Make the compilation cache the reference run wrote readable by key only: root's, folders 711, files 644.

    Every submission's kernel then finds there, read-only, each program of the reference run it compiles
    again (the checks' own computations, the package's functions on the same shapes), which is most of
    a JAX notebook's CPU time on a small machine. It cannot list the folder: an entry's name is a hash of
    the program and its compile options, so a program is found only by compiling exactly that program,
    and the reference's own code cannot be read out of it.
    """
    for top, folders, files in os.walk(folder):
        for name, mode in [(n, 0o711) for n in folders] + [(n, 0o644) for n in files]:
            path = os.path.join(top, name)
            if os.path.islink(path):  # JAX writes none; a link could point anywhere
                os.unlink(path)
                continue
            os.chown(path, 0, 0, follow_symlinks=False)
            os.chmod(path, mode)
    os.chown(folder, 0, 0)
    os.chmod(folder, 0o711)


def _not_judged(record, cell_timeout):
    """Why a check cell could not be judged (it did not run to its end), or ``None``."""
    if record is None:
        return "not run (grading stopped before this cell)"
    if record.get("kernel_died"):
        return (f"the Python kernel died while running this check (exit code "
                f"{record.get('kernel_exit_code')}); work after this point earns no points")
    if "Kernel dead on test start" in (record.get("error") or ""):
        return "not run: the Python kernel had died in an earlier cell"
    if record.get("timed_out"):
        return f"did not finish within {cell_timeout:g} s (an infinite loop?) and was interrupted"
    if record.get("when") != "call":
        return "not run (the kernel was not available)"
    return None


def score_run(assignment: Assignment, graded, run, cell_timeout, reference: Reference) -> tuple[dict, list]:
    """Per-question results and run problems from one nbval run of a merged notebook."""
    problems = []
    if run.collect_error:
        problems.append(Problem("grader-error", f"nbval could not collect the notebook: {run.collect_error[:300]}"))
    if _kernel_never_started(run):
        problems.append(Problem("grader-error", f"the kernel did not start in {KERNEL_START_TRIES} tries: "
                                                f"{(next(iter(run.cells.values())).get('error') or '')[:300]}"))
    if run.wall_timeout:
        problems.append(Problem("timeout", f"the whole notebook exceeded {run.wall_limit:.0f} s and was stopped"))
    elif not run.cells and not problems:
        problems.append(Problem("grader-error", f"nbval produced no results (exit code {run.exit_code})"))
    if run.output_exceeded:
        problems.append(Problem("output-limit", "the notebook sent more output than the grader accepts; its "
                                                "kernel was stopped"))
    if run.oom_kills:
        problems.append(Problem("memory-limit", f"{run.oom_kills} process(es) of the notebook were killed: "
                                                "together they used more than the memory limit"))
    if run.leftover_processes:
        problems.append(Problem("leftover-processes", f"{run.leftover_processes} process(es) started by the "
                                                      "notebook were still running at its end and were killed"))

    def where(cell_number):
        role, question, hidden = graded.code_cells[cell_number]
        if role == "answer":
            return f"the answer cell of {question}"
        if role == "check":
            return f"a {'hidden ' if hidden else ''}check of {question}"
        return f"code cell {cell_number + 1} (not an answer cell)"

    for number, record in sorted(run.cells.items()):
        if number >= len(graded.code_cells):
            continue
        if record.get("kernel_died") and not record.get("output_exceeded"):
            problems.append(Problem("kernel-died", f"the Python kernel died in {where(number)} "
                                                   f"(exit code {record.get('kernel_exit_code')}); later cells "
                                                   "were not run"))
        elif record.get("timed_out"):
            problems.append(Problem("timeout", f"{where(number)} ran longer than {cell_timeout:g} s and was "
                                               "interrupted"))
        errors = [o for o in record.get("outputs", []) if o.get("type") == "error"]
        if any(o.get("ename") == "MemoryError" for o in errors):
            problems.append(Problem("memory-limit", f"{where(number)} ran out of memory (MemoryError: the "
                                                    "kernel's memory is limited)"))
        elif any(o.get("ename") == "BlockingIOError" for o in errors):
            problems.append(Problem("process-limit", f"{where(number)} could not start another process or "
                                                     "thread (the submission's number of processes is limited)"))
        elif graded.code_cells[number][0] == "answer" and errors and not record.get("timed_out"):
            text = student_error(errors[0].get("ename"), errors[0].get("evalue"), hidden=False,
                                 secret=reference.secret)
            problems.append(Problem("cell-error", f"{where(number)} raised {text}"))

    questions = {}
    for question in assignment.questions:
        checks = []
        for number, (role, qid, hidden) in enumerate(graded.code_cells):
            if role != "check" or qid != question.id:
                continue
            record = run.cells.get(number)
            message = _not_judged(record, cell_timeout)
            passed = False
            if message is None:
                passed, message = judge_check_cell(reference.entries[number], record, question=question.id,
                                                   hidden=hidden, source=reference.sources[number],
                                                   secret=reference.secret)
            checks.append(CheckResult(hidden=hidden, passed=passed, message=message))
        passed = bool(checks) and all(c.passed for c in checks)
        questions[question.id] = QuestionResult(points=question.points if passed else 0.0, max=question.points,
                                                passed=passed, checks=tuple(checks))
    return questions, problems


def _zero_questions(assignment: Assignment, reason: str) -> dict:
    return {q.id: QuestionResult(points=0.0, max=q.points, passed=False,
                                 checks=(CheckResult(hidden=False, passed=False, message=reason),))
            for q in assignment.questions}


def _dedupe(problems):
    seen, out = set(), []
    for p in problems:
        if (p.code, p.detail) not in seen:
            seen.add((p.code, p.detail))
            out.append(p)
    return out


def _result(submission: Submission, assignment, questions, problems, options, seconds, cpu_seconds=None):
    problems = _dedupe(problems)
    status = "error" if any(p.code in ERROR_CODES for p in problems) else "ok"
    return SubmissionResult(
        student=submission.student, assignment=assignment.name, file=submission.file,
        submission_sha256=submission.sha256, reference_sha256=assignment.sha256, options=dict(options),
        grader_version=GRADER_VERSION, status=status, problems=tuple(problems), questions=questions,
        total=float(sum(q.points for q in questions.values())), max=assignment.max_points,
        seconds=round(seconds, 2), cpu_seconds=None if cpu_seconds is None else round(cpu_seconds, 3))


class _Grader:
    """Grades one submission at a time per thread; ``stop()`` kills the runs in progress."""

    def __init__(self, assignment, pool, *, cell_timeout, memory_mb, scratch_root, keep_scratch, options,
                 output_limit=DEFAULT_OUTPUT_LIMIT):
        self.output_limit = output_limit
        self.assignment = assignment
        self.pool = pool
        self.cell_timeout = cell_timeout
        self.memory_mb = memory_mb
        self.scratch_root = scratch_root
        self.keep_scratch = keep_scratch
        self.options = options
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.active = set()
        self.reference = None

    def _run(self, notebook):
        for attempt in range(KERNEL_START_TRIES):
            slot, sandbox = self.pool.acquire()
            try:
                run = NotebookRun(notebook, cell_timeout=self.cell_timeout, memory_mb=self.memory_mb,
                                  sandbox=sandbox, scratch_root=self.scratch_root, keep_scratch=self.keep_scratch,
                                  output_limit=self.output_limit)
                with self.lock:
                    if self.stopping.is_set():
                        return None, None
                    run.start()
                    self.active.add(run)
                try:
                    outcome = run.wait()
                finally:
                    with self.lock:
                        self.active.discard(run)
            finally:
                self.pool.release(slot)
            if not _kernel_never_started(outcome) or attempt == KERNEL_START_TRIES - 1:
                return run, outcome
        return None, None

    def grade_one(self, submission: Submission) -> SubmissionResult | None:
        started = time.monotonic()
        notebook, problem = read_submission(submission.data, self.assignment.name)
        if problem is not None:
            return _result(submission, self.assignment, _zero_questions(self.assignment, problem.detail),
                           [problem], self.options, time.monotonic() - started)
        try:
            graded = merge_submission(self.assignment, notebook)
        except Exception as error:  # a submission must never stop the run
            problem = Problem("grader-error", f"could not merge the submission: {type(error).__name__}")
            return _result(submission, self.assignment, _zero_questions(self.assignment, problem.detail),
                           [problem], self.options, time.monotonic() - started)
        run, outcome = self._run(graded.notebook)
        if run is None or run.killed or self.stopping.is_set():
            return None
        questions, problems = score_run(self.assignment, graded, outcome, self.cell_timeout, self.reference)
        return _result(submission, self.assignment, questions, list(graded.notes) + problems, self.options,
                       time.monotonic() - started, outcome.cpu_seconds)

    def safe_grade_one(self, submission):
        try:
            return self.grade_one(submission)
        except Exception as error:  # keep the run going; the instructor sees the reason
            if self.stopping.is_set():
                return None
            problem = Problem("grader-error", f"{type(error).__name__}: {' '.join(str(error).split())[:300]}")
            return _result(submission, self.assignment, _zero_questions(self.assignment, problem.detail),
                           [problem], self.options, 0.0)

    def stop(self):
        with self.lock:
            self.stopping.set()
            for run in list(self.active):
                run.kill()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def load_results(out_dir, assignment: Assignment, key: bytes) -> tuple[dict, list]:
    """``({student: result}, [why a file was not trusted])`` for the results already in ``out_dir/results``."""
    results, untrusted = {}, []
    results_dir = Path(out_dir) / "results"
    for file in sorted(results_dir.glob("*.json")) if results_dir.is_dir() else []:
        try:
            result = read_result(file, key)
        except ResultError as error:
            untrusted.append((file.stem, str(error)))
            continue
        if result.assignment != assignment.name:
            raise GradingError(f"{out_dir} holds grades of assignment {result.assignment!r} "
                               f"({file.name}); grade {assignment.name!r} into another --out folder")
        if file.stem != result.student:
            untrusted.append((file.stem, f"{file.name} holds the result of {result.student!r}"))
            continue
        results[result.student] = result
    return results, untrusted


def _csv_cell(text) -> str:
    """A CSV cell a spreadsheet will not run as a formula (a leading = + - @ gets a quote mark)."""
    text = " ".join(str(text).split()) if not isinstance(text, (int, float)) else str(text)
    return "'" + text if text.startswith(_CSV_ACTIVE) else text


def gradebook_text(assignment: Assignment, results, stale=()) -> str:
    """The gradebook CSV: one row per student, one column per question; stale rows marked ``stale``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "assignment", *assignment.question_ids, "total", "max", "status", "reason"])
    for student in sorted(results):
        result = results[student]
        reason = "; ".join(f"{p.code}: {p.detail}" for p in result.problems)
        status = result.status
        if student in stale:
            status = "stale"
            reason = f"no submission in this run (graded earlier from {result.file}); " + reason
        writer.writerow([_csv_cell(student), _csv_cell(result.assignment),
                         *(f"{result.questions[q].points:g}" if q in result.questions else "0"
                           for q in assignment.question_ids),
                         f"{result.total:g}", f"{result.max:g}", status, _csv_cell(reason.strip("; "))])
    return buffer.getvalue()


def feedback_text(assignment: Assignment, result: SubmissionResult) -> str:
    """Markdown feedback for one student: per question, the points and, for a failure, what went wrong."""
    lines = [f"# {assignment.name}: feedback for {result.student}", "",
             f"**Total: {result.total:g} / {result.max:g}**", ""]
    if result.problems:
        lines += ["## About your submission", ""]
        lines += [f"- **{p.code}**: {p.detail}" for p in result.problems]
        lines.append("")
    for question in assignment.questions:
        entry = result.questions.get(question.id)
        if entry is None:
            continue
        verdict = "pass" if entry.passed else "fail"
        lines += [f"## {question.id}: {entry.points:g} / {entry.max:g} ({verdict})", ""]
        if entry.passed:
            lines += [f"All {len(entry.checks)} check cells passed.", ""]
            continue
        unanswered = [p for p in result.problems if p.code in ("unanswered", "missing-answer")
                      and p.detail.startswith(f"{question.id}:")]
        if unanswered:
            lines += [f"Not answered ({unanswered[0].detail.split(': ', 1)[1]})."]
        else:
            for number, check in enumerate(entry.checks, start=1):
                kind = "hidden check" if check.hidden else "check"
                if check.passed:
                    lines.append(f"- {kind} {number}: passed")
                else:
                    lines.append(f"- {kind} {number}: **failed**: {check.message}")
        if question.hint and (unanswered or not any(question.hint in c.message for c in entry.checks)):
            lines += ["", f"Hint: {question.hint}"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _needed_paths() -> list[Path]:
    """What a kernel must read: the interpreter, its environment, the package."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), PACKAGE_ROOT}
    return sorted(p.resolve() for p in paths)


def hidden_paths(*paths) -> list[str]:
    """The folders in ``paths`` that a sandbox can hide: none that holds what a kernel must read."""
    needed = _needed_paths()
    hidden = []
    for path in paths:
        if path is None:
            continue
        path = Path(path).resolve()
        if path == Path(path.anchor) or any(path == n or path in n.parents for n in needed):
            continue
        if str(path) not in hidden:
            hidden.append(str(path))
    return hidden


def grade(submissions, assignment_name: str, out_dir, *, solutions_dir="solutions", jobs=None,
          cell_timeout=DEFAULT_CELL_TIMEOUT, memory_mb=DEFAULT_MEMORY_MB, force=False, scratch_root=None,
          keep_scratch=False, progress=None, key_path=None, nproc=DEFAULT_NPROC,
          output_limit=DEFAULT_OUTPUT_LIMIT, share_compilations=False) -> GradeSummary:
    """Grade every submission in ``submissions`` (files or folders) into ``out_dir``.

    With ``share_compilations=True`` (off by default), the programs JAX compiles
    in the reference solution's run are shared, read-only and by key only, with
    every submission's kernel (where runs have their own users and namespaces):
    several times less CPU for JAX notebooks, at the price of a timing side
    channel — a submission can tell whether a program it compiles is exactly
    one the reference compiled, and so test guesses of a jitted reference
    computation. Use it for trusted submissions (the course's own tests) or
    where that risk is accepted.

    Returns a :class:`GradeSummary`. Raises :class:`GradingError` when the
    grader cannot run at all; a bad submission only ever gets a bad row.
    """
    if not cell_timeout > 0:
        raise GradingError(str(fail("grade", "cell_timeout", "a positive number of seconds", cell_timeout)))
    if jobs is not None and jobs < 1:
        raise GradingError(str(fail("grade", "jobs", "at least 1 (or None: one per CPU)", jobs)))
    if not (isinstance(nproc, int) and nproc >= 16):
        raise GradingError(str(fail("grade", "nproc", "an integer of at least 16 (a kernel alone runs about ten "
                                    "threads)", nproc)))
    if not isinstance(share_compilations, bool):
        raise GradingError(str(fail("grade", "share_compilations", "True or False", share_compilations)))
    if not (isinstance(output_limit, int) and output_limit > 0):
        raise GradingError(str(fail("grade", "output_limit", "a positive number of characters", output_limit)))
    jobs = jobs or os.cpu_count() or 1
    progress = progress or (lambda message: None)
    summary = GradeSummary()
    prestart()
    isolation = probe()
    for missing in isolation.missing():
        summary.warnings.append(missing)
        progress(f"warning: {missing}")
    assignment = load_assignment(find_assignment(solutions_dir, assignment_name))
    for question in assignment.questions:
        sources = [assignment.notebook.cells[i].source for i in question.all_check_indices]
        if not any("close_to_reference" in source for source in sources):
            warning = (f"question {question.id} has no close_to_reference check: its points rest on values "
                       "computed in the student's process, which its code can forge")
            summary.warnings.append(warning)
            progress(f"warning: {warning}")
    key_path = Path(key_path) if key_path is not None else default_key_path()
    key = load_key(key_path)
    out_dir = Path(out_dir)
    try:
        found = find_submissions(submissions, assignment.name)
    except SubmissionsError as error:
        raise GradingError(str(error)) from None
    (out_dir / "results").mkdir(parents=True, exist_ok=True)
    (out_dir / "feedback").mkdir(parents=True, exist_ok=True)
    results, untrusted = load_results(out_dir, assignment, key)
    for name, reason in untrusted:
        summary.regraded_untrusted.append(name)
        progress(f"warning: results/{name}.json not trusted, regraded: {reason}")
    options = {"cell_timeout": cell_timeout, "memory_mb": memory_mb}
    todo = []
    for student, submission in found.items():
        previous = results.get(student)
        if (not force and previous is not None and previous.submission_sha256 == submission.sha256
                and submission.data is not None and previous.reference_sha256 == assignment.sha256
                and previous.options == options and previous.grader_version == GRADER_VERSION):
            summary.skipped.append(student)
        else:
            todo.append(submission)
    summary.stale = sorted(set(results) - set(found))
    for student in summary.stale:
        progress(f"warning: {student} has a result in {out_dir} but no submission in this run (kept, marked stale)")
    if summary.skipped:
        progress(f"{len(summary.skipped)} submission(s) already graded, skipped (use --force to regrade)")

    submission_roots = [Path(p) if Path(p).is_dir() else Path(p).parent for p in map(Path, submissions)]
    pool = SlotPool(isolation, slots=jobs, nproc=nproc, memory_mb=memory_mb,
                    expose=[str(p) for p in _needed_paths()],
                    hide=hidden_paths(Path(solutions_dir), out_dir, key_path.parent, scratch_root,
                                      tempfile.gettempdir(), *submission_roots))
    grader = _Grader(assignment, pool, cell_timeout=cell_timeout, memory_mb=memory_mb, scratch_root=scratch_root,
                     keep_scratch=keep_scratch, options=options, output_limit=output_limit)

    def finish(result: SubmissionResult):
        with grader.lock:
            results[result.student] = result
            _write_atomic(out_dir / "results" / f"{result.student}.json", result.to_json(key))
            _write_atomic(out_dir / "feedback" / f"{result.student}.md", feedback_text(assignment, result))
            _write_atomic(out_dir / "gradebook.csv", gradebook_text(assignment, results, summary.stale))
            summary.graded.append(result.student)
        progress(f"[{len(summary.graded)}/{len(todo)}] {result.student}: {result.total:g}/"
                 f"{result.max:g} {result.status}"
                 + (f" ({'; '.join(p.code for p in result.problems)})" if result.problems else "")
                 + f" in {result.seconds:.1f} s")

    # Files that are not a notebook of this assignment are graded at once:
    # they need neither a kernel nor the reference run.
    runnable = []
    for submission in todo:
        problem = submission.problem
        if problem is None:
            _, problem = read_submission(submission.data, assignment.name)
        if problem is None:
            runnable.append(submission)
        else:
            finish(_result(submission, assignment, _zero_questions(assignment, problem.detail), [problem],
                           options, 0.0))

    # The reference run's compiled programs, shared read-only with the submissions, where each run has
    # its own user and mount namespace (a submission can then neither write nor list the folder).
    compile_cache = None
    if share_compilations and isolation.namespaces and isolation.slot_users and len(runnable) > 1:
        compile_cache = Path(tempfile.mkdtemp(prefix="ntkcourse-compile-cache-", dir=scratch_root))
    executor = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="ntkcourse-grade")
    try:
        if runnable:
            progress(f"running the reference solution of {assignment.name}")
            try:
                grader.reference = record_reference(assignment, pool, cell_timeout=cell_timeout,
                                                    memory_mb=memory_mb, scratch_root=scratch_root,
                                                    compile_cache=compile_cache)
            finally:
                if compile_cache is not None:
                    compile_cache_for_submissions(compile_cache)
                    pool.compile_cache = str(compile_cache)
        futures = [executor.submit(grader.safe_grade_one, submission) for submission in runnable]
        for future in as_completed(futures):
            result = future.result()
            if result is not None:
                finish(result)
    except KeyboardInterrupt:
        summary.interrupted = True
        grader.stop()
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        if compile_cache is not None:
            shutil.rmtree(compile_cache, ignore_errors=True)
        with grader.lock:
            _write_atomic(out_dir / "gradebook.csv", gradebook_text(assignment, results, summary.stale))
            summary.results = [results[s] for s in sorted(results)]
    try:
        changed = _sha256(assignment.path.read_bytes()) != assignment.sha256
    except OSError:
        changed = True
    if changed:
        warning = (f"the reference solution {assignment.path} changed on disk during the run; every grade of "
                   "this run was made against the version read at its start")
        summary.warnings.append(warning)
        progress(f"warning: {warning}")
    return summary
