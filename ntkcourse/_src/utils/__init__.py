"""See :mod:`ntkcourse._src`."""
from . import kernel  # noqa: F401
