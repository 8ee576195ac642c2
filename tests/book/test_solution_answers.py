"""The reference solutions' answer functions agree with the course's package.

Grading compares students with the reference solution, so a wrong reference
would mark every correct student wrong (a reference halved by mistake still
"passes" against itself). Here each solution's answer functions are run
directly (tests/notebook_answers.py runs the notebook's ordinary and answer
cells, not its checks) and compared with something independent: a function of
``ntkcourse`` (``stax`` kernels, ``dual``, ``empirical``, ``linearize``,
``dynamics``, ``inference``, ``training``, ``spectral``, ``finite_width``, ``graph``),
SciPy, or a closed form. Tolerances: 1e-10 relative where both sides are
float64 formulas; 1e-5 where one side runs float32 JAX networks (float32
rounding of a few hundred operations); Monte Carlo and quadrature as stated.
"""
from __future__ import annotations

import functools

import jax
import numpy as np
import pytest
from scipy import integrate, linalg

from notebook_answers import solution_namespace
from ntkcourse import (dual, dynamics, empirical, finite_width, graph, inference, linearize, random_matrix,
                       signal_propagation, spectral, stax, training)
from ntkcourse.mup import effective_exponents
from ntkcourse.mup import relative_change as mup_relative_change

F64 = dict(rtol=1e-10, atol=1e-12)
F32 = dict(rtol=1e-5, atol=1e-6)


@functools.lru_cache(maxsize=None)
def solution(name):
    return solution_namespace(name)


def _inputs(seed, n, d):
    return np.random.default_rng(seed).normal(size=(n, d))


def _covariances(seed, size=20):
    """Variances a, b and covariances c with |c| < sqrt(ab), as arrays."""
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.2, 3.0, size), rng.uniform(0.2, 3.0, size)
    return a, b, rng.uniform(-0.99, 0.99, size) * np.sqrt(a * b)


def _relu_network(depth, W_std, b_std, first_W_std=None):
    first = stax.Dense(1, W_std=W_std if first_W_std is None else first_W_std, b_std=b_std)
    layers = [first, stax.Relu()] + [stax.Dense(1, W_std=W_std, b_std=b_std), stax.Relu()] * (depth - 1)
    return stax.serial(*layers, stax.Dense(1, W_std=W_std, b_std=b_std))


def _kernel(network, x1, x2, get):
    with jax.enable_x64(True):
        return np.asarray(network[2](x1, x2, get), dtype=np.float64)


def _params(network, input_shape, seed):
    return network[0](jax.random.PRNGKey(seed), input_shape)[1]


# ---------------------------------------------------------------- ch00


def test_ch00_relu_expectations_are_the_package_arc_cosine_duals():
    ns, relu = solution("ch00_warmup"), dual.relu()
    a, b, c = _covariances(0)
    with jax.enable_x64(True):
        np.testing.assert_allclose(ns["relu_expectation"](a, b, c), np.asarray(relu.nngp(a, b, c)), **F64)
        np.testing.assert_allclose(ns["relu_prime_expectation"](a, b, c), np.asarray(relu.dnngp(a, b, c)), **F64)


@pytest.mark.parametrize("depth", [1, 3])
def test_ch00_relu_ntk_is_the_stax_ntk_with_a_unit_variance_first_layer(depth):
    # The warm-up reads inputs as x/sqrt(d) (first-layer weight variance 1) and uses sigma_w^2 = 2 after.
    x1, x2 = _inputs(1, 4, 3), _inputs(2, 3, 3)
    network = _relu_network(depth, np.sqrt(2), None, first_W_std=1.0)
    np.testing.assert_allclose(solution("ch00_warmup")["relu_ntk"](x1, x2, depth), _kernel(network, x1, x2, "ntk"),
                               **F64)


def test_ch00_kernel_regression_is_the_package_kernel_regression():
    x_train, x_test = _inputs(3, 6, 2), _inputs(4, 3, 2)
    k = np.exp(-0.5 * np.sum((x_train[:, None] - x_train[None]) ** 2, axis=-1))
    k_star = np.exp(-0.5 * np.sum((x_test[:, None] - x_train[None]) ** 2, axis=-1))
    y = np.sin(x_train[:, 0])
    np.testing.assert_allclose(solution("ch00_warmup")["kernel_regression_predict"](k_star, k, y, ridge=0.1),
                               dynamics.kernel_regression(k, y, k_star, ridge=0.1), **F64)


def test_ch00_predicted_trend_is_what_the_package_measures():
    ns = solution("ch00_warmup")
    correlations = []
    for depth in (1, 20):
        ntk = _kernel(_relu_network(depth, np.sqrt(2), None), np.eye(2), None, "ntk")
        correlations.append(ntk[0, 1] / np.sqrt(ntk[0, 0] * ntk[1, 1]))
    assert ns["predicted_trend"]() == ("increases" if correlations[1] > correlations[0] else "decreases")
    np.testing.assert_allclose(ns["measured_correlations"]([1, 20]), correlations, **F64)


# ---------------------------------------------------------------- ch01


def test_ch01_erf_expectation_is_the_package_dual_of_erf_z_over_sqrt2():
    a, b, c = _covariances(5)
    with jax.enable_x64(True):
        expected = np.asarray(dual.erf(b=1 / np.sqrt(2)).nngp(a, b, c))
    np.testing.assert_allclose(solution("ch01_gp_limit")["erf_sqrt2_expectation"](a, b, c), expected, **F64)


@pytest.mark.parametrize("depth,W_std,b_std", [(0, 1.5, 0.2), (3, 1.5, 0.2), (5, 1.1, 0.0)])
def test_ch01_relu_nngp_is_the_stax_nngp(depth, W_std, b_std):
    x1, x2 = _inputs(6, 5, 4), _inputs(7, 3, 4)
    network = stax.Dense(1, W_std=W_std, b_std=b_std) if depth == 0 else _relu_network(depth, W_std, b_std)
    np.testing.assert_allclose(solution("ch01_gp_limit")["relu_nngp"](x1, x2, depth, W_std, b_std),
                               _kernel(network, x1, x2, "nngp"), **F64)


