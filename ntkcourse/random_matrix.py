r"""The Marchenko–Pastur law, and the spectra of random-feature Gram matrices.

For :math:`Z \in \mathbb R^{n \times m}` with independent entries of mean 0
and variance :math:`\sigma^2`, the eigenvalues of :math:`\frac1m Z Z^\top`
have, as :math:`n, m \to \infty` with :math:`n/m \to \gamma`, the
Marchenko–Pastur distribution (Marchenko & Pastur 1967)

.. math::

    p(\lambda) = \frac{\sqrt{(\lambda_+ - \lambda)(\lambda - \lambda_-)}}{2\pi\sigma^2\gamma\lambda}
    \quad\text{on } [\lambda_-, \lambda_+],\qquad
    \lambda_\pm = \sigma^2 (1 \pm \sqrt\gamma)^2,

plus an atom of mass :math:`1 - 1/\gamma` at 0 when :math:`\gamma > 1` (the
matrix then has rank :math:`m < n`).

Random features :math:`F_{ij} = f(w_j \cdot x_i / \sqrt d)` of Gaussian data
are not independent entries, yet Pennington & Worah (2017, "Nonlinear random
matrix theory for deep learning") show that when :math:`f` is centred with
:math:`\mathbb E[f'(z)] = 0` (:math:`z \sim \mathcal N(0, 1)`; their
:math:`\zeta = 0`) the Gram matrix :math:`\frac1m F F^\top` has the same limit
as if its entries were independent: Marchenko–Pastur with
:math:`\sigma^2 = \mathbb E[f(z)^2]` and :math:`\gamma = n/m`, whatever
:math:`d/m`. With :math:`\mathbb E[f'] \neq 0` (ReLU, tanh, erf) the linear
part of :math:`f` adds structure and the law is different.
:func:`random_feature_gram_eigenvalues` draws such a matrix;
:func:`ks_distance` measures how far a set of eigenvalues is from the law.

For a deep network and a *fixed* set of inputs, :func:`conjugate_kernel_spectra`
compares the spectrum of the empirical conjugate kernel (the Gram matrix of
the last hidden layer of random networks of growing width) with that of its
infinite-width limit, the NNGP kernel of the same layer.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import jax
import numpy as np

from . import validation

__all__ = [
    "marchenko_pastur_edges",
    "marchenko_pastur_density",
    "marchenko_pastur_cdf",
    "ks_distance",
    "random_feature_gram_eigenvalues",
    "ConjugateKernelSpectra",
    "conjugate_kernel_spectra",
]


def _ratio_and_variance(where: str, ratio, variance) -> tuple[float, float]:
    ratio = validation.nonnegative(where, "ratio", ratio)
    variance = validation.nonnegative(where, "variance", variance)
    if ratio == 0:
        raise validation.fail(where, "ratio", "n / m > 0 (rows over columns)", ratio)
    if variance == 0:
        raise validation.fail(where, "variance", "the entries' variance > 0", variance)
    return ratio, variance


def marchenko_pastur_edges(ratio: float, variance: float = 1.0) -> tuple[float, float]:
    r"""The edges :math:`\sigma^2(1 \mp \sqrt\gamma)^2` of the continuous part.

    Example:
      >>> from ntkcourse.random_matrix import marchenko_pastur_edges
      >>> marchenko_pastur_edges(0.25)
      (0.25, 2.25)
    """
    ratio, variance = _ratio_and_variance("marchenko_pastur_edges", ratio, variance)
    root = math.sqrt(ratio)
    return variance * (1 - root) ** 2, variance * (1 + root) ** 2


def marchenko_pastur_density(x, ratio: float, variance: float = 1.0) -> np.ndarray:
    r"""The density of the continuous part at ``x`` (zero outside the edges; it has total mass
    :math:`\min(1, 1/\gamma)`, the atom at 0 being left out).
    """
    ratio, variance = _ratio_and_variance("marchenko_pastur_density", ratio, variance)
    lo, hi = marchenko_pastur_edges(ratio, variance)
    x = np.asarray(x, dtype=np.float64)
    inside = (x > lo) & (x < hi)
    xs = np.where(inside, x, 0.5 * (lo + hi))
    dens = np.sqrt(np.maximum((hi - xs) * (xs - lo), 0.0)) / (2 * math.pi * variance * ratio * xs)
    return np.where(inside, dens, 0.0)


def marchenko_pastur_cdf(x, ratio: float, variance: float = 1.0) -> np.ndarray:
    r"""The distribution function :math:`P(\lambda \le x)`, atom at 0 included.

    The continuous part in closed form: with :math:`\lambda = \bar\lambda + r\cos\theta`,
    :math:`\bar\lambda = \sigma^2(1+\gamma)`, :math:`r = 2\sigma^2\sqrt\gamma`, the integral
    of :math:`\sqrt{r^2 - (\lambda - \bar\lambda)^2}/\lambda` is elementary; here it is
    integrated by Gauss–Legendre quadrature in :math:`\theta` (200 nodes, smooth integrand:
    accurate to round-off; tested against the density's numerical integral).
    """
    ratio, variance = _ratio_and_variance("marchenko_pastur_cdf", ratio, variance)
    x = np.asarray(x, dtype=np.float64)
    centre, radius = variance * (1 + ratio), 2 * variance * math.sqrt(ratio)
    nodes, weights = np.polynomial.legendre.leggauss(200)
    # theta runs from pi (lower edge) down to theta(x); the mass between is
    # int sin^2(t) r^2 / (2 pi s2 g (c + r cos t)) dt.
    theta_x = np.arccos(np.clip((x - centre) / radius, -1.0, 1.0))
    half = 0.5 * (math.pi - theta_x)[..., None]
    t = theta_x[..., None] + half * (nodes + 1)
    integrand = np.sin(t) ** 2 * radius**2 / (2 * math.pi * variance * ratio * (centre + radius * np.cos(t)))
    continuous = np.sum(integrand * weights * half, axis=-1)
    atom = max(0.0, 1 - 1 / ratio)
    return np.where(x < 0, 0.0, atom + continuous)


def ks_distance(eigenvalues, ratio: float, variance: float = 1.0) -> float:
    r"""Kolmogorov–Smirnov distance :math:`\sup_x |F_n(x) - F(x)|` between the empirical
    distribution of ``eigenvalues`` and the Marchenko–Pastur law.
    """
    eig = np.sort(np.asarray(eigenvalues, dtype=np.float64).ravel())
    if eig.size == 0 or not np.all(np.isfinite(eig)):
        raise validation.fail("ks_distance", "eigenvalues", "a non-empty array of finite numbers", eigenvalues)
    cdf = marchenko_pastur_cdf(eig, ratio, variance)
    n = eig.size
    return float(max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n)))


def random_feature_gram_eigenvalues(fn, n_points: int, dim: int, n_features: int, seed: int = 0) -> np.ndarray:
    r"""Eigenvalues (ascending) of :math:`\frac1m F F^\top`, :math:`F_{ij} = f(w_j \cdot x_i / \sqrt d)`.

    The weights :math:`w_j` have independent :math:`\mathcal N(0, 1)` entries
    (``n_features`` = m of them); the ``n_points`` data :math:`x_i` are
    uniform on the sphere of radius :math:`\sqrt d` (Gaussian vectors
    rescaled: Pennington & Worah 2017 use Gaussian data, whose varying norms
    add one outlying eigenvalue to the bulk). Float64.
    """
    where = "random_feature_gram_eigenvalues"
    validation.callable_arg(where, "fn", fn)
    n, d, m = (validation.positive_int(where, k, v) for k, v in
               (("n_points", n_points), ("dim", dim), ("n_features", n_features)))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    # On the sphere of radius sqrt(d): then w . x / sqrt(d) is exactly N(0, 1) for every x, and the
    # fluctuations of |x| do not add a common mean to all features (a rank-one outlier).
    x *= math.sqrt(d) / np.linalg.norm(x, axis=1, keepdims=True)
    w = rng.standard_normal((d, m))
    with jax.enable_x64(True):
        feats = np.asarray(fn(x @ w / math.sqrt(d)), dtype=np.float64)
    return np.linalg.eigvalsh(feats @ feats.T / m)


class ConjugateKernelSpectra(NamedTuple):
    """Eigenvalues (descending) of the conjugate kernel: ``limit`` ``(n,)`` and ``empirical`` ``(W, S, n)``
    (widths × seeds); ``errors`` ``(W, S)``: ``‖λ_N − λ_∞‖₂ / ‖λ_∞‖₂`` of the sorted spectra.
    """

    widths: np.ndarray
    limit: np.ndarray
    empirical: np.ndarray
    errors: np.ndarray


def conjugate_kernel_spectra(network_of_width: Callable[[int], tuple], x, widths: Sequence[int],
                             seeds: int = 3) -> ConjugateKernelSpectra:
    r"""Spectrum of the empirical conjugate kernel of random networks against its infinite-width limit.

    ``network_of_width(N)`` returns a stax triple ``(init_fn, apply_fn,
    kernel_fn)`` whose output is the last hidden layer, *after* its
    activation (e.g. ``serial(Dense(N), Relu(), Dense(N), Relu())``), so
    that ``apply_fn`` gives the ``n × N`` features :math:`\Phi` and
    ``kernel_fn(x, None, "nngp")`` their covariance per neuron. The empirical
    conjugate kernel is :math:`\frac1N \Phi\Phi^\top`, a sample covariance of
    ``N`` neurons that are, given the previous layer, independent; as
    :math:`N \to \infty` at fixed ``n`` it converges to the NNGP kernel of
    that layer (Neal 1996; Lee et al. 2018; Matthews et al. 2018), and each
    isolated eigenvalue fluctuates by :math:`O(N^{-1/2})`. The width of the
    layer's own random matrix is what sets the Marchenko–Pastur-like spread
    (ratio ``n/N``) of its bulk (Fan & Wang 2020 for ``n`` proportional to ``N``).
    Float64; the parameters of seed ``s`` are ``init_fn(PRNGKey(s), x.shape)``.
    """
    where = "conjugate_kernel_spectra"
    validation.callable_arg(where, "network_of_width", network_of_width)
    seeds = validation.positive_int(where, "seeds", seeds)
    widths = np.asarray([validation.positive_int(where, "widths", int(w)) for w in widths])
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise validation.fail(where, "x", "inputs of shape (n >= 2, d)", x.shape)
    n = x.shape[0]
    with jax.enable_x64(True):
        limit = np.linalg.eigvalsh(np.asarray(network_of_width(1)[2](x, None, "nngp"), np.float64))[::-1]
        emp = np.empty((widths.size, seeds, n))
        for i, w in enumerate(widths):
            init_fn, apply_fn, _ = network_of_width(int(w))
            for s in range(seeds):
                _, params = init_fn(jax.random.PRNGKey(s), x.shape)
                phi = np.asarray(apply_fn(params, x), np.float64)
                if phi.shape != (n, w):
                    raise ValueError(f"{where}: the network of width {w} must output its last hidden layer, "
                                     f"of shape ({n}, {w}); got {phi.shape}.")
                emp[i, s] = np.linalg.eigvalsh(phi @ phi.T / w)[::-1]
    errors = np.linalg.norm(emp - limit, axis=-1) / np.linalg.norm(limit)
    return ConjugateKernelSpectra(widths, limit, emp, errors)
