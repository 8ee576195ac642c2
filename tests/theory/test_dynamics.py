"""Specification of ntkcourse.dynamics: closed-form gradient flow / descent / momentum under MSE.

Convention under test: loss ½Σᵢ‖f(xᵢ) − yᵢ‖² + ½ρ‖θ − θ₀‖² (sum over points),
so that df/dt = −η[Θ(f − y) + ρ(f − f₀)] and GD is stable iff η < 2/(λ_max + ρ).
"""
import math
import warnings

import numpy as np
import optax
import pytest
import scipy.integrate
import scipy.linalg

from ntkcourse import stax
from ntkcourse.dynamics import (
    gradient_descent_prediction,
    gradient_descent_predictor,
    gradient_flow_prediction,
    gradient_flow_predictor,
    kernel_regression,
)
from ntkcourse.spectral import (
    IllConditionedKernelWarning,
    KernelNotPSDWarning,
    UnstableLearningRateWarning,
    max_learning_rate,
)

N_TRAIN, N_TEST, DIM = 12, 7, 4


@pytest.fixture(scope="module")
def problem():
    """One-hidden-layer ReLU NTK (from the engine) on random inputs, with 2-D targets and initial outputs."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N_TRAIN + N_TEST, DIM))
    _, _, kernel_fn = stax.serial(stax.Dense(512, W_std=1.5, b_std=0.05), stax.Relu(), stax.Dense(1))
    k = np.asarray(kernel_fn(x, None, "ntk"), dtype=np.float64)
    return dict(
        k=k[:N_TRAIN, :N_TRAIN],
        kt=k[N_TRAIN:, :N_TRAIN],
        y=rng.standard_normal((N_TRAIN, 2)),
        f0=0.3 * rng.standard_normal((N_TRAIN, 2)),
        f0t=0.3 * rng.standard_normal((N_TEST, 2)),
    )


@pytest.fixture(scope="module")
def linear_model():
    """A linear model f(x) = f₀(x) + φ(x)·θ: its NTK is ΦΦᵀ exactly, at every width."""
    rng = np.random.default_rng(1)
    phi = rng.standard_normal((N_TRAIN + N_TEST, 30)) / math.sqrt(30)
    return dict(
        phi=phi[:N_TRAIN],
        phit=phi[N_TRAIN:],
        k=phi[:N_TRAIN] @ phi[:N_TRAIN].T,
        kt=phi[N_TRAIN:] @ phi[:N_TRAIN].T,
        y=rng.standard_normal(N_TRAIN),
        f0=0.5 * rng.standard_normal(N_TRAIN),
        f0t=0.5 * rng.standard_normal(N_TEST),
    )


def explicit_gd(lm, learning_rate, steps, ridge=0.0, momentum=0.0):
    """Heavy-ball GD in parameter space on ½‖f − y‖² + ½ρ‖θ‖² (θ₀ = 0); returns train/test outputs per step."""
    theta = np.zeros(lm["phi"].shape[1])
    velocity = np.zeros_like(theta)
    train, test = [], []
    for _ in range(steps + 1):
        train.append(lm["f0"] + lm["phi"] @ theta)
        test.append(lm["f0t"] + lm["phit"] @ theta)
        grad = lm["phi"].T @ (lm["f0"] + lm["phi"] @ theta - lm["y"]) + ridge * theta
        velocity = momentum * velocity - learning_rate * grad
        theta = theta + velocity
    return np.array(train), np.array(test)


@pytest.mark.parametrize("ridge", [0.0, 0.3])
def test_gradient_flow_matches_numerical_integration_of_the_ode(problem, ridge):
    """Closed form = DOP853 integration of df/dt = −η[Θ(f−y) + ρ(f−f₀)] on train and test points.

    Tolerance 1e-7 (relative to the outputs, O(1)): the integrator runs at rtol 1e-10, atol 1e-12.
    """
    eta, times = 0.05, np.array([0.0, 0.5, 3.0, 20.0])
    k, kt, y, f0, f0t = (problem[a] for a in ("k", "kt", "y", "f0", "f0t"))
    n, m = f0.shape[0], f0t.shape[0]

    def rhs(_, z):
        f, g = z[: 2 * n].reshape(n, 2), z[2 * n:].reshape(m, 2)
        df = -eta * (k @ (f - y) + ridge * (f - f0))
        dg = -eta * (kt @ (f - y) + ridge * (g - f0t))
        return np.concatenate([df.ravel(), dg.ravel()])

    sol = scipy.integrate.solve_ivp(rhs, (0, times[-1]), np.concatenate([f0.ravel(), f0t.ravel()]),
                                    t_eval=times, method="DOP853", rtol=1e-10, atol=1e-12)
    out = gradient_flow_prediction(k, y, times, kt, learning_rate=eta, ridge=ridge, f_train_0=f0, f_test_0=f0t)
    np.testing.assert_allclose(out.train, sol.y[: 2 * n].T.reshape(-1, n, 2), atol=1e-7)
    np.testing.assert_allclose(out.test, sol.y[2 * n:].T.reshape(-1, m, 2), atol=1e-7)


def test_train_outputs_follow_the_matrix_exponential(problem):
    """Without ridge, f_t(X) = y + exp(−ηΘt)(f₀ − y) (Jacot et al. 2018), with scipy's expm; round-off 1e-10."""
    k, y, f0 = problem["k"], problem["y"], problem["f0"]
    out = gradient_flow_prediction(k, y, 2.5, learning_rate=0.1, f_train_0=f0, f_test_0=None)
    np.testing.assert_allclose(out.train, y + scipy.linalg.expm(-0.25 * k) @ (f0 - y), atol=1e-10)