def test_ch01_monte_carlo_expectation_agrees_with_the_relu_dual_within_its_standard_error():
    z = np.random.default_rng(8).standard_normal((200_000, 2))
    a, b, c = 1.2, 0.9, -0.4
    estimate = solution("ch01_gp_limit")["monte_carlo_expectation"](lambda s: np.maximum(s, 0), a, b, c, z)
    u = np.sqrt(a) * z[:, 0]
    v = c / np.sqrt(a) * z[:, 0] + np.sqrt(b - c**2 / a) * z[:, 1]
    stderr = np.std(np.maximum(u, 0) * np.maximum(v, 0)) / np.sqrt(len(z))
    with jax.enable_x64(True):
        exact = float(dual.relu().nngp(a, b, c))
    assert abs(estimate - exact) < 5 * stderr  # fixed samples: 5 standard errors never flakes


def test_ch01_gp_posterior_is_the_package_gp_posterior():
    x_train, x_test = np.sort(_inputs(9, 7, 1)[:, 0]), np.linspace(-3, 3, 5)
    k = lambda p, q: np.exp(-0.5 * (p[:, None] - q[None, :]) ** 2)  # noqa: E731
    y = np.sin(x_train)
    mean, var = solution("ch01_gp_limit")["gp_posterior_mean_var"](k(x_train, x_train), k(x_test, x_train),
                                                                   np.ones(5), y, 0.3)
    post = inference.gp_posterior(k(x_train, x_train), y, k(x_test, x_train), np.ones(5), noise=0.3)
    np.testing.assert_allclose(mean, post.mean, **F64)
    np.testing.assert_allclose(var, post.covariance, **F64)


def test_ch01_predicted_error_ratio_is_sqrt_16():
    assert solution("ch01_gp_limit")["predicted_error_ratio"]() == pytest.approx(np.sqrt(16))


def test_ch01_measured_error_ratio_is_the_spread_of_estimates_from_the_same_draws():
    # The same generator, drawn in the same order: 200 estimates of E[tanh(u) tanh(v)] (unit variances,
    # covariance 1/2) with 100 samples, then 200 with 1600; v = u / 2 + sqrt(3/4) w for independent u, w.
    rng = np.random.default_rng(3)
    spreads = []
    for samples in (100, 1600):
        estimates = []
        for _ in range(200):
            z = rng.standard_normal((samples, 2))
            estimates.append(np.mean(np.tanh(z[:, 0]) * np.tanh(0.5 * z[:, 0] + np.sqrt(0.75) * z[:, 1])))
        spreads.append(np.std(estimates))
    assert solution("ch01_gp_limit")["measured_error_ratio"](3) == pytest.approx(spreads[0] / spreads[1], rel=1e-10)


# ---------------------------------------------------------------- ch02


def _erf_network():
    return stax.serial(stax.Dense(16, W_std=1.5, b_std=0.5), stax.Erf(), stax.Dense(1, W_std=1.5, b_std=0.5))


def test_ch02_output_gradient_gives_the_package_linearisation_along_any_direction():
    ns, network = solution("ch02_linearisation"), _erf_network()
    params0 = _params(network, (1, 3), 0)
    flat, unravel = jax.flatten_util.ravel_pytree(params0)
    direction = np.random.default_rng(1).standard_normal(flat.shape).astype(np.float32)
    x = np.array([0.3, -1.2, 0.8])
    f_lin = linearize.linearize(network[1], params0)
    moved = float(f_lin(unravel(flat + direction), x[None])[0, 0] - network[1](params0, x[None])[0, 0])
    assert float(np.dot(ns["output_gradient"](network[1], params0, x), direction)) == pytest.approx(moved, rel=1e-4)


@pytest.mark.parametrize("answer", ["pairwise_ntk", "jacobian_ntk"])
def test_ch02_empirical_ntks_are_the_package_empirical_ntk(answer):
    network = _erf_network()
    params = _params(network, (1, 3), 2)
    x1, x2 = _inputs(3, 3, 3), _inputs(4, 2, 3)
    np.testing.assert_allclose(solution("ch02_linearisation")[answer](network[1], params, x1, x2),
                               empirical.empirical_ntk_fn(network[1])(x1, x2, params), **F32)


def test_ch02_linearised_outputs_are_the_package_linearisation():
    network = _erf_network()
    params0, params1 = _params(network, (1, 3), 5), _params(network, (1, 3), 6)
    x = _inputs(7, 4, 3)
    np.testing.assert_allclose(solution("ch02_linearisation")["linearised_outputs"](network[1], params0, params1, x),
                               linearize.linearize(network[1], params0)(params1, x)[:, 0], **F32)


def test_ch02_linear_gd_outputs_are_the_package_gradient_descent_prediction():
    rng = np.random.default_rng(8)
    phi, phi_star = rng.normal(size=(6, 15)), rng.normal(size=(3, 15))
    k, k_star = phi @ phi.T, phi_star @ phi.T
    f0, f0_star, y = rng.normal(size=6), rng.normal(size=3), rng.normal(size=6)
    eta = 1.5 / np.linalg.eigvalsh(k).max()
    train, test = solution("ch02_linearisation")["linear_gd_outputs"](k, k_star, f0, f0_star, y, eta, 37)
    expected = dynamics.gradient_descent_prediction(k, y, 37, k_star, learning_rate=eta, f_train_0=f0, f_test_0=f0_star)
    np.testing.assert_allclose(train, expected.train, **F64)
    np.testing.assert_allclose(test, expected.test, **F64)


