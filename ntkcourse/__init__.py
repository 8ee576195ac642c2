"""ntkcourse: infinite-width kernels (NNGP, NTK) of neural networks on current JAX.

Submodules are imported on first use (``ntkcourse.stax``, ``ntkcourse.dual``,
...), so that tools that need no JAX — the grading command, the check helper in
students' notebooks — start quickly.
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "approximations",
    "batching",
    "dual",
    "dynamics",
    "empirical",
    "finite_width",
    "grading",
    "inference",
    "linearize",
    "plotting",
    "spectral",
    "stax",
    "training",
)
__all__ = list(_SUBMODULES) + ["__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'ntkcourse' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