def test_time_zero_returns_the_initial_outputs(problem):
    """At t = 0 nothing has moved: outputs equal f₀ to round-off."""
    out = gradient_flow_prediction(problem["k"], problem["y"], 0.0, problem["kt"],
                                   f_train_0=problem["f0"], f_test_0=problem["f0t"])
    np.testing.assert_allclose(out.train, problem["f0"], atol=1e-13)
    np.testing.assert_allclose(out.test, problem["f0t"], atol=1e-13)


@pytest.mark.parametrize("ridge", [0.0, 0.1])
def test_infinite_time_equals_kernel_regression(problem, ridge):
    """t → ∞ of gradient flow = Θ_*X(Θ + ρI)⁻¹ y (Cholesky path); two algorithms agree to 1e-10."""
    k, kt, y = problem["k"], problem["kt"], problem["y"]
    out = gradient_flow_prediction(k, y, np.inf, kt, ridge=ridge)
    np.testing.assert_allclose(out.test, kernel_regression(k, y, kt, ridge=ridge), atol=1e-10)
    np.testing.assert_allclose(out.train, kernel_regression(k, y, ridge=ridge), atol=1e-10)


def test_training_points_are_interpolated_without_ridge(problem):
    """A positive-definite NTK and no ridge: train outputs reach y at t = ∞ (1e-10)."""
    out = gradient_flow_prediction(problem["k"], problem["y"], np.inf,
                                   f_train_0=problem["f0"], f_test_0=None)
    np.testing.assert_allclose(out.train, problem["y"], atol=1e-10)


def test_long_finite_time_approaches_the_limit(problem):
    """t = 10⁴/(ηλ_min) leaves e^{−10⁴} of every mode: equal to the t = ∞ prediction to round-off."""
    k, kt, y = problem["k"], problem["kt"], problem["y"]
    t_long = 1e4 / np.linalg.eigvalsh(k).min()
    out = gradient_flow_predictor(k, y)(np.array([t_long, np.inf]), kt)
    np.testing.assert_allclose(out.test[0], out.test[1], atol=1e-9)


def test_vector_of_times_stacks_scalar_calls(problem):
    """t of length T gives shape (T, m, k), each slice equal to the scalar-time call (exactly the same algebra)."""
    predict = gradient_flow_predictor(problem["k"], problem["y"], learning_rate=0.2)
    times = np.array([0.0, 1.0, 7.0])
    stacked = predict(times, problem["kt"])
    assert stacked.train.shape == (3, N_TRAIN, 2) and stacked.test.shape == (3, N_TEST, 2)
    for i, t in enumerate(times):
        np.testing.assert_allclose(stacked.test[i], predict(t, problem["kt"]).test, rtol=1e-12, atol=1e-14)


