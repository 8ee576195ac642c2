"""Offline data loaders (ntkcourse.data): digits, the small UCI sets, splits.

Claims: the documented preprocessing holds exactly (each digit image has mean
0 and variance 1 over its pixels; UCI features are standardised with the
training split's statistics only); layouts are those stax expects; splits are
disjoint, cover every input, and depend only on the seed; bad arguments are
named.
"""
import numpy as np
import pytest

from ntkcourse.data import UCI_SETS, load_digits, load_uci, one_hot, split_indices


def test_digits_are_all_1797_images_in_nhwc_with_labels_0_to_9():
    d = load_digits()
    assert d.images.shape == (1797, 8, 8, 1) and d.images.dtype == np.float64
    assert d.labels.shape == (1797,) and set(np.unique(d.labels)) == set(range(10))


def test_each_digit_image_is_standardised_over_its_pixels():
    x = load_digits(flat=True).images
    np.testing.assert_allclose(x.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(x.std(axis=1), 1.0, rtol=1e-12)


def test_flat_digits_are_the_images_flattened():
    np.testing.assert_array_equal(load_digits(flat=True).images, load_digits().images.reshape(1797, 64))


def test_split_is_disjoint_covers_everything_and_depends_only_on_the_seed():
    s = split_indices(50, 0.2, seed=3)
    assert len(s.test) == 10 and len(s.train) == 40
    assert np.array_equal(np.sort(np.concatenate([s.train, s.test])), np.arange(50))
    again = split_indices(50, 0.2, seed=3)
    assert np.array_equal(s.test, again.test)
    assert not np.array_equal(s.test, split_indices(50, 0.2, seed=4).test)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(n=10, test_size=0, seed=0), r"split_indices: `test_size` must be between 1 and 9"),
    (dict(n=10, test_size=1.5, seed=0), r"`test_size` must be an integer count or a fraction"),
    (dict(n=10, test_size=3, seed=0.5), r"`seed` must be an integer, got 0.5"),
    (dict(n=0, test_size=1, seed=0), r"`n` must be a positive integer, got 0"),
])
def test_bad_split_arguments_are_named(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        split_indices(**kwargs)


@pytest.mark.parametrize("name", UCI_SETS)
def test_uci_features_are_standardised_on_the_training_split_only(name):
    s = load_uci(name, test_size=0.25, seed=1)
    np.testing.assert_allclose(s.x_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(s.x_train.std(axis=0), 1.0, rtol=1e-12)
    # The test split uses the training statistics: its mean is not forced to 0.
    assert np.abs(s.x_test.mean(axis=0)).max() > 1e-6
    assert s.x_train.shape[1] == s.x_test.shape[1] and len(s.y_train) == len(s.x_train)


def test_unknown_uci_set_is_named():
    with pytest.raises(ValueError, match=r"load_uci: `name` must be 'iris' or 'wine' or 'breast_cancer', got 'mnist'"):
        load_uci("mnist")


def test_centred_one_hot_rows_sum_to_zero_and_mark_the_class():
    y = one_hot(np.array([0, 2, 1]), 3)
    np.testing.assert_allclose(y.sum(axis=1), 0.0, atol=1e-15)
    assert list(y.argmax(axis=1)) == [0, 2, 1]


def test_one_hot_refuses_labels_outside_the_classes():
    with pytest.raises(ValueError, match=r"one_hot: `labels` must be integers in \[0, 3\)"):
        one_hot(np.array([0, 3]), 3)
