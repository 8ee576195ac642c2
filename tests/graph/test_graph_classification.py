"""``ntkcourse.graph_classification``: the SVM protocols on precomputed kernels."""
from __future__ import annotations

import numpy as np
import pytest

from ntkcourse.graph_classification import (
    MUTAG_GRID, grid_search, nested_cv, normalise_gram, stratified_folds, svm_fold_accuracies,
)


def _toy(seed=0, n=60, noise=0.0):
    """Two Gaussian clouds in 2-D and their linear kernel; labels ±1."""
    rng = np.random.default_rng(seed)
    y = np.where(np.arange(n) % 2 == 0, 1, -1)
    x = rng.standard_normal((n, 2)) * 0.3 + y[:, None] * np.array([1.0, 0.0])
    x[:, 1] += 1.0  # keep every diagonal entry positive
    flip = rng.random(n) < noise
    return x @ x.T, np.where(flip, -y, y)


def test_normalised_gram_has_unit_diagonal_and_keeps_cosines():
    k, _ = _toy()
    kn = normalise_gram(k)
    np.testing.assert_allclose(np.diag(kn), 1.0, rtol=1e-14)
    assert kn[0, 1] == pytest.approx(k[0, 1] / np.sqrt(k[0, 0] * k[1, 1]), rel=1e-14)


def test_normalise_gram_rejects_a_zero_diagonal():
    with pytest.raises(ValueError,
                       match=r"^normalise_gram: the diagonal of `gram` must be positive and finite, got an entry 0\.0\.$"):
        normalise_gram(np.zeros((2, 2)))


def test_separable_classes_are_classified_perfectly_on_every_fold():
    k, y = _toy()
    acc = svm_fold_accuracies(normalise_gram(k), y, [1.0, 100.0], stratified_folds(y, 5, 0))
    assert acc.shape == (2, 5)
    assert np.all(acc == 1.0)


def test_grid_search_reports_the_best_mean_row_and_its_spread():
    k, y = _toy(noise=0.2)
    folds = stratified_folds(y, 5, 0)
    grams = [normalise_gram(k), np.eye(len(y))]  # the identity kernel cannot generalise
    result = grid_search(grams, y, [0.01, 1.0, 100.0], folds)
    means = result.accuracies.mean(axis=2)
    assert result.best_setting == 0
    assert result.mean == pytest.approx(means.max())
    assert result.std == pytest.approx(result.accuracies[0, result.best_c].std())


def test_nested_cv_with_a_single_choice_is_plain_cross_validation():
    # With one kernel and one C there is nothing to select: each outer fold's
    # accuracy is that of the SVM trained on the rest.
    k, y = _toy(noise=0.25, seed=3)
    folds = stratified_folds(y, 5, 1)
    gram = normalise_gram(k)
    nested = nested_cv([gram], y, [1.0], folds, inner_splits=3)
    np.testing.assert_array_equal(nested.accuracies, svm_fold_accuracies(gram, y, [1.0], folds)[0])
    assert nested.chosen == [(0, 0)] * 5


def test_mutag_grid_is_the_authors_grid_with_and_without_jumping_knowledge():
    assert len(MUTAG_GRID) == 24
    assert {g["num_layers"] for g in MUTAG_GRID} == {2, 4}
    assert {g["num_mlp_layers"] for g in MUTAG_GRID} == {1, 2, 3}
    assert {g["jk"] for g in MUTAG_GRID} == {True, False}
    assert {g["scale"] for g in MUTAG_GRID} == {"uniform", "degree"}
