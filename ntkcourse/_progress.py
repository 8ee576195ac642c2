"""Former name of :mod:`ntkcourse.progress` (the same objects), kept for code written against it."""
from .progress import DELAY_S, progress_bar, stderr_is_terminal

__all__ = ["DELAY_S", "progress_bar", "stderr_is_terminal"]