def test_one_dimensional_targets_keep_their_shape(linear_model):
    """y of shape (n,) gives train (T, n) and test (T, m)."""
    out = gradient_flow_prediction(linear_model["k"], linear_model["y"], [1.0, 2.0], linear_model["kt"])
    assert out.train.shape == (2, N_TRAIN) and out.test.shape == (2, N_TEST)


@pytest.mark.parametrize("ridge", [0.0, 0.2])
def test_gradient_descent_is_exact_for_the_linear_model(linear_model, ridge):
    """Closed-form GD = explicit GD in parameter space on a linear model, step by step (round-off 1e-11)."""
    lm = linear_model
    eta = 0.9 * max_learning_rate(lm["k"], ridge=ridge)
    train, test = explicit_gd(lm, eta, 40, ridge=ridge)
    out = gradient_descent_prediction(lm["k"], lm["y"], np.arange(41), lm["kt"], learning_rate=eta, ridge=ridge,
                                      f_train_0=lm["f0"], f_test_0=lm["f0t"])
    np.testing.assert_allclose(out.train, train, atol=1e-11)
    np.testing.assert_allclose(out.test, test, atol=1e-11)


def test_momentum_is_exact_for_the_linear_model(linear_model):
    """Closed-form heavy-ball = explicit heavy-ball in parameter space (μ = 0.8, 60 steps; round-off 1e-10)."""
    lm = linear_model
    eta = 0.5 * max_learning_rate(lm["k"], momentum=0.8)
    train, test = explicit_gd(lm, eta, 60, momentum=0.8)
    out = gradient_descent_prediction(lm["k"], lm["y"], np.arange(61), lm["kt"], learning_rate=eta, momentum=0.8,
                                      f_train_0=lm["f0"], f_test_0=lm["f0t"])
    np.testing.assert_allclose(out.train, train, atol=1e-10)
    np.testing.assert_allclose(out.test, test, atol=1e-10)


def test_momentum_matches_optax_sgd_with_momentum(linear_model):
    """The momentum convention is optax.sgd(η, momentum=μ): 25 optax steps on the linear model agree to 1e-10."""
    import jax
    import jax.numpy as jnp

    lm = linear_model
    eta, mu = 0.02, 0.9
    with jax.enable_x64(True):
        phi, y, f0 = jnp.asarray(lm["phi"]), jnp.asarray(lm["y"]), jnp.asarray(lm["f0"])
        loss = lambda th: 0.5 * jnp.sum((f0 + phi @ th - y) ** 2)  # noqa: E731
        opt = optax.sgd(eta, momentum=mu)
        theta = jnp.zeros(phi.shape[1])
        state = opt.init(theta)
        for _ in range(25):
            updates, state = opt.update(jax.grad(loss)(theta), state)
            theta = optax.apply_updates(theta, updates)
        optax_test = np.asarray(lm["f0t"] + lm["phit"] @ np.asarray(theta))
    out = gradient_descent_prediction(lm["k"], lm["y"], 25, lm["kt"], learning_rate=eta, momentum=mu,
                                      f_train_0=lm["f0"], f_test_0=lm["f0t"])
    np.testing.assert_allclose(out.test, optax_test, atol=1e-10)


def test_momentum_zero_is_plain_gradient_descent(problem):
    """The companion-matrix recursion (momentum path) with μ = 0 equals the closed-form GD factor (1e-11).

    Two algorithms for cₖ(s) = (1 − (1 − ηλₖ)^s)/λₖ, compared on the engine's NTK spectrum.
    """
    from ntkcourse.dynamics import _gd_coefficients, _momentum_coefficients

    lam = np.linalg.eigvalsh(problem["k"])[::-1]
    eta = 0.5 * max_learning_rate(problem["k"])
    steps = np.array([0.0, 1.0, 5.0, 50.0, 500.0])
    np.testing.assert_allclose(_momentum_coefficients(lam, 0.0, eta, 0.0, steps),
                               _gd_coefficients(lam, 0.0, eta, steps), rtol=1e-11, atol=1e-14)


