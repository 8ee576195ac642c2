"""The ``ntkcourse`` command: ``ntkcourse release`` and ``ntkcourse grade``.

    ntkcourse release [ASSIGNMENT ...] [--solutions DIR] [--exercises DIR] [--check]
    ntkcourse grade SUBMISSIONS... --assignment NAME --out DIR [-j N] [--timeout S]

Also runnable as ``python -m ntkcourse``.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ntkcourse", description="Companion tools of the NTK course.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    release = commands.add_parser(
        "release", help="generate exercises/ from solutions/",
        description="Generate the student notebooks in exercises/ from the reference solutions: answer code "
                    "becomes a NotImplementedError stub with a hint, hidden checks are removed, outputs "
                    "cleared. Running it twice changes nothing.")
    release.add_argument("assignments", nargs="*", metavar="ASSIGNMENT",
                         help="assignment names (default: every notebook in --solutions)")
    release.add_argument("--solutions", default="solutions", help="folder of solution notebooks (default: %(default)s)")
    release.add_argument("--exercises", default="exercises", help="output folder (default: %(default)s)")
    release.add_argument("--check", action="store_true",
                         help="write nothing; exit with status 1 if the exercises are out of date (for CI)")

    grade = commands.add_parser(
        "grade", help="grade a folder of submissions",
        description="Grade submitted notebooks against the reference solution under nbval. Writes "
                    "OUT/gradebook.csv, OUT/feedback/<student>.md and OUT/results/<student>.json as each "
                    "submission finishes; a rerun skips the submissions already graded.")
    grade.add_argument("submissions", nargs="+", metavar="SUBMISSIONS",
                       help="submitted .ipynb files, or folders searched for them; the student's name is the "
                            "file name (or the folder name for <student>/<assignment>.ipynb)")
    grade.add_argument("--assignment", required=True, help="assignment name: solutions/<NAME>.ipynb")
    grade.add_argument("--out", required=True, help="output folder")
    grade.add_argument("-j", "--jobs", type=int, default=None,
                       help="submissions graded in parallel (default: the number of CPUs)")
    grade.add_argument("--timeout", type=float, default=None,
                       help="seconds allowed to each cell (default: 60)")
    grade.add_argument("--memory-limit", type=int, default=None, metavar="MB",
                       help="address-space limit of each kernel in MB, 0 for none (default: 4096)")
    grade.add_argument("--solutions", default="solutions", help="folder of solution notebooks (default: %(default)s)")
    grade.add_argument("--force", action="store_true", help="regrade submissions that were already graded")
    grade.add_argument("--key", default=None, metavar="FILE",
                       help="the grader's key that signs results files (default: $NTKCOURSE_GRADER_KEY or "
                            "~/.config/ntkcourse/grader.key; created if missing); keep it outside --out")
    grade.add_argument("--share-compilations", action="store_true",
                       help="share the reference run's JAX compilations with the submissions, read-only and by "
                            "key: several times less CPU, but a submission can tell by timing whether a program "
                            "it compiles is one the reference compiled (README: threat model); off by default")
    grade.add_argument("--keep-scratch", action="store_true",
                       help="keep each run's scratch folder (in the temporary directory) for debugging")
    return parser


def _release(args) -> int:
    from .grading.notebook_format import FormatError
    from .grading.release import release, stale_exercises

    try:
        if args.check:
            problems = stale_exercises(args.solutions, args.exercises, args.assignments or None)
            for problem in problems:
                print(f"stale: {problem}", file=sys.stderr)
            if problems:
                print("run `ntkcourse release` and commit the result", file=sys.stderr)
                return 1
            print(f"{args.exercises} is up to date")
            return 0
        changed = release(args.solutions, args.exercises, args.assignments or None)
    except (FormatError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"wrote {path}" if path.exists() else f"removed {path} (no solution notebook)")
    if not changed:
        print(f"{args.exercises} is up to date")
    return 0


def _grade(args) -> int:
    from .grading.grade import DEFAULT_CELL_TIMEOUT, DEFAULT_MEMORY_MB, GradingError, grade
    from .grading.notebook_format import FormatError

    def progress(message):
        print(message, flush=True)

    # Ctrl-C (SIGINT) stops a run and keeps what it finished, even when the grader was started with SIGINT
    # ignored (a background job of a non-interactive shell, some CI runners): Python then leaves it ignored.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        summary = grade(args.submissions, args.assignment, args.out, solutions_dir=args.solutions,
                        jobs=args.jobs,
                        cell_timeout=DEFAULT_CELL_TIMEOUT if args.timeout is None else args.timeout,
                        memory_mb=DEFAULT_MEMORY_MB if args.memory_limit is None else args.memory_limit,
                        force=args.force, keep_scratch=args.keep_scratch, progress=progress, key_path=args.key,
                        share_compilations=args.share_compilations)
    except KeyboardInterrupt:
        print(f"interrupted; the submissions graded so far are in {args.out}; rerun the same command to "
              "grade the rest", file=sys.stderr)
        return 130
    except (GradingError, FormatError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    errors = sum(1 for r in summary.results if r.status != "ok")
    print(f"graded {len(summary.graded)}, skipped {len(summary.skipped)} (already graded); "
          f"{errors} with status error; gradebook: {args.out}/gradebook.csv")
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "release":
        return _release(args)
    return _grade(args)


if __name__ == "__main__":
    sys.exit(main())
