"""Finite width against infinite width: the empirical NTK converges to the analytic one like width^(−1/2).

Claims, each a fitted log–log slope over a range of widths, with the tolerance it needs:
- ‖Θ̂ − Θ‖/‖Θ‖ at initialisation: slope −1/2 (Jacot et al. 2018) for a 2-hidden-layer MLP at widths
  64…4096 and for a 2-layer CNN at 64…4096 channels (2 × 2 filters on 4 × 4 images: a conv layer's
  cost grows like channels² times filter size times positions). MLP ±0.15: with 6 seeds per width
  the mean deviation is known to about ±15%, which moves a slope fitted over a factor 64 by about
  ±0.05. CNN ±0.17: 4–5 standard errors of its fit (see the test).
- training changes the kernel at least as fast as width^(−1/2) (Lee et al. 2019's bound) and the
  weights of a one-hidden-layer network like width^(−1/2);
- the output's Hessian shrinks like width^(−1/2) while the gradient stays (Liu, Zhu & Belkin 2020).
"""
import functools

import jax
import numpy as np
import pytest

from ntkcourse import stax
from ntkcourse.finite_width import (
    WidthSweep,
    fit_loglog_slope,
    hessian_norm_vs_width,
    ntk_change_vs_width,
    ntk_fluctuation_vs_width,
)


def _mlp(width):
    return stax.serial(
        stax.Dense(width, W_std=1.5, b_std=0.1), stax.Relu(),
        stax.Dense(width, W_std=1.5, b_std=0.1), stax.Relu(),
        stax.Dense(1, W_std=1.5, b_std=0.1),
    )


def _cnn(channels):
    # 2 x 2 filters, VALID: 4 x 4 images -> 3 x 3 -> 2 x 2 positions; the patches overlap and both
    # conv layers share their filter between positions. The C -> C filter has 4 C² weights.
    return stax.serial(
        stax.Conv(channels, (2, 2), padding="VALID", W_std=1.5, b_std=0.1), stax.Relu(),
        stax.Conv(channels, (2, 2), padding="VALID", W_std=1.5, b_std=0.1), stax.Relu(),
        stax.Flatten(), stax.Dense(1, W_std=1.5),
    )


def _one_hidden(width, activation=stax.Relu):
    return stax.serial(stax.Dense(width, W_std=1.5, b_std=0.1), activation(), stax.Dense(1, W_std=1.5, b_std=0.1))


@pytest.mark.slow
def test_empirical_ntk_of_an_mlp_converges_to_the_analytic_ntk_like_inverse_root_width():
    x = np.random.default_rng(0).standard_normal((6, 8))
    sweep = ntk_fluctuation_vs_width(_mlp, [64, 256, 1024, 4096], x, jax.random.PRNGKey(0), n_seeds=6)
    assert sweep.values.shape == (4, 6)
    assert np.all(np.diff(sweep.mean) < 0)
    assert sweep.slope == pytest.approx(-0.5, abs=0.15)
    assert sweep.mean[-1] < 0.08


@pytest.mark.slow
def test_empirical_ntk_of_a_cnn_converges_to_the_analytic_ntk_like_inverse_root_width():
    """Conv-Relu-Conv-Relu-Flatten-Dense (``_cnn``) on four 4 × 4 × 3 images at 64, 256, 1024 and
    4096 channels, 12 networks per width (``ntk_fluctuation_vs_width`` draws the same number at every
    width, so its unweighted ``slope`` is the right fit).

    Measured: mean errors 0.154, 0.068, 0.044, 0.018, slope −0.496. The per-network error has a
    coefficient of variation (CV) of 0.32–0.40 here and 0.43–0.48 over 96 networks at 64 and 256
    channels; the slope's SE is CV / sqrt(12 Σ(log w − mean log w)²) = CV / 10.7 = 0.034–0.042, so
    ±0.17 is 4–5 SE, and a slope of 0 or −1 is 12–15 SE from −1/2. Two other keys gave
    slopes −0.460 and −0.536.

    Run time 43–77 s on 2 cores (varying with other load), peak memory 2.5 GB: each 4096-channel
    network (4 × 4096² = 67 M conv weights) costs ~4 s, its threefry draw and the structured NTK
    through XLA's CPU convolution, and each width one ~5 s XLA compilation inside
    ``ntk_fluctuation_vs_width`` (~20 s in all). Four images rather than eight: the CV hardly changes (0.45 against 0.42, 96
    networks at 64 and 256 channels), the cost per network halves."""
    x = np.random.default_rng(1).standard_normal((4, 4, 4, 3))
    sweep = ntk_fluctuation_vs_width(_cnn, [64, 256, 1024, 4096], x, jax.random.PRNGKey(1), n_seeds=12)
    assert sweep.slope == pytest.approx(-0.5, abs=0.17), (sweep.slope, sweep.mean)


