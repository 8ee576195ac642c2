"""Matrix-free kernel regression (ntkcourse.solve): conjugate gradient, Nyström preconditioner, blocked kernels.

Claims: the CG solution equals the dense Cholesky solve of
``ntkcourse.dynamics.kernel_regression``; the Nyström preconditioner with
every point a landmark makes CG converge in one step and with fewer
landmarks cuts the iteration count; the kernel of a ``kernel_fn`` held or
recomputed in blocks gives the same predictor as the dense kernel; several
right-hand sides are solved as separate ones; gradient descent by products
equals the eigendecomposition formula; bad input (non-PSD kernels, a
tolerance that cannot be met, a kernel too big for the memory budget, bad
arguments) gives the documented errors.

Tolerances: CG stops at relative residual ``tol``; the error of the solution
is at most ``κ·tol`` in the worst case, and the predictions compared here
(``K_* α``) are at least as well conditioned as the residual, so 1e-10 on
the residual gives agreement to 1e-7 relative on kernels with ``κ ≲ 10³``.
"""
import numpy as np
import pytest

from ntkcourse import dynamics, stax
from ntkcourse.engine import ExecutionPlan, KernelMemoryError
from ntkcourse.solve import (
    ConvergenceError,
    NotPositiveDefiniteError,
    conjugate_gradient,
    gradient_descent_coefficients,
    kernel_operator,
    kernel_regression_cg,
    matrix_operator,
    nystrom_preconditioner,
)


def _mlp(depth=3):
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(256, W_std=1.5, b_std=0.05), stax.Relu()]
    return stax.serial(*layers, stax.Dense(1, W_std=1.5, b_std=0.05))[2]


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((150, 5))
    xt = rng.standard_normal((20, 5))
    y = np.sin(2 * x[:, 0]) + 0.1 * rng.standard_normal(150)
    kernel_fn = _mlp()
    k = np.asarray(kernel_fn(x, None, "ntk"))
    kt = np.asarray(kernel_fn(xt, x, "ntk"))
    ridge = 1e-2 * np.trace(k) / len(k)
    return dict(x=x, xt=xt, y=y, kernel_fn=kernel_fn, k=k, kt=kt, ridge=ridge)


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_cg_on_a_matrix_equals_the_cholesky_solve(problem):
    p = problem
    dense = dynamics.kernel_regression(p["k"], p["y"], p["kt"], ridge=p["ridge"])
    result = conjugate_gradient(p["k"], p["y"], ridge=p["ridge"], tol=1e-10, max_iter=1000)
    assert result.converged and result.relative_residual <= 1e-10
    assert _rel(p["kt"] @ result.solution, dense) < 1e-7


def test_nystrom_preconditioner_with_every_point_a_landmark_solves_in_one_step(problem):
    # P⁻¹(K + ρI) = (λ_min + ρ) I when every point is a landmark (full rank): one CG step is exact.
    p = problem
    k = p["k"] + np.eye(len(p["k"]))      # full rank, so no direction is dropped as numerically null
    pre = nystrom_preconditioner(matrix_operator(k), len(k), p["ridge"])
    result = conjugate_gradient(k, p["y"], ridge=p["ridge"], preconditioner=pre, tol=1e-8)
    assert result.iterations == 1


def test_nystrom_preconditioner_cuts_the_iterations(problem):
    p = problem
    plain = conjugate_gradient(p["k"], p["y"], ridge=p["ridge"], tol=1e-8, max_iter=1000)
    pre = nystrom_preconditioner(matrix_operator(p["k"]), 40, p["ridge"], seed=1)
    better = conjugate_gradient(p["k"], p["y"], ridge=p["ridge"], preconditioner=pre, tol=1e-8, max_iter=1000)
    assert better.converged and better.iterations < plain.iterations / 2


@pytest.mark.parametrize("store", ["hold", "stream"])
def test_blocked_kernel_regression_equals_the_dense_predictor(problem, store):
    # Blocks of 64 rows (150 = 64 + 64 + 22, the last block overlapping) computed from kernel_fn.
    p = problem
    dense = dynamics.kernel_regression(p["k"], p["y"], p["kt"], ridge=p["ridge"])
    out = kernel_regression_cg(p["kernel_fn"], p["x"], p["y"], p["xt"], ridge=p["ridge"], tol=1e-10,
                               store=store, block_size=64, n_landmarks=30)
    assert out.solve.converged
    assert _rel(out.test, dense) < 1e-7
    assert _rel(out.train, dynamics.kernel_regression(p["k"], p["y"], ridge=p["ridge"])) < 1e-7


def test_nngp_mean_predictor_equals_the_gp_posterior_mean(problem):
    from ntkcourse.inference import gp_posterior

    p = problem
    k = np.asarray(p["kernel_fn"](p["x"], None, "nngp"))
    kt = np.asarray(p["kernel_fn"](p["xt"], p["x"], "nngp"))
    noise = 1e-2 * np.trace(k) / len(k)
    out = kernel_regression_cg(p["kernel_fn"], p["x"], p["y"], p["xt"], get="nngp", ridge=noise, tol=1e-10,
                               block_size=64)
    assert _rel(out.test, gp_posterior(k, p["y"], kt, noise=noise).mean) < 1e-7


