"""Offline data sets of the course, as arrays in the layouts ``ntkcourse.stax`` expects.

Nothing here downloads: every loader reads data that ships inside an installed
package (scikit-learn's bundled sets) or inside this package (small vendored
files, with their licence next to them). Each loader documents its fixed
preprocessing and splits by an explicit seed.
"""
from .digits import Digits, load_digits, one_hot
from .mutag import MutagData, load_mutag
from .splits import Split, split_indices
from .synthetic import CircleData, circle_data, sphere_data
from .uci import UCI_SETS, TabularSplit, load_uci
from .ucr import UCR_SETS, UCRSplit, load_ucr, read_ts

__all__ = ["CircleData", "Digits", "MutagData", "Split", "TabularSplit", "UCI_SETS", "UCR_SETS", "UCRSplit",
           "circle_data", "load_digits", "load_mutag", "load_uci", "load_ucr", "one_hot", "read_ts", "sphere_data",
           "split_indices"]
