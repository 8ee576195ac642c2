"""Progress bars on long runs: one policy for every function with a ``progress=`` argument.

Long computations of the package (training, Monte Carlo kernels, kernels in
blocks, iterative solvers) take ``progress=None | True | False`` and build
their bar with :func:`progress_bar`:

``progress=None`` (the default everywhere)
    a bar only when stderr is a terminal, and only once the run has lasted
    :data:`DELAY_S` seconds. Executed notebooks (Jupyter, jupyter-book, nbval:
    their stderr is not a terminal) and short runs stay free of bars.
``progress=True``
    always, from the first step (also in a notebook).
``progress=False``
    never.

The bars are plain text (``tqdm.tqdm``) on stderr, and vanish when done
(``leave=False``). ``tqdm.auto`` is not used: in a Jupyter kernel without
ipywidgets it warns "IProgress not found" on import, which fails book builds
that treat warnings as errors; the text bar works in every front end.
"""
from __future__ import annotations

import sys

__all__ = ["DELAY_S", "progress_bar", "stderr_is_terminal"]

#: Seconds a run must last before ``progress=None`` shows its bar (on a terminal).
DELAY_S = 2.0


def stderr_is_terminal() -> bool:
    """Whether ``sys.stderr`` (as it is now) is an interactive terminal."""
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except (ValueError, OSError):  # a closed or detached stream
        return False


def progress_bar(total: int, desc: str, unit: str, progress: bool | None = None):
    """A ``tqdm`` bar over ``total`` steps following the policy of the module docstring.

    A disabled bar is returned when nothing is to be shown: its ``update``,
    ``set_postfix`` and ``close`` do nothing, so callers need no branches.

    Args:
      total: number of steps.
      desc: what runs (the bar's label), e.g. ``"training"``.
      unit: what one step is, e.g. ``"step"``.
      progress: ``None``, ``True`` or ``False`` (module docstring).

    Example:
      >>> bar = progress_bar(3, "demo", "step", progress=False)
      >>> bar.disable
      True
      >>> for _ in range(3):
      ...     bar.update(1)
      >>> bar.close()
    """
    from tqdm import tqdm

    show = stderr_is_terminal() if progress is None else bool(progress)
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        leave=False,
        disable=not show,
        delay=DELAY_S if progress is None else 0.0,
    )
