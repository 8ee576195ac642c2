# The corpus holds deliberately broken submissions (an infinite loop, os._exit,
# a memory bomb): never collect them as tests, even under --nbval. They are
# graded, with limits, by tests/test_grading_corpus.py.
collect_ignore_glob = ["*.ipynb", "*/*.ipynb"]
