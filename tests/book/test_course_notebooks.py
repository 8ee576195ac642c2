"""Every notebook of the course runs: the chapters in the book build, and each
assignment graded the way an instructor grades a class.

* Chapters: each ``book/chNN_*.md`` (a MyST notebook) is executed once in the
  suite, by the book build of the session fixture ``book`` (a clean copy of
  the checkout, ``execute.allow_errors: false``; see tests/bookbuild.py), and
  checked here on that build's execution record: a chapter whose code raises,
  or whose hidden assertion cell fails, fails its test with the traceback of
  the cell. The build's execution cache is keyed on the chapter's code and on
  the package (tests/bookbuild.py), so a record taken from the cache is that
  of an execution of the same code against the same package.
* Assignments: every chapter has one (below); the reference solutions and
  released exercises are graded in tests/book/test_assignment_answers.py, in
  the same grading run per assignment as the other submissions there (one
  run, not two: the suite's time).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bookbuild import execution_reports, run_build, strip_ansi


ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("ch[0-9][0-9]_*.md"))
ASSIGNMENTS = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))

pytestmark = [pytest.mark.slow, pytest.mark.notebook]


def test_the_course_has_its_chapters_and_their_assignments():
    assert CHAPTERS == ["ch01_gp_limit", "ch02_linearisation", "ch03_ntk_recursion",
                        "ch04_training_dynamics", "ch05_finite_width", "ch06_theory", "ch07_convolutional",
                        "ch08_recurrent", "ch09_graph", "ch10_feature_learning", "ch11_scaling", "ch12_connections"]
    assert set(CHAPTERS) <= set(ASSIGNMENTS)


def test_the_book_build_fails_on_an_execution_error():
    """What the chapter test relies on: the build executes notebooks and refuses cells that raise."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))["execute"]
    assert config["execute_notebooks"] in {"cache", "force"} and config["allow_errors"] is False, config


def _execution(book, chapter):
    report = book.executions.get(f"book/{chapter}")
    if report is None:
        log = "\n".join(book.warnings()[-40:] or book.log.splitlines()[-40:])
        pytest.fail(f"the book build did not execute book/{chapter}.md (is it in _toc.yml?); "
                    f"the build's warnings (full log: test-artifacts/book-build.log):\n{log}")
    return report


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_executes_top_to_bottom_in_the_book_build(chapter, book):
    report = _execution(book, chapter)
    assert report["succeeded"], (
        f"book/{chapter}.md raised {report['error']} when the book build executed it:\n"
        f"{strip_ansi(report['traceback'] or '')[-6000:]}"
    )


_FAILING_CHAPTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A chapter whose claim is false

```{code-cell} ipython3
gap = 3.5
```

```{code-cell} ipython3
:tags: [remove-cell]
assert gap < 1e-12, "the recursion and kernel_fn agree to rounding"
```
"""


def test_a_failing_hidden_assertion_is_reported_with_its_traceback(tmp_path):
    """What the chapter test reads, on a two-page book built with this book's execution settings: a
    hidden cell whose assertion fails makes the build fail and its record carry the assertion."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    (tmp_path / "_config.yml").write_text(yaml.safe_dump({"title": "t", "execute": config["execute"]}),
                                          encoding="utf8")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n  - file: claim\n",
                                       encoding="utf8")
    (tmp_path / "index.md").write_text("# Index\n", encoding="utf8")
    (tmp_path / "claim.md").write_text(_FAILING_CHAPTER, encoding="utf8")
    returncode, log, _ = run_build(tmp_path)
    report = execution_reports(tmp_path)["claim"]
    assert returncode != 0 and report["succeeded"] is False, strip_ansi(log)[-3000:]
    assert "AssertionError: the recursion and kernel_fn agree to rounding" in strip_ansi(report["traceback"])
