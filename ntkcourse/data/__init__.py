"""Offline data sets of the course, as arrays in the layouts ``ntkcourse.stax`` expects.

Nothing here downloads: every loader reads data that ships inside an installed
package (scikit-learn's bundled sets) or inside this package (small vendored
files, with their licence next to them). Each loader documents its fixed
preprocessing and splits by an explicit seed.
"""

from .mutag import MutagData, load_mutag

__all__ = ["MutagData", "load_mutag"]
