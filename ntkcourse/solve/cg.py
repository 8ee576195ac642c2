"""Preconditioned conjugate gradient for ``(K + ρI) α = y``, one or several right-hand sides.

Hestenes & Stiefel (1952); Saad (2003, "Iterative methods for sparse linear
systems", Alg. 9.1) for the preconditioned form. Each column of ``y`` is
solved independently (its own step sizes) with shared products ``K V``.

Stopping rule: the **relative residual** ``‖y − (K + ρI) α‖ / ‖y‖ ≤ tol``
for every column. The recursively updated residual drifts from the true one
in floating point, so when it says "converged" the true residual is computed
with one more product and reported; iteration resumes if it is not met.

When ``tol`` is not met within ``max_iter`` iterations: the default
(``raise_on_failure=True``) raises :class:`ConvergenceError`, whose
``result`` holds the last iterate; with ``raise_on_failure=False`` the
:class:`CGResult` is returned with ``converged=False``. A direction ``p``
with ``pᵀ(K + ρI)p ≤ 0`` proves the matrix is not positive definite:
:class:`~ntkcourse.solve.operator.NotPositiveDefiniteError`.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import numpy as np

from .. import validation
from ..progress import progress_bar
from .operator import KernelOperator, NotPositiveDefiniteError, matrix_operator

__all__ = ["CGResult", "ConvergenceError", "conjugate_gradient"]


class CGResult(NamedTuple):
    """``solution`` α (shape of ``y``); ``iterations``; ``relative_residual`` (true, per column, max);
    ``converged``; ``history``: the recursive relative residual (max over columns) after each iteration.
    """

    solution: np.ndarray
    iterations: int
    relative_residual: float
    converged: bool
    history: np.ndarray


class ConvergenceError(RuntimeError):
    """An iterative solver did not reach ``tol`` in ``max_iter`` iterations; ``result`` is the last iterate
    (a :class:`CGResult`, or a :class:`~ntkcourse.solve.krylov.FlowResult` from ``gradient_flow_coefficients``).
    """

    def __init__(self, message: str, result: CGResult):
        super().__init__(message)
        self.result = result


def _norms(a):
    return np.sqrt(np.sum(a * a, axis=0))


def conjugate_gradient(
    operator,
    y,
    *,
    ridge: float = 0.0,
    preconditioner: Optional[Callable] = None,
    tol: float = 1e-6,
    max_iter: int = 500,
    raise_on_failure: bool = True,
    progress: Optional[bool] = None,
) -> CGResult:
    """Solve ``(K + ρI) α = y`` by preconditioned conjugate gradient.

    Args:
      operator: a :class:`KernelOperator` or a kernel matrix ``(n, n)``.
      y: ``(n,)`` or ``(n, k)`` targets.
      ridge: ``ρ ≥ 0``.
      preconditioner: ``v ↦ P⁻¹ v`` for ``(n, k)`` arrays (e.g.
        :func:`~ntkcourse.solve.preconditioner.nystrom_preconditioner`), or None.
      tol: relative residual to reach, ``0 < tol < 1``.
      max_iter: most iterations.
      raise_on_failure: raise :class:`ConvergenceError` (default) or return a
        result with ``converged=False`` when ``tol`` is not met.
      progress: bar over iterations (policy of ``ntkcourse.progress``).
    """
    where = "conjugate_gradient"
    op = operator if isinstance(operator, KernelOperator) else matrix_operator(operator)
    rho = validation.nonnegative(where, "ridge", ridge)
    tol = validation.finite_real(where, "tol", tol)
    if not 0 < tol < 1:
        raise validation.fail(where, "tol", "a relative residual in (0, 1)", tol)
    max_iter = validation.positive_int(where, "max_iter", max_iter)
    if preconditioner is not None:
        validation.callable_arg(where, "preconditioner", preconditioner)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim not in (1, 2) or y.shape[0] != op.n:
        raise validation.fail(where, "y", f"targets of shape ({op.n},) or ({op.n}, k)", y.shape)
    if not np.all(np.isfinite(y)):
        raise validation.fail(where, "y", "finite targets", "an array with NaN or inf")
    vec = y.ndim == 1
    b = y[:, None] if vec else y
    bnorm = _norms(b)
    bnorm[bnorm == 0] = 1.0                 # a zero column is solved by α = 0 at once

    def apply(v):
        return op.matvec(v) + rho * v

    def precond(r):
        return r if preconditioner is None else preconditioner(r)

    x = np.zeros_like(b)
    r = b.copy()
    z = precond(r)
    p = z.copy()
    rz = np.sum(r * z, axis=0)
    history = []
    bar = progress_bar(max_iter, "conjugate gradient", "iter", progress)
    it = 0
    true_rel = np.max(_norms(r) / bnorm)
    try:
        while it < max_iter:
            rel = np.max(_norms(r) / bnorm)
            if rel <= tol:
                true_rel = np.max(_norms(b - apply(x)) / bnorm)
                if true_rel <= tol:
                    break
                r = b - apply(x)            # restart from the true residual
                z = precond(r)
                p = z.copy()
                rz = np.sum(r * z, axis=0)
            ap = apply(p)
            curv = np.sum(p * ap, axis=0)
            active = _norms(r) / bnorm > tol    # columns that reached tol stay frozen
            if np.any(curv[active] <= 0):
                j = int(np.flatnonzero(active & (curv <= 0))[0])
                raise NotPositiveDefiniteError(
                    f"{where}: K + ρI (ρ = {rho:g}) is not positive definite: iteration {it + 1} found a direction "
                    f"p with pᵀ(K + ρI)p = {curv[j]:.3g} <= 0. A kernel matrix is PSD; check the kernel, or add a "
                    f"ridge if it is only round-off.")
            step = np.where(active, rz / np.where(active, curv, 1.0), 0.0)
            x += step * p
            r -= step * ap
            z = precond(r)
            rz_new = np.sum(r * z, axis=0)
            p = z + np.where(active, rz_new / np.where(rz == 0, 1.0, rz), 0.0) * p
            rz = rz_new
            it += 1
            history.append(float(np.max(_norms(r) / bnorm)))
            bar.update(1)
            bar.set_postfix(residual=f"{history[-1]:.2e}")
        else:
            true_rel = np.max(_norms(b - apply(x)) / bnorm)
    finally:
        bar.close()
    solution = x[:, 0] if vec else x
    result = CGResult(solution, it, float(true_rel), bool(true_rel <= tol), np.array(history))
    if not result.converged and raise_on_failure:
        raise ConvergenceError(
            f"{where}: the relative residual is {true_rel:.3g} after max_iter = {max_iter} iterations, above "
            f"tol = {tol:g}. Raise max_iter, use a preconditioner with more landmarks, add a ridge, or pass "
            f"raise_on_failure=False to get the last iterate (flagged converged=False); it is also in this "
            f"error's `.result`.", result)
    return result
