r"""Dual activations of the remaining neural-tangents activations.

Same conventions as :mod:`ntkcourse.dual`: for a centred Gaussian pair
:math:`(u, v)` with variances :math:`q_1, q_2` and covariance :math:`q_{12}`,
each :class:`~ntkcourse.dual.DualActivation` gives
:math:`\mathbb{E}[\phi(u)\phi(v)]` and :math:`\mathbb{E}[\phi'(u)\phi'(v)]`.
The derivative kernel is always the :math:`q_{12}`-derivative of the first
(Price's theorem, Price 1958: for jointly Gaussian :math:`(u, v)`,
:math:`\partial_{q_{12}} \mathbb{E}[f(u) g(v)] = \mathbb{E}[f'(u) g'(v)]`).

Activations here (neural-tangents 0.6.5 names, Novak et al. 2020):
exponential ``a e^{b x}``, Gaussian ``a e^{b x^2}``, Gabor
``e^{-x^2} \sin x``, sign, polynomials (hence monomials and normalised
Hermite polynomials), rectified monomials ``1_{x \ge 0} x^n`` (the arc-cosine
kernels of Cho & Saul 2009), and the kernel-only normalised exponential of
Shankar et al. (2020). Every formula is derived in its docstring and checked
against Gauss–Hermite quadrature and Monte Carlo in
``tests/kernels/test_dual_extra.py``.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .dual import DualActivation, _arccos_of_abs, _sqrt_nonneg, arcsin

__all__ = [
    "exp",
    "gaussian",
    "gabor",
    "sign",
    "polynomial",
    "hermite_coefficients",
    "rectified_monomial",
    "exp_normalized",
]

_INV_2PI = 1.0 / (2.0 * math.pi)


def _correlation(var1, var2, cov, clip: bool = True):
    """``(rho, sqrt(var1 var2))`` with rho clipped to [-1, 1] (unless ``clip=False``) and 0 where a variance is 0.

    The square roots have a zero gradient at a zero variance (a zero input), not sqrt's infinite one,
    which would make every gradient through such an input NaN (``dual._sqrt_nonneg``).
    """
    s = _sqrt_nonneg(var1) * _sqrt_nonneg(var2)
    rho = jnp.where(s > 0, cov / jnp.where(s > 0, s, 1.0), 0.0)
    return (jnp.clip(rho, -1.0, 1.0) if clip else rho), s


def exp(a: float = 1.0, b: float = 1.0) -> DualActivation:
    r"""``phi(x) = a exp(b x)``.

    :math:`b(u + v)` is Gaussian with variance :math:`b^2(q_1 + q_2 + 2q_{12})`, and
    :math:`\mathbb{E} e^w = e^{\mathrm{Var}\,w/2}`:

    .. math::
        \mathbb{E}[\phi(u)\phi(v)] = a^2 e^{b^2 (q_1 + q_2 + 2 q_{12})/2}, \qquad
        \mathbb{E}[\phi'(u)\phi'(v)] = a^2 b^2 e^{b^2 (q_1 + q_2 + 2 q_{12})/2}.
    """
    amp, rate = float(a), float(b)

    def nngp(va, vb, cov):
        return amp**2 * jnp.exp(rate**2 * ((va + vb) / 2 + cov))

    def dnngp(va, vb, cov):
        return rate**2 * nngp(va, vb, cov)

    return DualActivation(
        f"Exp({amp}, {rate})", lambda x: amp * jnp.exp(rate * x), nngp, dnngp,
        lambda va: amp**2 * jnp.exp(2 * rate**2 * va), lambda va: (amp * rate) ** 2 * jnp.exp(2 * rate**2 * va),
    )


def gaussian(a: float = 1.0, b: float = -1.0) -> DualActivation:
    r"""``phi(x) = a exp(b x^2)``.

    For :math:`w = (u, v)` with covariance :math:`\Sigma`,
    :math:`\mathbb{E}\, e^{b\, w^\top w} = \det(I - 2b\Sigma)^{-1/2}`, so with
    :math:`D = (1 - 2bq_1)(1 - 2bq_2) - 4b^2 q_{12}^2`:

    .. math::
        \mathbb{E}[\phi(u)\phi(v)] = a^2 D^{-1/2}, \qquad
        \mathbb{E}[\phi'(u)\phi'(v)] = \partial_{q_{12}} a^2 D^{-1/2} = 4 a^2 b^2 q_{12} D^{-3/2}.

    For ``b > 0`` the expectation is infinite once :math:`D \le 0` or
    :math:`1 - 2bq \le 0` (the integrand grows faster than the density falls);
    the kernels are then ``+inf`` (the exact value), not a number from a
    formula used outside its range.
    """
    amp, rate = float(a), float(b)

    def _det(va, vb, cov):
        pa, pb = 1 - 2 * rate * va, 1 - 2 * rate * vb
        det = pa * pb - 4 * rate**2 * cov * cov
        finite = (pa > 0) & (pb > 0) & (det > 0)
        return jnp.where(finite, det, 1.0), finite

    def nngp(va, vb, cov):
        det, finite = _det(va, vb, cov)
        return jnp.where(finite, amp**2 / jnp.sqrt(det), jnp.inf)

    def dnngp(va, vb, cov):
        det, finite = _det(va, vb, cov)
        return jnp.where(finite, 4 * amp**2 * rate**2 * cov / (det * jnp.sqrt(det)), jnp.inf)

    def nngp_diag(va):
        p = 1 - 4 * rate * va
        return jnp.where(p > 0, amp**2 / jnp.sqrt(jnp.where(p > 0, p, 1.0)), jnp.inf)

    def dnngp_diag(va):
        return dnngp(va, va, va)

    return DualActivation(f"Gaussian({amp}, {rate})", lambda x: amp * jnp.exp(rate * x * x), nngp, dnngp,
                          nngp_diag, dnngp_diag)


def gabor() -> DualActivation:
    r"""``phi(x) = exp(-x^2) sin(x)``.

    With :math:`\sin u \sin v = \tfrac12[\cos(u - v) - \cos(u + v)]` and, for
    :math:`w = (u, v) \sim N(0, \Sigma)` and :math:`t \in \mathbb{R}^2`,
    :math:`\mathbb{E}\, e^{-w^\top w + i t^\top w} = \det(I + 2\Sigma)^{-1/2}
    e^{-t^\top M t / 2}` where :math:`M = \Sigma (I + 2\Sigma)^{-1}`. Writing
    :math:`S = q_1 + q_2`, :math:`\Delta = 4(q_1 q_2 - q_{12}^2)` and
    :math:`D = \det(I + 2\Sigma) = 1 + 2S + \Delta`, one has
    :math:`M_{11} + M_{22} = (S + \Delta)/D` and :math:`M_{12} = q_{12}/D`, so

    .. math::
        \mathbb{E}[\phi(u)\phi(v)] = \frac{1}{2\sqrt D}\Big[
            e^{-(S + \Delta - 2q_{12})/(2D)} - e^{-(S + \Delta + 2q_{12})/(2D)}\Big].

    :math:`\mathbb{E}[\phi'(u)\phi'(v)]` is its :math:`q_{12}`-derivative (Price),
    taken by forward-mode autodiff of this formula (exact; the formula is
    smooth since :math:`D \ge 1`).
    """

    def nngp(va, vb, cov):
        s = va + vb
        # Unclipped: D >= 1 anyway, and max() would halve its derivative at cov^2 = q1 q2.
        delta = 4 * (va * vb - cov * cov)
        d = 1 + 2 * s + delta
        return (jnp.exp(-(s + delta - 2 * cov) / (2 * d)) - jnp.exp(-(s + delta + 2 * cov) / (2 * d))) / (
            2 * jnp.sqrt(d))

    def dnngp(va, vb, cov):
        cov = jnp.asarray(cov, jnp.result_type(cov, float))
        return jax.jvp(lambda c: nngp(va, vb, c), (cov,), (jnp.ones_like(cov),))[1]

    return DualActivation("Gabor", lambda x: jnp.exp(-x * x) * jnp.sin(x), nngp, dnngp,
                          lambda va: nngp(va, va, va), lambda va: dnngp(va, va, va))


def sign() -> DualActivation:
    r"""``phi(x) = sign(x)`` (0 at 0).

    :math:`\mathbb{E}[\mathrm{sign}(u)\,\mathrm{sign}(v)] = 1 - 2\theta/\pi = \tfrac{2}{\pi}\arcsin\rho`
    with :math:`\rho = q_{12}/\sqrt{q_1 q_2}` (Sheppard's formula), and
    :math:`\mathbb{E}[\mathrm{sign}(u)^2] = 1` (0 for a zero input).

    The derivative kernel is taken as **0**, as in neural-tangents: the
    derivative of ``sign`` is zero wherever it exists, which is what
    autodiff, hence the empirical NTK of a finite network, uses (the true
    distributional derivative, a delta at 0, has no finite kernel).
    """

    def nngp(va, vb, cov):
        rho, s = _correlation(va, vb, cov)
        return jnp.where(s > 0, 2.0 * arcsin(rho) / math.pi, 0.0)

    def zeros(va, vb, cov):
        return jnp.zeros(jnp.broadcast_shapes(jnp.shape(va), jnp.shape(vb), jnp.shape(cov)),
                         jnp.result_type(va, vb, cov, float))

    return DualActivation("Sign", jnp.sign, nngp, zeros, lambda va: jnp.where(va > 0, 1.0, 0.0),
                          lambda va: jnp.zeros_like(va))


def _hermite_weights(coef: Sequence[float]):
    r"""``w[l][i]`` with :math:`s_l(q) = \sum_i w_{l,i}\, q^i` (see :func:`polynomial`)."""
    n = len(coef)
    weights = []
    for level in range(n):
        row = []
        for i in range((n - 1 - level) // 2 + 1):
            k = level + 2 * i
            denominator = 2**i * math.factorial(i) * math.sqrt(math.factorial(level))
            row.append(float(coef[k]) * math.factorial(k) / denominator)
        weights.append(row)
    return weights


def polynomial(coef: Sequence[float], name: str = "") -> DualActivation:
    r"""``phi(x) = coef[0] + coef[1] x + ... + coef[n] x^n`` (numpy's coefficient order).

    Expand in normalised probabilists' Hermite polynomials
    :math:`h_l = He_l/\sqrt{l!}`, orthonormal under :math:`N(0, 1)`: from
    :math:`z^k = \sum_i \frac{k!}{2^i i! (k-2i)!} He_{k-2i}(z)`,
    :math:`\phi(\sqrt q\, z) = \sum_l q^{l/2} s_l(q)\, h_l(z)` with

    .. math:: s_l(q) = \sum_{i \ge 0} c_{l+2i} \frac{(l+2i)!}{2^i\, i!\, \sqrt{l!}}\, q^i .

    Mehler's formula :math:`\mathbb{E}[h_l(z_1) h_m(z_2)] = \delta_{lm}\rho^l`
    for standard normals with correlation :math:`\rho` then gives, with
    :math:`\rho^l (q_1 q_2)^{l/2} = q_{12}^l`, a polynomial free of square roots:

    .. math::
        \mathbb{E}[\phi(u)\phi(v)] = \sum_l s_l(q_1)\, s_l(q_2)\, q_{12}^l, \qquad
        \mathbb{E}[\phi'(u)\phi'(v)] = \sum_{l \ge 1} l\, s_l(q_1)\, s_l(q_2)\, q_{12}^{l-1}.

    This holds for every variance (neural-tangents' ``Polynomial`` uses the
    same expansion; its ``Hermite`` assumes unit variances, see
    :func:`hermite_coefficients`).
    """
    coef = [float(c) for c in coef]
    weights = _hermite_weights(coef)

    def s_of(level, q):
        out = 0.0
        for w in reversed(weights[level]):
            out = out * q + w
        return out

    def nngp(va, vb, cov):
        out = jnp.zeros(jnp.broadcast_shapes(jnp.shape(va), jnp.shape(vb), jnp.shape(cov)),
                        jnp.result_type(va, vb, cov, float))
        for level in range(len(coef) - 1, -1, -1):
            out = out * cov + s_of(level, va) * s_of(level, vb)
        return out

    def dnngp(va, vb, cov):
        out = jnp.zeros(jnp.broadcast_shapes(jnp.shape(va), jnp.shape(vb), jnp.shape(cov)),
                        jnp.result_type(va, vb, cov, float))
        for level in range(len(coef) - 1, 0, -1):
            out = out * cov + level * s_of(level, va) * s_of(level, vb)
        return out

    def fn(x):
        out = jnp.zeros_like(x)
        for c in reversed(coef):
            out = out * x + c
        return out

    return DualActivation(name or f"Polynomial({coef})", fn, nngp, dnngp, lambda va: nngp(va, va, va),
                          lambda va: dnngp(va, va, va))


def hermite_coefficients(degree: int):
    r"""Power-basis coefficients of :math:`He_n(x)/\sqrt{n!}` (lowest first), the
    normalised probabilists' Hermite polynomial of neural-tangents' ``Hermite``.

    For unit variances :func:`polynomial` of these gives
    :math:`\mathbb{E}[\phi(u)\phi(v)] = q_{12}^n` (Mehler); for other
    variances it gives the exact expectation, which is not :math:`q_{12}^n`.
    """
    coef = np.polynomial.hermite_e.herme2poly([0] * degree + [1])
    return [float(c) / math.sqrt(math.factorial(degree)) for c in coef]


def _arccos_polynomials(degree: int):
    r"""Exact rational coefficients of :math:`A_n, B_n` with
    :math:`J_n(\theta) = A_n(\rho)(\pi - \theta) + B_n(\rho)\sin\theta`, :math:`\rho = \cos\theta`.

    :math:`J_n` is the angular part of Cho & Saul's arc-cosine kernel. Price's
    theorem gives :math:`dJ_n/d\rho = n^2 J_{n-1}`; with
    :math:`d(\pi-\theta)/d\rho = 1/\sin\theta` and :math:`d\sin\theta/d\rho = -\rho/\sin\theta`
    this is :math:`A_n' = n^2 A_{n-1}` and
    :math:`A_n - \rho B_n + (1-\rho^2) B_n' = n^2 (1-\rho^2) B_{n-1}`. Matching the
    coefficient of :math:`\rho^m` in the second,
    :math:`(m+1) b_{m+1} - m b_{m-1} = R_m` with :math:`R = n^2(1-\rho^2)B_{n-1} - A_n`,
    solved from the top degree down; the :math:`\rho^0` equation fixes the
    constant of integration of :math:`A_n`. Start: :math:`A_0 = 1, B_0 = 0`.
    """
    a, b = [Fraction(1)], [Fraction(0)]
    for n in range(1, degree + 1):
        sq = n * n
        a_new = [Fraction(0)] + [sq * c / (k + 1) for k, c in enumerate(a)]  # constant fixed below
        rhs_b = [Fraction(0)] * (n + 2)
        for k, c in enumerate(b):
            rhs_b[k] += sq * c
            rhs_b[k + 2] -= sq * c
        r = [rhs_b[m] - (a_new[m] if m < len(a_new) else 0) for m in range(n + 2)]
        b_new = [Fraction(0)] * (n + 2)
        for m in range(n + 1, 0, -1):
            b_new[m - 1] = ((m + 1) * (b_new[m + 1] if m + 1 < len(b_new) else 0) - r[m]) / m
        # rho^0: b_1 = R_0 = n^2 B_{n-1}(0) - A_n(0): the constant of A_n.
        a_new[0] = rhs_b[0] - b_new[1]
        a, b = a_new, b_new[:n]
    return [float(c) for c in a], [float(c) for c in b]


def rectified_monomial(degree: int) -> DualActivation:
    r"""``phi(x) = 1_{x >= 0} x^n``: the arc-cosine kernel of degree n (Cho & Saul 2009).

    .. math::
        \mathbb{E}[\phi(u)\phi(v)] = \frac{(q_1 q_2)^{n/2}}{2\pi} J_n(\theta), \qquad
        J_n(\theta) = A_n(\cos\theta)\,(\pi - \theta) + B_n(\cos\theta)\sin\theta,

    with :math:`\cos\theta = q_{12}/\sqrt{q_1q_2}` and the polynomials of
    ``_arccos_polynomials`` (:math:`J_0 = \pi - \theta`,
    :math:`J_1 = \sin\theta + (\pi - \theta)\cos\theta`,
    :math:`J_2 = 3\sin\theta\cos\theta + (\pi-\theta)(1 + 2\cos^2\theta)`, ...). On the
    diagonal, :math:`(2n-1)!!\, q^n / 2`. The derivative kernel is
    :math:`n^2` times the kernel of degree :math:`n-1`; for ``n = 0`` (a step)
    it is taken as 0, as in neural-tangents and as autodiff of the finite
    network sees it (see :func:`sign`).
    """
    polys = [_arccos_polynomials(n) for n in range(degree + 1)]

    def kernel(n, va, vb, cov):
        rho, s = _correlation(va, vb, cov)
        # As the ReLU's (dual._relu_parts): correlations within 8 ulps of +-1 taken as +-1, which also gives
        # finite gradients there (sqrt(1 - rho^2) and arccos have infinite derivatives at rho = +-1).
        theta_abs, sin_t = _arccos_of_abs(jnp.abs(rho), snap=True)
        angle = jnp.where(rho < 0, theta_abs, math.pi - theta_abs)
        a, b = polys[n]
        pa = sum(c * rho**k for k, c in enumerate(a))
        pb = sum(c * rho**k for k, c in enumerate(b)) if n > 0 else 0.0
        return s**n * _INV_2PI * (pa * angle + pb * sin_t)

    def dnngp(va, vb, cov):
        if degree == 0:
            return jnp.zeros_like(kernel(0, va, vb, cov))
        return degree**2 * kernel(degree - 1, va, vb, cov)

    double_fact = math.prod(range(2 * degree - 1, 0, -2))

    def dnngp_diag(va):
        if degree == 0:
            return jnp.zeros_like(va)
        return degree**2 * math.prod(range(2 * degree - 3, 0, -2)) * va ** (degree - 1) / 2

    return DualActivation(
        f"RectifiedMonomial({degree})", lambda x: jnp.where(x >= 0, x**degree, 0.0).astype(jnp.result_type(x)),
        lambda va, vb, cov: kernel(degree, va, vb, cov), dnngp, lambda va: double_fact * va**degree / 2,
        dnngp_diag,
    )


def exp_normalized(gamma: float = 1.0, shift: float = -1.0, do_clip: bool = False) -> DualActivation:
    r"""The normalised Gaussian kernel map of Shankar et al. (2020), p. 6 (kernel only).

    .. math::
        K \mapsto \sqrt{q_1 q_2}\; e^{\gamma(\rho + \mathrm{shift})}, \qquad
        \rho = q_{12}/\sqrt{q_1 q_2},

    and :math:`\Theta \mapsto \Theta \cdot \gamma e^{\gamma(\rho + \mathrm{shift})}`
    (its :math:`q_{12}`-derivative at fixed :math:`q_1, q_2`), as neural-tangents'
    ``ExpNormalized``. ``do_clip`` clips :math:`\rho` to [-1, 1]. No elementwise
    function has this dual in general, so there is no finite network: ``fn``
    raises. A zero input gives 0 (neural-tangents floors :math:`q_1 q_2` at
    1e-30 and returns about 1e-15 there).
    """
    g, sh = float(gamma), float(shift)

    def nngp(va, vb, cov):
        rho, s = _correlation(va, vb, cov, clip=do_clip)
        return s * jnp.exp(g * (rho + sh))

    def dnngp(va, vb, cov):
        rho, _ = _correlation(va, vb, cov, clip=do_clip)
        return g * jnp.exp(g * (rho + sh))

    def no_fn(x):
        raise NotImplementedError(
            "ExpNormalized: there is no finite network (no elementwise function has this kernel map); "
            "only kernel_fn is defined, as in neural-tangents.")

    return DualActivation(f"ExpNormalized({g}, {sh})", no_fn, nngp, dnngp, lambda va: nngp(va, va, va),
                          lambda va: dnngp(va, va, va))
