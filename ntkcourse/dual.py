r"""Dual activations: Gaussian expectations of an activation and of its derivative.

For a centred Gaussian pair :math:`(u, v)` with covariance
:math:`\begin{pmatrix} q_1 & q_{12} \\ q_{12} & q_2 \end{pmatrix}` and an
elementwise activation :math:`\phi`, the infinite-width recursions need two
numbers

.. math::

    \check\phi(q_1, q_2, q_{12}) = \mathbb{E}[\phi(u)\,\phi(v)], \qquad
    \check{\phi'}(q_1, q_2, q_{12}) = \mathbb{E}[\phi'(u)\,\phi'(v)].

The first propagates the NNGP kernel through a nonlinearity
(Neal 1996; Lee et al. 2018), the second multiplies the NTK
(Jacot et al. 2018; Arora et al. 2019):
:math:`\Theta \mapsto \Theta \cdot \check{\phi'}` (the factor :math:`\sigma_w^2`
is applied by the next ``Dense``/``Conv`` layer, as in neural-tangents).

Each activation is a :class:`DualActivation` with the elementwise function
``fn`` (for finite networks), ``nngp(var1, var2, cov)``,
``dnngp(var1, var2, cov)`` and the diagonal forms
``nngp_diag(var) = nngp(var, var, var)``, ``dnngp_diag(var)``.

Names: ``var1, var2, cov`` (:math:`q_1, q_2, q_{12}`) are always the
variances and the covariance of the Gaussian pair; ``a, b, c`` are only ever
an activation's own parameters, as in neural-tangents' ``stax.Erf(a, b, c)``,
``stax.Sin(a, b, c)`` and ``stax.ABRelu(a, b)``.
Closed forms are given for ReLU and its relatives (the arc-cosine kernels of
Cho & Saul 2009), erf (Williams 1997), exact GELU, sine and the identity;
:func:`quadrature` covers any other elementwise function by Gauss–Hermite
quadrature. All functions are written with ``jax.numpy`` and broadcast over
arrays of any shape.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import erf as _erf

__all__ = [
    "DualActivation",
    "relu",
    "leaky_relu",
    "ab_relu",
    "abs_activation",
    "erf",
    "gelu",
    "sin",
    "identity",
    "quadrature",
    "expectations",
    "arccos",
    "arcsin",
]

_PI = math.pi
_INV_2PI = 1.0 / (2.0 * math.pi)
_TINY = np.finfo(np.float64).tiny

# Coefficients, in powers of t = 8 z - 1, of the polynomial that approximates
# g(z) = (arcsin(sqrt z) - sqrt z) / z^{3/2} on 0 <= z <= 1/4.  Obtained by
# Chebyshev interpolation at 14 nodes of g evaluated in extended precision
# (numpy.longdouble) and conversion to the power basis.  With it,
# `arccos` below is within 6e-16 of the exact value on [-1, 1] (tested in
# tests/kernels/test_dual.py), about the accuracy of numpy.arccos, and XLA vectorises
# it: about 5x faster than jnp.arccos on a CPU.
_ASIN_POLY = (
    0.1768046019939982,
    0.010972967607792915,
    0.0009145648551068615,
    8.778021135197012e-05,
    9.151973248870204e-06,
    1.0074723774079505e-06,
    1.1524659304086704e-07,
    1.3565257384506103e-08,
    1.6323413784536391e-09,
    1.9991700460397696e-10,
    2.482702094208236e-11,
    3.1051400421740784e-12,
    4.1358226243503536e-13,
    6.042597990122269e-14,
)


def _asin_poly(t):
    """``_ASIN_POLY`` at t, as two interleaved Horner chains ``A(t) + t^7 B(t)``.

    One Horner chain of 13 dependent multiply-adds is bound by their latency;
    two independent chains of 6 give the CPU's vector units twice the work to
    overlap (the result differs from plain Horner by round-off only).
    """
    t2 = t * t
    t7 = t2 * t2 * t2 * t
    low = _ASIN_POLY[6] * t + _ASIN_POLY[5]
    high = _ASIN_POLY[13] * t + _ASIN_POLY[12]
    for k in range(4, -1, -1):
        low = low * t + _ASIN_POLY[k]
        high = high * t + _ASIN_POLY[k + 7]
    return low + t7 * high


def _half_angle_arcsin(ax, snap: bool = False):
    r"""``(big, z, arcsin s)`` for ``ax = |x| >= 0``: with ``big = ax > 1/2``,
    :math:`z = (1 - |x|)/2` and :math:`s = \sqrt z` when big, :math:`z = x^2` and
    :math:`s = |x|` otherwise; :math:`\arcsin s = s + s^3 g(s^2)` by ``_ASIN_POLY``.
    ``snap=True`` takes :math:`|x|` within 8 ulps of 1 as exactly 1.
    """
    big = ax > 0.5
    z = jnp.where(big, 0.5 - 0.5 * ax, ax * ax)
    # z < 0 is |x| > 1 by round-off; with snap, |x| within 8 ulps of 1 (z < 4 eps).
    floor = 4 * jnp.finfo(jnp.result_type(z)).eps if snap else 0.0
    z = jnp.where(z > floor, z, 0.0)
    s = jnp.where(big, jnp.sqrt(z), ax)
    return big, z, s + s * z * _asin_poly(8.0 * z - 1.0)


def _arccos_of_abs(ax, snap: bool = False):
    r"""``(arccos(min(ax, 1)), sin of that angle)`` for ``ax = |x| >= 0``.

    Above 1/2, :math:`\arccos|x| = 2\arcsin\sqrt{(1-|x|)/2}`; below,
    :math:`\pi/2 - \arcsin|x|` (``_half_angle_arcsin``); :math:`1 - x^2` is
    :math:`4 z (1 - z)` above 1/2 and :math:`1 - z` below, free of cancellation.
    """
    big, z, asin_s = _half_angle_arcsin(ax, snap)
    theta = jnp.where(big, 2.0 * asin_s, 0.5 * _PI - asin_s)
    sin_theta = jnp.sqrt((1.0 - z) * jnp.where(big, 4.0 * z, 1.0))
    return theta, sin_theta


def arccos(x):
    r"""Arc-cosine of ``x`` in [-1, 1], by a polynomial that XLA vectorises.

    Uses :math:`\arccos x = \pi/2 - \arcsin x` for :math:`|x| \le 1/2` and
    :math:`\arccos |x| = 2 \arcsin\sqrt{(1-|x|)/2}` above, with
    :math:`\arcsin s = s + s^3 g(s^2)` and ``g`` a degree-13 polynomial
    (see ``_ASIN_POLY``); :math:`\arccos(-x) = \pi - \arccos x`. Inputs are
    clipped to [-1, 1] first (round-off can push a correlation past 1).
    """
    x = jnp.clip(x, -1.0, 1.0)
    theta, _ = _arccos_of_abs(jnp.abs(x))
    return jnp.where(x < 0, _PI - theta, theta)


def arcsin(x):
    r"""Arc-sine of ``x`` in [-1, 1] with the same polynomial as :func:`arccos`,
    accurate *relative* to the result near 0.

    :math:`\pi/2 - \arccos x` has an absolute error of a few 1e-16, which is
    all of the value when ``x`` is tiny (an Erf network at a variance of 1e-20:
    the kernel came out 0); here :math:`\arcsin|x| = s + s^3 g(s^2)` directly for
    :math:`|x| \le 1/2`, and :math:`\pi/2 - 2\arcsin\sqrt{(1-|x|)/2}` above
    (where the result is at least :math:`\pi/6`); odd in ``x``.
    """
    x = jnp.clip(x, -1.0, 1.0)
    big, _, asin_s = _half_angle_arcsin(jnp.abs(x))
    value = jnp.where(big, 0.5 * _PI - 2.0 * asin_s, asin_s)
    return jnp.where(x < 0, -value, value)


class DualActivation(NamedTuple):
    """An activation with its Gaussian expectations.

    Attributes:
      name: a short label.
      fn: the elementwise activation, ``x -> phi(x)`` (jax.numpy).
      nngp: ``(var1, var2, cov) -> E[phi(u) phi(v)]`` for Var u = var1,
        Var v = var2, Cov(u, v) = cov.
      dnngp: ``(var1, var2, cov) -> E[phi'(u) phi'(v)]``.
      nngp_diag: ``var -> E[phi(u)^2]`` for Var u = var.
      dnngp_diag: ``var -> E[phi'(u)^2]``.
    """

    name: str
    fn: Callable
    nngp: Callable
    dnngp: Callable
    nngp_diag: Callable
    dnngp_diag: Callable


def _inv_sqrt(v):
    """1 / sqrt(v) where v > 0, and 0 where v = 0 (a zero input has no direction)."""
    return jnp.where(v > 0, lax.rsqrt(jnp.where(v > 0, v, 1.0)), 0.0)


def _sqrt_nonneg(v):
    """sqrt(v) where v > 0, and 0 where v <= 0, with a zero gradient there
    rather than sqrt's infinite one: a zero variance (a padded position, whose
    kernel entries the layer then sets to zero) gives no NaN gradient (0 * inf)
    to the layers before.
    """
    return jnp.where(v > 0, jnp.sqrt(jnp.where(v > 0, v, 1.0)), 0.0)


# Performance note for the closed forms below: the variances var1 and var2 arrive as
# arrays that broadcast against c (shapes (n1, 1) and (1, n2)). Every square
# root or division of a or b alone is written on a or b *before* they meet c,
# so XLA evaluates it once per input rather than once per kernel entry; the
# per-entry work is then a few multiplications, one or two square roots and
# the arc-cosine polynomial.


def _safe_correlation(var1, var2, cov):
    """Rho = cov / sqrt(var1 var2), clipped to [-1, 1]; 0 where var1 var2 = 0 (a zero input)."""
    rho = cov * _inv_sqrt(var1) * _inv_sqrt(var2)
    sqrt_q1q2 = _sqrt_nonneg(var1) * _sqrt_nonneg(var2)
    return jnp.clip(rho, -1.0, 1.0), sqrt_q1q2


def _relu_parts(var1, var2, cov):
    r"""Arc-cosine kernels of degree 1 and 0 (Cho & Saul 2009).

    :math:`\mathbb{E}[\mathrm{relu}(u)\mathrm{relu}(v)]
    = \frac{\sqrt{q_1 q_2}\,\sin\theta + (\pi-\theta)\,q_{12}}{2\pi}`,
    :math:`\mathbb{E}[1_{u>0}1_{v>0}] = \frac{\pi-\theta}{2\pi}`, with
    :math:`\theta = \arccos(q_{12}/\sqrt{q_1 q_2})`.
    """
    rho = cov * _inv_sqrt(var1) * _inv_sqrt(var2)
    sqrt_ab = _sqrt_nonneg(var1) * _sqrt_nonneg(var2)
    # E[1{u>0} 1{v>0}] has a square-root singularity at rho = +-1: one ulp of
    # round-off in rho moves theta by 1e-8 (float64; 5e-4 in float32).
    # Correlations within 8 ulps (of rho's own type) of +-1 are taken as
    # exactly +-1 (identical or antipodal inputs), which is what exact
    # arithmetic gives for them; |rho| > 1 (round-off) is taken as 1.
    theta_abs, sin_theta = _arccos_of_abs(jnp.abs(rho), snap=True)
    pi_minus_theta = jnp.where(rho < 0, theta_abs, _PI - theta_abs)
    e_relu = (sqrt_ab * sin_theta + pi_minus_theta * cov) * _INV_2PI
    e_step = pi_minus_theta * _INV_2PI
    return e_relu, e_step


def ab_relu(a: float = 0.0, b: float = 1.0) -> DualActivation:
    r"""``phi(x) = a min(x, 0) + b max(x, 0)``.

    Writing :math:`\phi(x) = a x + (b-a)\,\mathrm{relu}(x)` and using
    :math:`\mathbb{E}[u\,\mathrm{relu}(v)] = q_{12}/2`:

    .. math::
        \mathbb{E}[\phi(u)\phi(v)] = a b\, q_{12} + (b-a)^2\, \mathbb{E}[\mathrm{relu}(u)\mathrm{relu}(v)],
        \qquad
        \mathbb{E}[\phi'(u)\phi'(v)] = a b + (b-a)^2\, \frac{\pi - \theta}{2\pi}.
    """
    slope_neg, slope_pos = float(a), float(b)
    d2 = (slope_pos - slope_neg) ** 2
    ab_ = slope_neg * slope_pos

    def fn(x):
        return slope_neg * jnp.minimum(x, 0) + slope_pos * jnp.maximum(x, 0)

    # For ReLU (a, b) = (0, 1) the linear terms vanish: leave them out rather
    # than multiply by 0 and 1 for every kernel entry.
    def nngp(va, vb, cov):
        e_relu, _ = _relu_parts(va, vb, cov)
        out = e_relu if d2 == 1.0 else d2 * e_relu
        return out if ab_ == 0.0 else ab_ * cov + out

    def dnngp(va, vb, cov):
        _, e_step = _relu_parts(va, vb, cov)
        out = e_step if d2 == 1.0 else d2 * e_step
        return out if ab_ == 0.0 else ab_ + out

    def nngp_diag(va):
        return (slope_neg**2 + slope_pos**2) / 2 * va

    def dnngp_diag(va):
        return (slope_neg**2 + slope_pos**2) / 2 * jnp.ones_like(va)

    return DualActivation(f"ABRelu({slope_neg}, {slope_pos})", fn, nngp, dnngp, nngp_diag, dnngp_diag)


def relu() -> DualActivation:
    """``phi(x) = max(x, 0)``: the arc-cosine kernel of degree 1 (Cho & Saul 2009)."""
    return ab_relu(0.0, 1.0)._replace(name="Relu")


def leaky_relu(alpha: float) -> DualActivation:
    """``phi(x) = x`` for x > 0 and ``alpha x`` otherwise; see :func:`ab_relu`."""
    return ab_relu(alpha, 1.0)._replace(name=f"LeakyRelu({alpha})")


def abs_activation() -> DualActivation:
    """``phi(x) = |x|``; see :func:`ab_relu` with (a, b) = (-1, 1)."""
    return ab_relu(-1.0, 1.0)._replace(name="Abs")


def erf(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> DualActivation:
    r"""``phi(x) = a erf(b x) + c`` (Williams 1997).

    .. math::
        \mathbb{E}[\phi(u)\phi(v)] = \frac{2a^2}{\pi}\arcsin
            \frac{2b^2 q_{12}}{\sqrt{(1+2b^2 q_1)(1+2b^2 q_2)}} + c^2,
        \qquad
        \mathbb{E}[\phi'(u)\phi'(v)] = \frac{4a^2b^2}{\pi}
            \frac{1}{\sqrt{(1+2b^2q_1)(1+2b^2q_2) - 4b^4q_{12}^2}}.

    Note (ERRATA #2): for ``phi(z) = erf(z / sqrt 2)``, i.e. ``b = 1/sqrt 2``,
    the argument of arcsin is :math:`q_{12}/\sqrt{(1+q_1)(1+q_2)}`; the form with
    :math:`2q_{12}/\sqrt{(1+2q_1)(1+2q_2)}` belongs to ``erf(z)``.
    """
    amp, scale, shift = float(a), float(b), float(c)
    s2 = 2.0 * scale**2

    def fn(x):
        return amp * _erf(scale * x) + shift

    def _ratio(va, vb, cov):
        # r = 2 b^2 cov / sqrt((1 + 2 b^2 var1)(1 + 2 b^2 var2)), the factors taken per input.
        ia = lax.rsqrt(1 + s2 * va)
        ib = lax.rsqrt(1 + s2 * vb)
        return jnp.clip(s2 * cov * ia * ib, -1.0, 1.0), ia * ib

    def nngp(va, vb, cov):
        r, _ = _ratio(va, vb, cov)
        return 2 * amp**2 / _PI * arcsin(r) + shift**2

    def dnngp(va, vb, cov):
        # det = (1 + s q1)(1 + s q2) - s^2 q12^2 = 1 + s (q1 + q2) + s^2 (q1 q2 - q12^2) >= 1,
        # written so that no cancellation can make it vanish (s = 2 b^2).
        det = 1 + s2 * (va + vb) + s2**2 * jnp.maximum(va * vb - cov * cov, 0.0)
        return 4 * amp**2 * scale**2 / _PI * lax.rsqrt(det)

    def nngp_diag(va):
        return 2 * amp**2 / _PI * jnp.arcsin(s2 * va / (1 + s2 * va)) + shift**2

    def dnngp_diag(va):
        return 4 * amp**2 * scale**2 / _PI / jnp.sqrt(1 + 2 * s2 * va)

    return DualActivation(f"Erf({amp}, {scale}, {shift})", fn, nngp, dnngp, nngp_diag, dnngp_diag)


def gelu() -> DualActivation:
    r"""Exact GELU, ``phi(x) = x Phi(x)`` with Phi the standard normal CDF.

    Derived here by Stein's lemma and Gaussian reweighting (checked against
    Monte Carlo and quadrature in the tests). With
    :math:`P = (1+q_1)(1+q_2)` and :math:`D = \sqrt{P - q_{12}^2}`:

    .. math::
        \mathbb{E}[\phi(u)\phi(v)] = \frac{q_{12}}{4} + \frac{q_{12}}{2\pi}\arcsin\frac{q_{12}}{\sqrt P}
            + \frac{q_1 q_2\,D^2 + q_{12}^2}{2\pi P D},

    .. math::
        \mathbb{E}[\phi'(u)\phi'(v)] = \frac14 + \frac{1}{2\pi}\arcsin\frac{q_{12}}{\sqrt P}
            + \frac{q_{12}}{2\pi D}\Big(\frac{1}{1+q_1} + \frac{1}{1+q_2}\Big) + \frac{q_{12}}{2\pi D^3}.
    """

    def fn(x):
        return x * 0.5 * (1 + _erf(x / math.sqrt(2)))

    def _parts(va, vb, cov):
        # With P = (1+q1)(1+q2): r = q12 / sqrt(P) and
        # D^2 = P - q12^2 = 1 + q1 + q2 + (q1 q2 - q12^2) >= 1, free of cancellation.
        ia, ib = lax.rsqrt(1 + va), lax.rsqrt(1 + vb)
        r = jnp.clip(cov * ia * ib, -1.0, 1.0)
        inv_d = lax.rsqrt(1 + va + vb + jnp.maximum(va * vb - cov * cov, 0.0))
        return r, inv_d, ia * ia, ib * ib

    def nngp(va, vb, cov):
        r, inv_d, inv1a, inv1b = _parts(va, vb, cov)
        asin = arcsin(r)
        # (q1 q2 D^2 + q12^2) / (2 pi P D) = (q1 q2 D + q12^2 / D) / (2 pi P)
        return cov * 0.25 + cov * asin * _INV_2PI + (va * vb / inv_d + cov * cov * inv_d) * inv1a * inv1b * _INV_2PI

    def dnngp(va, vb, cov):
        r, inv_d, inv1a, inv1b = _parts(va, vb, cov)
        asin = arcsin(r)
        return 0.25 + asin * _INV_2PI + cov * inv_d * _INV_2PI * (inv1a + inv1b) + cov * inv_d**3 * _INV_2PI

    def nngp_diag(va):
        return nngp(va, va, va)

    def dnngp_diag(va):
        return dnngp(va, va, va)

    return DualActivation("Gelu", fn, nngp, dnngp, nngp_diag, dnngp_diag)


def sin(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> DualActivation:
    r"""``phi(x) = a sin(b x + c)``.

    From :math:`\sin\alpha\sin\beta = \tfrac12[\cos(\alpha-\beta) - \cos(\alpha+\beta)]`
    and :math:`\mathbb{E}\cos(w) = e^{-\mathrm{Var}\,w/2}` for a centred Gaussian w:

    .. math::
        \mathbb{E}[\phi(u)\phi(v)] = \frac{a^2}{2}\Big[e^{-b^2(q_1+q_2-2q_{12})/2}
            - \cos(2c)\, e^{-b^2(q_1+q_2+2q_{12})/2}\Big],

    and :math:`\mathbb{E}[\phi'\phi']` is the same with :math:`a^2b^2` and a plus sign.
    """
    amp, freq, phase = float(a), float(b), float(c)
    cos2c = math.cos(2 * phase)

    def fn(x):
        return amp * jnp.sin(freq * x + phase)

    def _parts(va, vb, cov):
        # exp(-b^2 (q1 + q2 -+ 2 q12) / 2); both exponents are <= 0 since |q12| <= sqrt(q1 q2).
        half_sum = -(freq**2) * (va + vb) / 2
        return jnp.exp(half_sum + freq**2 * cov), jnp.exp(half_sum - freq**2 * cov)

    def nngp(va, vb, cov):
        minus, plus = _parts(va, vb, cov)
        return amp**2 / 2 * (minus - cos2c * plus)

    def dnngp(va, vb, cov):
        minus, plus = _parts(va, vb, cov)
        return (amp * freq) ** 2 / 2 * (minus + cos2c * plus)

    def nngp_diag(va):
        return amp**2 / 2 * (1 - cos2c * jnp.exp(-2 * freq**2 * va))

    def dnngp_diag(va):
        return (amp * freq) ** 2 / 2 * (1 + cos2c * jnp.exp(-2 * freq**2 * va))

    return DualActivation(f"Sin({amp}, {freq}, {phase})", fn, nngp, dnngp, nngp_diag, dnngp_diag)


def identity() -> DualActivation:
    """``phi(x) = x``: E[uv] = cov and E[1 * 1] = 1."""
    return DualActivation(
        "Identity",
        lambda x: x,
        lambda va, vb, cov: cov,
        lambda va, vb, cov: jnp.ones_like(cov),
        lambda va: va,
        lambda va: jnp.ones_like(va),
    )


def quadrature(fn: Callable, deg: int = 25, df: Optional[Callable] = None, name: str = "") -> DualActivation:
    r"""Gaussian expectations of any elementwise ``fn`` by Gauss–Hermite quadrature.

    With probabilists' Gauss–Hermite nodes :math:`z_i` and weights :math:`w_i`
    (``deg`` of them; normalised to sum to one) and the Cholesky factorisation
    :math:`u = \sqrt a\, z_1`, :math:`v = \sqrt b\,(\rho z_1 + \sqrt{1-\rho^2}\, z_2)`,

    .. math:: \mathbb{E}[f(u) g(v)] \approx \sum_{i,j} w_i w_j\, f(u_i)\, g(v_{ij}).

    The rule is exact when ``f(u) g(v)`` is a polynomial of degree at most
    ``2 deg - 1`` in each node variable; for smooth bounded activations the
    error falls with ``deg``, though only like ``exp(-k sqrt(deg))`` when the
    function has complex poles near the real axis. Measured
    (tests/kernels/test_dual.py) for ``tanh`` (poles at ``±iπ/2``) at variances up to
    2, largest error over all correlations and both kernels (E[φ'φ'] is the
    worse): below 5e-3 with ``deg=25`` and below 2e-4 with ``deg=50`` (worst
    at a = b = 2; far smaller at unit variance). For kinked activations (ReLU-like) the error
    decays only polynomially: use a closed form there.

    ``df``, the derivative, defaults to ``jax.grad(fn)`` applied elementwise.
    Cost: ``deg**2`` evaluations of ``fn`` per kernel entry (memory ``deg``
    times the kernel size).
    """
    if not callable(fn):
        raise TypeError(f"quadrature: `fn` must be callable, got {type(fn).__name__}.")
    if not isinstance(deg, (int, np.integer)) or deg < 2:
        raise ValueError(f"quadrature: `deg` must be an integer >= 2, got {deg!r}.")
    nodes, weights = np.polynomial.hermite_e.hermegauss(int(deg))
    weights = weights / weights.sum()
    if df is None:
        df = jnp.vectorize(jax.grad(fn))

    def _expect_pair(f, g, va, vb, cov):
        z = jnp.asarray(nodes, dtype=jnp.result_type(cov, float))
        w = jnp.asarray(weights, dtype=z.dtype)
        rho, _ = _safe_correlation(va, vb, cov)
        su, sv = _sqrt_nonneg(va), _sqrt_nonneg(vb)
        # sqrt(1 - rho^2) with a zero gradient at rho = +-1, where sqrt's is infinite: there rho is at its
        # extreme, so its own derivative is zero and the exact product is zero, not 0 * inf = NaN.
        orth = _sqrt_nonneg(1.0 - rho * rho)
        shape = jnp.broadcast_shapes(jnp.shape(va), jnp.shape(vb), jnp.shape(cov))
        su, sv, rho, orth = (jnp.broadcast_to(q, shape) for q in (su, sv, rho, orth))

        def one_outer_node(carry, zw):
            zi, wi = zw
            fu = f(su * zi)
            v = sv[..., None] * (rho[..., None] * zi + orth[..., None] * z)
            inner = jnp.sum(g(v) * w, axis=-1)
            return carry + wi * fu * inner, None

        total, _ = jax.lax.scan(one_outer_node, jnp.zeros(shape, z.dtype), (z, w))
        return total

    def _expect_diag(f, va):
        z = jnp.asarray(nodes, dtype=jnp.result_type(va, float))
        w = jnp.asarray(weights, dtype=z.dtype)
        s = jnp.sqrt(jnp.maximum(va, 0.0))[..., None]
        return jnp.sum(f(s * z) ** 2 * w, axis=-1)

    label = name or getattr(fn, "__name__", "fn")
    return DualActivation(
        f"Quadrature({label}, deg={deg})",
        fn,
        lambda va, vb, cov: _expect_pair(fn, fn, va, vb, cov),
        lambda va, vb, cov: _expect_pair(df, df, va, vb, cov),
        lambda va: _expect_diag(fn, va),
        lambda va: _expect_diag(df, va),
    )


def expectations(activation: DualActivation, var1, var2, cov):
    """Return ``(E[phi(u) phi(v)], E[phi'(u) phi'(v)])`` for Var u = var1,
    Var v = var2, Cov(u, v) = cov.

    Checks that the covariance is valid (var1, var2 >= 0 and
    cov^2 <= var1 var2 up to 1e-12 relative) and raises ``ValueError`` naming
    the argument otherwise.

    Example:
      >>> from ntkcourse import dual
      >>> [float(v) for v in dual.expectations(dual.relu(), 1.0, 1.0, 0.0)]  # 1/(2 pi), 1/4
      [0.15915494309189535, 0.25]
    """
    q1, q2, q12 = (np.asarray(q, dtype=float) for q in (var1, var2, cov))
    if np.any(q1 < 0):
        raise ValueError(f"expectations: variance `var1` must be >= 0, got {var1!r}.")
    if np.any(q2 < 0):
        raise ValueError(f"expectations: variance `var2` must be >= 0, got {var2!r}.")
    if np.any(q12 * q12 > q1 * q2 * (1 + 1e-12) + 1e-300):
        raise ValueError(
            f"expectations: covariance `cov` must satisfy cov^2 <= var1 var2, got var1={var1!r}, var2={var2!r}, "
            f"cov={cov!r}."
        )
    with jax.enable_x64(True):
        return (np.asarray(activation.nngp(q1, q2, q12)), np.asarray(activation.dnngp(q1, q2, q12)))
