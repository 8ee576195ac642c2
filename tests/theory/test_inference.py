"""Specification of ntkcourse.inference: GP posteriors (NNGP, NTK-GP) and infinite ensembles (Lee et al. 2019)."""
import numpy as np
import pytest
import scipy.linalg

from ntkcourse import stax
from ntkcourse.dynamics import gradient_flow_prediction
from ntkcourse.inference import gp_posterior, infinite_ensemble_prediction, infinite_ensemble_predictor
from ntkcourse.spectral import IllConditionedKernelWarning

N_TRAIN, N_TEST = 10, 6


@pytest.fixture(scope="module")
def kernels():
    """NNGP and NTK of a two-hidden-layer ReLU network (engine) on random inputs, split train/test."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N_TRAIN + N_TEST, 3))
    _, _, kernel_fn = stax.serial(stax.Dense(512, W_std=1.5, b_std=0.05), stax.Relu(),
                                  stax.Dense(512, W_std=1.5, b_std=0.05), stax.Relu(), stax.Dense(1))
    k = kernel_fn(x, None, ("nngp", "ntk"))
    nngp, ntk = np.asarray(k.nngp, np.float64), np.asarray(k.ntk, np.float64)
    tr, te = slice(0, N_TRAIN), slice(N_TRAIN, None)
    return dict(
        x=x, kernel_fn=kernel_fn,
        nngp=nngp[tr, tr], nngp_t=nngp[te, tr], nngp_tt=nngp[te, te],
        ntk=ntk[tr, tr], ntk_t=ntk[te, tr], ntk_tt=ntk[te, te],
        y=rng.standard_normal(N_TRAIN),
    )


def cholesky_reference(k, y, kt, ktt, noise):
    """Textbook GP posterior with numpy's Cholesky: α = L⁻ᵀL⁻¹y, v = L⁻¹K_*ᵀ (Rasmussen & Williams, Alg. 2.1)."""
    chol = np.linalg.cholesky(k + noise * np.eye(k.shape[0]))
    alpha = scipy.linalg.solve_triangular(chol.T, scipy.linalg.solve_triangular(chol, y, lower=True), lower=False)
    v = scipy.linalg.solve_triangular(chol, kt.T, lower=True)
    return kt @ alpha, ktt - v.T @ v


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_gp_posterior_equals_a_direct_cholesky_solve(kernels, noise):
    """Mean and covariance equal the textbook Cholesky algorithm (same maths, different code; 1e-10)."""
    post = gp_posterior(kernels["nngp"], kernels["y"], kernels["nngp_t"], kernels["nngp_tt"], noise=noise)
    mean, cov = cholesky_reference(kernels["nngp"], kernels["y"], kernels["nngp_t"], kernels["nngp_tt"], noise)
    np.testing.assert_allclose(post.mean, mean, atol=1e-10)
    np.testing.assert_allclose(post.covariance, cov, atol=1e-10)


def test_diagonal_test_kernel_gives_the_variances(kernels):
    """Passing only diag(K_**) returns diag of the full posterior covariance (1e-12)."""
    full = gp_posterior(kernels["nngp"], kernels["y"], kernels["nngp_t"], kernels["nngp_tt"], noise=0.01)
    diag = gp_posterior(kernels["nngp"], kernels["y"], kernels["nngp_t"], np.diag(kernels["nngp_tt"]), noise=0.01)
    np.testing.assert_allclose(diag.covariance, np.diag(full.covariance), atol=1e-12)


def test_noise_free_posterior_at_the_training_points_is_the_data(kernels):
    """Test points = training points, σ² = 0: the posterior mean is y and the covariance vanishes (1e-8)."""
    post = gp_posterior(kernels["nngp"], kernels["y"], kernels["nngp"], kernels["nngp"])
    np.testing.assert_allclose(post.mean, kernels["y"], atol=1e-8)
    np.testing.assert_allclose(post.covariance, 0.0, atol=1e-8)


