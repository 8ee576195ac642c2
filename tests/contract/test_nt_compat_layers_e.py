"""Issue 19, part E: neural-tangents' ``s`` argument (standard parameterisation)
and kernels in other layouts (``dimension_numbers`` such as ``'NCHW'``,
``batch_axis``/``channel_axis`` of ``Dense`` and the pools, ``Flatten``'s
batch axes), against neural-tangents 0.6.5 (float64 values from
``tests/oracle/make_compat_reference_e.py``, networks in
``tests/oracle/compat_cases_e.py``, parameters in ``tests/data/nt_params_e.npz``)
and against the exact Jacobian covariance of finite layers.

Tolerances: kernels 1e-9 relative to neural-tangents (the same sums in float64
in another order: measured below 5e-15, while a wrong ``s``, axis or window
moves values by 1e-1 or more); finite outputs 1e-10 relative (the same float64
parameters through the same operations); Jacobian covariances 1e-12 (exact
identities, round-off only).
"""
import json
import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax
from ntkcourse.stax import layer_spec

sys.path.insert(0, str(Path(__file__).parents[1] / "oracle"))
from compat_cases_e import CASES, MASK_CONSTANT, MASKED, PARAMS, build, inputs  # noqa: E402
from compat_checks import assert_padded_kernels_match  # noqa: E402
from compat_params import outputs_with_their_parameters  # noqa: E402

DATA = Path(__file__).parents[1] / "data"
REF = json.loads((DATA / "nt_compat_reference_e.json").read_text())
REF_MASKED = json.loads((DATA / "nt_compat_reference_e_masked.json").read_text())
ARRAYS = np.load(DATA / "nt_params_e.npz")

# In the default suite: s through two Convs, a Flatten and a Dense, and the
# batch axis second with channels first through Dense and global pooling (the
# others are slow: each case compiles its own programs; NCHW convolutions are
# checked in the default suite against their NHWC twins below).
FAST = {"conv_s_flatten", "global_pool_channels_first"}
FAST_PARAMS = {"avgpool_channel_first"}
# Padded sequences: slow (GlobalAvgPool's and Flatten's masks are checked in
# the default suite against their finite networks, tests/kernels/test_stax_pool_masks.py).
FAST_MASKED = set()


def _params(names, fast):
    return [n if n in fast else pytest.param(n, marks=pytest.mark.slow) for n in sorted(names)]


@pytest.mark.parametrize("name", _params(CASES, FAST))
def test_kernels_match_neural_tangents(name):
    kind, spec = CASES[name]
    x1, x2 = inputs(kind)
    k = build(stax, spec)[2](x1, x2, ("nngp", "ntk", "cov1"))
    for field in ("nngp", "ntk", "cov1"):
        want = np.asarray(REF[name][field], dtype=float)
        np.testing.assert_allclose(np.asarray(getattr(k, field)), want, rtol=1e-9,
                                   atol=1e-12 * np.abs(want).max(), err_msg=field)


@pytest.mark.parametrize("name", _params(MASKED, FAST_MASKED))
def test_padded_sequences_match_neural_tangents(name):
    # Pairs (x1, x2) and x1 with itself, both with mask_constant.
    kind, spec = MASKED[name]
    x1, x2 = inputs(kind)
    assert_padded_kernels_match(build(stax, spec)[2], x1, x2, REF_MASKED[name], MASK_CONSTANT)


@pytest.mark.parametrize("name", _params(PARAMS, FAST_PARAMS))
def test_neural_tangents_parameters_give_its_outputs(name):
    # Parameter shapes with s (s_out * out_chan channels; ConvLocal keeps out_chan)
    # and the output's 1/sqrt(s_in); pools over the axes other than batch and channels.
    kind, spec = PARAMS[name]
    x1, _ = inputs(kind)
    out = outputs_with_their_parameters(build(stax, spec), x1, ARRAYS, name)
    want = ARRAYS[f"{name}/output"]
    np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())


