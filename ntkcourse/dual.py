r"""Dual activations: Gaussian expectations of an activation and of its derivative.

For a centred Gaussian pair :math:`(u, v)` with covariance
:math:`\begin{pmatrix} a & c \\ c & b \end{pmatrix}` and an elementwise
activation :math:`\phi`, the infinite-width recursions need two numbers

.. math::

    \check\phi(a, b, c) = \mathbb{E}[\phi(u)\,\phi(v)], \qquad
    \check{\phi'}(a, b, c) = \mathbb{E}[\phi'(u)\,\phi'(v)].

The first propagates the NNGP kernel through a nonlinearity
(Neal 1996; Lee et al. 2018), the second multiplies the NTK
(Jacot et al. 2018; Arora et al. 2019):
:math:`\Theta \mapsto \Theta \cdot \check{\phi'}` (the factor :math:`\sigma_w^2`
is applied by the next ``Dense``/``Conv`` layer, as in neural-tangents).

Each activation is a :class:`DualActivation` with the elementwise function
``fn`` (for finite networks), ``nngp(a, b, c)``, ``dnngp(a, b, c)`` and the
diagonal forms ``nngp_diag(a) = nngp(a, a, a)``, ``dnngp_diag(a)``.
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
]

_PI = math.pi
_INV_2PI = 1.0 / (2.0 * math.pi)
_TINY = np.finfo(np.float64).tiny

# Coefficients, in powers of t = 8 z - 1, of the polynomial that approximates
# g(z) = (arcsin(sqrt z) - sqrt z) / z^{3/2} on 0 <= z <= 1/4.  Obtained by
# Chebyshev interpolation at 14 nodes of g evaluated in extended precision
# (numpy.longdouble) and conversion to the power basis.  With it,
# `arccos` below is within 6e-16 of the exact value on [-1, 1] (tested in
# tests/test_dual.py), about the accuracy of numpy.arccos, and XLA vectorises
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


def _arccos_of_abs(ax, snap: bool = False):
    r"""``(arccos(min(ax, 1)), sin of that angle)`` for ``ax = |x| >= 0``.

    With :math:`z = (1 - |x|)/2` above 1/2 and :math:`z = x^2` below,
    :math:`\arcsin s = s + s^3 g(s^2)` (``_ASIN_POLY``) gives the angle, and
    :math:`1 - x^2` is :math:`4 z (1 - z)` above 1/2 and :math:`1 - z` below, free of
    cancellation. ``snap=True`` takes :math:`|x|` within 8 ulps of 1 as exactly 1.
    """
    big = ax > 0.5
    z = jnp.where(big, 0.5 - 0.5 * ax, ax * ax)
    # z < 0 is |x| > 1 by round-off; with snap, |x| within 8 ulps of 1 (z < 4 eps).
    floor = 4 * jnp.finfo(jnp.result_type(z)).eps if snap else 0.0
    z = jnp.where(z > floor, z, 0.0)
    s = jnp.where(big, jnp.sqrt(z), ax)
    asin_s = s + s * z * _asin_poly(8.0 * z - 1.0)
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


class DualActivation(NamedTuple):
    """An activation with its Gaussian expectations.

    Attributes:
      name: a short label.
      fn: the elementwise activation, ``x -> phi(x)`` (jax.numpy).
      nngp: ``(a, b, c) -> E[phi(u) phi(v)]`` for Var u = a, Var v = b, Cov = c.
      dnngp: ``(a, b, c) -> E[phi'(u) phi'(v)]``.
      nngp_diag: ``a -> E[phi(u)^2]``.
      dnngp_diag: ``a -> E[phi'(u)^2]``.
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


# Performance note for the closed forms below: the variances a and b arrive as
# arrays that broadcast against c (shapes (n1, 1) and (1, n2)). Every square
# root or division of a or b alone is written on a or b *before* they meet c,
# so XLA evaluates it once per input rather than once per kernel entry; the
# per-entry work is then a few multiplications, one or two square roots and
# the arc-cosine polynomial.


def _safe_correlation(a, b, c):
    """Rho = c / sqrt(a b), clipped to [-1, 1]; 0 where a b = 0 (a zero input)."""
    rho = c * _inv_sqrt(a) * _inv_sqrt(b)
    sqrt_ab = jnp.sqrt(jnp.maximum(a, 0.0)) * jnp.sqrt(jnp.maximum(b, 0.0))
    return jnp.clip(rho, -1.0, 1.0), sqrt_ab


def _relu_parts(a, b, c):
    r"""Arc-cosine kernels of degree 1 and 0 (Cho & Saul 2009).

    :math:`\mathbb{E}[\mathrm{relu}(u)\mathrm{relu}(v)] = \frac{\sqrt{ab}\,\sin\theta + (\pi-\theta)\,c}{2\pi}`,
    :math:`\mathbb{E}[1_{u>0}1_{v>0}] = \frac{\pi-\theta}{2\pi}`, with
    :math:`\theta = \arccos(c/\sqrt{ab})`.
    """
    rho = c * _inv_sqrt(a) * _inv_sqrt(b)
    sqrt_ab = jnp.sqrt(jnp.maximum(a, 0.0)) * jnp.sqrt(jnp.maximum(b, 0.0))
    # E[1{u>0} 1{v>0}] has a square-root singularity at rho = +-1: one ulp of
    # round-off in rho moves theta by 1e-8 (float64; 5e-4 in float32).
    # Correlations within 8 ulps (of rho's own type) of +-1 are taken as
    # exactly +-1 (identical or antipodal inputs), which is what exact
    # arithmetic gives for them; |rho| > 1 (round-off) is taken as 1.
    theta_abs, sin_theta = _arccos_of_abs(jnp.abs(rho), snap=True)
    pi_minus_theta = jnp.where(rho < 0, theta_abs, _PI - theta_abs)
    e_relu = (sqrt_ab * sin_theta + pi_minus_theta * c) * _INV_2PI
    e_step = pi_minus_theta * _INV_2PI
    return e_relu, e_step


def ab_relu(a: float = 0.0, b: float = 1.0) -> DualActivation:
    r"""``phi(x) = a min(x, 0) + b max(x, 0)``.

    Writing :math:`\phi(x) = a x + (b-a)\,\mathrm{relu}(x)` and using
    :math:`\mathbb{E}[u\,\mathrm{relu}(v)] = c/2`:

    .. math::
        \mathbb{E}[\phi(u)\phi(v)] = a b\, c + (b-a)^2\, \mathbb{E}[\mathrm{relu}(u)\mathrm{relu}(v)],
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
    def nngp(va, vb, c):
        e_relu, _ = _relu_parts(va, vb, c)
        out = e_relu if d2 == 1.0 else d2 * e_relu
        return out if ab_ == 0.0 else ab_ * c + out

    def dnngp(va, vb, c):
        _, e_step = _relu_parts(va, vb, c)
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
            \frac{2b^2 c_{uv}}{\sqrt{(1+2b^2 a_u)(1+2b^2 b_v)}} + c^2,
        \qquad
        \mathbb{E}[\phi'(u)\phi'(v)] = \frac{4a^2b^2}{\pi}
            \frac{1}{\sqrt{(1+2b^2a_u)(1+2b^2b_v) - 4b^4c_{uv}^2}}.

    Note (ERRATA #2): for ``phi(z) = erf(z / sqrt 2)``, i.e. ``b = 1/sqrt 2``,
    the argument of arcsin is :math:`c_{uv}/\sqrt{(1+a_u)(1+b_v)}`; the form with
    :math:`2c_{uv}/\sqrt{(1+2a_u)(1+2b_v)}` belongs to ``erf(z)``.
    """
    amp, scale, shift = float(a), float(b), float(c)
    s2 = 2.0 * scale**2

    def fn(x):
        return amp * _erf(scale * x) + shift

    def _ratio(va, vb, cov):
        # r = 2 b^2 c / sqrt((1 + 2 b^2 a)(1 + 2 b^2 b)), the factors taken per input.
        ia = lax.rsqrt(1 + s2 * va)
        ib = lax.rsqrt(1 + s2 * vb)
        return jnp.clip(s2 * cov * ia * ib, -1.0, 1.0), ia * ib

    def nngp(va, vb, cov):
        r, _ = _ratio(va, vb, cov)
        return 2 * amp**2 / _PI * (0.5 * _PI - arccos(r)) + shift**2

    def dnngp(va, vb, cov):
        # det = (1 + s a)(1 + s b) - s^2 c^2 = 1 + s (a + b) + s^2 (a b - c^2) >= 1,
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
    :math:`P = (1+a)(1+b)` and :math:`D = \sqrt{P - c^2}`:

    .. math::
        \mathbb{E}[\phi(u)\phi(v)] = \frac{c}{4} + \frac{c}{2\pi}\arcsin\frac{c}{\sqrt P}
            + \frac{ab\,D^2 + c^2}{2\pi P D},

    .. math::
        \mathbb{E}[\phi'(u)\phi'(v)] = \frac14 + \frac{1}{2\pi}\arcsin\frac{c}{\sqrt P}
            + \frac{c}{2\pi D}\Big(\frac{1}{1+a} + \frac{1}{1+b}\Big) + \frac{c}{2\pi D^3}.
    """

    def fn(x):
        return x * 0.5 * (1 + _erf(x / math.sqrt(2)))

    def _parts(va, vb, c):
        # With P = (1+a)(1+b): r = c / sqrt(P) and
        # D^2 = P - c^2 = 1 + a + b + (a b - c^2) >= 1, free of cancellation.
        ia, ib = lax.rsqrt(1 + va), lax.rsqrt(1 + vb)
        r = jnp.clip(c * ia * ib, -1.0, 1.0)
        inv_d = lax.rsqrt(1 + va + vb + jnp.maximum(va * vb - c * c, 0.0))
        return r, inv_d, ia * ia, ib * ib

    def nngp(va, vb, c):
        r, inv_d, inv1a, inv1b = _parts(va, vb, c)
        asin = 0.5 * _PI - arccos(r)
        # (ab D^2 + c^2) / (2 pi P D) = (ab D + c^2 / D) / (2 pi P)
        return c * 0.25 + c * asin * _INV_2PI + (va * vb / inv_d + c * c * inv_d) * inv1a * inv1b * _INV_2PI

    def dnngp(va, vb, c):
        r, inv_d, inv1a, inv1b = _parts(va, vb, c)
        asin = 0.5 * _PI - arccos(r)
        return 0.25 + asin * _INV_2PI + c * inv_d * _INV_2PI * (inv1a + inv1b) + c * inv_d**3 * _INV_2PI

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
        \mathbb{E}[\phi(u)\phi(v)] = \frac{a^2}{2}\Big[e^{-b^2(a_u+b_v-2c_{uv})/2}
            - \cos(2c)\, e^{-b^2(a_u+b_v+2c_{uv})/2}\Big],

    and :math:`\mathbb{E}[\phi'\phi']` is the same with :math:`a^2b^2` and a plus sign.
    """
    amp, freq, phase = float(a), float(b), float(c)
    cos2c = math.cos(2 * phase)

    def fn(x):
        return amp * jnp.sin(freq * x + phase)

    def _parts(va, vb, cov):
        # exp(-b^2 (a_u + b_v -+ 2c) / 2); both exponents are <= 0 since |c| <= sqrt(a_u b_v).
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
    """``phi(x) = x``: E[uv] = c and E[1 * 1] = 1."""
    return DualActivation(
        "Identity",
        lambda x: x,
        lambda va, vb, c: c,
        lambda va, vb, c: jnp.ones_like(c),
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
    (tests/test_dual.py) for ``tanh`` (poles at ``±iπ/2``) at variances up to
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

    def _expect_pair(f, g, va, vb, c):
        z = jnp.asarray(nodes, dtype=jnp.result_type(c, float))
        w = jnp.asarray(weights, dtype=z.dtype)
        rho, _ = _safe_correlation(va, vb, c)
        su, sv = jnp.sqrt(jnp.maximum(va, 0.0)), jnp.sqrt(jnp.maximum(vb, 0.0))
        orth = jnp.sqrt(jnp.maximum(1.0 - rho * rho, 0.0))
        shape = jnp.broadcast_shapes(jnp.shape(va), jnp.shape(vb), jnp.shape(c))
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
        lambda va, vb, c: _expect_pair(fn, fn, va, vb, c),
        lambda va, vb, c: _expect_pair(df, df, va, vb, c),
        lambda va: _expect_diag(fn, va),
        lambda va: _expect_diag(df, va),
    )


def expectations(activation: DualActivation, a, b, c):
    """Return ``(E[phi(u) phi(v)], E[phi'(u) phi'(v)])`` for Var u = a, Var v = b, Cov = c.

    Checks that the covariance is valid (a, b >= 0 and c^2 <= a b up to 1e-12
    relative) and raises ``ValueError`` naming the argument otherwise.
    """
    a_, b_, c_ = (np.asarray(q, dtype=float) for q in (a, b, c))
    if np.any(a_ < 0):
        raise ValueError(f"expectations: variance `a` must be >= 0, got {a!r}.")
    if np.any(b_ < 0):
        raise ValueError(f"expectations: variance `b` must be >= 0, got {b!r}.")
    if np.any(c_ * c_ > a_ * b_ * (1 + 1e-12) + 1e-300):
        raise ValueError(f"expectations: covariance `c` must satisfy c^2 <= a b, got a={a!r}, b={b!r}, c={c!r}.")
    with jax.enable_x64(True):
        return (np.asarray(activation.nngp(a_, b_, c_)), np.asarray(activation.dnngp(a_, b_, c_)))
