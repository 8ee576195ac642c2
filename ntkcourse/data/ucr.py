"""UCR time-series classification sets, read from the ``.ts`` files shipped in this package.

The files (``ntkcourse/data/files/UCR/``) are copied unchanged from the
``aeon`` wheel; ``PROVENANCE.md`` there says where from, with their licence.
The reader of the ``.ts`` format (:func:`read_ts`) needs neither ``aeon`` nor
``sktime``.

Sequences are returned as ``(n, T, 1)`` arrays, the layout of
:func:`ntkcourse.stax.Recurrent`; series shorter than the longest are padded
at the end with ``NaN``, the value to give as ``mask_constant``.
"""
from __future__ import annotations

from importlib import resources
from typing import NamedTuple, Optional, Tuple

import numpy as np

__all__ = ["UCR_SETS", "TimeSeries", "UCRSplit", "read_ts", "load_ucr", "z_normalise", "pad_sequences"]

#: The sets shipped with the package.
UCR_SETS = ("ItalyPowerDemand", "ArrowHead", "GunPoint", "PickupGestureWiimoteZ")


class TimeSeries(NamedTuple):
    """The contents of one ``.ts`` file.

    Attributes:
      series: one float64 array ``(length, dimensions)`` per series, in file order.
      labels: the class label of each series as written in the file (str).
      class_labels: the labels declared by ``@classLabel``, in that order.
      header: the ``@`` header fields, lower-case keys, string values.
    """

    series: list
    labels: Tuple[str, ...]
    class_labels: Tuple[str, ...]
    header: dict