_X = np.random.default_rng(1).normal(size=(2, 4, 3, 2))


def _ntk_by_jacobian(net, x):
    """J(x) J(x)^T over all parameters of the first output channel, spatial
    positions flattened row-major: the exact NTK of a network linear in its parameters.
    """
    init_fn, apply_fn, _ = net
    with jax.enable_x64(True):
        x = jnp.asarray(x)
        _, params = init_fn(jax.random.PRNGKey(0), x.shape)
        jac = jax.jit(jax.jacobian(lambda p: apply_fn(p, x)[..., 0].reshape(x.shape[0], -1)))(params)
        flat = jnp.concatenate([leaf.reshape(leaf.shape[:2] + (-1,)) for leaf in jax.tree_util.tree_leaves(jac)], -1)
        return np.asarray(jnp.einsum("asp,btp->abst", flat, flat))


def _flat_positions(k):
    n1, n2, h, _, w, _ = k.shape
    return np.asarray(k).transpose(0, 1, 2, 4, 3, 5).reshape(n1, n2, h * w, h * w)


# Slow (2-4 s of CPU each, mostly compiling the Jacobian); s of Conv and Dense is
# checked in the default suite against neural-tangents (conv_s_flatten).
@pytest.mark.slow
@pytest.mark.parametrize("layer", ["Conv", "ConvTranspose", "ConvLocal"])
def test_standard_ntk_with_s_is_the_jacobian_covariance_of_the_finite_layer(layer):
    # f = (W * x) / sqrt(s_in) + b with W, b as stored: the NTK is the sum over
    # patches of x x' / s_in plus 1, which the kernel writes as
    # (C f / s_in) * (window average of the input kernel) + 1.
    net = getattr(stax, layer)(2, (3, 2), (2, 1), "SAME", W_std=1.3, b_std=0.2, parameterization="standard",
                               s=(3, 2))
    got = _flat_positions(net[2](_X, None, "ntk"))
    np.testing.assert_allclose(got, _ntk_by_jacobian(net, _X), rtol=1e-12, atol=1e-13)


@pytest.mark.slow
def test_standard_dense_ntk_with_s_is_the_jacobian_covariance():
    x = _X.reshape(2, -1)
    net = stax.Dense(3, W_std=1.3, b_std=0.2, parameterization="standard", s=(4, 2))
    got = np.asarray(net[2](x, None, "ntk"))
    np.testing.assert_allclose(got, _ntk_by_jacobian(net, x)[..., 0, 0], rtol=1e-12)


def test_structured_rule_of_a_standard_layer_scales_by_one_over_s_in():
    # z = patches(x) W / sqrt(s_in) + b: c_w^2 = 1 / s_in, c_b^2 = 1 (the rule's scales).
    for net in (stax.Dense(2, b_std=0.1, parameterization="standard", s=(3, 1)),
                stax.Conv(2, (2,), b_std=0.1, parameterization="standard", s=(3, 1))):
        assert layer_spec(net).structured.scales(5) == (1 / 3, 1.0)


@pytest.mark.slow  # 1-2 s of CPU (two empirical NTK compilations); the rule's scales are checked above
def test_structured_empirical_ntk_reads_s():
    # The structured implementation scales each affine layer's patch products
    # by 1/s_in in the standard parameterisation; the Jacobian contraction is
    # the definition. Both sum the same float64 products (1e-12).
    import ntkcourse as nt

    init_fn, apply_fn, _ = stax.serial(stax.Dense(5, W_std=1.3, b_std=0.2, parameterization="standard", s=(1, 3)),
                                       stax.Relu(), stax.Dense(2, b_std=0.1, parameterization="standard", s=(3, 1)))
    x = _X.reshape(2, -1)
    with jax.enable_x64(True):
        _, params = init_fn(jax.random.PRNGKey(0), x.shape)
        structured = nt.empirical_ntk_fn(apply_fn, implementation="structured")(x, None, params)
        jacobian = nt.empirical_ntk_fn(apply_fn, implementation="jacobian")(x, None, params)
    np.testing.assert_allclose(np.asarray(structured), np.asarray(jacobian), rtol=1e-12)


