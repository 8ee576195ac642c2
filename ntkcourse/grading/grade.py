"""Grade a folder of submissions against the reference solution: gradebook and feedback.

1. The reference solution runs once, under nbval in ``record`` mode: this
   checks that it passes its own checks, records the verdict line of every
   check cell (what nbval compares submissions against) and the values that
   ``close_to_reference`` compares with, kept outside every notebook.
2. Each submission is read defensively (:func:`merge.read_submission`), merged
   into the reference (:func:`merge.merge_submission`) and run under nbval
   with a per-cell timeout and a memory limit, in its own process, kernel and
   scratch directory, ``jobs`` at a time.
3. A question earns its points when every one of its check cells passes.
   As each submission finishes, ``OUT/results/<student>.json``,
   ``OUT/feedback/<student>.md`` and ``OUT/gradebook.csv`` are written; a rerun
   skips students whose result is there for the same submission and reference
   (so an interrupted run loses nothing it finished).
"""
from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .merge import ERROR_CODES, Problem, merge_submission, read_submission
from .notebook_format import Assignment, find_assignment, load_assignment
from .runner import NotebookRun, prestart

DEFAULT_CELL_TIMEOUT = 60.0
# Address-space cap per kernel (RLIMIT_AS). Measured with the grader's kernel
# (MALLOC_ARENA_MAX=2): 0.3 GB after importing NumPy, 0.66 GB after running a
# jitted JAX function on a 2-core machine (thread stacks add a little per
# core). 4 GB leaves room for the course's notebooks and stops a memory bomb
# at 4 GB per job.
DEFAULT_MEMORY_MB = 4096
GRADER_VERSION = 1

_VERDICT = re.compile(r"^(PASS|FAIL) (\S+)(?:: (.*)| \(.*\))?$")


class GradingError(RuntimeError):
    """The grader cannot run at all (bad reference solution, bad arguments); no submission is at fault."""


@dataclass
class Reference:
    """What the reference run produced: check-cell outputs (by cell index) and the reference values.

    The values (JSON text) stay in memory; each run writes them into its own
    scratch folder, where the kernel deletes them as soon as it has read them.
    """

    check_outputs: dict
    values_json: str


@dataclass
class GradeSummary:
    results: list = field(default_factory=list)   # result dicts of this assignment, by student
    graded: list = field(default_factory=list)    # students graded in this run
    skipped: list = field(default_factory=list)   # students whose result was already up to date
    interrupted: bool = False


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def student_name(path: Path, assignment: str) -> str:
    """``alice.ipynb`` → ``alice``; ``alice/ch00_warmup.ipynb`` (one folder per student) → ``alice``."""
    path = Path(path)
    if path.stem == assignment and path.parent.name:
        return path.parent.name
    return path.stem


