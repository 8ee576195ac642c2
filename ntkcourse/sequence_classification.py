r"""Time-series classification on a UCR split: RNTK, MLP NTK, RBF and 1-NN Euclidean compared.

The protocol (after Alemohammad, Wang, Balestriero & Baraniuk 2021, "The
Recurrent Neural Tangent Kernel": a C-SVM on each precomputed kernel,
hyper-parameters chosen by cross-validation on the training split):

* every kernel method is scikit-learn's ``SVC(kernel='precomputed', C)``;
* each method's hyper-parameters (its kernel's settings and C) are chosen by
  stratified k-fold cross-validation (default 5 folds, fewer when a class has
  fewer training series) on the **training split only**: the selection
  (:func:`select_by_cv`) receives the training Gram matrices and labels and
  nothing else, so the test split cannot influence it;
* the chosen setting is refitted on the whole training split and evaluated
  once on the official test split.

Methods and their grids (:data:`DEFAULT_GRIDS`):

* **RNTK**: ``Recurrent(1, Relu(), W_std=σ_w, U_std=1, b_std=σ_b) -> Dense(1)``
  (NTK parameterisation, readout at each series' last real step), σ_w in
  {0.5, 1, √2}, σ_b in {0.1, 1}; padded sets through ``mask_constant=nan``.
* **MLP NTK**: the series as one vector (zeros past the end of a shorter
  series), ``(Dense(W_std=√2, b_std=0.1) -> Relu) × depth -> Dense``, depth
  in {1, 2, 3}.
* **RBF**: :math:`\exp(-\gamma \|x - x'\|^2 / T)` on the same vectors,
  γ in {0.1, 1, 10}.
* **1-NN Euclidean**: the UCR archive's baseline, no hyper-parameter (padded
  series compared on the zero-filled vectors).
* C in {0.01, 0.1, 1, 10, 100} (the paper's grid of C) for the three kernels.

Run ``python benchmarks/repro_rntk_ucr.py`` for the table on the four
vendored sets.
"""
from __future__ import annotations

import functools
import math
import time
from typing import Callable, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "C_GRID",
    "DEFAULT_GRIDS",
    "MethodResult",
    "SequenceComparison",
    "stratified_folds",
    "select_by_cv",
    "svm_accuracy",
    "one_nn_predict",
    "flatten_series",
    "rntk_fn",
    "mlp_ntk_fn",
    "rbf_gram",
    "compare_methods",
]

#: The SVM costs searched for every kernel method (Alemohammad et al. 2021 use the same five).
C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)

#: The kernel settings searched for each method.
DEFAULT_GRIDS = {
    "RNTK": tuple(dict(W_std=w, b_std=b) for w in (0.5, 1.0, math.sqrt(2.0)) for b in (0.1, 1.0)),
    "MLP NTK": tuple(dict(depth=d) for d in (1, 2, 3)),
    "RBF": tuple(dict(gamma=g) for g in (0.1, 1.0, 10.0)),
}


class MethodResult(NamedTuple):
    """One method on one split.

    Attributes:
      method: "RNTK", "MLP NTK", "RBF" or "1-NN Euclidean".
      test_accuracy: fraction of the test split classified correctly.
      cv_accuracy: mean cross-validation accuracy of the chosen setting on the
        training split (NaN for 1-NN, which has nothing to choose).
      setting: the chosen kernel setting (empty for 1-NN).
      C: the chosen SVM cost (NaN for 1-NN).
      seconds: wall time of the method (kernels, selection, test).
    """

    method: str
    test_accuracy: float
    cv_accuracy: float
    setting: dict
    C: float
    seconds: float


class SequenceComparison(NamedTuple):
    """All methods on one split; ``accuracy(method)`` reads one test accuracy."""

    name: str
    n_train: int
    n_test: int
    length: int
    padded: bool
    results: Tuple[MethodResult, ...]

    def accuracy(self, method: str) -> float:
        """The test accuracy of ``method``."""
        for r in self.results:
            if r.method == method:
                return r.test_accuracy
        raise KeyError(f"SequenceComparison.accuracy: no method {method!r}; have "
                       f"{[r.method for r in self.results]}.")


def _labels(where: str, name: str, y) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{where}: `{name}` must be a non-empty 1-D integer array; got dtype {y.dtype}, "
                         f"shape {y.shape}.")
    return y


def stratified_folds(y, n_splits: int = 5, seed: int = 0):
    """``[(train_idx, val_idx), ...]``: shuffled stratified folds of ``y``.

    ``n_splits`` is lowered to the size of the smallest class when that is
    smaller (at least 2 series per class are needed).
    """
    from sklearn.model_selection import StratifiedKFold

    y = _labels("stratified_folds", "y", y)
    if y.min() < 0:
        raise ValueError(f"stratified_folds: `y` must be class indices >= 0; got {y.min()}.")
    counts = np.bincount(y)
    smallest = int(counts[counts > 0].min())
    k = min(int(n_splits), smallest)
    if k < 2:
        raise ValueError(f"stratified_folds: every class needs at least 2 series for cross-validation; "
                         f"the smallest class of `y` has {smallest}.")
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def svm_accuracy(k_train, y_train, k_eval, y_eval, C: float) -> float:
    """Accuracy of ``SVC(kernel='precomputed', C)`` fitted on ``k_train`` and read on ``k_eval``.

    Args:
      k_train: Gram matrix of the training series, ``(n, n)``.
      y_train: their labels, ``(n,)``.
      k_eval: kernel between the evaluated and the training series, ``(n_eval, n)``.
      y_eval: labels of the evaluated series.
      C: the SVM cost.
    """
    from sklearn.svm import SVC

    model = SVC(kernel="precomputed", C=float(C)).fit(np.asarray(k_train), np.asarray(y_train))
    return float(np.mean(model.predict(np.asarray(k_eval)) == np.asarray(y_eval)))


