"""The figures' palette stays readable for colour-blind readers, and colour is never the only cue.

Colour-vision deficiencies are simulated with the matrices of Machado, Oliveira
& Fernandes (2009), "A physiologically-based model for simulation of color
vision deficiency" (IEEE TVCG 15(6)), severity 1.0 (dichromacy), applied to
linear sRGB. Colours are compared by the CIE 1976 colour difference ΔE*ab
(Euclidean distance in CIELAB, D65 white). A ΔE*ab of about 2.3 is a just
noticeable difference (Sharma 2003, *Digital Color Imaging Handbook*); two
thin curves of a figure should be told apart at a glance, not on close
inspection, so every pair of series colours must stay at least
``MIN_DELTA_E = 15`` apart (more than six just noticeable differences) for
every vision, typical or dichromatic.
"""
import itertools

import numpy as np
import pytest
from matplotlib.colors import to_hex, to_rgb

from ntkcourse.finite_width import WidthSweep
from ntkcourse.plotting import palette
from ntkcourse.plotting.dynamics import plot_output_trajectories, plot_spectral_bias
from ntkcourse.plotting.finite_width import plot_width_sweep

MIN_DELTA_E = 15.0

# Machado et al. (2009), Table 1 at severity 1.0; each row sums to 1, so greys stay grey.
DICHROMACY = {
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968],
                              [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868],
                            [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779],
                            [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}
VISIONS = {"typical": np.eye(3), **DICHROMACY}

# Linear sRGB to CIE XYZ (IEC 61966-2-1, D65 white).
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])


def linear_rgb(colour) -> np.ndarray:
    """The sRGB transfer function undone: a matplotlib colour as linear RGB in [0, 1]."""
    c = np.asarray(to_rgb(colour))
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def cielab(rgb_linear) -> np.ndarray:
    """CIELAB (L*, a*, b*) of a linear-RGB colour, relative to the D65 white."""
    xyz = SRGB_TO_XYZ @ rgb_linear / (SRGB_TO_XYZ @ np.ones(3))
    delta = 6 / 29
    f = np.where(xyz > delta**3, np.cbrt(xyz), xyz / (3 * delta**2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def seen_as(colour, vision) -> np.ndarray:
    """CIELAB of a colour as a reader with ``vision`` sees it (Machado's matrix, clipped to the gamut)."""
    return cielab(np.clip(VISIONS[vision] @ linear_rgb(colour), 0.0, 1.0))


def closest_pair(colours, vision):
    """(ΔE*ab, colour, colour) of the two colours that ``vision`` sees as most alike."""
    return min((float(np.linalg.norm(seen_as(a, vision) - seen_as(b, vision))), a, b)
               for a, b in itertools.combinations(colours, 2))


def test_cielab_conversion_matches_published_values():
    """SRGB red and blue in CIELAB (D65): (53.24, 80.09, 67.20) and (32.30, 79.19, -107.86), to 0.01."""
    np.testing.assert_allclose(cielab(linear_rgb("#FF0000")), [53.2408, 80.0925, 67.2032], atol=0.01)
    np.testing.assert_allclose(cielab(linear_rgb("#0000FF")), [32.2970, 79.1875, -107.8602], atol=0.01)


def test_simulated_deuteranopia_confuses_red_and_green_and_keeps_greys():
    """The simulation is the real one: matplotlib's default red and green (C3, C2) fall within
    ΔE*ab < 10 of each other for a deuteranope (about 40 for typical vision), and a grey stays grey.
    """
    assert closest_pair(["tab:red", "tab:green"], "deuteranopia")[0] < 10
    assert closest_pair(["tab:red", "tab:green"], "typical")[0] > 30
    grey = seen_as("0.5", "deuteranopia")
    np.testing.assert_allclose(grey[1:], 0.0, atol=1e-3)  # a* = b* = 0 up to the matrix's 6 digits


@pytest.mark.parametrize("vision", list(VISIONS))
def test_series_colours_stay_apart_for_every_vision(vision):
    distance, a, b = closest_pair(palette.LINE_COLOURS, vision)
    assert distance >= MIN_DELTA_E, f"{a} and {b} are only ΔE*ab = {distance:.1f} apart for {vision}"


def test_the_check_rejects_matplotlibs_default_colours_under_deuteranopia():
    """The threshold has teeth: the first seven colours of matplotlib's default cycle fail it."""
    default = [to_hex(f"C{i}") for i in range(7)]
    assert closest_pair(default, "deuteranopia")[0] < MIN_DELTA_E


def test_series_styles_differ_in_more_than_colour():
    """The first seven series differ pairwise in colour and in marker (a black-and-white print tells them apart)."""
    styles = [palette.series_style(i) for i in range(len(palette.LINE_COLOURS))]
    assert len({s["color"] for s in styles}) == len({s["marker"] for s in styles}) == len(styles)


def test_series_style_names_the_bad_index():
    with pytest.raises(ValueError, match=r"series_style: `i` must be an integer >= 0.*got -1"):
        palette.series_style(-1)


def _styles(lines):
    return [(line.get_color(), line.get_linestyle(), line.get_marker()) for line in lines]


def test_spectral_bias_figure_gives_each_frequency_its_own_colour_line_style_and_marker():
    times = np.geomspace(1.0, 100.0, 30)
    amplitudes = np.exp(-np.outer(times, [0.1, 0.03, 0.01, 0.003]))
    fig = plot_spectral_bias(times, amplitudes, [1, 2, 4, 8])
    styles = _styles(fig.axes[0].lines)
    assert len(styles) == 4
    for k in range(3):  # colours, line styles, markers: each pairwise different
        assert len({s[k] for s in styles}) == 4, styles
    assert {to_hex(s[0]).upper() for s in styles} <= set(palette.LINE_COLOURS)


def test_width_sweep_figure_tells_sweeps_apart_by_marker_and_references_by_grey_line_style():
    widths = np.array([64, 128, 256, 512])
    sweeps = [WidthSweep(widths, np.outer(widths ** -p, [1.0, 1.1]), f"q{p}", None) for p in (0.5, 0.75, 1.0)]
    ax = plot_width_sweep(*sweeps).axes[0]
    data = [container.lines[0] for container in ax.containers]  # each errorbar's data line
    references = [line for line in ax.lines if line.get_color() == palette.REFERENCE_GREY]
    assert len({line.get_marker() for line in data}) == 3
    assert {line.get_linestyle() for line in data} == {"-"}
    assert {line.get_linestyle() for line in references} == {"--", ":"}


def test_output_trajectories_pair_network_and_kernel_by_marker_not_colour_alone():
    """Point i: network solid and kernel dashed, both with point i's marker; points differ in marker."""
    times = np.linspace(0.0, 1.0, 20)
    outputs = np.outer(times, [1.0, 2.0, 3.0])
    lines = plot_output_trajectories(times, outputs, outputs * 1.01, n_points=3).axes[0].lines
    network, kernel = lines[0::2], lines[1::2]
    assert [line.get_linestyle() for line in network] == ["-"] * 3
    assert [line.get_linestyle() for line in kernel] == ["--"] * 3
    assert [line.get_marker() for line in network] == [line.get_marker() for line in kernel]
    assert len({line.get_marker() for line in network}) == 3
