"""Specification of ntkcourse.spectral: eigen-analysis, mode convergence, learning-rate bound, spectral bias."""
import warnings

import numpy as np
import pytest

from ntkcourse import stax
from ntkcourse.dynamics import gradient_flow_prediction
from ntkcourse.spectral import (
    KernelNotPSDWarning,
    circle_data,
    condition_number,
    effective_rank,
    fourier_amplitudes,
    kernel_eigendecomposition,
    kernel_spectrum,
    max_learning_rate,
    mode_convergence,
    mode_projections,
    sphere_data,
    spectral_bias_curves,
)


@pytest.fixture(scope="module")
def ntk_fn():
    """One-hidden-layer ReLU NTK with a small bias (so that every frequency on the circle has λ > 0)."""
    _, _, kernel_fn = stax.serial(stax.Dense(512, W_std=1.5, b_std=0.5), stax.Relu(), stax.Dense(1))
    return lambda x: np.asarray(kernel_fn(x, None, "ntk"), dtype=np.float64)


def test_spectrum_is_descending_and_reconstructs_the_kernel(ntk_fn):
    """K = V diag(λ) Vᵀ with λ descending and ≥ 0, to round-off (1e-12 relative)."""
    k = ntk_fn(sphere_data(20, 3, seed=1))
    lam, vecs = kernel_spectrum(k)
    assert np.all(np.diff(lam) <= 0) and lam[-1] >= 0
    np.testing.assert_allclose(vecs @ np.diag(lam) @ vecs.T, k, atol=1e-12 * np.abs(k).max())


