"""``stax.Dropout`` in its training mode (neural-tangents' default): the kernel
is the expectation over weights and masks, ``1 / rate`` on the diagonal of
each input with itself (the same input at the same position sees the same mask
entry only in a kernel of x1 with itself), nothing elsewhere.

Checked against a hand computation (the arc-cosine kernel), against wide
finite networks (Monte Carlo over weights and masks), against
neural-tangents 0.6.5 (float64 values from
``tests/oracle/make_compat_reference_dropout.py``, networks in
``tests/oracle/compat_cases_dropout.py``), through the engine's paths that
cut ``K(x, x)`` into pieces (symmetric tiles of flat inputs, blocks of
images, ``nt.batch``), under ``jax.jit``, and for the empirical NTK.
"""
import json
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import ntkcourse as nt
from ntkcourse import stax
from ntkcourse.engine import ExecutionPlan
from ntkcourse.kernel import Kernel, spatial_diagonal
from ntkcourse.stax.layer import kernel_map_of

sys.path.insert(0, str(Path(__file__).parents[1] / "oracle"))
from compat_cases_dropout import CASES, build, inputs, keywords  # noqa: E402

REF = json.loads((Path(__file__).parents[1] / "data" / "nt_compat_reference_dropout.json").read_text())

RATE = 0.6  # keep probability
X = np.random.default_rng(0).normal(size=(3, 4))
X2 = np.random.default_rng(1).normal(size=(2, 4))


def _key(seed):
    """A PRNG key of the 'rbg' kind: the masks' random bits compile in a fraction of threefry's time."""
    return jax.random.wrap_key_data(np.array([seed, 0, 0, 0], np.uint32), impl="rbg")


def _params(init, shape, seed):
    """Parameters as init_fn draws them (standard normal, NTK parameterisation), from NumPy: without compiling
    init_fn, and with a leading axis of ``samples`` when ``shape`` starts with it.
    """
    gen = np.random.default_rng(seed)
    shapes = jax.eval_shape(lambda: init(jax.random.PRNGKey(0), shape[-2:])[1])
    return jax.tree_util.tree_map(lambda s: gen.standard_normal(shape[:-2] + s.shape).astype(np.float32), shapes)


