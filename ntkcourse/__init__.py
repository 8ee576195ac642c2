"""ntkcourse: infinite-width kernels (NNGP, NTK) of neural networks on current JAX.

Submodules are imported on first use (``ntkcourse.stax``, ``ntkcourse.dual``,
...), so that tools that need no JAX — the grading command, the check helper in
students' notebooks — start quickly.

Progress bars: every long computation (``training.train_network``,
``empirical.monte_carlo_kernel_fn``, ``batching.batch``) takes
``progress=None | True | False``. The default ``None`` shows a plain-text bar
on stderr only when stderr is a terminal and the run lasts more than 2 s, so
executed notebooks and book pages carry no bars; ``True`` always shows it,
``False`` never (``ntkcourse.progress``).
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "approximation_rates",
    "approximations",
    "batching",
    "data",
    "dual",
    "dynamics",
    "empirical",
    "engine",
    "finite_width",
    "fitting",
    "grading",
    "graph",
    "graph_classification",
    "graph_network",
    "graph_tiles",
    "inference",
    "kernel",
    "linearize",
    "mup",
    "plotting",
    "predict",
    "progress",
    "random_matrix",
    "signal_propagation",
    "solve",
    "spectral",
    "stax",
    "trainability",
    "training",
    "validation",
)
# neural-tangents' top-level names (``import ntkcourse as nt``): name -> module.
# ``nt.linearize`` is both the module and, called, the function of that name.
_FUNCTIONS = {
    "batch": "batching",
    "taylor_expand": "linearize",
    "empirical_ntk_fn": "empirical",
    "empirical_nngp_fn": "empirical",
    "empirical_kernel_fn": "empirical",
    "empirical_ntk_vp_fn": "empirical",
    "monte_carlo_kernel_fn": "empirical",
    "NtkImplementation": "empirical",
}
__all__ = list(_SUBMODULES) + list(_FUNCTIONS) + ["__version__"]


def __getattr__(name):
    if name in _SUBMODULES or name == "_src":  # _src: neural-tangents' internal path (see ntkcourse._src)
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name in _FUNCTIONS:
        fn = getattr(importlib.import_module(f".{_FUNCTIONS[name]}", __name__), name)
        globals()[name] = fn
        return fn
    raise AttributeError(f"module 'ntkcourse' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