def find_submissions(paths, assignment: str) -> dict:
    """``{student: path}`` for the given files and folders (folders are searched for ``*.ipynb``)."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(p for p in sorted(path.rglob("*.ipynb"))
                         if ".ipynb_checkpoints" not in p.parts and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise GradingError(f"submission path {path} does not exist")
    students = {}
    for file in files:
        name = student_name(file, assignment)
        if name in students:
            raise GradingError(f"two submissions for student {name!r}: {students[name]} and {file}; "
                               "rename one (the student's name comes from the file name)")
        if not re.fullmatch(r"[^/\\\x00-\x1f]+", name) or name in (".", ".."):
            raise GradingError(f"cannot use {name!r} (from {file}) as a student name")
        students[name] = file
    return students


def record_reference(assignment: Assignment, *, cell_timeout, memory_mb, scratch_root=None) -> Reference:
    """Run the reference solution once: its check outputs and its values for ``close_to_reference``."""
    notebook = assignment.notebook
    run = NotebookRun(_clean(notebook), mode="record", cell_timeout=cell_timeout, memory_mb=memory_mb,
                      scratch_root=scratch_root).start()
    try:
        result = run.wait()
    except BaseException:  # Ctrl-C while waiting: take the run down with us
        run.kill()
        raise
    code_index = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    problems = []
    if result.collect_error or not result.cells:
        problems.append(f"nbval could not run it: {result.collect_error or result.log_tail[-1500:]}")
    elif all(r.get("when") == "setup" for r in result.cells.values()):
        error = next(iter(result.cells.values())).get("error")
        raise GradingError(f"the grading kernel could not start ({error}); is the memory limit of "
                           f"{memory_mb} MB too low? (--memory-limit)")
    check_outputs = {}
    for question in assignment.questions:
        for index in question.all_check_indices:
            record = result.cells.get(code_index.index(index))
            outputs = (record or {}).get("outputs", [])
            texts = [o.get("text", "") for o in outputs if o.get("type") == "stream" and o.get("name") == "stdout"]
            verdict = "".join(texts)
            expected_start = f"PASS {question.id} ("
            if record is None or record["outcome"] != "passed" or len(outputs) != 1 or len(texts) != 1 \
                    or not verdict.startswith(expected_start) or verdict.count("\n") != 1:
                detail = (record or {}).get("error") or verdict.strip() or "no output"
                problems.append(f"cell {index} (check of {question.id}): {detail[:500]}")
                continue
            check_outputs[index] = [nbformat.v4.new_output("stream", name="stdout", text=verdict)]
    if problems:
        raise GradingError(f"the reference solution {assignment.path} does not pass its own checks, "
                           "so nothing can be graded against it:\n" + "\n".join(f"  - {p}" for p in problems))
    return Reference(check_outputs=check_outputs, values_json=json.dumps(result.values or {}, sort_keys=True))


def _clean(notebook):
    nb = copy.deepcopy(notebook)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata["tags"] = [t for t in cell.metadata.get("tags", []) if not str(t).startswith("nbval-")]
    return nb


def _verdict_problem(record, question, cell_timeout):
    """Why a check cell failed, in words for the student."""
    if record is None:
        return "not run (grading stopped before this cell)"
    if record.get("kernel_died"):
        return (f"the Python kernel died while running this check (exit code "
                f"{record.get('kernel_exit_code')}); work after this point earns no points")
    error = record.get("error") or ""
    if "Kernel dead on test start" in error:
        return "not run: the Python kernel had died in an earlier cell"
    if record.get("timed_out"):
        return f"did not finish within {cell_timeout:g} s (an infinite loop?) and was interrupted"
    for out in record.get("outputs", []):
        if out.get("type") == "stream":
            for line in out.get("text", "").splitlines():
                match = _VERDICT.match(line.strip())
                if match and match.group(1) == "FAIL" and match.group(2) == question:
                    return match.group(3) or "failed"
    for out in record.get("outputs", []):
        if out.get("type") == "error":
            return f"the check raised {out.get('ename')}: {out.get('evalue')}"[:600]
    printed = " ".join(o.get("text", "") for o in record.get("outputs", []) if o.get("type") == "stream")
    printed = " ".join(printed.split())[:200]
    return f"the check's output is not the expected verdict (it printed: {printed!r})" if printed \
        else "the check printed nothing"


def score_run(assignment: Assignment, graded, run, cell_timeout) -> tuple[dict, list]:
    """Per-question results and run problems from one nbval run of a merged notebook."""
    problems = []
    if run.collect_error:
        problems.append(Problem("grader-error", f"nbval could not collect the notebook: {run.collect_error[:300]}"))
    setup_failures = [r for r in run.cells.values() if r.get("when") == "setup" and r.get("outcome") == "failed"
                      and "Kernel dead" not in (r.get("error") or "")]
    if setup_failures and not any(r.get("when") == "call" for r in run.cells.values()):
        problems.append(Problem("grader-error", "the kernel did not start: "
                                                f"{(setup_failures[0].get('error') or '')[:300]}"))
    if run.wall_timeout:
        problems.append(Problem("timeout", f"the whole notebook exceeded {run.wall_limit:.0f} s and was stopped"))
    elif not run.cells and not problems:
        problems.append(Problem("grader-error", f"nbval produced no results (exit code {run.exit_code}): "
                                                f"{run.log_tail[-300:]}"))

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
        if record.get("kernel_died"):
            problems.append(Problem("kernel-died", f"the Python kernel died in {where(number)} "
                                                   f"(exit code {record.get('kernel_exit_code')}); later cells "
                                                   "were not run"))
        elif record.get("timed_out"):
            problems.append(Problem("timeout", f"{where(number)} ran longer than {cell_timeout:g} s and was "
                                               "interrupted"))
        texts = " ".join(o.get("evalue", "") + " " + o.get("ename", "") + " " + o.get("text", "")
                         for o in record.get("outputs", []))
        if "MemoryError" in texts:
            problems.append(Problem("memory-limit", f"{where(number)} ran out of memory (MemoryError: the "
                                                    "kernel's memory is limited)"))
        elif graded.code_cells[number][0] == "answer":
            errors = [o for o in record.get("outputs", []) if o.get("type") == "error"]
            if errors and not record.get("timed_out"):
                problems.append(Problem("cell-error", f"{where(number)} raised {errors[0].get('ename')}: "
                                                      f"{errors[0].get('evalue', '')[:200]}"))

    questions = {}
    for question in assignment.questions:
        checks = []
        for number, (role, qid, hidden) in enumerate(graded.code_cells):
            if role != "check" or qid != question.id:
                continue
            record = run.cells.get(number)
            passed = bool(record and record.get("when") == "call" and record.get("outcome") == "passed")
            checks.append({"hidden": hidden, "passed": passed,
                           "message": "" if passed else _verdict_problem(record, question.id, cell_timeout)})
        passed = bool(checks) and all(c["passed"] for c in checks)
        questions[question.id] = {"points": question.points if passed else 0.0, "max": question.points,
                                  "passed": passed, "checks": checks}
    return questions, problems


def _zero_questions(assignment: Assignment, reason: str) -> dict:
    return {q.id: {"points": 0.0, "max": q.points, "passed": False,
                   "checks": [{"hidden": False, "passed": False, "message": reason}]}
            for q in assignment.questions}


def _dedupe(problems):
    seen, out = set(), []
    for p in problems:
        if (p.code, p.detail) not in seen:
            seen.add((p.code, p.detail))
            out.append(p)
    return out


def _result(student, path, assignment, questions, problems, options, seconds, sha):
    problems = _dedupe(problems)
    status = "error" if any(p.code in ERROR_CODES for p in problems) else "ok"
    return {
        "student": student,
        "assignment": assignment.name,
        "file": str(path),
        "submission_sha256": sha,
        "reference_sha256": _sha256(assignment.path.read_bytes()),
        "options": options,
        "grader_version": GRADER_VERSION,
        "status": status,
        "problems": [p.as_dict() for p in problems],
        "questions": questions,
        "total": float(sum(q["points"] for q in questions.values())),
        "max": assignment.max_points,
        "seconds": round(seconds, 2),
    }


class _Grader:
    """Grades one submission at a time per thread; ``stop()`` kills the runs in progress."""

    def __init__(self, assignment, *, cell_timeout, memory_mb, scratch_root, keep_scratch):
        self.assignment = assignment
        self.cell_timeout = cell_timeout
        self.memory_mb = memory_mb
        self.scratch_root = scratch_root
        self.keep_scratch = keep_scratch
        self.options = {"cell_timeout": cell_timeout, "memory_mb": memory_mb}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.active = set()
        self.reference = None

    def grade_one(self, student, path) -> dict | None:
        started = time.monotonic()
        data = Path(path).read_bytes()
        sha = _sha256(data)
        notebook, problem = read_submission(data, self.assignment.name)
        if problem is not None:
            return _result(student, path, self.assignment, _zero_questions(self.assignment, problem.detail),
                           [problem], self.options, time.monotonic() - started, sha)
        try:
            graded = merge_submission(self.assignment, notebook, self.reference.check_outputs)
        except Exception as error:  # a submission must never stop the run
            problem = Problem("grader-error", f"could not merge the submission: {type(error).__name__}: {error}")
            return _result(student, path, self.assignment, _zero_questions(self.assignment, problem.detail),
                           [problem], self.options, time.monotonic() - started, sha)
        run = NotebookRun(graded.notebook, mode="grade", cell_timeout=self.cell_timeout,
                          memory_mb=self.memory_mb, values_json=self.reference.values_json,
                          scratch_root=self.scratch_root, keep_scratch=self.keep_scratch)
        with self.lock:
            if self.stopping.is_set():
                return None
            run.start()
            self.active.add(run)
        try:
            outcome = run.wait()
        finally:
            with self.lock:
                self.active.discard(run)
        if run.killed or self.stopping.is_set():
            return None
        questions, problems = score_run(self.assignment, graded, outcome, self.cell_timeout)
        result = _result(student, path, self.assignment, questions, list(graded.notes) + problems, self.options,
                         time.monotonic() - started, sha)
        result["cpu_seconds"] = None if outcome.cpu_seconds is None else round(outcome.cpu_seconds, 3)
        return result

    def safe_grade_one(self, student, path):
        try:
            return self.grade_one(student, path)
        except Exception as error:  # keep the run going; the instructor sees the reason
            if self.stopping.is_set():
                return None
            problem = Problem("grader-error", f"{type(error).__name__}: {error}")
            return _result(student, path, self.assignment, _zero_questions(self.assignment, problem.detail),
                           [problem], self.options, 0.0, "")

    def stop(self):
        with self.lock:
            self.stopping.set()
            for run in list(self.active):
                run.kill()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def load_results(out_dir, assignment: Assignment) -> dict:
    """``{student: result}`` of the results already in ``out_dir/results``."""
    results = {}
    results_dir = Path(out_dir) / "results"
    for file in sorted(results_dir.glob("*.json")) if results_dir.is_dir() else []:
        try:
            result = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if result.get("assignment") != assignment.name:
            raise GradingError(f"{out_dir} holds grades of assignment {result.get('assignment')!r} "
                               f"({file.name}); grade {assignment.name!r} into another --out folder")
        results[result["student"]] = result
    return results


def gradebook_text(assignment: Assignment, results) -> str:
    """The gradebook CSV: one row per student, one column per question."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "assignment", *assignment.question_ids, "total", "max", "status", "reason"])
    for student in sorted(results):
        result = results[student]
        reason = "; ".join(f"{p['code']}: {p['detail']}" for p in result["problems"])
        writer.writerow([student, result["assignment"],
                         *(f"{result['questions'].get(q, {}).get('points', 0.0):g}" for q in assignment.question_ids),
                         f"{result['total']:g}", f"{result['max']:g}", result["status"],
                         " ".join(reason.split())])
    return buffer.getvalue()


