r"""Power-law fits: the one place the package fits ``y ∝ x^p`` (NumPy only).

Every scaling exponent the package, the book and the benchmarks report goes
through :func:`fit_loglog_slope` (the exponent) and, when several seeds are
measured, :func:`jackknife_loglog_slope` (the exponent and its standard
error). A fitted exponent is a typical rate over the sizes measured, not a
bound: report it with its error and the sizes it was fitted on.

Example:
  >>> import numpy as np
  >>> from ntkcourse.fitting import fit_loglog_slope
  >>> round(fit_loglog_slope([1, 4, 16, 64], [8.0, 4.0, 2.0, 1.0]), 12)
  -0.5
"""
from __future__ import annotations

import numpy as np

__all__ = ["fit_loglog_slope", "jackknife_loglog_slope"]


def fit_loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x``: the exponent p in ``y ∝ x^p``.

    Args:
      x: positive sizes (widths, numbers of features, ...), 1-D, at least 2.
      y: positive values, the same length.

    Raises:
      ValueError: naming the argument, for other shapes or non-positive or
        non-finite values.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(
            f"fit_loglog_slope: `x` and `y` must be 1-D of the same length >= 2, got shapes {x.shape} and {y.shape}.")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(x > 0) and np.all(y > 0)):
        raise ValueError(f"fit_loglog_slope: `x` and `y` must be positive and finite, got x={x}, y={y}.")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def jackknife_loglog_slope(x, samples) -> tuple:
    r"""The exponent of ``mean ∝ x^p`` over seeds, and its jackknife standard error.

    Args:
      x: (W,) positive sizes.
      samples: (W, S) positive values, one column per seed (S >= 2).

    Returns:
      ``(p, stderr)``: ``p`` fitted to the mean over seeds; with :math:`p_{(j)}`
      fitted to the mean over all seeds but seed :math:`j`,
      :math:`\mathrm{stderr} = \sqrt{\tfrac{S-1}{S}\sum_j (p_{(j)} - \bar p)^2}`
      (the delete-one jackknife, Efron & Stein 1981). It measures the
      seed-to-seed scatter only, not a bias of the power law over the fitted
      range.

    Example:
      >>> import numpy as np
      >>> x = np.array([64.0, 256.0, 1024.0, 4096.0])
      >>> samples = np.stack([x**-0.5 * (1 + 0.01 * s) for s in range(3)], axis=1)
      >>> p, err = jackknife_loglog_slope(x, samples)
      >>> round(p, 9), err < 1e-9
      (-0.5, True)
    """
    samples = np.asarray(samples, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[0] != x.shape[0] or samples.shape[1] < 2:
        raise ValueError(
            f"jackknife_loglog_slope: `samples` must have shape (len(x), seeds) with at least 2 seeds, got shape "
            f"{samples.shape} for {x.shape[0]} sizes."
        )
    s = samples.shape[1]
    p = fit_loglog_slope(x, samples.mean(axis=1))
    loo = np.array([fit_loglog_slope(x, np.delete(samples, j, axis=1).mean(axis=1)) for j in range(s)])
    return p, float(np.sqrt((s - 1) / s * np.sum((loo - loo.mean()) ** 2)))
