"""Specification of ntkcourse.training, and the validation of the closed forms against real training.

Claims: the closed form is exact for the linearised network (GD and momentum), tracks it at small
learning rates (flow), predicts the learning-rate bound, and matches real wide networks with a gap
that shrinks like width^(−1/2) (Lee et al. 2019).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ntkcourse import stax
from ntkcourse.dynamics import gradient_descent_predictor, gradient_flow_predictor
from ntkcourse.empirical import empirical_ntk_fn
from ntkcourse.linearize import linearize
from ntkcourse.spectral import max_learning_rate
from ntkcourse.training import TrainingResult, train_network

N_TRAIN, N_TEST, DIM = 8, 4, 3


@functools.lru_cache(maxsize=None)
def network(width):
    """One network object per width, so that the jitted training step is compiled once per width."""
    return stax.serial(stax.Dense(width, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(1, W_std=1.0, b_std=0.1))


def empirical_ntk(apply_fn, params, x):
    """Θ̂(x, x) = J(x) J(x)ᵀ from the package's empirical-NTK module, as a float64 numpy array."""
    return np.asarray(empirical_ntk_fn(apply_fn)(x, None, params), dtype=np.float64)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N_TRAIN + N_TEST, DIM))
    return dict(x=x[:N_TRAIN], xt=x[N_TRAIN:], y=np.sin(x[:N_TRAIN, 0]) + 0.5 * x[:N_TRAIN, 1])


@pytest.fixture(scope="module")
def linearised(data):
    """A width-256 stax network, its linearisation at θ₀ (one JVP, Lee et al. 2019 eq. 6) and its empirical NTK.

    All float64: the comparisons with the closed forms are exact up to round-off.
    """
    init_fn, apply_fn, _ = network(256)
    with jax.enable_x64(True):
        _, params0 = init_fn(jax.random.PRNGKey(0), (-1, DIM))
        params0 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params0)
        f_lin = linearize(apply_fn, params0)
        x_all = np.concatenate([data["x"], data["xt"]])
        k_all = empirical_ntk(apply_fn, params0, x_all)
        f_all = np.asarray(jax.jit(apply_fn)(params0, x_all))[:, 0]
    return dict(apply=apply_fn, f_lin=f_lin, params0=params0, k=k_all[:N_TRAIN, :N_TRAIN], kt=k_all[N_TRAIN:, :N_TRAIN],
                f0=f_all[:N_TRAIN], f0t=f_all[N_TRAIN:])


def test_gradient_descent_closed_form_is_exact_for_the_linearised_network(data, linearised):
    """optax.sgd on the linearised network = closed-form GD with its empirical NTK, at every checkpoint (1e-9)."""
    lin = linearised
    eta = 0.5 * max_learning_rate(lin["k"])
    res = train_network(lin["f_lin"], lin["params0"], data["x"], data["y"], x_test=data["xt"], steps=60,
                        learning_rate=eta, checkpoints=[0, 10, 60], float64=True, progress=False)
    pred = gradient_descent_predictor(lin["k"], data["y"], eta)(res.steps, lin["kt"], lin["f0"], lin["f0t"])
    np.testing.assert_allclose(res.train_outputs, pred.train, atol=1e-9)
    np.testing.assert_allclose(res.test_outputs, pred.test, atol=1e-9)


def test_momentum_closed_form_is_exact_for_the_linearised_network(data, linearised):
    """optax.sgd(η, momentum=0.9) on the linearised network = closed-form heavy-ball (1e-9)."""
    lin = linearised
    eta = 0.3 * max_learning_rate(lin["k"], momentum=0.9)
    res = train_network(lin["f_lin"], lin["params0"], data["x"], data["y"], x_test=data["xt"], steps=40,
                        optimizer=optax.sgd(eta, momentum=0.9), checkpoints=[40], float64=True, progress=False)
    pred = gradient_descent_predictor(lin["k"], data["y"], eta, momentum=0.9)(40, lin["kt"], lin["f0"], lin["f0t"])
    np.testing.assert_allclose(res.test_outputs[0], pred.test, atol=1e-9)


