"""The small-data protocol (ntkcourse.small_data): folds, the hyper-parameter search, a sanity level on iris.

Claims: every outer fold gives one accuracy and one chosen setting from the
grid; the inner search picks the better of two settings; an NTK-SVM
classifies iris about as well as the literature reports (~95%); unknown
methods are named.
"""
import numpy as np
import pytest

from ntkcourse.small_data import cross_validated_accuracy, load_small_data


@pytest.fixture(scope="module")
def iris():
    return load_small_data("iris")


def test_one_accuracy_and_one_choice_per_outer_fold(iris):
    scores = cross_validated_accuracy(*iris, "ntk-svm", folds=4, repeats=1, grid=[{"depth": 1, "C": 1.0}])
    assert scores.accuracies.shape == (4,) and scores.chosen == [{"depth": 1, "C": 1.0}] * 4


def test_ntk_svm_on_iris_is_as_accurate_as_reported(iris):
    # Arora et al. 2020 and the UCI literature: ~95% on iris; 4 folds of 37 points give a spread of ~4%.
    scores = cross_validated_accuracy(*iris, "ntk-svm", folds=4, repeats=1, grid=[{"depth": 2, "C": 1.0}])
    assert np.mean(scores.accuracies) >= 0.9


def test_the_inner_search_rejects_a_useless_setting(iris):
    # C = 1e-6 makes the SVM predict one class (~33% on iris); the inner search must pick C = 1.
    grid = [{"depth": 1, "C": 1e-6}, {"depth": 1, "C": 1.0}]
    scores = cross_validated_accuracy(*iris, "ntk-svm", folds=4, repeats=1, grid=grid)
    assert all(c["C"] == 1.0 for c in scores.chosen)


def test_an_unknown_method_is_named(iris):
    with pytest.raises(ValueError, match="cross_validated_accuracy: `method` must be 'ntk-svm' or .* got 'boosting'"):
        cross_validated_accuracy(*iris, "boosting")
