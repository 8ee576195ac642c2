"""ntkcourse.inference (and the gradient flow of ntkcourse.dynamics beneath it) inside JAX
transformations: one copy of the formulas, traced or not.

``gp_posterior``, ``infinite_ensemble_predictor`` and ``gradient_flow_predictor`` compute with
NumPy/LAPACK on concrete inputs and with ``jax.numpy``/XLA when an input is a tracer (inside
``jit``, ``vmap``, ``grad``). Each test computes the same quantity both ways and compares.

Kernels: Gram matrices of random features, NTK Θ = ΦΦᵀ and NNGP K = ΦΦᵀ + ΨΨᵀ on 5 training and 3
test rows (12 features: condition numbers below 1e3). Tolerance 1e-11 absolute on outputs of O(1):
the two paths diagonalise or factorise the same small, well-conditioned matrix with different
routines (measured differences ~1e-15), while a dropped ridge, noise or test term moves the
outputs by more than 1e-3.
"""
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse.dynamics import gradient_descent_predictor, gradient_flow_prediction, kernel_regression
from ntkcourse.inference import gp_posterior, infinite_ensemble_prediction, infinite_ensemble_predictor

N, M = 5, 3
TIMES = np.array([0.0, 0.5, 4.0, np.inf])
ATOL = 1e-11


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def k():
    rng = np.random.default_rng(7)
    phi, psi = rng.standard_normal((N + M, 12)) / 3, rng.standard_normal((N + M, 4)) / 2
    ntk, nngp = phi @ phi.T, phi @ phi.T + psi @ psi.T
    tr, te = slice(0, N), slice(N, None)
    return dict(ntk=ntk[tr, tr], ntk_t=ntk[te, tr], nngp=nngp[tr, tr], nngp_t=nngp[te, tr],
                nngp_tt=nngp[te, te], y=rng.standard_normal((N, 2)))


def assert_close(got, want):
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=0, atol=ATOL)


@pytest.mark.parametrize("noise", [0.0, 0.3])
@pytest.mark.parametrize("diagonal", [False, True])
def test_gp_posterior_under_jit_equals_the_eager_posterior(k, noise, diagonal):
    """Mean and covariance (full, or its diagonal when only K_**'s diagonal is given), with and
    without observation noise: jit(gp_posterior) on the same kernels gives the host's values."""
    kss = np.diag(k["nngp_tt"]) if diagonal else k["nngp_tt"]
    want = gp_posterior(k["nngp"], k["y"], k["nngp_t"], kss, noise=noise)
    got = jax.jit(lambda a, y, b, c, s: gp_posterior(a, y, b, c, noise=s))(k["nngp"], k["y"], k["nngp_t"], kss,
                                                                           noise)
    assert_close(got, want)


@pytest.mark.parametrize("ridge", [0.0, 0.2])
def test_the_ensemble_under_jit_equals_the_eager_ensemble_at_times_from_zero_to_infinity(k, ridge):
    """Train and test means and covariances at t = 0, 0.5, 4 and ∞, with and without ridge: jit of
    infinite_ensemble_prediction over traced kernels, targets and times gives the host's values."""
    args = (k["ntk"], k["nngp"], k["y"])
    tests = (k["ntk_t"], k["nngp_t"], k["nngp_tt"])
    want = infinite_ensemble_prediction(*args, TIMES, *tests, learning_rate=0.7, ridge=ridge)
    got = jax.jit(lambda a, b, y, t, c, d, e: infinite_ensemble_prediction(a, b, y, t, c, d, e, learning_rate=0.7,
                                                                           ridge=ridge))(*args, TIMES, *tests)
    assert_close(got, want)


@pytest.mark.parametrize("ridge", [0.0, 0.2])
def test_gradient_flow_under_jit_equals_the_eager_flow_at_times_from_zero_to_infinity(k, ridge):
    """Train and test outputs from non-zero initial outputs at t = 0, 0.5, 4 and ∞, with and without
    ridge: jit of dynamics.gradient_flow_prediction over traced kernels, targets, times and initial
    outputs gives the host's values."""
    f0, f0_test = np.full((N, 2), 0.3), np.full((M, 2), -0.2)

    def flow(a, y, t, b, f, g):
        return gradient_flow_prediction(a, y, t, b, learning_rate=0.7, ridge=ridge, f_train_0=f, f_test_0=g)

    assert_close(jax.jit(flow)(k["ntk"], k["y"], TIMES, k["ntk_t"], f0, f0_test),
                 flow(k["ntk"], k["y"], TIMES, k["ntk_t"], f0, f0_test))


def test_vmap_over_times_of_a_host_predictor_equals_one_call_per_time(k):
    """A predictor built on the host (its eigendecomposition by LAPACK) called under vmap over the
    times: the traced times take jax.numpy over the host's eigenvectors, the results are the
    eager calls' stacked."""
    predict = infinite_ensemble_predictor(k["ntk"], k["nngp"], k["y"], ridge=0.2)
    tests = (k["ntk_t"], k["nngp_t"], k["nngp_tt"])
    got = jax.jit(jax.vmap(lambda t: predict(t, *tests)))(jnp.asarray(TIMES))
    want = [np.stack(parts) for parts in zip(*(predict(t, *tests) for t in TIMES))]
    assert_close(got, want)


