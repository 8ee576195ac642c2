"""Padded sequences and images through the pooling and reshaping layers
(``AvgPool``, ``SumPool``, ``Flatten``, ``GlobalAvgPool``, ``GlobalSumPool``),
after ``Dense`` or ``Conv``: the kernel is that of the finite network given
the same ``mask_constant``.

A ``Dense`` layer followed by one of these is linear in its Gaussian
parameters, so its NTK is exactly the Jacobian covariance ``J(x) J(x')^T``
of ``apply_fn(params, x, mask_constant=C)`` (no Monte Carlo error): this
checks which steps each finite layer pools over against its kernel.
``Flatten``'s kernel is the mean over the flattened features of their
covariances. Values against neural-tangents: ``tests/contract/test_nt_compat_layers_e.py``
(sequences) and ``test_nt_compat_layers_f.py`` (images).
"""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax

C = 7.0  # the padding value
X = np.random.default_rng(3).normal(size=(3, 6, 2))
X[0, 4:], X[2, 2:] = C, C  # 4, 6 and 2 real steps


def _jacobian_covariance(net, x, mask_constant=C, params=None):
    """``J_p(x) . J_q(x')`` for every pair of outputs p, q (flattened per input), shape ``(n, n, P, P)``,
    at ``params`` (default: standard normal ones drawn by NumPy in ``init_fn``'s structure; the networks
    here are linear in their parameters, so ``J`` does not depend on them).
    """
    init_fn, apply_fn, _ = net
    with jax.enable_x64(True):
        x = jnp.asarray(x)
        if params is None:
            # traced, not drawn: jax.random compiles anew for every new shape (about 0.5 s of CPU each)
            shapes = jax.eval_shape(lambda key: init_fn(key, x.shape)[1], jax.random.PRNGKey(0))
            rng = np.random.default_rng(0)
            params = jax.tree_util.tree_map(lambda leaf: jnp.asarray(rng.normal(size=leaf.shape)), shapes)
        # one compilation instead of op-by-op dispatch
        jac = jax.jit(jax.jacobian(lambda p: apply_fn(p, x, mask_constant=mask_constant).reshape(x.shape[0], -1)))(
            params)
        flat = jnp.concatenate([leaf.reshape(leaf.shape[:2] + (-1,)) for leaf in jax.tree_util.tree_leaves(jac)], -1)
        return np.asarray(jnp.einsum("asp,btp->abst", flat, flat))


# GlobalAvgPool (its apply_fn averaged every step before) and Flatten in the
# default suite, the window pools and the global sum slow (about 1 s of CPU each;
# neural-tangents' values for them: tests/contract/test_nt_compat_layers_e.py).
@pytest.mark.parametrize("readout", [
    "GlobalAvgPool", "Flatten",
    pytest.param("GlobalSumPool", marks=pytest.mark.slow),
    pytest.param("AvgPool", marks=pytest.mark.slow),
    pytest.param("SumPool", marks=pytest.mark.slow),
])
def test_padded_kernel_is_the_jacobian_covariance_of_the_padded_finite_network(readout):
    layer = {"AvgPool": lambda: stax.AvgPool((2,), (2,), "SAME"), "SumPool": lambda: stax.SumPool((3,))}.get(
        readout, getattr(stax, readout))()
    net = stax.serial(stax.Dense(1, W_std=1.3, b_std=0.2), layer)
    ntk = np.asarray(net[2](X, None, "ntk", mask_constant=C))
    jj = _jacobian_covariance(net, X)
    if readout == "Flatten":
        # one feature per step (one channel): the mean of the features' covariances
        want = np.einsum("abpp->ab", jj) / jj.shape[-1]
    elif readout.startswith("Global"):
        want = jj[..., 0, 0]
    else:
        want = jj  # (n, n, T', T'): zero where either output step is padding
    # Exact identities: float64 round-off only.
    np.testing.assert_allclose(ntk.reshape(want.shape), want, rtol=1e-12, atol=1e-13)


