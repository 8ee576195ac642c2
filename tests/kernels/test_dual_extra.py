"""Validation of ``ntkcourse.dual_extra`` and the activations of
``ntkcourse.stax.activations_extra`` (issue 19, part A).

Three independent checks of the derived kernels:

* smooth activations (exp, Gaussian, Gabor, polynomials, Hermite) against a
  tensor Gauss–Hermite rule with 100 nodes per axis, written here with numpy
  and the true derivatives written out by hand, 200 nodes per axis. The
  integrands are polynomials (exact for degree < 400) or entire functions
  whose Hermite coefficients fall faster than geometrically; measured: Gabor
  at variance 2 moves by 5e-8 from 100 to 200 nodes and by < 1e-15 after, so
  tolerance 1e-10 relative;
* the arc-cosine polynomials of the rectified monomials against Cho & Saul's
  closed forms of J_1 and J_2 (exact rationals: 1e-15);
* wide finite networks built by the package's own ``init_fn``/``apply_fn``:
  ``Dense(N) -> activation`` at width N = 2e5, x1 and x2 fixed. The NNGP of the
  network ``... -> Dense(1)`` is the mean over the N hidden units of
  phi(u_i) phi(v_i), and the NTK of ``Dense -> act -> Dense(1)`` (NTK
  parameterisation) the mean of phi(u_i) phi(v_i) + phi'(u_i) phi'(v_i) K_in,
  with phi' by autodiff of the layer's ``apply_fn`` (what the empirical NTK
  of the finite network uses). Units are i.i.d., so the standard error is
  the sample std / sqrt(N), from the same samples; a check passes within
  5 SE (a correct formula fails with probability 5.7e-7 per check).

Kernels are float64: closed forms run inside ``jax.enable_x64(True)``.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import dual_extra, stax

Z_MAX = 5.0
PAIRS = [(0.7, 1.3, 0.4), (1.0, 1.0, -0.6), (0.3, 0.5, 0.1), (2.0, 1.5, 1.7)]


def gauss_hermite(f, df, var1, var2, cov, deg=200):
    """E[f(u) f(v)] and E[df(u) df(v)] by a tensor probabilists' Gauss–Hermite rule."""
    z, w = np.polynomial.hermite_e.hermegauss(deg)
    w = w / w.sum()
    rho = cov / math.sqrt(var1 * var2)
    u = math.sqrt(var1) * z[:, None]
    v = math.sqrt(var2) * (rho * z[:, None] + math.sqrt(1 - rho**2) * z[None, :])
    weights = w[:, None] * w[None, :]
    return (weights * f(u) * f(v)).sum(), (weights * df(u) * df(v)).sum()


HERMITE_3 = np.array([0.0, -3.0, 0.0, 1.0]) / math.sqrt(6.0)
SMOOTH = {
    "exp": (dual_extra.exp(1.3, 0.7), lambda x: 1.3 * np.exp(0.7 * x), lambda x: 0.91 * np.exp(0.7 * x)),
    "gaussian": (dual_extra.gaussian(1.2, -0.8), lambda x: 1.2 * np.exp(-0.8 * x * x),
                 lambda x: -1.92 * x * np.exp(-0.8 * x * x)),
    "gaussian_b_positive": (dual_extra.gaussian(1.0, 0.1), lambda x: np.exp(0.1 * x * x),
                            lambda x: 0.2 * x * np.exp(0.1 * x * x)),
    "gabor": (dual_extra.gabor(), lambda x: np.exp(-x * x) * np.sin(x),
              lambda x: np.exp(-x * x) * (np.cos(x) - 2 * x * np.sin(x))),
    "polynomial": (dual_extra.polynomial([0.3, -1.0, 0.5, 0.2]), lambda x: 0.3 - x + 0.5 * x**2 + 0.2 * x**3,
                   lambda x: -1.0 + x + 0.6 * x**2),
    "monomial_5": (dual_extra.polynomial([0, 0, 0, 0, 0, 1.0]), lambda x: x**5, lambda x: 5 * x**4),
    "hermite_3": (dual_extra.polynomial(dual_extra.hermite_coefficients(3)), lambda x: np.polyval(HERMITE_3[::-1], x),
                  lambda x: (3 * x**2 - 3) / math.sqrt(6.0)),
}


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_smooth_duals_equal_gauss_hermite_quadrature(name):
    act, f, df = SMOOTH[name]
    with jax.enable_x64(True):
        for var1, var2, cov in PAIRS:
            if name == "gaussian_b_positive" and var1 > 1.2:
                continue  # 1 - 2 b q gets small: the rule needs far more nodes there (divergence tested below)
            want = gauss_hermite(f, df, var1, var2, cov)
            got = (float(act.nngp(var1, var2, cov)), float(act.dnngp(var1, var2, cov)))
            np.testing.assert_allclose(got, want, rtol=1e-10, err_msg=f"{name} at {(var1, var2, cov)}")
            np.testing.assert_allclose(float(act.nngp_diag(var1)), float(act.nngp(var1, var1, var1)), rtol=1e-13)


