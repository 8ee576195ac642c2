r"""Time-series classification on a UCR split: RNTK, MLP NTK, RBF and 1-NN Euclidean compared.

The protocol (after Alemohammad, Wang, Balestriero & Baraniuk 2021, "The
Recurrent Neural Tangent Kernel", §5: a C-SVM on each precomputed kernel,
hyper-parameters chosen by cross-validation on the training split):

* every kernel method is scikit-learn's ``SVC(kernel='precomputed', C)``;
* **C is relative to the kernel's scale**: a setting's cost is
  :math:`C = c / \overline{K}` with :math:`\overline{K} = \frac1n\sum_i K(x_i, x_i)`
  the mean diagonal of the training Gram matrix and ``c`` from
  :data:`RELATIVE_C_GRID` (:math:`10^{-3} \dots 10^{3}`). The C-SVM on
  :math:`(aK, C/a)` has the dual variables of :math:`(K, C)` divided by
  ``a`` and the same decision function, so the selection and every
  prediction are unchanged when a Gram matrix is multiplied by a constant
  (an unnormalised RNTK grows with the series' length; an absolute grid of C
  is then too small or too large for it and the choice sits at an edge);
* **cosine normalisation** :math:`K(x, x') / \sqrt{K(x, x) K(x', x')}` is one
  more option of the RNTK and the MLP NTK, chosen by cross-validation like
  their other settings (the RBF kernel is normalised already). It puts series
  of very different lengths (PickupGestureWiimoteZ: 29 to 361 steps) on one
  scale; it needs each test series' own kernel value K(x, x), which uses
  that series alone and no label;
* each method's hyper-parameters (its kernel's settings and ``c``) are chosen
  by stratified k-fold cross-validation (default 10 folds as in the paper,
  fewer when a class has fewer training series) on the **training split
  only**: the selection (:func:`select_by_cv`) receives the training Gram
  matrices and labels and nothing else, so the test split cannot influence
  it. Ties of the mean cross-validation accuracy go to the first setting of
  the grid that reaches it and, within that setting, to the middle one of its
  tied values of ``c`` (the grid's edge is then chosen only when the best
  plateau ends there);
* the chosen setting is refitted on the whole training split and evaluated
  once on the official test split.

Methods and their grids (:data:`DEFAULT_GRIDS`):

* **RNTK**: ``Recurrent(1, Relu(), W_std=σ_w, U_std=1, b_std=σ_b) -> Dense(1)``
  (NTK parameterisation, readout at each series' last real step), σ_w in
  {1.34, 1.38, √2, 1.47, 2} (a subset of the paper's
  {1.34, 1.35, ..., 1.47, 2}, which brackets the ReLU edge of chaos √2),
  σ_b in {0, 0.1, 0.5, 1} (the paper: 0 ... 2), σ_u = 1 (as the paper), raw
  or cosine-normalised; padded sets through ``mask_constant=nan``. The
  paper also searched the initial state's standard deviation σ_h; our
  layer starts from :math:`h_0 = 0` (σ_h = 0).
* **MLP NTK**: the series as one vector (zeros past the end of a shorter
  series), ``(Dense(W_std=√2, b_std=0.1) -> Relu) × depth -> Dense``, depth
  in {1, 2, 3}, raw or cosine-normalised.
* **RBF**: :math:`\exp(-\gamma \|x - x'\|^2 / T)` on the same vectors,
  γ in {0.03, 0.1, 0.3, 1, 3, 10}.
* **1-NN Euclidean**: the UCR archive's baseline, no hyper-parameter (padded
  series compared on the zero-filled vectors).

Run ``python benchmarks/repro_rntk_ucr.py`` for the table on the four
vendored sets.
"""
from __future__ import annotations

import functools
import math
import time
from typing import Callable, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "RELATIVE_C_GRID",
    "PAPER_RNTK_W_STD",
    "DEFAULT_GRIDS",
    "MethodResult",
    "SequenceComparison",
    "stratified_folds",
    "cosine_normalise",
    "cv_accuracy_table",
    "choose_from_table",
    "select_by_cv",
    "svm_accuracy",
    "one_nn_predict",
    "flatten_series",
    "rntk_fn",
    "rntk_gram",
    "mlp_ntk_fn",
    "rbf_gram",
    "compare_methods",
]

#: SVM costs relative to the mean diagonal of the training Gram matrix: C = c / mean_i K(x_i, x_i).
RELATIVE_C_GRID = tuple(10.0**k for k in range(-3, 4))

#: The σ_w searched by Alemohammad et al. (2021, §5) for the RNTK (σ_u = 1 there).
PAPER_RNTK_W_STD = tuple(round(1.34 + 0.01 * k, 2) for k in range(14)) + (2.0,)

