"""Learning-rate transfer at small size (Tensor Programs V, Figure 1, on CPU): MLPs with two hidden layers on 512
scikit-learn digits, 100 SGD steps on mini-batches of 128, learning rates 2^-15 … 2^-11, widths 64 and 256,
2 seeds. The full sweep (widths 64 … 1024, more rates and steps) is ``benchmarks/bench_mup.py``.

Claims: under μP the best learning rate is the same grid point at both widths (within one step), and the wider
network is better there; under SP the largest stable learning rate moves down as the width grows (the SP NTK
grows like the width, so gradient descent's stability bound shrinks like 1/width) and so does the best one, by at
least two grid steps from width 64 to 256 (theory: two, a factor 4).
"""
import functools

import numpy as np
import pytest

from ntkcourse.data import load_digits, one_hot
from ntkcourse.mup import learning_rate_sweep, mlp

pytestmark = pytest.mark.slow  # 40 training runs of 100 steps

WIDTHS = (64, 256)
LRS = 2.0 ** np.arange(-15, -10)


@functools.lru_cache(maxsize=None)
def sweep(name):
    d = load_digits(flat=True)
    idx = np.random.default_rng(0).permutation(len(d.labels))
    tr, te = idx[:512], idx[-400:]
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    # Zero readout for both: at the base width 64, SP and μP are then the same network.
    make = lambda w: mlp(64, w, 10, depth=2, parameterization=name, base_width=64, out_std=0.0)  # noqa: E731
    return learning_rate_sweep(make, WIDTHS, LRS, f32(d.images[tr]), f32(one_hot(d.labels[tr])),
                               f32(d.images[te]), f32(one_hot(d.labels[te])), steps=100, batch_size=128, seeds=2)


def test_mup_best_learning_rate_transfers_across_widths():
    sw = sweep("mup")
    assert abs(sw.drift()) <= 1, np.log2(sw.learning_rates[sw.best_indices()])


def test_mup_wider_network_is_better_at_the_transferred_rate():
    sw = sweep("mup")
    j = sw.best_indices()[0]
    loss = sw.train_loss.mean(axis=2)[:, j]
    assert loss[1] < loss[0], loss


def test_sp_largest_stable_learning_rate_moves_down_with_width():
    sw = sweep("sp")
    stable = np.isfinite(sw.train_loss).all(axis=2)  # (W, R): every seed finished with a finite loss
    largest = [np.max(np.nonzero(row)[0]) for row in stable]
    assert largest[1] < largest[0], (largest, np.log2(sw.learning_rates))


def test_sp_best_learning_rate_drifts_by_at_least_two_grid_steps():
    sw = sweep("sp")
    assert sw.drift() <= -2, np.log2(sw.learning_rates[sw.best_indices()])