def test_ch02_measured_gap_ratio_is_the_package_linearisation_gap_ratio():
    network = _erf_network()
    params0, params1 = _params(network, (1, 3), 9), _params(network, (1, 3), 10)
    x = _inputs(11, 4, 3)
    f_lin = linearize.linearize(network[1], params0)
    gaps = []
    for c in (0.1, 0.05):
        params = jax.tree_util.tree_map(lambda p0, p1: p0 + c * (p1 - p0), params0, params1)
        gaps.append(np.max(np.abs(np.asarray(network[1](params, x)) - np.asarray(f_lin(params, x)))))
    # Gaps of ~1e-2 of O(1) float32 outputs: rounding (~1e-7) moves their ratio by ~1e-5.
    assert solution("ch02_linearisation")["measured_gap_ratio"](network[1], params0, params1, x) == \
        pytest.approx(gaps[0] / gaps[1], rel=1e-4)


def test_ch02_predicted_gap_ratio_is_the_square_of_the_step_ratio():
    # The linearisation error is the second-order Taylor term: c^2 (0.1 / 0.05)^2 = 4 to leading order.
    assert solution("ch02_linearisation")["predicted_gap_ratio"]() == pytest.approx((0.1 / 0.05) ** 2)


# ---------------------------------------------------------------- ch03


@pytest.mark.parametrize("depth,W_std,b_std", [(1, 1.3, 0.4), (4, np.sqrt(2), 0.1)])
def test_ch03_relu_ntk_is_the_stax_ntk(depth, W_std, b_std):
    x1, x2 = _inputs(10, 5, 4), _inputs(11, 3, 4)
    np.testing.assert_allclose(solution("ch03_ntk_recursion")["relu_ntk"](x1, x2, depth, W_std, b_std),
                               _kernel(_relu_network(depth, W_std, b_std), x1, x2, "ntk"), **F64)


def test_ch03_one_layer_empirical_ntk_is_the_package_empirical_ntk():
    from scipy import special

    network = stax.serial(stax.Dense(64, W_std=1.4, b_std=0.3), stax.Erf(), stax.Dense(1, W_std=1.4, b_std=0.3))
    x = _inputs(12, 5, 3)
    params = _params(network, x.shape, 3)
    d_erf = lambda s: 2 / np.sqrt(np.pi) * np.exp(-s**2)  # noqa: E731
    mine = solution("ch03_ntk_recursion")["one_layer_empirical_ntk"](params, x, x, 1.4, 0.3, special.erf, d_erf)
    np.testing.assert_allclose(mine, empirical.empirical_ntk_fn(network)(x, None, params), **F32)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_ch03_ntk_recursion_with_package_duals_is_the_stax_ntk(activation):
    layer, duals = {"relu": (stax.Relu, dual.relu), "gelu": (stax.Gelu, dual.gelu)}[activation]
    network = stax.serial(stax.Dense(1, W_std=1.2, b_std=0.3), layer(), stax.Dense(1, W_std=1.2, b_std=0.3), layer(),
                          stax.Dense(1, W_std=1.2, b_std=0.3))
    x1, x2 = _inputs(13, 4, 2), _inputs(14, 3, 2)
    with jax.enable_x64(True):
        phi = duals()
        mine = solution("ch03_ntk_recursion")["ntk_recursion"](x1, x2, 2, 1.2, 0.3, phi.nngp, phi.dnngp)
    np.testing.assert_allclose(mine, _kernel(network, x1, x2, "ntk"), **F64)


def test_ch03_standard_ntk_is_the_stax_standard_parameterisation():
    network = stax.serial(stax.Dense(300, W_std=1.2, b_std=0.7, parameterization="standard"), stax.Relu(),
                          stax.Dense(1, W_std=1.2, b_std=0.7, parameterization="standard"))
    x1, x2 = _inputs(15, 3, 5), _inputs(16, 4, 5)
    np.testing.assert_allclose(solution("ch03_ntk_recursion")["standard_ntk"](x1, x2, 300, 1.2, 0.7),
                               _kernel(network, x1, x2, "ntk"), **F64)


def _standard_relu_rate(width, x):
    """2 / lambda_max of the stax NTK of Dense(width) -> Relu -> Dense(1), standard parameterisation."""
    network = stax.serial(stax.Dense(width, W_std=1.5, b_std=0.2, parameterization="standard"), stax.Relu(),
                          stax.Dense(1, W_std=1.5, b_std=0.2, parameterization="standard"))
    return 2.0 / np.linalg.eigvalsh(_kernel(network, x, x, "ntk")).max()


def test_ch03_measured_learning_rate_factor_is_the_stax_ratio_of_stable_rates():
    x = np.array([[1.0, 0.0, 2.0], [0.5, -1.0, 0.3], [-0.7, 0.4, 1.1]])
    expected = _standard_relu_rate(20_000, x) / _standard_relu_rate(10_000, x)
    assert solution("ch03_ntk_recursion")["measured_learning_rate_factor"]() == pytest.approx(expected, rel=1e-10)


def test_ch03_predicted_learning_rate_factor_is_one_over_the_width_ratio():
    # In the standard parameterisation the NTK grows linearly with the width, so 2 / lambda_max halves.
    assert solution("ch03_ntk_recursion")["predicted_learning_rate_factor"]() == pytest.approx(10_000 / 20_000)


# ---------------------------------------------------------------- ch04


def _random_kernels(seed, n_train, n_test):
    rng = np.random.default_rng(seed)
    phi, phi_star = rng.normal(size=(n_train, 30)), rng.normal(size=(n_test, 30))
    return phi @ phi.T, phi_star @ phi.T, phi_star @ phi_star.T


