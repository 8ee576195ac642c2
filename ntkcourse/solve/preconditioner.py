"""Nyström preconditioner for ``(K + ρI) α = y``.

From ``m`` landmark columns ``C = K[:, S]`` and ``W = K[S, S]`` the Nyström
approximation ``K̂ = C W⁺ Cᵀ = U Λ̂ Uᵀ`` (``U`` an ``n × r`` orthonormal
basis, ``r ≤ m``; Williams & Seeger 2001) gives the preconditioner

    ``P⁻¹ = (λ̂_r + ρ) U (Λ̂ + ρI)⁻¹ Uᵀ + (I − U Uᵀ)``

of Frangella, Tropp & Udell (2023, "Randomized Nyström preconditioning",
SIAM J. Matrix Anal. Appl.), with ``λ̂_r`` the smallest kept eigenvalue: the
top ``r`` directions of ``K`` are rescaled to the level of the ``r``-th, so
the condition number of ``P^{-1/2}(K + ρI)P^{-1/2}`` is about
``(λ_{r+1} + ρ)/ρ`` instead of ``(λ₁ + ρ)/ρ``. Taking landmark *columns*
of ``K`` rather than a Gaussian sketch is the choice of Falkon (Rudi,
Carratino & Rosasco 2017), which needs only ``m`` columns; EigenPro (Ma &
Belkin 2017) rescales the top eigendirections in the same way for gradient
descent. Memory: ``n·m`` numbers; cost per application ``O(n r)``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import validation
from .operator import KernelOperator, NotPositiveDefiniteError

__all__ = ["NystromPreconditioner", "nystrom_preconditioner"]


class NystromPreconditioner:
    """``v ↦ P⁻¹ v`` (module docstring). ``eigenvalues`` are ``Λ̂`` (descending), ``basis`` is ``U``."""

    def __init__(self, basis: np.ndarray, eigenvalues: np.ndarray, ridge: float):
        self.basis = basis
        self.eigenvalues = eigenvalues
        self.ridge = ridge
        floor = eigenvalues[-1] + ridge
        self._scale = floor / (eigenvalues + ridge) - 1.0      # P⁻¹ = I + U diag(scale) Uᵀ

    def __call__(self, v: np.ndarray) -> np.ndarray:
        coef = self.basis.T @ v
        return v + self.basis @ (self._scale[:, None] * coef if v.ndim == 2 else self._scale * coef)


def nystrom_preconditioner(operator: KernelOperator, n_landmarks: int, ridge: float = 0.0, *, seed: int = 0
                           ) -> NystromPreconditioner:
    """The Nyström preconditioner of ``K + ρI`` from ``n_landmarks`` columns drawn uniformly (``seed``).

    Raises:
      NotPositiveDefiniteError: when the landmark block ``W = K[S, S]`` has an
        eigenvalue below ``−100·m·ε·λ_max(W)``: round-off of a PSD kernel
        stays far above that, so the kernel is not PSD.
    """
    where = "nystrom_preconditioner"
    if not isinstance(operator, KernelOperator):
        raise validation.fail(where, "operator", "a KernelOperator (see kernel_operator, matrix_operator)", operator)
    n = operator.n
    m = validation.positive_int(where, "n_landmarks", n_landmarks)
    if m > n:
        raise validation.fail(where, "n_landmarks", f"at most n = {n}", n_landmarks)
    rho = validation.nonnegative(where, "ridge", ridge)
    landmarks = np.sort(np.random.default_rng(seed).permutation(n)[:m])
    c = operator.columns(landmarks)                      # (n, m)
    w = 0.5 * (c[landmarks] + c[landmarks].T)
    lam, vec = np.linalg.eigh(w)
    eps = float(np.finfo(np.float64).eps)
    top = float(lam[-1])
    if top <= 0 or lam[0] < -100 * m * eps * top:
        raise NotPositiveDefiniteError(
            f"{where}: the kernel is not positive semi-definite: its {m} x {m} landmark block has eigenvalue "
            f"{lam[0]:.3g} (largest {top:.3g}); a kernel matrix has none below round-off "
            f"(-100·m·ε·λ_max = {-100 * m * eps * max(top, 0):.3g}). Check how the kernel was computed.")
    keep = lam > m * eps * top * 10
    b = c @ (vec[:, keep] / np.sqrt(lam[keep]))          # K̂ = B Bᵀ
    # K̂'s eigenpairs from the small Gram BᵀB = Q S² Qᵀ: U = B Q S⁻¹ (one n·r² product, no n x r SVD).
    # Directions with S² below √ε·max are dropped, so U is orthonormal to about √ε.
    sig2, q = np.linalg.eigh(b.T @ b)
    sig2, q = sig2[::-1], q[:, ::-1]
    rank = int(np.sum(sig2 > math.sqrt(eps) * sig2[0]))
    u = b @ (q[:, :rank] / np.sqrt(sig2[:rank]))
    return NystromPreconditioner(u, sig2[:rank], rho)