def test_posterior_covariance_is_psd(kernels):
    """Posterior covariance is PSD: smallest eigenvalue ≥ −1e-10·‖K_**‖ (round-off)."""
    post = gp_posterior(kernels["ntk"], kernels["y"], kernels["ntk_t"], kernels["ntk_tt"], noise=0.05)
    assert np.linalg.eigvalsh(post.covariance).min() >= -1e-10 * np.abs(kernels["ntk_tt"]).max()


def test_kernel_objects_from_kernel_fn_are_accepted(kernels):
    """get='nngp' reads .nngp from the engine's kernel objects: the same result as the arrays (1e-12)."""
    kf, x = kernels["kernel_fn"], kernels["x"]
    tr, te = x[:N_TRAIN], x[N_TRAIN:]
    post = gp_posterior(kf(tr, None, ("nngp", "ntk")), kernels["y"], kf(te, tr, ("nngp", "ntk")),
                        kf(te, None, ("nngp", "ntk")), noise=0.1, get="nngp")
    ref = gp_posterior(kernels["nngp"], kernels["y"], kernels["nngp_t"], kernels["nngp_tt"], noise=0.1)
    np.testing.assert_allclose(post.mean, ref.mean, atol=1e-12)
    np.testing.assert_allclose(post.covariance, ref.covariance, atol=1e-12)


def test_singular_prior_without_noise_asks_for_noise():
    """A rank-2 prior covariance and σ² = 0: ValueError or IllConditionedKernelWarning, each suggesting noise."""
    phi = np.random.default_rng(3).standard_normal((6, 2))
    k = phi @ phi.T
    with pytest.warns(IllConditionedKernelWarning, match="noise") if _cholesky_succeeds(k) else \
            pytest.raises(ValueError, match="add a noise"):
        gp_posterior(k, np.ones(6), k[:2])


def _cholesky_succeeds(k):
    try:
        np.linalg.cholesky(k)
        return True
    except np.linalg.LinAlgError:
        return False


def test_mismatched_test_kernel_is_rejected(kernels):
    """k_test_test of the wrong size is an error naming the expected shapes."""
    with pytest.raises(ValueError, match=r"^gp_posterior: `k_test_test` must have shape \(6, 6\) or \(6,\) .*, got shape"):
        gp_posterior(kernels["nngp"], kernels["y"], kernels["nngp_t"], np.eye(4))


def test_ensemble_at_time_zero_is_the_prior(kernels):
    """t = 0: ensemble mean 0 and covariance the NNGP prior, on train and test points (1e-12)."""
    out = infinite_ensemble_prediction(kernels["ntk"], kernels["nngp"], kernels["y"], 0.0,
                                       kernels["ntk_t"], kernels["nngp_t"], kernels["nngp_tt"])
    np.testing.assert_allclose(out.train_mean, 0.0, atol=1e-12)
    np.testing.assert_allclose(out.test_mean, 0.0, atol=1e-12)
    np.testing.assert_allclose(out.train_covariance, kernels["nngp"], atol=1e-12)
    np.testing.assert_allclose(out.test_covariance, kernels["nngp_tt"], atol=1e-12)


def test_ensemble_at_infinite_time_fits_the_training_data(kernels):
    """t = ∞ without ridge: every network interpolates, so train mean = y and train covariance = 0 (1e-9)."""
    out = infinite_ensemble_prediction(kernels["ntk"], kernels["nngp"], kernels["y"], np.inf)
    np.testing.assert_allclose(out.train_mean, kernels["y"], atol=1e-9)
    np.testing.assert_allclose(out.train_covariance, 0.0, atol=1e-9)


