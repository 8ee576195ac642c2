"""The check helper's own arguments are refused in the package's one wording (ntkcourse.validation):
where, which argument, what was expected, and the value received.

grading/checks.py is loaded in the students' kernels without the package, so it writes that wording out
itself; these tests pin it.
"""
import pytest

from ntkcourse.grading import checks


@pytest.mark.parametrize("question", ["two words", "", 3])
def test_a_question_id_that_is_not_a_word_is_refused_naming_it(question):
    with pytest.raises(ValueError, match=rf"^checking: `question` must be the question id, a string without "
                                         rf"spaces, got {question!r}\.$"):
        checks.checking(question)


def test_an_unknown_session_mode_is_refused_naming_the_modes():
    with pytest.raises(ValueError, match=r"^grading session: `mode` must be one of 'student', 'report', 'grade', "
                                         r"got 'teacher'\.$"):
        checks._Session("teacher")


def test_an_unknown_mode_in_the_environment_is_refused_naming_the_variable():
    # 'grade' is a mode of the grader itself, never taken from the environment of a student's kernel.
    with pytest.raises(ValueError, match=rf"^grading session: the environment variable `{checks.MODE_ENV}` must be "
                                         r"one of 'student', 'report', got 'grade'\.$"):
        checks._Session.from_environ({checks.MODE_ENV: "grade"})
