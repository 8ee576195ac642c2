"""Infinite-width kernels on small tabular data sets, against a random forest and an RBF SVM.

The experiment of Arora et al. (2020, "Harnessing the power of infinitely
wide deep nets on small-data tasks", :cite:`arora2020harnessing`): on small
classification sets, an SVM with the NTK of a fully connected ReLU network
rivals random forests. Here with the data sets that ship with scikit-learn
(iris, wine, breast cancer, digits) and one protocol for every method:

* **outer loop**: stratified ``k``-fold cross-validation (default 4 folds),
  repeated with several shuffling seeds; features standardised with the
  training fold's mean and standard deviation;
* **hyper-parameters**: chosen on each training fold by an inner stratified
  3-fold cross-validation over the grid :data:`GRIDS` (highest mean inner
  accuracy, ties to the first), then refit on the whole training fold;
* **methods**: ``ntk-svm``/``nngp-svm`` (``SVC(kernel="precomputed")``),
  ``ntk-krr``/``nngp-krr`` (kernel ridge regression on centred one-hot
  targets, ``argmax``), ``rf`` (``RandomForestClassifier``, 100 trees),
  ``rbf-svm`` (``SVC(kernel="rbf")``).

The kernels are those of ``serial([Dense(512, W_std=√2, b_std=0.1), Relu()] × L, Dense(1))``
on the standardised features (inputs scaled by ``1/√d`` inside, the stax
convention), with the depth ``L`` a hyper-parameter.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import numpy as np

from . import validation

__all__ = ["GRIDS", "DATA_SETS", "load_small_data", "CVScores", "cross_validated_accuracy"]

DATA_SETS = ("iris", "wine", "breast_cancer", "digits")

#: The hyper-parameter grid of each method (``ridge`` is relative: ``ρ = ridge · tr K / n``).
GRIDS = {
    "ntk-svm": [{"depth": d, "C": c} for d in (1, 2, 3, 5) for c in (0.1, 1.0, 10.0, 100.0)],
    "nngp-svm": [{"depth": d, "C": c} for d in (1, 2, 3, 5) for c in (0.1, 1.0, 10.0, 100.0)],
    "ntk-krr": [{"depth": d, "ridge": r} for d in (1, 2, 3, 5) for r in (1e-3, 1e-2, 1e-1, 1.0)],
    "nngp-krr": [{"depth": d, "ridge": r} for d in (1, 2, 3, 5) for r in (1e-3, 1e-2, 1e-1, 1.0)],
    "rf": [{"max_features": f, "min_samples_leaf": s} for f in ("sqrt", 0.5) for s in (1, 3)],
    "rbf-svm": [{"C": c, "gamma": g} for c in (0.1, 1.0, 10.0, 100.0) for g in (0.1, 1.0, 10.0)],
}


def load_small_data(name: str):
    """``(x, y)``: features (n, d) and integer labels of a scikit-learn data set in :data:`DATA_SETS`."""
    name = validation.one_of("load_small_data", "name", name, DATA_SETS)
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    return np.asarray(bunch.data, np.float64), np.asarray(bunch.target)


class CVScores(NamedTuple):
    """Test accuracy of every outer fold of every repeat (``accuracies``, shape ``(repeats·folds,)``)
    and the hyper-parameters chosen on each (``chosen``).
    """

    accuracies: np.ndarray
    chosen: list


@functools.lru_cache(maxsize=None)
def _kernels(depth):
    """One ``kernel_fn`` per depth for the whole run, so that each is compiled once."""
    from . import stax

    layers = []
    for _ in range(depth):
        layers += [stax.Dense(512, W_std=2**0.5, b_std=0.1), stax.Relu()]
    return stax.serial(*layers, stax.Dense(1, W_std=2**0.5, b_std=0.1))[2]


def _kernel_method(get, kind):
    cache = {}

    def fit_predict(x, y, train, test, params):
        key = (hash(x.tobytes()), params["depth"])      # the fold's standardised inputs and the depth
        if key not in cache:
            cache.clear()
            cache[key] = np.asarray(getattr(_kernels(params["depth"])(x, None, ("nngp", "ntk")), get))
        k = cache[key]
        ktr, kte = k[np.ix_(train, train)], k[np.ix_(test, train)]
        if kind == "svm":
            from sklearn.svm import SVC

            return SVC(kernel="precomputed", C=params["C"]).fit(ktr, y[train]).predict(kte)
        from .dynamics import kernel_regression

        classes = np.unique(y[train])
        targets = (y[train][:, None] == classes[None, :]) - 1.0 / classes.size
        rho = params["ridge"] * np.trace(ktr) / len(train)
        return classes[np.argmax(kernel_regression(ktr, targets, kte, ridge=rho), axis=1)]

    return fit_predict


def _rf(x, y, train, test, params):
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=100, random_state=0, **params)
    return model.fit(x[train], y[train]).predict(x[test])


def _rbf(x, y, train, test, params):
    from sklearn.svm import SVC

    gamma = params["gamma"] / x.shape[1]        # relative to 1/d: features are standardised
    return SVC(kernel="rbf", C=params["C"], gamma=gamma).fit(x[train], y[train]).predict(x[test])


def _method(name) -> Callable:
    if name == "rf":
        return _rf
    if name == "rbf-svm":
        return _rbf
    get, kind = name.split("-")
    return _kernel_method(get, kind)


def cross_validated_accuracy(x, y, method: str, *, folds: int = 4, repeats: int = 3, seed: int = 0,
                             grid=None) -> CVScores:
    """Accuracy of ``method`` under the protocol of the module docstring.

    Args:
      x, y: features (n, d) and integer labels.
      method: a key of :data:`GRIDS`.
      folds: outer folds; repeats: shuffled repetitions (seeds ``seed, seed+1, …``).
      grid: the hyper-parameter grid (default ``GRIDS[method]``).
    """
    from sklearn.model_selection import StratifiedKFold

    method = validation.one_of("cross_validated_accuracy", "method", method, tuple(GRIDS))
    folds = validation.positive_int("cross_validated_accuracy", "folds", folds)
    repeats = validation.positive_int("cross_validated_accuracy", "repeats", repeats)
    grid = GRIDS[method] if grid is None else list(grid)
    fit_predict = _method(method)
    x = np.asarray(x, np.float64)
    y = np.asarray(y)
    accs, chosen = [], []
    for r in range(repeats):
        outer = StratifiedKFold(folds, shuffle=True, random_state=seed + r)
        for train, test in outer.split(x, y):
            mu, sd = x[train].mean(0), x[train].std(0)
            xs = (x - mu) / np.where(sd > 0, sd, 1.0)
            inner = list(StratifiedKFold(3, shuffle=True, random_state=seed + r).split(xs[train], y[train]))
            scores = []
            for params in grid:
                scores.append(np.mean([np.mean(fit_predict(xs, y, train[a], train[b], params) == y[train[b]])
                                       for a, b in inner]))
            best = grid[int(np.argmax(scores))]
            chosen.append(best)
            accs.append(np.mean(fit_predict(xs, y, train, test, best) == y[test]))
    return CVScores(np.array(accs), chosen)
