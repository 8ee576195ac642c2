"""Gradient flow for a finite time, matrix-free: the Lanczos method for ``φ_t(K + ρI) y``.

Under the squared loss of :mod:`ntkcourse.dynamics` (a sum over points, ridge
``ρ`` towards the initialisation), gradient flow from zero initial outputs
gives the mean predictor (Jacot et al. 2018; Lee et al. 2019, eqs. 9–10)

    ``f_t(X*) = K_*X α_t``,  ``f_t(X) = K α_t``,
    ``α_t = φ_t(K + ρI) y``,  ``φ_t(μ) = (1 − e^{−ημt}) / μ``

(without ridge ``α_t = K⁻¹(I − e^{−ηKt}) y``). :mod:`ntkcourse.dynamics`
evaluates ``φ_t`` on a dense eigendecomposition; here it is evaluated on the
Krylov space of ``A = K + ρI`` and ``y`` by the Lanczos method (Lanczos
1950; for a function of a matrix times a vector: Saad 1992, "Analysis of
some Krylov subspace approximations to the matrix exponential operator",
SIAM J. Numer. Anal. 29(1)):

    ``A Q_j = Q_j T_j + β_j q_{j+1} e_jᵀ``,  ``α_t ≈ ‖y‖ Q_j φ_t(T_j) e₁``

with ``T_j`` tridiagonal ``j × j`` (its eigendecomposition is cheap). Only
products ``K v`` are needed, so the kernel may be held in row blocks or
recomputed per product (:func:`~ntkcourse.solve.operator.kernel_operator`).
The Krylov basis does not depend on ``t``: every time asked for is read off
the same basis. The basis is re-orthogonalised fully (twice, classical
Gram–Schmidt), so memory is ``j·n·k`` numbers for ``k`` right-hand sides.

Stopping rule: the relative change of the approximation between two
iterations, ``‖α⁽ʲ⁾ − α⁽ʲ⁻¹⁾‖ / ‖α⁽ʲ⁾‖ ≤ tol`` for every column and time
(computed in the basis, without a product). Iterations grow with ``ηt·λ_max``
(like ``√(ηt·λ_max)`` for the exponential) and, as ``t → ∞``, like conjugate
gradient without a preconditioner; the limit ``t = ∞`` itself is delegated to
:func:`~ntkcourse.solve.cg.conjugate_gradient`. A Ritz value below
``−√ε·θ_max`` proves ``K + ρI`` is not PSD:
:class:`~ntkcourse.solve.operator.NotPositiveDefiniteError`.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np

from .. import validation
from .._progress import progress_bar
from ..dynamics import flow_coefficients
from .cg import ConvergenceError, conjugate_gradient
from .operator import KernelOperator, NotPositiveDefiniteError, matrix_operator

__all__ = ["FlowResult", "gradient_flow_coefficients"]


class FlowResult(NamedTuple):
    """``coefficients`` α_t (shape ``(T,) + y.shape``, or ``y.shape`` for a scalar ``t``); ``iterations``
    (Lanczos steps, i.e. products with ``K``); ``relative_change`` (last, max over columns and times);
    ``converged``; ``history``: the relative change after each iteration.
    """

    coefficients: np.ndarray
    iterations: int
    relative_change: float
    converged: bool
    history: np.ndarray


def _phi_e1(alphas, betas, eta, times):
    """``φ_t(T) e₁`` for the tridiagonal ``T`` of one column: (T, j), and the Ritz values."""
    j = len(alphas)
    tri = np.diag(alphas) + np.diag(betas[:j - 1], 1) + np.diag(betas[:j - 1], -1)
    theta, s = np.linalg.eigh(tri)
    c = flow_coefficients(np.clip(theta, 0.0, None), 0.0, eta, times)          # (T, j), φ_t(θ), 0 at θ = 0
    return (c * s[0][None, :]) @ s.T, theta


def gradient_flow_coefficients(
    operator,
    y,
    t,
    *,
    learning_rate: float = 1.0,
    ridge: float = 0.0,
    tol: float = 1e-8,
    max_iter: int = 300,
    raise_on_failure: bool = True,
    progress: Optional[bool] = None,
) -> FlowResult:
    """Dual coefficients ``α_t = (1 − e^{−η(K+ρI)t})(K + ρI)⁻¹ y`` after gradient flow for time(s) ``t``.

    The outputs are ``f_t(X) = K α_t`` and ``f_t(X*) = k(X*, X) α_t``
    (:func:`~ntkcourse.solve.regression.cross_kernel_product`): the same as
    :func:`ntkcourse.dynamics.gradient_flow_predictor` from zero initial
    outputs, without an eigendecomposition of ``K`` (module docstring).

    Args:
      operator: a :class:`~ntkcourse.solve.operator.KernelOperator` or a kernel matrix ``(n, n)``.
      y: targets ``(n,)`` or ``(n, k)``.
      t: a time ``≥ 0`` or a 1-D array of them; ``numpy.inf`` is the kernel regression limit (solved by
        conjugate gradient, without a preconditioner).
      learning_rate: ``η ≥ 0``; only ``ηt`` matters.
      ridge: ``ρ ≥ 0``.
      tol: relative change between iterations to reach, ``0 < tol < 1``.
      max_iter: most Lanczos steps (memory ``max_iter·n·k`` numbers).
      raise_on_failure: raise :class:`~ntkcourse.solve.cg.ConvergenceError` (default) when ``tol`` is not
        met, or return the last iterate flagged ``converged=False``.
      progress: bar over iterations (policy of ``ntkcourse._progress``).

    Raises:
      ValueError: negative or NaN times, bad ``y``, ``tol``, ``max_iter``, ``learning_rate`` or ``ridge``.
      NotPositiveDefiniteError: a Ritz value of ``K + ρI`` clearly below 0.
      ConvergenceError: ``tol`` not met in ``max_iter`` steps; its ``result`` is the last iterate.
    """
    where = "gradient_flow_coefficients"
    op = operator if isinstance(operator, KernelOperator) else matrix_operator(operator)
    times, scalar = validation.times(where, "t", t)
    eta = validation.nonnegative(where, "learning_rate", learning_rate)
    rho = validation.nonnegative(where, "ridge", ridge)
    tol = validation.finite_real(where, "tol", tol)
    if not 0 < tol < 1:
        raise validation.fail(where, "tol", "a relative change in (0, 1)", tol)
    max_iter = validation.positive_int(where, "max_iter", max_iter)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim not in (1, 2) or y.shape[0] != op.n:
        raise validation.fail(where, "y", f"targets of shape ({op.n},) or ({op.n}, k)", y.shape)
    if not np.all(np.isfinite(y)):
        raise validation.fail(where, "y", "finite targets", "an array with NaN or inf")
    if np.any(np.isinf(times)) and not np.all(np.isinf(times)):
        raise validation.fail(where, "t", "either finite times or numpy.inf alone (the limit is solved by CG)",
                              times)
    vec = y.ndim == 1
    b = y[:, None] if vec else y
    n, k = b.shape

    def shaped(out):                       # (T, n, k) -> the caller's shape
        out = out[..., 0] if vec else out
        return out[0] if scalar else out

    if np.all(np.isinf(times)):
        cg = conjugate_gradient(op, b, ridge=rho, tol=tol, max_iter=max_iter, raise_on_failure=raise_on_failure,
                                progress=progress)
        coeffs = np.broadcast_to(cg.solution, (len(times), n, k)).copy()
        return FlowResult(shaped(coeffs), cg.iterations, cg.relative_residual, cg.converged, cg.history)

    bnorm = np.sqrt(np.sum(b * b, axis=0))
    if not np.any(np.isfinite(times) & (times > 0)) or not np.any(bnorm > 0) or eta == 0:
        return FlowResult(shaped(np.zeros((len(times), n, k))), 0, 0.0, True, np.zeros(0))   # α_0 = 0
    done = ~(bnorm > 0)                    # columns whose Krylov space is exhausted (β = 0), or zero
    basis = [np.where(done, 0.0, b / np.where(done, 1.0, bnorm))]
    alphas = np.zeros((max_iter, k))
    betas = np.zeros((max_iter, k))
    small = np.zeros((len(times), max_iter, k))   # φ_t(T_j) e₁ per column, padded with zeros
    history = []
    eps = float(np.finfo(np.float64).eps)
    change = np.inf
    j = 0
    bar = progress_bar(max_iter, "Lanczos (gradient flow)", "iter", progress)
    try:
        while j < max_iter:
            q = np.stack(basis)                                    # (j + 1, n, k)
            w = op.matvec(basis[j]) + rho * basis[j]
            alphas[j] = np.sum(basis[j] * w, axis=0)
            for _ in range(2):             # full re-orthogonalisation, twice
                w -= np.einsum("jnk,jk->nk", q, np.einsum("jnk,nk->jk", q, w))
            beta = np.sqrt(np.sum(w * w, axis=0))
            j += 1
            change = 0.0
            for col in np.flatnonzero(~done):
                phi, theta = _phi_e1(alphas[:j, col], betas[:j, col], eta, times)
                if theta[0] < -math.sqrt(eps) * max(abs(theta[-1]), 1e-300):
                    raise NotPositiveDefiniteError(
                        f"{where}: K + ρI (ρ = {rho:g}) is not positive semi-definite: Lanczos step {j} found "
                        f"the Ritz value {theta[0]:.3g} < 0 (largest {theta[-1]:.3g}). A kernel matrix is PSD; "
                        f"check the kernel, or add a ridge if it is only round-off.")
                norm = np.sqrt(np.sum(phi * phi, axis=1))
                diff = np.sqrt(np.sum((phi - small[:, :j, col]) ** 2, axis=1))
                rel = np.where(norm > 0, diff / np.where(norm > 0, norm, 1.0), 0.0)
                change = max(change, float(np.max(rel)))
                small[:, :j, col] = phi
                if beta[col] <= 1e3 * eps * max(abs(theta[-1]), 1e-300):
                    done[col] = True       # invariant subspace: the approximation is exact
                betas[j - 1, col] = beta[col]
            basis.append(np.where(done, 0.0, w / np.where(beta > 0, beta, 1.0)))
            history.append(change)
            bar.update(1)
            bar.set_postfix(change=f"{change:.2e}")
            if change <= tol or np.all(done):
                break
    finally:
        bar.close()
    converged = bool(change <= tol or np.all(done))
    coeffs = np.einsum("jnk,tjk->tnk", np.stack(basis[:j]), small[:, :j]) * bnorm[None, None, :]
    result = FlowResult(shaped(coeffs), j, float(change), converged, np.array(history))
    if not converged and raise_on_failure:
        raise ConvergenceError(
            f"{where}: the relative change of α_t between iterations is {change:.3g} after max_iter = "
            f"{max_iter} Lanczos steps, above tol = {tol:g} (largest ηt = {eta * float(np.max(times)):.3g}). "
            f"Raise max_iter, add a ridge, use t = numpy.inf for the limit, or pass raise_on_failure=False to "
            f"get the last iterate (flagged converged=False); it is also in this error's `.result`.", result)
    return result