def test_ch04_flow_outputs_are_the_package_gradient_flow_prediction():
    k, k_star, _ = _random_kernels(17, 6, 3)
    rng = np.random.default_rng(18)
    y, f0, f0_star = rng.normal(size=6), rng.normal(size=6), rng.normal(size=3)
    train, test = solution("ch04_training_dynamics")["flow_outputs"](k, k_star, y, f0, f0_star, 0.05, 0.7)
    expected = dynamics.gradient_flow_prediction(k, y, 0.7, k_star, learning_rate=0.05, f_train_0=f0, f_test_0=f0_star)
    np.testing.assert_allclose(train, expected.train, **F64)
    np.testing.assert_allclose(test, expected.test, **F64)


def test_ch04_mode_residuals_are_projections_of_the_matrix_exponential_flow():
    k, _, _ = _random_kernels(19, 5, 1)
    rng = np.random.default_rng(20)
    y, f0 = rng.normal(size=5), rng.normal(size=5)
    lam, v = np.linalg.eigh(k)
    v = v[:, np.argsort(lam)[::-1]]
    expected = [(v.T @ linalg.expm(-0.03 * k * t) @ (f0 - y)) ** 2 for t in (0.0, 0.5, 2.0)]
    np.testing.assert_allclose(solution("ch04_training_dynamics")["mode_residuals"](k, y, f0, 0.03, [0.0, 0.5, 2.0]),
                               expected, rtol=1e-9, atol=1e-12)


def test_ch04_max_stable_learning_rate_is_the_package_one():
    k, _, _ = _random_kernels(21, 7, 1)
    assert solution("ch04_training_dynamics")["max_stable_learning_rate"](k) == pytest.approx(
        spectral.max_learning_rate(k), rel=1e-12)


def test_ch04_gd_train_outputs_are_the_package_training_loop():
    network = stax.serial(stax.Dense(64, W_std=1.5, b_std=0.5), stax.Relu(), stax.Dense(1, W_std=1.5, b_std=0.5))
    angles = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    x, y = np.stack([np.cos(angles), np.sin(angles)], axis=1), np.sin(2 * angles)
    params = _params(network, x.shape, 4)
    mine = solution("ch04_training_dynamics")["gd_train_outputs"](network[1], params, x, y, 0.02, 50)
    result = training.train_network(network[1], params, x, y[:, None], steps=50, learning_rate=0.02, progress=False)
    np.testing.assert_allclose(mine, np.asarray(result.train_outputs)[-1].reshape(-1), rtol=1e-4, atol=1e-5)


