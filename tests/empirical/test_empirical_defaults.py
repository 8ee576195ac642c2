"""Empirical kernels follow neural-tangents' default ``vmap_axes=None``: a
function that mixes the inputs of a batch gets its true NTK without options.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import empirical, stax


def _centred_tanh(W, x):
    # Mixes the batch: every output depends on every input through the mean.
    return jnp.tanh((x - x.mean(0)) @ W)


def _full_jacobian_ntk(f, W, x):
    """Theta = J J^T / k from the Jacobian of the whole batch's outputs (no per-input shortcut)."""
    jac = jax.jacrev(lambda w: f(w, x))(W)  # (n, k, d, k)
    n, k = jac.shape[:2]
    flat = jac.reshape(n, k, -1)
    return jnp.einsum("ikp,jkp->ij", flat, flat) / k


@pytest.mark.parametrize("impl", ["auto", "jacobian", "jvp_vjp"])
def test_default_vmap_axes_gives_the_full_jacobian_ntk(impl):
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.normal(size=(5, 3)))
        W = jnp.asarray(rng.normal(size=(3, 4)))
        want = _full_jacobian_ntk(_centred_tanh, W, x)
        got = empirical.empirical_ntk_fn(_centred_tanh, implementation=impl)(x, None, W)
        # Same float64 products summed in another order: agreement to rounding.
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12, atol=1e-12)
        assert float(jnp.abs(want).max()) > 0.1  # the kernel is not trivially zero


def test_per_input_option_is_still_available_and_differs_for_mixing_functions():
    # vmap_axes=0 promises independence; for this f it sees one input at a time
    # (centred to zero), hence the all-zero NTK the old default returned.
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.normal(size=(5, 3)))
        W = jnp.asarray(rng.normal(size=(3, 4)))
        got = empirical.empirical_ntk_fn(_centred_tanh, vmap_axes=0)(x, None, W)
        np.testing.assert_array_equal(np.asarray(got), 0.0)


def test_empirical_kernel_fn_default_is_also_none():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.normal(size=(5, 3)))
        W = jnp.asarray(rng.normal(size=(3, 4)))
        got = empirical.empirical_kernel_fn(_centred_tanh)(x, None, "ntk", W)
        np.testing.assert_allclose(np.asarray(got), np.asarray(_full_jacobian_ntk(_centred_tanh, W, x)),
                                   rtol=1e-12, atol=1e-12)  # rounding only


def test_stax_networks_keep_the_structured_path_under_the_default():
    # Every stax layer acts on each input separately, so the fast path stays valid.
    net = stax.serial(stax.Dense(16), stax.Relu(), stax.Dense(1))
    x = np.random.default_rng(1).normal(size=(4, 3))
    params = net[0](jax.random.PRNGKey(0), x.shape)[1]
    assert empirical.empirical_ntk_fn(net).implementation_for(x, None, params) == "structured"
