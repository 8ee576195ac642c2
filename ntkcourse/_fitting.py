"""Small numerical fits shared by the computations and the figures (NumPy only, no JAX, no matplotlib)."""
from __future__ import annotations

import numpy as np

__all__ = ["fit_loglog_slope"]


def fit_loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x``: the exponent p in ``y ∝ x^p``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(f"fit_loglog_slope: x and y must be 1-D of the same length >= 2; got {x.shape} and {y.shape}.")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(x > 0) and np.all(y > 0)):
        raise ValueError(f"fit_loglog_slope: x and y must be positive and finite; got x={x}, y={y}.")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])
