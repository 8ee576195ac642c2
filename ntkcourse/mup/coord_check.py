r"""The coordinate check (Tensor Programs V, §D.1; microsoft/mup's ``get_coord_data``): for each layer, the typical
size of its coordinates at initialisation and of their change after a few steps of training, against width.

For layer output :math:`h^{(n)}_t \in \mathbb R^{B \times n}` (a batch of B inputs at width n after t steps) the
two curves are :math:`\overline{|h_0|}` and :math:`\overline{|h_t - h_0|}`, the mean absolute value of a coordinate.
Under μP every curve is flat in width (Θ(1) features that move by Θ(1)); under SP with a width-independent learning
rate the output's change grows with width; under the NTK parameterisation the hidden features' change shrinks like
:math:`n^{-1/2}` (Tensor Programs IV, Theorem 3.1 and §5). The slopes are fitted on log-log axes, one fit per seed.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence, Tuple

import jax
import numpy as np

from ..fitting import fit_loglog_slope
from ..training import train_network
from ..validation import positive_int
from .optax_scaling import scaled_optimizer

__all__ = ["CoordinateCheck", "coordinate_check", "width_slopes", "train_for"]


def width_slopes(widths, values) -> Tuple[np.ndarray, np.ndarray]:
    """Log-log slope of ``values`` (shape ``(W, S, …)``: widths × seeds × anything) against ``widths``, fitted
    for each seed: the mean slope over seeds and its standard error (std / √S), each of shape ``(…)``.
    """
    values = np.asarray(values, dtype=np.float64)
    widths = np.asarray(widths, dtype=np.float64)
    if values.ndim < 2 or values.shape[0] != widths.size:
        raise ValueError(f"width_slopes: `values` must have shape (W = {widths.size}, seeds, ...), got {values.shape}.")
    flat = values.reshape(values.shape[0], values.shape[1], -1)
    s = np.array([[fit_loglog_slope(widths, flat[:, j, k]) for k in range(flat.shape[2])]
                  for j in range(flat.shape[1])])
    err = s.std(axis=0, ddof=1) / np.sqrt(s.shape[0]) if s.shape[0] > 1 else np.full(s.shape[1], np.nan)
    return s.mean(axis=0).reshape(values.shape[2:]), err.reshape(values.shape[2:])


class CoordinateCheck(NamedTuple):
    """Coordinate sizes against width.

    Attributes:
      widths: ``(W,)``.
      layers: names of the recorded layers (``h1 … hL``, ``output``).
      size: ``(W, S, L)`` mean |coordinate| at initialisation, per width, seed and layer.
      change: ``(W, S, L)`` mean |change of a coordinate| after ``steps`` steps.
      steps: the number of training steps.
    """

    widths: np.ndarray
    layers: Tuple[str, ...]
    size: np.ndarray
    change: np.ndarray
    steps: int

    def slopes(self, which: str = "change") -> Tuple[np.ndarray, np.ndarray]:
        """Per layer, the fitted exponent p in ``which ∝ width^p`` (``'size'`` or ``'change'``) and its standard
        error over seeds.
        """
        if which not in ("size", "change"):
            raise ValueError(f"CoordinateCheck.slopes: `which` must be 'size' or 'change', got {which!r}.")
        return width_slopes(self.widths, getattr(self, which))


def train_for(network, params, x, y, *, steps: int, learning_rate, optimizer: str = "sgd"):
    """``params`` after ``steps`` full-batch steps of ``ntkcourse.training.train_network`` with the optimiser the
    network's parameterisation prescribes (:func:`~ntkcourse.mup.optax_scaling.scaled_optimizer`).
    """
    opt = scaled_optimizer(network, optimizer, learning_rate)
    return train_network(network.apply_fn, params, x, y, steps=steps, optimizer=opt,
                         checkpoints=[0, steps], progress=False).params


def coordinate_check(
    make_network: Callable[[int], object],
    widths: Sequence[int],
    x,
    y,
    *,
    learning_rate: float,
    steps: int = 3,
    optimizer: str = "sgd",
    seeds: int = 3,
) -> CoordinateCheck:
    """Train ``make_network(width)`` (a :class:`~ntkcourse.mup.networks.MupMLP`) for ``steps`` steps from
    ``seeds`` initialisations at each width, on the squared loss of ``ntkcourse.training``, and record each
    layer's coordinate size and change on the training batch ``x``.
    """
    widths = np.asarray([positive_int("coordinate_check", "widths", int(w)) for w in widths])
    seeds = positive_int("coordinate_check", "seeds", seeds)
    steps = positive_int("coordinate_check", "steps", steps)
    change = [[None] * seeds for _ in widths]
    size = [[None] * seeds for _ in widths]
    layers = None
    for i, w in enumerate(widths):
        net = make_network(int(w))
        features = jax.jit(net.features_fn)
        for s in range(seeds):
            p0 = net.init_fn(jax.random.PRNGKey(s))
            pt = train_for(net, p0, x, y, steps=steps, learning_rate=learning_rate, optimizer=optimizer)
            f0, ft = features(p0, x), features(pt, x)
            size[i][s] = [float(np.mean(np.abs(a))) for a in f0]
            change[i][s] = [float(np.mean(np.abs(np.asarray(b) - np.asarray(a)))) for a, b in zip(f0, ft)]
            layers = tuple(f"h{k + 1}" for k in range(len(f0) - 1)) + ("output",)
    return CoordinateCheck(widths, layers, np.asarray(size), np.asarray(change), steps)
