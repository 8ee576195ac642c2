import os
import sys
from pathlib import Path

# Tests import helpers from tests/ (e.g. tests/oracle/nt_cases.py).
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("MPLBACKEND", "Agg")


# --- The rendered book (tests/book/test_book.py, tests/book/test_book_browser.py) ---

import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption(
        "--book-existing-pages-only", action="store_true", default=False,
        help="build only the pages of _toc.yml that exist (while chapters are being written); "
             "tests/book/test_book.py::test_every_page_of_the_toc_exists still fails on the missing ones",
    )


@pytest.fixture(scope="session")
def book(request, tmp_path_factory):
    """The book, built once per session with -W --keep-going from a clean copy of the checkout
    (see tests/bookbuild.py), with the execution cache of the current package."""
    from bookbuild import build_clean_copy

    build = build_clean_copy(
        tmp_path_factory.mktemp("book"),
        existing_pages_only=request.config.getoption("--book-existing-pages-only"),
    )
    print(f"\nbook built from a clean copy in {build.seconds:.1f} s (return code {build.returncode})")
    return build


@pytest.fixture(scope="session")
def book_html(book):
    """The built HTML folder; fails (with the build's warnings) when the build wrote no pages."""
    if not (book.html / "index.html").exists():
        pytest.fail("the book build wrote no HTML:\n" + "\n".join(book.warnings()[-40:] or book.log.splitlines()[-40:]))
    return book.html


# --- Running on several workers (pytest-xdist: `-n 2`, as tasks.py test does) ---
# Work that a fixture does once must stay on one worker: all tests of the session's one book build
# (the `book` fixture) go to the same worker, each assignment's grading run (a module fixture
# parametrised by assignment) to one worker, and the other tests by file, so that a file's module
# fixtures are computed once. The grouping is decided from the test ids by a scheduler of our own
# (xdist 3.8's `--dist loadgroup` marks groups through a private attribute pytest 9 no longer reads).

from suite_units import unit_order, work_unit  # noqa: E402


try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # without pytest-xdist the suite runs in one process
    pass
else:
    def pytest_xdist_make_scheduler(config, log):
        class ByWorkUnit(LoadScopeScheduling):
            def _split_scope(self, nodeid):
                return work_unit(nodeid)

            def _assign_work_unit(self, node):
                # xdist queues the units by number of tests; take the longest first (suite_units.unit_order).
                if not getattr(self, "_units_ordered", False):
                    ordered = sorted(self.workqueue.items(), key=lambda item: unit_order(item[0], len(item[1])))
                    self.workqueue.clear()
                    self.workqueue.update(ordered)
                    self._units_ordered = True
                super()._assign_work_unit(node)

        return ByWorkUnit(config, log)
