"""The Marchenko-Pastur law and the spectra of random-feature Gram matrices and of the empirical NTK."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad

from ntkcourse import empirical, stax
from ntkcourse import random_matrix as rm
from ntkcourse.spectral import sphere_data

ABS_CENTRED = lambda z: jnp.abs(z) - math.sqrt(2 / math.pi)  # noqa: E731  E[f] = E[f'] = 0
ABS_VARIANCE = 1 - 2 / math.pi  # E[f(z)^2]


@pytest.mark.parametrize("ratio", [0.25, 0.5, 2.0])
def test_cdf_is_the_integral_of_the_density_plus_the_atom(ratio):
    # Adaptive quadrature of the density (error < 1e-10) against the Gauss-Legendre closed form.
    lo, hi = rm.marchenko_pastur_edges(ratio, 1.3)
    atom = max(0.0, 1 - 1 / ratio)
    for x in (lo + 0.3 * (hi - lo), lo + 0.8 * (hi - lo), hi):
        mass = quad(lambda t: float(rm.marchenko_pastur_density(t, ratio, 1.3)), lo, x, limit=200)[0]
        assert float(rm.marchenko_pastur_cdf(x, ratio, 1.3)) == pytest.approx(atom + mass, abs=1e-9)


def test_wishart_eigenvalues_follow_the_law_and_fill_its_edges():
    # Z 400 x 800 Gaussian (gamma = 1/2). Eigenvalues of Wishart matrices are rigid: the KS distance
    # is O(1/n) (measured 0.007-0.010 over seeds), far below the 1/sqrt(n) = 0.05 of independent
    # samples; 0.02 is the tolerance. The extremes sit within Tracy-Widom fluctuations, of scale
    # m^(-2/3) (1 + sqrt g)^(4/3) (1 + 1/sqrt g)^(1/3) = 0.03 at the top, of the edges: 0.15 allows 5 scales.
    z = np.random.default_rng(0).standard_normal((400, 800))
    eig = np.linalg.eigvalsh(z @ z.T / 800)
    lo, hi = rm.marchenko_pastur_edges(0.5)
    assert rm.ks_distance(eig, 0.5) < 0.02
    assert abs(eig[-1] - hi) < 0.15 and abs(eig[0] - lo) < 0.05


def test_centred_features_with_zero_mean_slope_follow_marchenko_pastur():
    # f(z) = |z| - sqrt(2/pi): E[f'] = 0, so Pennington & Worah (2017) predict MP with sigma^2 = E[f^2]
    # and gamma = n/m. Measured KS: 0.017 (n = 200), 0.009 (400), 0.0055 (800); tolerance 0.02 at n = 400.
    eig = rm.random_feature_gram_eigenvalues(ABS_CENTRED, 400, 400, 800, seed=1)
    assert rm.ks_distance(eig, 0.5, ABS_VARIANCE) < 0.02


def test_tanh_features_do_not_follow_marchenko_pastur():
    # tanh has E[f'] > 0: its linear part correlates the features and the law changes. Same sizes as
    # above, the KS distance to MP with sigma^2 = E[tanh(z)^2] is above 0.2 (measured 0.24), ten
    # times the centred features' 0.02.
    sigma2 = float(np.mean(np.tanh(np.random.default_rng(0).standard_normal(10**6)) ** 2))
    eig = rm.random_feature_gram_eigenvalues(jnp.tanh, 400, 400, 800, seed=1)
    assert rm.ks_distance(eig, 0.5, sigma2) > 0.2


def test_bad_ratio_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"marchenko_pastur_edges: `ratio` must be n / m > 0"):
        rm.marchenko_pastur_edges(0.0)


def test_top_eigenvalues_of_a_wide_empirical_ntk_are_those_of_the_limit():
    # Two-hidden-layer ReLU network (W_std = sqrt 2), 100 points on the sphere. At width 4096 the top
    # five eigenvalues of the empirical NTK differ from the infinite-width kernel's by 1.7% +- 0.8%
    # (sum of absolute differences over their sum; 3 seeds measured); fluctuations shrink like
    # width^(-1/2) (7-8% at width 64-256). Tolerance: 5% for each of 2 seeds.
    def net(width):
        return stax.serial(stax.Dense(width, W_std=math.sqrt(2)), stax.Relu(),
                           stax.Dense(width, W_std=math.sqrt(2)), stax.Relu(), stax.Dense(1))

    x = sphere_data(100, 5, seed=0)
    with jax.enable_x64(True):
        limit = np.linalg.eigvalsh(np.asarray(net(1)[2](x, None, "ntk")))[::-1][:5]
        for seed in (0, 1):
            _, params = net(4096)[0](jax.random.PRNGKey(seed), x.shape)
            emp = np.linalg.eigvalsh(np.asarray(empirical.empirical_ntk_fn(net(4096))(x, None, params)))[::-1][:5]
            assert np.abs(emp - limit).sum() / limit.sum() < 0.05


def _relu_features(width):
    # Two hidden ReLU layers, read at the last hidden layer (after its activation): the conjugate kernel.
    return stax.serial(stax.Dense(width, W_std=math.sqrt(2)), stax.Relu(),
                       stax.Dense(width, W_std=math.sqrt(2)), stax.Relu())


def test_conjugate_kernel_spectrum_approaches_its_limit_like_width_to_the_minus_half():
    # 40 points of S^4, widths 64 ... 1024, 6 seeds: the relative ℓ2 error of the sorted spectrum is a sum of
    # O(N^-1/2) fluctuations and an O(1/N) bias, so its fitted exponent is −1/2 or a little steeper (measured
    # −0.62 ± 0.09 with 10 seeds). The window [−0.85, −0.35] is ~4 standard errors around −0.6.
    x = sphere_data(40, 5, seed=0)
    spectra = rm.conjugate_kernel_spectra(_relu_features, x, [64, 128, 256, 512, 1024], seeds=6)
    slope = float(np.polyfit(np.log(spectra.widths), np.log(spectra.errors.mean(axis=1)), 1)[0])
    assert -0.85 <= slope <= -0.35, (slope, spectra.errors.mean(axis=1))


def test_conjugate_kernel_limit_is_the_nngp_spectrum_of_the_last_hidden_layer():
    # The limit's eigenvalues are those of kernel_fn(x, None, "nngp") of the feature network (to round-off),
    # and the largest, ~ mean of K times n for this near-constant top eigenvector, is far above the rest.
    x = sphere_data(30, 5, seed=1)
    spectra = rm.conjugate_kernel_spectra(_relu_features, x, [256], seeds=1)
    with jax.enable_x64(True):
        k = np.asarray(_relu_features(1)[2](x, None, "nngp"), np.float64)
    assert np.allclose(spectra.limit, np.linalg.eigvalsh(k)[::-1], rtol=0, atol=1e-12 * np.trace(k))
    assert spectra.empirical.shape == (1, 1, 30) and np.all(np.diff(spectra.empirical[0, 0]) <= 0)


def test_a_network_that_does_not_end_at_its_hidden_layer_is_refused():
    with pytest.raises(ValueError, match=r"conjugate_kernel_spectra: the network of width 64 must output its last "
                                         r"hidden layer, of shape \(10, 64\); got \(10, 1\)"):
        rm.conjugate_kernel_spectra(lambda w: stax.serial(stax.Dense(w), stax.Relu(), stax.Dense(1)),
                                    sphere_data(10, 3, seed=0), [64], seeds=1)
