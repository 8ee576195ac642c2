"""Specification of ntkcourse.inference's defaults, shapes and refusals, on small kernels built in numpy.

Written from the survivors of a mutation run (tools/mutation.py inference): each test pins a behaviour
that a planted change left unobserved. Kernels are Gram matrices of random features (no JAX), and the
expected values come from scipy's matrix exponential and numpy's solves, independent of the package.
"""
import warnings

import numpy as np
import pytest
import scipy.linalg

from ntkcourse.inference import gp_posterior, infinite_ensemble_prediction, infinite_ensemble_predictor
from ntkcourse.spectral import IllConditionedKernelWarning

N, M = 5, 3


@pytest.fixture(scope="module")
def kernels():
    """NTK Θ = ΦΦᵀ and NNGP K = ΦΦᵀ + ΨΨᵀ on N training and M test rows (well conditioned: 12 features)."""
    rng = np.random.default_rng(3)
    phi, psi = rng.standard_normal((N + M, 12)) / 3, rng.standard_normal((N + M, 4)) / 2
    ntk, nngp = phi @ phi.T, phi @ phi.T + psi @ psi.T
    tr, te = slice(0, N), slice(N, None)
    return dict(ntk=ntk[tr, tr], ntk_t=ntk[te, tr], ntk_tt=ntk[te, te],
                nngp=nngp[tr, tr], nngp_t=nngp[te, tr], nngp_tt=nngp[te, te],
                y=rng.standard_normal(N))


def ensemble_by_expm(k, y, t, eta=1.0):
    """Train mean (I − e^{−ηΘt})y and covariance e^{−ηΘt} K e^{−ηΘt} (Lee et al. 2019, no ridge), by expm."""
    decay = scipy.linalg.expm(-eta * t * k["ntk"])
    return (np.eye(N) - decay) @ y, decay @ k["nngp"] @ decay


@pytest.mark.parametrize("form", ["predictor", "one-shot"])
def test_ensemble_defaults_are_unit_learning_rate_and_no_ridge(kernels, form):
    """Without learning_rate and ridge the train mean and covariance at t = 1.3 are those of η = 1, ρ = 0
    (1e-10: a 5x5 expm against an eigendecomposition)."""
    if form == "predictor":
        out = infinite_ensemble_predictor(kernels["ntk"], kernels["nngp"], kernels["y"])(1.3)
    else:
        out = infinite_ensemble_prediction(kernels["ntk"], kernels["nngp"], kernels["y"], 1.3)
    mean, cov = ensemble_by_expm(kernels, kernels["y"], 1.3)
    np.testing.assert_allclose(out.train_mean, mean, atol=1e-10)
    np.testing.assert_allclose(out.train_covariance, cov, atol=1e-10)


def test_ensemble_one_shot_passes_learning_rate_and_ridge_on(kernels):
    """The one-shot form with η = 0.4, ρ = 0.3 equals the predictor built with them, on train and test (1e-13)."""
    args = (kernels["ntk_t"], kernels["nngp_t"], kernels["nngp_tt"])
    one = infinite_ensemble_prediction(kernels["ntk"], kernels["nngp"], kernels["y"], 2.0, *args,
                                       learning_rate=0.4, ridge=0.3)
    ref = infinite_ensemble_predictor(kernels["ntk"], kernels["nngp"], kernels["y"], learning_rate=0.4,
                                      ridge=0.3)(2.0, *args)
    for got, want in zip(one, ref):
        np.testing.assert_allclose(got, want, atol=1e-13)


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(learning_rate=0.0),
         r"^infinite_ensemble_predictor: `learning_rate` must be a finite number > 0, got 0\.0"),
        (dict(nngp=np.ones((N, N)) + np.triu(np.ones((N, N)), 1)),
         r"^infinite_ensemble_predictor: `nngp_train_train` must be a symmetric kernel matrix"),
        (dict(nngp=np.eye(N + 1)), r"^infinite_ensemble_predictor: `nngp_train_train` must have the shape of "
                                   r"ntk_train_train, \(5, 5\), got shape \(6, 6\)\.$"),
    ],
)
def test_ensemble_construction_refusals_name_the_function_and_argument(kernels, change, match):
    """Bad learning rate, asymmetric or mis-sized NNGP: a ValueError naming infinite_ensemble_predictor."""
    args = dict(nngp=kernels["nngp"], learning_rate=1.0)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        infinite_ensemble_predictor(kernels["ntk"], args["nngp"], kernels["y"], learning_rate=args["learning_rate"])


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(ntk_t=np.ones((M, N + 1))), r"^infinite_ensemble_predictor: `ntk_test_train` must have shape \(m, n\) "
                                          r"with n = 5 training points, got shape \(3, 6\)\.$"),
        (dict(nngp_t=np.ones((M + 1, N))), r"^infinite_ensemble_predictor: `nngp_test_train` must have the shape of "
                                           r"ntk_test_train, \(3, 5\), got shape \(4, 5\)\.$"),
        (dict(nngp_t=np.full((M, N), np.inf)),
         r"^infinite_ensemble_predictor: `nngp_test_train` must be a finite kernel matrix, got NaN or inf\.$"),
        (dict(nngp_tt=np.ones(M + 1)), r"^infinite_ensemble_predictor: `nngp_test_test` must have shape \(3, 3\) or "
                                       r"\(3,\) \(its diagonal\) for m = 3 test points, got shape \(4,\)\.$"),
        (dict(nngp_tt=np.full(M, np.nan)),
         r"^infinite_ensemble_predictor: `nngp_test_test` must be a finite kernel, got NaN or inf\.$"),
        (dict(nngp_tt=np.triu(np.ones((M, M)))),
         r"^infinite_ensemble_predictor: `nngp_test_test` must be a symmetric kernel matrix"),
    ],
)
def test_ensemble_test_kernel_refusals_name_the_kernel(kernels, change, match):
    """Each mis-shaped, non-finite or asymmetric test kernel is refused with its name and shape."""
    args = dict(ntk_t=kernels["ntk_t"], nngp_t=kernels["nngp_t"], nngp_tt=kernels["nngp_tt"])
    args.update(change)
    predict = infinite_ensemble_predictor(kernels["ntk"], kernels["nngp"], kernels["y"])
    with pytest.raises(ValueError, match=match):
        predict(1.0, args["ntk_t"], args["nngp_t"], args["nngp_tt"])