def test_ch04_ensemble_is_the_package_infinite_ensemble_at_convergence():
    ntk, ntk_star, _ = _random_kernels(22, 6, 3)
    nngp, nngp_star, nngp_ss = _random_kernels(23, 6, 3)
    y = np.random.default_rng(24).normal(size=6)
    mean, var = solution("ch04_training_dynamics")["ensemble_mean_and_variance"](
        ntk, ntk_star, nngp, nngp_star, np.diag(nngp_ss), y)
    expected = inference.infinite_ensemble_prediction(ntk, nngp, y, np.inf, ntk_star, nngp_star, nngp_ss)
    np.testing.assert_allclose(mean, np.ravel(expected.test_mean), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(var, np.diag(np.asarray(expected.test_covariance)), rtol=1e-8, atol=1e-8)


def _circle_half_times(ns):
    """Half-life of each squared mode residual cos(k angles) . r_t, k = 1, 2, 4, 8, from the NTK's eigenvalues."""
    angles = 2 * np.pi * np.arange(32) / 32
    modes = [np.cos(k * angles) for k in (1, 2, 4, 8)]
    # theta_circle is circulant on evenly spaced points: cos(k angles) is an eigenvector (Rayleigh quotient =
    # eigenvalue), so (cos . r_t)^2 = exp(-2 lambda_k t) (cos . r_0)^2 under gradient flow with eta = 1.
    lam = np.array([m @ ns["theta_circle"] @ m / (m @ m) for m in modes])
    return np.log(2) / (2 * lam)


def test_ch04_measured_half_times_are_the_first_grid_times_past_the_exact_half_lives():
    ns = solution("ch04_training_dynamics")
    grid = np.geomspace(1e-3, 1e2, 201)
    expected = grid[np.searchsorted(grid, _circle_half_times(ns))]
    np.testing.assert_allclose(ns["measured_half_times"](), expected, rtol=1e-12)


def test_ch04_predicted_slowest_frequency_has_the_longest_exact_half_life():
    ns = solution("ch04_training_dynamics")
    assert ns["predicted_slowest_frequency"]() == (1, 2, 4, 8)[int(np.argmax(_circle_half_times(ns)))]


# ---------------------------------------------------------------- ch05


def test_ch05_mean_ntk_deviation_is_the_package_fluctuation_on_the_same_draws():
    ns = solution("ch05_finite_width")
    key = jax.random.PRNGKey(5)
    # ntkcourse.finite_width draws seed s at width index i from fold_in(fold_in(key, i), s).
    sweep = finite_width.ntk_fluctuation_vs_width(ns["one_hidden_layer"], [16, 64], ns["x_circle"], key, n_seeds=3)
    for i, width in enumerate([16, 64]):
        mine = ns["mean_ntk_deviation"](ns["one_hidden_layer"], width, ns["x_circle"], 3, jax.random.fold_in(key, i))
        assert mine == pytest.approx(float(np.mean(sweep.values[i])), rel=1e-5)


def test_ch05_loglog_slope_is_the_package_fit():
    x, y = np.array([16.0, 64.0, 256.0, 1024.0]), np.array([0.31, 0.17, 0.07, 0.04])
    assert solution("ch05_finite_width")["loglog_slope"](x, y) == pytest.approx(finite_width.fit_loglog_slope(x, y),
                                                                                rel=1e-12)


def test_ch05_lazy_weight_change_of_one_step_is_the_scaled_gradient_norm():
    # One step of size eta on L_alpha = |g_alpha - y|^2 / (2 alpha^2) from theta0, where g_alpha = 0:
    # theta1 - theta0 = eta J^T y / alpha, with J the Jacobian of f (ntkcourse.empirical's NTK is J J^T).
    ns = solution("ch05_finite_width")
    network = ns["one_hidden_layer"](32)
    params0 = _params(network, ns["x_circle"].shape, 6)
    y = ns["y_circle"]
    ntk = np.asarray(empirical.empirical_ntk_fn(network)(ns["x_circle"], None, params0), dtype=np.float64)
    flat0 = np.asarray(jax.flatten_util.ravel_pytree(params0)[0], dtype=np.float64)
    expected = 0.02 / 5.0 * np.sqrt(y @ ntk @ y) / np.linalg.norm(flat0)
    mine = ns["lazy_weight_change"](network[1], params0, ns["x_circle"], y, 5.0, 0.02, 1)
    assert mine == pytest.approx(expected, rel=1e-4)


def test_ch05_relative_deviation_is_the_frobenius_distance_over_the_frobenius_norm():
    rng = np.random.default_rng(29)
    k, k_hat = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    expected = np.sqrt(np.sum((k_hat - k) ** 2) / np.sum(k**2))
    assert solution("ch05_finite_width")["relative_deviation"](k_hat, k) == pytest.approx(expected, rel=1e-12)


def test_ch05_lazy_model_is_the_scaled_change_of_the_networks_output():
    ns = solution("ch05_finite_width")
    init_fn, apply_fn, _ = ns["one_hidden_layer"](32)
    x = ns["x_circle"]
    params0, params1 = _params((init_fn, apply_fn), x.shape, 30), _params((init_fn, apply_fn), x.shape, 31)
    expected = 2.5 * (np.asarray(apply_fn(params1, x)) - np.asarray(apply_fn(params0, x)))[:, 0]
    np.testing.assert_allclose(ns["lazy_model"](apply_fn, params0, 2.5)(params1, x), expected, **F32)


def test_ch05_measured_exponent_is_the_package_slope_of_its_deviations(monkeypatch):
    """measured_exponent fits the package's log-log slope to mean_ntk_deviation at the widths 32 ... 2048.

    Width i is drawn from fold_in(key, i). mean_ntk_deviation itself is checked against the package above; here
    it is replaced by a recorder returning fixed deviations, so that the test runs no network (the real sweep of
    8 seeds up to width 2048 takes a minute).
    """
    ns = solution("ch05_finite_width")
    calls, deviations = [], {32: 0.41, 128: 0.19, 512: 0.11, 2048: 0.048}

    def recorder(network_fn, width, x, n_seeds, key):
        calls.append((network_fn, width, x, n_seeds, np.asarray(jax.random.key_data(key))))
        return deviations[width]

    monkeypatch.setitem(ns, "mean_ntk_deviation", recorder)
    key = jax.random.PRNGKey(2)
    measured = ns["measured_exponent"](key)
    assert [c[1] for c in calls] == [32, 128, 512, 2048]
    assert all(c[0] is ns["one_hidden_layer"] and c[2] is ns["x_circle"] and c[3] == 8 for c in calls)
    for i, c in enumerate(calls):
        np.testing.assert_array_equal(c[4], np.asarray(jax.random.key_data(jax.random.fold_in(key, i))))
    assert measured == pytest.approx(finite_width.fit_loglog_slope(list(deviations), list(deviations.values())),
                                     rel=1e-12)


def test_ch05_predicted_exponent_is_the_inverse_square_root_rate():
    # The empirical NTK is an average of n independent terms: its deviation from the limit falls as n^(-1/2).
    assert solution("ch05_finite_width")["predicted_exponent"]() == pytest.approx(-0.5)


# ---------------------------------------------------------------- ch06


def test_ch06_relu_gram_is_inner_products_times_the_package_relu_derivative_dual():
    x = _inputs(25, 7, 3) * np.random.default_rng(26).uniform(0.5, 2.0, (7, 1))
    g = x @ x.T
    norms = np.sqrt(np.diag(g))
    variances1, variances2 = np.broadcast_arrays(norms[:, None] ** 2, norms[None, :] ** 2)
    with jax.enable_x64(True):
        expected = g * np.asarray(dual.relu().dnngp(variances1, variances2, g))
    # rtol 1e-7: on the diagonal rounding leaves rho = 1 - 1e-16, where arccos moves by 1.5e-8.
    np.testing.assert_allclose(solution("ch06_theory")["relu_gram_any_norm"](x), expected, rtol=1e-7, atol=1e-12)


def test_ch06_gradient_flow_residual_is_the_package_gradient_flow():
    rng = np.random.default_rng(27)
    a = rng.normal(size=(6, 6))
    k, r0, y = a @ a.T + 0.1 * np.eye(6), rng.normal(size=6), rng.normal(size=6)
    mine = solution("ch06_theory")["gradient_flow_residual"](k, r0, 0.3, 1.7)
    flow = dynamics.gradient_flow_prediction(k, y, 1.7, learning_rate=0.3, f_train_0=y + r0)
    np.testing.assert_allclose(mine, flow.train - y, rtol=1e-8, atol=1e-10)


def test_ch06_arora_bound_is_the_closed_form_with_an_explicit_inverse():
    rng = np.random.default_rng(28)
    a = rng.normal(size=(5, 5))
    h, y = a @ a.T + np.eye(5), rng.choice([-1.0, 1.0], 5)
    assert solution("ch06_theory")["arora_bound"](h, y) == pytest.approx(np.sqrt(2 * y @ np.linalg.inv(h) @ y / 5),
                                                                          rel=1e-10)


def test_ch06_correlation_map_is_the_correlation_of_the_stax_nngp():
    rho0 = np.array([-0.9, 0.0, 0.5])
    x = np.stack([np.ones(3), np.zeros(3)], axis=1)
    x2 = np.stack([rho0, np.sqrt(1 - rho0**2)], axis=1)
    depth = 6
    nngp = np.array([_kernel(_relu_network(depth, np.sqrt(2), None), x[i:i + 1], x2[i:i + 1], "nngp")[0, 0]
                     for i in range(3)])
    # Unit inputs keep their variance 2 |x|^2 / d = 1 through every layer with W_std^2 = 2 and no bias.
    np.testing.assert_allclose(solution("ch06_theory")["relu_correlation_after"](rho0, depth), nngp, rtol=1e-9)


@pytest.mark.parametrize("sigma_w2,sigma_b2", [(3.0, 0.5), (1.5, 0.3)])
def test_ch06_tanh_chi1_is_converged_adaptive_quadrature(sigma_w2, sigma_b2):
    gauss = lambda f: integrate.quad(lambda z: f(z) * np.exp(-z * z / 2) / np.sqrt(2 * np.pi),  # noqa: E731
                                     -np.inf, np.inf, epsabs=1e-14, epsrel=1e-13, limit=500)[0]
    q = 1.0
    for _ in range(200):
        q = sigma_w2 * gauss(lambda z: np.tanh(np.sqrt(q) * z) ** 2) + sigma_b2
    chi1 = sigma_w2 * gauss(lambda z: (1 - np.tanh(np.sqrt(q) * z) ** 2) ** 2)
    # 200 Gauss-Hermite nodes: converged to ~1e-9 (60 nodes were 1.4e-4 off at (3.0, 0.5)).
    assert solution("ch06_theory")["tanh_chi1"](sigma_w2, sigma_b2) == pytest.approx(chi1, rel=1e-8)


def _unit_relu_gram(x):
    """H_inf of unit inputs: x_i . x_j times E[relu'(u) relu'(v)] at unit variances (ntkcourse.dual)."""
    g = x @ x.T
    with jax.enable_x64(True):
        return g * np.asarray(dual.relu().dnngp(np.ones_like(g), np.ones_like(g), np.clip(g, -1, 1)))


def test_ch06_measured_bounds_are_the_closed_form_bound_with_the_package_gram():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 5))
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = np.sign(x[:, 0])
    noisy = y * np.where(rng.random(40) < 0.3, -1.0, 1.0)
    h = _unit_relu_gram(x)
    expected = [np.sqrt(2 * labels @ np.linalg.solve(h, labels) / 40) for labels in (y, noisy)]
    # H_inf of 40 points in 5 dimensions has condition number ~1e3: 1e-8 is far above float64 rounding.
    np.testing.assert_allclose(solution("ch06_theory")["measured_bounds"](4), expected, rtol=1e-8)


