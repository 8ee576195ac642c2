"""Train/test splits by an explicit seed."""
from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .. import validation

__all__ = ["Split", "split_indices"]


class Split(NamedTuple):
    """Indices of the training and test inputs (disjoint, together all inputs)."""

    train: np.ndarray
    test: np.ndarray


def split_indices(n: int, test_size, seed: int) -> Split:
    """A random split of ``range(n)``: ``test_size`` inputs (an int) or that
    fraction of them (a float in (0, 1)) for testing, by
    ``numpy.random.default_rng(seed)``; both index arrays sorted.

    Example:
      >>> s = split_indices(10, 0.3, seed=0)
      >>> len(s.train), len(s.test)
      (7, 3)
    """
    n = validation.positive_int("split_indices", "n", n)
    if isinstance(test_size, numbers.Integral) and not isinstance(test_size, bool):
        n_test = int(test_size)
    elif isinstance(test_size, numbers.Real) and 0 < test_size < 1:
        n_test = int(round(test_size * n))
    else:
        raise validation.fail("split_indices", "test_size", "an integer count or a fraction in (0, 1)", test_size)
    if not 1 <= n_test <= n - 1:
        raise validation.fail("split_indices", "test_size", f"between 1 and {n - 1} inputs", test_size)
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise validation.fail("split_indices", "seed", "an integer", seed)
    perm = np.random.default_rng(int(seed)).permutation(n)
    return Split(np.sort(perm[n_test:]), np.sort(perm[:n_test]))
