"""Every plotting function given ``ax=`` (or ``axes=``) draws on that axes only.

Claim: drawn into a figure with other axes, a function changes nothing on them — no lines, collections,
patches, texts, title, labels, scales or legend — and returns the figure of the given axes. (plot_ntk_change
used to put its title on ``fig.axes[0]``, whatever axes it was given.) The data are made up: the functions only
draw. Every public function of the plotting modules with an ``ax``/``axes`` argument must be listed here.
"""
import inspect

import numpy as np
import pytest
from matplotlib.figure import Figure

from ntkcourse.empirical import MonteCarloKernel
from ntkcourse.finite_width import HessianScaling, TrainingChange, WidthSweep
from ntkcourse.linearize import LinearizationRun
from ntkcourse.plotting import dynamics, finite_width

T = np.logspace(-1, 2, 6)
N = 5
RNG = np.random.default_rng(0)
OUT = RNG.standard_normal((len(T), N))
W = np.array([64, 256, 1024])


def _sweep(expected=-0.5):
    return WidthSweep(W, W[:, None] ** -0.5 * (1 + 0.05 * RNG.standard_normal((3, 2))), "quantity", expected)


def _linearization_run():
    net = RNG.standard_normal((3, 4, 1))
    return LinearizationRun(np.array([0, 10, 100]), net, net + 1e-3, None, None, np.ones(3), np.ones(3),
                            np.array([0.0, 1e-4, 1e-3]), None, None)


K = np.eye(3) + 0.5
CALLS = {
    "plot_loss_curves": lambda ax: dynamics.plot_loss_curves(T, np.exp(-T), np.exp(-T) * 1.1, ax=ax),
    "plot_output_trajectories": lambda ax: dynamics.plot_output_trajectories(T, OUT, OUT + 0.1, ax=ax),
    "plot_function_snapshots": lambda ax: dynamics.plot_function_snapshots(
        np.linspace(0, 1, N), OUT[:3], T[:3], x_train=np.zeros(2), y_train=np.ones(2), target=OUT[0], ax=ax),
    "plot_spectrum": lambda ax: dynamics.plot_spectrum({"a": [3.0, 2.0, 1.0], "b": [2.0, 1.0, 0.5]}, ax=ax),
    "plot_mode_convergence": lambda ax: dynamics.plot_mode_convergence(T, np.exp(-np.outer(T, [1, 0.1, 0.01])),
                                                                       modes=(0, 1), measured=OUT[:, :3], ax=ax),
    "plot_spectral_bias": lambda ax: dynamics.plot_spectral_bias(T, np.exp(-np.outer(T, [1, 0.1])), (1, 3), ax=ax),
    "plot_ensemble": lambda ax: dynamics.plot_ensemble(np.linspace(0, 1, N), OUT[0], np.ones(N), x_train=[0.5],
                                                       y_train=[1.0], samples=OUT[:2], ax=ax),
    "plot_approximation_error": lambda ax: dynamics.plot_approximation_error(
        np.array([10, 100, 1000]), {"rf": np.array([[0.3, 0.32], [0.1, 0.11], [0.03, 0.031]])}, ax=ax),
    "plot_width_scaling": lambda ax: dynamics.plot_width_scaling(W, W ** -0.5, ax=ax),
    "add_rate_references": lambda ax: finite_width.add_rate_references(ax, W, 1.0),
    "plot_width_sweep": lambda ax: finite_width.plot_width_sweep(_sweep(), _sweep(None), ax=ax),
    "plot_ntk_change": lambda ax: finite_width.plot_ntk_change(
        TrainingChange(_sweep(), _sweep(None), {}, np.zeros((3, 2)), 0.1), ax=ax),
    "plot_hessian_scaling": lambda ax: finite_width.plot_hessian_scaling(HessianScaling(_sweep(), _sweep(0.0)),
                                                                         ax=ax),
    "plot_kernel_agreement": lambda ax: finite_width.plot_kernel_agreement(K + 0.01, K, ax=ax),
    "plot_monte_carlo_convergence": lambda ax: finite_width.plot_monte_carlo_convergence(
        [MonteCarloKernel(None, K + n**-0.5, None, np.full((3, 3), n**-0.5), n) for n in (10, 40, 160)], K, ax=ax),
}
# Functions taking a pair of axes: (call, how many axes).
PAIR_CALLS = {
    "plot_linearization_run": lambda axes: finite_width.plot_linearization_run(_linearization_run(), axes=axes),
}


def _public_functions_with_axes():
    names = set()
    for module in (dynamics, finite_width):
        for name in module.__all__:
            params = inspect.signature(getattr(module, name)).parameters if callable(getattr(module, name)) else {}
            if "ax" in params or "axes" in params:
                names.add(name)
    return names


def _untouched(ax):
    return (
        not ax.lines and not ax.collections and not ax.patches and not ax.texts and not ax.images
        and not ax.containers and ax.get_legend() is None
        and all(ax.get_title(loc=loc) == "" for loc in ("left", "center", "right"))
        and ax.get_xlabel() == "" and ax.get_ylabel() == ""
        and ax.get_xscale() == "linear" and ax.get_yscale() == "linear"
    )


def test_every_function_with_an_axes_argument_is_checked_here():
    assert _public_functions_with_axes() == set(CALLS) | set(PAIR_CALLS)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_drawing_on_a_given_axes_leaves_the_other_axes_alone(name):
    fig = Figure()
    left, middle, right = fig.subplots(1, 3)
    assert CALLS[name](middle) is fig
    assert _untouched(left) and _untouched(right)
    assert not _untouched(middle)


@pytest.mark.parametrize("name", sorted(PAIR_CALLS))
def test_drawing_on_given_axes_pairs_leaves_the_other_axes_alone(name):
    fig = Figure()
    first, a, b, last = fig.subplots(1, 4)
    assert PAIR_CALLS[name]((a, b)) is fig
    assert _untouched(first) and _untouched(last)
    assert not _untouched(a) and not _untouched(b)