def test_ch06_predicted_bound_change_is_the_direction_of_the_package_bounds():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = np.sign(x[:, 0])
    noisy = y * np.where(rng.random(40) < 0.3, -1.0, 1.0)
    h = _unit_relu_gram(x)
    clean, flipped = (labels @ np.linalg.solve(h, labels) for labels in (y, noisy))
    assert solution("ch06_theory")["predicted_bound_change"]() == ("increases" if flipped > clean else "decreases")


# ---------------------------------------------------------------- ch10
@pytest.mark.parametrize("kind", ["input", "hidden", "output"])
def test_ch10_mup_exponents_are_the_package_table(kind):
    # Exact small rationals on both sides.
    e = effective_exponents("mup", kind)
    answer = solution("ch10_feature_learning")["mup_exponents"]
    assert tuple(answer(kind, "sgd")) == (e.init_var, e.sgd_lr)
    assert tuple(answer(kind, "adam")) == (e.init_var, e.adam_lr)


def test_ch10_readout_step_change_is_one_autodiff_sgd_step():
    rng = np.random.default_rng(5)
    h, w, y = rng.normal(size=(6, 30)), rng.normal(size=(30, 2)), rng.normal(size=(6, 2))
    with jax.enable_x64(True):
        grad = jax.grad(lambda w_: 0.5 * ((h @ w_ - y) ** 2).sum())(jax.numpy.asarray(w))
        w_new = w - 0.02 * np.asarray(grad, np.float64)
    # float64 on both sides.
    np.testing.assert_allclose(solution("ch10_feature_learning")["readout_step_change"](h, h @ w - y, 0.02),
                               h @ w_new - h @ w, **F64)


def test_ch10_relative_change_is_the_package_measure():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    assert solution("ch10_feature_learning")["relative_change"](a, b) == pytest.approx(
        mup_relative_change(a, b), rel=1e-12)


@pytest.mark.parametrize("name", ["sp", "mup"])
def test_ch10_predicted_output_exponent_is_one_plus_the_readout_rate_exponent(name):
    # Delta f = -eta' h h^T chi: h h^T grows like n and the readout's SGD rate eta' like n^sgd_lr (SP 0, μP -1).
    rate = effective_exponents(name, "output").sgd_lr
    assert solution("ch10_feature_learning")["predicted_output_exponent"](name) == 1.0 + rate


# ---------------------------------------------------------------- ch12
@pytest.mark.parametrize("sigma_w2,sigma_b2", [(1.0, 0.05), (3.0, 0.5)])
def test_ch12_erf_fixed_point_and_xi_c_are_the_package_depth_scales(sigma_w2, sigma_b2):
    # Both sides float64 fixed points solved to ~1e-13; xi_c in the chaotic phase goes through c*, 1e-8.
    scales = signal_propagation.depth_scales(dual.erf(), sigma_w2, sigma_b2)
    assert solution("ch12_connections")["erf_variance_fixed_point"](sigma_w2, sigma_b2) == pytest.approx(
        scales.q_star, rel=1e-10)
    assert solution("ch12_connections")["erf_xi_c"](sigma_w2, sigma_b2) == pytest.approx(scales.xi_c, rel=1e-8)


