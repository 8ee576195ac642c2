r"""Feature learning, measured: how much the last hidden representation and the empirical NTK move in training.

For a network trained from :math:`\theta_0` to :math:`\theta_t`, on inputs :math:`X` (a batch of B points),

.. math::
   \Delta_\phi = \frac{\lVert \phi_t(X) - \phi_0(X) \rVert_F}{\lVert \phi_0(X) \rVert_F},\qquad
   \Delta_\Theta = \frac{\lVert \hat\Theta_t(X, X) - \hat\Theta_0(X, X) \rVert_F}{\lVert \hat\Theta_0(X, X) \rVert_F},

with :math:`\phi` the last hidden layer's output (``B × n``) and :math:`\hat\Theta` the empirical NTK of
:func:`ntkcourse.empirical.empirical_ntk_fn` (gradients with respect to the trainable parameters, outputs
averaged). In the kernel regime (NTK parameterisation) both vanish as the width grows — like :math:`n^{-1/2}`
for a fixed number of steps (Lee et al. 2019; Tensor Programs IV, §5); under μP they stay of order one.

The empirical NTK weights every parameter equally. That is the kernel of SGD for the presets whose SGD
learning-rate multipliers are all equal (SP, NTK, μP: ``c = 0``; mean-field: ``c = -1`` for every kind, a common
factor that cancels in :math:`\Delta_\Theta`).
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import numpy as np

from ..empirical import empirical_ntk_fn
from ..validation import positive_int
from .coord_check import train_for, width_slopes

__all__ = ["FeatureChange", "relative_change", "feature_change", "FeatureLearning", "feature_learning_vs_width"]


def relative_change(before, after) -> float:
    """``‖after − before‖_F / ‖before‖_F`` (a ValueError if the shapes differ or ``before`` is zero)."""
    a = np.asarray(before, dtype=np.float64)
    b = np.asarray(after, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(
            f"relative_change: `before` and `after` must have the same shape, got {a.shape} and {b.shape}."
        )
    norm = np.linalg.norm(a)
    if norm == 0:
        raise ValueError("relative_change: `before` must be non-zero (its norm is the denominator), got all zeros.")
    return float(np.linalg.norm(b - a) / norm)


class FeatureChange(NamedTuple):
    """``representation``: Δφ of the last hidden layer; ``ntk``: ΔΘ of the empirical NTK (module docstring)."""

    representation: float
    ntk: float


def feature_change(network, params0, params_t, x) -> FeatureChange:
    """Δφ and ΔΘ between ``params0`` and ``params_t`` of a :class:`~ntkcourse.mup.networks.MupMLP` on ``x``."""
    ntk = empirical_ntk_fn(network.apply_fn)
    phi0 = network.features_fn(params0, x)[-2]
    phit = network.features_fn(params_t, x)[-2]
    return FeatureChange(relative_change(phi0, phit), relative_change(ntk(x, None, params0), ntk(x, None, params_t)))


class FeatureLearning(NamedTuple):
    """Δφ and ΔΘ against width: ``representation`` and ``ntk`` of shape ``(W, S)`` (widths × seeds)."""

    widths: np.ndarray
    representation: np.ndarray
    ntk: np.ndarray
    steps: int

    def slopes(self) -> dict:
        """``{'representation': (slope, stderr), 'ntk': (slope, stderr)}``: fitted exponents of width."""
        return {name: tuple(float(v) for v in width_slopes(self.widths, getattr(self, name)))
                for name in ("representation", "ntk")}


def feature_learning_vs_width(
    make_network: Callable[[int], object],
    widths: Sequence[int],
    x,
    y,
    *,
    learning_rate: float,
    steps: int,
    optimizer: str = "sgd",
    seeds: int = 3,
) -> FeatureLearning:
    """Train ``make_network(width)`` for ``steps`` full-batch steps (``ntkcourse.training``) from ``seeds``
    initialisations per width and measure :func:`feature_change` on the training inputs.
    """
    widths = np.asarray([positive_int("feature_learning_vs_width", "widths", int(w)) for w in widths])
    seeds = positive_int("feature_learning_vs_width", "seeds", seeds)
    steps = positive_int("feature_learning_vs_width", "steps", steps)
    rep = np.zeros((widths.size, seeds))
    ntk = np.zeros((widths.size, seeds))
    for i, w in enumerate(widths):
        net = make_network(int(w))
        for s in range(seeds):
            p0 = net.init_fn(jax.random.PRNGKey(s))
            pt = train_for(net, p0, x, y, steps=steps, learning_rate=learning_rate, optimizer=optimizer)
            rep[i, s], ntk[i, s] = feature_change(net, p0, pt, x)
    return FeatureLearning(widths, rep, ntk, steps)
