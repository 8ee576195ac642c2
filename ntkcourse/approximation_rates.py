"""How fast cheap kernel approximations converge: errors of kernels and of predictions, and fitted rates.

Three approximations of an ``n × n`` kernel ``K``, each measured against the
exact kernel as its size grows (:mod:`ntkcourse.approximations` builds the
first two):

* **random features** (``M`` features; Rahimi & Recht 2007; Cho & Saul 2009
  for the arc-cosine features): Monte Carlo, relative error ``∝ M^{-1/2}``
  whatever the spectrum;
* **Nyström** (``m`` landmark columns; Williams & Seeger 2001): error set by
  the spectrum's tail beyond ``m`` (Drineas & Mahoney 2005 bound it by the
  best rank-``k`` error plus a term ``∝ m^{-1/2}``);
* **top-k eigen** truncation ``K_k = V_k Λ_k V_kᵀ``: the best rank-``k``
  approximation in Frobenius norm (Eckart & Young 1936), relative error
  ``√(Σ_{i>k} λᵢ²) / √(Σᵢ λᵢ²)``; it needs the eigendecomposition, so it is a
  yardstick rather than a shortcut.

For predictions: ridge regression ``K̃_* (K̃ + ρI)⁻¹ y`` with the
approximate kernel against ``K_* (K + ρI)⁻¹ y`` with the exact one, both
by :func:`ntkcourse.dynamics.kernel_regression`. :func:`fitted_rate` fits the
exponent ``p`` of ``error ∝ size^p`` per seed and reports the mean and spread.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import validation
from .approximations import (
    ApproximationErrors,
    nystrom_features,
    relative_error,
    relu_random_feature_kernels,
    select_landmarks,
)
from .dynamics import kernel_regression
from .spectral import kernel_eigendecomposition

__all__ = [
    "FittedRate",
    "fitted_rate",
    "low_rank_kernel",
    "low_rank_errors",
    "random_feature_prediction_errors",
    "nystrom_prediction_errors",
]


class FittedRate(NamedTuple):
    """``slope``: mean over seeds of the least-squares exponent ``p`` in ``error ∝ size^p``;
    ``spread``: their standard deviation (0 for one seed); ``per_seed``: the exponents;
    ``mean``/``std``: the errors' mean and standard deviation over seeds at each size.
    """

    slope: float
    spread: float
    per_seed: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def fitted_rate(sizes, errors) -> FittedRate:
    """Exponent of ``error ∝ size^p`` fitted by least squares in log-log, one fit per seed (column).

    Args:
      sizes: ``(S,)`` with ``S ≥ 4`` positive sizes (a rate from fewer is a guess).
      errors: ``(S, n_seeds)`` positive errors.
    """
    s = np.asarray(sizes, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    if s.ndim != 1 or s.size < 4 or not np.all(s > 0):
        raise validation.fail("fitted_rate", "sizes", "at least 4 positive sizes", s.tolist())
    if e.ndim == 1:
        e = e[:, None]
    if e.shape[0] != s.size or not np.all(np.isfinite(e)) or not np.all(e > 0):
        raise validation.fail("fitted_rate", "errors", f"positive finite errors of shape ({s.size}, n_seeds)",
                              e.shape)
    slopes = np.polyfit(np.log(s), np.log(e), 1)[0]
    slopes = np.atleast_1d(slopes)
    spread = float(np.std(slopes, ddof=1)) if slopes.size > 1 else 0.0
    return FittedRate(float(np.mean(slopes)), spread, slopes, e.mean(axis=1),
                      e.std(axis=1, ddof=1) if e.shape[1] > 1 else np.zeros(s.size))


def low_rank_kernel(kernel, rank: int) -> np.ndarray:
    """The best rank-``k`` approximation ``V_k Λ_k V_kᵀ`` (top ``k`` eigenvalues; Eckart & Young 1936)."""
    eig = kernel_eigendecomposition(kernel, where="low_rank_kernel")
    k = validation.positive_int("low_rank_kernel", "rank", rank)
    v = eig.eigenvectors[:, :k]
    return (v * eig.eigenvalues[:k]) @ v.T


def low_rank_errors(kernel, ranks) -> np.ndarray:
    """Relative Frobenius error ``√(Σ_{i>k} λᵢ²)/√(Σ λᵢ²)`` of the top-``k`` truncation, for each ``k`` in ``ranks``."""
    lam = kernel_eigendecomposition(kernel, where="low_rank_errors").eigenvalues   # descending, clipped at 0
    total = float(np.sum(lam**2))
    tail = np.concatenate([np.cumsum((lam**2)[::-1])[::-1], [0.0]])   # tail[k] = Σ_{i≥k} λᵢ²
    out = []
    for r in np.atleast_1d(ranks).tolist():
        k = validation.positive_int("low_rank_errors", "ranks", r)
        out.append(np.sqrt(tail[min(k, lam.size)] / total))
    return np.array(out)


def _prediction_error(k_approx, kt_approx, y, exact_prediction, ridge):
    return relative_error(kernel_regression(k_approx, y, kt_approx, ridge=ridge), exact_prediction)


def random_feature_prediction_errors(
    x_train, y_train, x_test, exact_train, exact_test_train, n_features, *, get: str = "ntk", ridge: float,
    n_seeds: int = 3, seed: int = 0, **architecture,
) -> ApproximationErrors:
    """Relative error of ridge-regression predictions made with random-feature kernels, per ``M``.

    ``exact_train`` (n, n) and ``exact_test_train`` (m, n) are the exact
    ``get`` kernels of ``serial(Dense(M, W_std, b_std), Relu(), Dense(1, W_std_out, b_std_out))``
    (``architecture`` holds those four arguments, as in
    :func:`~ntkcourse.approximations.relu_random_feature_kernels`).
    Returns ``errors["prediction"]`` of shape ``(len(n_features), n_seeds)``.
    """
    get = validation.one_of("random_feature_prediction_errors", "get", get, ("nngp", "ntk"))
    n_seeds = validation.positive_int("random_feature_prediction_errors", "n_seeds", n_seeds)
    x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    exact = kernel_regression(exact_train, y_train, exact_test_train, ridge=ridge)
    both = np.concatenate([x_train, x_test])
    n = x_train.shape[0]
    sizes = np.array([int(m) for m in np.atleast_1d(n_features)])
    errs = np.empty((sizes.size, n_seeds))
    for i, m in enumerate(sizes):
        for j in range(n_seeds):
            k = getattr(relu_random_feature_kernels(both, n_features=int(m), seed=seed + j, **architecture), get)
            errs[i, j] = _prediction_error(0.5 * (k[:n, :n] + k[:n, :n].T), k[n:, :n], y_train, exact, ridge)
    return ApproximationErrors(sizes, {"prediction": errs})


def nystrom_prediction_errors(
    k_train, k_test_train, y_train, n_landmarks, *, ridge: float, n_seeds: int = 3, seed: int = 0,
) -> ApproximationErrors:
    """Relative error of ridge-regression predictions with the Nyström kernel, per number of landmarks.

    Landmarks from :func:`~ntkcourse.approximations.select_landmarks` (nested
    within a seed); ``K̃ = F Fᵀ``, ``K̃_* = F_* Fᵀ`` with the Nyström features
    ``F = K_XL K_LL^{-1/2}``, ``F_* = K_*L K_LL^{-1/2}``.
    Returns ``errors["prediction"]`` of shape ``(len(n_landmarks), n_seeds)``.
    """
    n_seeds = validation.positive_int("nystrom_prediction_errors", "n_seeds", n_seeds)
    k = np.asarray(k_train, np.float64)
    kt = np.asarray(k_test_train, np.float64)
    exact = kernel_regression(k, y_train, kt, ridge=ridge)
    sizes = np.array([int(m) for m in np.atleast_1d(n_landmarks)])
    errs = np.empty((sizes.size, n_seeds))
    for j in range(n_seeds):
        order = select_landmarks(k.shape[0], k.shape[0], seed=seed + j)
        for i, m in enumerate(sizes):
            idx = order[:m]
            f = nystrom_features(k[:, idx], k[np.ix_(idx, idx)])
            ft = nystrom_features(kt[:, idx], k[np.ix_(idx, idx)])
            errs[i, j] = _prediction_error(f @ f.T, ft @ f.T, y_train, exact, ridge)
    return ApproximationErrors(sizes, {"prediction": errs})
