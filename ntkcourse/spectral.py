"""Spectral analysis of kernel matrices: the eigen-structure that governs training.

Under gradient flow on the squared loss ``L = ½ Σᵢ ‖f(xᵢ) − yᵢ‖²`` (a *sum*
over the ``n`` training points, not a mean; see :mod:`ntkcourse.dynamics`), the
training residual evolves as ``r(t) = exp(−ηΘt) r(0)`` (Jacot et al. 2018,
:cite:`jacot2018ntk`). Writing ``Θ = Σₖ λₖ vₖ vₖᵀ``, the component of the
residual along the eigenvector ``vₖ`` decays as ``exp(−ηλₖt)``: large
eigenvalues are learned first. This module computes the quantities that
statement is about — eigenvalues, per-mode convergence, condition number,
effective rank, the largest stable learning rate — and the data on the circle
that turns it into a demonstration of *spectral bias* (Fourier modes of low
frequency have the largest eigenvalues of a rotation-invariant kernel).

Numerical rule for eigenvalues (used throughout the package). A symmetric
eigensolver returns eigenvalues with an absolute error of order ``n ε ‖K‖₂``
(``ε`` the machine epsilon of the kernel's dtype, ``n`` its size). We therefore
set ``tol = n · ε · max|λ|`` and

* clip every eigenvalue in ``[−tol, tol]`` to exactly 0 (the *numerical null
  space*; ``rank`` counts the others);
* clip eigenvalues below ``−tol`` to 0 as well, but warn with
  :class:`KernelNotPSDWarning`: a kernel matrix is positive semi-definite, and
  a negative eigenvalue beyond round-off means the matrix is not one (a bug
  upstream, or a kernel computed in too low a precision).

The warnings are ``UserWarning`` subclasses, so they can be filtered or turned
into errors by class.
"""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

__all__ = [
    "KernelNotPSDWarning",
    "IllConditionedKernelWarning",
    "UnstableLearningRateWarning",
    "KernelEigen",
    "kernel_eigendecomposition",
    "kernel_spectrum",
    "mode_projections",
    "mode_convergence",
    "condition_number",
    "effective_rank",
    "max_learning_rate",
    "CircleData",
    "circle_data",
    "sphere_data",
    "fourier_amplitudes",
    "spectral_bias_curves",
]


class KernelNotPSDWarning(UserWarning):
    """A kernel matrix has eigenvalues below ``−n·ε·max|λ|`` (not PSD beyond round-off)."""


class IllConditionedKernelWarning(UserWarning):
    """A kernel is singular or so ill-conditioned that round-off is amplified; add a ridge."""


class UnstableLearningRateWarning(UserWarning):
    """A discrete learning rate exceeds the stability bound ``2(1+μ)/(λ_max+ρ)``."""


class KernelEigen(NamedTuple):
    """Eigendecomposition ``K = V diag(λ) Vᵀ`` after the clipping rule of this module.

    ``eigenvalues`` are sorted in *descending* order and are ``≥ 0``;
    ``eigenvectors[:, k]`` belongs to ``eigenvalues[k]``; ``tolerance`` is the
    ``n·ε·max|λ|`` below which eigenvalues were set to 0; ``rank`` counts the
    eigenvalues left positive; ``min_raw_eigenvalue`` is the smallest eigenvalue
    before clipping (negative for a kernel that is not PSD).
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    tolerance: float
    rank: int
    min_raw_eigenvalue: float


def _dtype_eps(array) -> float:
    """Machine epsilon of ``array``'s floating dtype (float64 for anything else)."""
    dtype = getattr(array, "dtype", None)
    if dtype is not None and np.issubdtype(dtype, np.floating):
        return float(np.finfo(dtype).eps)
    return float(np.finfo(np.float64).eps)


