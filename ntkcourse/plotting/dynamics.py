"""Figures for training dynamics, spectra, ensembles and kernel approximations.

They draw what :mod:`ntkcourse.dynamics`, :mod:`ntkcourse.inference`, :mod:`ntkcourse.spectral`,
:mod:`ntkcourse.approximations` and :mod:`ntkcourse.training` compute, and nothing else; how they use a
figure or a given ``ax`` is said once, in :mod:`ntkcourse.plotting._common`; their colours, line styles
and markers (colour-blind safe, and never colour alone) in :mod:`ntkcourse.plotting.palette`.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ._common import fit_loglog_slope
from ._common import new_axes as _axes
from ._common import vector as _vector
from .palette import LINE_STYLES, OKABE_ITO, REFERENCE_GREY, line_style, marker_style, series_style

__all__ = [
    "plot_loss_curves",
    "plot_output_trajectories",
    "plot_function_snapshots",
    "plot_spectrum",
    "plot_mode_convergence",
    "plot_spectral_bias",
    "plot_ensemble",
    "plot_approximation_error",
    "plot_width_scaling",
]


def __getattr__(name):
    # The old second name of the one slope helper, kept working for old code.
    if name == "loglog_slope":
        import warnings

        warnings.warn("ntkcourse.plotting.dynamics.loglog_slope is ntkcourse.fitting.fit_loglog_slope; use that name.",
                      DeprecationWarning, stacklevel=2)
        return fit_loglog_slope
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _sparse(t):
    """``markevery`` for a curve of ``len(t)`` points: about ten markers, whatever its length."""
    return max(1, len(t) // 10)


def plot_loss_curves(times, loss, kernel_loss=None, *, labels=("network", "kernel prediction"),
                     xlabel="step", ax=None) -> Figure:
    """Training loss ``½Σᵢ(f(xᵢ) − yᵢ)²`` against time, with the closed-form prediction overlaid (dashed).

    ``loss`` may be (T,) or a dict ``{label: (T,)}`` of several runs.
    """
    fig, ax = _axes(ax)
    t = _vector(times, "times")
    runs = loss if isinstance(loss, dict) else {labels[0]: loss}
    for i, (label, values) in enumerate(runs.items()):
        ax.plot(t, _vector(values, "loss"), label=label, markevery=_sparse(t), **series_style(i))
    if kernel_loss is not None:
        ax.plot(t, _vector(kernel_loss, "kernel_loss"), "k--", label=labels[1])
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("training loss")
    ax.legend()
    return fig


def plot_output_trajectories(times, outputs, kernel_outputs=None, *, n_points=4, xlabel="step",
                             ylabel="output f(x)", ax=None) -> Figure:
    """Outputs on a few points against time: network (solid) and kernel prediction (dashed, same colour).

    ``outputs``/``kernel_outputs``: (T, n) or (T, n, 1).
    """
    fig, ax = _axes(ax)
    t = _vector(times, "times")
    out = np.asarray(outputs, dtype=np.float64).reshape(len(t), -1)
    ker = None if kernel_outputs is None else np.asarray(kernel_outputs, dtype=np.float64).reshape(len(t), -1)
    for i in range(min(int(n_points), out.shape[1])):
        ax.plot(t, out[:, i], "-", label=f"point {i}", markevery=_sparse(t), **marker_style(i))
        if ker is not None:
            ax.plot(t, ker[:, i], "--", markevery=_sparse(t), fillstyle="none", **marker_style(i))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title("solid: network, dashed: closed form" if ker is not None else "network outputs")
    ax.legend(fontsize="small")
    return fig


def plot_function_snapshots(x, predictions, times, *, x_train=None, y_train=None, target=None,
                            xlabel="x", ax=None) -> Figure:
    """A 1-D function at several times (e.g. predictions on the circle against the angle).

    ``predictions`` (T, m) for the ``T`` entries of ``times``; training points
    and a target curve are drawn when given.
    """
    fig, ax = _axes(ax)
    xs = _vector(x, "x")
    preds = np.asarray(predictions, dtype=np.float64).reshape(len(np.atleast_1d(times)), -1)
    order = np.argsort(xs)
    colours = [str(c) for c in np.linspace(0.75, 0.0, preds.shape[0])]
    if target is not None:
        ax.plot(xs[order], np.asarray(target, dtype=np.float64)[order], color=OKABE_ITO["bluish green"], lw=3,
                alpha=0.4, label="target")
    for i, (p, t, c) in enumerate(zip(preds, np.atleast_1d(times), colours)):
        ax.plot(xs[order], p[order], color=c, ls=LINE_STYLES[i % len(LINE_STYLES)], label=f"t = {t:g}")
    if x_train is not None and y_train is not None:
        ax.plot(_vector(x_train, "x_train"), _vector(y_train, "y_train"), "o", color=OKABE_ITO["vermillion"], ms=4,
                label="train")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("f(x)")
    ax.legend(fontsize="small")
    return fig


def plot_spectrum(eigenvalues, *, normalise=False, ax=None) -> Figure:
    """Kernel eigenvalues in descending order on a log scale.

    ``eigenvalues`` (n,) or a dict ``{label: (n,)}``; zero eigenvalues are not
    drawn (log scale). ``normalise`` divides each spectrum by its largest value.
    """
    fig, ax = _axes(ax)
    spectra = eigenvalues if isinstance(eigenvalues, dict) else {"kernel": eigenvalues}
    for i, (label, values) in enumerate(spectra.items()):
        lam = np.sort(_vector(values, "eigenvalues"))[::-1]
        if normalise and lam[0] > 0:
            lam = lam / lam[0]
        idx = np.arange(1, lam.size + 1)
        keep = lam > 0
        ax.plot(idx[keep], lam[keep], ms=3, label=label, **series_style(i))
    ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xlabel("index k")
    ax.set_ylabel("eigenvalue λₖ / λ₁" if normalise else "eigenvalue λₖ")
    if len(spectra) > 1:
        ax.legend()
    return fig


def plot_mode_convergence(times, fractions, *, modes=(0, 1, 3, 9), eigenvalues=None, measured=None,
                          xlabel="time ηt", ax=None) -> Figure:
    """Fraction of the residual left in selected eigenmodes, ``e^{−ηλₖt}`` (from ``spectral.mode_convergence``).

    ``fractions`` (T, n); ``measured`` (T, n), e.g. the residual of a real
    network projected on the eigenvectors, is overlaid as markers.
    """
    fig, ax = _axes(ax)
    t = _vector(times, "times")
    frac = np.asarray(fractions, dtype=np.float64).reshape(len(t), -1)
    for i, k in enumerate(m for m in modes if m < frac.shape[1]):
        label = f"mode {k + 1}" + (f" (λ = {eigenvalues[k]:.3g})" if eigenvalues is not None else "")
        ax.plot(t, frac[:, k], label=label, **line_style(i))
        if measured is not None:
            ax.plot(t, np.abs(np.asarray(measured)[:, k]), ls="none", ms=3, **marker_style(i))
    ax.set_xscale("symlog", linthresh=max(float(t[t > 0].min()) if np.any(t > 0) else 1.0, 1e-12))
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("residual left in mode")
    ax.legend(fontsize="small")
    return fig


def plot_spectral_bias(times, amplitudes, frequencies, *, relative=True, xlabel="time ηt", ax=None) -> Figure:
    """Amplitude of each frequency of the residual against time (``spectral.spectral_bias_curves``).

    With ``relative`` each curve is divided by its value at the first time, so
    all start at 1 and the order in which they fall is the order of learning.
    """
    fig, ax = _axes(ax)
    t = _vector(times, "times")
    amps = np.asarray(amplitudes, dtype=np.float64).reshape(len(t), -1)
    if relative:
        first = np.where(amps[0] > 0, amps[0], 1.0)
        amps = amps / first
    for j, f in enumerate(np.atleast_1d(frequencies)):
        ax.plot(t, amps[:, j], label=f"frequency {f:g}", markevery=_sparse(t), **series_style(j))
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("residual amplitude" + (" (relative)" if relative else ""))
    ax.legend(fontsize="small")
    return fig


def plot_ensemble(x, mean, variance, *, x_train=None, y_train=None, samples=None, xlabel="x", ax=None) -> Figure:
    """Ensemble (or GP posterior) mean with a ±2 standard deviation band on 1-D inputs.

    ``variance`` (m,) — the diagonal of the covariance; negative round-off is
    clipped at 0 before the square root. ``samples`` (S, m), e.g. trained
    finite networks, are drawn as thin lines.
    """
    fig, ax = _axes(ax)
    xs = _vector(x, "x")
    order = np.argsort(xs)
    mu = _vector(np.asarray(mean).reshape(-1), "mean")[order]
    sd = np.sqrt(np.maximum(_vector(np.asarray(variance).reshape(-1), "variance"), 0.0))[order]
    if samples is not None:
        for s in np.asarray(samples, dtype=np.float64).reshape(-1, xs.size):
            ax.plot(xs[order], s[order], color=REFERENCE_GREY, lw=0.5, alpha=0.5)
    ax.fill_between(xs[order], mu - 2 * sd, mu + 2 * sd, color=OKABE_ITO["sky blue"], alpha=0.3, label="±2σ")
    ax.plot(xs[order], mu, color=OKABE_ITO["blue"], label="mean")
    if x_train is not None and y_train is not None:
        ax.plot(_vector(x_train, "x_train"), _vector(np.asarray(y_train).reshape(-1), "y_train"), "o",
                color=OKABE_ITO["vermillion"], ms=4, label="train")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("f(x)")
    ax.legend(fontsize="small")
    return fig


def plot_approximation_error(sizes, errors, *, reference_slope=-0.5, xlabel="number of features M",
                             ax=None) -> Figure:
    """Relative approximation error against size on log-log axes, with a reference power law.

    ``errors``: a dict ``{label: (S,) or (S, n_seeds)}`` (as in
    ``approximations.ApproximationErrors.errors``) or one array; seeds are
    averaged and drawn as error bars (one standard deviation). The fitted
    slope is shown in the legend; a dotted line of slope ``reference_slope``
    (``−1/2`` for Monte Carlo features) goes through the first point.
    """
    fig, ax = _axes(ax)
    m = _vector(sizes, "sizes")
    curves = errors if isinstance(errors, dict) else {"error": errors}
    first = None
    for i, (label, values) in enumerate(curves.items()):
        e = np.asarray(values, dtype=np.float64).reshape(m.size, -1)
        mean = e.mean(axis=1)
        ax.errorbar(m, mean, yerr=e.std(axis=1), capsize=3, **series_style(i),
                    label=f"{label} (slope {fit_loglog_slope(m, mean):.2f})")
        first = mean[0] if first is None else first
    if reference_slope is not None and first is not None:
        ax.plot(m, first * (m / m[0]) ** reference_slope, "k:", label=f"reference slope {reference_slope:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("relative Frobenius error")
    ax.legend(fontsize="small")
    return fig


def plot_width_scaling(widths, gaps, *, reference_slope=-0.5, ylabel="‖f_network − f_kernel‖ / ‖y‖",
                       ax=None) -> Figure:
    """Gap between a finite network and the kernel prediction against width, log-log, with fitted slope.

    ``gaps`` (W,) or (W, n_seeds); the NTK theory predicts slope ``−1/2``
    (Lee et al. 2019).
    """
    fig, ax = _axes(ax)
    plot_approximation_error(widths, {"measured": gaps}, reference_slope=reference_slope, xlabel="width", ax=ax)
    ax.set_ylabel(ylabel)
    return fig
