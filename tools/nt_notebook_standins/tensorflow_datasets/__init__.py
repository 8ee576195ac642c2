"""Offline stand-in for the part of ``tensorflow_datasets`` that
neural-tangents' notebooks use (``tools/run_nt_notebooks.py`` puts this
folder on the notebook kernel's path; it is not part of the package).

``load('mnist...')`` serves scikit-learn's handwritten digits (1,797 8×8
images, shipped inside scikit-learn) resized to MNIST's 28×28×1 uint8
layout: the first 1,297 as the training split, the last 500 as the test
split. ``load('cifar10')`` serves the same digits as 32×32×3. So a notebook
runs its code on real digits with real labels, but its accuracies are not
MNIST's or CIFAR-10's. Supported: ``split=`` a ``Split`` value, a string
such as ``'train[:64]'`` or a list of them; ``batch_size=-1`` (whole
arrays); otherwise a dataset with ``shuffle``, ``batch``, ``repeat``,
``take``; ``as_numpy``.
"""
from __future__ import annotations

import re

import numpy as np


class Split:
    TRAIN = "train"
    TEST = "test"


_SIZES = {"mnist": (28, 1), "cifar10": (32, 3)}
_N_TRAIN = 1297


def _images(name):
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    side, channels = _SIZES[name]
    digits = load_digits()
    big = zoom(digits.images / 16.0, (1, side / 8, side / 8), order=1)
    big = np.clip(np.round(big * 255), 0, 255).astype(np.uint8)[..., None]
    return np.repeat(big, channels, axis=-1), digits.target.astype(np.int64)


def _select(images, labels, split):
    match = re.fullmatch(r"(train|test)(?:\[(-?\d*):(-?\d*)\])?", str(split))
    if match is None:
        raise ValueError(f"tensorflow_datasets stand-in: split {split!r} is not supported "
                         "(use 'train', 'test' or a slice such as 'train[:64]').")
    part, start, stop = match.groups()
    rows = slice(0, _N_TRAIN) if part == "train" else slice(_N_TRAIN, len(labels))
    images, labels = images[rows], labels[rows]
    pick = slice(int(start) if start else None, int(stop) if stop else None)
    return {"image": images[pick], "label": labels[pick]}


class _Dataset:
    def __init__(self, arrays, batch=None, repeats=1, seed=None):
        self.arrays, self._batch, self._repeats, self._seed = arrays, batch, repeats, seed

    def shuffle(self, buffer_size, seed=None):
        return _Dataset(self.arrays, self._batch, self._repeats, 0 if seed is None else seed)

    def batch(self, size):
        return _Dataset(self.arrays, size, self._repeats, self._seed)

    def repeat(self, count=None):
        return _Dataset(self.arrays, self._batch, count, self._seed)

    def take(self, count):
        arrays = {k: v[:count * (self._batch or 1)] for k, v in self.arrays.items()}
        return _Dataset(arrays, self._batch, 1, self._seed)

    def __iter__(self):
        n = len(self.arrays["label"])
        rng = np.random.default_rng(self._seed)
        rounds = 0
        while self._repeats is None or rounds < self._repeats:
            order = rng.permutation(n) if self._seed is not None else np.arange(n)
            step = self._batch or 1
            for i in range(0, n, step):
                rows = order[i:i + step]
                item = {k: v[rows] for k, v in self.arrays.items()}
                yield item if self._batch else {k: v[0] for k, v in item.items()}
            rounds += 1


def load(name, split=None, batch_size=None, **kwargs):
    base = str(name).split(":")[0]
    if base not in _SIZES:
        raise ValueError(f"tensorflow_datasets stand-in: dataset {name!r} is not available offline "
                         f"(only {sorted(_SIZES)}).")
    images, labels = _images(base)
    splits = split if isinstance(split, (list, tuple)) else [split or "train"]
    parts = [_select(images, labels, s) for s in splits]
    out = parts if batch_size == -1 else [_Dataset(p) for p in parts]
    return out if isinstance(split, (list, tuple)) else out[0]


def as_numpy(data):
    return data


class _Label:
    num_classes = 10


class _Info:
    features = {"label": _Label()}


class _Builder:
    info = _Info()


def builder(name):
    """``builder(name).info.features['label'].num_classes`` (10 digits)."""
    if str(name).split(":")[0] not in _SIZES:
        raise ValueError(f"tensorflow_datasets stand-in: dataset {name!r} is not available offline.")
    return _Builder()
