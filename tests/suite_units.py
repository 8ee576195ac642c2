"""How the suite is split over pytest-xdist workers (used by tests/conftest.py).

Work that a fixture does once must stay on one worker: all tests of the session's one book build
(the ``book`` fixture) go to the same worker, each assignment's grading run (a module fixture
parametrised by assignment) to one worker, and the other tests by file, so that a file's module
fixtures are computed once.
"""

BOOK_TEST_FILES = {"test_book.py", "test_book_accessibility.py", "test_book_browser.py", "test_course_notebooks.py"}


def work_unit(nodeid: str) -> str:
    """The group of tests that must run on one worker: 'book', 'assignment <name>', or the test's file."""
    path, _, rest = nodeid.partition("::")
    name = path.rsplit("/", 1)[-1]
    if path.startswith("tests/book/") and name in BOOK_TEST_FILES:
        return "book"
    if name == "test_assignment_answers.py" and rest.endswith("]"):
        return "assignment " + rest[rest.rindex("[") + 1:-1]
    return path


def unit_order(unit: str, n_tests: int) -> tuple:
    """Sort key of the work units: the longest first, so that no long unit is left for the end of the run.

    The book build (about 10 minutes on its worker, then its browser tests) starts first, each
    assignment's grading run (tens of seconds to a few minutes) next, then the files, those with more
    tests first (xdist's own order).
    """
    if unit == "book":
        return (0, 0, unit)
    if unit.startswith("assignment "):
        return (1, 0, unit)
    return (2, -n_tests, unit)