def test_gradient_descent_approaches_gradient_flow_linearly_in_the_step(problem):
    """GD with step η for t/η steps differs from the flow by O(η): halving η halves the gap (ratio 2 ± 0.15)."""
    k, kt, y = problem["k"], problem["kt"], problem["y"]
    t = 2.0
    flow = gradient_flow_prediction(k, y, t, kt).test
    gaps = []
    for eta in (0.01, 0.005, 0.0025):
        gd = gradient_descent_prediction(k, y, round(t / eta), kt, learning_rate=eta).test
        gaps.append(np.abs(gd - flow).max())
    assert gaps[0] / gaps[1] == pytest.approx(2.0, abs=0.15)
    assert gaps[1] / gaps[2] == pytest.approx(2.0, abs=0.15)


def test_gradient_descent_limit_equals_kernel_regression(problem):
    """Stable GD converges to the same limit as the flow: steps = ∞ equals kernel regression (1e-10)."""
    k, kt, y = problem["k"], problem["kt"], problem["y"]
    out = gradient_descent_prediction(k, y, np.inf, kt, learning_rate=0.5 * max_learning_rate(k), momentum=0.5)
    np.testing.assert_allclose(out.test, kernel_regression(k, y, kt), atol=1e-10)


@pytest.mark.parametrize("momentum", [0.0, 0.7])
def test_training_converges_just_below_and_diverges_just_above_the_bound(linear_model, momentum):
    """η = 0.99 η_max: the loss falls by > 10⁶ in 3000 steps; η = 1.01 η_max: it grows by > 10⁶.

    Checked on explicit GD of the linear model (whose NTK is ΦΦᵀ exactly) and on the closed form.
    The top mode's factor per step is |1 − ηλ| = 0.98 or 1.02 for plain GD (spectral radius 0.84 or
    1.09 with μ = 0.7); after 3000 steps that is 10⁻²⁶ or 10²⁶ (10¹¹⁷ with momentum) — far from the
    thresholds 10^±6, and far from overflow.
    """
    lm = linear_model
    bound = max_learning_rate(lm["k"], momentum=momentum)

    def loss_ratio(eta):
        train, _ = explicit_gd(lm, eta, 3000, momentum=momentum)
        losses = 0.5 * np.sum((train[[0, -1]] - lm["y"]) ** 2, axis=1)
        return losses[1] / losses[0]

    assert loss_ratio(0.99 * bound) < 1e-6
    assert loss_ratio(1.01 * bound) > 1e6
    predicted = gradient_descent_prediction(lm["k"], lm["y"], [0, 3000], learning_rate=0.99 * bound,
                                            momentum=momentum, f_train_0=lm["f0"], f_test_0=None).train
    assert np.sum((predicted[1] - lm["y"]) ** 2) < 1e-6 * np.sum((predicted[0] - lm["y"]) ** 2)
    with pytest.warns(UnstableLearningRateWarning, match="stability bound"):
        predicted = gradient_descent_prediction(lm["k"], lm["y"], [0, 2000], learning_rate=1.01 * bound,
                                                momentum=momentum).train
    assert np.sum((predicted[1] - lm["y"]) ** 2) > 1e6 * np.sum((predicted[0] - lm["y"]) ** 2)


def test_unstable_learning_rate_has_no_limit(linear_model):
    """steps = ∞ above the bound is an error naming the bound, not a silent inf/NaN."""
    lm = linear_model
    with pytest.warns(UnstableLearningRateWarning):
        predict = gradient_descent_predictor(lm["k"], lm["y"], 1.5 * max_learning_rate(lm["k"]))
    with pytest.raises(ValueError, match="stability bound"):
        predict(np.inf)


def test_tiny_eigenvalues_use_the_series_limit():
    """(1 − e^{−ηλt})/λ stays accurate for λ = 10⁻¹⁰ (no cancellation): test output = ηt(1 − ηλt/2) to 1e-12.

    With a diagonal kernel the eigenvectors are the basis vectors, so the test output on a test point
    correlated only with the tiny-eigenvalue training point is that coefficient times the residual.
    """
    lam_small = 1e-10
    k = np.diag([1.0, 1e-3, lam_small])   # rank 3: 1e-10 is above the clipping tolerance 3ε
    kt = np.array([[0.0, 0.0, lam_small]])
    y = np.array([0.0, 0.0, 1.0])
    eta, t = 0.5, 4.0
    out = gradient_flow_prediction(k, y, t, kt, learning_rate=eta)
    expected = lam_small * (-math.expm1(-eta * lam_small * t) / lam_small)
    assert out.test[0] == pytest.approx(expected, rel=1e-12)


