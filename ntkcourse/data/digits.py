"""scikit-learn's handwritten digits (8 x 8 images, 1797 of them), offline.

The images ship inside scikit-learn (``sklearn.datasets.load_digits``), so
nothing is downloaded. Preprocessing (fixed): pixel values 0..16 divided by
16, then each image shifted and scaled to zero mean and unit variance over
its 64 pixels, so that the input kernel x . x' / C of every image with itself
is 1 on average over positions. Layout: NHWC ``(n, 8, 8, 1)`` for
convolutional networks, or flattened ``(n, 64)``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import validation


__all__ = ["Digits", "load_digits", "one_hot"]


class Digits(NamedTuple):
    """Images and labels of the digits set.

    Attributes:
      images: float64 ``(n, 8, 8, 1)`` (or ``(n, 64)`` with ``flat=True``).
      labels: int ``(n,)`` in 0..9.
    """

    images: np.ndarray
    labels: np.ndarray


def _standardise(images: np.ndarray) -> np.ndarray:
    x = images / 16.0
    mean = x.mean(axis=1, keepdims=True)
    std = x.std(axis=1, keepdims=True)
    return (x - mean) / np.where(std > 0, std, 1.0)


def load_digits(flat: bool = False) -> Digits:
    """All 1797 digits, preprocessed as the module docstring says.

    Example:
      >>> from ntkcourse.data import load_digits
      >>> d = load_digits()
      >>> d.images.shape, d.labels.shape
      ((1797, 8, 8, 1), (1797,))
    """
    try:
        from sklearn.datasets import load_digits as sk_load
    except ImportError as exc:  # pragma: no cover - a dependency of the data extra
        raise ImportError("ntkcourse.data.load_digits needs scikit-learn: pip install 'ntkcourse[data]'.") from exc
    raw = sk_load()
    x = _standardise(raw.data.astype(np.float64))
    images = x if flat else x.reshape(-1, 8, 8, 1)
    return Digits(images, raw.target.astype(np.int64))


def one_hot(labels, num_classes: int = 10, centred: bool = True) -> np.ndarray:
    """Regression targets from class labels: one-hot, minus ``1 / num_classes``
    when ``centred`` (zero mean over classes, as kernel regression with a
    zero-mean prior expects).
    """
    labels = np.asarray(labels)
    num_classes = validation.positive_int("one_hot", "num_classes", num_classes)
    if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise validation.fail("one_hot", "labels", "a non-empty 1-D array of integers", labels)
    if labels.min() < 0 or labels.max() >= num_classes:
        raise validation.fail("one_hot", "labels", f"integers in [0, {num_classes})", labels)
    y = np.eye(num_classes)[labels]
    return y - 1.0 / num_classes if centred else y
