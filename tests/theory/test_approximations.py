"""Specification of ntkcourse.approximations: arc-cosine random features for the ReLU NNGP/NTK, and Nyström."""
import warnings

import numpy as np
import pytest

from ntkcourse import stax
from ntkcourse.approximations import (
    nystrom_errors,
    nystrom_features,
    nystrom_kernel,
    random_feature_errors,
    relative_error,
    relu_random_feature_kernels,
    relu_random_features,
    select_landmarks,
)
from ntkcourse.spectral import sphere_data

ARCH = dict(W_std=1.5, b_std=0.1, W_std_out=0.9, b_std_out=0.2)


@pytest.fixture(scope="module")
def exact():
    """Inputs (norm √d, as the stax convention x·x'/d expects) and the engine's exact NNGP and NTK."""
    x = sphere_data(20, 5, seed=0) * np.sqrt(5)
    _, _, kernel_fn = stax.serial(stax.Dense(512, W_std=ARCH["W_std"], b_std=ARCH["b_std"]), stax.Relu(),
                                  stax.Dense(1, W_std=ARCH["W_std_out"], b_std=ARCH["b_std_out"]))
    k = kernel_fn(x, None, ("nngp", "ntk"))
    return x, np.asarray(k.nngp, np.float64), np.asarray(k.ntk, np.float64)


@pytest.mark.parametrize("kernel", ["nngp", "ntk"])
def test_feature_gram_matrix_equals_the_kernel_estimate(exact, kernel):
    """The explicit features φ (⊕ ψ) and the feature-free kernel estimate are the same numbers (1e-12)."""
    x = exact[0]
    feats = relu_random_features(x, 300, kernel=kernel, seed=4, **ARCH)
    est = relu_random_feature_kernels(x, n_features=300, seed=4, **ARCH)
    np.testing.assert_allclose(feats @ feats.T, getattr(est, kernel), atol=1e-12)


def test_random_features_converge_to_the_exact_kernels(exact):
    """M = 5·10⁴ features: relative Frobenius error below 3% for both kernels.

    The error is Monte Carlo, ≈ 1.5/√M ≈ 0.007 here (the constant 1.5 is measured in the slope test
    below: 0.19 at M = 64); 3% leaves a factor 4 of margin while still failing any wrong derivation
    (a missing or mis-scaled term is ≥ 10% off).
    """
    x, nngp, ntk = exact
    est = relu_random_feature_kernels(x, n_features=50_000, seed=1, **ARCH)
    assert relative_error(est.nngp, nngp) < 0.03
    assert relative_error(est.ntk, ntk) < 0.03


def test_random_feature_error_falls_like_one_over_root_m(exact):
    """RMS error over 10 seeds against M ∈ {64, …, 16384}: log-log slope −1/2 ± 0.1.

    iid features make E‖K̂ − K‖²_F = C/M exactly, so the RMS error has slope −1/2; with 10 seeds the
    fitted slope scatters by about ±0.03 (measured over seed offsets), so ±0.1 is a ~3σ band.
    """
    x, nngp, ntk = exact
    errs = random_feature_errors(x, nngp, ntk, [64, 256, 1024, 4096, 16384], n_seeds=10, seed=0, **ARCH)
    for name in ("nngp", "ntk"):
        rms = np.sqrt(np.mean(errs.errors[name] ** 2, axis=1))
        slope = np.polyfit(np.log(errs.sizes), np.log(rms), 1)[0]
        assert slope == pytest.approx(-0.5, abs=0.1), name


def test_same_seed_shares_the_weights_across_batches(exact):
    """Features of x[:5] and x[5:] with one seed give the cross block of the full estimate (1e-12)."""
    x = exact[0]
    full = relu_random_feature_kernels(x, n_features=500, seed=3, **ARCH)
    cross = relu_random_feature_kernels(x[:5], x[5:], n_features=500, seed=3, **ARCH)
    np.testing.assert_allclose(cross.ntk, full.ntk[:5, 5:], atol=1e-12)


def test_nystrom_with_every_point_as_landmark_is_exact(exact):
    """All n points as landmarks: K_XX K_XX⁺ K_XX = K (1e-8 relative; K is well conditioned here)."""
    k = exact[2]
    approx = nystrom_kernel(k, k)
    assert relative_error(approx, k) < 1e-8


def test_nystrom_residual_is_psd_and_shrinks_with_nested_landmarks(exact):
    """K − K̃_m is PSD (≥ −1e-10·‖K‖) and its trace does not increase as nested landmarks are added."""
    k = exact[2]
    order = select_landmarks(k.shape[0], k.shape[0], seed=2)
    traces = []
    for m in (2, 5, 10, 15):
        idx = order[:m]
        residual = k - nystrom_kernel(k[:, idx], k[np.ix_(idx, idx)])
        assert np.linalg.eigvalsh(residual).min() >= -1e-10 * np.abs(k).max()
        traces.append(np.trace(residual))
    assert np.all(np.diff(traces) <= 1e-10)


