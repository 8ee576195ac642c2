"""Closed-form training dynamics under the squared loss: gradient flow, gradient descent, momentum.

Convention (used everywhere in this package, and by :mod:`ntkcourse.training`):

    ``L(θ) = ½ Σᵢ ‖f(xᵢ; θ) − yᵢ‖² + ½ ρ ‖θ − θ₀‖²``

a **sum** over the ``n`` training points (no division by ``n``), with an
optional ridge ``ρ ≥ 0`` that is weight decay *towards the initialisation*.
Gradient flow ``dθ/dt = −η∇L`` on the linearised network
``f_lin(x; θ) = f(x; θ₀) + J(x)(θ − θ₀)`` (Lee et al. 2019,
:cite:`lee2019wide`) is linear in function space, with ``Θ = J(X)J(X)ᵀ`` the
NTK on the training inputs ``X`` and ``Θ_*X = J(X*)J(X)ᵀ``:

    ``df(X)/dt  = −η [Θ   (f(X) − y) + ρ (f(X)  − f₀(X))]``
    ``df(X*)/dt = −η [Θ_*X(f(X) − y) + ρ (f(X*) − f₀(X*))]``

Writing ``Θ = V diag(λ) Vᵀ`` and ``r = y − f₀(X)``, the solution is

    ``f_t(X)  = f₀(X)  + V diag(λₖ cₖ(t)) Vᵀ r``
    ``f_t(X*) = f₀(X*) + Θ_*X V diag(cₖ(t)) Vᵀ r``

with, per mode (``μₖ = λₖ + ρ``):

* gradient flow: ``cₖ(t) = (1 − e^{−ημₖt}) / μₖ`` — computed as
  ``ηt · (−expm1(−x)/x)``, ``x = ημₖt``, which is accurate for tiny ``μₖ``;
* gradient descent, ``s`` steps: ``cₖ(s) = (1 − (1 − ημₖ)^s) / μₖ``
  (exact for the linearised network);
* heavy-ball momentum ``μ_m`` (optax's ``sgd(momentum=μ_m)``):
  ``c_{s+1} = (1 + μ_m − ημₖ) c_s − μ_m c_{s−1} + η``, ``c₀ = c₋₁ = 0``,
  evaluated by powers of its 3×3 companion matrix.

Without ridge this is the familiar ``f_t(X) = y + e^{−ηΘt}(f₀(X) − y)``
(Jacot et al. 2018, :cite:`jacot2018ntk`), and ``t → ∞`` gives kernel
regression ``Θ_*X Θ⁻¹ y`` (ridge: ``Θ_*X (Θ + ρI)⁻¹ y``). With a ridge the
train outputs converge to the ridge fit ``Θ(Θ + ρI)⁻¹ y``, not to ``y``.

Neural-tangents' ``predict.gradient_descent_mse`` divides the loss by the
number of entries of ``y``: its ``learning_rate`` ``η_nt`` corresponds to
``η = η_nt / y.size`` here.

Numerics: eigenvalues follow the clipping rule of :mod:`ntkcourse.spectral`.
Modes in the numerical null space of ``Θ`` (clipped to 0) are left out of the
test predictions — for a valid joint kernel ``Θ_*X v = 0`` there in exact
arithmetic, and keeping the round-off would let it grow like ``ηt``. When the
round-off of the kernel could be amplified beyond 1% at the requested times
(``n·ε·κ_eff(t) > 10⁻²`` with ``κ_eff(t) = (λ_max+ρ)·maxₖ min(ηt, 1/μₖ)``),
or the ``t → ∞`` limit of a singular kernel is asked for without a ridge, an
:class:`~ntkcourse.spectral.IllConditionedKernelWarning` suggests a ridge.

Traced values. :func:`gradient_flow_predictor` (and so
:mod:`ntkcourse.inference` and :mod:`ntkcourse.predict`) also runs inside the
caller's ``jax.jit``, ``vmap`` or ``grad``: when the kernel, the targets,
the times, the test kernel or the initial outputs are JAX tracers, the same
formulas are evaluated by ``jax.numpy`` (:mod:`ntkcourse.array_module`).
There the shapes are checked as on the host; what depends on values cannot
be (finite entries, symmetry beyond ``(K + Kᵀ)/2``, a PSD or non-zero
kernel, non-negative times), and the conditioning warnings are given only
when the eigenvalues and times are concrete. Gradient descent and momentum
(:func:`gradient_descent_predictor`) and :func:`kernel_regression` compute
on the host only and refuse traced arguments with a ``TypeError``.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, NamedTuple

import numpy as np
import scipy.linalg

from . import validation
from .array_module import HOST, array_module, host_only, is_traced
from .spectral import (
    IllConditionedKernelWarning,
    KernelEigen,
    UnstableLearningRateWarning,
    as_kernel_matrix,
    eigendecomposition_of_valid,
)

__all__ = [
    "MSEPrediction",
    "gradient_flow_predictor",
    "gradient_flow_prediction",
    "gradient_descent_predictor",
    "gradient_descent_prediction",
    "kernel_regression",
    "IllConditionedKernelWarning",
    "UnstableLearningRateWarning",
]

# Relative error (round-off of the kernel times its amplification) beyond which we warn.
_AMPLIFIED_ERROR_WARN = 1e-2


class MSEPrediction(NamedTuple):
    """Outputs on the training and test inputs.

    ``train`` has shape ``y_train.shape`` for a scalar time and
    ``(T,) + y_train.shape`` for ``T`` times; ``test`` likewise with ``m`` test
    points in place of ``n``, or ``None`` when no ``k_test_train`` was given.
    """

    train: np.ndarray
    test: np.ndarray | None


class RegressionProblem(NamedTuple):
    eig: KernelEigen
    eps: float
    y: np.ndarray          # (n, k), float64 (or traced, see prepare_problem)
    y_was_1d: bool
    eta: float
    rho: float
    where: str             # the public function, named in errors and warnings


def prepare_problem(where: str, k_train_train, y_train, learning_rate, ridge, *,
                    allow_traced: bool = False) -> RegressionProblem:
    """The checked training problem of the gradient-flow and gradient-descent predictors
    (``where`` names the public function in error messages).

    With ``allow_traced``, a traced kernel or target (inside the caller's
    ``jit``/``vmap``/``grad``) gives a problem of ``jax.numpy`` arrays whose
    shapes are checked but whose values (finite targets, a non-zero kernel)
    cannot be; otherwise it is refused naming ``where``.
    """
    eta = validation.positive(where, "learning_rate", learning_rate)
    rho = validation.nonnegative(where, "ridge", ridge)
    am = array_module(k_train_train, y_train)
    if am.traced and not allow_traced:
        raise host_only(where, "k_train_train" if is_traced(k_train_train) else "y_train")
    k, eps = as_kernel_matrix(k_train_train, "k_train_train", where, allow_traced=True)
    eig = eigendecomposition_of_valid(k, eps, "k_train_train", where)
    n = eig.eigenvalues.shape[0]
    y = am.numpy.asarray(y_train, dtype=am.float)
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(
            f"{where}: `y_train` must have shape (n,) or (n, k) with n = {n} (the size of k_train_train), "
            f"got shape {y.shape}."
        )
    if not am.traced and not np.all(np.isfinite(y)):
        raise ValueError(f"{where}: `y_train` must hold finite targets, got NaN or inf.")
    if not am.traced and eig.eigenvalues[0] == 0 and rho == 0:
        raise ValueError(f"{where}: `k_train_train` must be a non-zero kernel (nothing can be learned otherwise), "
                         "got the zero matrix.")
    return RegressionProblem(
        eig=eig,
        eps=eps,
        y=y.reshape(n, -1),
        y_was_1d=y.ndim == 1,
        eta=eta,
        rho=rho,
        where=where,
    )


def _initial_outputs(where: str, problem: RegressionProblem, k_test_train, f_train_0, f_test_0, am=HOST):
    """Validate test kernel and initial outputs; return (k_test_train, f0_train, f0_test) as float 2-D
    arrays of ``am`` (traced ones: shapes checked, values not).
    """
    xp = am.numpy
    n, k = problem.y.shape
    out_shape = (n,) if problem.y_was_1d else (n, k)
    if f_train_0 is None:
        f0 = np.zeros((n, k))
    else:
        f0 = xp.asarray(f_train_0, dtype=am.float)
        if f0.shape != out_shape:
            raise ValueError(f"{where}: `f_train_0` must have the shape of y_train, {out_shape}, got shape {f0.shape}.")
        if not am.traced and not np.all(np.isfinite(f0)):
            raise ValueError(f"{where}: `f_train_0` must hold finite initial outputs, got NaN or inf.")
        f0 = f0.reshape(n, k)
    if k_test_train is None:
        if f_test_0 is not None:
            raise ValueError(f"{where}: `f_test_0` was given without k_test_train; pass the test-train kernel too.")
        return None, f0, None
    kt = xp.asarray(k_test_train, dtype=am.float)
    if kt.ndim != 2 or kt.shape[1] != n:
        raise ValueError(
            f"{where}: `k_test_train` must have shape (m, n) with n = {n} training points, got shape {kt.shape}."
        )
    if not am.traced and not np.all(np.isfinite(kt)):
        raise ValueError(f"{where}: `k_test_train` must be a finite kernel matrix, got NaN or inf.")
    m = kt.shape[0]
    test_shape = (m,) if problem.y_was_1d else (m, k)
    if f_test_0 is None:
        if f_train_0 is not None:
            raise ValueError(
                f"{where}: `f_train_0` was given without f_test_0: the initial outputs on the test points are needed "
                "too (they come from the same network). Pass f_test_0, or neither for zero initial outputs."
            )
        f0_test = np.zeros((m, k))
    else:
        f0_test = xp.asarray(f_test_0, dtype=am.float)
        if f0_test.shape != test_shape:
            raise ValueError(f"{where}: `f_test_0` must have shape {test_shape}, got shape {f0_test.shape}.")
        if not am.traced and not np.all(np.isfinite(f0_test)):
            raise ValueError(f"{where}: `f_test_0` must hold finite initial outputs, got NaN or inf.")
        f0_test = f0_test.reshape(m, k)
    return kt, f0, f0_test


def warn_conditioning(problem: RegressionProblem, horizon: float, what: str, has_test: bool) -> None:
    """Warn for a singular kernel's limit, and (test outputs only) for round-off amplified beyond 1% by ``η·t``;
    the warnings begin with the public function's name, ``problem.where``.
    """
    lam, rho = problem.eig.eigenvalues, problem.rho
    n = lam.shape[0]
    nonnull = lam > 0
    if horizon == math.inf and problem.eig.rank < n and rho == 0:
        warnings.warn(
            f"{problem.where}: `k_train_train` is singular (numerical rank {problem.eig.rank} < n = {n}) and "
            f"ridge = 0: in the {what} limit the train outputs do not reach y_train in the null space, and the "
            "test outputs are the minimum-norm (pseudo-inverse) solution. Add a ridge (e.g. ridge=1e-6 * trace/n) "
            "for kernel ridge regression.",
            IllConditionedKernelWarning,
            stacklevel=3,
        )
    if not has_test or not np.any(nonnull):
        return
    mu = lam[nonnull] + rho
    kappa = (lam[0] + rho) * min(horizon, float(1.0 / mu.min()))
    amplified = n * problem.eps * kappa
    if amplified > _AMPLIFIED_ERROR_WARN:
        warnings.warn(
            f"{problem.where}: `k_train_train` is ill-conditioned at the requested {what}: effective condition "
            f"number {kappa:.3g}, so round-off in the kernel (n·ε = {n * problem.eps:.2g}) can reach a relative "
            f"error of about {amplified:.2g} in the predictions. Add a ridge (e.g. ridge=1e-6 * trace/n) or "
            "compute the kernel in float64.",
            IllConditionedKernelWarning,
            stacklevel=3,
        )


def flow_coefficients(lam, rho, eta, times, xp=np):
    """``c(t) = (1 − e^{−η(λ+ρ)t})/(λ+ρ)`` per mode (T, n), 0 on the null space.

    ``xp`` is the array module: ``numpy``, or ``jax.numpy`` for traced inputs
    (:mod:`ntkcourse.predict` under ``jit``/``vmap``/``grad``).
    """
    mu = lam + rho
    nonnull = lam > 0
    finite = xp.isfinite(times)
    tt = xp.where(finite, times, 0.0)
    x = eta * tt[:, None] * mu[None, :]
    safe_x = xp.where(x > 0, x, 1.0)
    ratio = xp.where(x > 0, -xp.expm1(-safe_x) / safe_x, 1.0)
    c = eta * tt[:, None] * ratio
    safe_mu = xp.where(nonnull, mu, 1.0)
    c = xp.where(finite[:, None], c, 1.0 / safe_mu[None, :])
    return xp.where(nonnull[None, :], c, 0.0)


def _gd_coefficients(lam, rho, eta, steps):
    """``c(s) = (1 − (1 − η(λ+ρ))^s)/(λ+ρ)`` per mode (T, n), 0 on the null space."""
    mu = lam + rho
    nonnull = lam > 0
    a = eta * mu
    safe_mu = np.where(nonnull, mu, 1.0)
    finite = np.isfinite(steps)
    s = np.where(finite, steps, 0.0)[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        small = a < 1.0
        log_base = np.log1p(-np.where(small, a, 0.0))
        accurate = -np.expm1(s * log_base[None, :]) / safe_mu[None, :]
        direct = (1.0 - np.power((1.0 - a)[None, :], s)) / safe_mu[None, :]
    c = np.where(small[None, :], accurate, direct)
    c = np.where(finite[:, None], c, 1.0 / safe_mu[None, :])
    return np.where(nonnull[None, :], c, 0.0)


def _momentum_coefficients(lam, rho, eta, momentum, steps):
    """Heavy-ball ``c_s`` per mode (T, n) from powers of the affine companion matrix; 0 on the null space."""
    mu = lam + rho
    nonnull = lam > 0
    n = lam.shape[0]
    a = eta * mu
    companion = np.zeros((n, 3, 3))
    companion[:, 0, 0] = 1.0 + momentum - a
    companion[:, 0, 1] = -momentum
    companion[:, 0, 2] = eta
    companion[:, 1, 0] = 1.0
    companion[:, 2, 2] = 1.0
    safe_mu = np.where(nonnull, mu, 1.0)
    out = np.empty((steps.shape[0], n))
    with np.errstate(over="ignore", invalid="ignore"):
        for i, s in enumerate(steps):
            if not np.isfinite(s):
                out[i] = 1.0 / safe_mu
            else:
                # State (c_s, c_{s−1}, 1) starts at (0, 0, 1); c_s is entry [0, 2] of companion^s.
                out[i] = np.linalg.matrix_power(companion, int(s))[:, 0, 2]
    return np.where(nonnull[None, :], out, 0.0)


def _assemble(problem: RegressionProblem, coeffs, scalar, kt, f0, f0_test, am=HOST) -> MSEPrediction:
    """``f₀ + V diag(λc) Vᵀr`` on train and ``f₀* + Θ_*X V diag(c) Vᵀr`` on test, for every time
    (arrays of ``am``: NumPy, or ``jax.numpy`` on traced values).
    """
    lam, vecs = problem.eig.eigenvalues, problem.eig.eigenvectors
    n, k = problem.y.shape
    T = coeffs.shape[0]
    r_modes = vecs.T @ (problem.y - f0)                       # (n, k)
    contiguous = am.numpy.asarray if am.traced else np.ascontiguousarray

    def modes_to_columns(weights):                            # (T, n) -> (n, T·k)
        z = weights[:, :, None] * r_modes[None, :, :]
        return contiguous(z.transpose(1, 0, 2)).reshape(n, T * k)

    def columns_to_output(cols, rows, base):                  # (rows, T·k) -> (T, rows, k)
        return cols.reshape(rows, T, k).transpose(1, 0, 2) + base[None]

    with np.errstate(over="ignore", invalid="ignore"):
        train = columns_to_output(vecs @ modes_to_columns(lam[None, :] * coeffs), n, f0)
        test = None
        if kt is not None:
            m = kt.shape[0]
            cols = modes_to_columns(coeffs)
            # Cheaper order of the two products, depending on the number of columns T·k.
            if n * n * T * k + m * n * T * k <= m * n * n + m * n * T * k:
                test_cols = kt @ (vecs @ cols)
            else:
                test_cols = (kt @ vecs) @ cols
            test = columns_to_output(test_cols, m, f0_test)

    def finish(arr):
        if arr is None:
            return None
        if problem.y_was_1d:
            arr = arr[..., 0]
        return arr[0] if scalar else arr

    return MSEPrediction(finish(train), finish(test))


PredictFn = Callable[..., MSEPrediction]


def gradient_flow_predictor(k_train_train, y_train, *, learning_rate: float = 1.0, ridge: float = 0.0) -> PredictFn:
    """Closed-form gradient flow under MSE; one eigendecomposition, reused for every call.

    Implements (module docstring; Jacot et al. 2018, Lee et al. 2019 eqs. 9–10)

        ``f_t(X)  = f₀(X)  + V diag(λₖ(1 − e^{−η(λₖ+ρ)t})/(λₖ+ρ)) Vᵀ (y − f₀(X))``
        ``f_t(X*) = f₀(X*) + Θ_*X V diag((1 − e^{−η(λₖ+ρ)t})/(λₖ+ρ)) Vᵀ (y − f₀(X))``

    for the loss ``½Σᵢ‖f(xᵢ) − yᵢ‖² + ½ρ‖θ − θ₀‖²`` (a sum over points).

    Args:
      k_train_train: NTK on the training inputs ``(n, n)`` (float64 recommended).
        With the NNGP in its place the same formula describes training only
        the last layer.
      y_train: targets ``(n,)`` or ``(n, k)``; the same kernel is used for
        every output dimension.
      learning_rate: ``η > 0``; only the product ``ηt`` matters.
      ridge: ``ρ ≥ 0``, weight decay towards the initialisation.

    Returns:
      ``predict(t, k_test_train=None, f_train_0=None, f_test_0=None) -> MSEPrediction``:
      ``t`` a time ``≥ 0`` or a 1-D array of them, ``numpy.inf`` for the
      limit; ``k_test_train`` ``(m, n)``; ``f_train_0`` / ``f_test_0`` the
      network's outputs at initialisation (zero by default — the mean over
      initialisations).
    """
    where = "gradient_flow_predictor"
    problem = prepare_problem(where, k_train_train, y_train, learning_rate, ridge, allow_traced=True)

    def predict(t, k_test_train=None, f_train_0=None, f_test_0=None) -> MSEPrediction:
        am = array_module(problem.eig.eigenvectors, problem.y, t, k_test_train, f_train_0, f_test_0)
        times, scalar = validation.times(where, "t", t)
        kt, f0, f0_test = _initial_outputs(where, problem, k_test_train, f_train_0, f_test_0, am)
        if not is_traced(times, problem.eig.eigenvalues):  # known values: the same warnings under a trace
            warn_conditioning(problem, problem.eta * float(times.max()),
                              "time" if np.isfinite(times.max()) else "t → ∞", kt is not None)
        coeffs = flow_coefficients(problem.eig.eigenvalues, problem.rho, problem.eta, times, xp=am.numpy)
        return _assemble(problem, coeffs, scalar, kt, f0, f0_test, am)

    return predict


def gradient_flow_prediction(
    k_train_train,
    y_train,
    t,
    k_test_train=None,
    *,
    learning_rate: float = 1.0,
    ridge: float = 0.0,
    f_train_0=None,
    f_test_0=None,
) -> MSEPrediction:
    """Outputs after gradient flow for time(s) ``t``; see :func:`gradient_flow_predictor` for the formula.

    One-shot form: ``gradient_flow_predictor(k_train_train, y_train, ...)(t, ...)``.
    """
    predict = gradient_flow_predictor(k_train_train, y_train, learning_rate=learning_rate, ridge=ridge)
    return predict(t, k_test_train, f_train_0, f_test_0)


def gradient_descent_predictor(
    k_train_train,
    y_train,
    learning_rate: float,
    *,
    ridge: float = 0.0,
    momentum: float = 0.0,
) -> PredictFn:
    """Closed-form full-batch gradient descent (optionally heavy-ball momentum) under MSE.

    Exact for the linearised network (Lee et al. 2019, eq. 10 and its discrete
    form): after ``s`` steps of ``θ ← θ − η∇L`` on
    ``L = ½Σᵢ‖f(xᵢ) − yᵢ‖² + ½ρ‖θ − θ₀‖²`` the outputs are those of
    :func:`gradient_flow_predictor` with the per-mode factor

        ``cₖ(s) = (1 − (1 − η(λₖ + ρ))^s) / (λₖ + ρ)``.

    With momentum ``μ_m`` (``v ← μ_m v − η∇L``, ``θ ← θ + v``, which is optax's
    ``sgd(η, momentum=μ_m)``) ``cₖ`` obeys
    ``c_{s+1} = (1 + μ_m − η(λₖ+ρ)) c_s − μ_m c_{s−1} + η`` with ``c₀ = c₋₁ = 0``.

    Stable iff ``η < 2(1 + μ_m)/(λ_max + ρ)``
    (:func:`ntkcourse.spectral.max_learning_rate`); otherwise an
    :class:`UnstableLearningRateWarning` is emitted and the predicted outputs
    grow geometrically.

    Returns ``predict(steps, k_test_train=None, f_train_0=None, f_test_0=None)``
    with ``steps`` a whole number ``≥ 0`` or a 1-D array of them
    (``numpy.inf`` for the limit, only when stable).
    """
    problem = prepare_problem("gradient_descent_predictor", k_train_train, y_train, learning_rate, ridge)
    mom = validation.momentum("gradient_descent_predictor", momentum)
    bound = 2.0 * (1.0 + mom) / (problem.eig.eigenvalues[0] + problem.rho)
    unstable = problem.eta >= bound
    if unstable:
        warnings.warn(
            f"gradient_descent_predictor: `learning_rate` = {problem.eta:.6g} is at or above the stability bound "
            f"2(1+momentum)/(λ_max+ridge) = {bound:.6g}: the top mode does not converge and the predicted outputs "
            "oscillate or grow geometrically. Use a learning rate below the bound "
            "(ntkcourse.spectral.max_learning_rate).",
            UnstableLearningRateWarning,
            stacklevel=2,
        )

    def predict(steps, k_test_train=None, f_train_0=None, f_test_0=None) -> MSEPrediction:
        for name, value in (("steps", steps), ("k_test_train", k_test_train), ("f_train_0", f_train_0),
                            ("f_test_0", f_test_0)):
            if is_traced(value):
                raise host_only("gradient_descent_predictor", name)
        s, scalar = validation.times("gradient_descent_predictor", "steps", steps, integer=True)
        if unstable and np.any(np.isinf(s)):
            raise ValueError(
                f"gradient_descent_predictor: `steps` = inf asks for the limit of gradient descent, which does not "
                f"exist for learning_rate = {problem.eta:.6g} ≥ the stability bound {bound:.6g}; expected a learning "
                "rate below the bound."
            )
        kt, f0, f0_test = _initial_outputs("gradient_descent_predictor", problem, k_test_train, f_train_0,
                                           f_test_0)
        # Small modes accumulate c_s ≈ η s/(1 − μ_m) under momentum.
        horizon = problem.eta * float(s.max()) / (1.0 - mom) if np.isfinite(s.max()) else math.inf
        warn_conditioning(problem, horizon, "number of steps" if np.isfinite(s.max()) else "steps → ∞",
                           kt is not None)
        lam = problem.eig.eigenvalues
        if mom == 0.0:
            coeffs = _gd_coefficients(lam, problem.rho, problem.eta, s)
        else:
            coeffs = _momentum_coefficients(lam, problem.rho, problem.eta, mom, s)
        return _assemble(problem, coeffs, scalar, kt, f0, f0_test)

    return predict


def gradient_descent_prediction(
    k_train_train,
    y_train,
    steps,
    k_test_train=None,
    *,
    learning_rate: float,
    ridge: float = 0.0,
    momentum: float = 0.0,
    f_train_0=None,
    f_test_0=None,
) -> MSEPrediction:
    """Outputs after ``steps`` of gradient descent; see :func:`gradient_descent_predictor` for the formula."""
    predict = gradient_descent_predictor(k_train_train, y_train, learning_rate, ridge=ridge, momentum=momentum)
    return predict(steps, k_test_train, f_train_0, f_test_0)


def checked_cholesky(k: np.ndarray, shift: float, eps: float, name: str, shift_name: str,
                     where: str = "checked_cholesky"):
    """Cholesky factor of ``k + shift·I`` (scipy ``cho_factor`` form), with the package's checks.

    Raises ``ValueError`` naming ``shift_name`` as the remedy when the factorisation
    fails; warns with :class:`IllConditionedKernelWarning` when LAPACK's
    condition estimate ``κ`` (``dpocon``) gives ``n·ε·κ > 10⁻²``.
    """
    n = k.shape[0]
    a = k + shift * np.eye(n)
    try:
        factor = scipy.linalg.cho_factor(a, lower=True, check_finite=False)
    except np.linalg.LinAlgError as err:
        raise ValueError(
            f"{where}: `{name}` + {shift_name}·I ({shift_name} = {shift:g}) is not positive definite to working "
            f"precision (Cholesky failed: {err}). The kernel is singular or not PSD; add a {shift_name}, e.g. "
            f"{shift_name}={1e-6 * float(np.trace(k)) / n:.3g} (1e-6 · trace/n)."
        ) from None
    anorm = float(np.max(np.sum(np.abs(a), axis=0)))
    rcond, info = scipy.linalg.lapack.dpocon(factor[0], anorm, uplo="L")
    if info == 0 and (rcond == 0 or n * eps / rcond > _AMPLIFIED_ERROR_WARN):
        kappa = math.inf if rcond == 0 else 1.0 / rcond
        warnings.warn(
            f"{where}: `{name}` + {shift_name}·I is ill-conditioned (condition number ≈ {kappa:.3g}); round-off in the "
            f"kernel (n·ε = {n * eps:.2g}) can be amplified to a relative error of about {n * eps * kappa:.2g}. "
            f"Add a {shift_name} (e.g. {shift_name}=1e-6 * trace/n).",
            IllConditionedKernelWarning,
            stacklevel=3,
        )
    return factor


def kernel_regression(k_train_train, y_train, k_test_train=None, *, ridge: float = 0.0) -> np.ndarray:
    """Kernel (ridge) regression ``k(X*, X)(K + ρI)⁻¹ y`` by a Cholesky solve.

    This is the ``t → ∞`` limit of gradient flow from zero initial outputs
    (Jacot et al. 2018; Lee et al. 2019, eq. 11 with the NTK). For a
    non-zero initial function pass ``y − f₀(X)`` and add ``f₀(X*)``. Without
    ``k_test_train`` returns the fit on the training points, ``K(K + ρI)⁻¹ y``.

    Raises ``ValueError`` when ``K + ρI`` is not numerically positive definite
    (Cholesky fails), and warns with :class:`IllConditionedKernelWarning` when
    LAPACK's condition estimate ``κ`` gives ``n·ε·κ > 10⁻²`` — in both cases
    the remedy is a ridge. It computes on the host only (LAPACK's estimate):
    a JAX tracer as any argument (inside ``jit``/``vmap``/``grad``) is refused
    with a ``TypeError`` naming it.
    """
    where = "kernel_regression"
    k, eps = as_kernel_matrix(k_train_train, "k_train_train", where)
    n = k.shape[0]
    rho = validation.nonnegative(where, "ridge", ridge)
    for name, value in (("y_train", y_train), ("k_test_train", k_test_train)):
        if is_traced(value):
            raise host_only(where, name)
    y = np.asarray(y_train, dtype=np.float64)
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(
            f"{where}: `y_train` must have shape (n,) or (n, k) with n = {n}, got shape {y.shape}."
        )
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{where}: `y_train` must hold finite targets, got NaN or inf.")
    if k_test_train is None:
        kt = k
    else:
        kt = np.asarray(k_test_train, dtype=np.float64)
        if kt.ndim != 2 or kt.shape[1] != n:
            raise ValueError(
                f"{where}: `k_test_train` must have shape (m, n) with n = {n}, got shape {kt.shape}."
            )
        if not np.all(np.isfinite(kt)):
            raise ValueError(f"{where}: `k_test_train` must be a finite kernel matrix, got NaN or inf.")
    factor = checked_cholesky(k, rho, eps, "k_train_train", "ridge", where)
    return kt @ scipy.linalg.cho_solve(factor, y, check_finite=False)
