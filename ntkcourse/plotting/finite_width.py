"""Figures for finite networks: width scaling, linearisation gaps, empirical against analytic kernels.

The data come from :mod:`ntkcourse.finite_width`, :mod:`ntkcourse.linearize` and :mod:`ntkcourse.empirical`;
figures and ``ax``: see :mod:`ntkcourse.plotting._common`; colours, line styles and markers (colour-blind
safe, and never colour alone): :mod:`ntkcourse.plotting.palette`.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ._common import new_axes as _axes
from .palette import OKABE_ITO, REFERENCE_GREY, marker_style

__all__ = [
    "RATE_SLOPES",
    "add_rate_references",
    "plot_width_sweep",
    "plot_ntk_change",
    "plot_hessian_scaling",
    "plot_linearization_run",
    "plot_kernel_agreement",
    "plot_monte_carlo_convergence",
]


def _reference_line(ax, x, y_anchor, slope, label, ls="--"):
    """A power law ``∝ x^slope`` through ``(x[0], y_anchor)``, grey."""
    x = np.asarray(x, dtype=np.float64)
    ax.plot(x, y_anchor * (x / x[0]) ** slope, ls=ls, color=REFERENCE_GREY, lw=1, label=label)


RATE_SLOPES = (-0.5, -1.0)
"""The two rates every width-scaling figure shows: n^-1/2 (central-limit fluctuations at
initialisation; the upper bound of Lee et al. 2019) and n^-1 (the typical drift in training)."""


def add_rate_references(ax, x, y_anchor, variable="width", slopes=RATE_SLOPES):
    """Grey reference power laws ``∝ x^p`` for each ``p`` in ``slopes``, through ``(x[0], y_anchor)``.

    By default n^-1/2 (dashed) and n^-1 (dotted), so that a reader can tell the
    two rates of the finite-width story apart on any log–log figure. Returns
    the figure of ``ax``.
    """
    styles = ["--", ":", "-."]
    for i, p in enumerate(slopes):
        _reference_line(ax, x, y_anchor, p, f"∝ {variable}^{p:g}", ls=styles[i % len(styles)])
    return ax.figure


def _slope_text(sw):
    err = sw.slope_stderr
    return f"slope {sw.slope:.2f} ± {err:.2f}" if np.isfinite(err) else f"slope {sw.slope:.2f}"


def plot_width_sweep(*sweeps, ax=None, reference=True, ylabel=None):
    """One or more :class:`~ntkcourse.finite_width.WidthSweep` on log–log axes.

    Each: the mean over seeds with its standard error, the fitted slope and
    its jackknife standard error in the legend. With ``reference=True``, grey
    power laws ∝ width^-1/2 (dashed) and ∝ width^-1 (dotted) through the first
    point of the first sweep, and the slope a sweep's theory expects when it
    is neither.
    """
    if not sweeps:
        raise ValueError("plot_width_sweep: give at least one WidthSweep.")
    fig, ax = _axes(ax)
    _draw_width_sweeps(ax, sweeps, reference, ylabel)
    return fig


def _draw_width_sweeps(ax, sweeps, reference, ylabel):
    for i, sw in enumerate(sweeps):
        # Solid lines, told apart by colour and marker: dashed and dotted belong to the grey references.
        ax.errorbar(sw.widths, sw.mean, yerr=sw.stderr, ls="-", capsize=3, **marker_style(i),
                    label=f"{sw.quantity} ({_slope_text(sw)})")
        if reference and sw.expected_slope is not None and sw.expected_slope not in RATE_SLOPES:
            _reference_line(ax, sw.widths, sw.mean[0], sw.expected_slope, f"∝ width^{sw.expected_slope:g}")
    if reference:
        add_rate_references(ax, sweeps[0].widths, sweeps[0].mean[0])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("width")
    ax.set_ylabel(ylabel or (sweeps[0].quantity if len(sweeps) == 1 else "relative size"))
    ax.legend(fontsize="small")


def plot_ntk_change(change, ax=None):
    """The relative change of the NTK and of the weights in training.

    ``change``: a :class:`~ntkcourse.finite_width.TrainingChange`.
    """
    fig, ax = _axes(ax)
    _draw_width_sweeps(ax, (change.kernel, change.weights), True, "relative change after training")
    ax.set_title(f"gradient descent, learning rate {change.learning_rate:.3g}", fontsize="medium")
    return fig


def plot_hessian_scaling(scaling, ax=None):
    """Hessian spectral norm and gradient norm of the output against width.

    ``scaling``: a :class:`~ntkcourse.finite_width.HessianScaling`.
    """
    return plot_width_sweep(scaling.hessian, scaling.gradient, ax=ax, ylabel="norm at initialisation")


def plot_linearization_run(run, n_points=3, axes=None):
    """A :class:`~ntkcourse.linearize.LinearizationRun` in two panels.

    Left: the training outputs of the network (solid) and of its linearisation
    (dashed) against the step, for the first ``n_points`` points. Right: the
    RMS distance between the two models (train, and test if recorded) and the
    Taylor remainder at the network's parameters.
    """
    if axes is None:
        fig = Figure(figsize=(10.0, 4.0), layout="constrained")
        ax0, ax1 = fig.subplots(1, 2)
    else:
        ax0, ax1 = axes
        fig = ax0.figure
    steps = np.asarray(run.steps)
    every = max(1, len(steps) // 10)
    for i in range(min(n_points, run.network_train.shape[1])):
        ax0.plot(steps, run.network_train[:, i, 0], ls="-", markevery=every, label=f"network, x{i}",
                 **marker_style(i))
        ax0.plot(steps, run.linear_train[:, i, 0], ls="--", markevery=every, fillstyle="none",
                 label=f"linearised, x{i}", **marker_style(i))
    ax0.set_xlabel("gradient descent step")
    ax0.set_ylabel("output f(x)")
    ax0.legend(fontsize="small")
    positive = steps > 0
    ax1.plot(steps[positive], run.train_gap[positive], **marker_style(0), label="network vs linearised, train")
    if run.test_gap is not None:
        ax1.plot(steps[positive], run.test_gap[positive], **marker_style(1), label="network vs linearised, test")
    ax1.plot(steps[positive], run.taylor_remainder[positive], **marker_style(2),
             label="f(θ_t) − f_lin(θ_t), train")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("gradient descent step")
    ax1.set_ylabel("RMS difference")
    ax1.legend(fontsize="small")
    return fig


def plot_kernel_agreement(empirical, analytic, ax=None, label="empirical NTK"):
    """Entries of an empirical kernel against the analytic one, with the line y = x."""
    emp = np.asarray(empirical, dtype=np.float64).ravel()
    ana = np.asarray(analytic, dtype=np.float64).ravel()
    if emp.shape != ana.shape:
        raise ValueError(
            f"plot_kernel_agreement: kernels differ in size: {np.shape(empirical)} and {np.shape(analytic)}."
        )
    fig, ax = _axes(ax, figsize=(4.5, 4.5))
    lo, hi = min(emp.min(), ana.min()), max(emp.max(), ana.max())
    ax.plot([lo, hi], [lo, hi], color=REFERENCE_GREY, ls="--", lw=1, label="y = x")
    rel = np.linalg.norm(emp - ana) / np.linalg.norm(ana)
    ax.scatter(ana, emp, s=12, alpha=0.7, color=OKABE_ITO["blue"], label=f"{label} (rel. error {rel:.2g})")
    ax.set_xlabel("infinite-width kernel")
    ax.set_ylabel(label)
    ax.legend(fontsize="small")
    return fig


def plot_monte_carlo_convergence(estimates, reference, ax=None, name="ntk"):
    """Relative error of Monte Carlo kernels against the number of samples.

    ``estimates``: the list of :class:`~ntkcourse.empirical.MonteCarloKernel`
    returned when ``n_samples`` is a sequence; ``reference``: the kernel they
    estimate. Also drawn: the relative size of the standard error, and the
    1/√samples reference.
    """
    if not estimates:
        raise ValueError("plot_monte_carlo_convergence: `estimates` is empty.")
    ref = np.asarray(reference, dtype=np.float64)
    counts = np.array([e.n_samples for e in estimates], dtype=np.float64)
    errs = np.array([np.linalg.norm(getattr(e, name) - ref) for e in estimates]) / np.linalg.norm(ref)
    fig, ax = _axes(ax)
    ax.plot(counts, errs, **marker_style(0), label=f"‖mean − {name}‖ / ‖{name}‖")
    se = [getattr(e, name + "_stderr") for e in estimates]
    if all(s is not None and np.all(np.isfinite(s)) for s in se):
        ax.plot(counts, [np.linalg.norm(s) / np.linalg.norm(ref) for s in se], **marker_style(1),
                label="‖standard error‖ / ‖kernel‖")
    _reference_line(ax, counts, errs[0], -0.5, "∝ samples^-1/2")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of initialisations")
    ax.set_ylabel("relative error")
    ax.legend(fontsize="small")
    return fig
