"""The suite's work units on several workers (tests/suite_units.py, used by tests/conftest.py)."""
from suite_units import unit_order, work_unit


def test_every_test_of_the_book_build_shares_one_unit():
    ids = ["tests/book/test_book.py::test_x", "tests/book/test_book_browser.py::test_y[page]",
           "tests/book/test_book_accessibility.py::test_z", "tests/book/test_course_notebooks.py::test_w[ch01]"]
    assert {work_unit(i) for i in ids} == {"book"}


def test_each_assignment_is_graded_on_one_worker():
    a = work_unit("tests/book/test_assignment_answers.py::test_released_exercise_runs_and_scores_zero[ch05_finite_width]")
    b = work_unit("tests/book/test_assignment_answers.py::test_visible_mistakes_fail_a_check_students_see[ch05_finite_width]")
    c = work_unit("tests/book/test_assignment_answers.py::test_visible_mistakes_fail_a_check_students_see[ch06_theory]")
    assert a == b == "assignment ch05_finite_width" and c != a


def test_other_tests_go_by_file():
    assert work_unit("tests/kernels/test_dual.py::test_a[1]") == work_unit("tests/kernels/test_dual.py::test_b") \
        == "tests/kernels/test_dual.py"
    assert work_unit("tests/book/test_solution_answers.py::test_a") == "tests/book/test_solution_answers.py"


def test_the_book_build_starts_first_then_the_gradings_then_files_with_more_tests_first():
    units = {"tests/kernels/test_dual.py": 243, "assignment ch10_feature_learning": 6, "book": 48,
             "tests/theory/test_trainability.py": 2, "assignment ch00_warmup": 6}
    assert sorted(units, key=lambda u: unit_order(u, units[u])) == [
        "book", "assignment ch00_warmup", "assignment ch10_feature_learning", "tests/kernels/test_dual.py",
        "tests/theory/test_trainability.py"]
