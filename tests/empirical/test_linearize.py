"""Specification of ntkcourse.linearize: the Taylor models of a network in its parameters, and training them.

Claims: the linear model equals the network at θ₀ and is affine in θ; the Taylor polynomial of
degree d misses the network by O(‖Δθ‖^(d+1)) (halving the step divides the error by 2^(d+1), within
the ±30% that the next order's share leaves); gradient descent on the linear model is exactly kernel
regression with the empirical NTK (float64 round-off, 1e-9); the network is trained by the package's one
training loop (ntkcourse.training, the same outputs as train_network); the real network stays closer to its
linearisation when it is wider; bad input is refused with a message naming it.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax
from ntkcourse.empirical import empirical_ntk_fn
from ntkcourse.linearize import linearization_error, linearize, taylor_expand, train_network_and_linearization
from ntkcourse.training import train_network
from test_empirical import random_params


def _erf_net(width=32):
    """Smooth (erf) so that every order of the Taylor series is non-zero."""
    return stax.serial(stax.Dense(width, W_std=1.5, b_std=0.1), stax.Erf(), stax.Dense(2, W_std=1.2, b_std=0.1))


def _direction(params, seed):
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda a: jnp.asarray(rng.standard_normal(a.shape), a.dtype), params)


def _shift(params, direction, eps):
    return jax.tree_util.tree_map(lambda a, d: a + eps * d, params, direction)


@pytest.fixture(scope="module")
def erf_case():
    with jax.enable_x64(True):
        net = _erf_net()
        x = np.random.default_rng(0).standard_normal((5, 3))
        params0 = random_params(net, x.shape, np.float64)
        direction = _direction(params0, 1)
    return net, x, params0, direction


def test_linear_model_equals_network_at_start_and_is_affine(erf_case):
    net, x, p0, d = erf_case
    with jax.enable_x64(True):
        f_lin = linearize(net, p0)
        np.testing.assert_allclose(f_lin(p0, x), net[1](p0, x), atol=1e-14)
        step = np.asarray(f_lin(_shift(p0, d, 0.1), x)) - np.asarray(f_lin(p0, x))
        np.testing.assert_allclose(np.asarray(f_lin(_shift(p0, d, 0.3), x)) - np.asarray(f_lin(p0, x)), 3 * step,
                                   atol=1e-12)


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_taylor_error_has_the_order_of_the_first_missing_term(erf_case, degree):
    """‖f(θ₀ + εd) − T_degree(ε)‖ ∝ ε^(degree+1): halving ε divides it by 2^(degree+1) (±30%)."""
    net, x, p0, d = erf_case
    with jax.enable_x64(True):
        taylor = taylor_expand(net, p0, degree)
        err = []
        for eps in (0.02, 0.01):
            p = _shift(p0, d, eps)
            err.append(np.linalg.norm(np.asarray(net[1](p, x)) - np.asarray(taylor(p, x))))
    assert err[0] / err[1] == pytest.approx(2.0 ** (degree + 1), rel=0.3)


def test_taylor_degree_one_is_the_linearisation_and_degree_zero_a_constant(erf_case):
    net, x, p0, d = erf_case
    with jax.enable_x64(True):
        p = _shift(p0, d, 0.05)
        np.testing.assert_allclose(taylor_expand(net, p0, 1)(p, x), linearize(net, p0)(p, x), atol=1e-13)
        np.testing.assert_allclose(taylor_expand(net, p0, 0)(p, x), net[1](p0, x), atol=0)
        # The remainder of the linear model is second order: its share of the movement shrinks with the step.
        assert linearization_error(net, p0, _shift(p0, d, 0.01), x) < 0.6 * linearization_error(net, p0, p, x)


@pytest.fixture(scope="module")
def regression():
    """A ReLU network of width 128, trained (and its linearisation) for 300 steps at half the stability limit."""
    with jax.enable_x64(True):
        net = stax.serial(stax.Dense(128, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(1, W_std=1.5, b_std=0.1))
        rng = np.random.default_rng(4)
        x, xt = rng.standard_normal((6, 3)), rng.standard_normal((3, 3))
        y = np.sin(x[:, :1]) + 0.3 * x[:, 1:2]
        params0 = random_params(net, x.shape, np.float64, seed=4)
        ntk_fn = empirical_ntk_fn(net)
        k, kt = np.asarray(ntk_fn(x, None, params0)), np.asarray(ntk_fn(xt, x, params0))
        eta = 1.0 / np.linalg.eigvalsh(k).max()
        run = train_network_and_linearization(net, params0, x, y, eta, 300, x_test=xt, checkpoints=[0, 7, 60, 300])
        f0, f0t = np.asarray(net[1](params0, x)), np.asarray(net[1](params0, xt))
    return dict(run=run, k=k, kt=kt, eta=eta, y=y, f0=f0, f0t=f0t, net=net, params0=params0, x=x)


def test_the_network_is_trained_by_the_package_s_one_training_loop(regression):
    """The network half of the run is ntkcourse.training's optax gradient descent: train_network from the same
    start, data and learning rate reaches the same outputs at every checkpoint. Both take the same float64
    steps (optax.sgd through training.optimizer_update); 1e-12 leaves room for the compiled loop (fori_loop
    here, one jitted step per call there) to round differently over 300 steps of outputs of order 1."""
    r = regression
    run = r["run"]
    with jax.enable_x64(True):
        trained = train_network(r["net"][1], r["params0"], r["x"], r["y"], steps=300, learning_rate=r["eta"],
                                checkpoints=run.steps, float64=True, progress=False)
    np.testing.assert_allclose(trained.train_outputs, run.network_train, rtol=0, atol=1e-12)


def test_training_the_linearisation_is_kernel_regression_with_the_empirical_ntk(regression):
    """f_t = y + (I − ηΘ̂)^t (f₀ − y) on the training points and f_t(x*) = f₀(x*) − Θ̂*Θ̂⁻¹(I − (I − ηΘ̂)^t)(f₀ − y)
    on the test points, at every checkpoint, to float64 round-off."""
    r = regression
    run = r["run"]
    for t, train, test in zip(run.steps, run.linear_train, run.linear_test):
        decay = np.linalg.matrix_power(np.eye(6) - r["eta"] * r["k"], int(t))
        np.testing.assert_allclose(train, r["y"] + decay @ (r["f0"] - r["y"]), atol=1e-9)
        moved = np.linalg.solve(r["k"], (np.eye(6) - decay) @ (r["f0"] - r["y"]))
        np.testing.assert_allclose(test, r["f0t"] - r["kt"] @ moved, atol=1e-9)


def test_long_linearised_training_reaches_the_kernel_regression_predictor(regression):
    """After 300 steps at η = 1/λ_max the linear model interpolates and predicts f₀(x*) + Θ̂*Θ̂⁻¹(y − f₀) (1e-4: the
    slowest mode, with λ_min/λ_max ≈ 0.05, has decayed by (1 − 0.05)^300 ≈ 2e-7 of its start)."""
    r = regression
    np.testing.assert_allclose(r["run"].linear_train[-1], r["y"], atol=1e-4)
    predictor = r["f0t"] + r["kt"] @ np.linalg.solve(r["k"], r["y"] - r["f0"])
    np.testing.assert_allclose(r["run"].linear_test[-1], predictor, atol=1e-4)


def test_the_network_stays_close_to_its_linearisation(regression):
    """Width 128: the network's and the linear model's outputs differ by a few percent of how far they moved."""
    run = regression["run"]
    moved = np.sqrt(np.mean((run.linear_train[-1] - run.linear_train[0]) ** 2))
    assert run.train_gap[0] == 0.0 and run.train_gap[-1] < 0.1 * moved
    assert run.loss_network[-1] < 1e-3 * run.loss_network[0]


def test_a_wider_network_is_closer_to_its_linearisation():
    """Lee et al. (2019) bound the gap by O(width^(−1/2)): at most about 1/4 from width 64 to 1024 (smooth
    activations do better, ~1/n). Measured: the mean over 3 seeds of an erf network falls by 8×; asserted: 2×."""
    gaps = {}
    with jax.enable_x64(True):
        rng = np.random.default_rng(5)
        x = rng.standard_normal((6, 3))
        y = np.cos(x[:, :1])
        for width in (64, 1024):
            net = stax.serial(stax.Dense(width, W_std=1.5, b_std=0.1), stax.Erf(), stax.Dense(1, W_std=1.5, b_std=0.1))
            runs = [train_network_and_linearization(net, random_params(net, x.shape, np.float64, seed=s), x, y, 0.05,
                                                    100, checkpoints=[100]) for s in range(3)]
            gaps[width] = np.mean([r.train_gap[-1] for r in runs])
    assert gaps[1024] < 0.5 * gaps[64]


def test_bad_input_is_refused(erf_case):
    net, x, p0, _ = erf_case
    with jax.enable_x64(True):
        with pytest.raises(ValueError, match="structure of params0"):
            linearize(net, p0)(p0[:2], x)
        with pytest.raises(ValueError, match=r"params\[0\]\[0\]` has shape \(3, 4\)"):
            linearize(net, p0)([(jnp.ones((3, 4)), p0[0][1])] + list(p0[1:]), x)
        with pytest.raises(ValueError, match="`degree`"):
            taylor_expand(net, p0, -1)
        with pytest.raises(ValueError, match="`y_train` has shape"):
            train_network_and_linearization(net, p0, x, np.ones((5, 3)), 0.1, 3)
        with pytest.raises(ValueError, match="`learning_rate`"):
            train_network_and_linearization(net, p0, x, np.ones((5, 2)), -0.1, 3)