def test_ridge_matches_weight_decay_towards_initialisation(data, linearised):
    """ridge=ρ in training (½ρ‖θ − θ₀‖²) and in the closed form describe the same dynamics (1e-9)."""
    lin = linearised
    eta, rho = 0.3 * max_learning_rate(lin["k"], ridge=0.5), 0.5
    res = train_network(lin["f_lin"], lin["params0"], data["x"], data["y"], x_test=data["xt"], steps=30,
                        learning_rate=eta, ridge=rho, checkpoints=[30], float64=True, progress=False)
    pred = gradient_descent_predictor(lin["k"], data["y"], eta, ridge=rho)(30, lin["kt"], lin["f0"], lin["f0t"])
    np.testing.assert_allclose(res.test_outputs[0], pred.test, atol=1e-9)


def test_small_learning_rate_training_follows_gradient_flow(data, linearised):
    """η = 0.01·η_max: GD on the linearised network is within 0.01·max|y − f₀| of the flow at t = steps.

    Per mode GD multiplies by (1 − a)^s instead of e^{−as} (a = ηλ ≤ 0.02); the difference is at most
    a/(2e) ≈ 0.004 of the mode's residual, so 0.01 is a safe bound.
    """
    lin = linearised
    eta = 0.01 * max_learning_rate(lin["k"])
    steps = [0, 200, 2000]
    res = train_network(lin["f_lin"], lin["params0"], data["x"], data["y"], x_test=data["xt"], steps=2000,
                        learning_rate=eta, checkpoints=steps, float64=True, progress=False)
    flow = gradient_flow_predictor(lin["k"], data["y"], learning_rate=eta)(res.steps, lin["kt"], lin["f0"], lin["f0t"])
    scale = np.abs(data["y"] - lin["f0"]).max()
    assert np.abs(res.test_outputs - flow.test).max() < 0.01 * scale


@pytest.mark.parametrize("factor, converges", [(0.98, True), (1.02, False)])
def test_learning_rate_bound_separates_convergence_from_divergence(data, linearised, factor, converges):
    """η = 0.98 η_max: the loss of the linearised network falls by > 10⁴ in 1500 steps; 1.02 η_max: rises by > 10⁴.

    η_max = 2/λ_max of the empirical NTK (sum loss). The top mode's factor per step is 0.96 or 1.04, so
    1500 steps change it by 10^∓26; slower modes converge in both runs (κ of this kernel ≈ 100).
    """
    lin = linearised
    eta = factor * max_learning_rate(lin["k"])
    res = train_network(lin["f_lin"], lin["params0"], data["x"], data["y"], steps=1500, learning_rate=eta,
                        checkpoints=[0, 1500], float64=True, progress=False)
    ratio = res.loss[-1] / res.loss[0]
    assert (ratio < 1e-4) if converges else (ratio > 1e4)


