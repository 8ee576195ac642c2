"""Errors and fitted rates of kernel approximations (ntkcourse.approximation_rates).

Claims: the fitted exponent recovers a known power law; the top-k error
formula is the Frobenius error of the truncated matrix (Eckart–Young) and
vanishes at full rank; random-feature predictions converge at the Monte
Carlo rate M^{-1/2}; Nyström predictions become exact when every point is a
landmark; bad arguments are named.
"""
import numpy as np
import pytest

from ntkcourse import stax
from ntkcourse.approximation_rates import (
    fitted_rate,
    low_rank_errors,
    low_rank_kernel,
    nystrom_prediction_errors,
    random_feature_prediction_errors,
)
from ntkcourse.spectral import sphere_data

ARCH = dict(W_std=1.5, b_std=0.1, W_std_out=0.9, b_std_out=0.2)


@pytest.fixture(scope="module")
def data():
    d = 5
    x = sphere_data(60, d, seed=0) * np.sqrt(d)        # norm √d: the stax convention x·x'/d
    xt = sphere_data(15, d, seed=1) * np.sqrt(d)
    y = np.sin(2 * x[:, 0])
    kernel_fn = stax.serial(stax.Dense(512, W_std=ARCH["W_std"], b_std=ARCH["b_std"]), stax.Relu(),
                            stax.Dense(1, W_std=ARCH["W_std_out"], b_std=ARCH["b_std_out"]))[2]
    k = np.asarray(kernel_fn(x, None, "ntk"))
    kt = np.asarray(kernel_fn(xt, x, "ntk"))
    return x, xt, y, k, kt


def test_fitted_rate_recovers_a_power_law():
    sizes = np.array([10, 40, 160, 640])
    noise = np.array([[1.0, 1.1], [0.9, 1.0], [1.1, 0.95], [1.0, 1.05]])   # seed-to-seed factors
    rate = fitted_rate(sizes, 3.0 * sizes[:, None] ** -0.5 * noise)
    assert rate.slope == pytest.approx(-0.5, abs=0.05)          # the factors stay within ±10%
    assert rate.per_seed.shape == (2,) and rate.spread > 0


def test_low_rank_error_is_the_frobenius_error_of_the_truncation(data):
    k = data[3]
    for r in (1, 5, 20):
        direct = np.linalg.norm(low_rank_kernel(k, r) - k) / np.linalg.norm(k)
        assert low_rank_errors(k, [r])[0] == pytest.approx(direct, rel=1e-8)


def test_low_rank_error_vanishes_at_full_rank(data):
    assert low_rank_errors(data[3], [60])[0] == 0.0


def test_random_feature_predictions_converge_at_the_monte_carlo_rate(data):
    x, xt, y, k, kt = data
    sizes = [64, 256, 1024, 4096]
    errs = random_feature_prediction_errors(x, y, xt, k, kt, sizes, ridge=0.1 * np.trace(k) / 60, n_seeds=4,
                                            **ARCH).errors["prediction"]
    rate = fitted_rate(sizes, errs)
    # Monte Carlo: -1/2. Four seeds and a 64-fold range of M give a seed-to-seed spread of about 0.05.
    assert -0.65 < rate.slope < -0.35


def test_nystrom_predictions_are_exact_with_every_point_a_landmark(data):
    _, _, y, k, kt = data
    errs = nystrom_prediction_errors(k, kt, y, [60], ridge=0.1 * np.trace(k) / 60, n_seeds=2).errors["prediction"]
    assert np.max(errs) < 1e-8                          # the same kernel up to the round-off of K_LL^{-1/2}


def test_a_rate_from_three_sizes_is_refused():
    with pytest.raises(ValueError, match="fitted_rate: `sizes` must be at least 4 positive sizes"):
        fitted_rate([1, 2, 3], [[1.0], [0.5], [0.3]])


def test_a_fractional_rank_is_refused(data):
    with pytest.raises(ValueError, match="low_rank_errors: `ranks` must be a positive integer, got 2.5"):
        low_rank_errors(data[3], [2.5])
