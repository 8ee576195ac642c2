"""What the figure modules share: the axes to draw on, input checks, the log–log slope.

Every plotting function of :mod:`ntkcourse.plotting` draws on a new
:class:`matplotlib.figure.Figure` (no pyplot state, so nothing leaks between
notebook cells) or, when ``ax`` is given, on that axes only — titles, labels,
scales and legends included — and returns the figure.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..fitting import fit_loglog_slope

__all__ = ["fit_loglog_slope", "new_axes", "vector"]


def new_axes(ax, figsize=(6.0, 4.0)):
    """``(figure, ax)``: the given axes and its figure, or a new figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def vector(values, name):
    """``values`` as a 1-D float64 array; a ``ValueError`` naming ``name`` otherwise."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D, got shape {arr.shape}.")
    return arr
