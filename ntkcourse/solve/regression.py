"""Kernel regression and the NTK/NNGP mean predictors by conjugate gradient, for large ``n``.

The same predictors as :func:`ntkcourse.dynamics.kernel_regression` (which
factorises the dense kernel by Cholesky), solved matrix-free:

    ``f(X*) = k(X*, X) α``,  ``(k(X, X) + ρI) α = y``

With ``get="ntk"`` this is the ``t → ∞`` mean of infinitely wide networks
trained by gradient flow on the squared loss from zero initial outputs
(Jacot et al. 2018; Lee et al. 2019, eq. 16), with ridge ``ρ`` the weight
decay towards the initialisation (convention of :mod:`ntkcourse.dynamics`);
with ``get="nngp"`` it is the posterior mean of the NNGP with observation
noise variance ``ρ`` (Lee et al. 2018). A finite training time is
:func:`gradient_descent_coefficients`: ``s`` steps of gradient descent are
``s`` products with ``K``, matrix-free, and match
:func:`ntkcourse.dynamics.gradient_descent_predictor`; a finite time ``t`` of
gradient flow is :func:`gradient_flow_regression` (the Lanczos method of
:mod:`ntkcourse.solve.krylov`), matching
:func:`ntkcourse.dynamics.gradient_flow_predictor`.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import numpy as np

from .. import validation
from ..engine import ExecutionPlan
from .cg import CGResult, conjugate_gradient
from .krylov import FlowResult, gradient_flow_coefficients
from .operator import KernelOperator, kernel_operator, matrix_operator
from .preconditioner import nystrom_preconditioner

__all__ = ["KernelRegression", "kernel_regression_cg", "cross_kernel_product", "gradient_descent_coefficients",
           "FlowRegression", "gradient_flow_regression"]


class KernelRegression(NamedTuple):
    """``test``: ``k(X*, X) α`` (None without test inputs); ``train``: ``k(X, X) α``;
    ``coefficients``: α; ``solve``: the :class:`~ntkcourse.solve.cg.CGResult`; ``held_bytes`` and
    ``block_devices``: what this process held of the kernel and which device computed each of its blocks
    (see :class:`~ntkcourse.solve.operator.KernelOperator`).
    """

    test: Optional[np.ndarray]
    train: np.ndarray
    coefficients: np.ndarray
    solve: CGResult
    held_bytes: int
    block_devices: dict


class FlowRegression(NamedTuple):
    """``test``: ``k(X*, X) α_t`` (None without test inputs); ``train``: ``K α_t``; ``coefficients``: α_t
    (leading axis over the times when ``t`` is an array); ``solve``: the
    :class:`~ntkcourse.solve.krylov.FlowResult`; ``held_bytes``: what this process held of the kernel.
    """

    test: Optional[np.ndarray]
    train: np.ndarray
    coefficients: np.ndarray
    solve: FlowResult
    held_bytes: int


def cross_kernel_product(kernel_fn: Callable, x_test, x_train, coefficients, get: str = "ntk", *,
                         block_size: int = 1024, **kernel_kwargs) -> np.ndarray:
    """``k(X*, X) α`` in blocks of test and training rows (memory ``block_size²`` numbers per step)."""
    x_test, x_train = np.asarray(x_test), np.asarray(x_train)
    a = np.asarray(coefficients, dtype=np.float64)
    block_size = validation.positive_int("cross_kernel_product", "block_size", block_size)
    m, n = x_test.shape[0], x_train.shape[0]
    bt, bs = min(block_size, m), min(block_size, n)
    out = np.zeros((m,) + a.shape[1:])
    with jax.enable_x64(True):
        for t0 in range(0, m, bt):
            t = min(t0, m - bt)             # equal blocks (the last overlaps): one compiled shape
            for s0 in range(0, n, bs):
                s = min(s0, n - bs)
                k = np.asarray(kernel_fn(x_test[t:t + bt], x_train[s:s + bs], get, **kernel_kwargs),
                               dtype=np.float64)
                out[t0:t + bt] += k[t0 - t:, s0 - s:] @ a[s0:s + bs]
    return out


def kernel_regression_cg(
    kernel_fn: Callable,
    x_train,
    y_train,
    x_test=None,
    *,
    get: str = "ntk",
    ridge: float = 0.0,
    tol: float = 1e-6,
    max_iter: int = 500,
    n_landmarks: int = 500,
    seed: int = 0,
    store: str = "auto",
    block_size: int = 1024,
    plan: Optional[ExecutionPlan] = None,
    raise_on_failure: bool = True,
    progress: Optional[bool] = None,
) -> KernelRegression:
    """NTK (``get="ntk"``) or NNGP (``get="nngp"``) mean predictor by Nyström-preconditioned CG.

    The kernel is a :func:`~ntkcourse.solve.operator.kernel_operator` (held
    within the memory budget, else recomputed per product; spread over
    processes and devices), the preconditioner uses ``n_landmarks`` columns
    (0: none). Errors as in :func:`~ntkcourse.solve.cg.conjugate_gradient`
    and :func:`~ntkcourse.solve.operator.kernel_operator`.
    """
    where = "kernel_regression_cg"
    x_train = np.asarray(x_train)
    n_landmarks = validation.nonnegative(where, "n_landmarks", n_landmarks)
    if n_landmarks != int(n_landmarks):
        raise validation.fail(where, "n_landmarks", "an integer >= 0", n_landmarks)
    op = kernel_operator(kernel_fn, x_train, get, store=store, block_size=block_size, plan=plan, progress=progress)
    pre = None
    if n_landmarks:
        pre = nystrom_preconditioner(op, min(int(n_landmarks), op.n), ridge, seed=seed)
    result = conjugate_gradient(op, y_train, ridge=ridge, preconditioner=pre, tol=tol, max_iter=max_iter,
                                raise_on_failure=raise_on_failure, progress=progress)
    train = op.matvec(result.solution)
    test = None
    if x_test is not None:
        test = cross_kernel_product(kernel_fn, x_test, x_train, result.solution, get, block_size=block_size)
    return KernelRegression(test, train, result.solution, result, op.held_bytes, dict(op.block_devices))


def gradient_descent_coefficients(operator, y, steps: int, learning_rate: float, ridge: float = 0.0) -> np.ndarray:
    """Dual coefficients ``α_s`` after ``s`` steps of gradient descent, matrix-free.

    Under the loss of :mod:`ntkcourse.dynamics` from zero initial outputs,
    ``α_{s+1} = α_s + η (y − (K + ρI) α_s)``, so that
    ``α_s = Σₖ (1 − (1 − ημₖ)^s)/μₖ · vₖ vₖᵀ y`` (``μₖ = λₖ + ρ``) and the
    outputs are ``f_s(X*) = k(X*, X) α_s``, ``f_s(X) = K α_s``: the same as
    :func:`ntkcourse.dynamics.gradient_descent_predictor`, with ``s``
    products instead of an eigendecomposition. Stable for ``η < 2/(λ_max + ρ)``.
    """
    op = operator if isinstance(operator, KernelOperator) else matrix_operator(operator)
    where = "gradient_descent_coefficients"
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise validation.fail(where, "steps", "a whole number of steps >= 0", steps)
    eta = validation.nonnegative(where, "learning_rate", learning_rate)
    rho = validation.nonnegative(where, "ridge", ridge)
    y = np.asarray(y, dtype=np.float64)
    if y.shape[:1] != (op.n,):
        raise validation.fail(where, "y", f"targets with {op.n} rows", y.shape)
    alpha = np.zeros_like(y)
    for _ in range(steps):
        alpha += eta * (y - op.matvec(alpha) - rho * alpha)
    return alpha


def gradient_flow_regression(
    kernel_fn: Callable,
    x_train,
    y_train,
    t,
    x_test=None,
    *,
    get: str = "ntk",
    learning_rate: float = 1.0,
    ridge: float = 0.0,
    tol: float = 1e-8,
    max_iter: int = 300,
    store: str = "auto",
    block_size: int = 1024,
    plan: Optional[ExecutionPlan] = None,
    raise_on_failure: bool = True,
    progress: Optional[bool] = None,
) -> FlowRegression:
    """Mean outputs after gradient flow for time(s) ``t``, matrix-free (no eigendecomposition of ``K``).

    ``f_t(X*) = k(X*, X) α_t``, ``f_t(X) = K α_t`` with
    ``α_t = (1 − e^{−η(K+ρI)t})(K + ρI)⁻¹ y`` (Jacot et al. 2018; Lee et al.
    2019, eqs. 9–10; the loss convention of :mod:`ntkcourse.dynamics`, zero
    initial outputs), by :func:`~ntkcourse.solve.krylov.gradient_flow_coefficients`
    on a :func:`~ntkcourse.solve.operator.kernel_operator` (held or streamed
    row blocks, spread over processes and devices). ``get="ntk"`` gives the
    network's mean prediction; ``get="nngp"`` the same flow when only the
    last layer is trained. ``t`` is a time ``≥ 0`` or a 1-D array of them
    (outputs then carry a leading axis over the times); ``numpy.inf`` alone
    gives kernel regression. Errors as in ``gradient_flow_coefficients`` and
    ``kernel_operator``.
    """
    op = kernel_operator(kernel_fn, np.asarray(x_train), get, store=store, block_size=block_size, plan=plan,
                         progress=progress)
    result = gradient_flow_coefficients(op, y_train, t, learning_rate=learning_rate, ridge=ridge, tol=tol,
                                        max_iter=max_iter, raise_on_failure=raise_on_failure, progress=progress)
    alpha = result.coefficients
    n = op.n
    several = np.ndim(t) > 0                     # α has a leading axis over the times
    cols = np.moveaxis(alpha, 0, 1).reshape(n, -1) if several else alpha.reshape(n, -1)

    def back(out):                               # (rows, T·k) -> the shape of α with rows in place of n
        if not several:
            return out.reshape((out.shape[0],) + alpha.shape[1:])
        return np.moveaxis(out.reshape((out.shape[0], alpha.shape[0]) + alpha.shape[2:]), 0, 1)

    train = back(op.matvec(cols))
    test = None
    if x_test is not None:
        test = back(cross_kernel_product(kernel_fn, x_test, x_train, cols, get, block_size=block_size))
    return FlowRegression(test, train, alpha, result, op.held_bytes)