def test_nystrom_features_reproduce_the_nystrom_kernel(exact):
    """F Fᵀ = K_XL K_LL⁺ K_LX (1e-10)."""
    k = exact[1]
    idx = select_landmarks(k.shape[0], 6, seed=0)
    feats = nystrom_features(k[:, idx], k[np.ix_(idx, idx)])
    np.testing.assert_allclose(feats @ feats.T, nystrom_kernel(k[:, idx], k[np.ix_(idx, idx)]), atol=1e-10)


def test_duplicate_landmarks_are_handled_by_the_pseudo_inverse(exact):
    """A landmark repeated makes K_LL singular: no warning, no NaN, the same approximation as without it (1e-8)."""
    k = exact[2]
    idx = np.array([0, 3, 7])
    dup = np.array([0, 3, 7, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        approx_dup = nystrom_kernel(k[:, dup], k[np.ix_(dup, dup)])
    np.testing.assert_allclose(approx_dup, nystrom_kernel(k[:, idx], k[np.ix_(idx, idx)]), atol=1e-8)


def test_nystrom_error_curve_decreases(exact):
    """nystrom_errors with nested landmarks: non-increasing in m for every seed, and 0 at m = n."""
    k = exact[2]
    errs = nystrom_errors(k, [1, 4, 10, 20], n_seeds=3).errors["kernel"]
    assert np.all(np.diff(errs, axis=0) <= 1e-12)
    assert np.all(errs[-1] < 1e-8)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: relu_random_features(x, 0), "^relu_random_features: `n_features` must be a positive integer, got 0"),
        (lambda x: relu_random_features(x, 10, kernel="cntk"),
         "^relu_random_features: `kernel` must be 'nngp' or 'ntk', got 'cntk'"),
        (lambda x: relu_random_features(x[0], 10),
         r"^relu_random_features: `x` must be a 2-D array \(n_points, d\) .*, got shape \(5,\)"),
        (lambda x: relu_random_feature_kernels(x, x[:, :2], n_features=5),
         "^relu_random_feature_kernels: `x2` must have the feature dimension of x1, 5, got 2"),
        (lambda x: relu_random_features(x, 10, seed="a"),
         "^relu_random_features: `seed` must be an int or a numpy.random.Generator, got 'a'"),
        (lambda x: select_landmarks(5, 6),
         r"^select_landmarks: `n_landmarks` must be an integer in \[1, n_points = 5\], got 6"),
        (lambda x: nystrom_kernel(np.ones((4, 3)), np.eye(2)),
         r"^nystrom_kernel: `k_x1_landmarks` must have shape \(n, 2\) .*, got shape \(4, 3\)"),
    ],
)
def test_bad_arguments_are_rejected_with_a_clear_message(exact, call, match):
    """Each error names the argument, the value received and what was expected."""
    with pytest.raises(ValueError, match=match):
        call(exact[0])


@pytest.mark.parametrize("source", ["features", "kernels"])
def test_random_features_carry_a_large_hidden_bias(source):
    """β_w = 2 and small inputs (x·x'/d ≈ 0.04): Σ₁ is mostly the hidden bias, so the NTK's ψ term,
    its hidden-bias column included, is about half of the kernel. 2·10⁴ features: Monte Carlo error
    ≈ 1.5/√M ≈ 1%; 4% tolerance. Without the hidden bias in ψ (or in the pre-activations) the NTK is off
    by ~45%, the NNGP (pre-activations) by ~95%."""
    arch = dict(W_std=1.0, b_std=2.0, W_std_out=1.0, b_std_out=0.0)
    x = sphere_data(6, 3, seed=2) * 0.2 * np.sqrt(3)
    k = stax.serial(stax.Dense(8, W_std=1.0, b_std=2.0), stax.Relu(), stax.Dense(1))[2](x, None, ("nngp", "ntk"))
    if source == "features":
        est = {name: (f @ f.T) for name in ("nngp", "ntk")
               for f in [relu_random_features(x, 20_000, kernel=name, seed=3, **arch)]}
    else:
        est = relu_random_feature_kernels(x, n_features=20_000, seed=3, **arch)._asdict()
    assert relative_error(est["nngp"], np.asarray(k.nngp, np.float64)) < 0.04
    assert relative_error(est["ntk"], np.asarray(k.ntk, np.float64)) < 0.04
