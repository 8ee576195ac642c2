"""``import ntkcourse as nt`` offers neural-tangents' top-level names, with its calling conventions."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkcourse as nt
from ntkcourse import stax

X = np.random.default_rng(0).normal(size=(7, 3))


@pytest.fixture(scope="module")
def network():
    init_fn, apply_fn, kernel_fn = stax.serial(stax.Dense(16, b_std=0.1), stax.Relu(), stax.Dense(2))
    _, params = init_fn(jax.random.PRNGKey(0), X.shape)
    return apply_fn, kernel_fn, params


@pytest.mark.parametrize("name", ["stax", "predict", "batch", "linearize", "taylor_expand", "empirical_ntk_fn",
                                  "empirical_nngp_fn", "empirical_kernel_fn", "empirical_ntk_vp_fn",
                                  "monte_carlo_kernel_fn"])
def test_top_level_name_exists_and_is_callable_or_a_module(name):
    obj = getattr(nt, name)
    assert callable(obj) or name in ("stax", "predict")


def test_linearize_is_callable_at_top_level_and_exact_at_the_initial_parameters(network):
    apply_fn, _, params = network
    # f_lin(params0, x) = f(params0, x): the same forward pass, bit for bit.
    np.testing.assert_array_equal(np.asarray(nt.linearize(apply_fn, params)(params, X)),
                                  np.asarray(apply_fn(params, X)))


def test_ntk_vector_product_equals_the_full_ntk_times_the_vector(network):
    apply_fn, _, params = network
    v = jnp.asarray(np.random.default_rng(1).normal(size=(7, 2)), jnp.float32)
    full = nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0)(X, None, params)  # (7, 7, 2, 2)
    want = jnp.einsum("ijab,jb->ia", full, v)
    got = nt.empirical_ntk_vp_fn(apply_fn, X, None, params)(v)
    # float32 sums in different orders: relative 1e-5 of the largest entry.
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5 * float(jnp.abs(want).max()))


def test_batch_accepts_empirical_ntk_functions(network):
    apply_fn, _, params = network
    ntk_fn = nt.empirical_ntk_fn(apply_fn, vmap_axes=0)
    blocked = nt.batch(ntk_fn, batch_size=3)(X, None, params)
    # Blocks are computed by the same float32 code on fewer rows: equal to float32 rounding.
    np.testing.assert_allclose(blocked, np.asarray(ntk_fn(X, None, params)), rtol=1e-5, atol=1e-6)


def test_batch_accepts_empirical_kernel_functions_with_get(network):
    apply_fn, _, params = network
    kernel_fn = nt.empirical_kernel_fn(apply_fn)
    blocked = nt.batch(kernel_fn, batch_size=4)(X, X[:5], ("nngp", "ntk"), params)
    direct = kernel_fn(X, X[:5], ("nngp", "ntk"), params)
    for name in ("nngp", "ntk"):
        np.testing.assert_allclose(getattr(blocked, name), np.asarray(getattr(direct, name)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch_size,device_count", [(0, -1), (0, 0), (2, 0)])
def test_batch_size_zero_and_device_count_zero_are_accepted(network, batch_size, device_count):
    _, kernel_fn, _ = network
    got = nt.batch(kernel_fn, batch_size=batch_size, device_count=device_count)(X, None, "ntk")
    np.testing.assert_allclose(got, np.asarray(kernel_fn(X, None, "ntk")), rtol=1e-13)  # float64, same recursion