def test_ch12_fitted_depth_scale_of_an_exact_exponential_is_its_scale():
    gaps = 0.7 * np.exp(-np.arange(15) / 3.5)
    assert solution("ch12_connections")["fit_depth_scale"](gaps) == pytest.approx(3.5, rel=1e-10)


def test_ch12_mp_density_is_the_package_density():
    x = np.linspace(0.0, 7.0, 57)
    for ratio, variance in ((0.4, 1.2), (2.5, 0.7)):
        np.testing.assert_allclose(solution("ch12_connections")["mp_density"](x, ratio, variance),
                                   random_matrix.marchenko_pastur_density(x, ratio, variance), **F64)


def test_ch12_predicted_top_eigenvalue_is_the_upper_marchenko_pastur_edge():
    assert solution("ch12_connections")["predicted_top_eigenvalue"](300, 1200, 1.5) == pytest.approx(
        random_matrix.marchenko_pastur_edges(0.25, 1.5)[1], rel=1e-12)


def test_ch12_relu_trainable_depth_is_six_correlation_depth_scales():
    assert solution("ch12_connections")["relu_trainable_depth"](1.5) == pytest.approx(
        signal_propagation.trainable_depth(dual.relu(), 1.5, 0.1), rel=1e-10)
# ---------------------------------------------------------------- ch08


def test_ch08_relu_rnn_step_is_the_package_relu_duals():
    """Sigma = sw^2 E[relu relu] + su^2 x.x'/m + sb^2, Theta = Sigma + sw^2 E[relu' relu'] Theta (ntkcourse.dual)."""
    a, b, c = _covariances(44)
    theta_prev, input_cov = np.linspace(0.1, 2.0, a.size), np.linspace(-1.0, 1.0, a.size)
    sw, su, sb = 1.3, 0.8, 0.4
    with jax.enable_x64(True):
        relu = dual.relu()
        k, k_dot = np.asarray(relu.nngp(a, b, c)), np.asarray(relu.dnngp(a, b, c))
    sigma = sw**2 * k + su**2 * input_cov + sb**2
    got_sigma, got_theta = solution("ch08_recurrent")["relu_rnn_step"](c, theta_prev, a, b, input_cov, sw, su, sb)
    np.testing.assert_allclose(got_sigma, sigma, **F64)
    np.testing.assert_allclose(got_theta, sigma + sw**2 * k_dot * theta_prev, **F64)


@pytest.mark.parametrize("sw", [1.0, 3.0])
def test_ch08_step_correlations_are_those_of_the_stax_erf_recurrent_kernel(sw):
    T = 15
    x = np.ones((2, T, 1))
    x[1, 0, 0] = -1.0
    with jax.enable_x64(True):
        k = np.asarray(stax.Recurrent(1, stax.Erf(), W_std=sw, U_std=1.0, b_std=0.1,
                                      return_sequences=True)[2](x, None, "nngp"))
    s = sw**2 * k[:, :, np.arange(T), np.arange(T)] + 1.01  # Sigma at steps 2 ... T + 1
    expected = s[0, 1] / np.sqrt(s[0, 0] * s[1, 1])
    np.testing.assert_allclose(solution("ch08_recurrent")["step_correlations"](sw, T + 1)[1:], expected, **F64)


def test_ch08_pad_batch_gives_each_sequence_its_own_kernel_under_the_mask():
    rng = np.random.default_rng(45)
    seqs = [rng.normal(size=(3, 2)), rng.normal(size=(6, 2))]
    batch = solution("ch08_recurrent")["pad_batch"](seqs, np.nan)
    kernel_fn = stax.serial(stax.Recurrent(1, stax.Relu(), W_std=1.1, b_std=0.2), stax.Dense(1))[2]
    with jax.enable_x64(True):
        k = np.asarray(kernel_fn(batch, None, "ntk", mask_constant=np.nan))
        alone = [float(kernel_fn(s[None], None, "ntk")[0, 0]) for s in seqs]
    np.testing.assert_allclose(np.diag(k), alone, **F64)
    assert np.isnan(batch[0, 3:]).all() and batch.shape == (2, 6, 2)


def test_ch08_predicted_ntk_is_the_stax_kernel_at_the_relu_edge():
    net = stax.serial(stax.Recurrent(1, stax.Relu(), W_std=np.sqrt(2.0), U_std=1.0, b_std=0.0,
                                     return_sequences=True), stax.Dense(1))
    with jax.enable_x64(True):
        per_step = np.diagonal(np.asarray(net[2](np.ones((1, 12, 1)), None, "ntk"))[0, 0])
    got = [solution("ch08_recurrent")["predicted_ntk"](T) for T in range(1, 13)]
    np.testing.assert_allclose(got, per_step, **F64)
# ---------------------------------------------------------------- ch09


def _random_graph(rng, n, features=3):
    a = np.triu(rng.random((n, n)) < 0.5, 1).astype(float)
    return a + a.T, rng.normal(size=(n, features))


@pytest.mark.parametrize("scale", ["uniform", "degree"])
def test_ch09_aggregate_covariance_is_the_package_aggregation(scale):
    rng = np.random.default_rng(40)
    (a1, _), (a2, _) = _random_graph(rng, 5), _random_graph(rng, 4)
    sigma = rng.normal(size=(5, 4))
    expected = graph.aggregation_matrix(a1, scale) @ sigma @ graph.aggregation_matrix(a2, scale).T
    np.testing.assert_allclose(solution("ch09_graph")["aggregate_covariance"](sigma, a1, a2, scale), expected, **F64)


