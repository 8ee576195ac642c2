"""Kernel regression past what a dense factorisation allows: matrix-free solvers, several processes.

* :mod:`~ntkcourse.solve.operator` — ``K`` as products ``K v``, held or
  recomputed block by block, within the engine's memory budget;
* :mod:`~ntkcourse.solve.preconditioner` — the Nyström preconditioner;
* :mod:`~ntkcourse.solve.cg` — preconditioned conjugate gradient;
* :mod:`~ntkcourse.solve.krylov` — gradient flow for a finite time (Lanczos);
* :mod:`~ntkcourse.solve.regression` — the NTK/NNGP mean predictors, and
  gradient descent and gradient flow for a finite time, on top of them;
* :mod:`~ntkcourse.solve.processes` — several JAX processes and hosts.
"""
from .cg import CGResult, ConvergenceError, conjugate_gradient
from .krylov import FlowResult, gradient_flow_coefficients
from .operator import KernelOperator, NotPositiveDefiniteError, kernel_operator, matrix_operator
from .preconditioner import NystromPreconditioner, nystrom_preconditioner
from .processes import gather_blocks, owned_blocks, start_processes
from .regression import (
    FlowRegression,
    KernelRegression,
    cross_kernel_product,
    gradient_descent_coefficients,
    gradient_flow_regression,
    kernel_regression_cg,
)

__all__ = [
    "CGResult", "ConvergenceError", "conjugate_gradient",
    "FlowResult", "gradient_flow_coefficients",
    "KernelOperator", "NotPositiveDefiniteError", "kernel_operator", "matrix_operator",
    "NystromPreconditioner", "nystrom_preconditioner",
    "gather_blocks", "owned_blocks", "start_processes",
    "KernelRegression", "cross_kernel_product", "gradient_descent_coefficients", "kernel_regression_cg",
    "FlowRegression", "gradient_flow_regression",
]