@pytest.mark.parametrize("given, received", [((0, 2), "ntk_test_train, nngp_test_test"), ((1,), "nngp_test_train")])
def test_ensemble_names_the_test_kernels_it_received(kernels, given, received):
    """Giving some of the three test kernels lists exactly those that were given."""
    predict = infinite_ensemble_predictor(kernels["ntk"], kernels["nngp"], kernels["y"])
    full = (kernels["ntk_t"], kernels["nngp_t"], kernels["nngp_tt"])
    args = [a if i in given else None for i, a in enumerate(full)]
    with pytest.raises(ValueError, match=rf"^infinite_ensemble_predictor: `ntk_test_train`, `nngp_test_train` and "
                                         rf"`nngp_test_test` must be given together, got {received} only\.$"):
        predict(1.0, *args)


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(y=np.ones(N + 1)), r"^gp_posterior: `y_train` must have shape \(n,\) or \(n, k\) with n = 5, got shape "
                                 r"\(6,\)\.$"),
        (dict(y=np.ones((N, 1, 1))), r"^gp_posterior: `y_train` must have shape \(n,\) or \(n, k\) with n = 5"),
        (dict(y=np.full(N, np.nan)), r"^gp_posterior: `y_train` must hold finite targets, got NaN or inf\.$"),
        (dict(kt=np.ones(N)), r"^gp_posterior: `k_test_train` must have shape \(m, n\) with n = 5 training points, "
                              r"got shape \(5,\)\.$"),
        (dict(kt=np.full((M, N), np.nan)),
         r"^gp_posterior: `k_test_train` must be a finite kernel matrix, got NaN or inf\.$"),
        (dict(ktt=np.full((M, M), np.inf)), r"^gp_posterior: `k_test_test` must be a finite kernel, got NaN or inf\.$"),
        (dict(noise=-0.1), r"^gp_posterior: `noise` must be a finite number >= 0, got -0\.1\.$"),
        (dict(k=np.triu(np.ones((N, N)))), r"^gp_posterior: `k_train_train` must be a symmetric kernel matrix"),
    ],
)
def test_gp_posterior_refusals_name_the_argument(kernels, change, match):
    """Each bad target, kernel or noise is refused with gp_posterior's name, the argument and what was expected."""
    args = dict(k=kernels["nngp"], y=kernels["y"], kt=kernels["nngp_t"], ktt=kernels["nngp_tt"], noise=0.0)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        gp_posterior(args["k"], args["y"], args["kt"], args["ktt"], noise=args["noise"])


class Pair:
    """A stand-in for the engine's kernel object: attributes nngp and ntk."""

    def __init__(self, nngp, ntk):
        self.nngp, self.ntk = nngp, ntk


def test_gp_posterior_get_reads_the_named_attribute_of_every_kernel(kernels):
    """get='ntk' takes .ntk of all three kernel objects: the NTK-GP, equal to passing the arrays (1e-13)."""
    post = gp_posterior(Pair(kernels["nngp"], kernels["ntk"]), kernels["y"], Pair(kernels["nngp_t"], kernels["ntk_t"]),
                        Pair(kernels["nngp_tt"], kernels["ntk_tt"]), noise=0.1, get="ntk")
    ref = gp_posterior(kernels["ntk"], kernels["y"], kernels["ntk_t"], kernels["ntk_tt"], noise=0.1)
    np.testing.assert_allclose(post.mean, ref.mean, atol=1e-13)
    np.testing.assert_allclose(post.covariance, ref.covariance, atol=1e-13)


