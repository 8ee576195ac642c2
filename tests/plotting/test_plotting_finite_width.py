"""The finite-width figures: each returns a matplotlib Figure with labelled axes, from data given to it.

The data are made up here (the functions only draw); the measurements themselves are tested in
test_finite_width.py, test_linearize.py and test_empirical.py.
"""
import numpy as np
import pytest
from matplotlib.figure import Figure

from ntkcourse.empirical import MonteCarloKernel
from ntkcourse.finite_width import HessianScaling, TrainingChange, WidthSweep
from ntkcourse.linearize import LinearizationRun
from ntkcourse.plotting.finite_width import (
    plot_hessian_scaling,
    plot_kernel_agreement,
    plot_linearization_run,
    plot_monte_carlo_convergence,
    plot_ntk_change,
    plot_width_sweep,
)

WIDTHS = np.array([64, 256, 1024])


def _sweep(slope, label, expected=-0.5):
    rng = np.random.default_rng(0)
    values = WIDTHS[:, None] ** slope * (1 + 0.05 * rng.standard_normal((3, 4)))
    return WidthSweep(WIDTHS, values, label, expected)


def _labelled(fig):
    assert isinstance(fig, Figure)
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel()
    return fig


def test_width_sweep_plot_shows_fitted_and_expected_slopes():
    fig = _labelled(plot_width_sweep(_sweep(-0.5, "‖Θ̂ − Θ‖ / ‖Θ‖")))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("slope -0.5" in t for t in legend) and any("width^-0.5" in t for t in legend)


def test_width_sweep_plot_draws_both_rates_and_the_slope_error():
    # Every scaling figure shows n^-1/2 and n^-1 side by side, and the fitted slope with its
    # jackknife error (the sweep has 4 seeds, so the error is finite).
    fig = plot_width_sweep(_sweep(-1.0, "drift"))
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("width^-0.5" in t for t in legend) and any("width^-1" == t[-8:] for t in legend)
    assert any("slope -1.0" in t and "±" in t for t in legend)


def test_training_change_and_hessian_plots():
    change = TrainingChange(_sweep(-1.0, "kernel"), _sweep(-0.5, "weights", None), {}, np.zeros((3, 4)), 0.1)
    _labelled(plot_ntk_change(change))
    _labelled(plot_hessian_scaling(HessianScaling(_sweep(-0.5, "hessian"), _sweep(0.0, "gradient", 0.0))))


def test_linearization_run_plot_has_two_panels():
    steps = np.array([0, 10, 100])
    net = np.random.default_rng(1).standard_normal((3, 5, 1))
    run = LinearizationRun(steps, net, net + 1e-3, net[:, :2], net[:, :2] - 1e-3, np.ones(3), np.ones(3),
                           np.array([0.0, 1e-4, 1e-3]), None, None)
    fig = _labelled(plot_linearization_run(run))
    assert len(fig.axes) == 2


def test_kernel_agreement_and_monte_carlo_plots():
    k = np.eye(3) + 0.5
    _labelled(plot_kernel_agreement(k + 0.01, k))
    with pytest.raises(ValueError, match="differ in size"):
        plot_kernel_agreement(k, k[:2])
    estimates = [MonteCarloKernel(None, k + 1 / np.sqrt(n), None, np.full((3, 3), 1 / np.sqrt(n)), n)
                 for n in (10, 40, 160)]
    _labelled(plot_monte_carlo_convergence(estimates, k))
