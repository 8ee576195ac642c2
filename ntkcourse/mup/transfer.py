r"""Learning-rate transfer across widths (Tensor Programs V, Figure 1): train at several widths over a grid of
learning rates and compare where the loss is lowest.

Under μP the best learning rate is (nearly) the same at every width, so it can be tuned on a small network and
used on a large one; under SP with SGD it drifts down as the width grows (the largest stable rate scales like
1/width, Tensor Programs IV, Table 1). A run that diverges (non-finite loss) counts as infinitely bad.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import numpy as np

from ..training import train_network
from ..validation import positive_int
from .optax_scaling import scaled_optimizer

__all__ = ["LearningRateSweep", "learning_rate_sweep"]


class LearningRateSweep(NamedTuple):
    """Final losses of a sweep.

    Attributes:
      widths: ``(W,)``; learning_rates: ``(R,)``, increasing.
      train_loss: ``(W, R, S)`` full-batch ``½Σ‖f − y‖² / n`` on the training set after the last step (inf if the
        run diverged), per width, learning rate and seed.
      test_loss: ``(W, R, S)`` the same on the test set.
      curves: ``(W, R, S, C)`` training loss per point at the checkpoints ``steps``.
      steps: ``(C,)`` checkpoint step numbers.
    """

    widths: np.ndarray
    learning_rates: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    curves: np.ndarray
    steps: np.ndarray

    def best_indices(self, which: str = "train") -> np.ndarray:
        """Per width, the index into ``learning_rates`` of the lowest seed-averaged ``which`` loss."""
        if which not in ("train", "test"):
            raise ValueError(f"LearningRateSweep.best_indices: `which` must be 'train' or 'test', got {which!r}.")
        loss = getattr(self, f"{which}_loss").mean(axis=2)
        return np.argmin(np.where(np.isfinite(loss), loss, np.inf), axis=1)

    def drift(self, which: str = "train") -> int:
        """Grid steps between the best learning rates at the smallest and the largest width (signed)."""
        best = self.best_indices(which)
        return int(best[-1] - best[0])


def _per_point_loss(outputs, y):
    loss = 0.5 * np.sum((np.asarray(outputs, np.float64) - y) ** 2, axis=-1).mean(axis=-1)
    return np.where(np.isfinite(loss), loss, np.inf)


def learning_rate_sweep(
    make_network: Callable[[int], object],
    widths: Sequence[int],
    learning_rates: Sequence[float],
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    steps: int,
    batch_size: int | None = None,
    optimizer: str = "sgd",
    seeds: int = 2,
    checkpoints: int = 11,
) -> LearningRateSweep:
    """Train ``make_network(width)`` with ``ntkcourse.training.train_network`` and the optimiser its
    parameterisation prescribes, at every width × learning rate × seed (seed s: initialisation key s, mini-batch
    key 1000 + s), and record the final and intermediate losses.
    """
    where = "learning_rate_sweep"
    widths = np.asarray([positive_int(where, "widths", int(w)) for w in widths])
    lrs = np.asarray(learning_rates, dtype=np.float64)
    if lrs.ndim != 1 or lrs.size < 2 or not np.all(np.diff(lrs) > 0) or not np.all(lrs > 0):
        raise ValueError(f"{where}: `learning_rates` must be an increasing 1-D grid of >= 2 positive numbers, "
                         f"got {learning_rates!r}.")
    seeds = positive_int(where, "seeds", seeds)
    steps = positive_int(where, "steps", steps)
    marks = np.unique(np.linspace(0, steps, positive_int(where, "checkpoints", checkpoints)).round().astype(int))
    y_train = np.asarray(y_train, np.float64)
    y_test = np.asarray(y_test, np.float64)
    train = np.zeros((widths.size, lrs.size, seeds))
    test = np.zeros_like(train)
    curves = np.zeros((widths.size, lrs.size, seeds, marks.size))
    for i, w in enumerate(widths):
        net = make_network(int(w))
        for j, lr in enumerate(lrs):
            # One optimiser per (width, rate), reused over seeds: the jitted step compiles once for them.
            opt = scaled_optimizer(net, optimizer, float(lr))
            for s in range(seeds):
                params = net.init_fn(jax.random.PRNGKey(s))
                with np.errstate(over="ignore", invalid="ignore"):
                    run = train_network(net.apply_fn, params, x_train, y_train, steps=steps, optimizer=opt,
                                        x_test=x_test, batch_size=batch_size, key=jax.random.PRNGKey(1000 + s),
                                        checkpoints=marks, progress=False)
                    curves[i, j, s] = _per_point_loss(run.train_outputs, y_train)
                    train[i, j, s] = curves[i, j, s, -1]
                    test[i, j, s] = _per_point_loss(run.test_outputs[-1:], y_test)[0]
    return LearningRateSweep(widths, lrs, train, test, curves, marks)
