"""The UCR comparison protocol (:mod:`ntkcourse.sequence_classification`) on toy sets
small enough to check by hand, and the rule that the test split never enters the selection.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from ntkcourse import sequence_classification as sc
from ntkcourse.data import UCRSplit

SMALL_GRIDS = {"RNTK": (dict(W_std=0.5, b_std=0.1), dict(W_std=1.0, b_std=1.0, normalize=True)),
               "MLP NTK": (dict(depth=1), dict(depth=2, normalize=True)),
               "RBF": (dict(gamma=0.1), dict(gamma=10.0))}


def _toy_split(seed=0, n_per_class=6, n_test=10, T=6):
    """Two classes of short series: a rising and a falling ramp, plus noise."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(-1.0, 1.0, T)

    def draw(n):
        y = np.arange(n) % 2
        x = np.where(y[:, None] == 0, ramp, -ramp) + 0.3 * rng.standard_normal((n, T))
        return x[..., None], y.astype(np.int64)

    x_tr, y_tr = draw(2 * n_per_class)
    x_te, y_te = draw(n_test)
    lengths = lambda n: np.full(n, T)  # noqa: E731
    return UCRSplit(x_tr, y_tr, x_te, y_te, lengths(len(y_tr)), lengths(len(y_te)), ("up", "down"), "toy")


def test_one_nearest_neighbour_matches_a_hand_computation():
    x_train = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    y_train = np.array([0, 1, 1])
    # Distances by hand: (0.9, 0) is 0.9 from the first and 1.1 from the second -> 0;
    # (1.1, 0) -> 1; (0, 1.4) is 1.4 from the first, 1.6 from the third -> 0; (0, 1.6) -> 1.
    x_test = np.array([[0.9, 0.0], [1.1, 0.0], [0.0, 1.4], [0.0, 1.6]])
    np.testing.assert_array_equal(sc.one_nn_predict(x_train, y_train, x_test), [0, 1, 0, 1])


def test_compare_methods_reports_the_hand_computed_one_nn_accuracy():
    # Train: 0 at the origin, 1 at (2, 0) (as length-2 series); test points at
    # (0.5, 0) [0], (1.5, 0) [1], (1.2, 0) [true 0, nearer 2 -> wrong], (0.2, 0) [0]: 3 of 4 right.
    x_train = np.array([[0.0, 0.0], [0.1, 0.0], [2.0, 0.0], [2.1, 0.0]])[..., None]
    x_test = np.array([[0.5, 0.0], [1.5, 0.0], [1.2, 0.0], [0.2, 0.0]])[..., None]
    data = UCRSplit(x_train, np.array([0, 0, 1, 1]), x_test, np.array([0, 1, 0, 0]), np.full(4, 2), np.full(4, 2),
                    ("a", "b"), "hand")
    result = sc.compare_methods(data, methods=("1-NN Euclidean",))
    assert result.accuracy("1-NN Euclidean") == 0.75


def test_selection_prefers_the_gram_that_separates_the_classes():
    y = np.array([0, 1] * 4)
    separating = np.where(y[:, None] == y[None, :], 1.0, 0.0) + np.eye(8)
    constant = np.ones((8, 8))
    # A constant kernel gives a constant decision function: one class predicted
    # everywhere, and each of the 4 stratified validation folds holds one series
    # of each class, so its CV accuracy is exactly 1/2.
    _, _, cv_constant = sc.select_by_cv([constant], y, Cs=(1.0,), n_splits=4)
    assert cv_constant == 0.5
    index, C, cv = sc.select_by_cv([constant, separating], y, Cs=(0.1, 1.0), n_splits=4)
    assert (index, cv) == (1, 1.0)
    assert C == 0.1  # ties between costs go to the first (smallest) one


def test_the_test_split_never_enters_the_selection():
    # Replace the test series by noise and shuffle their labels: every method's
    # chosen setting, C and cross-validation accuracy stay exactly the same.
    data = _toy_split()
    rng = np.random.default_rng(1)
    scrambled = data._replace(x_test=rng.standard_normal(data.x_test.shape),
                              y_test=rng.permutation(data.y_test))
    a = sc.compare_methods(data, grids=SMALL_GRIDS, Cs=(0.1, 10.0), n_splits=3)
    b = sc.compare_methods(scrambled, grids=SMALL_GRIDS, Cs=(0.1, 10.0), n_splits=3)
    for ra, rb in zip(a.results[:3], b.results[:3]):
        assert (ra.method, ra.setting, ra.C, ra.cv_accuracy) == (rb.method, rb.setting, rb.C, rb.cv_accuracy)