@pytest.mark.slow
def test_wide_network_gap_to_the_kernel_prediction_shrinks_like_inverse_sqrt_width(data):
    """Real networks of widths 128…8192 trained by GD vs the closed form with the infinite-width NTK.

    For each width, 16 networks (different initialisations, trained together as one vmapped model:
    the summed loss gives each its own gradient) run 92 steps (η = η_max/2, ηλ_min t = 1) in float32
    (gaps ≥ 0.007 ≫ float32 round-off); the closed form starts from each network's own f₀. The RMS
    gap on the test points at the last step falls like width^(−1/2) (Lee et al. 2019, Thm 2.1): fitted
    log-log slope −1/2 ± 0.15 (measured −0.45 to −0.49 over independent seed sets; the smallest width
    carries higher-order terms that flatten it).
    """
    x, xt, y = data["x"], data["xt"], data["y"]
    n_nets = 16
    kernel_fn = network(1)[2]
    k_all = np.asarray(kernel_fn(np.concatenate([x, xt]), None, "ntk"))
    k, kt = k_all[:N_TRAIN, :N_TRAIN], k_all[N_TRAIN:, :N_TRAIN]
    eta = 0.5 * max_learning_rate(k)
    steps = int(1.0 / (eta * np.linalg.eigvalsh(k).min()))
    targets = np.tile(y[:, None], (1, n_nets))
    widths = np.array([128, 512, 2048, 8192])
    gaps = []
    for width in widths:
        init_fn, apply_fn, _ = network(int(width))
        keys = jax.random.split(jax.random.PRNGKey(int(width)), n_nets)
        params = jax.vmap(lambda key: init_fn(key, (-1, DIM))[1])(keys)
        ensemble = lambda p, inputs: jax.vmap(apply_fn, (0, None))(p, inputs)[..., 0].T  # noqa: E731
        res = train_network(ensemble, params, x, targets, x_test=xt, steps=steps, learning_rate=eta,
                            checkpoints=[0, steps], progress=False)
        pred = gradient_descent_predictor(k, targets, eta)(steps, kt, res.train_outputs[0], res.test_outputs[0])
        gaps.append(np.sqrt(np.mean((res.test_outputs[-1] - pred.test) ** 2)))
    slope = np.polyfit(np.log(widths), np.log(gaps), 1)[0]
    assert slope == pytest.approx(-0.5, abs=0.15), gaps


def test_result_records_the_trajectory(data):
    """Shapes per checkpoint; step 0 holds the initial outputs, loss ½Σ(f₀ − y)² and zero weight change."""
    init_fn, apply_fn, _ = network(64)
    _, params = init_fn(jax.random.PRNGKey(1), (-1, DIM))
    res = train_network(apply_fn, params, data["x"], data["y"], x_test=data["xt"], steps=20, learning_rate=0.05,
                        checkpoints=[0, 5, 20], progress=False)
    assert isinstance(res, TrainingResult)
    np.testing.assert_array_equal(res.steps, [0, 5, 20])
    np.testing.assert_allclose(res.times, 0.05 * res.steps)
    assert res.train_outputs.shape == (3, N_TRAIN) and res.test_outputs.shape == (3, N_TEST)
    f0 = np.asarray(apply_fn(params, jnp.asarray(data["x"], jnp.float32)))[:, 0]
    np.testing.assert_allclose(res.train_outputs[0], f0, rtol=1e-6)
    assert res.loss[0] == pytest.approx(0.5 * np.sum((f0 - data["y"]) ** 2), rel=1e-5)
    assert res.weight_change[0] == 0.0 and res.weight_change[2] > res.weight_change[1] > 0
    assert res.loss[2] < res.loss[0]


def test_ntk_fn_is_recorded_and_shows_kernel_drift(data, linearised):
    """ntk_fn at checkpoints: constant for the linearised network (1e-10), drifting for the real one (> 1e-4)."""
    lin = linearised
    real_fn, lin_fn = empirical_ntk_fn(lin["apply"]), empirical_ntk_fn(lin["f_lin"])
    ntk = lambda p, x: real_fn(x, None, p)  # noqa: E731
    lin_ntk = lambda p, x: lin_fn(x, None, p)  # noqa: E731
    eta = 0.5 * max_learning_rate(lin["k"])
    real = train_network(lin["apply"], lin["params0"], data["x"], data["y"], steps=50, learning_rate=eta,
                         checkpoints=[0, 50], ntk_fn=ntk, float64=True, progress=False)
    linear = train_network(lin["f_lin"], lin["params0"], data["x"], data["y"], steps=50, learning_rate=eta,
                           checkpoints=[0, 50], ntk_fn=lin_ntk, float64=True, progress=False)
    assert real.kernels.shape == (2, N_TRAIN, N_TRAIN)
    drift = lambda ks: np.linalg.norm(ks[1] - ks[0]) / np.linalg.norm(ks[0])  # noqa: E731
    assert drift(linear.kernels) < 1e-10
    assert drift(real.kernels) > 1e-4


