"""Kernel regression past what a dense factorisation allows: matrix-free solvers, several processes.

* :mod:`~ntkcourse.solve.operator` — ``K`` as products ``K v``, held or
  recomputed block by block, within the engine's memory budget;
* :mod:`~ntkcourse.solve.preconditioner` — the Nyström preconditioner;
* :mod:`~ntkcourse.solve.cg` — preconditioned conjugate gradient;
* :mod:`~ntkcourse.solve.regression` — the NTK/NNGP mean predictors, and
  gradient descent for a finite time, on top of them;
* :mod:`~ntkcourse.solve.processes` — several JAX processes and hosts.
"""
from .cg import CGResult, ConvergenceError, conjugate_gradient
from .operator import KernelOperator, NotPositiveDefiniteError, kernel_operator, matrix_operator
from .preconditioner import NystromPreconditioner, nystrom_preconditioner
from .processes import gather_blocks, owned_blocks, start_processes
from .regression import KernelRegression, cross_kernel_product, gradient_descent_coefficients, kernel_regression_cg

__all__ = [
    "CGResult", "ConvergenceError", "conjugate_gradient",
    "KernelOperator", "NotPositiveDefiniteError", "kernel_operator", "matrix_operator",
    "NystromPreconditioner", "nystrom_preconditioner",
    "gather_blocks", "owned_blocks", "start_processes",
    "KernelRegression", "cross_kernel_product", "gradient_descent_coefficients", "kernel_regression_cg",
]