def select_by_cv(train_grams: Sequence[np.ndarray], y_train, Cs: Sequence[float] = C_GRID, n_splits: int = 5,
                 seed: int = 0) -> Tuple[int, float, float]:
    """Choose a kernel setting and C by stratified cross-validation on the training split.

    It sees only the Gram matrices of the training series and their labels.
    Ties are broken by the first setting, then the smallest C.

    Args:
      train_grams: one ``(n, n)`` Gram matrix of the training series per setting.
      y_train: their labels.
      Cs: SVM costs to try.
      n_splits, seed: the folds (:func:`stratified_folds`).

    Returns:
      ``(setting_index, C, mean_cv_accuracy)``.
    """
    y_train = _labels("select_by_cv", "y_train", y_train)
    if len(train_grams) == 0 or len(Cs) == 0:
        raise ValueError("select_by_cv: `train_grams` and `Cs` must be non-empty.")
    for i, g in enumerate(train_grams):
        if np.shape(g) != (len(y_train), len(y_train)):
            raise ValueError(f"select_by_cv: `train_grams[{i}]` must be ({len(y_train)}, {len(y_train)}) to match "
                             f"`y_train`; got {np.shape(g)}.")
    folds = stratified_folds(y_train, n_splits, seed)
    best = (-1.0, 0, 0)
    for s, gram in enumerate(train_grams):
        gram = np.asarray(gram)
        for c_index, C in enumerate(Cs):
            acc = np.mean([svm_accuracy(gram[np.ix_(tr, tr)], y_train[tr], gram[np.ix_(va, tr)], y_train[va], C)
                           for tr, va in folds])
            if acc > best[0]:
                best = (float(acc), s, c_index)
    return best[1], float(Cs[best[2]]), best[0]


def one_nn_predict(x_train, y_train, x_test) -> np.ndarray:
    """1-nearest-neighbour prediction with the Euclidean distance (ties: the first training series).

    ``x_train`` ``(n, d)``, ``x_test`` ``(n_test, d)``: each row one series as a vector.
    """
    x_train, x_test = np.asarray(x_train, float), np.asarray(x_test, float)
    if x_train.ndim != 2 or x_test.ndim != 2 or x_train.shape[1] != x_test.shape[1]:
        raise ValueError(f"one_nn_predict: `x_train` and `x_test` must be (n, d) with the same d; got "
                         f"{x_train.shape} and {x_test.shape}.")
    d2 = (x_test**2).sum(1)[:, None] - 2 * x_test @ x_train.T + (x_train**2).sum(1)[None, :]
    return np.asarray(y_train)[np.argmin(d2, axis=1)]


def flatten_series(x) -> np.ndarray:
    """Sequences ``(n, T, m)`` as vectors ``(n, T m)``, NaN padding replaced by zeros."""
    x = np.asarray(x, float)
    if x.ndim != 3:
        raise ValueError(f"flatten_series: `x` must be (n, T, m); got shape {x.shape}.")
    return np.nan_to_num(x, nan=0.0).reshape(len(x), -1)


def rntk_fn(W_std: float, b_std: float, U_std: float = 1.0) -> Callable:
    """``kernel_fn`` of ``Recurrent(1, Relu(), W_std, U_std, b_std) -> Dense(1)`` (NTK parameterisation)."""
    from . import stax

    return stax.serial(stax.Recurrent(1, stax.Relu(), W_std=W_std, U_std=U_std, b_std=b_std), stax.Dense(1))[2]


@functools.lru_cache(maxsize=2)
def _rntk_compiled(padded: bool):
    import jax

    mask = {"mask_constant": float("nan")} if padded else {}
    # The hyper-parameters are traced arguments: one compilation per pair of
    # input shapes serves the whole grid (a new layer per setting would compile anew).
    return jax.jit(lambda w, b, u, x1, x2: rntk_fn(w, b, u)(x1, x2, "ntk", **mask))


def _rntk_gram(W_std, b_std, U_std, x1, x2, padded: bool) -> np.ndarray:
    """The RNTK between ``x1`` and ``x2`` in float64, through :func:`_rntk_compiled`."""
    import jax

    with jax.enable_x64(True):
        return np.asarray(_rntk_compiled(bool(padded))(float(W_std), float(b_std), float(U_std), x1, x2),
                          dtype=np.float64)