def test_ensemble_limit_matches_lee_et_al_eq_16(kernels):
    """t = ∞: Σ = K_** + Θ_*Θ⁻¹KΘ⁻¹Θ_*ᵀ − (Θ_*Θ⁻¹K_*ᵀ + h.c.), μ = Θ_*Θ⁻¹y (Lee et al. 2019; 1e-8)."""
    th, th_t, k, k_t, k_tt, y = (kernels[a] for a in ("ntk", "ntk_t", "nngp", "nngp_t", "nngp_tt", "y"))
    a = th_t @ np.linalg.inv(th)
    expected = k_tt + a @ k @ a.T - a @ k_t.T - k_t @ a.T
    out = infinite_ensemble_prediction(th, k, y, np.inf, th_t, k_t, k_tt)
    np.testing.assert_allclose(out.test_mean, a @ y, atol=1e-8)
    np.testing.assert_allclose(out.test_covariance, expected, atol=1e-8)


def test_ensemble_mean_is_gradient_flow_from_zero(kernels):
    """The ensemble mean at any t is the closed-form gradient-flow prediction with f₀ = 0 (1e-12)."""
    times = np.array([0.3, 3.0, 30.0])
    out = infinite_ensemble_prediction(kernels["ntk"], kernels["nngp"], kernels["y"], times,
                                       kernels["ntk_t"], kernels["nngp_t"], kernels["nngp_tt"], learning_rate=0.5)
    flow = gradient_flow_prediction(kernels["ntk"], kernels["y"], times, kernels["ntk_t"], learning_rate=0.5)
    np.testing.assert_allclose(out.test_mean, flow.test, atol=1e-12)
    np.testing.assert_allclose(out.train_mean, flow.train, atol=1e-12)


def _parameter_space_ensemble(ridge):
    """Independent derivation in parameter space, for f(x) = φ(x)·θ + ψ(x)·ω with θ trained and ω frozen.

    NTK = ΦΦᵀ, NNGP = ΦΦᵀ + ΨΨᵀ. Gradient flow on ½‖f − y‖² + ½ρ‖θ − θ₀‖² gives
    θ_t − θ₀ = η∫₀ᵗ e^{−ηHs}ds Φᵀ(y − f₀(X)), H = ΦᵀΦ + ρI (singular when ρ = 0: the integral is
    the top-right block of expm([[−ηH, I], [0, 0]]·t)), so f_t at any input is affine in the Gaussian
    (θ₀, ω) and its mean and covariance follow exactly (scipy's expm). Returns the package's
    prediction and, for the training rows X and the test rows X*, the exact mean and covariance.
    """
    rng = np.random.default_rng(7)
    n, m, p, q = 6, 4, 9, 5
    phi, psi = rng.standard_normal((n + m, p)) / 3, rng.standard_normal((n + m, q)) / 2
    y = rng.standard_normal(n)
    eta, t = 0.7, 2.0
    ph, ps = phi[:n], psi[:n]
    h = ph.T @ ph + ridge * np.eye(p)
    block = np.block([[-eta * h, np.eye(p)], [np.zeros((p, p)), np.zeros((p, p))]])
    mmat = eta * scipy.linalg.expm(block * t)[:p, p:] @ ph.T                             # θ_t − θ₀ = M(y − f₀)
    exact = {}
    for rows, name in ((slice(0, n), "train"), (slice(n, None), "test")):
        g_theta, g_omega = phi[rows] - phi[rows] @ mmat @ ph, psi[rows] - phi[rows] @ mmat @ ps
        exact[name] = (phi[rows] @ mmat @ y, g_theta @ g_theta.T + g_omega @ g_omega.T)
    ntk, nngp = phi @ phi.T, phi @ phi.T + psi @ psi.T
    out = infinite_ensemble_prediction(ntk[:n, :n], nngp[:n, :n], y, t, ntk[n:, :n], nngp[n:, :n], nngp[n:, n:],
                                       learning_rate=eta, ridge=ridge)
    return out, exact


@pytest.mark.parametrize("ridge", [0.0, 0.2])
def test_ensemble_equals_exact_parameter_space_computation(ridge):
    """At the test points (exact to 1e-9: expm and an eigendecomposition of a 6x6 matrix)."""
    out, exact = _parameter_space_ensemble(ridge)
    np.testing.assert_allclose(out.test_mean, exact["test"][0], atol=1e-9)
    np.testing.assert_allclose(out.test_covariance, exact["test"][1], atol=1e-9)