def test_round_off_negative_eigenvalues_are_clipped_silently():
    """A PSD rank-2 matrix has eigenvalues ±1e-16 from round-off: clipped to 0 without a warning, rank 2."""
    phi = np.random.default_rng(0).standard_normal((6, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eig = kernel_eigendecomposition(phi @ phi.T)
    assert eig.rank == 2 and np.all(eig.eigenvalues[2:] == 0.0)


def test_negative_eigenvalues_beyond_round_off_warn():
    """An eigenvalue of −10⁻³·λ_max is far beyond n·ε·λ_max: KernelNotPSDWarning, and it is clipped to 0."""
    with pytest.warns(KernelNotPSDWarning, match="smallest eigenvalue is -0.001"):
        eig = kernel_eigendecomposition(np.diag([1.0, 0.5, -1e-3]))
    assert eig.eigenvalues[-1] == 0.0 and eig.min_raw_eigenvalue == pytest.approx(-1e-3)


def test_mode_convergence_is_the_exponential_decay():
    """Gradient flow leaves e^{−ηλt} of each mode; GD (1 − ηλ)^s; exactly the formulas (1e-15)."""
    lam = np.array([2.0, 0.5, 0.0])
    np.testing.assert_allclose(mode_convergence(lam, [0.0, 3.0], learning_rate=0.1),
                               [[1, 1, 1], np.exp(-0.3 * lam)], rtol=1e-15)
    np.testing.assert_allclose(mode_convergence(lam, 7, learning_rate=0.1, discrete=True), (1 - 0.1 * lam) ** 7,
                               rtol=1e-14)


def test_mode_convergence_predicts_the_residual_of_gradient_flow(ntk_fn):
    """Projecting the closed-form training residual on the eigenvectors gives e^{−ηλt} times its start (1e-10)."""
    k = ntk_fn(sphere_data(15, 4, seed=2))
    y = np.random.default_rng(2).standard_normal(15)
    times = np.array([0.5, 5.0])
    out = gradient_flow_prediction(k, y, times, learning_rate=0.3)
    lam, coeffs = mode_projections(k, y)
    _, vecs = kernel_spectrum(k)
    measured = (y - out.train) @ vecs                       # (T, n) residual coefficients
    np.testing.assert_allclose(measured, mode_convergence(lam, times, 0.3) * coeffs[None], atol=1e-10)


def test_ridge_modes_converge_to_the_ridge_fit():
    """With ridge ρ a mode keeps ρ/(λ+ρ) of its residual at t = ∞ (weight decay towards θ₀)."""
    frac = mode_convergence(np.array([3.0, 1.0, 0.0]), np.inf, ridge=1.0)
    np.testing.assert_allclose(frac, [0.25, 0.5, 1.0], rtol=1e-15)


def test_condition_number_of_a_known_spectrum():
    """κ(diag(4, 2, 1)) = 4; with ridge 1 it is 5/2; a singular kernel has κ = ∞."""
    assert condition_number(np.diag([4.0, 2.0, 1.0])) == pytest.approx(4.0)
    assert condition_number(np.array([4.0, 2.0, 1.0]), ridge=1.0) == pytest.approx(2.5)
    assert condition_number(np.diag([1.0, 0.0])) == np.inf


@pytest.mark.parametrize("kind", ["entropy", "participation"])
def test_effective_rank_counts_equal_eigenvalues(kind):
    """r equal non-zero eigenvalues (and zeros) have effective rank exactly r (1e-12)."""
    assert effective_rank(np.array([3.0, 3.0, 3.0, 0.0, 0.0]), kind=kind) == pytest.approx(3.0, rel=1e-12)


def test_effective_rank_lies_between_one_and_n(ntk_fn):
    """For a real NTK the effective rank is in [1, n], and a spread spectrum gives more than 1."""
    k = ntk_fn(sphere_data(30, 5, seed=3))
    for kind in ("entropy", "participation"):
        r = effective_rank(k, kind=kind)
        assert 1.0 < r <= 30.0


def test_max_learning_rate_is_two_over_the_top_eigenvalue(ntk_fn):
    """η_max = 2(1+μ)/(λ_max+ρ) (loss ½Σ(f−y)², sum over points), against numpy's eigvalsh (1e-12)."""
    k = ntk_fn(sphere_data(12, 3, seed=4))
    top = np.linalg.eigvalsh(k).max()
    assert max_learning_rate(k) == pytest.approx(2 / top, rel=1e-12)
    assert max_learning_rate(k, momentum=0.9, ridge=0.5) == pytest.approx(3.8 / (top + 0.5), rel=1e-12)


def test_fourier_modes_are_eigenvectors_on_the_circle_grid(ntk_fn):
    """On evenly spaced circle points a dot-product kernel is circulant: K cos(kφ) = λₖ cos(kφ) (1e-10)."""
    data = circle_data(32, frequencies=(1,))
    k = ntk_fn(data.x)
    for freq in (1, 2, 3, 5):
        v = np.cos(freq * data.angles)
        kv = k @ v
        lam = v @ kv / (v @ v)
        np.testing.assert_allclose(kv, lam * v, atol=1e-10 * np.abs(kv).max())


def test_fourier_amplitudes_recover_the_harmonics():
    """circle_data(amplitudes a, phases ψ): fourier_amplitudes returns a for each frequency (1e-12)."""
    data = circle_data(40, frequencies=(1, 3, 7), amplitudes=(1.0, 0.5, 0.25), phases=(0.3, 1.0, -2.0))
    np.testing.assert_allclose(fourier_amplitudes(data.y, data.angles, (1, 3, 7, 5)), [1.0, 0.5, 0.25, 0.0],
                               atol=1e-12)


def test_spectral_bias_low_frequencies_are_learned_first(ntk_fn):
    """ReLU NTK on the circle: eigenvalues fall with frequency, so at every t > 0 the residual fraction left
    rises with frequency (1 < 2 < 4 < 8), and each equals e^{−ηλₖt} with λₖ the Fourier mode's eigenvalue (1e-8).
    """
    data = circle_data(64, frequencies=(1, 2, 4, 8))
    k = ntk_fn(data.x)
    times = np.logspace(-1, 3, 9)
    amps = spectral_bias_curves(k, data.y, data.angles, times, (1, 2, 4, 8), learning_rate=0.05)
    assert np.all(np.diff(amps, axis=1) > 0)
    lam = [np.cos(f * data.angles) @ k @ np.cos(f * data.angles) / (32.0) for f in (1, 2, 4, 8)]
    np.testing.assert_allclose(amps, np.exp(-0.05 * np.outer(times, lam)), atol=1e-8)


def test_sphere_data_lies_on_the_unit_sphere():
    """‖x‖ = 1 to round-off, with the requested shape."""
    x = sphere_data(50, 6, seed=9)
    assert x.shape == (50, 6)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-14)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: circle_data(16, frequencies=(9,)), "below n_points/2 = 8"),
        (lambda: circle_data(1), "^circle_data: `n_points` must be an integer ≥ 2, got 1"),
        (lambda: mode_convergence(np.ones(3), -1.0), r"`t` must be non-negative \(training runs forward from t = 0\), got -1"),
        (lambda: effective_rank(np.ones(3), kind="renyi"), "^effective_rank: `kind` must be 'entropy' or 'participation', got 'renyi'"),
        (lambda: max_learning_rate(np.eye(2), momentum=1.5), r"max_learning_rate: `momentum` must be a number in \[0, 1\), got 1.5"),
        (lambda: mode_projections(np.eye(3), np.ones(4)),
         r"^mode_projections: `y` must have shape \(n,\) or \(n, k\) with n = 3 .*, got shape \(4,\)"),
    ],
)
def test_bad_arguments_are_rejected_with_a_clear_message(call, match):
    """Each error names the argument, the value received and what was expected."""
    with pytest.raises(ValueError, match=match):
        call()


def test_data_generators_live_in_data_and_spectral_keeps_the_old_names():
    """One job per module: the generators are ntkcourse.data.synthetic's; spectral re-exports the same objects."""
    from ntkcourse import data
    from ntkcourse.data import synthetic

    assert circle_data is synthetic.circle_data is data.circle_data
    assert sphere_data is synthetic.sphere_data is data.sphere_data


def test_round_off_tolerance_is_n_times_epsilon_times_the_largest_eigenvalue():
    """A diagonal 10x10 kernel (eigh is exact on it): tol = 10·ε·2. Eigenvalues ±5ε lie inside it, so
    they are clipped to 0 silently and the rank is 3; with ε·max|λ| alone they would count or warn."""
    eps = np.finfo(np.float64).eps
    k = np.diag([2.0, 0.5, 0.25, 5 * eps, -5 * eps, 0, 0, 0, 0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eig = kernel_eigendecomposition(k)
    assert eig.tolerance == 10 * eps * 2.0
    assert eig.rank == 3
    np.testing.assert_array_equal(eig.eigenvalues, [2.0, 0.5, 0.25] + [0.0] * 7)