@pytest.mark.parametrize("setting", SMALL_GRIDS["RNTK"], ids=["raw", "normalised"])
def test_the_reported_test_accuracy_is_the_chosen_svm_refitted_on_all_training_series(setting):
    # One setting per run, so that both the raw and the cosine-normalised path
    # (which needs each test series' own K(x, x)) are the chosen one.
    data = _toy_split(seed=2)
    result = sc.compare_methods(data, grids={"RNTK": (setting,)}, Cs=(0.1, 10.0), n_splits=3, methods=("RNTK",))
    r = result.results[0]
    assert r.setting == setting
    k = sc.rntk_fn(r.setting["W_std"], r.setting["b_std"])
    k_train, k_test = np.asarray(k(data.x_train, None, "ntk")), np.asarray(k(data.x_test, data.x_train, "ntk"))
    if r.setting.get("normalize"):
        d_train, d_test = np.diag(k_train), np.diag(np.asarray(k(data.x_test, None, "ntk")))
        k_train = k_train / np.sqrt(np.outer(d_train, d_train))
        k_test = k_test / np.sqrt(np.outer(d_test, d_train))
    # The absolute C is the chosen relative c over the mean training diagonal (1 once
    # normalised); the SVM is fitted as (K / mean diagonal, c), the same classifier.
    unit = np.mean(np.diag(k_train))
    assert r.C == pytest.approx(r.relative_C / unit, rel=1e-12)
    expected = sc.svm_accuracy(k_train / unit, data.y_train, k_test / unit, data.y_test, r.relative_C)
    assert r.test_accuracy == expected
    # The two ramps are far apart relative to the noise (0.3 per step): every test series is right.
    assert r.test_accuracy == 1.0


def test_rntk_of_one_step_sequences_is_the_relu_ntk_written_out():
    # T = 1: Sigma = U_std^2 x x'/m + b_std^2; after ReLU and Dense(1) (W_std=1, no bias)
    # Theta = k0 + Sigma * k1 with the arc-cosine formulas of Cho & Saul (2009).
    x = np.array([[[1.0]], [[-0.5]]])
    b_std = 0.7
    sig = x[:, 0, 0][:, None] * x[:, 0, 0][None, :] + b_std**2
    d = np.sqrt(np.diag(sig))
    theta = np.arccos(np.clip(sig / np.outer(d, d), -1, 1))
    k0 = (np.outer(d, d) * np.sin(theta) + (np.pi - theta) * sig) / (2 * np.pi)
    k1 = (np.pi - theta) / (2 * np.pi)
    got = np.asarray(sc.rntk_fn(W_std=1.3, b_std=b_std)(x, None, "ntk"))
    np.testing.assert_allclose(got, k0 + sig * k1, rtol=1e-12)  # float64 throughout


def test_padded_series_are_flattened_with_zeros_and_flagged():
    x = np.array([[[1.0], [2.0], [np.nan]], [[3.0], [4.0], [5.0]]])
    np.testing.assert_array_equal(sc.flatten_series(x), [[1.0, 2.0, 0.0], [3.0, 4.0, 5.0]])
    data = _toy_split(n_per_class=3, n_test=4)
    x_train = data.x_train.copy()
    x_train[0, -2:] = np.nan
    result = sc.compare_methods(data._replace(x_train=x_train), grids=SMALL_GRIDS, Cs=(1.0,), n_splits=3,
                                methods=("RNTK", "1-NN Euclidean"))
    assert result.padded and not math.isnan(result.results[0].test_accuracy)


def test_bad_input_is_refused_with_the_function_and_argument_named():
    with pytest.raises(ValueError, match=r"stratified_folds: every class needs at least 2 series"):
        sc.stratified_folds(np.array([0, 0, 1]))
    with pytest.raises(ValueError, match=r"cv_accuracy_table: `train_grams\[0\]` must be \(2, 2\)"):
        sc.select_by_cv([np.ones((3, 3))], np.array([0, 1]))
    with pytest.raises(ValueError, match=r"cv_accuracy_table: `Cs` must be positive and increasing"):
        sc.select_by_cv([np.eye(4)], np.array([0, 1, 0, 1]), Cs=(1.0, 0.1))
    with pytest.raises(ValueError, match=r"cv_accuracy_table: a training Gram matrix's mean diagonal must be"):
        sc.select_by_cv([np.zeros((4, 4))], np.array([0, 1, 0, 1]), n_splits=2)
    with pytest.raises(ValueError, match=r"cosine_normalise: the diagonals must be > 0"):
        sc.cosine_normalise(np.eye(2), np.array([1.0, 0.0]), np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match=r"compare_methods: the RBF kernel is normalised already"):
        sc.compare_methods(_toy_split(), grids={"RBF": (dict(gamma=1.0, normalize=True),)}, methods=("RBF",))
    data = _toy_split()
    with pytest.raises(ValueError, match=r"compare_methods: `methods` entries must be among"):
        sc.compare_methods(data, methods=("SVM",))
    with pytest.raises(ValueError, match=r"compare_methods: `data.x_train` and `data.x_test` must be"):
        sc.compare_methods(data._replace(x_test=data.x_test[:, :3]))
    with pytest.raises(KeyError, match="no method 'RBF'"):
        sc.compare_methods(data, methods=("1-NN Euclidean",)).accuracy("RBF")


