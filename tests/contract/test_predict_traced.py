"""``nt.predict.gradient_descent_mse`` inside JAX transformations, as
neural-tangents users call it: ``vmap`` over times, the kernel itself traced
(built inside ``jit`` or a ``lax.scan`` over depths, as in neural-tangents'
trainability notebook), ``grad`` with respect to time. The traced path uses
the same closed form (``dynamics.flow_coefficients``) on JAX arrays; its
values are the eager path's to rounding.

Tolerance: the two paths diagonalise the same well-conditioned kernel
(ridge 1e-3 of its mean diagonal, condition number < 1e4) with different
eigh routines; the outputs are O(1) and agree to ~1e-14 (measured 7e-15):
atol 1e-11 leaves room, while a wrong time scale, a dropped ridge or a
missing test term moves them by > 1e-3.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkcourse as nt

TIMES = (0.0, 1.0, 10.0, 1e3, np.inf)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x, xt, y = rng.normal(size=(12, 4)), rng.normal(size=(5, 4)), rng.normal(size=(12, 2))
    kernel_fn = nt.stax.serial(nt.stax.Dense(8, b_std=0.1), nt.stax.Relu(), nt.stax.Dense(1))[2]
    with jax.enable_x64(True):
        k, kt = np.asarray(kernel_fn(x, None, "ntk")), np.asarray(kernel_fn(xt, x, "ntk"))
    return k, kt, y


def eager(k, kt, y):
    predict_fn = nt.predict.gradient_descent_mse(k, y, diag_reg=1e-3)
    outs = [predict_fn(t, 0.0, 0.0, kt) for t in TIMES]
    return np.stack([np.asarray(o[0]) for o in outs]), np.stack([np.asarray(o[1]) for o in outs])


def test_vmap_over_times_equals_one_call_per_time(problem):
    k, kt, y = problem
    with jax.enable_x64(True):
        predict_fn = nt.predict.gradient_descent_mse(k, y, diag_reg=1e-3)
        train, test = jax.vmap(lambda t: predict_fn(t, 0.0, 0.0, kt))(jnp.asarray(TIMES))
        want_train, want_test = eager(k, kt, y)
    np.testing.assert_allclose(np.asarray(train), want_train, rtol=0, atol=1e-11)
    np.testing.assert_allclose(np.asarray(test), want_test, rtol=0, atol=1e-11)


def test_a_kernel_traced_inside_jit_gives_the_eager_predictions(problem):
    k, kt, y = problem

    def inside(kernel):
        predict_fn = nt.predict.gradient_descent_mse(kernel, y, diag_reg=1e-3)
        return jax.vmap(lambda t: predict_fn(t, 0.0, 0.0, kt))(jnp.asarray(TIMES))

    with jax.enable_x64(True):
        train, test = jax.jit(inside)(jnp.asarray(k))
        want_train, want_test = eager(k, kt, y)
    np.testing.assert_allclose(np.asarray(train), want_train, rtol=0, atol=1e-11)
    np.testing.assert_allclose(np.asarray(test), want_test, rtol=0, atol=1e-11)


def test_grad_with_respect_to_time_matches_a_central_difference(problem):
    """Central difference with step 1e-5 at t = 1: truncation ~1e-10, round-off
    ~1e-11 on values of O(1); tolerance 1e-8 relative.
    """
    k, kt, y = problem
    with jax.enable_x64(True):
        predict_fn = nt.predict.gradient_descent_mse(k, y, diag_reg=1e-3)

        def total(t):
            return jnp.sum(predict_fn(t, 0.0, 0.0, kt)[1])

        got = float(jax.grad(total)(1.0))
        h = 1e-5
        want = (float(total(1.0 + h)) - float(total(1.0 - h))) / (2 * h)
    np.testing.assert_allclose(got, want, rtol=1e-8)


# gp_inference and gradient_descent_mse_ensemble: under the caller's trace the
# same inference.gp_posterior (Cholesky) and infinite_ensemble_predictor (eigh)
# compute with jax.numpy instead of NumPy/LAPACK. Same tolerance argument as
# above: O(1) outputs, ridge 1e-3.

def _mlp(W_std=1.0):
    return nt.stax.serial(nt.stax.Dense(8, W_std=W_std, b_std=0.1), nt.stax.Relu(), nt.stax.Dense(1, W_std=W_std))[2]


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(1)
    return rng.normal(size=(10, 3)), rng.normal(size=(4, 3)), rng.normal(size=(10, 2))


def _assert_gaussians_equal(got, want):
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g.mean), np.asarray(w.mean), rtol=0, atol=1e-11)
        np.testing.assert_allclose(np.asarray(g.covariance), np.asarray(w.covariance), rtol=0, atol=1e-11)


def test_gp_inference_inside_jit_gives_the_eager_posteriors(inputs):
    x, xt, y = inputs
    with jax.enable_x64(True):
        kdd, ktd, ktt = _mlp()(x, None), _mlp()(xt, x), _mlp()(xt, None)
        want = nt.predict.gp_inference(kdd, y, diag_reg=1e-3)(("nngp", "ntk"), ktd, ktt)
        got = jax.jit(lambda a, b, c, targets: nt.predict.gp_inference(a, targets, diag_reg=1e-3)(
            ("nngp", "ntk"), b, c))(kdd, ktd, ktt, jnp.asarray(y))
    _assert_gaussians_equal(got, want)


def test_the_ensemble_inside_jit_over_test_inputs_and_times_gives_the_eager_predictions(inputs):
    x, xt, y = inputs
    with jax.enable_x64(True):
        predict_fn = nt.predict.gradient_descent_mse_ensemble(_mlp(), x, y, diag_reg=1e-3)
        want = predict_fn(jnp.asarray(TIMES), xt, ("nngp", "ntk"), compute_cov=True)
        got = jax.jit(lambda a, t: predict_fn(t, a, ("nngp", "ntk"), compute_cov=True))(jnp.asarray(xt),
                                                                                     jnp.asarray(TIMES))
    _assert_gaussians_equal(got, want)


def test_training_kernels_computed_inside_a_trace_are_not_kept_after_it(inputs):
    """With the training inputs traced, the training kernels are tracers of that
    trace: cached, they would leak into the next (eager) call.
    """
    x, xt, y = inputs
    with jax.enable_x64(True):
        predict_fn = nt.predict.gradient_descent_mse_ensemble(_mlp(), jnp.asarray(x), y, diag_reg=1e-3)
        inside = jax.jit(lambda t: predict_fn(t, xt, "ntk"))(1.0)
        after = predict_fn(1.0, xt, "ntk")
    np.testing.assert_allclose(np.asarray(inside), np.asarray(after), rtol=0, atol=1e-11)


def test_grad_of_ensemble_predictions_with_respect_to_W_std_matches_a_central_difference(inputs):
    """Central difference with step 1e-6 in float64: truncation ~1e-12, round-off ~1e-10 relative."""
    x, xt, y = inputs

    def total(w):
        kernel_fn = nt.stax.serial(nt.stax.Dense(4, W_std=w, b_std=0.1), nt.stax.Relu(), nt.stax.Dense(1))[2]
        return jnp.sum(nt.predict.gradient_descent_mse_ensemble(kernel_fn, x, y, diag_reg=1e-3)(1.0, xt, "ntk"))

    with jax.enable_x64(True):
        value_and_grad = jax.jit(jax.value_and_grad(total))
        got = float(value_and_grad(1.3)[1])
        h = 1e-6
        want = (float(value_and_grad(1.3 + h)[0]) - float(value_and_grad(1.3 - h)[0])) / (2 * h)
    np.testing.assert_allclose(got, want, rtol=1e-7)