@pytest.mark.parametrize(
    "get, kernel, match",
    [
        (3, "pair", r"^gp_posterior: `get` must be 'nngp', 'ntk' or None, got 3\.$"),
        ("nngp_ntk", "pair", r"^gp_posterior: `get` must be a name or a tuple of names among 'nngp', 'ntk', "
                             r"got 'nngp_ntk'\.$"),
        ("nngp", "array", r"^gp_posterior: `k_train_train` must be a kernel object \(as returned by kernel_fn\) with "
                          r"get='nngp', got a ndarray with no attribute 'nngp'\.$"),
    ],
)
def test_gp_posterior_refuses_a_bad_get(kernels, get, kernel, match):
    """get must be 'nngp'/'ntk'/None, and then the kernels must be objects carrying that attribute."""
    k = Pair(kernels["nngp"], kernels["ntk"]) if kernel == "pair" else kernels["nngp"]
    with pytest.raises(ValueError, match=match):
        gp_posterior(k, kernels["y"], kernels["nngp_t"], get=get)


def test_gp_posterior_mean_only_without_test_test_kernel(kernels):
    """Without k_test_test the covariance is None and the mean is K_*(K + σ²I)⁻¹y (numpy solve; 1e-12)."""
    post = gp_posterior(kernels["nngp"], kernels["y"], kernels["nngp_t"], noise=0.2)
    assert post.covariance is None
    expected = kernels["nngp_t"] @ np.linalg.solve(kernels["nngp"] + 0.2 * np.eye(N), kernels["y"])
    np.testing.assert_allclose(post.mean, expected, atol=1e-12)


def test_gp_posterior_default_is_noise_free(kernels):
    """Without noise the posterior at the training points interpolates: mean = y (noise 1e-3 would move it; 1e-9)."""
    post = gp_posterior(kernels["nngp"], kernels["y"], kernels["nngp"])
    np.testing.assert_allclose(post.mean, kernels["y"], atol=1e-9)


def test_ensemble_two_output_columns_are_two_one_dimensional_problems(kernels):
    """y of shape (n, 2): each mean column is the prediction for that column alone (shapes (n, 2), (m, 2)); the
    covariances, shared by the columns, equal the one-column ones (1e-13)."""
    y2 = np.stack([kernels["y"], -2.0 * kernels["y"][::-1]], axis=1)
    args = (kernels["ntk_t"], kernels["nngp_t"], kernels["nngp_tt"])
    both = infinite_ensemble_prediction(kernels["ntk"], kernels["nngp"], y2, 0.7, *args)
    assert both.train_mean.shape == (N, 2) and both.test_mean.shape == (M, 2)
    for j in range(2):
        one = infinite_ensemble_prediction(kernels["ntk"], kernels["nngp"], y2[:, j], 0.7, *args)
        np.testing.assert_allclose(both.train_mean[:, j], one.train_mean, atol=1e-13)
        np.testing.assert_allclose(both.test_mean[:, j], one.test_mean, atol=1e-13)
        np.testing.assert_allclose(both.test_covariance, one.test_covariance, atol=1e-13)


def test_ensemble_vector_of_times_stacks_scalar_calls(kernels):
    """t = [0.2, 3]: every field has a leading axis of 2 whose rows are the scalar calls (1e-13)."""
    predict = infinite_ensemble_predictor(kernels["ntk"], kernels["nngp"], kernels["y"], learning_rate=0.5)
    args = (kernels["ntk_t"], kernels["nngp_t"], kernels["nngp_tt"])
    stacked = predict(np.array([0.2, 3.0]), *args)
    for i, t in enumerate((0.2, 3.0)):
        for got, want in zip(stacked, predict(t, *args)):
            assert got.shape[0] == 2
            np.testing.assert_allclose(got[i], want, atol=1e-13)


def test_ensemble_without_test_kernels_returns_none_for_the_test_fields(kernels):
    """No test kernels: test_mean and test_covariance are None; the train fields are still computed."""
    out = infinite_ensemble_prediction(kernels["ntk"], kernels["nngp"], kernels["y"], 1.0)
    assert out.test_mean is None and out.test_covariance is None
    assert out.train_mean.shape == (N,) and out.train_covariance.shape == (N, N)


def test_ensemble_refuses_negative_time_naming_the_function(kernels):
    """A negative time is refused by infinite_ensemble_predictor's own name (users call that function)."""
    predict = infinite_ensemble_predictor(kernels["ntk"], kernels["nngp"], kernels["y"])
    with pytest.raises(ValueError, match=r"^infinite_ensemble_predictor: `t` must be non-negative"):
        predict(-0.5)