def as_kernel_matrix(kernel, name: str = "kernel") -> tuple[np.ndarray, float]:
    """Validate a square symmetric finite kernel matrix; return it in float64 and its dtype's ε.

    A matrix whose asymmetry ``max|K − Kᵀ|`` exceeds ``√ε · max|K|`` (``ε`` of
    its own dtype) is rejected: round-off of a symmetric computation is far
    below that. Smaller asymmetry is removed by ``(K + Kᵀ)/2``.
    """
    eps = _dtype_eps(kernel)
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(
            f"{name} must be a square 2-D matrix (n, n); received an array of shape {k.shape}."
        )
    if k.shape[0] == 0:
        raise ValueError(f"{name} must have at least one row; received shape {k.shape}.")
    # A finite sum proves every entry finite (NaN and inf propagate); count only when it is not.
    if not np.isfinite(np.sum(k)) and not np.all(np.isfinite(k)):
        bad = int(np.size(k) - np.count_nonzero(np.isfinite(k)))
        raise ValueError(
            f"{name} contains {bad} non-finite entries (NaN or inf); expected a finite kernel matrix."
        )
    diff = k - k.T
    scale = float(np.max(np.abs(k)))
    asym = float(np.max(np.abs(diff)))
    if asym > math.sqrt(eps) * scale:
        raise ValueError(
            f"{name} is not symmetric: max|K − Kᵀ| = {asym:.3g}, more than √ε·max|K| = "
            f"{math.sqrt(eps) * scale:.3g}; expected a symmetric kernel matrix k(X, X)."
        )
    diff *= 0.5
    return np.subtract(k, diff, out=diff), eps


def kernel_eigendecomposition(kernel, *, name: str = "kernel") -> KernelEigen:
    """Symmetric eigendecomposition ``K = V diag(λ) Vᵀ`` with the clipping rule of this module.

    Formula: ``numpy.linalg.eigh`` (LAPACK ``syevd``), then eigenvalues in
    ``[−tol, tol]`` with ``tol = n·ε·max|λ|`` are set to 0 and eigenvalues below
    ``−tol`` are set to 0 with a :class:`KernelNotPSDWarning`. Eigenvalues are
    returned in descending order.

    Args:
      kernel: symmetric kernel matrix ``(n, n)`` (NNGP or NTK on one set of inputs).
      name: name of the argument, used in error messages.
    """
    k, eps = as_kernel_matrix(kernel, name)
    return _eigendecomposition_of_valid(k, eps, name)


def _eigendecomposition_of_valid(k: np.ndarray, eps: float, name: str) -> KernelEigen:
    """:func:`kernel_eigendecomposition` of a matrix already checked by :func:`as_kernel_matrix`."""
    n = k.shape[0]
    raw, vecs = np.linalg.eigh(k)
    raw = raw[::-1]
    vecs = np.ascontiguousarray(vecs[:, ::-1])
    top = float(np.max(np.abs(raw)))
    tol = n * eps * top
    min_raw = float(raw[-1])
    if min_raw < -tol:
        warnings.warn(
            f"{name} is not positive semi-definite: its smallest eigenvalue is {min_raw:.3g}, "
            f"below the round-off tolerance −n·ε·max|λ| = {-tol:.3g}. Negative eigenvalues are "
            "clipped to 0; check how the kernel was computed (float64 is recommended).",
            KernelNotPSDWarning,
            stacklevel=4,
        )
    vals = np.where(raw > tol, raw, 0.0)
    rank = int(np.count_nonzero(vals))
    return KernelEigen(vals, vecs, tol, rank, min_raw)


