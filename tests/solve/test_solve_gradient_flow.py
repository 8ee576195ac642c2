"""Gradient flow for a finite time, matrix-free (ntkcourse.solve.krylov, solve.regression.gradient_flow_regression).

Claims: the Lanczos coefficients ``α_t`` give the same train and test
outputs as the dense eigendecomposition formula of
``ntkcourse.dynamics.gradient_flow_predictor`` at t = 0, short, medium and
long times, with and without ridge, for a kernel held or recomputed in
blocks; ``t = ∞`` is kernel regression; several columns are solved as
separate ones; bad input (negative or NaN times, finite times mixed with
∞, a non-PSD kernel, a tolerance not met) gives the documented errors.

Tolerances: the Lanczos approximation stops when two successive iterates
differ by ``tol = 1e-11`` relative; the error left is of that order (the
convergence is superlinear), plus the round-off of the dense
eigendecomposition, ``n·ε·κ(t)`` with ``κ(t) ≤ (λ_max + ρ)·ηt``; at the
largest time here (ηt = 1e4, λ_max ≈ 30, n = 150) that is ~1e-9, so 1e-8
relative to the largest output is asserted at every time (1e-12 where
``t = 0``, where both give exactly zero).
"""
import numpy as np
import pytest

from ntkcourse import dynamics, stax
from ntkcourse.solve import (
    ConvergenceError,
    NotPositiveDefiniteError,
    gradient_flow_coefficients,
    gradient_flow_regression,
)

TIMES = np.array([0.0, 0.05, 1.0, 20.0, 1e4])


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((150, 5))
    xt = rng.standard_normal((20, 5))
    y = np.stack([np.sin(2 * x[:, 0]), np.cos(x[:, 1])], 1) + 0.1 * rng.standard_normal((150, 2))
    layers = []
    for _ in range(3):
        layers += [stax.Dense(256, W_std=1.5, b_std=0.05), stax.Relu()]
    kernel_fn = stax.serial(*layers, stax.Dense(1, W_std=1.5, b_std=0.05))[2]
    k = np.asarray(kernel_fn(x, None, "ntk"), np.float64)
    kt = np.asarray(kernel_fn(xt, x, "ntk"), np.float64)
    return dict(x=x, xt=xt, y=y, kernel_fn=kernel_fn, k=k, kt=kt, ridge=1e-2 * np.trace(k) / len(k))


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("store", ["hold", "stream"])
@pytest.mark.parametrize("with_ridge", [False, True])
def test_lanczos_flow_equals_the_dense_predictor_at_every_time(problem, store, with_ridge):
    p = problem
    ridge = p["ridge"] if with_ridge else 0.0
    eta = 0.5
    dense = dynamics.gradient_flow_prediction(p["k"], p["y"], TIMES, p["kt"], learning_rate=eta, ridge=ridge)
    flow = gradient_flow_regression(p["kernel_fn"], p["x"], p["y"], TIMES, p["xt"], learning_rate=eta,
                                    ridge=ridge, tol=1e-11, store=store, block_size=64)
    assert flow.solve.converged
    assert np.all(flow.test[0] == 0) and np.all(flow.train[0] == 0)        # t = 0: nothing learnt yet
    for i in range(1, len(TIMES)):
        assert _rel(flow.test[i], dense.test[i]) < 1e-8, TIMES[i]
        assert _rel(flow.train[i], dense.train[i]) < 1e-8, TIMES[i]


def test_a_long_time_without_ridge_approaches_interpolation(problem):
    # Not a comparison with the same formula: after ηt = 1e4 every mode with ηλt ≫ 1 is fitted, so the
    # train outputs are y up to e^{−ηλ_min t}·|y| (λ_min ≈ 7e-3 here: e^{−70}), i.e. round-off.
    p = problem
    flow = gradient_flow_regression(p["kernel_fn"], p["x"], p["y"], 1e4, learning_rate=1.0, tol=1e-11)
    assert _rel(flow.train, p["y"]) < 1e-7