def test_hermite_kernel_is_q12_to_the_n_only_at_unit_variance():
    # Mehler: E[h_n(u) h_n(v)] = rho^n for unit variances; neural-tangents returns q12^n always.
    act = dual_extra.polynomial(dual_extra.hermite_coefficients(3))
    with jax.enable_x64(True):
        assert float(act.nngp(1.0, 1.0, 0.3)) == pytest.approx(0.3**3, rel=1e-13)
        at_other_variance = float(act.nngp(2.0, 2.0, 0.3))
    exact, _ = gauss_hermite(lambda x: np.polyval(HERMITE_3[::-1], x), np.ones_like, 2.0, 2.0, 0.3)
    assert at_other_variance == pytest.approx(exact, rel=1e-10)
    assert abs(at_other_variance - 0.3**3) > 0.1  # so q12^n would be a wrong number there


def test_arccos_polynomials_give_cho_and_saul_closed_forms():
    # J_1 = sin t + (pi - t) cos t, J_2 = 3 sin t cos t + (pi - t)(1 + 2 cos^2 t) (Cho & Saul 2009, eq. 6).
    assert dual_extra._arccos_polynomials(1) == ([0.0, 1.0], [1.0])
    assert dual_extra._arccos_polynomials(2) == ([1.0, 0.0, 2.0], [0.0, 3.0])


def test_gaussian_b_positive_diverges_to_infinity_instead_of_a_formula_value():
    # E[exp(0.5 u^2)] is infinite for Var u >= 1 (1 - 4 b q <= 0 on the diagonal, 1 - 2bq <= 0 off it).
    act = dual_extra.gaussian(1.0, 0.5)
    with jax.enable_x64(True):
        assert np.isinf(float(act.nngp_diag(0.6)))
        assert np.isinf(float(act.nngp(1.2, 0.5, 0.1)))
        assert np.isfinite(float(act.nngp(0.3, 0.2, 0.1)))


def _wide_layer_samples(activation, x, width=200_000, seed=0):
    """Pre-activations (u, v) and post-activations of one wide layer, from the package's finite network."""
    init_fn, apply_fn, _ = stax.Dense(width, W_std=1.5, b_std=0.1)
    _, params = init_fn(jax.random.PRNGKey(seed), x.shape)
    pre = np.asarray(apply_fn(params, jnp.asarray(x, jnp.float32)), np.float64)
    act_apply = activation[1]
    post = np.asarray(act_apply((), jnp.asarray(pre, jnp.float32)), np.float64)
    deriv = np.asarray(jax.vmap(jax.grad(lambda t: act_apply((), t)))(jnp.asarray(pre.ravel(), jnp.float32)),
                       np.float64).reshape(pre.shape)
    return post, deriv


WIDE = {
    "Exp": lambda: stax.Exp(1.2, 0.4),
    "Gaussian": lambda: stax.Gaussian(1.1, -0.7),
    "Gabor": lambda: stax.Gabor(),
    "Sign": lambda: stax.Sign(),
    "Polynomial": lambda: stax.Polynomial([0.3, -1.0, 0.5, 0.2]),
    "Monomial_3": lambda: stax.Monomial(3),
    "Hermite_2": lambda: stax.Hermite(2),
    "RectifiedMonomial_0": lambda: stax.RectifiedMonomial(0),
    "RectifiedMonomial_2": lambda: stax.RectifiedMonomial(2),
    "Rbf": lambda: stax.Rbf(0.6),
}


@pytest.mark.parametrize("name", sorted(WIDE))
def test_kernels_match_a_wide_finite_network(name):
    x = 0.8 * np.random.default_rng(1).normal(size=(2, 5))
    activation = WIDE[name]()
    post, deriv = _wide_layer_samples(activation, x)
    k_in = 1.5**2 * (x @ x.T) / x.shape[1] + 0.1**2  # NTK of the first Dense (NTK parameterisation)
    net = stax.serial(stax.Dense(16, W_std=1.5, b_std=0.1), activation, stax.Dense(1))
    exact = net[2](x, None, ("nngp", "ntk"))
    for i, j in ((0, 0), (0, 1), (1, 1)):
        nngp_units = post[i] * post[j]
        ntk_units = nngp_units + deriv[i] * deriv[j] * k_in[i, j]
        for units, want in ((nngp_units, exact.nngp[i, j]), (ntk_units, exact.ntk[i, j])):
            se = units.std() / math.sqrt(units.size)
            # 1e-6 relative: the finite network runs in float32 (the sample mean's round-off).
            assert abs(units.mean() - float(want)) <= Z_MAX * se + 1e-6 * abs(float(want)), (name, i, j)