def kernel_spectrum(kernel) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, clipped at 0) and eigenvectors of a kernel matrix.

    ``K = Σₖ λₖ vₖ vₖᵀ`` with ``λ₁ ≥ λ₂ ≥ … ≥ 0``; see the module docstring for
    the clipping rule. Returns ``(eigenvalues (n,), eigenvectors (n, n))``.
    """
    eig = kernel_eigendecomposition(kernel, name="kernel")
    return eig.eigenvalues, eig.eigenvectors


def _eigenvalues_of(kernel_or_eigenvalues, name: str) -> np.ndarray:
    """Descending clipped eigenvalues from a kernel matrix (2-D) or the eigenvalues themselves (1-D)."""
    arr = np.asarray(kernel_or_eigenvalues)
    if arr.ndim == 2:
        return kernel_eigendecomposition(arr, name=name).eigenvalues
    if arr.ndim == 1 and arr.size > 0:
        vals = np.asarray(arr, dtype=np.float64)
        if not np.all(np.isfinite(vals)):
            raise ValueError(f"{name} contains non-finite eigenvalues; expected finite numbers.")
        return np.sort(np.maximum(vals, 0.0))[::-1]
    raise ValueError(
        f"{name} must be a kernel matrix (n, n) or a 1-D array of its eigenvalues; "
        f"received an array of shape {arr.shape}."
    )


def mode_projections(kernel, y) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients of a target on the kernel's eigenvectors: ``ỹₖ = vₖᵀ y``.

    Returns ``(eigenvalues (n,), coefficients (n,) or (n, k))``. With
    ``r(0) = y`` (zero initial outputs), gradient flow leaves
    ``ỹₖ exp(−ηλₖt)`` of the target unlearned in mode ``k``
    (Jacot et al. 2018; Arora et al. 2019, "Fine-grained analysis", whose
    generalisation bound involves ``Σₖ ỹₖ²/λₖ = yᵀΘ⁻¹y``).
    """
    eig = kernel_eigendecomposition(kernel, name="kernel")
    y = np.asarray(y, dtype=np.float64)
    if y.ndim not in (1, 2) or y.shape[0] != eig.eigenvalues.shape[0]:
        raise ValueError(
            f"y must have shape (n,) or (n, k) with n = {eig.eigenvalues.shape[0]} (the kernel's "
            f"size); received shape {y.shape}."
        )
    return eig.eigenvalues, eig.eigenvectors.T @ y


def _check_times(t, name: str = "t", *, integer: bool = False) -> tuple[np.ndarray, bool]:
    """Return ``(times as a 1-D float64 array, whether t was a scalar)``; reject negative/NaN times."""
    arr = np.asarray(t, dtype=np.float64)
    scalar = arr.ndim == 0
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array of times; received shape {arr.shape}.")
    arr = np.atleast_1d(arr)
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} contains NaN; expected non-negative times.")
    if np.any(arr < 0):
        raise ValueError(
            f"{name} must be non-negative; received {arr[arr < 0][0]:g} (training runs forward from t = 0)."
        )
    if integer:
        finite = arr[np.isfinite(arr)]
        if np.any(finite != np.round(finite)):
            raise ValueError(
                f"{name} must hold whole numbers of steps; received {finite[finite != np.round(finite)][0]:g}."
            )
    return arr, scalar


def _check_positive(value, name: str) -> float:
    v = float(value)
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive finite number; received {value!r}.")
    return v


def _check_nonnegative(value, name: str) -> float:
    v = float(value)
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a non-negative finite number; received {value!r}.")
    return v


def _check_momentum(value) -> float:
    v = float(value)
    if not (np.isfinite(v) and 0.0 <= v < 1.0):
        raise ValueError(f"momentum must lie in [0, 1); received {value!r}.")
    return v


