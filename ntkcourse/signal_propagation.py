r"""Signal propagation in deep random networks: fixed points, χ₁ and depth scales.

A fully connected network with weights :math:`W_{ij} \sim \mathcal N(0, \sigma_w^2/N)`
and biases :math:`b_i \sim \mathcal N(0, \sigma_b^2)`,
:math:`h^{(\ell)} = W^{(\ell)} \phi(h^{(\ell-1)}) + b^{(\ell)}`, carries at
infinite width the length :math:`q^{(\ell)}` of one input and the correlation
:math:`c^{(\ell)}` of two inputs of that length through the maps
(Poole et al. 2016; Schoenholz et al. 2017, "Deep information propagation")

.. math::

    q^{(\ell)} = V(q^{(\ell-1)}) = \sigma_w^2\,\mathbb E[\phi(u)^2] + \sigma_b^2,
    \qquad u \sim \mathcal N(0, q^{(\ell-1)}),

    c^{(\ell)} = C(c^{(\ell-1)}) = \frac{\sigma_w^2\,\mathbb E[\phi(u)\phi(v)] + \sigma_b^2}{q^*},
    \qquad (u, v) \sim \mathcal N\Big(0, q^*\begin{pmatrix}1 & c\\ c & 1\end{pmatrix}\Big).

These are the NNGP recursions of :mod:`ntkcourse.stax` restricted to the
diagonal and to one correlation; the expectations are the dual activations of
:mod:`ntkcourse.dual` (closed forms or Gauss–Hermite quadrature). With
:math:`q^*` the fixed point of :math:`V` and :math:`c^*` the stable fixed point
of :math:`C`, the paper defines

.. math::

    \chi_1 = \sigma_w^2\,\mathbb E[\phi'(u)^2], \quad
    \chi_q = V'(q^*) = \chi_1 + \sigma_w^2\,\mathbb E[\phi''(u)\phi(u)], \quad
    \chi_c = C'(c^*) = \sigma_w^2\,\mathbb E[\phi'(u)\phi'(v)]\big|_{c = c^*},

    \xi_q = -1/\log\chi_q, \qquad \xi_c = -1/\log\chi_c,

so that :math:`|q^{(\ell)} - q^*| \sim e^{-\ell/\xi_q}` and
:math:`|c^{(\ell)} - c^*| \sim e^{-\ell/\xi_c}` (their eqs. 5 and 9). Since
:math:`C(1) = 1` and :math:`C'(1) = \chi_1`, the point :math:`c = 1` is stable
when :math:`\chi_1 < 1` (the *ordered* phase, :math:`c^* = 1`,
:math:`\chi_c = \chi_1`) and unstable when :math:`\chi_1 > 1` (the *chaotic*
phase, :math:`c^* < 1`). On the order-to-chaos boundary :math:`\chi_1 = 1`,
:math:`\xi_c` diverges; the paper finds that networks of depth up to about
:math:`6\,\xi_c` train (:func:`trainable_depth`). :math:`\chi_1` is also the
factor by which the mean squared gradient changes per layer in backpropagation.

Here :math:`V'` is computed by automatic differentiation of the dual
activation and :math:`\chi_c` from :math:`\check{\phi'}` (Price's theorem makes
it the slope of :math:`C`); the tests check both against closed forms for
ReLU and erf and against Monte Carlo of finite random networks
(:func:`random_network_statistics`). Everything runs in float64.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import brentq

from . import dual, validation

__all__ = [
    "SignalPropagation",
    "variance_map",
    "correlation_map",
    "variance_fixed_point",
    "correlation_fixed_point",
    "depth_scales",
    "trainable_depth",
    "order_to_chaos_boundary",
    "mean_field_iterates",
    "random_network_statistics",
]

_MAX_ITER = 10_000
_DIVERGED = 1e12


class SignalPropagation(NamedTuple):
    r"""Fixed points and depth scales of one ``(activation, sigma_w2, sigma_b2)``.

    Attributes:
      q_star: fixed point of the variance map.
      c_star: stable fixed point of the correlation map (1 in the ordered phase).
      chi_1: :math:`\sigma_w^2 E[\phi'(u)^2]` at :math:`q^*`.
      chi_q: slope of the variance map at :math:`q^*`.
      chi_c: slope of the correlation map at :math:`c^*`.
      xi_q: :math:`-1/\log\chi_q` (``inf`` when :math:`\chi_q = 1`).
      xi_c: :math:`-1/\log\chi_c` (``inf`` when :math:`\chi_c = 1`).
      phase: ``"ordered"`` (:math:`\chi_1 < 1`), ``"critical"`` or ``"chaotic"``.
    """

    q_star: float
    c_star: float
    chi_1: float
    chi_q: float
    chi_c: float
    xi_q: float
    xi_c: float
    phase: str


def _dual_of(activation, where: str) -> dual.DualActivation:
    """The :class:`~ntkcourse.dual.DualActivation` of a dual or of a ``stax`` activation layer."""
    if isinstance(activation, dual.DualActivation):
        return activation
    spec = getattr(activation[2], "spec", None) if isinstance(activation, tuple) and len(activation) == 3 else None
    if spec is not None and isinstance(spec.config.get("activation"), dual.DualActivation):
        return spec.config["activation"]
    raise validation.fail(
        where, "activation",
        "a DualActivation (e.g. ntkcourse.dual.erf()) or a stax activation layer (e.g. stax.Erf())", activation,
    )


@functools.lru_cache(maxsize=64)
def _compiled(act: dual.DualActivation) -> dict:
    """The maps of one activation, compiled once (eager JAX is far too slow for scalar loops).

    Call them inside ``jax.enable_x64(True)``.
    """
    v = lambda sw2, sb2, q: sw2 * act.nngp_diag(q) + sb2  # noqa: E731
    return {
        "v": jax.jit(v),
        "dv": jax.jit(jax.grad(v, argnums=2)),
        "c": jax.jit(lambda sw2, sb2, q, c: (sw2 * act.nngp(q, q, c * q) + sb2) / q),
        "cov": jax.jit(lambda sw2, sb2, a, b, c: sw2 * act.nngp(a, b, c) + sb2),
        "chi_1": jax.jit(lambda sw2, q: sw2 * act.dnngp_diag(q)),
        "chi_c": jax.jit(lambda sw2, q, c: sw2 * act.dnngp(q, q, c * q)),
    }


def _f64(*values):
    return tuple(jnp.float64(v) for v in values)


def _variances(where: str, sigma_w2, sigma_b2) -> tuple[float, float]:
    sigma_w2 = validation.nonnegative(where, "sigma_w2", sigma_w2)
    if sigma_w2 == 0:
        raise validation.fail(where, "sigma_w2", "a finite number > 0 (the weight variance)", sigma_w2)
    return sigma_w2, validation.nonnegative(where, "sigma_b2", sigma_b2)


def variance_map(activation, sigma_w2: float, sigma_b2: float):
    r"""The map :math:`V(q) = \sigma_w^2 E[\phi(\sqrt q z)^2] + \sigma_b^2` (float64, NumPy in and out).

    Example:
      >>> from ntkcourse import dual, signal_propagation as sp
      >>> float(sp.variance_map(dual.relu(), 2.0, 0.0)(1.5))
      1.5
    """
    act = _dual_of(activation, "variance_map")
    sigma_w2, sigma_b2 = _variances("variance_map", sigma_w2, sigma_b2)

    def v(q):
        with jax.enable_x64(True):
            return np.asarray(_compiled(act)["v"](*_f64(sigma_w2, sigma_b2), jnp.asarray(q, jnp.float64)))

    return v


def correlation_map(activation, sigma_w2: float, sigma_b2: float, q: float):
    r"""The map :math:`C(c) = (\sigma_w^2 E[\phi(u)\phi(v)] + \sigma_b^2)/q` for two inputs of variance ``q``.

    At the fixed point ``q = q*`` it maps a correlation to the next layer's.
    """
    act = _dual_of(activation, "correlation_map")
    sigma_w2, sigma_b2 = _variances("correlation_map", sigma_w2, sigma_b2)
    q = validation.nonnegative("correlation_map", "q", q)
    if q == 0:
        raise validation.fail("correlation_map", "q", "a variance > 0 (a zero input has no correlation)", q)

    def c_map(c):
        with jax.enable_x64(True):
            return np.asarray(_compiled(act)["c"](*_f64(sigma_w2, sigma_b2, q), jnp.asarray(c, jnp.float64)))

    return c_map


def _slope_of_variance_map(act: dual.DualActivation, sigma_w2: float, q: float) -> float:
    # V'(q) by automatic differentiation of the dual; at q = 0 the square root
    # inside quadrature duals has an infinite derivative, while the limit of
    # V'(q) as q -> 0 is finite (sigma_w^2 phi'(0)^2 for phi(0) = 0): take it at 1e-12.
    with jax.enable_x64(True):
        return float(_compiled(act)["dv"](*_f64(sigma_w2, 0.0, max(q, 1e-12))))


def variance_fixed_point(activation, sigma_w2: float, sigma_b2: float, *, q0: float = 1.0, tol: float = 1e-13) -> float:
    r"""The fixed point :math:`q^*` of :func:`variance_map` reached from ``q0``.

    Fixed-point iteration, finished by Newton steps on :math:`V(q) - q` (the
    iteration alone slows down like :math:`\chi_q^\ell` near
    :math:`\chi_q = 1`). Raises ``ValueError`` when the variance grows without
    bound (e.g. ReLU with :math:`\sigma_w^2 > 2`, or :math:`= 2` with a bias):
    there is no fixed point.
    """
    where = "variance_fixed_point"
    act = _dual_of(activation, where)
    sigma_w2, sigma_b2 = _variances(where, sigma_w2, sigma_b2)
    q0 = validation.nonnegative(where, "q0", q0)
    v = variance_map(act, sigma_w2, sigma_b2)
    q = q0
    for it in range(_MAX_ITER):
        new = float(v(q))
        if not math.isfinite(new) or new > _DIVERGED:
            raise ValueError(
                f"{where}: the variance map of {act.name} with sigma_w2={sigma_w2}, sigma_b2={sigma_b2} grows "
                f"without bound from q0={q0} (q > {_DIVERGED:g} after {it} layers): there is no fixed point q*; "
                "lower sigma_w2."
            )
        slope = _slope_of_variance_map(act, sigma_w2, new) if it >= 20 else 0.0
        if it >= 20 and slope < 0.999:
            # Newton on g(q) = V(q) - q near the fixed point, where g'(q) = V'(q) - 1 < 0.
            step = (float(v(new)) - new) / (slope - 1.0)
            new = max(new - step, 0.0)
        if abs(new - q) <= tol * max(1.0, abs(new)):
            return new
        q = new
    raise ValueError(
        f"{where}: no convergence to a fixed point of the variance map of {act.name} (sigma_w2={sigma_w2}, "
        f"sigma_b2={sigma_b2}) in {_MAX_ITER} iterations (last q={q}); the network is at or near a critical point "
        "where q* is not isolated."
    )


def correlation_fixed_point(activation, sigma_w2: float, sigma_b2: float, q_star: float) -> float:
    r"""The stable fixed point :math:`c^*` of the correlation map at variance ``q_star``.

    It is 1 when :math:`\chi_1 \le 1`. Otherwise :math:`C(c) - c` is
    :math:`\ge 0` at :math:`c = 0` (there :math:`u, v` are independent and
    :math:`C(0) = (\sigma_w^2 E[\phi]^2 + \sigma_b^2)/q^* \ge 0`) and negative just
    below 1 (slope :math:`\chi_1 > 1`), and Brent's method finds the root
    between. (The bracket starts at 0, not -1: for an odd activation without
    bias, :math:`c = -1` is an unstable fixed point too.)
    """
    where = "correlation_fixed_point"
    act = _dual_of(activation, where)
    sigma_w2, sigma_b2 = _variances(where, sigma_w2, sigma_b2)
    q_star = validation.nonnegative(where, "q_star", q_star)
    with jax.enable_x64(True):
        chi_1 = float(_compiled(act)["chi_1"](*_f64(sigma_w2, q_star)))
    if chi_1 <= 1.0 or q_star == 0.0:
        return 1.0
    c_map = correlation_map(act, sigma_w2, sigma_b2, q_star)
    gap = lambda c: float(c_map(c)) - c  # noqa: E731
    if gap(0.0) <= 0.0:
        return 0.0
    for delta in (1e-2, 1e-4, 1e-6, 1e-8, 1e-10):
        if gap(1.0 - delta) < 0:
            return float(brentq(gap, 0.0, 1.0 - delta, xtol=1e-15, rtol=4 * np.finfo(float).eps))
    raise ValueError(
        f"{where}: chi_1 = {chi_1:.15g} > 1 for {act.name} but the correlation map stays above the diagonal "
        "within 1e-10 of c = 1: too close to the order-to-chaos boundary to separate c* from 1."
    )


def _xi(chi: float) -> float:
    return math.inf if chi >= 1.0 else -1.0 / math.log(chi)


def depth_scales(activation, sigma_w2: float, sigma_b2: float, *, q0: float = 1.0) -> SignalPropagation:
    r""":math:`q^*, c^*, \chi_1, \chi_q, \chi_c, \xi_q, \xi_c` as defined by Schoenholz et al. (2017).

    See the module docstring for the formulas. ``activation`` is a
    :class:`~ntkcourse.dual.DualActivation` or a ``stax`` activation layer
    (``stax.Erf()``, ``stax.ElementwiseNumerical(jnp.tanh, deg=50)``, ...).
    With :math:`q^* = 0` (no bias, ordered) the correlation is taken as 1 and
    :math:`\chi_c = \chi_1`.

    Example (ReLU with a bias: :math:`\chi_1 = \sigma_w^2/2`, :math:`\xi_c = -1/\log(\sigma_w^2/2)`):
      >>> from ntkcourse import dual, signal_propagation as sp
      >>> s = sp.depth_scales(dual.relu(), 1.0, 0.1)
      >>> round(s.q_star, 6), round(s.chi_1, 6), round(s.xi_c, 4), s.phase
      (0.2, 0.5, 1.4427, 'ordered')
    """
    where = "depth_scales"
    act = _dual_of(activation, where)
    sigma_w2, sigma_b2 = _variances(where, sigma_w2, sigma_b2)
    q_star = variance_fixed_point(act, sigma_w2, sigma_b2, q0=q0)
    c_star = correlation_fixed_point(act, sigma_w2, sigma_b2, q_star)
    with jax.enable_x64(True):
        chi_1 = float(_compiled(act)["chi_1"](*_f64(sigma_w2, q_star)))
        chi_c = chi_1 if c_star == 1.0 else float(_compiled(act)["chi_c"](*_f64(sigma_w2, q_star, c_star)))
    chi_q = _slope_of_variance_map(act, sigma_w2, q_star)
    phase = "ordered" if chi_1 < 1 - 1e-12 else ("chaotic" if chi_1 > 1 + 1e-12 else "critical")
    return SignalPropagation(q_star, c_star, chi_1, chi_q, chi_c, _xi(chi_q), _xi(chi_c), phase)


def trainable_depth(activation, sigma_w2: float, sigma_b2: float, *, factor: float = 6.0) -> float:
    r"""The depth up to which Schoenholz et al. (2017) find networks trainable: ``factor`` × :math:`\xi_c`.

    This is an empirical rule from their experiments (MNIST and CIFAR-10,
    SGD and RMSProp), not a theorem: ``factor=6`` fits the edge of their
    trainable region; the mechanism (correlations, hence gradients, decay
    like :math:`e^{-\ell/\xi_c}`) gives the scale, not the constant.
    """
    factor = validation.nonnegative("trainable_depth", "factor", factor)
    return factor * depth_scales(activation, sigma_w2, sigma_b2).xi_c


def order_to_chaos_boundary(activation, sigma_b2: float, bracket=(0.5, 4.0)) -> float:
    r"""The weight variance :math:`\sigma_w^2` where :math:`\chi_1 = 1` at bias variance ``sigma_b2``.

    Brent's method on :math:`\chi_1(\sigma_w^2) - 1` inside ``bracket``,
    which must contain one crossing (``ValueError`` otherwise).
    """
    where = "order_to_chaos_boundary"
    act = _dual_of(activation, where)
    sigma_b2 = validation.nonnegative(where, "sigma_b2", sigma_b2)
    lo, hi = (validation.nonnegative(where, "bracket", v) for v in bracket)

    def excess(sw2):
        q_star = variance_fixed_point(act, sw2, sigma_b2)
        with jax.enable_x64(True):
            return float(_compiled(act)["chi_1"](*_f64(sw2, q_star))) - 1.0

    f_lo, f_hi = excess(lo), excess(hi)
    if f_lo * f_hi > 0:
        raise validation.fail(
            where, "bracket", f"an interval where chi_1 - 1 changes sign (it is {f_lo:.3g} and {f_hi:.3g} at its ends)",
            bracket,
        )
    return float(brentq(excess, lo, hi, xtol=1e-12))


def mean_field_iterates(activation, sigma_w2: float, sigma_b2: float, q1: float, q2: float, q12: float, depth: int):
    r"""The infinite-width variances and correlation of two inputs after each of ``depth`` layers.

    Starts from the first layer's covariance ``(q1, q2, q12)`` (layer 1) and
    applies :math:`q \mapsto V(q)` to each variance and
    :math:`q_{12} \mapsto \sigma_w^2 E[\phi(u)\phi(v)] + \sigma_b^2`.

    Returns:
      ``(q1, q2, c)``: float64 arrays of length ``depth`` (layers 1..depth),
      ``c = q12 / sqrt(q1 q2)``.
    """
    where = "mean_field_iterates"
    act = _dual_of(activation, where)
    sigma_w2, sigma_b2 = _variances(where, sigma_w2, sigma_b2)
    depth = validation.positive_int(where, "depth", depth)
    a, b = validation.nonnegative(where, "q1", q1), validation.nonnegative(where, "q2", q2)
    c = validation.finite_real(where, "q12", q12)
    if c * c > a * b:
        raise validation.fail(where, "q12", f"a covariance with q12^2 <= q1 q2 = {a * b}", q12)
    out = np.empty((3, depth))
    maps = _compiled(act)
    with jax.enable_x64(True):
        for layer in range(depth):
            out[:, layer] = a, b, c / math.sqrt(a * b)
            a, b, c = (
                float(maps["v"](*_f64(sigma_w2, sigma_b2, a))),
                float(maps["v"](*_f64(sigma_w2, sigma_b2, b))),
                float(maps["cov"](*_f64(sigma_w2, sigma_b2, a, b, c))),
            )
    return out[0], out[1], out[2]


def random_network_statistics(fn, sigma_w2: float, sigma_b2: float, x, depth: int, width: int,
                              n_networks: int, seed: int = 0):
    r"""Monte Carlo of the same quantities in finite random networks.

    For each of ``n_networks`` networks of ``depth`` layers of ``width``
    units (weights :math:`\mathcal N(0, \sigma_w^2/\text{fan-in})`, biases
    :math:`\mathcal N(0, \sigma_b^2)`, activation ``fn`` between layers),
    records at each layer the empirical second moments
    :math:`\frac1N\sum_i h_i(x_1)^2`, :math:`\frac1N\sum_i h_i(x_2)^2` and
    the empirical correlation of the two rows of ``x`` (shape ``(2, d)``),
    and :math:`\chi_1` measured as the growth of a random perturbation
    pushed forward by the network's Jacobian,
    :math:`\|J^{(\ell)} u\|^2 / \|J^{(\ell-1)} u\|^2` at :math:`x_1`
    (Schoenholz et al. 2017, sec. 3: its mean is :math:`\chi_1` at the fixed point).

    Returns:
      float64 arrays ``(q1, q2, c, growth)`` of shape ``(n_networks, depth)``.
    """
    where = "random_network_statistics"
    validation.callable_arg(where, "fn", fn)
    sigma_w2, sigma_b2 = _variances(where, sigma_w2, sigma_b2)
    depth, width, n_networks = (validation.positive_int(where, k, v) for k, v in
                                (("depth", depth), ("width", width), ("n_networks", n_networks)))
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != 2:
        raise validation.fail(where, "x", "an array of shape (2, d): the two inputs", x.shape)
    sw, sb = math.sqrt(sigma_w2), math.sqrt(sigma_b2)

    def one_network(key):
        key, k_w, k_b, k_u = jax.random.split(key, 4)
        d = x.shape[1]
        h = x @ (sw * jax.random.normal(k_w, (d, width)) / math.sqrt(d)) + sb * jax.random.normal(k_b, (width,))
        tangent = jax.random.normal(k_u, (width,))

        def layer(carry, k):
            h, t = carry
            k_w, k_b = jax.random.split(k)
            w = sw * jax.random.normal(k_w, (width, width)) / math.sqrt(width)
            b = sb * jax.random.normal(k_b, (width,))
            a, da = jax.jvp(fn, (h[0],), (t,))
            h_new = jnp.stack([a, fn(h[1])]) @ w + b
            t_new = da @ w
            stats = jnp.stack([jnp.mean(h[0] ** 2), jnp.mean(h[1] ** 2),
                               jnp.sum(h[0] * h[1]) / jnp.sqrt(jnp.sum(h[0] ** 2) * jnp.sum(h[1] ** 2)),
                               jnp.sum(t_new ** 2) / jnp.sum(t ** 2)])
            return (h_new, t_new), stats

        _, stats = jax.lax.scan(layer, (h, tangent), jax.random.split(key, depth))
        return stats.T

    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.PRNGKey(seed), n_networks)
        stats = np.asarray(jax.jit(jax.vmap(one_network))(keys))
    return stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]