def test_infinite_time_is_kernel_regression(problem):
    p = problem
    alpha = gradient_flow_coefficients(p["k"], p["y"], np.inf, ridge=p["ridge"], tol=1e-12).coefficients
    closed = dynamics.kernel_regression(p["k"], p["y"], p["kt"], ridge=p["ridge"])
    assert _rel(p["kt"] @ alpha, closed) < 1e-9      # CG to 1e-12 residual, κ(K + ρI) ~ 1e3


def test_several_columns_are_solved_as_separate_ones(problem):
    p = problem
    both = gradient_flow_coefficients(p["k"], p["y"], 3.0, tol=1e-12).coefficients
    for j in range(2):
        one = gradient_flow_coefficients(p["k"], p["y"][:, j], 3.0, tol=1e-12).coefficients
        assert _rel(both[:, j], one) < 1e-10


def test_the_iterations_grow_with_the_time(problem):
    # The Krylov dimension needed grows with ηt·λ_max: a short time needs fewer products than a long one.
    p = problem
    short = gradient_flow_coefficients(p["k"], p["y"], 0.01, tol=1e-10).iterations
    long = gradient_flow_coefficients(p["k"], p["y"], 100.0, tol=1e-10).iterations
    assert short < long


@pytest.mark.parametrize("t, match", [
    (-1.0, "`t` must be non-negative .*got -1"),
    (np.array([1.0, -0.5]), "`t` must be non-negative .*got -0.5"),
    (np.nan, "`t` must hold non-negative times, got NaN"),
    (np.array([1.0, np.inf]), "`t` must be either finite times or numpy.inf alone"),
])
def test_bad_times_are_refused(problem, t, match):
    with pytest.raises(ValueError, match="gradient_flow_coefficients: " + match):
        gradient_flow_coefficients(problem["k"], problem["y"], t)


@pytest.mark.parametrize("kwargs, match", [
    (dict(tol=0.0), "`tol` must be a relative change in \\(0, 1\\), got 0.0"),
    (dict(max_iter=0), "`max_iter` must be a positive integer, got 0"),
    (dict(ridge=-1.0), "`ridge` must be a finite number >= 0, got -1.0"),
    (dict(learning_rate=-1.0), "`learning_rate` must be a finite number >= 0, got -1.0"),
])
def test_bad_arguments_are_named(problem, kwargs, match):
    with pytest.raises(ValueError, match="gradient_flow_coefficients: " + match):
        gradient_flow_coefficients(problem["k"], problem["y"], 1.0, **kwargs)


def test_a_kernel_with_a_negative_eigenvalue_is_refused(problem):
    p = problem
    lam, v = np.linalg.eigh(p["k"])
    # The smallest eigenvalue moved to −1e-4·λ_max: 10⁴ times the √ε·λ_max round-off threshold, while each
    # diagonal entry drops by at most λ_min + 1e-4·λ_max (checked to stay positive).
    bad = p["k"] - (lam[0] + 1e-4 * lam[-1]) * np.outer(v[:, 0], v[:, 0])
    assert np.min(np.diag(bad)) > 0
    with pytest.raises(NotPositiveDefiniteError, match="gradient_flow_coefficients: K \\+ ρI .* not positive"):
        gradient_flow_coefficients(bad, v[:, 0] + v[:, -1], 10.0)


def test_a_tolerance_not_met_raises_with_the_last_iterate(problem):
    p = problem
    with pytest.raises(ConvergenceError, match="after max_iter = 3 Lanczos steps, above tol = 1e-10") as err:
        gradient_flow_coefficients(p["k"], p["y"], 100.0, tol=1e-10, max_iter=3)
    assert err.value.result.iterations == 3 and not err.value.result.converged


def test_a_tolerance_not_met_can_be_returned_flagged(problem):
    p = problem
    result = gradient_flow_coefficients(p["k"], p["y"], 100.0, tol=1e-10, max_iter=3, raise_on_failure=False)
    assert not result.converged and result.relative_change > 1e-10
    assert result.coefficients.shape == p["y"].shape
