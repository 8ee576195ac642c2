"""Specification of ntkcourse.inference's defaults, shapes and refusals, on small kernels built in numpy.

Written from the survivors of a mutation run (tools/mutation.py inference): each test pins a behaviour
that a planted change left unobserved. Kernels are Gram matrices of random features (no JAX), and the
expected values come from scipy's matrix exponential and numpy's solves, independent of the package.
"""
import numpy as np
import pytest
import scipy.linalg

from ntkcourse.inference import gp_posterior, infinite_ensemble_prediction, infinite_ensemble_predictor

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