#: The kernel settings searched for each method.
DEFAULT_GRIDS = {
    "RNTK": tuple(dict(W_std=w, b_std=b, normalize=nrm)
                  for w in (1.34, 1.38, math.sqrt(2.0), 1.47, 2.0) for b in (0.0, 0.1, 0.5, 1.0)
                  for nrm in (False, True)),
    "MLP NTK": tuple(dict(depth=d, normalize=nrm) for d in (1, 2, 3) for nrm in (False, True)),
    "RBF": tuple(dict(gamma=g) for g in (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)),
}


class MethodResult(NamedTuple):
    """One method on one split.

    Attributes:
      method: "RNTK", "MLP NTK", "RBF" or "1-NN Euclidean".
      test_accuracy: fraction of the test split classified correctly.
      cv_accuracy: mean cross-validation accuracy of the chosen setting on the
        training split (NaN for 1-NN, which has nothing to choose).
      setting: the chosen kernel setting (empty for 1-NN).
      C: the chosen SVM cost, absolute (NaN for 1-NN).
      relative_C: the chosen ``c`` of the grid, ``C`` times the mean training
        diagonal (NaN for 1-NN).
      seconds: wall time of the method (kernels, selection, test).
      cv_by_C: the chosen setting's mean CV accuracy at each relative C of the
        grid (empty for 1-NN): where the choice sits on its curve.
      n_tied: how many (setting, C) pairs of the grid reach the best CV
        accuracy (0 for 1-NN).
    """

    method: str
    test_accuracy: float
    cv_accuracy: float
    setting: dict
    C: float
    relative_C: float
    seconds: float
    cv_by_C: Tuple[float, ...] = ()
    n_tied: int = 0


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


def stratified_folds(y, n_splits: int = 10, seed: int = 0):
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


def cosine_normalise(k, diag_rows, diag_cols) -> np.ndarray:
    r"""The cosine-normalised kernel :math:`K(x_i, x'_j) / \sqrt{K(x_i, x_i) K(x'_j, x'_j)}`.

    Args:
      k: kernel values ``(n_rows, n_cols)``.
      diag_rows: :math:`K(x_i, x_i)` of the row series, ``(n_rows,)``, all > 0.
      diag_cols: :math:`K(x'_j, x'_j)` of the column series, ``(n_cols,)``, all > 0.
    """
    k = np.asarray(k, float)
    dr, dc = np.asarray(diag_rows, float), np.asarray(diag_cols, float)
    if k.ndim != 2 or dr.shape != (k.shape[0],) or dc.shape != (k.shape[1],):
        raise ValueError(f"cosine_normalise: `diag_rows` and `diag_cols` must have {k.shape[0]} and "
                         f"{k.shape[1] if k.ndim == 2 else '?'} entries for `k` of shape {k.shape}; got "
                         f"{dr.shape} and {dc.shape}.")
    if not (np.all(dr > 0) and np.all(dc > 0)):
        raise ValueError(f"cosine_normalise: the diagonals must be > 0; got minima {dr.min()} and {dc.min()}.")
    return k / np.sqrt(dr)[:, None] / np.sqrt(dc)[None, :]


def svm_accuracy(k_train, y_train, k_eval, y_eval, C: float) -> float:
    """Accuracy of ``SVC(kernel='precomputed', C)`` fitted on ``k_train`` and read on ``k_eval``.

    Args:
      k_train: Gram matrix of the training series, ``(n, n)``.
      y_train: their labels, ``(n,)``.
      k_eval: kernel between the evaluated and the training series, ``(n_eval, n)``.
      y_eval: labels of the evaluated series.
      C: the SVM cost (absolute).
    """
    from sklearn.svm import SVC

    model = SVC(kernel="precomputed", C=float(C)).fit(np.asarray(k_train), np.asarray(y_train))
    return float(np.mean(model.predict(np.asarray(k_eval)) == np.asarray(y_eval)))


def _scale(where: str, gram) -> float:
    """The mean diagonal of a training Gram matrix: the unit of C."""
    scale = float(np.mean(np.diag(np.asarray(gram, float))))
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"{where}: a training Gram matrix's mean diagonal must be finite and > 0; got {scale}.")
    return scale