def test_singular_kernel_limit_warns_and_stays_finite(linear_model):
    """A rank-3 kernel at t = ∞ without ridge: a warning that suggests a ridge, finite (pseudo-inverse) outputs."""
    rng = np.random.default_rng(5)
    phi = rng.standard_normal((N_TRAIN + N_TEST, 3))
    k, kt = phi[:N_TRAIN] @ phi[:N_TRAIN].T, phi[N_TRAIN:] @ phi[:N_TRAIN].T
    y = rng.standard_normal(N_TRAIN)
    with pytest.warns(IllConditionedKernelWarning, match="ridge"):
        out = gradient_flow_prediction(k, y, np.inf, kt)
    assert np.all(np.isfinite(out.test))
    np.testing.assert_allclose(out.test, kt @ np.linalg.pinv(k, rcond=1e-10) @ y, atol=1e-9)


def test_singular_kernel_regression_asks_for_a_ridge():
    """kernel_regression on a singular kernel raises (Cholesky fails) or warns (near-zero pivots); both name ridge."""
    phi = np.random.default_rng(6).standard_normal((8, 3))
    k = phi @ phi.T
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            kernel_regression(k, np.ones(8))
        except ValueError as err:
            assert "ridge" in str(err)
        else:
            assert any(issubclass(w.category, IllConditionedKernelWarning) and "ridge" in str(w.message)
                       for w in caught)


def test_ridge_makes_a_singular_kernel_well_posed():
    """With ridge = 1e-6·trace/n the singular kernel needs no warning and kernel ridge regression is finite."""
    phi = np.random.default_rng(6).standard_normal((8, 3))
    k = phi @ phi.T
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = gradient_flow_prediction(k, np.ones(8), np.inf, k[:2], ridge=1e-6 * np.trace(k) / 8)
    assert np.all(np.isfinite(out.test))


def test_ill_conditioned_kernel_at_long_times_warns():
    """λ = (1, 10⁻¹⁵) at t = 10¹⁶: κ_eff = 10¹⁵ and n·ε·κ_eff ≈ 0.4 > 10⁻², so a warning suggests a ridge."""
    k = np.diag([1.0, 1e-15])
    with pytest.warns(IllConditionedKernelWarning, match="ridge"):
        gradient_flow_prediction(k, np.ones(2), 1e16, np.ones((1, 2)))