def test_s_out_widens_the_layer_and_s_in_scales_the_weights_variance():
    # W ~ N(0, W_std^2 s_in / n_in), s_out * out_dim columns: the forward pass is
    # that of s = (1, 1). 20000 entries: the sample variance is within 1 % (one
    # standard error); 4 % is four.
    init_fn, _, _ = stax.Dense(2000, W_std=1.5, parameterization="standard", s=(3, 5))
    _, (W, b) = init_fn(jax.random.PRNGKey(3), (7, 2))
    assert W.shape == (2, 10000) and b is None
    assert np.var(np.asarray(W)) == pytest.approx(1.5**2 * 3 / 2, rel=0.04)


def test_s_with_the_ntk_parameterisation_changes_nothing_and_says_so():
    # neural-tangents ignores s under 'ntk'; here too, with a warning naming the layer.
    with pytest.warns(UserWarning, match=r"Dense: `s`=\(2, 3\) has no effect with parameterization='ntk'"):
        with_s = stax.Dense(3, W_std=1.3, b_std=0.2, s=(2, 3))
    plain = stax.Dense(3, W_std=1.3, b_std=0.2)
    x = _X.reshape(2, -1)
    shape, params = with_s[0](jax.random.PRNGKey(0), x.shape)
    assert shape == plain[0](jax.random.PRNGKey(0), x.shape)[0] == (2, 3)
    # (the kernel map under 'ntk' does not read s)
    np.testing.assert_array_equal(np.asarray(with_s[1](params, x)), np.asarray(plain[1](params, x)))
    with pytest.warns(UserWarning, match=r"ConvLocal: `s`=\(1, 2\) has no effect"):
        stax.ConvLocal(3, (2, 2), s=(1, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stax.Dense(2, s=(1, 1))  # the default: no warning


@pytest.mark.parametrize("make, match", [
    (lambda: stax.Dense(2, parameterization="standard", s=(0, 1)), r"Dense: `s` must be a pair .* got \(0, 1\)"),
    (lambda: stax.Conv(2, (2,), parameterization="standard", s=2), r"Conv: `s` must be a pair .* got 2"),
    (lambda: stax.ConvLocal(2, (2,), parameterization="standard", s=(1.5, 1)), r"ConvLocal: `s` must be a pair"),
    (lambda: stax.ConvTranspose(2, (2,), parameterization="standard", s=(1, 2, 3)), r"ConvTranspose: `s` must be"),
])
def test_bad_s_is_refused_with_the_layer_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


_NCHW = ("NCHW", "OIHW", "NCHW")


def test_an_nchw_convolution_has_the_kernel_of_its_nhwc_twin_with_spatial_axes_in_order():
    # Full spatial output (n1, n2, H, H', W, W'): NCHW inputs give the NHWC kernel of the same images.
    nchw = stax.Conv(2, (3, 2), (2, 1), "SAME", W_std=1.3, b_std=0.2, dimension_numbers=_NCHW)
    nhwc = stax.Conv(2, (3, 2), (2, 1), "SAME", W_std=1.3, b_std=0.2)
    got = nchw[2](_X.transpose(0, 3, 1, 2), None, None)
    want = nhwc[2](_X, None, None)
    np.testing.assert_allclose(np.asarray(got.nngp), np.asarray(want.nngp), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(got.cov1), np.asarray(want.cov1), rtol=1e-14)
    assert got.layout == (0, 1) and want.layout is None  # where the finite outputs keep batch and channels


@pytest.mark.slow  # 1 s of CPU; neural-tangents' swapped_spatial_axes case covers it too (slow)
def test_an_output_spec_with_swapped_spatial_letters_swaps_the_kernels_spatial_axes():
    swapped = stax.Conv(2, (3, 2), (2, 1), "SAME", b_std=0.2, dimension_numbers=("NHWC", "HWIO", "NWHC"))
    plain = stax.Conv(2, (3, 2), (2, 1), "SAME", b_std=0.2)
    got = np.asarray(swapped[2](_X, None, "nngp"))
    want = np.asarray(plain[2](_X, None, "nngp")).transpose(0, 1, 4, 5, 2, 3)
    np.testing.assert_allclose(got, want, rtol=1e-14)


@pytest.mark.slow  # 1-2 s of CPU
def test_flatten_of_inputs_with_the_batch_axis_second():
    # neural-tangents 0.6.5 refuses this (its input kernel moves the batch
    # axis first and then disagrees with Flatten's batch_axis=1); the kernel is
    # that of the same network on the inputs with the batch axis first.
    x2 = np.random.default_rng(2).normal(size=(3, 4, 3, 2))
    moved = stax.serial(stax.Flatten(batch_axis=1), stax.Dense(3, b_std=0.1), stax.Relu())
    plain = stax.serial(stax.Flatten(), stax.Dense(3, b_std=0.1), stax.Relu())
    got = moved[2](_X.transpose(1, 0, 2, 3), x2.transpose(1, 0, 2, 3), ("nngp", "ntk"))
    want = plain[2](_X, x2, ("nngp", "ntk"))
    for f in ("nngp", "ntk"):
        np.testing.assert_allclose(np.asarray(getattr(got, f)), np.asarray(getattr(want, f)), rtol=1e-14)


_NCHW_X = _X.transpose(0, 3, 1, 2)


@pytest.mark.parametrize("net, x, match", [
    # the Conv's output keeps the channels at axis 1; a Dense on the last axis mixes positions
    (stax.serial(stax.Conv(2, (2, 2), dimension_numbers=_NCHW), stax.Relu(), stax.Dense(2)), _NCHW_X,
     r"Dense: kernel_fn needs `channel_axis` = -1 to be the channel axis .* keep that axis at 1 of 4"),
    (stax.serial(stax.Conv(2, (2, 2), dimension_numbers=("NHWC", "HWIO", "NCHW")), stax.AvgPool((2, 2))), _X,
     r"AvgPool: kernel_fn needs `channel_axis` = -1 .* at 1 of 4"),
    (stax.serial(stax.Flatten(batch_axis_out=1), stax.Dense(2)), _X,
     r"Dense: kernel_fn needs `batch_axis` = 0 to be the batch axis .* at 1 of 2"),
    (stax.Dense(2, batch_axis=-1), _X,
     r"kernel_fn: this network's first layer takes batch_axis=-1 and channel_axis=-1"),
    # LayerNorm's default channel_axis=-1 after channels at axis 1
    (stax.serial(stax.Conv(2, (2, 2), dimension_numbers=_NCHW), stax.LayerNorm()), _NCHW_X,
     r"LayerNorm: kernel_fn needs `channel_axis` = -1 to be the channel axis .* at 1 of 4"),
    (stax.serial(stax.FanOut(2), stax.parallel(stax.Conv(2, (2, 2), dimension_numbers=("NHWC", "HWIO", "NCHW")),
                                               stax.Conv(2, (2, 2))), stax.FanInSum()), _X,
     r"FanInSum: its branches keep the batch and channel axes at different places"),
])
def test_layouts_that_disagree_are_refused_with_the_layer_named(net, x, match):
    with pytest.raises(ValueError, match=match):
        net[2](x, None, "nngp")


def test_batch_refuses_inputs_whose_batch_axis_is_not_first():
    # nt.batch cuts blocks along axis 0, which would be the features here.
    import ntkcourse as nt

    kernel_fn = nt.batch(stax.Dense(2, batch_axis=1, channel_axis=0)[2], batch_size=2)
    with pytest.raises(ValueError, match=r"batch: the network takes inputs with the batch axis at 1"):
        kernel_fn(np.ones((5, 4)), None, "nngp")