def test_a_real_step_whose_hidden_activation_is_exactly_zero_keeps_its_place_in_the_ntk():
    # Dense(1) without bias -> GlobalAvgPool is linear in W, so its NTK is J J^T at any W. At W = (w, w, v)
    # the real step (1, -1, 0) of input 0 has Dense output exactly 0 = mask_constant: the finite network
    # must still average over it (before, GlobalAvgPool re-read it as padding and dropped it).
    x = np.random.default_rng(8).normal(size=(3, 6, 3))
    x[:, 4:] = 0.0  # 4 real steps each
    x[0, 1] = (1.0, -1.0, 0.0)
    dense = stax.Dense(1, W_std=1.3)
    net = stax.serial(dense, stax.GlobalAvgPool())
    with jax.enable_x64(True):
        params = [(jnp.asarray([[0.7], [0.7], [-1.1]]), None), ()]  # float64, as the Jacobian
        assert float(dense[1](params[0], jnp.asarray(x))[0, 1, 0]) == 0.0
    jj = _jacobian_covariance(net, x, mask_constant=0.0, params=params)[..., 0, 0]
    ntk = np.asarray(net[2](x, None, "ntk", mask_constant=0.0))
    # Exact identity: float64 round-off only.
    np.testing.assert_allclose(ntk, jj, rtol=1e-12, atol=1e-13)


# Branches whose masks differ: a window of 3 centred one step later than two windows of 2 (4 of 6 steps real
# in input 0: the first branch's last output step is padding, the second's real). The combination is real
# where any branch is (neural-tangents' rule; tests/contract/test_nt_compat_masks_g.py), padded branches
# contribute zero there, in the finite network and in the kernel.
# FanInSum in the default suite (2.7 s of CPU), FanInConcat slow (its masks are also checked in the default
# suite by tests/kernels/test_stax_masks_out_of_band.py and the contract test above).
@pytest.mark.parametrize("fan_in", ["FanInSum", pytest.param("FanInConcat", marks=pytest.mark.slow)])
def test_branches_with_different_masks_combine_as_in_the_finite_network(fan_in):
    net = stax.serial(stax.FanOut(2),
                      stax.parallel(stax.Conv(1, (3,), W_std=1.3, b_std=0.2),
                                    stax.serial(stax.Conv(1, (2,), b_std=0.1), stax.AvgPool((2,)))),
                      getattr(stax, fan_in)(), stax.GlobalAvgPool())
    ntk = np.asarray(net[2](X, None, "ntk", mask_constant=C))
    jj = _jacobian_covariance(net, X)
    # One channel per branch; a concatenation's kernel is the mean over its two channels (no cross terms:
    # the branches have their own parameters).
    want = jj[..., 0, 0] if fan_in == "FanInSum" else (jj[..., 0, 0] + jj[..., 1, 1]) / 2
    # Exact identities: float64 round-off only.
    np.testing.assert_allclose(ntk, want, rtol=1e-12, atol=1e-13)


def test_global_avg_pool_apply_averages_the_real_steps():
    # The three sequences have 4, 6 and 2 real steps; entries equal to C inside
    # a real step count as zero, as in kernel_fn.
    x = X.copy()
    x[1, 0, 1] = C
    _, apply_fn, _ = stax.GlobalAvgPool()
    with jax.enable_x64(True):
        out = np.asarray(apply_fn((), jnp.asarray(x), mask_constant=C))
    real = np.where(x == C, 0.0, x)
    want = np.stack([real[0, :4].mean(0), real[1].mean(0), real[2, :2].mean(0)])
    np.testing.assert_allclose(out, want, rtol=1e-14)


def test_layers_without_a_masked_apply_refuse_mask_constant():
    # Before, apply_fn passed the padding on as data while kernel_fn refused it.
    _, apply_fn, _ = stax.DotGeneral(rhs=2.0)
    with pytest.raises(ValueError, match=r"DotGeneral: apply_fn received mask_constant=7.0"):
        apply_fn((), jnp.asarray(X), mask_constant=C)


def test_a_layer_without_a_masked_apply_inside_a_network_refuses_the_padded_activations():
    # The masks reach it from the layers before (out of band), not as mask_constant.
    _, apply_fn, _ = stax.serial(stax.Dense(2), stax.DotGeneral(rhs=2.0))
    params = [(jnp.ones((2, 2)), None), ()]
    with pytest.raises(ValueError, match=r"^DotGeneral: apply_fn received the activations of padded inputs "
                                         r"\(apply_fn\(\.\.\., mask_constant=\.\.\.\) of the network\)"):
        apply_fn(params, jnp.asarray(X), mask_constant=C)