def test_not_psd_kernel_warns():
    """An eigenvalue of −0.1·λ_max is not round-off: KernelNotPSDWarning."""
    k = np.array([[1.0, 0.0], [0.0, -0.1]])
    with pytest.warns(KernelNotPSDWarning, match="not positive semi-definite"):
        gradient_flow_prediction(k, np.ones(2), 1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(t=-1.0), r"`t` must be non-negative \(training runs forward from t = 0\), got -1"),
        (dict(t=[0.0, np.nan]), r"`t` must hold non-negative times, got NaN"),
        (dict(t=[[1.0]]), r"`t` must be a scalar or a 1-D array of times"),
        (dict(y=np.ones(5)), r"^gradient_flow_predictor: `y_train` must have shape \(n,\) or \(n, k\) with n = 12 .*, "
                             r"got shape \(5,\)"),
        (dict(kt=np.ones((3, 5))),
         r"^gradient_flow_predictor: `k_test_train` must have shape \(m, n\) with n = 12 .*, got shape \(3, 5\)"),
        (dict(f0=np.ones(5)), r"^gradient_flow_predictor: `f_train_0` must have the shape of y_train, \(12,\), "
                              r"got shape \(5,\)"),
        (dict(f0=np.zeros(12), f0t=None), "^gradient_flow_predictor: `f_train_0` was given without f_test_0"),
        (dict(learning_rate=0.0), r"gradient_flow_predictor: `learning_rate` must be a finite number > 0, got 0.0"),
        (dict(ridge=-1.0), r"gradient_flow_predictor: `ridge` must be a finite number >= 0, got -1.0"),
    ],
)
def test_bad_arguments_are_rejected_with_a_clear_message(linear_model, kwargs, match):
    """Each error names the argument, the value received and what was expected."""
    args = dict(t=1.0, y=linear_model["y"], kt=linear_model["kt"], f0=None, f0t=None, learning_rate=1.0, ridge=0.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        gradient_flow_prediction(linear_model["k"], args["y"], args["t"], args["kt"], learning_rate=args["learning_rate"],
                                 ridge=args["ridge"], f_train_0=args["f0"], f_test_0=args["f0t"])


@pytest.mark.parametrize(
    "kernel, match",
    [
        (np.ones((3, 4)), r"`k_train_train` must be a square 2-D matrix \(n, n\), got an array of shape \(3, 4\)"),
        (np.array([[1.0, 0.5], [0.0, 1.0]]), "`k_train_train` must be a symmetric kernel matrix .*, got one that is "
                                             "not symmetric"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "`k_train_train` must be a finite kernel matrix, got 2 non-finite "
                                                   "entries"),
    ],
)
def test_bad_train_kernels_are_rejected(kernel, match):
    """Non-square, asymmetric or non-finite train kernels are errors, never NaN outputs."""
    with pytest.raises(ValueError, match="^gradient_flow_predictor: " + match):
        gradient_flow_predictor(kernel, np.ones(kernel.shape[0]))


def test_steps_must_be_whole_numbers(linear_model):
    """Gradient descent counts steps: 2.5 steps is an error."""
    predict = gradient_descent_predictor(linear_model["k"], linear_model["y"], 0.1)
    with pytest.raises(ValueError, match=r"`steps` must hold whole numbers of steps, got 2.5"):
        predict(2.5)


def test_momentum_outside_unit_interval_is_rejected(linear_model):
    """Heavy-ball momentum must lie in [0, 1)."""
    with pytest.raises(ValueError, match=r"`momentum` must be a number in \[0, 1\), got 1.0"):
        gradient_descent_predictor(linear_model["k"], linear_model["y"], 0.1, momentum=1.0)


# Small cases whose answer is known exactly (explicit iteration of the linearised model in function space, a linear
# solve, expm, one-mode kernels worked out in the docstrings), written from the survivors of a mutation run
# (tools/mutation.py dynamics): null modes, the ridge under momentum, the step limit without momentum, tiny and
# underflowing η·λ·t, divergence. No JAX; milliseconds each.
SMALL_K = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 1.5]])
SMALL_Y = np.array([1.0, -1.0, 0.5])
SMALL_KT = np.array([[0.3, 0.1, 0.2], [0.0, 0.4, 0.1]])


def heavy_ball_in_function_space(learning_rate, ridge, momentum, steps, f0, f0t):
    """Train and test outputs after each of ``steps`` heavy-ball steps on the linearised network.

    With θ − θ₀ = w and f = f₀ + Jw, the update v ← μ v − η(Jᵀ(f − y) + ρ w), w ← w + v becomes, for
    u = Jv, u ← μ u − η(Θ(f − y) + ρ(f − f₀)) and f ← f + u on any set of inputs (Θ_*X on test inputs):
    no eigendecomposition, no closed form.
    """
    f, ft = f0.copy(), f0t.copy()
    u, ut = np.zeros_like(f), np.zeros_like(ft)
    train, test = [f.copy()], [ft.copy()]
    for _ in range(steps):
        residual = f - SMALL_Y
        u = momentum * u - learning_rate * (SMALL_K @ residual + ridge * (f - f0))
        ut = momentum * ut - learning_rate * (SMALL_KT @ residual + ridge * (ft - f0t))
        f, ft = f + u, ft + ut
        train.append(f.copy())
        test.append(ft.copy())
    return np.array(train), np.array(test)