def one_warning(call):
    """The single IllConditionedKernelWarning that ``call()`` emits, or None when it emits none."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    found = [w for w in caught if issubclass(w.category, IllConditionedKernelWarning)]
    assert len(found) <= 1
    return found[0] if found else None


def test_ensemble_warns_of_a_singular_ntk_in_the_infinite_time_limit():
    """A rank-1 NTK at t = ∞ without ridge: the warning names the 't → ∞' limit, at the caller's line."""
    predict = infinite_ensemble_predictor(np.ones((2, 2)), np.eye(2), np.ones(2))
    w = one_warning(lambda: predict(np.inf))
    assert "numerical rank 1 < n = 2) and ridge = 0: in the t → ∞ limit" in str(w.message)
    assert w.filename == __file__


def test_ensemble_warns_of_amplified_round_off_only_with_test_kernels():
    """NTK diag(1, 1e-15) at t = 1e16 (κ_eff = 1e15): a warning 'at the requested time' when test predictions are
    asked for, none for the train outputs alone."""
    predict = infinite_ensemble_predictor(np.diag([1.0, 1e-15]), np.eye(2), np.ones(2))
    w = one_warning(lambda: predict(1e16, np.ones((1, 2)), np.ones((1, 2)), np.ones(1)))
    assert "ill-conditioned at the requested time: effective condition number 1e+15" in str(w.message)
    assert one_warning(lambda: predict(1e16)) is None


def test_ensemble_covariances_are_exactly_symmetric():
    """The ensemble's train and test covariances equal their transposes bit for bit: the products V(DBD)Vᵀ and
    K_** − PCQ − (PCQ)ᵀ + PCBCPᵀ leave an asymmetry of 3e-17 to 2e-16 here (measured), which the function removes
    by averaging with the transpose, so that a later Cholesky factorisation or eigh sees a symmetric matrix."""
    rng = np.random.default_rng(11)
    a = rng.standard_normal((40, 60))
    k = a @ a.T / 60 + 0.5 * np.eye(40)
    tr, te = slice(0, 25), slice(25, None)
    ens = infinite_ensemble_prediction(k[tr, tr], k[tr, tr] + 0.1 * np.eye(25), rng.standard_normal(25), 0.3,
                                       k[te, tr], k[te, tr], k[te, te])
    for cov in (ens.train_covariance, ens.test_covariance):
        np.testing.assert_array_equal(cov, cov.T)


@pytest.mark.parametrize("which", ["k_test_train", "k_test_test"])
def test_gp_posterior_get_names_the_test_kernel_that_is_not_an_object(kernels, which):
    """With get='nngp', a test kernel passed as a plain array is refused by its own name."""
    args = dict(k_test_train=Pair(kernels["nngp_t"], kernels["ntk_t"]),
                k_test_test=Pair(kernels["nngp_tt"], kernels["ntk_tt"]))
    args[which] = np.asarray(getattr(args[which], "nngp"))
    with pytest.raises(ValueError, match=rf"^gp_posterior: `{which}` must be a kernel object \(as returned by "
                                         rf"kernel_fn\) with get='nngp', got a ndarray with no attribute 'nngp'\.$"):
        gp_posterior(Pair(kernels["nngp"], kernels["ntk"]), kernels["y"], args["k_test_train"], args["k_test_test"],
                     get="nngp")


def test_gp_posterior_not_positive_definite_asks_for_noise():
    """K = diag(1, −1) cannot be factorised: the error names gp_posterior, k_train_train and noise = 0 as the
    remedy's argument."""
    with pytest.raises(ValueError, match=r"^gp_posterior: `k_train_train` \+ noise·I \(noise = 0\) is not positive "
                                         r"definite to working precision"):
        gp_posterior(np.diag([1.0, -1.0]), np.ones(2), np.ones((1, 2)))


def test_the_ensembles_conditioning_warnings_begin_with_its_name():
    """Both conditioning warnings (the singular t → ∞ limit, round-off amplified at t = 1e16 with test kernels) begin
    with 'infinite_ensemble_predictor: ', the function the user called, not the dynamics helper behind it."""
    singular = one_warning(lambda: infinite_ensemble_predictor(np.ones((2, 2)), np.eye(2), np.ones(2))(np.inf))
    amplified = one_warning(lambda: infinite_ensemble_predictor(np.diag([1.0, 1e-15]), np.eye(2), np.ones(2))(
        1e16, np.ones((1, 2)), np.ones((1, 2)), np.ones(1)))
    for w in (singular, amplified):
        assert str(w.message).startswith("infinite_ensemble_predictor: ")
