"""``nt.predict`` has no formulas of its own, traced or not: it calls ntkcourse.dynamics and
ntkcourse.inference in both cases (issue 19: "built on the package's own dynamics and inference
code, not a second copy").

Each test changes one function of those modules (monkeypatch) in a way whose effect is known in
closed form — observation noise or a ridge added inside it — and checks that neural-tangents'
function built on it changes accordingly both on the host and under ``jax.jit``. A traced path
with formulas of its own would keep the unchanged values under jit and fail.

Kernels: Gram matrices of random features (6 training, 3 test rows, condition numbers below 1e3);
outputs of O(1) agree between the host's LAPACK and XLA to ~1e-15, tolerance 1e-11 absolute, while
the added noise or ridge (0.25) moves them by more than 1e-2.
"""
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkcourse as nt
from ntkcourse import dynamics, inference

N, M = 6, 3
TIMES = np.array([0.0, 2.0, 30.0, np.inf])
ATOL = 1e-11
EXTRA = 0.25


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(19)
    x = rng.standard_normal((N + M, 8))
    return x[:N], x[N:], rng.standard_normal((N, 2))


class Kernels(NamedTuple):
    nngp: object
    ntk: object


def kernel_fn(x1, x2=None, get=("nngp", "ntk")):
    """A valid pair of kernels in jax.numpy (traceable): NNGP 1 + ⟨x, x'⟩/d, NTK NNGP + (⟨x, x'⟩/d)²."""
    lin = x1 @ (x1 if x2 is None else x2).T / x1.shape[1]
    k = Kernels(1.0 + lin, 1.0 + lin + lin**2)
    return getattr(k, get) if isinstance(get, str) else k


def assert_close(got, want):
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=0, atol=ATOL)


def assert_far(unchanged, want):
    """The unpatched function's means differ from the expected ones by more than 1e-2: the test can fail."""
    assert np.max(np.abs(np.asarray(jax.tree_util.tree_leaves(unchanged)[0]) -
                         np.asarray(jax.tree_util.tree_leaves(want)[0]))) > 1e-2


def test_noise_added_inside_gp_posterior_reaches_gp_inference_on_the_host_and_under_jit(data, monkeypatch):
    """gp_posterior with σ² = 0.25 added is the posterior of K + 0.25 I: with it patched in,
    gp_inference(K, y) gives what gp_inference(K, y, diag_reg=0.25, absolute scale) gave before,
    eagerly and under jit."""
    x, xt, y = data
    kdd, ktd, ktt = kernel_fn(x), kernel_fn(xt, x), kernel_fn(xt)
    want = nt.predict.gp_inference(kdd, y, diag_reg=EXTRA, diag_reg_absolute_scale=True)("nngp", ktd, ktt)
    unchanged = nt.predict.gp_inference(kdd, y)("nngp", ktd, ktt)
    monkeypatch.setattr(inference, "gp_posterior",
                        functools.partial(inference.gp_posterior, noise=EXTRA))
    eager = nt.predict.gp_inference(kdd, y)("nngp", ktd, ktt)
    traced = jax.jit(lambda a, b, c, t: nt.predict.gp_inference(a, t)("nngp", b, c))(kdd, ktd, ktt, y)
    for got in (eager, traced):
        assert_close(got, want)
    assert_far(unchanged, want)


def test_a_ridge_added_inside_infinite_ensemble_predictor_reaches_the_ensemble_on_the_host_and_under_jit(
        data, monkeypatch):
    """infinite_ensemble_predictor with a ridge ρ = 0.25 (weight decay towards the initialisation):
    with it patched in, gradient_descent_mse_ensemble's test means and covariances at t = 0, 2, 30, ∞
    are inference.infinite_ensemble_prediction's with that ridge (η = 1/|y|, neural-tangents'
    units), eagerly and under jit over the test inputs and the times."""
    x, xt, y = data
    kdd, ktd = kernel_fn(x), kernel_fn(xt, x)
    ref = inference.infinite_ensemble_prediction(kdd.ntk, kdd.nngp, y, TIMES, ktd.ntk, ktd.nngp, kernel_fn(xt, None,
                                                 "nngp"), learning_rate=1.0 / y.size, ridge=EXTRA)
    unchanged = nt.predict.gradient_descent_mse_ensemble(kernel_fn, x, y)(TIMES, xt, "ntk")
    monkeypatch.setattr(inference, "infinite_ensemble_predictor",
                        functools.partial(inference.infinite_ensemble_predictor, ridge=EXTRA))
    predict_fn = nt.predict.gradient_descent_mse_ensemble(kernel_fn, x, y)
    eager = predict_fn(TIMES, xt, "ntk", compute_cov=True)
    traced = jax.jit(lambda a, t: predict_fn(t, a, "ntk", compute_cov=True))(jnp.asarray(xt), jnp.asarray(TIMES))
    for got in (eager, traced):
        assert_close(got, (ref.test_mean, ref.test_covariance))
    assert_far(unchanged, ref.test_mean)


def test_a_ridge_added_inside_gradient_flow_predictor_reaches_gradient_descent_mse_on_the_host_and_under_jit(
        data, monkeypatch):
    """dynamics.gradient_flow_predictor with a ridge ρ = 0.25: with it patched in,
    gradient_descent_mse's train and test outputs at t = 0, 2, 30, ∞ (from f₀ = 0.1 on both)
    are dynamics.gradient_flow_prediction's with that ridge, eagerly and under jit over the kernel
    and the times."""
    x, xt, y = data
    kdd, ktd = kernel_fn(x, None, "ntk"), kernel_fn(xt, x, "ntk")
    ref = dynamics.gradient_flow_prediction(kdd, y, TIMES, ktd, learning_rate=1.0 / y.size, ridge=EXTRA,
                                            f_train_0=np.full(y.shape, 0.1), f_test_0=np.full((M, 2), 0.1))
    unchanged = nt.predict.gradient_descent_mse(kdd, y)(TIMES, 0.1, 0.1, ktd)
    monkeypatch.setattr(dynamics, "gradient_flow_predictor",
                        functools.partial(dynamics.gradient_flow_predictor, ridge=EXTRA))
    eager = nt.predict.gradient_descent_mse(kdd, y)(TIMES, 0.1, 0.1, ktd)
    traced = jax.jit(lambda a, t: nt.predict.gradient_descent_mse(a, y)(t, 0.1, 0.1, ktd))(kdd, jnp.asarray(TIMES))
    for got in (eager, traced):
        assert_close(got, (ref.train, ref.test))
    assert_far(unchanged, ref.train)