def test_training_changes_kernel_and_weights_less_when_wider():
    """One hidden layer (erf), 20 steps at the default learning rate 1/λ_max(Θ): kernel change falls at least like
    width^(−1/2) (measured ≈ −1, the 1/n of smooth networks), the weights' relative change like width^(−1/2)
    (every weight moves O(1/n); first layer d×n, readout n entries: ‖Δθ‖/‖θ‖ ∝ n^(−1/2))."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 4))
    y = np.sin(x[:, 0])
    change = ntk_change_vs_width(functools.partial(_one_hidden, activation=stax.Erf), [64, 1024], x, y,
                                 jax.random.PRNGKey(2), steps=20, n_seeds=2)
    assert change.kernel.slope < -0.4
    assert change.weights.slope == pytest.approx(-0.5, abs=0.2)
    assert set(change.layers) == {"params[0][0]", "params[0][1]", "params[2][0]", "params[2][1]"}
    assert np.all(change.loss < 0.5 * np.sum(y**2))
    assert change.learning_rate > 0


def test_hessian_of_the_output_vanishes_with_width_while_the_gradient_stays():
    x = np.random.default_rng(3).standard_normal((2, 4))
    scaling = hessian_norm_vs_width(_one_hidden, [64, 1024], x, jax.random.PRNGKey(3), n_seeds=1, n_iter=20)
    assert scaling.hessian.slope == pytest.approx(-0.5, abs=0.1)
    assert abs(scaling.gradient.slope) < 0.1


def test_slope_fit_recovers_a_power_law_exactly():
    widths = np.array([16, 64, 256])
    assert fit_loglog_slope(widths, 3.0 * widths**-0.5) == pytest.approx(-0.5, abs=1e-12)
    sweep = WidthSweep(widths, np.stack([2.0 / widths, 4.0 / widths], axis=1), "q", -1.0)
    assert sweep.slope == pytest.approx(-1.0, abs=1e-12)
    np.testing.assert_allclose(sweep.mean, 3.0 / widths)
    with pytest.raises(ValueError, match="positive and finite"):
        fit_loglog_slope([1, 2], [1.0, -1.0])


def test_bad_arguments_are_refused():
    x = np.ones((2, 3))
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="at least two positive integers"):
        ntk_fluctuation_vs_width(_one_hidden, [64], x, key)
    with pytest.raises(ValueError, match="`reference`"):
        ntk_fluctuation_vs_width(_one_hidden, [8, 16], x, key, reference="median")
    with pytest.raises(TypeError, match="layer triple"):
        ntk_fluctuation_vs_width(lambda w: None, [8, 16], x, key)
    with pytest.raises(ValueError, match="non-empty batch"):
        hessian_norm_vs_width(_one_hidden, [8, 16], np.ones(3), key)
    with pytest.raises(ValueError, match="rows"):
        ntk_change_vs_width(_one_hidden, [8, 16], x, np.ones(3), key)


def test_slope_stderr_vanishes_when_every_seed_follows_the_same_power_law():
    # Each seed is c_s * w^-1 with its own constant: every delete-one mean is an exact power law
    # of slope -1, so the jackknife sees no scatter (to rounding).
    widths = np.array([64, 256, 1024, 4096])
    sweep = WidthSweep(widths, np.outer(widths**-1.0, [1.0, 2.0, 3.0]), "q", -1.0)
    assert sweep.slope_stderr == pytest.approx(0.0, abs=1e-12)


def test_slope_stderr_matches_the_scatter_of_the_fitted_slope_over_repeated_sweeps():
    # 2000 synthetic sweeps (4 widths, 6 seeds, log-normal noise of 20%, seed 0): the standard
    # deviation of the fitted slope is 0.0264 and the mean jackknife error 0.0255 (measured). The
    # standard deviation itself is known to about 1/sqrt(2*2000) = 1.6%; ±15% allows the small
    # bias of the jackknife for a slope fitted to a mean, and fails for an error off by 1/sqrt(S).
    rng = np.random.default_rng(0)
    widths = np.array([64, 256, 1024, 4096])
    slopes, errors = [], []
    for _ in range(2000):
        sweep = WidthSweep(widths, widths[:, None] ** -0.5 * np.exp(0.2 * rng.standard_normal((4, 6))), "q", -0.5)
        slopes.append(sweep.slope)
        errors.append(sweep.slope_stderr)
    assert np.mean(errors) == pytest.approx(np.std(slopes), rel=0.15)


def test_slope_stderr_is_nan_with_one_seed():
    widths = np.array([64, 256, 1024])
    assert np.isnan(WidthSweep(widths, widths[:, None] ** -0.5, "q", -0.5).slope_stderr)


def test_jackknife_slope_error_matches_the_formula_on_a_hand_made_sweep():
    """Three seeds with known leave-one-out means: the error is sqrt((S-1)/S sum (p_j - mean p)^2)."""
    from ntkcourse.fitting import jackknife_loglog_slope

    widths = np.array([10.0, 100.0, 1000.0, 10000.0])
    # Seed s follows width^(-0.5 - 0.1 s): the leave-one-out means have different exponents.
    samples = np.stack([widths ** (-0.5 - 0.1 * s) for s in range(3)], axis=1)
    loo = [fit_loglog_slope(widths, np.delete(samples, j, axis=1).mean(axis=1)) for j in range(3)]
    expected = np.sqrt(2 / 3 * np.sum((np.array(loo) - np.mean(loo)) ** 2))
    p, err = jackknife_loglog_slope(widths, samples)
    assert p == pytest.approx(fit_loglog_slope(widths, samples.mean(axis=1)), abs=1e-12)
    assert err == pytest.approx(expected, rel=1e-12) and err > 0.01


def test_jackknife_slope_refuses_a_single_seed_naming_samples():
    from ntkcourse.fitting import jackknife_loglog_slope

    with pytest.raises(ValueError, match="`samples`.*at least 2 seeds"):
        jackknife_loglog_slope([1.0, 2.0, 4.0], np.ones((3, 1)))