IMAGES = np.random.default_rng(4).normal(size=(3, 5, 4, 2))
IMAGES[0, 3:], IMAGES[1, :, 2:], IMAGES[2, 1, 1, 0] = C, C, C  # rows, columns, one entry of a real pixel


# One padding and readout in the default suite (about 2 s of CPU); the others slow.
@pytest.mark.parametrize("conv, readout", [
    (dict(strides=(2, 1), padding="CIRCULAR"), "GlobalAvgPool"),
    pytest.param(dict(padding="SAME"), "AvgPool", marks=pytest.mark.slow),
    pytest.param(dict(strides=(1, 2)), "Flatten", marks=pytest.mark.slow),
    pytest.param(dict(padding="SAME"), "GlobalSumPool", marks=pytest.mark.slow),
    # neural-tangents 0.6.5 raises here (its pooling masks take 'VALID' or 'SAME'); computed with SAME's geometry
    pytest.param(dict(strides=(2, 1)), "CircularAvgPool", marks=pytest.mark.slow),
])
def test_padded_image_kernel_is_the_jacobian_covariance_of_the_padded_finite_network(conv, readout):
    # A Conv with one output channel and a pooling readout is linear in its parameters, so its NTK is J J^T.
    layer = {"AvgPool": lambda: stax.AvgPool((2, 2), (1, 2), "SAME"),
             "CircularAvgPool": lambda: stax.AvgPool((2, 3), padding="CIRCULAR")}.get(
        readout, lambda: getattr(stax, readout)())()
    net = stax.serial(stax.Conv(1, (2, 2), W_std=1.3, b_std=0.2, **conv), layer)
    ntk = np.asarray(net[2](IMAGES, None, "ntk", mask_constant=C))
    jj = _jacobian_covariance(net, IMAGES)
    if readout == "Flatten":
        want = np.einsum("abpp->ab", jj) / jj.shape[-1]  # one channel: the mean over the pixels' covariances
    elif readout.startswith("Global"):
        want = jj[..., 0, 0]
    else:  # (n, n, H, H', W, W') against the pixels' (n, n, HW, H'W'): zero where either pixel is padding
        h, w = net[0](jax.random.PRNGKey(0), IMAGES.shape)[0][1:3]
        want = np.asarray(jj).reshape(3, 3, h, w, h, w).transpose(0, 1, 2, 4, 3, 5)
    # Exact identities: float64 round-off only.
    np.testing.assert_allclose(ntk.reshape(want.shape), want, rtol=1e-12, atol=1e-13)


def test_padded_nchw_image_kernel_is_the_jacobian_covariance_of_the_padded_finite_network():
    # NCHW Conv and a global pool with the channels at axis 1: apply_fn reads the masks over that axis (before:
    # refused, naming the layer); kernel_fn computes padded inputs in every layout.
    net = stax.serial(stax.Conv(1, (2, 2), W_std=1.3, b_std=0.2, padding="SAME",
                                dimension_numbers=("NCHW", "OIHW", "NCHW")), stax.GlobalAvgPool(channel_axis=1))
    x = IMAGES.transpose(0, 3, 1, 2)
    ntk = np.asarray(net[2](x, None, "ntk", mask_constant=C))
    # Exact identity (a network linear in its parameters): float64 round-off only.
    np.testing.assert_allclose(ntk, _jacobian_covariance(net, x)[..., 0, 0], rtol=1e-12, atol=1e-13)


def test_a_masked_layer_given_activations_in_another_layout_is_refused_naming_the_layer():
    # An NCHW Conv followed by an AvgPool taking channels last: kernel_fn refuses it, and so does apply_fn.
    net = stax.serial(stax.Conv(2, (2, 2), dimension_numbers=("NCHW", "OIHW", "NCHW")), stax.AvgPool((2, 2)))
    x = jnp.asarray(IMAGES.transpose(0, 3, 1, 2))
    params = [(jnp.ones((2, 2, 2, 2)), None), ()]  # OIHW
    with pytest.raises(ValueError, match=re.escape(
            "AvgPool: apply_fn(..., mask_constant=...): the activations reaching this layer keep their batch and "
            "channel axes at (batch_axis, channel_axis) = (0, 1), but the layer takes them at batch first, "
            "channels last; give the layer the layout of its inputs.")):
        net[1](params, x, mask_constant=C)