def test_vmap_over_noise_levels_equals_one_posterior_per_level(k):
    """gp_posterior under vmap over the observation noise σ² (a traced scalar): each row is the
    eager posterior at that σ²."""
    levels = np.array([0.05, 0.3, 2.0])
    got = jax.jit(jax.vmap(lambda s: gp_posterior(k["nngp"], k["y"], k["nngp_t"], k["nngp_tt"], noise=s)))(levels)
    want = [np.stack(parts) for parts in zip(*(gp_posterior(k["nngp"], k["y"], k["nngp_t"], k["nngp_tt"], noise=s)
                                               for s in levels))]
    assert_close(got, want)


def test_grad_of_the_posterior_mean_in_the_noise_matches_a_central_difference(k):
    """d/dσ² of Σ mean = −Σ K_*(K + σ²I)⁻²y at σ² = 0.3: jax.grad through the traced Cholesky
    against a central difference of the eager posterior, step 1e-5 (truncation ~1e-10, round-off
    ~1e-11 on values of O(1)); tolerance 1e-8 relative."""
    def total(s):
        return jnp.sum(gp_posterior(k["nngp"], k["y"], k["nngp_t"], noise=s).mean)

    h = 1e-5
    eager = [np.sum(gp_posterior(k["nngp"], k["y"], k["nngp_t"], noise=s).mean) for s in (0.3 + h, 0.3 - h)]
    np.testing.assert_allclose(float(jax.jit(jax.grad(total))(0.3)), (eager[0] - eager[1]) / (2 * h), rtol=1e-8)


def test_grad_of_the_ensemble_test_variance_in_time_matches_a_central_difference(k):
    """d/dt of Σ diag Σ(X*, t) at t = 1 (the variance falls as the networks train): jax.grad through
    the traced eigendecomposition path against a central difference of the eager ensemble, step
    1e-5; tolerance 1e-8 relative, as above."""
    predict = infinite_ensemble_predictor(k["ntk"], k["nngp"], k["y"])

    def variance(t):
        return jnp.sum(predict(t, k["ntk_t"], k["nngp_t"], np.diag(k["nngp_tt"])).test_covariance)

    h = 1e-5
    eager = [np.sum(predict(t, k["ntk_t"], k["nngp_t"], np.diag(k["nngp_tt"])).test_covariance)
             for t in (1.0 + h, 1.0 - h)]
    np.testing.assert_allclose(float(jax.jit(jax.grad(variance))(1.0)), (eager[0] - eager[1]) / (2 * h), rtol=1e-8)


def test_traced_inputs_keep_the_shape_checks_and_their_messages(k):
    """What is known while tracing is checked as on the host: a test-train kernel with 4 columns for
    5 training points is refused under jit with the host's message."""
    with pytest.raises(ValueError, match=r"^gp_posterior: `k_test_train` must have shape \(m, n\) with n = 5 "
                                         r"training points, got shape \(3, 4\)\."):
        jax.jit(lambda a: gp_posterior(a, k["y"], k["nngp_t"][:, :4]))(k["nngp"])


@pytest.mark.parametrize("call, message", [
    (lambda k: jax.jit(lambda a: kernel_regression(a, k["y"]))(k["ntk"]),
     "kernel_regression: `k_train_train` is a traced JAX value"),
    (lambda k: jax.jit(lambda y: kernel_regression(k["ntk"], y))(k["y"]),
     "kernel_regression: `y_train` is a traced JAX value"),
    (lambda k: jax.jit(lambda b: kernel_regression(k["ntk"], k["y"], b))(k["ntk_t"]),
     "kernel_regression: `k_test_train` is a traced JAX value"),
    (lambda k: jax.jit(lambda a: gradient_descent_predictor(a, k["y"], 0.1))(k["ntk"]),
     "gradient_descent_predictor: `k_train_train` is a traced JAX value"),
    (lambda k: jax.jit(lambda y: gradient_descent_predictor(k["ntk"], y, 0.1))(k["y"]),
     "gradient_descent_predictor: `y_train` is a traced JAX value"),
    (lambda k: jax.jit(lambda b: gradient_descent_predictor(k["ntk"], k["y"], 0.1)(3, b))(k["ntk_t"]),
     "gradient_descent_predictor: `k_test_train` is a traced JAX value"),
    (lambda k: jax.jit(lambda f: gradient_descent_predictor(k["ntk"], k["y"], 0.1)(3, f_train_0=f))(k["y"]),
     "gradient_descent_predictor: `f_train_0` is a traced JAX value"),
    (lambda k: jax.jit(lambda f: gradient_descent_predictor(k["ntk"], k["y"], 0.1)(3, k["ntk_t"], f_test_0=f))(
        np.zeros((M, 2))), "gradient_descent_predictor: `f_test_0` is a traced JAX value"),
    (lambda k: jax.jit(lambda s: gradient_descent_predictor(k["ntk"], k["y"], 0.1)(s))(3.0),
     "gradient_descent_predictor: `steps` is a traced JAX value"),
], ids=["kernel_regression", "kernel_regression_targets", "kernel_regression_test_kernel",
        "gradient_descent_predictor", "gradient_descent_kernel", "gradient_descent_targets",
        "gradient_descent_test_kernel",
        "gradient_descent_initial_outputs", "gradient_descent_initial_test_outputs"])
