"""Cheap approximations of infinite-width kernels: arc-cosine random features and Nyström.

**Random features for the one-hidden-layer ReLU network** (NTK
parameterisation, the convention of :mod:`ntkcourse.stax` and
neural-tangents):

    ``f(x) = (σ_v/√M) Σᵢ aᵢ relu(uᵢ(x)) + β_v b``,  ``uᵢ(x) = σ_w wᵢ·x/√d + β_w bᵢ``

with ``wᵢ ~ N(0, I_d)``, ``aᵢ, bᵢ, b ~ N(0, 1)``; in stax terms
``serial(Dense(M, W_std=σ_w, b_std=β_w), Relu(), Dense(1, W_std=σ_v, b_std=β_v))``.
The pre-activations ``(u(x), u(x'))`` are jointly Gaussian with covariance
``Σ₁(x, x') = σ_w² x·x'/d + β_w²``. As ``M → ∞`` (Neal 1996; Jacot et al.
2018; Cho & Saul 2009 for the arc-cosine closed forms):

    ``NNGP(x, x') = σ_v² E[relu(u) relu(u')] + β_v²``
    ``NTK(x, x')  = NNGP(x, x') + σ_v² Σ₁(x, x') E[relu'(u) relu'(u')]``

The first term of the NTK comes from the read-out weights ``a`` and bias
``b``, the second from ``w`` and the hidden bias (``∂f/∂wᵢ = (σ_v/√M) aᵢ
relu'(uᵢ) σ_w x/√d``, ``E[aᵢ²] = 1``). Monte Carlo over ``M`` draws of
``(wᵢ, bᵢ)`` gives unbiased estimates with explicit feature maps:

    ``φ(x)  = [σ_v/√M · relu(uᵢ(x))]ᵢ ⊕ [β_v]``                              (order-1 arc-cosine features)
    ``ψ(x)  = [σ_v/√M · relu'(uᵢ(x)) · (σ_w x/√d, β_w)]ᵢ``                   (order-0 arc-cosine features ⊗ input)
    ``NNGP ≈ φ(x)·φ(x')``,  ``NTK ≈ φ(x)·φ(x') + ψ(x)·ψ(x')``

Their relative error decreases like ``1/√M``. (``ψ·ψ'`` is computed as
``Σ₁ ⊙ (s sᵀ)`` with ``sᵢ = σ_v relu'(uᵢ)/√M``, never forming ``ψ``, unless
the features themselves are asked for.)

**Nyström** (Williams & Seeger 2001): with landmarks ``L``,
``K ≈ K_XL K_LL⁺ K_LX``; the residual ``K − K̃`` is PSD and shrinks (in the
PSD order) as landmarks are added, and is 0 when every point is a landmark.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import validation
from .spectral import as_kernel_matrix, eigendecomposition_of_valid

__all__ = [
    "relu_random_features",
    "RandomFeatureKernels",
    "relu_random_feature_kernels",
    "select_landmarks",
    "nystrom_kernel",
    "nystrom_features",
    "relative_error",
    "ApproximationErrors",
    "random_feature_errors",
    "nystrom_errors",
]


def _rng(where, seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    raise validation.fail(where, "seed", "an int or a numpy.random.Generator", seed)


def _inputs(where, x, name):
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{where}: `{name}` must be a 2-D array (n_points, d) with n_points, d ≥ 1, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{where}: `{name}` must hold finite inputs, got NaN or inf.")
    return arr


def _whole(where, name, value, low=1, high=None, high_name=None):
    """A whole number in [low, high] (floats such as 5.0 accepted, as before), as an int;
    ``high_name`` names the argument that sets ``high``.
    """
    try:
        m = int(value)
    except (TypeError, ValueError):
        m = None
    if m is None or m != value or m < low or (high is not None and m > high):
        bound = high if high_name is None else f"{high_name} = {high}"
        expected = "a positive integer" if high is None else f"an integer in [{low}, {bound}]"
        raise validation.fail(where, name, expected, value)
    return m


def _n_features(where, n_features):
    m = _whole(where, "n_features", n_features)
    return m


def _std(where, value, name):
    return 0.0 if value is None else validation.nonnegative(where, name, value)


def _draw(d, m, rng):
    """Hidden weights (d, M) and biases (M,) ~ N(0, 1): one draw shared by every input."""
    return rng.standard_normal((d, m)), rng.standard_normal(m)


def _preactivations(x, w, b, W_std, b_std):
    return W_std * (x @ w) / np.sqrt(x.shape[1]) + b_std * b[None, :]


def relu_random_features(
    x,
    n_features: int,
    *,
    kernel: str = "nngp",
    W_std: float = 1.0,
    b_std: float | None = None,
    W_std_out: float = 1.0,
    b_std_out: float | None = None,
    seed=0,
) -> np.ndarray:
    """Explicit random feature map whose Gram matrix estimates the ReLU NNGP or NTK.

    Feature maps of the module docstring: ``kernel="nngp"`` returns
    ``φ(x)`` (``M`` columns, plus one constant column ``β_v`` if
    ``b_std_out``); ``kernel="ntk"`` returns ``φ(x) ⊕ ψ(x)`` with ``ψ`` of
    ``M·(d + 1)`` columns (``M·d`` without hidden bias). ``E[F Fᵀ]`` is the
    exact kernel of ``serial(Dense(M, W_std, b_std), Relu(), Dense(1, W_std_out, b_std_out))``
    in the NTK parameterisation. Call with the same ``seed`` for every batch of
    inputs so that they share the random weights.
    """
    x = _inputs("relu_random_features", x, "x")
    m = _n_features("relu_random_features", n_features)
    kernel = validation.one_of("relu_random_features", "kernel", kernel, ("nngp", "ntk"))
    sw = validation.nonnegative("relu_random_features", "W_std", W_std)
    sb = _std("relu_random_features", b_std, "b_std")
    sv = validation.nonnegative("relu_random_features", "W_std_out", W_std_out)
    sbo = _std("relu_random_features", b_std_out, "b_std_out")
    w, b = _draw(x.shape[1], m, _rng("relu_random_features", seed))
    u = _preactivations(x, w, b, sw, sb)
    cols = [sv / np.sqrt(m) * np.maximum(u, 0.0)]
    if sbo > 0:
        cols.append(np.full((x.shape[0], 1), sbo))
    if kernel == "ntk":
        step = sv / np.sqrt(m) * (u > 0)
        inp = sw * x / np.sqrt(x.shape[1])
        if sb > 0:
            inp = np.concatenate([inp, np.full((x.shape[0], 1), sb)], axis=1)
        cols.append((step[:, :, None] * inp[:, None, :]).reshape(x.shape[0], -1))
    return np.concatenate(cols, axis=1)


class RandomFeatureKernels(NamedTuple):
    """Random-feature estimates of the NNGP and NTK, each (n1, n2)."""

    nngp: np.ndarray
    ntk: np.ndarray


def relu_random_feature_kernels(
    x1,
    x2=None,
    *,
    n_features: int,
    W_std: float = 1.0,
    b_std: float | None = None,
    W_std_out: float = 1.0,
    b_std_out: float | None = None,
    seed=0,
) -> RandomFeatureKernels:
    """Monte Carlo estimates of the one-hidden-layer ReLU NNGP and NTK from ``M`` random features.

    ``NNGP ≈ (σ_v²/M) Σᵢ relu(uᵢ(x)) relu(uᵢ(x')) + β_v²`` and
    ``NTK ≈ NNGP + Σ₁(x, x') (σ_v²/M) Σᵢ relu'(uᵢ(x)) relu'(uᵢ(x'))`` with
    ``Σ₁ = σ_w² x·x'/d + β_w²`` (module docstring; Cho & Saul 2009; Jacot et
    al. 2018). Unbiased; relative error ``O(1/√M)``. ``x2=None`` means ``x1``.
    """
    where = "relu_random_feature_kernels"
    a = _inputs(where, x1, "x1")
    b2 = a if x2 is None else _inputs(where, x2, "x2")
    if b2.shape[1] != a.shape[1]:
        raise ValueError(f"{where}: `x2` must have the feature dimension of x1, {a.shape[1]}, got {b2.shape[1]}.")
    m = _n_features(where, n_features)
    sw = validation.nonnegative("relu_random_feature_kernels", "W_std", W_std)
    sb = _std("relu_random_feature_kernels", b_std, "b_std")
    sv = validation.nonnegative("relu_random_feature_kernels", "W_std_out", W_std_out)
    sbo = _std("relu_random_feature_kernels", b_std_out, "b_std_out")
    w, b = _draw(a.shape[1], m, _rng(where, seed))
    u1, u2 = _preactivations(a, w, b, sw, sb), _preactivations(b2, w, b, sw, sb)
    scale = sv**2 / m
    nngp = scale * (np.maximum(u1, 0.0) @ np.maximum(u2, 0.0).T) + sbo**2
    sigma1 = sw**2 * (a @ b2.T) / a.shape[1] + sb**2
    dot = scale * ((u1 > 0).astype(np.float64) @ (u2 > 0).astype(np.float64).T)
    return RandomFeatureKernels(nngp, nngp + sigma1 * dot)


def select_landmarks(n_points: int, n_landmarks: int, seed=0) -> np.ndarray:
    """Indices of ``n_landmarks`` landmarks drawn uniformly without replacement.

    The first ``m`` entries of one random permutation (numpy
    ``default_rng(seed)``): with the same seed, smaller sets are nested in
    larger ones, which makes the Nyström error non-increasing in ``m``.
    """
    n = _whole("select_landmarks", "n_points", n_points)
    m = _whole("select_landmarks", "n_landmarks", n_landmarks, high=n, high_name="n_points")
    return _rng("select_landmarks", seed).permutation(n)[:m]


def _landmark_factor(where, k_landmarks_landmarks):
    """``V_r Λ_r^{-1/2}`` on the numerically non-null eigenspace of ``K_LL`` (pseudo-inverse square root)."""
    k, eps = as_kernel_matrix(k_landmarks_landmarks, "k_landmarks_landmarks", where)
    eig = eigendecomposition_of_valid(k, eps, "k_landmarks_landmarks", where)
    keep = eig.eigenvalues > 0
    return eig.eigenvectors[:, keep] / np.sqrt(eig.eigenvalues[keep])[None, :]


def _cross(where, k_x_landmarks, n_landmarks, name):
    k = np.asarray(k_x_landmarks, dtype=np.float64)
    if k.ndim != 2 or k.shape[1] != n_landmarks:
        raise ValueError(
            f"{where}: `{name}` must have shape (n, {n_landmarks}) (one column per landmark), got shape {k.shape}.")
    if not np.all(np.isfinite(k)):
        raise ValueError(f"{where}: `{name}` must be a finite kernel matrix, got NaN or inf.")
    return k


def nystrom_features(k_x_landmarks, k_landmarks_landmarks) -> np.ndarray:
    """Nyström feature map ``F = K_XL V_r Λ_r^{-1/2}``, so that ``F Fᵀ = K_XL K_LL⁺ K_LX``.

    ``K_LL = V Λ Vᵀ`` restricted to its eigenvalues above the clipping
    tolerance of :mod:`ntkcourse.spectral` (the pseudo-inverse, stable when
    landmarks are nearly duplicated). Williams & Seeger 2001.
    Returns (n, r) with ``r`` the numerical rank of ``K_LL``.
    """
    factor = _landmark_factor("nystrom_features", k_landmarks_landmarks)
    return _cross("nystrom_features", k_x_landmarks, factor.shape[0], "k_x_landmarks") @ factor


def nystrom_kernel(k_x1_landmarks, k_landmarks_landmarks, k_x2_landmarks=None) -> np.ndarray:
    """Nyström approximation ``K̃(X₁, X₂) = K_{X₁L} K_LL⁺ K_{LX₂}`` (Williams & Seeger 2001).

    ``k_x2_landmarks=None`` means ``X₂ = X₁``. Pseudo-inverse as in
    :func:`nystrom_features`.
    """
    factor = _landmark_factor("nystrom_kernel", k_landmarks_landmarks)
    f1 = _cross("nystrom_kernel", k_x1_landmarks, factor.shape[0], "k_x1_landmarks") @ factor
    f2 = f1 if k_x2_landmarks is None else (
        _cross("nystrom_kernel", k_x2_landmarks, factor.shape[0], "k_x2_landmarks") @ factor)
    return f1 @ f2.T


def relative_error(approx, exact) -> float:
    """Relative Frobenius error ``‖K̃ − K‖_F / ‖K‖_F``."""
    a, e = np.asarray(approx, dtype=np.float64), np.asarray(exact, dtype=np.float64)
    if a.shape != e.shape:
        raise ValueError(f"relative_error: `approx` must have the shape of exact, {e.shape}, got shape {a.shape}.")
    norm = np.linalg.norm(e)
    if norm == 0:
        raise ValueError("relative_error: `exact` must be non-zero (the relative error is undefined), got the zero "
                         "matrix.")
    return float(np.linalg.norm(a - e) / norm)


class ApproximationErrors(NamedTuple):
    """Relative Frobenius errors: ``sizes`` (S,) and ``errors`` per kernel, each (S, n_seeds)."""

    sizes: np.ndarray
    errors: dict


def random_feature_errors(
    x,
    exact_nngp,
    exact_ntk,
    n_features,
    *,
    n_seeds: int = 3,
    seed: int = 0,
    W_std: float = 1.0,
    b_std: float | None = None,
    W_std_out: float = 1.0,
    b_std_out: float | None = None,
) -> ApproximationErrors:
    """Relative error of :func:`relu_random_feature_kernels` against the exact kernels, per number of features.

    For each ``M`` in ``n_features`` and each of ``n_seeds`` independent draws
    (seeds ``seed, seed+1, …``), ``‖K̃_M − K‖_F / ‖K‖_F`` for the NNGP and the
    NTK; expected to fall like ``M^{-1/2}``. ``exact_nngp``/``exact_ntk`` are the
    (n, n) kernels on ``x`` (e.g. from ``stax``'s ``kernel_fn``), with the same
    ``W_std``… arguments.
    """
    x = _inputs("random_feature_errors", x, "x")
    sizes = np.array([_n_features("random_feature_errors", m) for m in np.atleast_1d(n_features)])
    ns = _whole("random_feature_errors", "n_seeds", n_seeds)
    errs = {"nngp": np.empty((sizes.size, ns)), "ntk": np.empty((sizes.size, ns))}
    for i, m in enumerate(sizes):
        for j in range(ns):
            approx = relu_random_feature_kernels(
                x, n_features=int(m), W_std=W_std, b_std=b_std, W_std_out=W_std_out, b_std_out=b_std_out,
                seed=seed + j,
            )
            errs["nngp"][i, j] = relative_error(approx.nngp, exact_nngp)
            errs["ntk"][i, j] = relative_error(approx.ntk, exact_ntk)
    return ApproximationErrors(sizes, errs)


def nystrom_errors(kernel, n_landmarks, *, n_seeds: int = 3, seed: int = 0) -> ApproximationErrors:
    """Relative Frobenius error of the Nyström approximation of ``kernel`` (n, n) per number of landmarks.

    Landmarks from :func:`select_landmarks` (nested within one seed); the
    error is ``‖K_XL K_LL⁺ K_LX − K‖_F / ‖K‖_F``. Returns
    ``errors["kernel"]`` of shape (len(n_landmarks), n_seeds).
    """
    k, _ = as_kernel_matrix(kernel, "kernel", "nystrom_errors")
    sizes = np.array([int(m) for m in np.atleast_1d(n_landmarks)])
    ns = _whole("nystrom_errors", "n_seeds", n_seeds)
    errs = np.empty((sizes.size, ns))
    for j in range(ns):
        order = select_landmarks(k.shape[0], k.shape[0], seed=seed + j)
        for i, m in enumerate(sizes):
            if not 1 <= m <= k.shape[0]:
                raise validation.fail("nystrom_errors", "n_landmarks", f"integers in [1, {k.shape[0]}]", m)
            idx = order[:m]
            errs[i, j] = relative_error(nystrom_kernel(k[:, idx], k[np.ix_(idx, idx)]), k)
    return ApproximationErrors(sizes, {"kernel": errs})