def mode_convergence(
    eigenvalues,
    t,
    learning_rate: float = 1.0,
    ridge: float = 0.0,
    *,
    discrete: bool = False,
) -> np.ndarray:
    """Fraction of the training residual left in each eigenmode at time(s) ``t``.

    Gradient flow (``discrete=False``) on ``½‖f − y‖² + ½ρ‖θ − θ₀‖²`` for the
    linearised network gives, in the eigenbasis of the train NTK ``Θ``,

        ``r̃ₖ(t) / r̃ₖ(0) = (ρ + λₖ e^{−η(λₖ+ρ)t}) / (λₖ + ρ)``,

    which is ``e^{−ηλₖt}`` without ridge (Jacot et al. 2018; Lee et al. 2019,
    eq. 9). Gradient descent (``discrete=True``, ``t`` = number of steps)
    replaces ``e^{−η(λ+ρ)t}`` by ``(1 − η(λ+ρ))^t``. A mode with ``λ = ρ = 0``
    keeps its residual (fraction 1).

    Args:
      eigenvalues: array ``(n,)``, or a kernel matrix ``(n, n)``.
      t: a time or an array ``(T,)`` of times (or step counts if ``discrete``), ``≥ 0``.

    Returns:
      array ``(T, n)`` (or ``(n,)`` for scalar ``t``), modes in descending eigenvalue order.
    """
    lam = _eigenvalues_of(eigenvalues, "eigenvalues")
    eta = _check_positive(learning_rate, "learning_rate")
    rho = _check_nonnegative(ridge, "ridge")
    times, scalar = _check_times(t, "t", integer=discrete)
    mu = lam + rho
    with np.errstate(over="ignore", invalid="ignore"):
        x = eta * times[:, None] * mu[None, :]
        if discrete:
            base = 1.0 - eta * mu
            decay = np.where(x == 0, 1.0, np.power(base[None, :], times[:, None]))
        else:
            decay = np.exp(-x)
    safe_mu = np.where(mu > 0, mu, 1.0)
    frac = np.where(mu > 0, (rho + lam * decay) / safe_mu, 1.0)
    return frac[0] if scalar else frac


def condition_number(kernel_or_eigenvalues, ridge: float = 0.0) -> float:
    """Condition number ``κ = (λ_max + ρ) / (λ_min + ρ)`` of ``K + ρI``.

    Eigenvalues are clipped as in the module docstring, so a singular kernel
    without ridge returns ``inf``. ``κ`` sets the slowest rate of gradient flow
    relative to the fastest stable one: with ``η = 1/λ_max`` the slowest mode
    decays as ``e^{−t/κ}`` (Jacot et al. 2018; lesson plan §5).
    """
    lam = _eigenvalues_of(kernel_or_eigenvalues, "kernel_or_eigenvalues")
    rho = _check_nonnegative(ridge, "ridge")
    top, bottom = lam[0] + rho, lam[-1] + rho
    if top == 0:
        raise ValueError("kernel_or_eigenvalues is the zero matrix (all eigenvalues 0) and ridge = 0; "
                         "the condition number is undefined.")
    return float(top / bottom) if bottom > 0 else math.inf


def effective_rank(kernel_or_eigenvalues, kind: str = "entropy") -> float:
    """Effective rank of a PSD kernel from its eigenvalues ``λ ≥ 0``.

    * ``kind="entropy"`` (Roy & Vetterli 2007): ``exp(H(p))`` with
      ``pₖ = λₖ / Σλ`` and ``H(p) = −Σ pₖ log pₖ``.
    * ``kind="participation"``: the participation ratio ``(Σλ)² / Σλ²``.

    Both equal ``r`` for ``r`` equal non-zero eigenvalues, and lie in ``[1, n]``.
    """
    lam = _eigenvalues_of(kernel_or_eigenvalues, "kernel_or_eigenvalues")
    total = float(lam.sum())
    if total <= 0:
        raise ValueError("kernel_or_eigenvalues has no positive eigenvalue; the effective rank is undefined.")
    if kind == "entropy":
        p = lam[lam > 0] / total
        return float(np.exp(-np.sum(p * np.log(p))))
    if kind == "participation":
        return float(total**2 / np.sum(lam**2))
    raise ValueError(f"kind must be 'entropy' or 'participation'; received {kind!r}.")


