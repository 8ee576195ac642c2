"""ConvTranspose, ConvLocal and DotGeneral: their kernels are those of the finite layers.

A network that is linear in its Gaussian parameters (one affine layer, or one
followed by a constant linear map) has an exactly computable output
covariance: with standard normal parameters theta, E[f(x) f(x')] =
J(x) J(x')^T, the contraction of the Jacobians of ``apply_fn``. That checks
each layer's kernel map against its finite network to float64 round-off,
with no Monte Carlo error. Networks with activations are checked against
neural-tangents (``tests/contract/test_nt_compat_layers_d.py``) and, where
neural-tangents is wrong, against wide random networks here.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax
from ntkcourse.empirical import monte_carlo_kernel_fn

_X = np.random.default_rng(0).normal(size=(2, 4, 3, 2))


def _jacobian_covariance(net, x):
    """J(x) J(x)^T over all parameters for the first output channel, shape
    ``(n, n, S, S)`` with the output's spatial positions flattened (row-major).
    """
    init_fn, apply_fn, _ = net
    with jax.enable_x64(True):
        x = jnp.asarray(x)
        _, params = init_fn(jax.random.PRNGKey(0), x.shape)
        jac = jax.jacobian(lambda p: apply_fn(p, x)[..., 0].reshape(x.shape[0], -1))(params)
        flat = jnp.concatenate([leaf.reshape(leaf.shape[:2] + (-1,)) for leaf in jax.tree_util.tree_leaves(jac)], -1)
        return np.asarray(jnp.einsum("asp,btp->abst", flat, flat))


def _positions_flattened(k):
    """(n1, n2, H, H', W, W') -> (n1, n2, H W, H' W')."""
    n1, n2, h, _, w, _ = k.shape
    return np.asarray(k).transpose(0, 1, 2, 4, 3, 5).reshape(n1, n2, h * w, h * w)


# CIRCULAR in the default suite (the most involved path of each layer; about 2-4 s
# of CPU per case, mostly compilation), the others slow.
@pytest.mark.parametrize("layer, padding", [
    (layer, padding) if padding == "CIRCULAR" else pytest.param(layer, padding, marks=pytest.mark.slow)
    for layer in ("ConvTranspose", "ConvLocal") for padding in ("VALID", "SAME", "CIRCULAR")])
def test_one_layer_kernel_is_the_jacobian_covariance(layer, padding):
    # A strided, non-square filter so that a swapped axis or stride shows.
    net = getattr(stax, layer)(1, (3, 2), (2, 1), padding, W_std=1.3, b_std=0.2)
    got = _positions_flattened(net[2](_X, None, "nngp"))
    np.testing.assert_allclose(got, _jacobian_covariance(net, _X), rtol=1e-12, atol=1e-13)


def test_dot_general_of_a_conv_is_the_jacobian_covariance():
    # Rows of the image combined by a constant, then scaled: sum_h A_h A_h' K(h, h') on both positions, times 1.5^2.
    net = stax.serial(stax.Conv(1, (2, 2), padding="SAME", W_std=1.2, b_std=0.3),
                      stax.DotGeneral(rhs=np.array([1.0, -0.5, 0.0, 2.0]), dimension_numbers=(((1,), (0,)), ((), ()))),
                      stax.DotGeneral(rhs=1.5))
    got = np.asarray(net[2](_X, None, "nngp"))  # (2, 2, 3, 3)
    np.testing.assert_allclose(got, _jacobian_covariance(net, _X), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("layer, padding", [("ConvTranspose", "CIRCULAR"),
                                            pytest.param("ConvTranspose", "VALID", marks=pytest.mark.slow),
                                            pytest.param("ConvLocal", "SAME", marks=pytest.mark.slow)])
def test_diagonal_spatial_is_the_diagonal_of_the_full_kernel(layer, padding):
    # For the circular fold this is the claim that positions folded together
    # are uncorrelated (module docstring of ntkcourse.stax.convolutions).
    net = stax.serial(stax.Conv(2, (2, 2), padding="SAME", b_std=0.1), stax.Relu(),
                      getattr(stax, layer)(2, (3, 2), (2, 1), padding, W_std=1.3, b_std=0.2))
    full = net[2](_X, None, ("nngp", "ntk"))
    diag = net[2](_X, None, ("nngp", "ntk"), diagonal_spatial=True)
    for f in ("nngp", "ntk"):
        np.testing.assert_allclose(np.asarray(getattr(diag, f)),
                                   np.einsum("abiijj->abij", np.asarray(getattr(full, f))), rtol=1e-12, atol=1e-14)


def _two_layer(conv, readout):
    return stax.serial(conv(3, (2, 2), padding="SAME", W_std=1.4, b_std=0.1), stax.Relu(),
                       conv(3, (3, 2), padding="SAME", W_std=1.3, b_std=0.2), stax.Relu(), readout,
                       stax.Dense(1, W_std=1.5))


@pytest.mark.slow  # four networks compiled: about 10 s of CPU
def test_conv_local_and_conv_share_the_flatten_kernel_but_not_the_pooled_one():
    # Novak et al. (2019): without pooling, weight sharing does not change the
    # kernel (Flatten reads only the spatial diagonal, which both layers
    # propagate alike); global average pooling reads the covariances between
    # positions that only shared weights create.
    flat = [_two_layer(c, stax.Flatten())[2](_X, None, ("nngp", "ntk")) for c in (stax.Conv, stax.ConvLocal)]
    for f in ("nngp", "ntk"):
        np.testing.assert_allclose(np.asarray(getattr(flat[0], f)), np.asarray(getattr(flat[1], f)), rtol=1e-12)
    gap = [np.asarray(_two_layer(c, stax.GlobalAvgPool())[2](_X, None, "nngp")) for c in (stax.Conv, stax.ConvLocal)]
    assert np.abs(gap[0] - gap[1]).max() > 0.05 * np.abs(gap[0]).max()


@pytest.mark.slow
def test_wide_conv_local_network_with_pooling_matches_monte_carlo():
    """The kind of network where neural-tangents 0.6.5 is wrong (a shared Conv, then
    ConvLocal with a 3 x 2 filter, ReLU, GAP): 64 draws of 256-channel networks.
    Measured (seed 0): largest deviation 0.61 % of the kernel's largest entry.
    The kernel with the filter read on swapped axes (neural-tangents' error:
    filter (2, 3) here) is 6.6 % away and fails. Tolerance 3 %: Monte Carlo
    error (~1/sqrt(64 * 256) per entry, averaged over outputs) plus O(1/width).
    """
    net = stax.serial(stax.Conv(256, (2, 2), padding="SAME", W_std=1.4, b_std=0.1), stax.Relu(),
                      stax.ConvLocal(256, (3, 2), padding="SAME", W_std=1.3, b_std=0.2), stax.Relu(),
                      stax.GlobalAvgPool(), stax.Dense(256, W_std=1.5))
    x1, x2 = _X, np.random.default_rng(1).normal(size=(2, 4, 3, 2))
    exact = np.asarray(net[2](x1, x2, "nngp"))
    mc = np.asarray(monte_carlo_kernel_fn(net, None, jax.random.PRNGKey(0), 64, progress=False)(x1, x2, "nngp"))
    assert np.abs(mc - exact).max() < 0.03 * np.abs(exact).max()
