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
    ~1e-11 on values of O(1); tolerance 1e-8 relative."""
    k, kt, y = problem
    with jax.enable_x64(True):
        predict_fn = nt.predict.gradient_descent_mse(k, y, diag_reg=1e-3)

        def total(t):
            return jnp.sum(predict_fn(t, 0.0, 0.0, kt)[1])

        got = float(jax.grad(total)(1.0))
        h = 1e-5
        want = (float(total(1.0 + h)) - float(total(1.0 - h))) / (2 * h)
    np.testing.assert_allclose(got, want, rtol=1e-8)
