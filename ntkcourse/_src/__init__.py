"""neural-tangents' internal module path, for code that reaches into it.

Some of neural-tangents' own notebooks (the phase diagram, trainability and
generalisation) build input kernels with ``nt._src.utils.kernel.Kernel``.
This package keeps that one path working after ``import ntkcourse as nt``;
nothing else of neural-tangents' private layout is mirrored.
"""
from . import utils  # noqa: F401
