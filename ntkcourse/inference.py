"""Bayesian inference with infinite-width kernels, and infinite ensembles of trained networks.

Two different objects, which the course keeps apart:

* **GP posterior** (:func:`gp_posterior`). With the NNGP ``K`` as prior
  covariance this is exact Bayesian inference for an infinitely wide network
  (Neal 1996; Lee et al. 2018, :cite:`lee2018dnngp`): the posterior over the
  latent outputs given ``y = f(X) + noise``, ``noise ~ N(0, σ²I)``. With the
  NTK ``Θ`` in place of ``K`` it is the *NTK-GP*: a GP whose mean at ``σ² = 0``
  equals the ``t → ∞`` mean of an ensemble of networks trained by gradient
  flow, but whose covariance is *not* that ensemble's covariance (Lee et al.
  2019, §2.3.1) — compare with :func:`infinite_ensemble_predictor`.
* **Infinite ensemble** (:func:`infinite_ensemble_predictor`). Networks with
  random initialisation ``f₀ ~ GP(0, K)`` (the NNGP) trained by gradient flow
  on the squared loss in the linearised (infinite-width) regime. The outputs at
  time ``t`` are Gaussian with (Lee et al. 2019, :cite:`lee2019wide`, eqs. 15–16)

      ``μ(X*, t) = A(t) y``
      ``Σ(X*, t) = K_** − A(t)K_X* − K_*X A(t)ᵀ + A(t) K A(t)ᵀ``

  where ``A(t) = Θ_*X Θ⁻¹(I − e^{−ηΘt})`` (with ridge ``ρ``:
  ``Θ_*X (Θ+ρI)⁻¹(I − e^{−η(Θ+ρI)t})``, see :mod:`ntkcourse.dynamics` for the
  loss convention). On the training points ``A`` is replaced by
  ``V diag(λc(t)) Vᵀ``, so ``Σ(X, t) = e^{−ηΘt} K e^{−ηΘt}`` without ridge.
  ``Σ`` is the covariance of ``f₀(X*) − A f₀(X)``, a linear image of a
  Gaussian, hence PSD for every ``t``.

Traced or not, one copy. Both functions compute with float64 NumPy and SciPy
on concrete inputs (with every check, warning and refusal documented below),
and with ``jax.numpy`` and ``jax.scipy.linalg`` when an input is a JAX tracer,
i.e. when they run inside the caller's ``jax.jit``, ``vmap`` or ``grad``
(:mod:`ntkcourse.array_module`); :mod:`ntkcourse.predict` relies on this for
neural-tangents' ``nt.predict`` under transformations. On traced inputs only
what is known while tracing is checked: shapes, the names in ``get``, and
which test kernels were given. Values are not (finite entries, ``noise ≥ 0``,
``t ≥ 0``, a positive-definite ``K + σ²I``: a failed Cholesky factorisation
gives NaN instead of the host's ``ValueError``), and the conditioning
warnings are given only where the eigenvalues and times are concrete.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from . import validation
from .array_module import HOST, array_module, is_traced
from .dynamics import checked_cholesky, flow_coefficients, prepare_problem, warn_conditioning
from .spectral import as_kernel_matrix

__all__ = [
    "GPPosterior",
    "gp_posterior",
    "EnsemblePrediction",
    "infinite_ensemble_predictor",
    "infinite_ensemble_prediction",
]


class GPPosterior(NamedTuple):
    """Posterior ``mean`` (shape ``(m,) + y.shape[1:]``) and ``covariance``.

    ``covariance`` is ``(m, m)`` when the full ``k_test_test`` was given,
    ``(m,)`` (the variances) when only its diagonal was, ``None`` when neither.
    It is shared by every output dimension.
    """

    mean: np.ndarray
    covariance: np.ndarray | None


def _pick(where, kernel, get, name):
    """``kernel`` itself, or its ``.nngp``/``.ntk`` attribute when ``get`` names one."""
    if get is None or kernel is None:
        return kernel
    if not isinstance(get, str):
        raise validation.fail(where, "get", "'nngp', 'ntk' or None", get)
    validation.get_names(where, get, ("nngp", "ntk"))
    if not hasattr(kernel, get):
        raise ValueError(
            f"{where}: `{name}` must be a kernel object (as returned by kernel_fn) with get={get!r}, "
            f"got a {type(kernel).__name__} with no attribute {get!r}."
        )
    return getattr(kernel, get)


def _test_test(where, k_test_test, m, name, am=HOST):
    """Validate a test-test kernel: a (m, m) matrix or its diagonal (m,) (values only on the host)."""
    kss = am.numpy.asarray(k_test_test, dtype=am.float)
    if kss.shape not in ((m, m), (m,)):
        raise ValueError(
            f"{where}: `{name}` must have shape ({m}, {m}) or ({m},) (its diagonal) for m = {m} test points, "
            f"got shape {kss.shape}."
        )
    if not am.traced and not np.all(np.isfinite(kss)):
        raise ValueError(f"{where}: `{name}` must be a finite kernel, got NaN or inf.")
    if kss.ndim == 2:
        kss = as_kernel_matrix(kss, name, where, allow_traced=True)[0]
    return kss


def _test_train(where, k_test_train, n, name, am=HOST):
    kt = am.numpy.asarray(k_test_train, dtype=am.float)
    if kt.ndim != 2 or kt.shape[1] != n:
        raise ValueError(
            f"{where}: `{name}` must have shape (m, n) with n = {n} training points, got shape {kt.shape}.")
    if not am.traced and not np.all(np.isfinite(kt)):
        raise ValueError(f"{where}: `{name}` must be a finite kernel matrix, got NaN or inf.")
    return kt


def gp_posterior(
    k_train_train,
    y_train,
    k_test_train,
    k_test_test=None,
    *,
    noise: float = 0.0,
    get: str | None = None,
) -> GPPosterior:
    """Gaussian-process posterior over the latent outputs at the test points.

    Formula (Rasmussen & Williams 2006, eqs. 2.23–2.24; Lee et al. 2018 for
    the NNGP prior), with ``K = k(X, X)``, ``K_* = k(X*, X)``, ``K_** = k(X*, X*)``:

        ``mean = K_* (K + σ²I)⁻¹ y``
        ``cov  = K_** − K_* (K + σ²I)⁻¹ K_*ᵀ``

    solved by a Cholesky factorisation of ``K + σ²I``. ``noise`` is the
    observation-noise *variance* ``σ²``; the posterior is for the noise-free
    function (add ``σ²I`` for predictive draws of ``y``).

    Use the NNGP for exact Bayesian inference in an infinitely wide network;
    with the NTK this is the "NTK-GP" (see the module docstring).

    Args:
      k_train_train: ``(n, n)``.
      y_train: ``(n,)`` or ``(n, k)``.
      k_test_train: ``(m, n)``.
      k_test_test: ``(m, m)``, its diagonal ``(m,)``, or None (mean only).
      noise: float ``≥ 0``.
      get: None, or 'nngp' / 'ntk' to take that attribute of kernel objects
        returned by a ``kernel_fn`` (``kernel_fn(x_train)``,
        ``kernel_fn(x_test, x_train)``, ``kernel_fn(x_test)``).

    Raises:
      ValueError: when ``K + σ²I`` is not positive definite (suggests
        ``noise``); warns with ``IllConditionedKernelWarning`` when it is nearly so.
        Inside ``jit``/``vmap``/``grad`` neither can be known: the same
        formula runs on ``jax.numpy`` arrays (module docstring).
    """
    where = "gp_posterior"
    k_dd = _pick(where, k_train_train, get, "k_train_train")
    k_td = _pick(where, k_test_train, get, "k_test_train")
    k_tt = None if k_test_test is None else _pick(where, k_test_test, get, "k_test_test")
    am = array_module(k_dd, y_train, k_td, k_tt, noise)
    k, eps = as_kernel_matrix(k_dd, "k_train_train", where, allow_traced=True)
    n = k.shape[0]
    sigma2 = validation.nonnegative("gp_posterior", "noise", noise)
    y = am.numpy.asarray(y_train, dtype=am.float)
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(f"{where}: `y_train` must have shape (n,) or (n, k) with n = {n}, got shape {y.shape}.")
    if not am.traced and not np.all(np.isfinite(y)):
        raise ValueError(f"{where}: `y_train` must hold finite targets, got NaN or inf.")
    kt = _test_train(where, k_td, n, "k_test_train", am)
    if am.traced:
        factor = am.linalg.cho_factor(k + sigma2 * np.eye(n), lower=True)
    else:
        factor = checked_cholesky(k, sigma2, eps, "k_train_train", "noise", where)
    mean = kt @ am.linalg.cho_solve(factor, y, check_finite=False)
    if k_tt is None:
        return GPPosterior(mean, None)
    kss = _test_test(where, k_tt, kt.shape[0], "k_test_test", am)
    half = am.linalg.solve_triangular(factor[0], kt.T, lower=True, check_finite=False)   # L⁻¹K_*ᵀ
    if kss.ndim == 1:
        cov = kss - am.numpy.sum(half * half, axis=0)
    else:
        cov = kss - half.T @ half
        cov = 0.5 * (cov + cov.T)
    return GPPosterior(mean, cov)


class EnsemblePrediction(NamedTuple):
    """Mean and covariance of the outputs of an infinite ensemble of trained networks.

    Means have shape ``y.shape`` (train) / ``(m,) + y.shape[1:]`` (test), with a
    leading time axis ``T`` when ``t`` is an array; covariances ``(n, n)`` /
    ``(m, m)`` (or ``(m,)`` variances when only the diagonal of
    ``nngp_test_test`` is given), likewise with a leading ``T``. ``test_*`` are
    ``None`` without test kernels.
    """

    train_mean: np.ndarray
    train_covariance: np.ndarray
    test_mean: np.ndarray | None
    test_covariance: np.ndarray | None


def infinite_ensemble_predictor(
    ntk_train_train,
    nngp_train_train,
    y_train,
    *,
    learning_rate: float = 1.0,
    ridge: float = 0.0,
) -> Callable[..., EnsemblePrediction]:
    """Mean and covariance over initialisations of networks trained by gradient flow (Lee et al. 2019).

    Implements eqs. 15–16 of Lee et al. 2019 (module docstring), generalised to
    a ridge ``ρ`` (weight decay towards the initialisation), with one
    eigendecomposition ``Θ = V diag(λ) Vᵀ``:

        ``μ(X*, t) = P diag(c(t)) Vᵀ y``,  ``P = Θ_*X V``,  ``c = (1 − e^{−η(λ+ρ)t})/(λ+ρ)``
        ``Σ(X*, t) = K_** − P C Q − (P C Q)ᵀ + P C B C Pᵀ``,  ``C = diag(c)``, ``Q = VᵀK_X*``, ``B = VᵀKV``
        ``Σ(X, t)  = V D B D Vᵀ``,  ``D = diag(1 − λc)``

    so that ``t = 0`` gives the prior ``(0, K)`` and ``t → ∞`` without ridge
    gives mean ``y`` and covariance 0 on the training points.

    Returns ``predict(t, ntk_test_train=None, nngp_test_train=None, nngp_test_test=None)``;
    the three test kernels are given together (``nngp_test_test`` may be the
    (m,) diagonal only).
    """
    where = "infinite_ensemble_predictor"
    problem = prepare_problem(where, ntk_train_train, y_train, learning_rate, ridge, allow_traced=True)
    nngp, _ = as_kernel_matrix(nngp_train_train, "nngp_train_train", where, allow_traced=True)
    n = problem.y.shape[0]
    if nngp.shape != (n, n):
        raise ValueError(
            f"{where}: `nngp_train_train` must have the shape of ntk_train_train, {(n, n)}, got shape {nngp.shape}."
        )
    lam, vecs = problem.eig.eigenvalues, problem.eig.eigenvectors
    b = vecs.T @ nngp @ vecs
    y_modes = vecs.T @ problem.y

    def finish(arr, scalar, squeeze_output):
        if arr is None:
            return None
        if squeeze_output and problem.y_was_1d:
            arr = arr[..., 0]
        return arr[0] if scalar else arr

    def predict(t, ntk_test_train=None, nngp_test_train=None, nngp_test_test=None) -> EnsemblePrediction:
        am = array_module(vecs, b, y_modes, t, ntk_test_train, nngp_test_train, nngp_test_test)
        xp = am.numpy
        times, scalar = validation.times("infinite_ensemble_predictor", "t", t)
        given = [a is not None for a in (ntk_test_train, nngp_test_train, nngp_test_test)]
        if any(given) and not all(given):
            names = ("ntk_test_train", "nngp_test_train", "nngp_test_test")
            received = ", ".join(nm for nm, g in zip(names, given) if g)
            raise ValueError(
                f"{where}: `ntk_test_train`, `nngp_test_train` and `nngp_test_test` must be given together, got "
                f"{received} only."
            )
        if not is_traced(times, lam):  # known values: the same warnings under a trace
            warn_conditioning(problem, problem.eta * float(times.max()),
                              "time" if math.isfinite(times.max()) else "t → ∞", all(given))
        c = flow_coefficients(lam, problem.rho, problem.eta, times, xp=xp)    # (T, n)
        d = 1.0 - lam[None, :] * c
        train_mean = xp.einsum("ij,tj,jk->tik", vecs, lam[None, :] * c, y_modes)
        bd = d[:, :, None] * b[None] * d[:, None, :]
        train_cov = vecs[None] @ bd @ vecs.T[None]
        train_cov = 0.5 * (train_cov + train_cov.transpose(0, 2, 1))
        test_mean = test_cov = None
        if all(given):
            theta_star = _test_train(where, ntk_test_train, n, "ntk_test_train", am)
            m = theta_star.shape[0]
            k_star = _test_train(where, nngp_test_train, n, "nngp_test_train", am)
            if k_star.shape != (m, n):
                raise ValueError(
                    f"{where}: `nngp_test_train` must have the shape of ntk_test_train, {(m, n)}, got shape "
                    f"{k_star.shape}."
                )
            kss = _test_test(where, nngp_test_test, m, "nngp_test_test", am)
            p = theta_star @ vecs                                             # (m, n)
            q = vecs.T @ k_star.T                                             # (n, m)
            test_mean = xp.einsum("ij,tj,jk->tik", p, c, y_modes)
            pc = p[None] * c[:, None, :]                                      # (T, m, n)
            cross = pc @ q[None]                                              # (T, m, m)
            if kss.ndim == 1:
                quad = xp.einsum("tij,jk,tik->ti", pc, b, pc)
                test_cov = kss[None] - 2.0 * xp.einsum("tii->ti", cross) + quad
            else:
                test_cov = kss[None] - cross - cross.transpose(0, 2, 1) + pc @ b[None] @ pc.transpose(0, 2, 1)
                test_cov = 0.5 * (test_cov + test_cov.transpose(0, 2, 1))
        return EnsemblePrediction(
            finish(train_mean, scalar, True),
            finish(train_cov, scalar, False),
            finish(test_mean, scalar, True),
            finish(test_cov, scalar, False),
        )

    return predict


def infinite_ensemble_prediction(
    ntk_train_train,
    nngp_train_train,
    y_train,
    t,
    ntk_test_train=None,
    nngp_test_train=None,
    nngp_test_test=None,
    *,
    learning_rate: float = 1.0,
    ridge: float = 0.0,
) -> EnsemblePrediction:
    """One-shot :func:`infinite_ensemble_predictor` (Lee et al. 2019, eqs. 15–16) at time(s) ``t``."""
    predict = infinite_ensemble_predictor(
        ntk_train_train, nngp_train_train, y_train, learning_rate=learning_rate, ridge=ridge
    )
    return predict(t, ntk_test_train, nngp_test_train, nngp_test_test)
