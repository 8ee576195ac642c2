"""Validation of ``stax.Recurrent`` (the RNTK): the kernels against an
independent loop over the time grid, against Monte Carlo of wide finite RNNs
built from the same definition, long sequences, padding, and bad input.

Monte Carlo: S networks of width n give S empirical kernels (the empirical
NTK by :func:`ntkcourse.empirical.empirical_ntk_fn`); their mean must agree
with the analytic kernel within Z_MAX standard errors estimated from the S
samples themselves, plus an allowance for the O(1/n) bias of a finite
network's mean (2/n of max|K|, as in ``test_stax_validation``; the largest
|z| seen for these networks at width 256 was 2.4 with no allowance).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import empirical, signal_propagation, stax

Z_MAX = 5.0  # P(|t_63| > 5) = 5e-6 per entry for a correct kernel
WIDTH = 256
N_NETS = 64


def _sequences(n=4, T=5, m=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, T, m))


def _rnn(width, activation=stax.Relu, return_sequences=False, parameterization="ntk", readout=1):
    return stax.serial(
        stax.Recurrent(width, activation(), W_std=1.2, U_std=1.0, b_std=0.3, parameterization=parameterization,
                       return_sequences=return_sequences),
        stax.Dense(readout, W_std=1.0, b_std=None, parameterization=parameterization),
    )


def _per_network(net, x, what, n_nets=N_NETS, seed=0, **kwargs):
    """One empirical kernel per random network, float64, shape (S, n, n, ...)."""
    init_fn, apply_fn, _ = net
    x = jnp.asarray(x, jnp.float32)
    keys = jax.random.split(jax.random.key(seed, impl="rbg"), n_nets)
    params = jax.vmap(lambda k: init_fn(k, x.shape)[1])(keys)
    if what == "ntk":
        ntk_fn = empirical.empirical_ntk_fn(net, implementation="jvp_vjp")
        one = lambda p: ntk_fn(x, None, p, **kwargs)  # noqa: E731
    else:
        def one(p):
            f = apply_fn(p, x, **kwargs)
            return jnp.einsum("i...c,j...c->ij...", f, f) / f.shape[-1]
    return np.asarray(jax.jit(jax.vmap(one))(params), np.float64)


def _assert_mc_agrees(samples, analytic, width):
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / math.sqrt(samples.shape[0])
    allowance = Z_MAX * se + 2.0 / width * np.max(np.abs(analytic))
    worst = float(np.max(np.abs(mean - analytic) / se))
    assert np.all(np.abs(mean - analytic) <= allowance), f"max |mean - analytic| / SE = {worst:.1f}"


# --------------------------------------------------------------------------- #
# The recursion, against an independent loop
# --------------------------------------------------------------------------- #


def _relu_dual(a, b, c):
    """E[relu(u) relu(v)] and E[1{u>0} 1{v>0}] (Cho & Saul 2009), written out here."""
    rho = np.clip(c / np.sqrt(a * b), -1.0, 1.0)
    theta = np.arccos(rho)
    return (np.sqrt(a * b) * np.sin(theta) + (np.pi - theta) * c) / (2 * np.pi), (np.pi - theta) / (2 * np.pi)


def _loop_rntk(x, y, w_var, u_var, b_var):
    """NNGP and NTK after a ReLU Recurrent layer, one pair of sequences (T, m)
    and (T', m), by plain loops over the grid (t, t') and the self-pairs.
    """
    m = x.shape[1]

    def self_var(z):
        v = []
        for t in range(len(z)):
            prev = 0.0 if t == 0 else w_var * v[-1] / 2  # E[relu(u)^2] = Var/2
            v.append(prev + u_var * z[t] @ z[t] / m + b_var)
        return v

    va, vb = self_var(x), self_var(y)
    S = np.zeros((len(x), len(y)))
    Th = np.zeros_like(S)
    for t in range(len(x)):
        for s in range(len(y)):
            S[t, s] = u_var * x[t] @ y[s] / m + b_var
            Th[t, s] = S[t, s]
            if t and s:
                k, kd = _relu_dual(va[t - 1], vb[s - 1], S[t - 1, s - 1])
                S[t, s] += w_var * k
                Th[t, s] += w_var * k + w_var * kd * Th[t - 1, s - 1]
    k, kd = _relu_dual(va[-1], vb[-1], S[-1, -1])
    return k, Th[-1, -1] * kd


def test_kernels_equal_an_independent_loop_over_the_time_grid():
    x = _sequences(3, 6, 2, seed=3)
    _, _, kernel_fn = stax.Recurrent(7, stax.Relu(), W_std=1.4, U_std=0.9, b_std=0.5)
    k = kernel_fn(x, None, ("nngp", "ntk"))
    for i in range(3):
        for j in range(3):
            nngp, ntk = _loop_rntk(x[i], x[j], 1.4**2, 0.9**2, 0.25)
            # float64 arithmetic in a different order: ~1e-13; on the diagonal
            # (rho = 1) E[1{u>0}1{v>0}] has a square-root singularity, where one
            # ulp of rho moves it by ~1e-8 (see ntkcourse.dual._relu_parts).
            np.testing.assert_allclose(k.nngp[i, j], nngp, rtol=1e-11)
            np.testing.assert_allclose(k.ntk[i, j], ntk, rtol=1e-11 if i != j else 1e-7)


def test_one_step_is_a_dense_layer_then_the_activation():
    # T = 1: g_1 = U x / sqrt(m) + b, exactly Dense(U_std, b_std) then Erf.
    x = _sequences(4, 1, 3)
    rnn = stax.Recurrent(5, stax.Erf(), W_std=2.0, U_std=0.7, b_std=0.4)[2](x, None, ("nngp", "ntk"))
    mlp = stax.serial(stax.Dense(5, W_std=0.7, b_std=0.4), stax.Erf())[2](x[:, 0], None, ("nngp", "ntk"))
    np.testing.assert_allclose(rnn.nngp, mlp.nngp, rtol=1e-12)
    np.testing.assert_allclose(rnn.ntk, mlp.ntk, rtol=1e-12)


def test_full_grid_path_equals_the_diagonal_path():
    # A sequence output keeps every pair (t, t') (the grid recursion) or, with
    # diagonal_spatial=True, only t = t' (the diagonal recursion): the grid's
    # diagonal must equal the latter.
    x = _sequences(4, 6, 3, seed=5)
    kernel_fn = _rnn(8, return_sequences=True)[2]
    grid = kernel_fn(x, None, ("nngp", "ntk"))
    diag = kernel_fn(x, None, ("nngp", "ntk"), diagonal_spatial=True)
    assert np.shape(grid.ntk) == (4, 4, 6, 6) and np.shape(diag.ntk) == (4, 4, 6)
    for g, d in zip(grid, diag):
        np.testing.assert_allclose(np.diagonal(np.asarray(g), axis1=2, axis2=3), d, rtol=1e-12)


def test_mask_constant_that_matches_nothing_changes_nothing():
    # The masked path (padding first, gated recursion) with no padded step.
    x = _sequences(4, 6, 3, seed=5)
    kernel_fn = _rnn(8)[2]
    plain = kernel_fn(x, None, ("nngp", "ntk"))
    masked = kernel_fn(x, None, ("nngp", "ntk"), mask_constant=1e6)
    for a, b in zip(plain, masked):
        np.testing.assert_allclose(b, a, rtol=1e-12)


# --------------------------------------------------------------------------- #
# Monte Carlo of wide finite RNNs
# --------------------------------------------------------------------------- #


def test_ntk_agrees_with_wide_relu_rnns():
    net = _rnn(WIDTH)
    x = _sequences()
    _assert_mc_agrees(_per_network(net, x, "ntk"), np.asarray(net[2](x, None, "ntk")), WIDTH)


def test_nngp_agrees_with_wide_erf_rnns():
    net = _rnn(WIDTH, activation=stax.Erf, readout=16)
    x = _sequences(seed=1)
    _assert_mc_agrees(_per_network(net, x, "nngp"), np.asarray(net[2](x, None, "nngp")), WIDTH)


def test_dense_on_a_sequence_acts_per_step_over_every_pair_of_steps():
    # return_sequences=True then Dense(1): a kernel over (t, t') per pair.
    net = _rnn(WIDTH, return_sequences=True)
    x = _sequences(3, 4, 2, seed=2)
    analytic = np.asarray(net[2](x, None, "ntk"))
    assert analytic.shape == (3, 3, 4, 4)
    _assert_mc_agrees(_per_network(net, x, "ntk"), analytic, WIDTH)


def test_padded_sequences_agree_with_wide_rnns():
    # Lengths 5, 3, 4, 2, padded with zeros at the end (and one at the start).
    x = _sequences(seed=4)
    x[1, 3:] = 0.0
    x[2, 4:] = 0.0
    x[3, :3] = 0.0
    net = _rnn(WIDTH)
    analytic = np.asarray(net[2](x, None, "ntk", mask_constant=0.0))
    _assert_mc_agrees(_per_network(net, x, "ntk", mask_constant=0.0), analytic, WIDTH)


def test_standard_parameterisation_agrees_with_wide_rnns():
    net = _rnn(WIDTH, parameterization="standard")
    x = _sequences(seed=6)
    _assert_mc_agrees(_per_network(net, x, "ntk"), np.asarray(net[2](x, None, "ntk")), WIDTH)


@pytest.mark.slow
def test_error_against_width_falls_like_one_over_sqrt_width():
    # One network per seed; the RMS error of its NTK over 16 seeds, widths
    # 64 ... 1024 (five, a factor 16; a sixth, 2048, was the costliest and is
    # left out for the suite's time): fitted log-log slope near -1/2
    # (fluctuations ~ n^-1/2); measured -0.47.
    x = _sequences(3, 4, 2, seed=7)
    widths = [64, 128, 256, 512, 1024]
    errors, spreads = [], []
    for w in widths:
        net = _rnn(w)
        analytic = np.asarray(net[2](x, None, "ntk"))
        samples = _per_network(net, x, "ntk", n_nets=16, seed=w)
        per_seed = np.linalg.norm(samples - analytic, axis=(1, 2)) / np.linalg.norm(analytic)
        errors.append(np.sqrt(np.mean(per_seed**2)))
        spreads.append(per_seed.std(ddof=1) / math.sqrt(len(per_seed)))
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    # With 16 seeds per width the slope's own spread is about 0.06 over these widths.
    assert -0.65 < slope < -0.35, (slope, errors, spreads)


# --------------------------------------------------------------------------- #
# Long sequences
# --------------------------------------------------------------------------- #


def test_relu_variance_follows_its_geometric_series_over_200_steps():
    # Constant inputs, ReLU, no W term at t = 1: v_t = r v_{t-1} + c with
    # r = W_std^2 / 2 = 2 (the kernel grows like 2^T) and c = U_std^2 |x|^2/m + b_std^2.
    T, W_std, b_std = 200, 2.0, 0.5
    x = np.ones((2, T, 3))
    x[1] *= 2.0
    k = stax.Recurrent(4, stax.Relu(), W_std=W_std, U_std=1.0, b_std=b_std)[2](x, None, ("nngp", "ntk"))
    k = k._replace(nngp=np.asarray(k.nngp), ntk=np.asarray(k.ntk))
    r = W_std**2 / 2
    for i, scale in enumerate((1.0, 2.0)):
        c = scale**2 + b_std**2
        v_T = c * (r**T - 1) / (r - 1)
        np.testing.assert_allclose(k.nngp[i, i], v_T / 2, rtol=1e-10)  # E[relu(u)^2] = v/2
    assert np.all(np.isfinite(k.ntk)) and np.max(k.ntk) > 1e59
    np.testing.assert_array_equal(k.nngp, k.nngp.T)
    np.testing.assert_array_equal(k.ntk, k.ntk.T)


def test_chaotic_self_kernel_stays_exact_over_200_steps():
    # erf with sigma_w = 3 is chaotic (chi_1 ~ 1.96): a self-covariance computed
    # as a cross covariance carries rounding that the recursion doubles at each
    # step, and K(x, x) used to drift to the chaotic fixed point after ~40 steps.
    # Constant inputs: the variance sits at q* of ch06's variance map with bias
    # variance b^2 + 1, so E[erf(u)^2] = (2/pi) arcsin(2q*/(1 + 2q*)), and the NTK
    # grows by chi_1 per step (Theta_t = Sigma_t + chi_1 Theta_{t-1}).
    T, b_std = 200, 0.5
    x = np.ones((2, T, 1))
    x[1, 0, 0] = -1.0
    scales = signal_propagation.depth_scales(stax.Erf(), 9.0, b_std**2 + 1.0)
    net = stax.serial(stax.Recurrent(1, stax.Erf(), W_std=3.0, U_std=1.0, b_std=b_std, return_sequences=True),
                      stax.Dense(1))
    k = net[2](x, None, ("nngp", "ntk"))
    nngp, ntk = np.asarray(k.nngp), np.asarray(k.ntk)
    q = scales.q_star
    np.testing.assert_allclose(nngp[0, 0, -1, -1], 2 / np.pi * np.arcsin(2 * q / (1 + 2 * q)), rtol=1e-10)
    np.testing.assert_allclose(ntk[0, 0, -1, -1] / ntk[0, 0, -2, -2], scales.chi_1, rtol=1e-8)
    last = stax.serial(stax.Recurrent(1, stax.Erf(), W_std=3.0, U_std=1.0, b_std=b_std), stax.Dense(1))[2]
    np.testing.assert_allclose(np.asarray(last(x, None, "ntk")), ntk[:, :, -1, -1], rtol=1e-10)


@pytest.mark.parametrize("return_sequences, padded", [(False, False), (True, False), (False, True)])
def test_one_sequence_twice_keeps_its_exact_self_kernel_in_the_chaotic_phase(return_sequences, padded):
    # erf, sigma_w = 3 (chi_1 ~ 1.96), T = 80: K(x, x) passed as kernel_fn(x, x), or a
    # sequence repeated at another batch position, used to go through the cross
    # recursion and drift (NNGP 58 % off, NTK 100 % at the last step, padded or not). Pairs whose
    # inputs are one sequence twice are now found and pinned to the self-variance, so
    # they match K(x, None)'s diagonal; 1e-12 leaves room for compiled programs of
    # different shapes rounding the last steps differently (the drift was O(1)).
    rng = np.random.default_rng(21)
    a = rng.standard_normal((2, 80, 2))
    x = np.concatenate([a, a[:1]])  # the third sequence is the first
    mask = {}
    if padded:
        x[:, 60:] = np.nan  # lengths 60
        mask = {"mask_constant": np.nan}
    net = stax.serial(stax.Recurrent(1, stax.Erf(), W_std=3.0, U_std=1.0, b_std=0.5,
                                     return_sequences=return_sequences), stax.Dense(1))[2]
    for get in ("nngp", "ntk"):
        alone = np.asarray(net(x, None, get, **mask))
        twice = np.asarray(net(x, x.copy(), get, **mask))
        if return_sequences:
            alone, twice = alone[..., -1, -1], twice[..., -1, -1]
        np.testing.assert_allclose(np.diag(twice), np.diag(alone), rtol=1e-12)
        np.testing.assert_allclose(alone[0, 2], alone[0, 0], rtol=1e-12)
        np.testing.assert_allclose(twice[2, 0], alone[0, 0], rtol=1e-12)
        # The two different sequences stay different (their chaotic correlation is below 1).
        assert abs(alone[0, 1]) < 0.9 * np.sqrt(alone[0, 0] * alone[1, 1])


@pytest.mark.parametrize("activation, W_std", [(stax.Erf, 3.0), (stax.Relu, 1.0)])
def test_long_sequences_give_finite_symmetric_positive_kernels(activation, W_std):
    x = _sequences(6, 200, 2, seed=8)
    k = stax.Recurrent(4, activation(), W_std=W_std, U_std=1.0, b_std=0.1)[2](x, None, ("nngp", "ntk"))
    for K in (np.asarray(k.nngp), np.asarray(k.ntk)):
        assert np.all(np.isfinite(K))
        np.testing.assert_array_equal(K, K.T)
        # Eigenvalues of a PSD matrix, up to float64 round-off of its size.
        assert np.linalg.eigvalsh(K).min() > -1e-10 * np.abs(K).max()


# --------------------------------------------------------------------------- #
# Sequences of different lengths
# --------------------------------------------------------------------------- #


def test_padding_at_the_end_or_the_start_gives_the_kernel_of_the_real_steps():
    x = _sequences(3, 6, 3, seed=9)
    net = _rnn(8)
    short = net[2](x[:1, :4], None, ("nngp", "ntk"))
    end, start = x.copy(), x.copy()
    end[0, 4:] = -1.0
    start[0, :2] = -1.0
    start[0, 2:] = x[0, :4]
    k_end = net[2](end, None, ("nngp", "ntk"), mask_constant=-1.0)
    k_start = net[2](start, None, ("nngp", "ntk"), mask_constant=-1.0)
    np.testing.assert_allclose(k_end.ntk[0, 0], short.ntk[0, 0], rtol=1e-12)
    np.testing.assert_allclose(k_end.nngp[0, 0], short.nngp[0, 0], rtol=1e-12)
    np.testing.assert_allclose(k_start.ntk, k_end.ntk, rtol=1e-12)


def test_more_padding_changes_nothing_and_x2_gives_the_same_cross_kernel():
    x = _sequences(4, 5, 2, seed=10)
    x[0, 3:] = np.nan  # NaN padding: NaN matches NaN
    longer = np.concatenate([x, np.full((4, 3, 2), np.nan)], axis=1)
    net = _rnn(8)
    k = net[2](x, None, "ntk", mask_constant=np.nan)
    np.testing.assert_allclose(net[2](longer, None, "ntk", mask_constant=np.nan), k, rtol=1e-12)
    np.testing.assert_allclose(net[2](x[:2], x[1:], "ntk", mask_constant=np.nan), k[:2, 1:], rtol=1e-12)


def test_finite_network_reads_its_own_last_real_step():
    x = _sequences(2, 6, 3, seed=11)
    padded = x.copy()
    padded[0, 4:] = 0.0
    init_fn, apply_fn, _ = _rnn(16)
    _, params = init_fn(jax.random.PRNGKey(0), x.shape)
    out = apply_fn(params, padded, mask_constant=0.0)
    np.testing.assert_allclose(out[0], apply_fn(params, x[:1, :4])[0], rtol=1e-6)
    np.testing.assert_allclose(out[1], apply_fn(params, x[1:])[0], rtol=1e-6)


def test_stacked_recurrent_layers_pass_the_padding_on():
    # Recurrent(return_sequences=True) -> Recurrent: the second layer sees the
    # first one's padding, so a padded sequence has the kernel of its real steps.
    x = _sequences(3, 5, 2, seed=12)
    net = stax.serial(stax.Recurrent(8, stax.Erf(), W_std=1.5, b_std=0.2, return_sequences=True),
                      stax.Recurrent(8, stax.Relu()), stax.Dense(1))
    padded = x.copy()
    padded[0, 3:] = 0.0
    k = net[2](padded, None, "ntk", mask_constant=0.0)
    np.testing.assert_allclose(k[0, 0], net[2](x[:1, :3], None, "ntk")[0, 0], rtol=1e-12)
    init_fn, apply_fn, _ = net
    _, params = init_fn(jax.random.PRNGKey(1), x.shape)
    np.testing.assert_allclose(apply_fn(params, padded, mask_constant=0.0)[0],
                               apply_fn(params, x[:1, :3])[0], rtol=1e-6)


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #


def test_inputs_that_are_not_sequences_are_refused():
    init_fn, apply_fn, kernel_fn = stax.Recurrent(4, stax.Relu())
    with pytest.raises(ValueError, match=r"Recurrent: `x1` must be sequences of shape \(batch, T, features\)"):
        kernel_fn(np.ones((3, 4)), None, "nngp")
    with pytest.raises(ValueError, match=r"Recurrent: `input_shape` must be sequences"):
        init_fn(jax.random.PRNGKey(0), (3, 4))
    _, params = init_fn(jax.random.PRNGKey(0), (3, 5, 4))
    with pytest.raises(ValueError, match=r"Recurrent: `inputs` must be sequences.*got shape \(3, 4\)"):
        apply_fn(params, jnp.ones((3, 4)))


def test_mismatched_feature_sizes_are_refused():
    init_fn, apply_fn, kernel_fn = stax.Recurrent(4, stax.Relu())
    _, params = init_fn(jax.random.PRNGKey(0), (3, 5, 4))
    with pytest.raises(ValueError, match="Recurrent: input has 2 features but the layer's `params` expect 4"):
        apply_fn(params, jnp.ones((3, 5, 2)))
    with pytest.raises(ValueError, match="kernel_fn: `x2` must have the same shape as `x1`"):
        kernel_fn(np.ones((3, 5, 4)), np.ones((2, 5, 2)), "nngp", mask_constant=0.0)


def test_an_all_padding_sequence_is_padding_after_the_readout():
    """A sequence made only of padding (a batch padded to a fixed size) never leaves phi(g_0) = 0 and stays
    padding after the last-step readout, as neural-tangents' pools treat such an input: every kernel entry with
    it is exactly zero, also after a Dense with a bias, and apply_fn returns mask_constant for it. (Before, it
    was refused; without the readout's masks the bias gave b_std² there.)
    """
    x = _sequences(3, 4, 2)
    x[1] = 9.0
    init_fn, apply_fn, kernel_fn = stax.serial(stax.Recurrent(4, stax.Relu(), b_std=0.3), stax.Dense(1, b_std=0.2))
    # Under jit (the use case; half the CPU of the eager engine's compilations here), parameters drawn by NumPy
    # (jax.random compiles for each shape).
    k = jax.jit(lambda x: kernel_fn(x, None, ("nngp", "ntk"), mask_constant=9.0))(x)
    for name in ("nngp", "ntk"):
        got = np.asarray(getattr(k, name))
        assert np.all(got[1] == 0.0) and np.all(got[:, 1] == 0.0), name
        assert np.all(got[[0, 2]][:, [0, 2]] != 0.0), name
    shapes = jax.eval_shape(lambda key: init_fn(key, x.shape)[1], jax.random.PRNGKey(0))
    rng = np.random.default_rng(1)
    params = jax.tree_util.tree_map(lambda s: jnp.asarray(rng.standard_normal(s.shape), s.dtype), shapes)
    out = np.asarray(jax.jit(lambda p, x: apply_fn(p, x, mask_constant=9.0))(params, jnp.asarray(x)))
    assert out[1, 0] == 9.0 and np.all(out[[0, 2]] != 9.0)


def test_a_layer_that_does_not_read_masks_refuses_a_masked_kernel():
    x = _sequences(2, 4, 2)
    net = stax.serial(stax.Recurrent(4, stax.Relu(), return_sequences=True), stax.DotGeneral(rhs=2.0))
    with pytest.raises(ValueError, match="DotGeneral: received a kernel of sequences with padded time steps"):
        net[2](x, None, "nngp", mask_constant=0.0)


def test_mask_constant_needs_sequences_and_activation_must_be_a_stax_activation():
    with pytest.raises(ValueError, match=r"`mask_constant` marks padded time steps.*shape \(3, 4\)"):
        stax.Dense(1)[2](np.ones((3, 4)), None, "nngp", mask_constant=0.0)
    with pytest.raises(ValueError, match="Recurrent: `activation` must be an activation layer"):
        stax.Recurrent(4, jnp.tanh)


@pytest.mark.slow
def test_padded_sequences_in_memory_bounded_blocks_give_the_same_kernel():
    # Blocks of 2 sequences (5 inputs: 3 x 3 blocks, the last one padded with
    # copies): the mask travels with its block; equal to the one-call result.
    from ntkcourse.engine import ExecutionPlan

    x = _sequences(5, 6, 2, seed=13)
    x[0, 4:] = np.nan
    x[3, 2:] = np.nan
    net = stax.serial(stax.Recurrent(8, stax.Relu(), W_std=1.3, b_std=0.2, return_sequences=True),
                      stax.Recurrent(8, stax.Erf()), stax.Dense(1))
    whole = net[2](x, None, ("nngp", "ntk"), mask_constant=np.nan)
    blocked = net[2](x, None, ("nngp", "ntk"), mask_constant=np.nan, plan=ExecutionPlan(block_size=2))
    cross = net[2](x[:2], x[1:], ("nngp", "ntk"), mask_constant=np.nan, plan=ExecutionPlan(block_size=2))
    for a, b, c in zip(whole, blocked, cross):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))  # same arithmetic, block by block
        np.testing.assert_allclose(np.asarray(c), np.asarray(a)[:2, 1:], rtol=1e-12)


def test_a_dense_layer_between_recurrent_layers_keeps_the_padding_in_kernel_and_finite_network():
    """Recurrent(sequences) -> Dense -> Relu -> Recurrent on padded sequences:
    the kernel of a padded sequence is that of its real steps (exactly: the
    padded steps drop out), and so is the finite network's output (the Dense
    and ReLU keep padded steps at mask_constant for the second Recurrent).
    Before, the finite network fed W c + b at padded steps to the second
    layer, so its kernel was not the limit of its apply_fn. Tolerances:
    1e-12 (float64 kernel), 1e-6 (float32 network).
    """
    x = _sequences(3, 5, 2, seed=13)
    net = stax.serial(stax.Recurrent(8, stax.Erf(), W_std=1.5, b_std=0.2, return_sequences=True),
                      stax.Dense(8, b_std=0.3), stax.Relu(), stax.Recurrent(8, stax.Relu()), stax.Dense(1))
    padded = x.copy()
    padded[0, 3:] = 0.0
    k = net[2](padded, None, "ntk", mask_constant=0.0)
    np.testing.assert_allclose(k[0, 0], net[2](x[:1, :3], None, "ntk")[0, 0], rtol=1e-12)
    init_fn, apply_fn, _ = net
    _, params = init_fn(jax.random.PRNGKey(2), x.shape)
    np.testing.assert_allclose(apply_fn(params, padded, mask_constant=0.0)[0],
                               apply_fn(params, x[:1, :3])[0], rtol=1e-6)