def max_learning_rate(k_train_train, momentum: float = 0.0, ridge: float = 0.0) -> float:
    """Largest stable step size of (heavy-ball) gradient descent on the linearised network.

    Convention: loss ``½ Σᵢ ‖f(xᵢ) − yᵢ‖² + ½ρ‖θ − θ₀‖²`` (a *sum* over training
    points). One step multiplies the residual component in mode ``k`` by
    ``1 − η(λₖ + ρ)`` (plain GD), which shrinks iff ``η < 2/(λₖ + ρ)``; with
    momentum ``μ ∈ [0, 1)`` (``v ← μv − η∇L``, ``θ ← θ + v``) the condition is
    ``η < 2(1 + μ)/(λₖ + ρ)``. Hence

        ``η_max = 2(1 + μ) / (λ_max + ρ)``.

    At ``η_max`` itself the top mode oscillates without decaying. The bound is
    exact for the linearised network; a finite *non-linear* network slightly
    above it may instead "catapult" and converge to a flatter region
    (Lewkowycz et al. 2020). If your loss is a mean over the ``n`` points
    (neural-tangents' convention divides by ``n·k``), multiply by that factor.
    """
    mu = _check_momentum(momentum)
    rho = _check_nonnegative(ridge, "ridge")
    lam = kernel_eigendecomposition(k_train_train, name="k_train_train").eigenvalues
    top = lam[0] + rho
    if top <= 0:
        raise ValueError("k_train_train is the zero matrix and ridge = 0: every learning rate is stable "
                         "(nothing is learned); expected a non-zero kernel.")
    return float(2.0 * (1.0 + mu) / top)


class CircleData(NamedTuple):
    """Points on the unit circle ``x = (cos φ, sin φ)``, their angles and targets."""

    x: np.ndarray
    angles: np.ndarray
    y: np.ndarray


def circle_data(n_points: int, frequencies=(1, 2, 4, 8), amplitudes=None, phases=None) -> CircleData:
    """Evenly spaced points on the unit circle with a sum-of-harmonics target.

    ``φᵢ = 2πi/n``, ``xᵢ = (cos φᵢ, sin φᵢ)`` and
    ``yᵢ = Σⱼ aⱼ cos(kⱼ φᵢ + ψⱼ)``. On this grid any kernel that depends only on
    ``xᵀx'`` (every fully connected NNGP/NTK on the sphere) gives a circulant
    matrix whose eigenvectors are exactly the Fourier modes ``cos kφ, sin kφ``;
    the eigenvalue of frequency ``k`` decreases with ``k`` for the ReLU kernels
    (Bach 2017; Bietti & Mairal 2019), so low frequencies are learned first —
    spectral bias (Rahaman et al. 2019). Note: the ReLU NTK *without bias*
    has zero eigenvalue at odd frequencies ``k ≥ 3``; use even frequencies or
    a bias (``b_std > 0``) to see every frequency learned.
    """
    n = int(n_points)
    if n < 2 or n != n_points:
        raise ValueError(f"n_points must be an integer ≥ 2; received {n_points!r}.")
    freqs = np.atleast_1d(np.asarray(frequencies, dtype=np.float64))
    if freqs.ndim != 1 or np.any(freqs < 0) or np.any(freqs != np.round(freqs)):
        raise ValueError(f"frequencies must be non-negative integers; received {frequencies!r}.")
    if np.any(freqs >= n / 2):
        raise ValueError(
            f"frequencies must be below n_points/2 = {n / 2:g} to be resolved on the grid (Nyquist); "
            f"received {frequencies!r}."
        )
    amps = np.ones_like(freqs) if amplitudes is None else np.asarray(amplitudes, dtype=np.float64)
    phs = np.zeros_like(freqs) if phases is None else np.asarray(phases, dtype=np.float64)
    if amps.shape != freqs.shape or phs.shape != freqs.shape:
        raise ValueError(
            f"amplitudes and phases must have one entry per frequency ({freqs.size}); received "
            f"shapes {amps.shape} and {phs.shape}."
        )
    angles = 2.0 * np.pi * np.arange(n) / n
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    y = np.sum(amps[None, :] * np.cos(freqs[None, :] * angles[:, None] + phs[None, :]), axis=1)
    return CircleData(x, angles, y)