def mlp_ntk_fn(depth: int) -> Callable:
    """``kernel_fn`` of ``(Dense(W_std=√2, b_std=0.1) -> Relu) × depth -> Dense(1)``."""
    from . import stax

    layers = []
    for _ in range(int(depth)):
        layers += [stax.Dense(1, W_std=math.sqrt(2.0), b_std=0.1), stax.Relu()]
    return stax.serial(*layers, stax.Dense(1))[2]


def rbf_gram(a, b, gamma: float) -> np.ndarray:
    r""":math:`\exp(-\gamma \|a_i - b_j\|^2 / d)` for rows of ``a`` ``(n, d)`` and ``b`` ``(k, d)``."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d2 = (a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)[None, :]
    return np.exp(-gamma * np.maximum(d2, 0.0) / a.shape[1])


def _kernel_method(name, grams_of, grid, y_train, y_test, Cs, n_splits, seed) -> MethodResult:
    """Select on the training Grams, then fit on the whole training split and test once."""
    t0 = time.perf_counter()
    pairs = [grams_of(setting) for setting in grid]  # (K(train, train), K(test, train)) per setting
    s, C, cv = select_by_cv([p[0] for p in pairs], y_train, Cs, n_splits, seed)
    acc = svm_accuracy(pairs[s][0], y_train, pairs[s][1], y_test, C)
    return MethodResult(name, acc, cv, dict(grid[s]), C, time.perf_counter() - t0)


def compare_methods(data, grids: Optional[Mapping[str, Sequence[dict]]] = None, Cs: Sequence[float] = C_GRID,
                    n_splits: int = 5, seed: int = 0,
                    methods: Sequence[str] = ("RNTK", "MLP NTK", "RBF", "1-NN Euclidean")) -> SequenceComparison:
    """RNTK, MLP NTK and RBF (C-SVMs) and 1-NN Euclidean on one official train/test split.

    Args:
      data: a :class:`ntkcourse.data.UCRSplit` (or any object with its
        ``x_train, y_train, x_test, y_test, name`` fields), sequences
        ``(n, T, m)``, shorter ones padded with ``NaN``.
      grids: the kernel settings per method (default :data:`DEFAULT_GRIDS`).
      Cs: the SVM costs (default :data:`C_GRID`).
      n_splits, seed: the cross-validation folds on the training split.
      methods: which methods to run, in the order of the results.

    Returns:
      A :class:`SequenceComparison`.

    Each kernel is computed as two blocks, K(train, train) for the selection and
    K(test, train) for the one final evaluation; the test labels are read only
    by that evaluation.
    """
    grids = dict(DEFAULT_GRIDS if grids is None else grids)
    x_train, x_test = np.asarray(data.x_train, float), np.asarray(data.x_test, float)
    y_train = _labels("compare_methods", "data.y_train", data.y_train)
    y_test = _labels("compare_methods", "data.y_test", data.y_test)
    if x_train.ndim != 3 or x_test.ndim != 3 or x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"compare_methods: `data.x_train` and `data.x_test` must be (n, T, m) with the same "
                         f"T and m; got {x_train.shape} and {x_test.shape}.")
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError(f"compare_methods: {len(x_train)} training series with {len(y_train)} labels, "
                         f"{len(x_test)} test series with {len(y_test)} labels.")
    known = ("RNTK", "MLP NTK", "RBF", "1-NN Euclidean")
    for m in methods:
        if m not in known:
            raise ValueError(f"compare_methods: `methods` entries must be among {known}; got {m!r}.")
        if m != "1-NN Euclidean" and not grids.get(m):
            raise ValueError(f"compare_methods: `grids` has no settings for {m!r}.")
    padded = bool(np.isnan(x_train).any() or np.isnan(x_test).any())
    flat_train, flat_test = flatten_series(x_train), flatten_series(x_test)

    def rntk_grams(setting):
        args = (setting["W_std"], setting["b_std"], setting.get("U_std", 1.0))
        k_train = _rntk_gram(*args, x_train, x_train, padded)
        return (k_train + k_train.T) / 2, _rntk_gram(*args, x_test, x_train, padded)

    def mlp_grams(setting):
        k = mlp_ntk_fn(setting["depth"])
        return np.asarray(k(flat_train, None, "ntk")), np.asarray(k(flat_test, flat_train, "ntk"))

    def rbf_grams(setting):
        return rbf_gram(flat_train, flat_train, setting["gamma"]), rbf_gram(flat_test, flat_train, setting["gamma"])

    makers: Dict[str, Callable] = {"RNTK": rntk_grams, "MLP NTK": mlp_grams, "RBF": rbf_grams}
    results = []
    for m in methods:
        if m == "1-NN Euclidean":
            t0 = time.perf_counter()
            acc = float(np.mean(one_nn_predict(flat_train, y_train, flat_test) == y_test))
            results.append(MethodResult(m, acc, float("nan"), {}, float("nan"), time.perf_counter() - t0))
        else:
            results.append(_kernel_method(m, makers[m], tuple(grids[m]), y_train, y_test, Cs, n_splits, seed))
    return SequenceComparison(str(getattr(data, "name", "")), len(y_train), len(y_test), x_train.shape[1], padded,
                              tuple(results))