class UCRSplit(NamedTuple):
    """A UCR set with its official split.

    Attributes:
      x_train, x_test: float64 ``(n, T, 1)``, each series z-normalised (unless
        asked otherwise), padded at the end with ``NaN`` to the longest series
        of the set (train and test together).
      y_train, y_test: int class indices into ``classes``.
      lengths_train, lengths_test: the real length of each series.
      classes: the class labels of the file, in declaration order.
      name: the set's name.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    lengths_train: np.ndarray
    lengths_test: np.ndarray
    classes: Tuple[str, ...]
    name: str


def _fail(source: str, line_no: int, message: str) -> ValueError:
    return ValueError(f"read_ts: {source}, line {line_no}: {message}")


def read_ts(text: str, source: str = "<text>") -> TimeSeries:
    """Parse the sktime/aeon ``.ts`` format (as the UCR/UEA archives ship it).

    ``#`` lines are comments; ``@name value`` lines before ``@data`` form the
    header (``@classLabel true 1 2`` declares the labels); after ``@data``
    each non-empty line is one series: its dimensions separated by ``:``, each
    a comma-separated list of numbers, then (with class labels) ``:label``.
    Missing values (``?``) are refused: none of the shipped sets has any.

    Args:
      text: the contents of a ``.ts`` file.
      source: a name for error messages (e.g. the file name).

    Raises:
      ValueError: naming the line, for a malformed header, a series with a
        non-numeric value, a label not declared, dimensions of different
        lengths, lengths that contradict ``@equalLength``/``@seriesLength``,
        or no ``@data`` section.
    """
    header, series, labels = {}, [], []
    in_data = False
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise _fail(source, line_no,
                            f"expected a '@' header line or '#' comment before @data, got {line[:40]!r}")
            key, _, value = line[1:].partition(" ")
            key = key.lower()
            if key == "data":
                in_data = True
                continue
            header[key] = value.strip()
            continue
        has_labels = header.get("classlabel", "false").split()[0].lower() == "true"
        fields = line.split(":")
        label = None
        if has_labels:
            if len(fields) < 2:
                raise _fail(source, line_no, "expected values followed by ':label'")
            label = fields.pop().strip()
        dims = []
        for field in fields:
            parts = field.split(",")
            try:
                values = np.array([float(p) for p in parts], dtype=np.float64)
            except ValueError:
                bad = next(p for p in parts if not _is_number(p))
                raise _fail(source, line_no, f"expected comma-separated numbers, got {bad.strip()[:20]!r}"
                            + (" (missing values '?' are not supported)" if bad.strip() == "?" else "")) from None
            if not np.all(np.isfinite(values)):
                raise _fail(source, line_no, "the series contains NaN or infinite values")
            dims.append(values)
        if len({len(d) for d in dims}) != 1:
            raise _fail(source, line_no, f"the dimensions of one series differ in length: {[len(d) for d in dims]}")
        series.append(np.stack(dims, axis=1))
        labels.append(label)
    if not in_data:
        raise ValueError(f"read_ts: {source}: no '@data' line; is this a .ts file?")
    if not series:
        raise ValueError(f"read_ts: {source}: no series after '@data'.")
    class_labels: Tuple[str, ...] = ()
    if header.get("classlabel", "false").split()[0].lower() == "true":
        class_labels = tuple(header["classlabel"].split()[1:])
        unknown = sorted(set(labels) - set(class_labels))
        if unknown:
            raise ValueError(f"read_ts: {source}: labels {unknown[:5]} are not among @classLabel {class_labels}.")
    lengths = {len(s) for s in series}
    if header.get("equallength", "").lower() == "true" and len(lengths) > 1:
        raise ValueError(f"read_ts: {source}: @equalLength true but the series have lengths {sorted(lengths)[:5]}...")
    declared = header.get("serieslength")
    if declared is not None and lengths != {int(declared)}:
        raise ValueError(
            f"read_ts: {source}: @seriesLength {declared} but the series have lengths {sorted(lengths)[:5]}."
        )
    return TimeSeries(series, tuple(labels), class_labels, header)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def z_normalise(series: np.ndarray) -> np.ndarray:
    r"""``(x - mean) / std`` of one series ``(length, dimensions)``, per dimension,
    over its own time steps (population std). A constant dimension has std 0:
    it becomes zeros (only the mean is subtracted).

    This is the UCR archive's convention (Dau et al. 2019: most sets ship
    already z-normalised; doing it again changes them only by round-off).
    """
    mean = series.mean(axis=0)
    std = series.std(axis=0)
    return (series - mean) / np.where(std > 0, std, 1.0)


def pad_sequences(series, length: Optional[int] = None, value: float = np.nan) -> np.ndarray:
    """Stack series ``(length_i, d)`` into ``(n, length, d)``, padding at the end with ``value``."""
    longest = max(len(s) for s in series)
    length = longest if length is None else length
    if length < longest:
        raise ValueError(f"pad_sequences: `length` must be at least the longest series, {longest}; got {length}.")
    out = np.full((len(series), length, series[0].shape[1]), value, dtype=np.float64)
    for i, s in enumerate(series):
        out[i, : len(s)] = s
    return out


def _read_file(name: str, part: str) -> TimeSeries:
    path = resources.files("ntkcourse.data").joinpath("files", "UCR", f"{name}_{part}.ts")
    with path.open("r", encoding="utf-8") as f:
        return read_ts(f.read(), f"{name}_{part}.ts")


def load_ucr(name: str, normalise: bool = True) -> UCRSplit:
    """Load a shipped UCR set with its official TRAIN/TEST split, no download.

    Args:
      name: one of :data:`UCR_SETS`.
      normalise: z-normalise each series (:func:`z_normalise`); default True.

    Returns:
      A :class:`UCRSplit`; shorter series padded with ``NaN`` at the end
      (give ``mask_constant=np.nan`` to ``kernel_fn``).

    Example:
      >>> data = load_ucr("ItalyPowerDemand")
      >>> data.x_train.shape, data.x_test.shape
      ((67, 24, 1), (1029, 24, 1))
    """
    if name not in UCR_SETS:
        raise ValueError(f"load_ucr: `name` must be one of {UCR_SETS}; got {name!r}.")
    train, test = _read_file(name, "TRAIN"), _read_file(name, "TEST")
    classes = train.class_labels
    prep = z_normalise if normalise else (lambda s: s)
    longest = max(len(s) for s in train.series + test.series)

    def arrays(part: TimeSeries):
        x = pad_sequences([prep(s) for s in part.series], longest)
        y = np.array([classes.index(lab) for lab in part.labels], dtype=np.int64)
        return x, y, np.array([len(s) for s in part.series], dtype=np.int64)

    x_train, y_train, l_train = arrays(train)
    x_test, y_test, l_test = arrays(test)
    return UCRSplit(x_train, y_train, x_test, y_test, l_train, l_test, classes, name)