def sphere_data(n_points: int, dim: int, seed: int = 0) -> np.ndarray:
    """``n_points`` points drawn uniformly on the unit sphere ``S^{dim−1} ⊂ R^dim``.

    ``x = g/‖g‖`` with ``g ~ N(0, I_dim)`` (uniform by rotation invariance);
    numpy ``default_rng(seed)``. Returns an array (n_points, dim).
    """
    n, d = int(n_points), int(dim)
    if n < 1 or n != n_points:
        raise ValueError(f"n_points must be a positive integer; received {n_points!r}.")
    if d < 2 or d != dim:
        raise ValueError(f"dim must be an integer ≥ 2; received {dim!r}.")
    g = np.random.default_rng(seed).standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def fourier_amplitudes(values, angles, frequencies) -> np.ndarray:
    """Amplitude of each frequency in a function sampled on evenly spaced angles.

    ``Aₖ = √(aₖ² + bₖ²)`` with ``aₖ = (2/n)Σᵢ v(φᵢ)cos kφᵢ``,
    ``bₖ = (2/n)Σᵢ v(φᵢ)sin kφᵢ`` (``A₀ = |mean|``), so that
    ``v = A cos(kφ + ψ)`` gives ``Aₖ = A`` exactly on a grid of ``n > 2k``
    points. ``values`` may carry leading axes (e.g. time): shape ``(..., n)``;
    returns ``(..., F)``.
    """
    v = np.asarray(values, dtype=np.float64)
    phi = np.asarray(angles, dtype=np.float64)
    freqs = np.atleast_1d(np.asarray(frequencies, dtype=np.float64))
    if phi.ndim != 1 or v.shape[-1] != phi.shape[0]:
        raise ValueError(
            f"values must have shape (..., n) with n = len(angles) = {phi.shape}; received {v.shape}."
        )
    n = phi.shape[0]
    cos = np.cos(freqs[None, :] * phi[:, None])
    sin = np.sin(freqs[None, :] * phi[:, None])
    scale = np.where(freqs == 0, 1.0 / n, 2.0 / n)
    a = (v @ cos) * scale
    b = (v @ sin) * scale
    return np.sqrt(a**2 + b**2)


def spectral_bias_curves(k_train_train, y, angles, t, frequencies, learning_rate: float = 1.0) -> np.ndarray:
    """Amplitude of each frequency in the training residual under gradient flow.

    Residual ``r(t) = V diag(e^{−ηλt}) Vᵀ y`` (zero initial outputs; Jacot
    et al. 2018), then :func:`fourier_amplitudes` of ``r(t)``. For evenly spaced
    angles and a dot-product kernel, frequency ``k`` decays as
    ``Aₖ(0) e^{−ηλ₍ₖ₎t}`` with ``λ₍ₖ₎`` the eigenvalue of that Fourier mode.

    Returns an array (T, F) (or (F,) for scalar ``t``).
    """
    eig = kernel_eigendecomposition(k_train_train, name="k_train_train")
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or y.shape[0] != eig.eigenvalues.shape[0]:
        raise ValueError(
            f"y must have shape (n,) with n = {eig.eigenvalues.shape[0]}; received {y.shape}."
        )
    eta = _check_positive(learning_rate, "learning_rate")
    times, scalar = _check_times(t)
    coeffs = eig.eigenvectors.T @ y
    decay = np.exp(-eta * times[:, None] * eig.eigenvalues[None, :])
    residual = (decay * coeffs[None, :]) @ eig.eigenvectors.T
    amps = fourier_amplitudes(residual, angles, frequencies)
    return amps[0] if scalar else amps