def feedback_text(assignment: Assignment, result) -> str:
    """Markdown feedback for one student: per question, the points and, for a failure, what went wrong."""
    lines = [f"# {assignment.name}: feedback for {result['student']}", "",
             f"**Total: {result['total']:g} / {result['max']:g}**", ""]
    if result["problems"]:
        lines += ["## About your submission", ""]
        lines += [f"- **{p['code']}**: {p['detail']}" for p in result["problems"]]
        lines.append("")
    for question in assignment.questions:
        entry = result["questions"].get(question.id)
        if entry is None:
            continue
        verdict = "pass" if entry["passed"] else "fail"
        lines += [f"## {question.id}: {entry['points']:g} / {entry['max']:g} ({verdict})", ""]
        if entry["passed"]:
            lines += [f"All {len(entry['checks'])} check cells passed.", ""]
            continue
        unanswered = [p for p in result["problems"] if p["code"] in ("unanswered", "missing-answer")
                      and p["detail"].startswith(f"{question.id}:")]
        if unanswered:
            lines += [f"Not answered ({unanswered[0]['detail'].split(': ', 1)[1]})."]
        else:
            for number, check in enumerate(entry["checks"], start=1):
                kind = "hidden check" if check["hidden"] else "check"
                if check["passed"]:
                    lines.append(f"- {kind} {number}: passed")
                else:
                    lines.append(f"- {kind} {number}: **failed**: {check['message']}")
        if question.hint and (unanswered or not any(question.hint in c["message"] for c in entry["checks"])):
            lines += ["", f"Hint: {question.hint}"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def grade(submissions, assignment_name: str, out_dir, *, solutions_dir="solutions", jobs=None,
          cell_timeout=DEFAULT_CELL_TIMEOUT, memory_mb=DEFAULT_MEMORY_MB, force=False, scratch_root=None,
          keep_scratch=False, progress=None) -> GradeSummary:
    """Grade every submission in ``submissions`` (files or folders) into ``out_dir``.

    Returns a :class:`GradeSummary`. Raises :class:`GradingError` when the
    grader cannot run at all; a bad submission only ever gets a bad row.
    """
    if cell_timeout <= 0:
        raise GradingError(f"cell_timeout={cell_timeout}: expected a positive number of seconds")
    if jobs is not None and jobs < 1:
        raise GradingError(f"jobs={jobs}: expected at least 1")
    jobs = jobs or os.cpu_count() or 1
    progress = progress or (lambda message: None)
    prestart()
    assignment = load_assignment(find_assignment(solutions_dir, assignment_name))
    out_dir = Path(out_dir)
    students = find_submissions(submissions, assignment.name)
    (out_dir / "results").mkdir(parents=True, exist_ok=True)
    (out_dir / "feedback").mkdir(parents=True, exist_ok=True)
    results = load_results(out_dir, assignment)
    reference_sha = _sha256(assignment.path.read_bytes())
    options = {"cell_timeout": cell_timeout, "memory_mb": memory_mb}
    summary = GradeSummary()
    todo = []
    for student, path in students.items():
        previous = results.get(student)
        if (not force and previous and previous.get("submission_sha256") == _sha256(path.read_bytes())
                and previous.get("reference_sha256") == reference_sha and previous.get("options") == options
                and previous.get("grader_version") == GRADER_VERSION):
            summary.skipped.append(student)
        else:
            todo.append((student, path))
    if summary.skipped:
        progress(f"{len(summary.skipped)} submission(s) already graded, skipped (use --force to regrade)")

    grader = _Grader(assignment, cell_timeout=cell_timeout, memory_mb=memory_mb, scratch_root=scratch_root,
                     keep_scratch=keep_scratch)

    def finish(result):
        with grader.lock:
            results[result["student"]] = result
            _write_atomic(out_dir / "results" / f"{result['student']}.json", json.dumps(result, indent=1))
            _write_atomic(out_dir / "feedback" / f"{result['student']}.md", feedback_text(assignment, result))
            _write_atomic(out_dir / "gradebook.csv", gradebook_text(assignment, results))
            summary.graded.append(result["student"])
        progress(f"[{len(summary.graded)}/{len(todo)}] {result['student']}: {result['total']:g}/"
                 f"{result['max']:g} {result['status']}"
                 + (f" ({'; '.join(p['code'] for p in result['problems'])})" if result["problems"] else "")
                 + f" in {result['seconds']:.1f} s")

    # Files that are not a notebook of this assignment are graded at once:
    # they need neither a kernel nor the reference run.
    runnable = []
    for student, path in todo:
        data = path.read_bytes()
        _, problem = read_submission(data, assignment.name)
        if problem is None:
            runnable.append((student, path))
        else:
            finish(_result(student, path, assignment, _zero_questions(assignment, problem.detail), [problem],
                           options, 0.0, _sha256(data)))

    executor = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="ntkcourse-grade")
    try:
        if runnable:
            progress(f"running the reference solution of {assignment.name}")
            grader.reference = record_reference(assignment, cell_timeout=cell_timeout, memory_mb=memory_mb,
                                                scratch_root=scratch_root)
        futures = [executor.submit(grader.safe_grade_one, student, path) for student, path in runnable]
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
        with grader.lock:
            _write_atomic(out_dir / "gradebook.csv", gradebook_text(assignment, results))
            summary.results = [results[s] for s in sorted(results)]
    return summary
