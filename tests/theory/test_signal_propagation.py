"""Fixed points, chi_1 and depth scales (Schoenholz et al. 2017) against closed forms and Monte Carlo."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import dual, stax
from ntkcourse import signal_propagation as sp

TANH = dual.quadrature(jnp.tanh, deg=50)


def erf_variance_map(sw2, sb2, q):
    """V(q) for phi = erf: E[erf(u)^2] = (2/pi) arcsin(2q / (1 + 2q)) (Williams 1997)."""
    return sw2 * 2 / math.pi * math.asin(2 * q / (1 + 2 * q)) + sb2


@pytest.mark.parametrize("sw2, sb2", [(1.0, 0.1), (1.5, 0.3), (0.4, 1.0)])
def test_relu_depth_scales_are_the_closed_forms(sw2, sb2):
    # ReLU: V(q) = sw2 q / 2 + sb2, so q* = sb2 / (1 - sw2/2) and chi_1 = chi_q = sw2/2 < 1 (ordered, c* = 1),
    # xi_q = xi_c = -1 / log(sw2/2). Only round-off separates the two sides.
    s = sp.depth_scales(dual.relu(), sw2, sb2)
    assert s.q_star == pytest.approx(sb2 / (1 - sw2 / 2), rel=1e-12)
    assert (s.chi_1, s.chi_q, s.chi_c) == pytest.approx((sw2 / 2,) * 3, rel=1e-12)
    assert (s.xi_q, s.xi_c) == pytest.approx((-1 / math.log(sw2 / 2),) * 2, rel=1e-12)
    assert (s.c_star, s.phase) == (1.0, "ordered")


def test_relu_above_he_initialisation_has_no_variance_fixed_point():
    with pytest.raises(ValueError, match=r"variance_fixed_point: .*grows without bound.*no fixed point"):
        sp.depth_scales(dual.relu(), 2.5, 0.1)


@pytest.mark.parametrize("sw2, sb2", [(1.0, 0.05), (2.0, 0.05), (3.0, 0.5)])
def test_erf_fixed_point_chi_1_and_chi_q_are_the_closed_forms(sw2, sb2):
    # For erf, E[phi'(u)^2] = (4/pi) / sqrt(1 + 4q), so chi_1 = 4 sw2 / (pi sqrt(1 + 4q*)), and
    # V'(q) = 4 sw2 / (pi (1 + 2q) sqrt(1 + 4q)) (derivative of the arcsin form). q* has no closed
    # form: it must solve q = V(q) to round-off (1e-12), and then the chis must match to 1e-10.
    s = sp.depth_scales(dual.erf(), sw2, sb2)
    q = s.q_star
    assert erf_variance_map(sw2, sb2, q) == pytest.approx(q, rel=1e-12)
    assert s.chi_1 == pytest.approx(4 * sw2 / (math.pi * math.sqrt(1 + 4 * q)), rel=1e-10)
    assert s.chi_q == pytest.approx(4 * sw2 / (math.pi * (1 + 2 * q) * math.sqrt(1 + 4 * q)), rel=1e-10)
    assert s.xi_q == pytest.approx(-1 / math.log(s.chi_q), rel=1e-12)


def test_erf_chaotic_correlation_fixed_point_and_chi_c_are_the_closed_forms():
    # sw2 = 3 is chaotic for erf (chi_1 > 1). c* solves C(c) = c with
    # C(c) = (sw2 (2/pi) arcsin(2 q c / (1 + 2q)) + sb2) / q, and
    # chi_c = sw2 (4/pi) / sqrt((1 + 2q)^2 - 4 q^2 c*^2).
    sw2, sb2 = 3.0, 0.05
    s = sp.depth_scales(dual.erf(), sw2, sb2)
    q, c = s.q_star, s.c_star
    assert s.phase == "chaotic" and c < 1
    assert (sw2 * 2 / math.pi * math.asin(2 * q * c / (1 + 2 * q)) + sb2) / q == pytest.approx(c, rel=1e-12)
    assert s.chi_c == pytest.approx(sw2 * 4 / math.pi / math.sqrt((1 + 2 * q) ** 2 - 4 * q**2 * c**2), rel=1e-10)


def test_erf_order_to_chaos_boundary_is_the_closed_form_curve():
    # On chi_1 = 1, sqrt(1 + 4q*) = 4 sw2 / pi, so q* = ((4 sw2/pi)^2 - 1) / 4, and the fixed-point
    # equation gives the bias variance sb2 = q* - sw2 (2/pi) arcsin(2q*/(1+2q*)). Given that sb2, the
    # boundary must come back at sw2 = 1.2 (Brent's method, xtol 1e-12; 1e-9 allows the nested solve).
    sw2 = 1.2
    q = ((4 * sw2 / math.pi) ** 2 - 1) / 4
    sb2 = q - erf_variance_map(sw2, 0.0, q)
    assert sb2 > 0
    assert sp.order_to_chaos_boundary(dual.erf(), sb2) == pytest.approx(sw2, rel=1e-9)


@pytest.mark.parametrize("sw2", [1.3, 3.0])
def test_chi_c_is_the_slope_of_the_correlation_map_at_its_fixed_point(sw2):
    # Price's theorem: dC/dc = sw2 E[phi'(u) phi'(v)]. Central difference with h = 1e-5 (one-sided
    # at c* = 1 in the ordered phase): truncation error ~h * C'' ~ 1e-5; quadrature deg 50 is smooth in c.
    s = sp.depth_scales(TANH, sw2, 0.05)
    c_map = sp.correlation_map(TANH, sw2, 0.05, s.q_star)
    h = 1e-5
    hi = min(s.c_star + h, 1.0)
    slope = (float(c_map(hi)) - float(c_map(s.c_star - h))) / (hi - s.c_star + h)
    assert slope == pytest.approx(s.chi_c, abs=5e-5)


@pytest.mark.parametrize("sw2", [1.3, 3.0])
def test_correlations_approach_the_fixed_point_at_the_rate_exp_minus_one_over_xi_c(sw2):
    # |c_l - c*| ~ exp(-l / xi_c): the ratio of successive gaps of the iterated map tends to chi_c.
    # After 40 layers the gap is within a few per cent of its asymptote's ratio (error ~ gap * C''/C').
    s = sp.depth_scales(TANH, sw2, 0.05)
    _, _, c = sp.mean_field_iterates(TANH, sw2, 0.05, s.q_star, s.q_star, 0.5 * s.q_star, 41)
    gaps = np.abs(c - s.c_star)
    assert gaps[40] / gaps[39] == pytest.approx(math.exp(-1 / s.xi_c), abs=0.01)


def test_tanh_depth_scale_diverges_at_the_boundary():
    # xi_c grows without bound as sw2 -> boundary: 10x closer gives a larger xi_c on both sides.
    edge = sp.order_to_chaos_boundary(TANH, 0.05)
    assert edge == pytest.approx(1.7610, abs=1e-3)  # Schoenholz et al. fig. 1: about 1.76 at sb2 = 0.05
    for side in (-1, 1):
        far, near = (sp.depth_scales(TANH, edge + side * d, 0.05).xi_c for d in (0.1, 0.01))
        assert near > 5 * far


def test_stax_activation_layers_are_accepted_as_activations():
    assert sp.depth_scales(stax.Erf(), 2.0, 0.05) == sp.depth_scales(dual.erf(), 2.0, 0.05)


def test_bad_activation_and_bracket_are_named_in_the_error():
    with pytest.raises(ValueError, match=r"depth_scales: `activation` must be a DualActivation"):
        sp.depth_scales(jnp.tanh, 1.0, 0.1)
    with pytest.raises(ValueError, match=r"order_to_chaos_boundary: `bracket` must be an interval"):
        sp.order_to_chaos_boundary(TANH, 0.05, bracket=(2.0, 4.0))
    with pytest.raises(ValueError, match=r"depth_scales: `sigma_w2` must be a finite number > 0"):
        sp.depth_scales(TANH, 0.0, 0.1)


@pytest.fixture(scope="module")
def tanh_networks():
    # 12 tanh networks of width 400 and depth 25 at sw2 = 1.3, sb2 = 0.05 (ordered, xi_c = 7.8),
    # two inputs with |x|^2/d = 1 at angle 1 rad.
    x = math.sqrt(2) * np.array([[1.0, 0.0], [math.cos(1.0), math.sin(1.0)]])
    return x, sp.random_network_statistics(jnp.tanh, 1.3, 0.05, x, depth=25, width=400, n_networks=12, seed=0)


def test_monte_carlo_variances_and_correlations_follow_the_mean_field_maps(tanh_networks):
    # The mean over networks must match the infinite-width iterates within 4 standard errors of the
    # mean plus a finite-width bias allowance of 2/width per layer crossed (the empirical correlation
    # is a ratio of sums: bias O(1/width), which accumulates along depth).
    x, (q1, q2, c, _) = tanh_networks
    first = 1.3 * x @ x.T / 2 + 0.05
    mf = sp.mean_field_iterates(TANH, 1.3, 0.05, first[0, 0], first[1, 1], first[0, 1], 25)
    for mc, theory in ((q1, mf[0]), (q2, mf[1]), (c, mf[2])):
        se = mc.std(axis=0, ddof=1) / math.sqrt(mc.shape[0])
        allowance = 4 * se + 2 / 400 * np.arange(1, 26)
        assert np.all(np.abs(mc.mean(axis=0) - theory) <= allowance)


def test_monte_carlo_jacobian_growth_per_layer_is_chi_1(tanh_networks):
    # Past 10 layers the variance sits at q* (xi_q = 1.8), where the mean squared growth of a
    # perturbation per layer is chi_1; mean over layers 10..24 and networks, within 4 standard errors
    # (layers of one network are treated as independent draws: their weights are).
    _, (*_, growth) = tanh_networks
    late = growth[:, 10:].ravel()
    chi_1 = sp.depth_scales(TANH, 1.3, 0.05).chi_1
    assert abs(late.mean() - chi_1) <= 4 * late.std(ddof=1) / math.sqrt(late.size)


def test_odd_activation_without_bias_is_chaotic_around_zero_correlation():
    # For odd phi and sb2 = 0, C(0) = 0 and c = -1 is an (unstable) fixed point too: the stable one in
    # the chaotic phase is c* = 0, where u, v are independent and chi_c = sw2 E[phi'(u)]^2.
    # E[tanh'(u)] by 80-node Gauss-Hermite. Tolerance 1e-5: the package's chi_c uses the 50-node quadrature
    # dual of tanh, whose E[phi' phi'] is off by ~2e-6 relative here (tanh's poles at +-i pi/2 slow its
    # convergence; dual.quadrature documents < 2e-4 up to variance 2).
    s = sp.depth_scales(TANH, 3.0, 0.0)
    z, w = np.polynomial.hermite_e.hermegauss(80)
    mean_slope = np.sum(w * (1 - np.tanh(math.sqrt(s.q_star) * z) ** 2)) / w.sum()
    assert s.c_star == 0.0
    assert s.chi_c == pytest.approx(3.0 * mean_slope**2, rel=1e-5)