def test_host_only_functions_refuse_traced_arguments_naming_themselves(k, call, message):
    """kernel_regression (LAPACK's condition estimate) and gradient descent (whole numbers of steps,
    the stability bound) compute on the host only: under jit they refuse with a TypeError that names
    the function and the traced argument (the kernel, the targets, the test kernel or an initial output,
    each alone), not JAX's conversion error from deep inside."""
    with pytest.raises(TypeError, match="^" + re.escape(message)):
        call(k)


def assert_traces_like_the_host(compute, values, traced):
    """compute(**values) traced by jax.eval_shape with values[traced] abstract (a tracer) and the other inputs
    concrete has the shapes of the host's result, in float64 (x64 mode); with NumPy on the path the tracer would
    raise a conversion error instead."""
    want = compute(**values)
    got = jax.eval_shape(lambda value: compute(**{**values, traced: value}), values[traced])
    assert [(g.shape, g.dtype) for g in got] == [(np.shape(w), np.float64) for w in want]


ENSEMBLE_ARGUMENTS = ("ntk_train_train", "nngp_train_train", "y_train", "t", "ntk_test_train", "nngp_test_train",
                      "nngp_test_test")


@pytest.mark.parametrize("traced", ENSEMBLE_ARGUMENTS)
def test_the_ensemble_traces_when_only_one_input_is_traced(k, traced):
    """Whichever single input is a tracer, the prediction takes jax.numpy (NumPy cannot take a tracer) and has
    the host's shapes and dtypes: jax.eval_shape traces it with that input abstract and the others concrete.
    The test variances (nngp_test_test's diagonal) go through einsum, where NumPy would meet the traced
    VᵀKV of a traced nngp_train_train (its other uses are operators, which a tracer takes over); a traced
    ntk_train_train with concrete times has traced eigenvalues, which the conditioning warning cannot read."""
    values = dict(zip(ENSEMBLE_ARGUMENTS, (k["ntk"], k["nngp"], k["y"], TIMES, k["ntk_t"], k["nngp_t"],
                                           np.diag(k["nngp_tt"]))))

    assert_traces_like_the_host(functools.partial(infinite_ensemble_prediction, learning_rate=0.7, ridge=0.2),
                                values, traced)


@pytest.mark.parametrize("traced", ["k_train_train", "y_train", "k_test_train", "k_test_test", "noise"])
def test_the_posterior_traces_when_only_one_input_is_traced(k, traced):
    """As for the ensemble: gp_posterior with one tracer among concrete inputs has the host's shapes."""
    values = dict(k_train_train=k["nngp"], y_train=k["y"], k_test_train=k["nngp_t"], k_test_test=k["nngp_tt"],
                  noise=0.3)

    assert_traces_like_the_host(gp_posterior, values, traced)


@pytest.mark.parametrize("traced", ["k_train_train", "y_train", "t", "k_test_train", "f_train_0", "f_test_0"])
def test_gradient_flow_traces_when_only_one_input_is_traced(k, traced):
    """As for the ensemble: dynamics.gradient_flow_prediction from non-zero initial outputs with one tracer
    among concrete inputs takes jax.numpy and has the host's shapes (a traced k_train_train alone has traced
    eigenvalues, which the conditioning warning cannot read)."""
    values = dict(k_train_train=k["ntk"], y_train=k["y"], t=TIMES, k_test_train=k["ntk_t"],
                  f_train_0=np.full((N, 2), 0.3), f_test_0=np.full((M, 2), -0.2))

    assert_traces_like_the_host(functools.partial(gradient_flow_prediction, learning_rate=0.7, ridge=0.2),
                                values, traced)


def test_vmap_over_training_kernels_alone_equals_one_flow_per_kernel(k):
    """jax.vmap (without jit) over a batch of two training kernels, Θ and 2Θ, with concrete targets and time:
    the eigenvectors are batched while the targets stay concrete (outside jit nothing stages them), so the
    choice of jax.numpy must come from the eigenvectors themselves; each row equals the eager gradient flow
    for that kernel."""
    kernels = np.stack([k["ntk"], 2.0 * k["ntk"]])

    def flow(kernel):
        return gradient_flow_prediction(kernel, k["y"], 1.5, learning_rate=0.7, ridge=0.2).train

    np.testing.assert_allclose(np.asarray(jax.vmap(flow)(kernels)), np.stack([flow(kernel) for kernel in kernels]),
                               rtol=0, atol=ATOL)
