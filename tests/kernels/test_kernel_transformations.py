"""kernel_fn under JAX transformations, as neural-tangents users write them:
``jit`` with a static ``get``, ``vmap`` over inputs, ``grad`` with respect to
inputs and to hyper-parameters given as JAX values (64-bit mode on throughout:
finite differences need float64).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax

X = np.random.default_rng(0).normal(size=(5, 3))
Y = np.random.default_rng(1).normal(size=(5, 1))


def _mlp(W_std=1.5):
    return stax.serial(stax.Dense(8, W_std=W_std, b_std=0.1), stax.Relu(), stax.Dense(1, W_std=W_std))[2]


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def test_jit_with_static_get_equals_the_eager_kernel():
    kernel_fn = _mlp()
    got = jax.jit(kernel_fn, static_argnames="get")(jnp.asarray(X), None, "ntk")
    # Same float64 recursion compiled in another program: rounding only.
    np.testing.assert_allclose(np.asarray(got), np.asarray(kernel_fn(X, None, "ntk")), rtol=1e-12)


def test_vmap_over_inputs_gives_each_inputs_own_kernel():
    kernel_fn = _mlp()
    got = jax.vmap(lambda a: kernel_fn(a[None], None, "nngp")[0, 0])(jnp.asarray(X))
    np.testing.assert_allclose(np.asarray(got), np.diag(np.asarray(kernel_fn(X, None, "nngp"))), rtol=1e-12)


def test_grad_with_respect_to_inputs_matches_finite_differences():
    kernel_fn = _mlp()

    def total(a):
        return jnp.sum(kernel_fn(a, jnp.asarray(X[:2]), "ntk"))

    grad = np.asarray(jax.grad(total)(jnp.asarray(X)))
    h, e = 1e-6, np.zeros_like(X)
    e[1, 2] = h
    fd = (float(total(jnp.asarray(X + e))) - float(total(jnp.asarray(X - e)))) / (2 * h)
    assert grad[1, 2] == pytest.approx(fd, rel=1e-6)  # central difference error O(h^2), rounding O(1e-16/h)


def test_hyper_parameter_given_as_a_jax_array_equals_the_float():
    got = _mlp(jnp.sqrt(2.0))(X, None, "nngp")
    np.testing.assert_allclose(np.asarray(got), np.asarray(_mlp(2**0.5)(X, None, "nngp")), rtol=1e-15)


def _negative_log_marginal_likelihood(W_std):
    k = _mlp(W_std)(jnp.asarray(X), None, "nngp") + 1e-2 * jnp.eye(len(X))
    chol = jnp.linalg.cholesky(k)
    alpha = jax.scipy.linalg.cho_solve((chol, True), jnp.asarray(Y))
    return 0.5 * jnp.sum(Y * alpha) + jnp.sum(jnp.log(jnp.diag(chol)))


def test_grad_of_the_marginal_likelihood_with_respect_to_W_std_matches_finite_differences():
    grad = float(jax.grad(_negative_log_marginal_likelihood)(1.3))
    h = 1e-6
    nll = _negative_log_marginal_likelihood
    fd = (float(nll(1.3 + h)) - float(nll(1.3 - h))) / (2 * h)
    assert grad == pytest.approx(fd, rel=1e-6)  # central differences in float64


def test_a_gradient_step_on_W_std_decreases_the_negative_log_marginal_likelihood():
    w = 1.3
    step = w - 0.05 * float(jax.grad(_negative_log_marginal_likelihood)(w))
    assert float(_negative_log_marginal_likelihood(step)) < float(_negative_log_marginal_likelihood(w))


def test_inputs_closed_over_inside_jit_give_the_eager_kernel():
    """neural-tangents' trainability notebook calls kernel_fn inside its jitted
    experiment on data arrays it closes over: concrete JAX arrays met while
    tracing. The input check must not stage a boolean into the caller's
    program (it raised TracerBoolConversionError). Same float64 recursion
    compiled in another program: equal to rounding (1e-12 relative)."""
    _, _, kernel_fn = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))
    x = jnp.asarray(X)
    np.testing.assert_allclose(np.asarray(jax.jit(lambda: kernel_fn(x, None, "nngp"))()),
                               np.asarray(kernel_fn(x, None, "nngp")), rtol=1e-12)


def test_a_non_finite_input_closed_over_inside_jit_is_still_refused():
    _, _, kernel_fn = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))
    x = jnp.asarray(X).at[2, 1].set(jnp.nan)
    with pytest.raises(ValueError, match="`x1` contains NaN"):
        jax.jit(lambda: kernel_fn(x, None, "nngp"))()