# Built once: its compiled programs serve every test below.
NET = stax.serial(stax.Dense(1, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dropout(RATE),
                  stax.Dense(1, W_std=1.3, b_std=0.2))


def _arc_cosine(x1, x2):
    """NNGP and NTK of Dense(1.5, 0.1) - Relu, by the closed form (Cho & Saul 2009); ``x2=None``: x1 with
    itself, whose correlation with itself is exactly 1.
    """
    same = x2 is None
    x2 = x1 if same else x2
    q12 = 1.5**2 * x1 @ x2.T / x1.shape[1] + 0.1**2
    q1 = 1.5**2 * np.sum(x1 * x1, 1) / x1.shape[1] + 0.1**2
    q2 = 1.5**2 * np.sum(x2 * x2, 1) / x2.shape[1] + 0.1**2
    norms = np.sqrt(np.outer(q1, q2))
    cos = np.clip(q12 / norms, -1.0, 1.0)
    if same:
        np.fill_diagonal(cos, 1.0)  # else the arccos of 1 - 1e-16 is 1.5e-8, and the NTK's factor off by 2e-9
    theta = np.arccos(cos)
    nngp = norms * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
    ntk = q12 * (np.pi - theta) / (2 * np.pi)  # the first layer's NTK is its NNGP q12, times E[relu' relu']
    return nngp, ntk


def _readout(nngp, ntk):
    """The last Dense(1.3, 0.2) on the kernels of its input."""
    out = 1.3**2 * nngp + 0.2**2
    return out, out + 1.3**2 * ntk


def test_kernel_of_x_with_itself_is_the_arc_cosine_kernel_with_one_over_rate_on_its_diagonal():
    # E[(m / rate)^2] = 1 / rate for one mask entry; two inputs get independent entries (E = 1).
    nngp, ntk = _arc_cosine(X, None)
    eye = np.eye(len(X), dtype=bool)
    want = _readout(np.where(eye, nngp / RATE, nngp), np.where(eye, ntk / RATE, ntk))
    got = NET[2](X, None, ("nngp", "ntk"))
    # float64 throughout; the arccos of correlations near 1 on the diagonal costs a few ulps.
    np.testing.assert_allclose(np.asarray(got.nngp), want[0], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(got.ntk), want[1], rtol=1e-12)


def test_kernel_of_two_different_inputs_has_no_factor():
    # Every entry pairs two different inputs, so it is the arc-cosine kernel without the factor.
    got = NET[2](X, X2, ("nngp", "ntk"))
    want = _readout(*_arc_cosine(X, X2))
    np.testing.assert_allclose(np.asarray(got.nngp), want[0], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(got.ntk), want[1], rtol=1e-12)


@pytest.mark.parametrize("offset", [0.0, 1e-13])
def test_x2_equal_to_x1_within_1e_12_is_x1_with_itself(offset):
    # neural-tangents' x1_is_x2: the same shape and every entry within 1e-12; cov2 is then x1's own.
    alone = NET[2](X, None)
    got = NET[2](X, X.copy() + offset)
    for name in ("nngp", "ntk"):
        np.testing.assert_array_equal(np.asarray(getattr(got, name)), np.asarray(getattr(alone, name)))
    np.testing.assert_array_equal(np.asarray(got.cov2), np.asarray(alone.cov1))


def test_under_jit_equal_traced_inputs_are_x1_with_itself_and_different_ones_are_not():
    # Traced x2: the 1e-12 test runs inside the program (lax.cond between the two kernels), as in neural-tangents.
    with jax.enable_x64(True):
        jitted = jax.jit(NET[2], static_argnames="get")
        same, other = jitted(X, X, "ntk"), jitted(X, X + 1e-3, "ntk")
    np.testing.assert_allclose(np.asarray(same), np.asarray(NET[2](X, None, "ntk")), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(other), np.asarray(NET[2](X, X + 1e-3, "ntk")), rtol=1e-13)


def test_map_scales_only_the_diagonal_in_both_spatial_layouts():
    # A random kernel of 2 inputs with 3 x 2 positions, x2 = x1 (cov2 None): the full layout
    # (n, n, H, H, W, W) gets 1/rate where the input and both positions agree, and its spatial
    # diagonal (diagonal_spatial) must be the diagonal of the result. Eager, no compilation; float64.
    with jax.enable_x64(True):
        _check_map_on_both_layouts()


def _check_map_on_both_layouts():
    rng = np.random.default_rng(3)
    nngp = rng.normal(size=(2, 2, 3, 3, 2, 2))
    cov1 = nngp[np.arange(2), np.arange(2)]
    full = Kernel(nngp, nngp, cov1, None, (2, 3, 2, 1), (2, 3, 2, 1), is_gaussian=True)
    diag = full.replace(nngp=spatial_diagonal(nngp, 2, 2), ntk=spatial_diagonal(nngp, 2, 2),
                        cov1=spatial_diagonal(cov1, 1, 2), diagonal_spatial=True)
    drop = kernel_map_of(stax.Dropout(RATE))
    out_full, out_diag = drop(full), drop(diag)
    n, h, w = np.meshgrid(np.arange(2), np.arange(3), np.arange(2), indexing="ij")
    scaled = np.array(nngp)
    scaled[n, n, h, h, w, w] /= RATE
    np.testing.assert_array_equal(np.asarray(out_full.nngp), scaled)
    np.testing.assert_array_equal(np.asarray(out_full.cov1), scaled[np.arange(2), np.arange(2)])
    np.testing.assert_array_equal(np.asarray(out_diag.nngp), spatial_diagonal(scaled, 2, 2))
    np.testing.assert_array_equal(np.asarray(out_diag.cov1), spatial_diagonal(scaled[np.arange(2), np.arange(2)], 1, 2))
    assert out_full.is_gaussian is False


# --- Wide finite networks -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def monte_carlo():
    # 4000 networks of width 256 (NET's layers, whose kernel does not depend on the width), each with its own
    # weights and its own masks (apply_fn's rng). One hidden layer: the mean over weights and masks is the
    # kernel exactly at any width, so only sampling error remains. z-scores of the second moments.
    init, apply, _ = stax.serial(stax.Dense(256, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dropout(RATE),
                                 stax.Dense(1, W_std=1.3, b_std=0.2))
    x = X.astype(np.float32)
    samples = 4000
    params = _params(init, (samples,) + x.shape, 1)
    keys = jax.random.wrap_key_data(np.random.default_rng(2).integers(0, 2**32, (samples, 4), dtype=np.uint32),
                                    impl="rbg")
    f = np.asarray(jax.jit(jax.vmap(lambda p, k: apply(p, x, rng=k)[:, 0]))(params, keys), np.float64)
    products = f[:, :, None] * f[:, None, :]
    mean, stderr = products.mean(0), products.std(0, ddof=1) / np.sqrt(samples)
    return (mean - np.asarray(NET[2](X, None).nngp)) / stderr  # the program other tests compiled


def test_wide_networks_second_moment_matches_the_diagonal(monte_carlo):
    # Within 4 standard errors (seeded; measured |z| <= 1.7). Without the 1/rate factor the
    # diagonal would sit 15-18 standard errors away.
    assert np.all(np.abs(np.diag(monte_carlo)) < 4)


def test_wide_networks_second_moment_matches_off_the_diagonal(monte_carlo):
    # Different inputs draw independent masks: no factor (seeded; measured |z| <= 2.3).
    assert np.all(np.abs(monte_carlo[~np.eye(len(X), dtype=bool)]) < 4)


# --- neural-tangents 0.6.5 -------------------------------------------------------------------------------------

def _assert_matches(got, want):
    # float64, the same sums in another order: measured below 6e-16 relative to the largest entry.
    want = np.asarray(want, dtype=float)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-14 * np.abs(want).max())


def _oracle_kernel(name, x2, jit=False, **kwargs):
    """A case's kernels; ``jit``: under jax.jit (one program, a third of the engine's compilation time for these
    small spatial networks; the engine's blocks have a test of their own), in float64.
    """
    kind, spec = CASES[name]
    x1, other = inputs(kind)

    def kernel_fn(a, b):
        return build(stax, spec)[2](a, b, ("nngp", "ntk", "cov1"), **keywords((x1, other)), **kwargs)

    if not jit:
        return kernel_fn(x1, other if x2 else None)
    with jax.enable_x64(True):
        return jax.jit(kernel_fn)(x1, other) if x2 else jax.jit(lambda a: kernel_fn(a, None))(x1)


def test_flat_kernels_of_x1_and_x2_match_neural_tangents():
    k = _oracle_kernel("dense_two_dropouts", x2=True)
    for key in ("nngp", "ntk", "cov1"):
        _assert_matches(getattr(k, key), REF["dense_two_dropouts"][key])


def test_flat_kernels_of_x1_with_itself_match_neural_tangents():
    k = _oracle_kernel("dense_two_dropouts", x2=False)
    _assert_matches(k.nngp, REF["dense_two_dropouts"]["self_nngp"])
    _assert_matches(k.ntk, REF["dense_two_dropouts"]["self_ntk"])


def test_images_before_a_global_pool_match_neural_tangents():
    # Two images: the factor on every position paired with itself (cov1), none on the cross kernel.
    k = _oracle_kernel("conv_dropout_gap", x2=True, jit=True)
    for key in ("nngp", "ntk", "cov1"):
        _assert_matches(getattr(k, key), REF["conv_dropout_gap"][key])


def test_images_before_flatten_match_neural_tangents():
    # Flatten reads only the spatial diagonal: the network's kernel carries only that (diagonal_spatial).
    k = _oracle_kernel("conv_dropout_flatten", x2=False, jit=True)
    _assert_matches(k.nngp, REF["conv_dropout_flatten"]["self_nngp"])
    _assert_matches(k.ntk, REF["conv_dropout_flatten"]["self_ntk"])


def test_padded_sequences_match_neural_tangents():
    # mask_constant: padded steps are zero in the kernel whatever the factor; x1 with itself.
    k = _oracle_kernel("masked_sequences_dropout_gap", x2=False, jit=True)
    _assert_matches(k.nngp, REF["masked_sequences_dropout_gap"]["self_nngp"])
    _assert_matches(k.ntk, REF["masked_sequences_dropout_gap"]["self_ntk"])


def test_blocks_of_two_images_give_the_kernel_of_x1_with_itself():
    # 3 images in blocks of 2: diagonal blocks (x2=None) get the factor, the off-diagonal one not,
    # and the last block is padded with a copy of an image.
    kind, spec = CASES["conv_dropout_gap"]
    x1, _ = inputs(kind)
    k = build(stax, spec)[2](x1, None, ("nngp", "ntk"), plan=ExecutionPlan(block_size=2))
    _assert_matches(k.nngp, REF["conv_dropout_gap"]["self_nngp"])
    _assert_matches(k.ntk, REF["conv_dropout_gap"]["self_ntk"])


def test_symmetric_tiles_of_flat_inputs_give_the_kernel_of_x1_with_itself():
    # Tiles of one input: the host-Gram tiles (which all carry cov2) must not be taken.
    kind, spec = CASES["dense_two_dropouts"]
    x1, _ = inputs(kind)
    k = build(stax, spec)[2](x1, None, ("nngp", "ntk"), plan=ExecutionPlan(symmetric_tile=1, host_gram=True))
    _assert_matches(k.nngp, REF["dense_two_dropouts"]["self_nngp"])
    _assert_matches(k.ntk, REF["dense_two_dropouts"]["self_ntk"])


def test_batch_of_x1_with_itself_scales_only_its_diagonal_blocks():
    kind, spec = CASES["dense_two_dropouts"]
    x1, _ = inputs(kind)
    # Blocks of one input: only two shapes to compile, (1, None) on the diagonal and (1, 1) off it.
    nngp = nt.batch(build(stax, spec)[2], batch_size=1)(x1, None, "nngp")
    _assert_matches(nngp, REF["dense_two_dropouts"]["self_nngp"])


# --- The finite network and the empirical NTK -----------------------------------------------------------------

def test_apply_fn_keeps_entries_with_probability_rate_and_scales_them():
    # 20000 entries of ones: each is 0 or 1/rate; the kept fraction within 4.5 binomial standard errors.
    x = np.ones((1, 20000), np.float32)  # the next test's shape: one compiled draw for both
    out = np.asarray(stax.Dropout(RATE)[1]((), x, rng=_key(0)))
    assert set(np.unique(out)) <= {0.0, np.float32(1 / RATE)}
    kept = np.mean(out > 0)
    assert abs(kept - RATE) < 4.5 * np.sqrt(RATE * (1 - RATE) / out.size)


def test_serial_splits_the_key_so_each_dropout_draws_its_own_mask():
    # Two Dropout(0.5) in a row keep a quarter of the entries; with one key shared they would keep a half.
    x = np.ones((1, 20000), np.float32)
    out = np.asarray(stax.serial(stax.Dropout(0.5), stax.Dropout(0.5))[1](((), ()), x, rng=_key(0)))
    assert abs(np.mean(out > 0) - 0.25) < 4.5 * np.sqrt(0.25 * 0.75 / out.size)


def test_padded_positions_stay_padding_through_dropout():
    # apply_fn(..., mask_constant=c): the mask of real steps passes through, padded steps come back as c.
    x = np.random.default_rng(2).normal(size=(2, 3, 2)).astype(np.float32)
    x[0, 2] = 7.0
    out = np.asarray(stax.Dropout(RATE)[1]((), x, rng=_key(1), mask_constant=7.0))
    assert np.all(out[0, 2] == 7.0) and not np.any(out[[0, 0, 1, 1, 1], [0, 1, 0, 1, 2]] == 7.0)


def test_empirical_ntk_takes_rng_and_differentiates_the_whole_batch():
    # As neural-tangents' empirical_ntk_fn(apply_fn)(x, x, params, rng=key): the masks apply_fn draws for the
    # whole batch (not for each input alone). Reference by hand for f = W2 . (m / rate * relu(z)) / sqrt(8),
    # z = 1.5 W1 . x / 2, with m the Dropout's mask (serial gives its third layer the third of 4 split keys):
    # Theta = g . g' / 8 + (1.5^2 / 4) (x . x') (delta . delta'), g = m / rate * relu(z),
    # delta = W2 / sqrt(8) * m / rate * [z > 0].
    init, apply, _ = stax.serial(stax.Dense(8, W_std=1.5), stax.Relu(), stax.Dropout(0.5), stax.Dense(1))
    x = X.astype(np.float32)
    params, key = _params(init, x.shape, 0), _key(1)
    (w1, _), _, _, (w2, _) = params
    keep = np.asarray(jax.random.bernoulli(jax.random.split(key, 4)[2], 0.5, (3, 8)))
    z = 1.5 * x @ w1 / 2
    g = keep / 0.5 * np.maximum(z, 0)
    delta = w2[:, 0] / np.sqrt(8) * keep / 0.5 * (z > 0)
    want = g @ g.T / 8 + 1.5**2 / 4 * (x @ x.T) * (delta @ delta.T)
    got = nt.empirical_ntk_fn(apply)(x, x, params, rng=key)
    # float32 sums of about 50 terms in another order.
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


# --- Refusals --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.0, -0.1, 1.5])
def test_rate_outside_zero_one_is_refused(rate):
    with pytest.raises(ValueError, match=r"Dropout: `rate` must be a keep probability in \(0, 1\]"):
        stax.Dropout(rate)


def test_mode_other_than_train_or_test_is_refused():
    with pytest.raises(ValueError, match="Dropout.*`mode`"):
        stax.Dropout(0.5, mode="eval")


def test_apply_fn_without_rng_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"Dropout: mode='train' draws a random mask and needs a PRNG key: call "
                                         r"apply_fn\(params, x, rng="):
        stax.Dropout(RATE)[1]((), X)


def test_dropout_on_the_inputs_is_refused():
    with pytest.raises(ValueError, match=r"Dropout: mode='train' on the network's inputs \(no Dense or Conv before "
                                         r"it\) is not implemented"):
        stax.serial(stax.Dropout(RATE), stax.Dense(1))[2](X, None, "nngp")


def test_activation_after_dropout_is_refused():
    # The output of Dropout is a mixture over the masks, not Gaussian (neural-tangents refuses it too).
    with pytest.raises(ValueError, match=r"Relu: an activation needs Gaussian inputs"):
        stax.serial(stax.Dense(1), stax.Dropout(RATE), stax.Relu())[2](X, None, "nngp")


def test_rate_one_is_the_identity_in_training_mode():
    # Every unit kept: no mask, no factor, no key needed, and the output stays Gaussian (an activation may follow).
    k = Kernel(X @ X.T, X @ X.T, np.sum(X * X, 1), None, X.shape, X.shape, is_gaussian=True)
    assert kernel_map_of(stax.Dropout(1.0))(k) is k
    np.testing.assert_array_equal(np.asarray(stax.Dropout(1.0)[1]((), X)), X)
