"""The colours, line styles and markers of every figure of :mod:`ntkcourse.plotting`.

Colours come from the palette of Okabe & Ito (2008), *Color Universal Design*
(https://jfly.uni-koeln.de/color/), chosen so that its colours stay apart for
readers with the common forms of colour blindness (deuteranopia, protanopia)
as well as for everyone else. Its yellow is kept out of :data:`LINE_COLOURS`:
against a white background it is too faint for a thin line.

Colour is never the only thing that tells two curves apart: series ``i`` of a
figure also gets its own marker (:data:`MARKERS`) and, where the line style
does not already carry a meaning of its own (network solid, kernel dashed),
its own line style (:data:`LINE_STYLES`). A figure then still reads in a
black-and-white print. ``tests/plotting/test_plotting_palette.py`` checks the
colours' distances under simulated colour-vision deficiencies.
"""
from __future__ import annotations

import numbers

from ..validation import fail

__all__ = [
    "OKABE_ITO",
    "LINE_COLOURS",
    "LINE_STYLES",
    "MARKERS",
    "REFERENCE_GREY",
    "line_style",
    "marker_style",
    "series_style",
]

#: The eight colours of Okabe & Ito (2008), by their names, as sRGB hex codes.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}

#: Colours of the series of a figure, in order (Okabe–Ito without yellow).
LINE_COLOURS = tuple(OKABE_ITO[name] for name in (
    "blue", "vermillion", "bluish green", "reddish purple", "orange", "sky blue", "black"))

#: Line styles of the series, in order; they repeat after four series.
LINE_STYLES = ("-", "--", "-.", ":")

#: Markers of the series, in order; one for each colour.
MARKERS = ("o", "s", "^", "D", "v", "P", "X")

#: Reference lines and guides (power laws, y = x): mid grey, behind the data.
REFERENCE_GREY = "0.45"


def _index(i, where) -> int:
    if isinstance(i, bool) or not isinstance(i, numbers.Integral) or i < 0:
        raise fail(where, "i", "an integer >= 0 (the index of the series)", i)
    return int(i)


def line_style(i: int) -> dict:
    """Colour and line style of series ``i``, as keyword arguments of ``Axes.plot``.

    Example:
        >>> line_style(1)
        {'color': '#D55E00', 'linestyle': '--'}
    """
    i = _index(i, "line_style")
    return {"color": LINE_COLOURS[i % len(LINE_COLOURS)], "linestyle": LINE_STYLES[i % len(LINE_STYLES)]}


def marker_style(i: int) -> dict:
    """Colour and marker of series ``i``, as keyword arguments of ``Axes.plot``.

    Example:
        >>> marker_style(2)
        {'color': '#009E73', 'marker': '^'}
    """
    i = _index(i, "marker_style")
    return {"color": LINE_COLOURS[i % len(LINE_COLOURS)], "marker": MARKERS[i % len(MARKERS)]}


def series_style(i: int) -> dict:
    """Colour, line style and marker of series ``i``.

    No two of the first seven series share a colour or a marker; line styles
    repeat after four series.

    Example:
        >>> series_style(0)
        {'color': '#0072B2', 'linestyle': '-', 'marker': 'o'}
    """
    i = _index(i, "series_style")
    return {**line_style(i), "marker": marker_style(i)["marker"]}