def test_full_size_batch_is_full_batch_training(data):
    """batch_size = n is exactly full-batch gradient descent (same outputs to 1e-12)."""
    init_fn, apply_fn, _ = network(64)
    _, params = init_fn(jax.random.PRNGKey(2), (-1, DIM))
    kwargs = dict(steps=15, learning_rate=0.05, checkpoints=[15], progress=False)
    full = train_network(apply_fn, params, data["x"], data["y"], **kwargs)
    batched = train_network(apply_fn, params, data["x"], data["y"], batch_size=N_TRAIN, key=jax.random.PRNGKey(0),
                            **kwargs)
    np.testing.assert_allclose(batched.train_outputs, full.train_outputs, atol=1e-12)


def test_mini_batches_keep_the_meaning_of_the_learning_rate(data, linearised):
    """SGD with batches of n/2 (loss scaled by n/b) follows the full-batch flow: ‖f − f_flow‖/‖y − f₀‖ < 0.03.

    η = 0.05·η_max for t with ηλ_median·t = 1 (123 steps). Measured over three batch orders: 0.3–0.9%
    (SGD noise); without the n/b scaling (SGD at half speed) the gap is 6.8%, so 3% separates the two.
    """
    lin = linearised
    eta = 0.05 * max_learning_rate(lin["k"])
    steps = int(1.0 / (eta * np.median(np.linalg.eigvalsh(lin["k"]))))
    res = train_network(lin["f_lin"], lin["params0"], data["x"], data["y"], steps=steps, learning_rate=eta,
                        batch_size=N_TRAIN // 2, key=jax.random.PRNGKey(3), checkpoints=[steps], float64=True,
                        progress=False)
    flow = gradient_flow_predictor(lin["k"], data["y"], learning_rate=eta)(steps, f_train_0=lin["f0"])
    gap = np.linalg.norm(res.train_outputs[0] - flow.train) / np.linalg.norm(data["y"] - lin["f0"])
    assert gap < 0.03


def test_progress_bar_only_when_asked(data, capsys):
    """progress=True draws a tqdm bar on stderr; progress=False prints nothing."""
    init_fn, apply_fn, _ = network(64)
    _, params = init_fn(jax.random.PRNGKey(4), (-1, DIM))
    train_network(apply_fn, params, data["x"], data["y"], steps=3, learning_rate=0.05, progress=False)
    assert capsys.readouterr().err == ""
    train_network(apply_fn, params, data["x"], data["y"], steps=3, learning_rate=0.05, progress=True)
    assert "training" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=-1), "`steps` must be an integer >= 0, got -1"),
        (dict(learning_rate=None), r"`learning_rate` must be .* \(required by the default optimizer .*\), got None"),
        (dict(y=np.ones(5)), r"`y_train` must have shape \(n,\) or \(n, k\) with n = 8 .*, got shape \(5,\)"),
        (dict(batch_size=0), r"`batch_size` must be an integer in \[1, n = 8\] or None, got 0"),
        (dict(batch_size=4), "`key` must be a jax.random key .*mini-batches.*, got None"),
        (dict(checkpoints=[0, 50]), r"`checkpoints` must be whole numbers in \[0, steps = 5\], got values from 0 to 50"),
        (dict(y=np.ones((8, 3))), r"`apply_fn` must return outputs of shape \(n, 3\) .*, got shape \(8, 1\)"),
    ],
)
def test_bad_arguments_are_rejected_with_a_clear_message(data, kwargs, match):
    """Each error names the argument, the value received and what was expected."""
    init_fn, apply_fn, _ = network(64)
    _, params = init_fn(jax.random.PRNGKey(5), (-1, DIM))
    args = dict(y=data["y"], steps=5, learning_rate=0.01)
    args.update(kwargs)
    y = args.pop("y")
    with pytest.raises(ValueError, match="^train_network: " + match):
        train_network(apply_fn, params, data["x"], y, progress=False, **args)
