"""Small UCI data sets that ship inside scikit-learn: iris, wine, breast cancer.

Features are standardised with the mean and standard deviation of the
training inputs only (no information from the test inputs leaks in); labels
are integers. Layout ``(n, features)``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import validation
from .splits import split_indices

__all__ = ["UCI_SETS", "TabularSplit", "load_uci"]

UCI_SETS = ("iris", "wine", "breast_cancer")


class TabularSplit(NamedTuple):
    """Standardised features and integer labels of one train/test split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_uci(name: str, test_size=0.25, seed: int = 0) -> TabularSplit:
    """One of :data:`UCI_SETS`, split by ``seed`` (see
    :func:`ntkcourse.data.split_indices`), features standardised on the
    training split.

    Example:
      >>> s = load_uci("iris", test_size=30, seed=0)
      >>> s.x_train.shape, s.x_test.shape
      ((120, 4), (30, 4))
    """
    validation.one_of("load_uci", "name", name, UCI_SETS)
    from sklearn import datasets

    raw = getattr(datasets, f"load_{name}")()
    x, y = raw.data.astype(np.float64), raw.target.astype(np.int64)
    split = split_indices(len(y), test_size, seed)
    mean = x[split.train].mean(axis=0)
    std = x[split.train].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    z = (x - mean) / std
    return TabularSplit(z[split.train], y[split.train], z[split.test], y[split.test])