def test_momentum_with_ridge_equals_the_explicit_heavy_ball_iteration():
    """η = 0.2, ρ = 0.3, μ = 0.6 from non-zero f₀: the closed form after 0..6 steps equals 6 explicit heavy-ball
    steps in function space (round-off of a few dozen operations on O(1) numbers: 1e-13)."""
    f0, f0t = np.array([0.2, -0.1, 0.4]), np.array([0.3, -0.2])
    train, test = heavy_ball_in_function_space(0.2, 0.3, 0.6, 6, f0, f0t)
    out = gradient_descent_prediction(SMALL_K, SMALL_Y, np.arange(7), SMALL_KT, learning_rate=0.2, ridge=0.3,
                                      momentum=0.6, f_train_0=f0, f_test_0=f0t)
    np.testing.assert_allclose(out.train, train, rtol=0, atol=1e-13)
    np.testing.assert_allclose(out.test, test, rtol=0, atol=1e-13)


def test_descent_limit_without_momentum_is_kernel_ridge_regression():
    """Plain gradient descent (no momentum) with ρ = 0.3, steps = ∞: train outputs Θ(Θ + ρI)⁻¹y and test outputs
    Θ_*X(Θ + ρI)⁻¹y, by numpy's linear solve (condition number ≈ 7: 1e-13)."""
    out = gradient_descent_prediction(SMALL_K, SMALL_Y, np.inf, SMALL_KT, learning_rate=0.3, ridge=0.3)
    alpha = np.linalg.solve(SMALL_K + 0.3 * np.eye(3), SMALL_Y)
    np.testing.assert_allclose(out.train, SMALL_K @ alpha, rtol=0, atol=1e-13)
    np.testing.assert_allclose(out.test, SMALL_KT @ alpha, rtol=0, atol=1e-13)


def test_momentum_limit_with_ridge_on_a_singular_kernel():
    """Θ = [[1, 1], [1, 1]] (rank 1), ρ = 0.5, μ = 0.5, steps = ∞: the null mode is left out and the range mode
    (λ = 2) converges to λ/(λ + ρ) = 0.8 of its target: y = (1, 0) gives train outputs 0.8·(½, ½) = (0.4, 0.4)
    and, on a test point with k_*X = (1, 1), 2·(½)/(2.5) = 0.4 (1e-14)."""
    out = gradient_descent_prediction(np.ones((2, 2)), np.array([1.0, 0.0]), np.inf, np.ones((1, 2)),
                                      learning_rate=0.5, ridge=0.5, momentum=0.5)
    np.testing.assert_allclose(out.train, [0.4, 0.4], rtol=0, atol=1e-14)
    np.testing.assert_allclose(out.test, [0.4], rtol=0, atol=1e-14)