def cv_accuracy_table(train_grams: Sequence[np.ndarray], y_train, Cs: Sequence[float] = RELATIVE_C_GRID,
                      n_splits: int = 10, seed: int = 0) -> np.ndarray:
    r"""Mean stratified cross-validation accuracy of every (setting, relative C) on the training split.

    A cost ``c`` of ``Cs`` means :math:`C = c / \overline{K}`, with
    :math:`\overline{K}` the mean diagonal of the whole training Gram matrix
    of that setting: the table does not change when a Gram matrix is
    multiplied by a constant (the C-SVM on :math:`(aK, C/a)` has the decision
    function of :math:`(K, C)`).

    Args:
      train_grams: one ``(n, n)`` Gram matrix of the training series per setting.
      y_train: their labels.
      Cs: relative SVM costs ``c``, positive and increasing.
      n_splits, seed: the folds (:func:`stratified_folds`).

    Returns:
      ``(len(train_grams), len(Cs))`` mean accuracies over the folds.
    """
    y_train = _labels("cv_accuracy_table", "y_train", y_train)
    if len(train_grams) == 0 or len(Cs) == 0:
        raise ValueError("cv_accuracy_table: `train_grams` and `Cs` must be non-empty.")
    if any(not (c > 0) for c in Cs) or list(Cs) != sorted(Cs):
        raise ValueError(f"cv_accuracy_table: `Cs` must be positive and increasing; got {tuple(Cs)}.")
    for i, g in enumerate(train_grams):
        if np.shape(g) != (len(y_train), len(y_train)):
            raise ValueError(f"cv_accuracy_table: `train_grams[{i}]` must be ({len(y_train)}, {len(y_train)}) to "
                             f"match `y_train`; got {np.shape(g)}.")
    folds = stratified_folds(y_train, n_splits, seed)
    table = np.empty((len(train_grams), len(Cs)))
    for s, gram in enumerate(train_grams):
        # (K / unit, c) is the SVM of (K, c / unit); dividing keeps the solver's
        # numbers near 1 for kernels that grow like 2^T with the series' length.
        gram = np.asarray(gram, float) / _scale("cv_accuracy_table", gram)
        for c_index, c in enumerate(Cs):
            table[s, c_index] = np.mean([svm_accuracy(gram[np.ix_(tr, tr)], y_train[tr], gram[np.ix_(va, tr)],
                                                      y_train[va], c) for tr, va in folds])
    return table