def test_several_right_hand_sides_are_solved_as_separate_ones(problem):
    p = problem
    ys = np.stack([p["y"], np.cos(p["x"][:, 1])], axis=1)
    both = conjugate_gradient(p["k"], ys, ridge=p["ridge"], tol=1e-10, max_iter=1000).solution
    second = conjugate_gradient(p["k"], ys[:, 1], ridge=p["ridge"], tol=1e-10, max_iter=1000).solution
    assert _rel(both[:, 1], second) < 1e-8


def test_gradient_descent_by_products_equals_the_eigen_formula(problem):
    p = problem
    eta = 1.0 / np.linalg.eigvalsh(p["k"])[-1]
    alpha = gradient_descent_coefficients(p["k"], p["y"], 25, eta, ridge=p["ridge"])
    closed = dynamics.gradient_descent_prediction(p["k"], p["y"], 25, p["kt"], learning_rate=eta, ridge=p["ridge"])
    assert _rel(p["kt"] @ alpha, closed.test) < 1e-10      # 25 products: round-off only


def test_a_kernel_with_a_negative_eigenvalue_is_refused_by_cg(problem):
    p = problem
    lam, v = np.linalg.eigh(p["k"])
    lam[0] = -10 * p["ridge"]          # one direction where K + ρI is clearly negative; the diagonal stays > 0
    bad = (v * lam) @ v.T
    with pytest.raises(NotPositiveDefiniteError, match="not positive definite"):
        conjugate_gradient(bad, p["y"], ridge=p["ridge"], tol=1e-8)


def test_a_kernel_with_a_negative_eigenvalue_is_refused_by_the_preconditioner(problem):
    p = problem
    # K − cI with c half the smallest diagonal entry: every diagonal entry stays positive, but the
    # 60 x 60 landmark block of this smooth kernel has eigenvalues far below c.
    bad = p["k"] - 0.5 * np.min(np.diag(p["k"])) * np.eye(len(p["k"]))
    with pytest.raises(NotPositiveDefiniteError, match="landmark block has eigenvalue"):
        nystrom_preconditioner(matrix_operator(bad), 60)


def test_a_negative_diagonal_is_refused():
    with pytest.raises(NotPositiveDefiniteError, match=r"K\[1, 1\] = -1"):
        matrix_operator(np.diag([1.0, -1.0, 2.0]))


def test_a_tolerance_not_met_raises_with_the_last_iterate(problem):
    p = problem
    with pytest.raises(ConvergenceError, match="after max_iter = 3 iterations") as err:
        conjugate_gradient(p["k"], p["y"], ridge=p["ridge"], tol=1e-12, max_iter=3)
    assert err.value.result.iterations == 3 and not err.value.result.converged


def test_a_tolerance_not_met_can_be_returned_flagged(problem):
    p = problem
    result = conjugate_gradient(p["k"], p["y"], ridge=p["ridge"], tol=1e-12, max_iter=3, raise_on_failure=False)
    true = np.linalg.norm(p["y"] - p["k"] @ result.solution - p["ridge"] * result.solution) / np.linalg.norm(p["y"])
    assert not result.converged
    assert result.relative_residual == pytest.approx(true, rel=1e-10)


def test_holding_a_kernel_over_the_budget_is_refused(problem):
    # 150 x 150 float64 is 180 kB; a 100 kB budget holds one block of 64 rows (77 kB) but not all rows.
    with pytest.raises(KernelMemoryError, match="holding this process's 150 rows"):
        kernel_operator(problem["kernel_fn"], problem["x"], store="hold", block_size=64,
                        plan=ExecutionPlan(memory_budget=100_000))


def test_auto_streams_a_kernel_over_the_budget(problem):
    op = kernel_operator(problem["kernel_fn"], problem["x"], block_size=64, plan=ExecutionPlan(memory_budget=100_000))
    assert op.store == "stream" and op.held_bytes == 0


def test_one_block_over_the_budget_is_refused(problem):
    with pytest.raises(KernelMemoryError, match="choose block_size <= 8"):
        kernel_operator(problem["kernel_fn"], problem["x"], block_size=64, plan=ExecutionPlan(memory_budget=10_000))


@pytest.mark.parametrize("kwargs, match", [
    (dict(tol=0.0), "`tol` must be a relative residual in \\(0, 1\\), got 0.0"),
    (dict(tol=1.5), "`tol` must be a relative residual in \\(0, 1\\), got 1.5"),
    (dict(max_iter=0), "`max_iter` must be a positive integer, got 0"),
    (dict(ridge=-1.0), "`ridge` must be a finite number >= 0, got -1.0"),
])
def test_bad_solver_arguments_are_named(problem, kwargs, match):
    with pytest.raises(ValueError, match="conjugate_gradient: " + match):
        conjugate_gradient(problem["k"], problem["y"], **kwargs)


def test_targets_of_the_wrong_length_are_refused(problem):
    with pytest.raises(ValueError, match=r"`y` must be targets of shape \(150,\) or \(150, k\), got \(149,\)"):
        conjugate_gradient(problem["k"], problem["y"][:-1])


def test_an_asymmetric_matrix_is_refused():
    with pytest.raises(ValueError, match="matrix_operator: `k` is not symmetric"):
        matrix_operator(np.array([[1.0, 0.5], [0.0, 1.0]]))


def test_a_fractional_number_of_steps_is_refused(problem):
    with pytest.raises(ValueError, match="gradient_descent_coefficients: `steps` must be a whole number of steps >= 0, "
                                         "got 2.5"):
        gradient_descent_coefficients(problem["k"], problem["y"], 2.5, 0.1)
