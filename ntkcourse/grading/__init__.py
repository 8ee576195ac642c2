"""Exercise notebooks: release them from the reference solutions, grade submissions.

The modules, from the cell format to the command line:

- :mod:`~ntkcourse.grading.notebook_format` — what an answer, check and hidden
  check cell is (cell metadata, solution markers) and the validation of a
  solution notebook;
- :mod:`~ntkcourse.grading.checks` — the helper that check cells call: compares
  numbers with a tolerance and prints one stable verdict line (imports NumPy
  only, never JAX);
- :mod:`~ntkcourse.grading.release` — solutions → exercises;
- :mod:`~ntkcourse.grading.merge` — a submission → the notebook that is graded;
- :mod:`~ntkcourse.grading.submissions` — finds the submitted files, names
  their students, reads each once (regular files only, size checked first);
- :mod:`~ntkcourse.grading.sandbox` — what isolation this machine allows, the
  run slots and their unprivileged users;
- :mod:`~ntkcourse.grading.kernel_launcher` — starts a grading kernel in its
  sandbox (namespaces, limits, the slot's user); run by path;
- :mod:`~ntkcourse.grading.runner` — runs a notebook under nbval in its own
  process, kernel and scratch directory;
- :mod:`~ntkcourse.grading.judging` — judges, in the grader's process, what the
  check cells of a grading kernel reported;
- :mod:`~ntkcourse.grading.results` — typed results, their JSON schema and the
  grader's signature on results files;
- :mod:`~ntkcourse.grading.grade` — scores, gradebook and feedback for a folder
  of submissions, in parallel.

Nothing is imported here, so that ``ntkcourse.grading.checks`` stays light.
"""
