"""The UCR loader: the official splits' sizes, lengths, normalisation, unequal
lengths, and clear errors for malformed ``.ts`` text.
"""
from __future__ import annotations

import numpy as np
import pytest

from ntkcourse.data import load_ucr, read_ts
from ntkcourse.data.ucr import z_normalise

# Sizes from the UCR archive's data-set table (Dau et al. 2019): train, test, length, classes.
ARCHIVE_SIZES = {
    "ItalyPowerDemand": (67, 1029, 24, 2),
    "ArrowHead": (36, 175, 251, 3),
    "GunPoint": (50, 150, 150, 2),
}


@pytest.mark.parametrize("name", sorted(ARCHIVE_SIZES))
def test_official_split_sizes_lengths_and_classes(name):
    n_train, n_test, length, n_classes = ARCHIVE_SIZES[name]
    d = load_ucr(name)
    assert d.x_train.shape == (n_train, length, 1) and d.x_test.shape == (n_test, length, 1)
    assert len(d.classes) == n_classes
    assert set(d.y_train) == set(range(n_classes)) and set(d.y_test) == set(range(n_classes))
    assert np.all(np.isfinite(d.x_train)) and np.all(np.isfinite(d.x_test))


def test_each_series_is_z_normalised():
    d = load_ucr("GunPoint")
    x = d.x_train[..., 0]
    # mean 0, population std 1 per series, to float64 round-off of 150 terms
    np.testing.assert_allclose(x.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(x.std(axis=1), 1.0, rtol=1e-12)


def test_normalise_false_keeps_the_file_values():
    raw = load_ucr("PickupGestureWiimoteZ", normalise=False)
    # First value of the first training series, as written in the file.
    assert raw.x_train[0, 0, 0] == 1.0
    assert abs(np.nanmean(raw.x_train[0, :, 0])) > 0.5  # this set is not normalised in the file


def test_unequal_lengths_are_padded_with_nan_at_the_end():
    d = load_ucr("PickupGestureWiimoteZ")
    assert d.x_train.shape == (50, 361, 1) and d.x_test.shape == (50, 361, 1)
    assert d.lengths_train.min() == 29 and d.lengths_train.max() == 361 and d.lengths_test.max() == 324
    for x, n in zip(d.x_train[..., 0], d.lengths_train):
        assert np.all(np.isfinite(x[:n])) and np.all(np.isnan(x[n:]))
        np.testing.assert_allclose(x[:n].mean(), 0.0, atol=1e-12)


def test_z_normalise_of_a_constant_series_is_zero():
    np.testing.assert_array_equal(z_normalise(np.full((5, 1), 3.0)), np.zeros((5, 1)))


GOOD = "#c\n@problemName t\n@classLabel true a b\n@data\n1,2,3:a\n4,5,6:b\n"


def test_read_ts_reads_values_and_labels():
    ts = read_ts(GOOD)
    np.testing.assert_array_equal(ts.series[1][:, 0], [4.0, 5.0, 6.0])
    assert ts.labels == ("a", "b") and ts.class_labels == ("a", "b")


@pytest.mark.parametrize(
    "text, message",
    [
        (GOOD.replace("4,5,6", "4,x,6"), r"line 6: expected comma-separated numbers, got 'x'"),
        (GOOD.replace("4,5,6", "4,?,6"), r"missing values '\?' are not supported"),
        (GOOD.replace("6:b", "6:c"), r"labels \['c'\] are not among @classLabel"),
        (GOOD.replace("@data\n", ""), r"line 4: expected a '@' header line"),
        ("@problemName t\n", r"no '@data' line"),
        (GOOD.replace("@data", "@seriesLength 4\n@data"), r"@seriesLength 4 but the series have lengths \[3\]"),
        (GOOD.replace("4,5,6:b", "4,5:b").replace("@data", "@equalLength true\n@data"),
         r"@equalLength true but the series have lengths"),
    ],
)
def test_malformed_ts_text_gives_a_clear_error(text, message):
    with pytest.raises(ValueError, match=message):
        read_ts(text, "bad.ts")


def test_unknown_set_is_refused():
    with pytest.raises(ValueError, match=r"load_ucr: `name` must be one of .*got 'Wafer'"):
        load_ucr("Wafer")