def test_ch09_relu_layer_step_is_twice_the_package_relu_duals():
    """c_sigma = 2: Sigma' = 2 E[relu relu], Theta' = Theta * 2 E[relu' relu'] + Sigma' (ntkcourse.dual)."""
    rng = np.random.default_rng(41)
    g1, g2 = rng.normal(size=(4, 6)), rng.normal(size=(3, 6))
    sigma, ntk = g1 @ g2.T, rng.random((4, 3))
    v1, v2 = np.sum(g1**2, 1), np.sum(g2**2, 1)
    with jax.enable_x64(True):
        relu = dual.relu()
        new_sigma = 2 * np.asarray(relu.nngp(v1[:, None], v2[None, :], sigma))
        dot = 2 * np.asarray(relu.dnngp(v1[:, None], v2[None, :], sigma))
    got_sigma, got_ntk = solution("ch09_graph")["relu_layer_step"](sigma, ntk, v1, v2)
    np.testing.assert_allclose(got_sigma, new_sigma, **F64)
    np.testing.assert_allclose(got_ntk, ntk * dot + new_sigma, **F64)


@pytest.mark.parametrize("layers,mlp,jk,scale", [(2, 1, False, "uniform"), (4, 2, True, "degree")])
def test_ch09_gntk_pair_is_the_package_gntk(layers, mlp, jk, scale):
    rng = np.random.default_rng(42)
    g1, g2 = _random_graph(rng, 4), _random_graph(rng, 6)
    expected = graph.gntk([g1], [g2], num_layers=layers, num_mlp_layers=mlp, jk=jk, scale=scale)[0, 0]
    got = solution("ch09_graph")["gntk_pair"](g1, g2, layers, mlp, jk, scale)
    assert got == pytest.approx(expected, rel=1e-9)


def test_ch09_relabel_takes_rows_and_columns_in_the_order_of_the_permutation():
    """Node i of the relabelled graph is node perm[i] of the original (NumPy indexing as the reference)."""
    rng = np.random.default_rng(43)
    a, x = _random_graph(rng, 5)
    perm = np.array([3, 0, 4, 1, 2])
    b, y = solution("ch09_graph")["relabel"]((a, x), perm)
    np.testing.assert_array_equal(b, a[perm][:, perm])
    np.testing.assert_array_equal(y, x[perm])


@pytest.mark.parametrize("leaves", [1, 5])
def test_ch09_star_prediction_is_the_package_gntk_of_a_star(leaves):
    star = np.zeros((leaves + 1, leaves + 1))
    star[0, 1:] = star[1:, 0] = 1.0
    measured = graph.gntk([(star, np.ones((leaves + 1, 1)))], num_layers=2, num_mlp_layers=1, jk=False,
                          scale="uniform")[0, 0]
    assert solution("ch09_graph")["star_gntk_prediction"](leaves) == pytest.approx(measured, rel=1e-10)
# ---------------------------------------------------------------- ch07


@pytest.mark.parametrize("width,W_std,b_std", [(3, 1.5, 0.2), (5, 1.0, 0.0)])
def test_ch07_conv1d_nngp_is_the_stax_conv_kernel(width, W_std, b_std):
    x = np.random.default_rng(27).normal(size=(2, 8, 3))
    expected = _kernel(stax.Conv(1, (width,), padding="SAME", W_std=W_std, b_std=b_std), x[:1], x[1:], "nngp")[0, 0]
    np.testing.assert_allclose(solution("ch07_convolutional")["conv1d_nngp"](x[0] @ x[1].T / 3, width, W_std, b_std),
                               expected, **F64)


def test_ch07_readout_values_are_the_stax_flatten_and_gap_kernels():
    x = np.random.default_rng(28).normal(size=(2, 4, 5, 2))
    body = [stax.Conv(1, (3, 3), padding="SAME", W_std=1.5, b_std=0.1), stax.Relu(), stax.Conv(1, (2, 2), W_std=1.2)]
    plane = _kernel(stax.serial(*body), x[:1], x[1:], "nngp")[0, 0]
    flatten, gap = solution("ch07_convolutional")["readout_values"](plane)
    np.testing.assert_allclose(flatten, _kernel(stax.serial(*body, stax.Flatten()), x[:1], x[1:], "nngp")[0, 0], **F64)
    np.testing.assert_allclose(gap, _kernel(stax.serial(*body, stax.GlobalAvgPool()), x[:1], x[1:], "nngp")[0, 0],
                               **F64)


def test_ch07_shift_changes_of_a_same_padding_gap_network_are_its_kernel_differences():
    net = stax.serial(stax.Conv(1, (3, 3), padding="SAME", W_std=1.5), stax.Relu(), stax.GlobalAvgPool(), stax.Dense(1))
    rng = np.random.default_rng(29)
    x1, x2 = rng.normal(size=(2, 5, 5, 1)), rng.normal(size=(3, 5, 5, 1))
    base = _kernel(net, x1, x2, "ntk")
    moved = [_kernel(net, np.roll(x1, (1, 2), axis=(1, 2)), b, "ntk") for b in (x2, np.roll(x2, (1, 2), axis=(1, 2)))]
    expected = [np.max(np.abs(m - base)) / np.max(np.abs(base)) for m in moved]
    with jax.enable_x64(True):
        got = solution("ch07_convolutional")["shift_changes"](net[2], x1, x2, (1, 2))
    np.testing.assert_allclose(got, expected, **F64)


def test_ch07_linear_gap_prediction_is_the_stax_kernel():
    net = stax.serial(stax.Conv(1, (3, 3), padding="CIRCULAR"), stax.GlobalAvgPool(), stax.Dense(1))
    rng = np.random.default_rng(30)
    a, b = rng.normal(0.3, 1.0, (5, 7, 2)), rng.normal(-0.4, 1.0, (5, 7, 2))
    expected = _kernel(net, a[None], b[None], "nngp")[0, 0]
    np.testing.assert_allclose(solution("ch07_convolutional")["linear_gap_nngp"](a, b), expected, **F64)