def _noisy_rbf_problem(seed=0, n=80, flip=0.15):
    """Two overlapping Gaussian classes in 2-D, 15 % of the labels flipped, and their RBF Gram matrix.

    A small C underfits (one class predicted everywhere) and a large C fits
    the flipped labels, so the cross-validation accuracy peaks inside the grid.
    """
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    chol = np.linalg.cholesky(np.array([[1.0, 2.85], [2.85, 9.0]]))
    x = rng.standard_normal((n, 2)) @ chol.T + np.where(y[:, None] == 0, -1.0, 1.0) * np.array([1.0, 0.0])
    labels = np.where(rng.random(n) < flip, 1 - y, y)
    return np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / 2), labels


def test_the_selection_does_not_change_when_a_gram_is_multiplied_by_a_constant():
    # C is relative to the mean training diagonal: (a K, C / a) is the SVM of (K, C).
    # Factors 2^-20 and 2^20 scale every floating-point step of the solver exactly,
    # so the tables agree exactly.
    gram, y = _noisy_rbf_problem()
    table = sc.cv_accuracy_table([gram], y)
    assert table.max() - table.min() > 0.2  # the table depends on C: the claim is not vacuous
    for factor in (2.0**-20, 2.0**20):
        np.testing.assert_array_equal(sc.cv_accuracy_table([factor * gram], y), table)
    assert sc.select_by_cv([2.0**20 * gram], y) == sc.select_by_cv([gram], y)


def test_the_grid_of_c_is_wide_enough_for_the_choice_to_sit_inside_it():
    # On the noisy problem the CV accuracy rises from the all-one-class rate at
    # c = 1e-3, peaks, and falls again as C grows to fit the flipped labels:
    # the chosen c is neither end and beats both ends.
    gram, y = _noisy_rbf_problem()
    table = sc.cv_accuracy_table([gram], y)[0]
    _, c_index = sc.choose_from_table(table[None])
    assert 0 < c_index < len(sc.RELATIVE_C_GRID) - 1
    assert table[c_index] > max(table[0], table[-1]) + 0.05


def test_cosine_normalisation_has_a_unit_diagonal_and_removes_per_series_scales():
    rng = np.random.default_rng(4)
    f = rng.standard_normal((5, 3))
    k = f @ f.T
    d = np.diag(k)
    normalised = sc.cosine_normalise(k, d, d)
    np.testing.assert_allclose(np.diag(normalised), 1.0, rtol=1e-14)
    # Rescaling series i by s_i (K -> S K S) leaves the cosine kernel unchanged.
    s = np.diag([1.0, 10.0, 0.1, 3.0, 7.0])
    ks = s @ k @ s
    np.testing.assert_allclose(sc.cosine_normalise(ks, np.diag(ks), np.diag(ks)), normalised, rtol=1e-13)


def test_ties_go_to_the_first_best_setting_and_the_middle_of_its_plateau():
    table = np.array([[0.5, 0.6, 0.7, 0.7, 0.6],
                      [0.6, 0.8, 0.8, 0.8, 0.8],    # first row reaching 0.8: plateau at indices 1-4
                      [0.8, 0.8, 0.8, 0.5, 0.5]])
    assert sc.choose_from_table(table) == (1, 2)  # lower middle of 1, 2, 3, 4
    # A plateau that reaches the end of the grid: its middle, not the end.
    assert sc.choose_from_table(np.array([[0.9, 0.9, 0.9, 0.4]])) == (0, 1)
    # A single best value at an end is chosen there (the grid is then too narrow).
    assert sc.choose_from_table(np.array([[0.4, 0.5, 0.9]])) == (0, 2)