@pytest.mark.parametrize("method", ["flow", "descent", "momentum"])
def test_null_modes_are_left_out_of_the_test_predictions(method):
    """Θ = [[1, 1], [1, 1]] and y = (1, −1): the whole residual lies in the null mode v = (1, −1)/√2, which
    training cannot change, so train outputs stay 0; the test row k_*X = (1, 0) is not orthogonal to v (as
    round-off makes any test row), and the module leaves the null mode out of the test predictions too: test
    output 0 at t = 3 (kept, it would be (1/√2)·c·√2 = c, which grows like ηt). Round-off of the range mode's
    zero residual: 1e-15."""
    k, y, kt = np.ones((2, 2)), np.array([1.0, -1.0]), np.array([[1.0, 0.0]])
    if method == "flow":
        out = gradient_flow_prediction(k, y, 3.0, kt, learning_rate=0.5)
    else:
        out = gradient_descent_prediction(k, y, 3, kt, learning_rate=0.5, momentum=0.5 if method == "momentum" else 0)
    np.testing.assert_allclose(out.train, [0.0, 0.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(out.test, [0.0], rtol=0, atol=1e-15)


def test_descent_on_a_mode_below_machine_precision_keeps_eta_times_steps():
    """Θ = diag(1, 10⁻¹²), η = 10⁻⁵: the small mode's ηλ = 10⁻¹⁷ is below ε, so 1 − ηλ rounds to 1 and the
    direct form (1 − (1 − ηλ)^s)/λ would give 0; the exact c(s) = ηs(1 − (s−1)ηλ/2 + …) = 10⁻³ for s = 100 (relative
    correction 5e-16). A test point correlated only with that training point (k_*X = (0, 1)) and y = (0, 1)
    reads c directly (1e-12 relative)."""
    out = gradient_descent_prediction(np.diag([1.0, 1e-12]), np.array([0.0, 1.0]), 100, np.array([[0.0, 1.0]]),
                                      learning_rate=1e-5)
    assert out.test[0] == pytest.approx(1e-3, rel=1e-12, abs=0)


def test_flow_first_order_regime_survives_underflow_of_eta_lambda_t():
    """Θ = (10⁻³⁰⁰), t = 10⁻³⁰: ηλt = 10⁻³³⁰ underflows to 0 in float64, yet c(t) = (1 − e^{−ηλt})/λ = ηt to
    first order: the test output on k_*X = (1) with y = (1) is 10⁻³⁰ (1e-12 relative; a wrong value at x = 0 of
    (1 − e^{−x})/x, e.g. that at x = 1, would be off by a third)."""
    out = gradient_flow_prediction(np.array([[1e-300]]), np.array([1.0]), 1e-30, np.array([[1.0]]))
    assert out.test[0] == pytest.approx(1e-30, rel=1e-12, abs=0)


def test_flow_default_learning_rate_is_one():
    """Without learning_rate, η = 1: f_t(X) = (I − e^{−Θt})y with scipy's expm at t = 0.7 (1e-13)."""
    out = gradient_flow_prediction(SMALL_K, SMALL_Y, 0.7)
    expected = (np.eye(3) - scipy.linalg.expm(-0.7 * SMALL_K)) @ SMALL_Y
    np.testing.assert_allclose(out.train, expected, rtol=0, atol=1e-13)


def test_unstable_descent_overflows_to_the_sign_of_the_closed_form_silently():
    """Θ = diag(4, 1), η = 0.75: the top mode has ηλ = 3 > 2 (bound 0.5), c₁(s) = (1 − (−2)^s)/4. Its train output
    λ₁c₁y₁ with y₁ = 10 is (1 + 2¹⁰²³)·10 > the largest double at s = 1023 (+∞), and (−2)²⁰⁰⁰ overflows, so at
    s = 2000 c₁ = −∞; the test output on k_*X = (2, 1) is not finite either (±∞, or NaN where an infinity meets a
    zero entry of V, depending on the order of the products). Past the one UnstableLearningRateWarning at
    construction, numpy's overflow and invalid-value RuntimeWarnings are silenced (made errors here)."""
    with pytest.warns(UnstableLearningRateWarning):
        predict = gradient_descent_predictor(np.diag([4.0, 1.0]), np.array([10.0, 1.0]), 0.75)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = predict(np.array([1023, 2000]), np.array([[2.0, 1.0]]))
    np.testing.assert_array_equal(out.train[:, 0], [np.inf, -np.inf])
    assert not np.any(np.isfinite(out.test))


def test_unstable_momentum_overflows_silently():
    """Θ = diag(4, 1), η = 1, μ = 0.5 (bound 2(1 + μ)/λ_max = 0.75): the top mode's recursion
    c_{s+1} = −2.5c_s − 0.5c_{s−1} + 1 has roots −0.22 and −2.28, so after 3000 steps |c| ≈ 2.28³⁰⁰⁰ exceeds
    float64 and the outputs are not finite, with numpy's overflow and invalid-value RuntimeWarnings silenced
    (made errors here). After 4 steps the values are those of the recursions: c = 0, 1, −1.5, 4.25, −8.875 for
    λ = 4 and c_{s+1} = 0.5c_s − 0.5c_{s−1} + 1: 0, 1, 1.5, 1.25, 0.875 for λ = 1, so with y = (10, 1) the train
    outputs are 4·(−8.875)·10 = −355 and 0.875, the test output on k_*X = (2, 1) is −177.5 + 0.875 = −176.625
    (exact in binary)."""
    with pytest.warns(UnstableLearningRateWarning):
        predict = gradient_descent_predictor(np.diag([4.0, 1.0]), np.array([10.0, 1.0]), 1.0, momentum=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = predict(np.array([4, 3000]), np.array([[2.0, 1.0]]))
    np.testing.assert_array_equal(out.train[0], [-355.0, 0.875])
    assert out.test[0] == -176.625
    assert not np.any(np.isfinite(out.train[1])) and not np.isfinite(out.test[1])