@pytest.mark.parametrize("ridge", [0.0, 0.2])
def test_ensemble_at_the_training_points_equals_exact_parameter_space_computation(ridge):
    """At the training points, at a finite time with and without ridge: the factor I − A there is
    V diag(1 − λc) Vᵀ, with λ (not λ + ρ) in front of c (1e-9 as above)."""
    out, exact = _parameter_space_ensemble(ridge)
    np.testing.assert_allclose(out.train_mean, exact["train"][0], atol=1e-9)
    np.testing.assert_allclose(out.train_covariance, exact["train"][1], atol=1e-9)


def test_ensemble_covariance_is_psd_at_all_times(kernels):
    """Σ(X*, t) is a covariance: smallest eigenvalue ≥ −1e-9·‖K_**‖ at t ∈ {0, 0.1, 1, 10, 100, ∞}."""
    times = np.array([0.0, 0.1, 1.0, 10.0, 100.0, np.inf])
    out = infinite_ensemble_prediction(kernels["ntk"], kernels["nngp"], kernels["y"], times,
                                       kernels["ntk_t"], kernels["nngp_t"], kernels["nngp_tt"])
    scale = np.abs(kernels["nngp_tt"]).max()
    for cov in out.test_covariance:
        assert np.linalg.eigvalsh(cov).min() >= -1e-9 * scale


def test_ntk_gp_differs_from_the_ensemble_unless_nngp_equals_ntk(kernels):
    """With K := Θ the t = ∞ ensemble covariance is the NTK-GP posterior covariance (1e-8); with the NNGP it is not."""
    th, th_t, th_tt = kernels["ntk"], kernels["ntk_t"], kernels["ntk_tt"]
    gp = gp_posterior(th, kernels["y"], th_t, th_tt)
    same = infinite_ensemble_prediction(th, th, kernels["y"], np.inf, th_t, th_t, th_tt)
    np.testing.assert_allclose(same.test_covariance, gp.covariance, atol=1e-8)
    np.testing.assert_allclose(same.test_mean, gp.mean, atol=1e-8)
    real = infinite_ensemble_prediction(th, kernels["nngp"], kernels["y"], np.inf, th_t, kernels["nngp_t"],
                                        kernels["nngp_tt"])
    assert np.abs(real.test_covariance - gp.covariance).max() > 1e-3


def test_ensemble_diagonal_variances_match_the_full_covariance(kernels):
    """nngp_test_test given as its diagonal returns diag(Σ(X*, t)) for each t (1e-12)."""
    predict = infinite_ensemble_predictor(kernels["ntk"], kernels["nngp"], kernels["y"])
    times = np.array([0.5, 5.0])
    full = predict(times, kernels["ntk_t"], kernels["nngp_t"], kernels["nngp_tt"])
    diag = predict(times, kernels["ntk_t"], kernels["nngp_t"], np.diag(kernels["nngp_tt"]))
    np.testing.assert_allclose(diag.test_covariance, np.diagonal(full.test_covariance, axis1=1, axis2=2), atol=1e-12)


def test_ensemble_needs_all_three_test_kernels(kernels):
    """Test kernels come together: giving only ntk_test_train is an error naming what is missing."""
    predict = infinite_ensemble_predictor(kernels["ntk"], kernels["nngp"], kernels["y"])
    with pytest.raises(ValueError, match="must be given together"):
        predict(1.0, kernels["ntk_t"])


def test_ensemble_rejects_negative_times(kernels):
    """Negative time is an error naming t and the value."""
    with pytest.raises(ValueError, match=r"`t` must be non-negative \(training runs forward from t = 0\), got -2"):
        infinite_ensemble_prediction(kernels["ntk"], kernels["nngp"], kernels["y"], -2.0)