def choose_from_table(table) -> Tuple[int, int]:
    """``(setting_index, c_index)`` of the best mean accuracy of a :func:`cv_accuracy_table`.

    Ties go to the first setting (row) that reaches the best accuracy and,
    within that row, to the middle of its tied costs (the lower middle for an
    even count), so that a plateau of equal accuracies is not left at its edge.
    """
    table = np.asarray(table, float)
    if table.ndim != 2 or table.size == 0 or not np.all(np.isfinite(table)):
        raise ValueError(f"choose_from_table: `table` must be a non-empty finite 2-D array; got shape {table.shape}.")
    best = table.max()
    s = int(np.flatnonzero((table == best).any(axis=1))[0])
    tied = np.flatnonzero(table[s] == best)
    return s, int(tied[(len(tied) - 1) // 2])


def select_by_cv(train_grams: Sequence[np.ndarray], y_train, Cs: Sequence[float] = RELATIVE_C_GRID,
                 n_splits: int = 10, seed: int = 0) -> Tuple[int, float, float]:
    """Choose a kernel setting and a relative C by stratified cross-validation on the training split.

    It sees only the Gram matrices of the training series and their labels
    (:func:`cv_accuracy_table`, then :func:`choose_from_table`).

    Returns:
      ``(setting_index, c, mean_cv_accuracy)``; the absolute cost is ``c``
      divided by the mean diagonal of ``train_grams[setting_index]``.
    """
    table = cv_accuracy_table(train_grams, y_train, Cs, n_splits, seed)
    s, c_index = choose_from_table(table)
    return s, float(Cs[c_index]), float(table[s, c_index])


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


def rntk_gram(W_std: float, b_std: float, x1, x2=None, U_std: float = 1.0) -> np.ndarray:
    """The NTK of :func:`rntk_fn` between ``x1`` and ``x2`` (``None``: ``x1`` with itself), float64.

    Sequences ``(n, T, m)``; any NaN marks padding (``mask_constant=nan``). One
    compilation per pair of input shapes serves every (W_std, b_std, U_std).
    """
    import jax

    x1 = np.asarray(x1, float)
    x2 = None if x2 is None else np.asarray(x2, float)
    padded = bool(np.isnan(x1).any() or (x2 is not None and np.isnan(x2).any()))
    with jax.enable_x64(True):
        return np.asarray(_rntk_compiled(padded)(float(W_std), float(b_std), float(U_std), x1, x2),
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


def _kernel_method(name, train_gram, test_block, grid, y_train, y_test, Cs, n_splits, seed) -> MethodResult:
    """Select on the training Grams, then fit on the whole training split and test once.

    ``train_gram(setting)`` gives K(train, train) (normalised if the setting
    says so); ``test_block(setting)`` gives K(test, train) on the same scale
    and is called for the chosen setting only, after the selection.
    """
    t0 = time.perf_counter()
    grams = [train_gram(setting) for setting in grid]
    table = cv_accuracy_table(grams, y_train, Cs, n_splits, seed)
    s, c_index = choose_from_table(table)
    c = float(Cs[c_index])
    unit = _scale("compare_methods", grams[s])
    acc = svm_accuracy(grams[s] / unit, y_train, test_block(grid[s]) / unit, y_test, c)  # the SVM of (K, c / unit)
    C = c / unit
    return MethodResult(name, acc, float(table[s, c_index]), dict(grid[s]), C, c, time.perf_counter() - t0,
                        tuple(float(v) for v in table[s]), int(np.sum(table == table.max())))


def _kernel_params(setting: dict) -> tuple:
    """A setting without its ``normalize`` flag, hashable: one raw kernel serves both options."""
    return tuple(sorted((k, v) for k, v in setting.items() if k != "normalize"))


def compare_methods(data, grids: Optional[Mapping[str, Sequence[dict]]] = None,
                    Cs: Sequence[float] = RELATIVE_C_GRID, n_splits: int = 10, seed: int = 0,
                    methods: Sequence[str] = ("RNTK", "MLP NTK", "RBF", "1-NN Euclidean")) -> SequenceComparison:
    """RNTK, MLP NTK and RBF (C-SVMs) and 1-NN Euclidean on one official train/test split.

    Args:
      data: a :class:`ntkcourse.data.UCRSplit` (or any object with its
        ``x_train, y_train, x_test, y_test, name`` fields), sequences
        ``(n, T, m)``, shorter ones padded with ``NaN``.
      grids: the kernel settings per method (default :data:`DEFAULT_GRIDS`);
        RNTK and MLP NTK settings may carry ``normalize=True`` (cosine
        normalisation, :func:`cosine_normalise`).
      Cs: the relative SVM costs (default :data:`RELATIVE_C_GRID`; see
        :func:`select_by_cv`).
      n_splits, seed: the cross-validation folds on the training split.
      methods: which methods to run, in the order of the results.

    Returns:
      A :class:`SequenceComparison`.

    The training Gram matrices, K(train, train), are computed from the
    training series alone (``kernel_fn(x_train, None)``) for every setting
    and go to the selection; K(test, train) and, for a normalised kernel,
    each test series' K(x, x) are computed afterwards for the chosen setting
    only. The test labels are read only by the final evaluation.
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
    if any(s.get("normalize") for s in grids.get("RBF", ())):
        raise ValueError("compare_methods: the RBF kernel is normalised already; its settings take no `normalize`.")
    padded = bool(np.isnan(x_train).any() or np.isnan(x_test).any())
    flat_train, flat_test = flatten_series(x_train), flatten_series(x_test)

    def rntk(setting, a, b=None):
        return rntk_gram(setting["W_std"], setting["b_std"], a, b, setting.get("U_std", 1.0))

    def mlp(setting, a, b=None):
        return np.asarray(mlp_ntk_fn(setting["depth"])(a, b, "ntk"), dtype=np.float64)

    def rbf(setting, a, b=None):
        return rbf_gram(a, a if b is None else b, setting["gamma"])

    inputs = {"RNTK": (rntk, x_train, x_test), "MLP NTK": (mlp, flat_train, flat_test),
              "RBF": (rbf, flat_train, flat_test)}

    def blocks(method):
        fn, a_train, a_test = inputs[method]

        @functools.lru_cache(maxsize=None)
        def raw_train(params):
            k = fn(dict(params), a_train)
            return (k + k.T) / 2

        def train_gram(setting):
            k = raw_train(_kernel_params(setting))
            return cosine_normalise(k, np.diag(k), np.diag(k)) if setting.get("normalize") else k

        def test_block(setting):
            k = fn(setting, a_test, a_train)
            if not setting.get("normalize"):
                return k
            return cosine_normalise(k, np.diag(fn(setting, a_test)), np.diag(raw_train(_kernel_params(setting))))

        return train_gram, test_block

    results = []
    for m in methods:
        if m == "1-NN Euclidean":
            t0 = time.perf_counter()
            acc = float(np.mean(one_nn_predict(flat_train, y_train, flat_test) == y_test))
            nan = float("nan")
            results.append(MethodResult(m, acc, nan, {}, nan, nan, time.perf_counter() - t0))
        else:
            results.append(_kernel_method(m, *blocks(m), tuple(grids[m]), y_train, y_test, Cs, n_splits, seed))
    return SequenceComparison(str(getattr(data, "name", "")), len(y_train), len(y_test), x_train.shape[1], padded,
                              tuple(results))
