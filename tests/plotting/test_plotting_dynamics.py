"""Specification of ntkcourse.plotting.dynamics: every function returns a Figure drawing the data it was given."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from ntkcourse.approximations import nystrom_errors
from ntkcourse.dynamics import gradient_flow_prediction
from ntkcourse.inference import infinite_ensemble_prediction
from ntkcourse.plotting import dynamics as plots
from ntkcourse.data import circle_data
from ntkcourse.spectral import kernel_spectrum, mode_convergence, spectral_bias_curves

TIMES = np.logspace(-1, 2, 12)


@pytest.fixture(scope="module")
def circle():
    """Circle data and a dot-product kernel exp(xᵀx') (PSD, rotation invariant) — no engine needed to draw."""
    data = circle_data(24, frequencies=(1, 3))
    k = np.exp(data.x @ data.x.T)
    return data, k


def test_loss_curves_overlay_the_kernel_prediction(circle):
    """One line per run plus the dashed closed form, on a log loss axis."""
    data, k = circle
    pred = gradient_flow_prediction(k, data.y, TIMES, learning_rate=0.05).train
    loss = 0.5 * np.sum((pred - data.y) ** 2, axis=1)
    fig = plots.plot_loss_curves(TIMES, {"width 64": loss * 1.1, "width 1024": loss}, kernel_loss=loss)
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and len(ax.lines) == 3 and ax.get_yscale() == "log"
    np.testing.assert_allclose(ax.lines[-1].get_ydata(), loss)


def test_output_trajectories_pair_network_and_kernel_lines(circle):
    """n_points solid lines and as many dashed ones in the same colours."""
    data, k = circle
    pred = gradient_flow_prediction(k, data.y, TIMES).train
    fig = plots.plot_output_trajectories(TIMES, pred + 0.01, pred, n_points=3)
    lines = fig.axes[0].lines
    assert len(lines) == 6 and lines[0].get_color() == lines[1].get_color()


def test_function_snapshots_draw_one_line_per_time(circle):
    """One curve per time, plus the target and the training points."""
    data, k = circle
    pred = gradient_flow_prediction(k, data.y, [1.0, 10.0, 100.0]).train
    fig = plots.plot_function_snapshots(data.angles, pred, [1.0, 10.0, 100.0], x_train=data.angles,
                                        y_train=data.y, target=data.y)
    assert len(fig.axes[0].lines) == 5


def test_spectrum_and_mode_convergence(circle):
    """Spectrum on log-log axes without zero eigenvalues; mode curves start at 1 and decrease."""
    _, k = circle
    lam, _ = kernel_spectrum(k)
    fig = plots.plot_spectrum({"exp kernel": lam, "with a zero": np.append(lam, 0.0)}, normalise=True)
    assert len(fig.axes[0].lines) == 2 and fig.axes[0].get_yscale() == "log"
    assert len(fig.axes[0].lines[1].get_ydata()) == np.count_nonzero(lam)
    frac = mode_convergence(lam, TIMES, learning_rate=0.05)
    fig = plots.plot_mode_convergence(TIMES, frac, modes=(0, 2, 5), eigenvalues=lam)
    for line in fig.axes[0].lines:
        assert np.all(np.diff(line.get_ydata()) <= 0)


def test_spectral_bias_curves_start_at_one(circle):
    """Relative amplitudes: every frequency starts at 1."""
    data, k = circle
    amps = spectral_bias_curves(k, data.y, data.angles, TIMES, (1, 3), learning_rate=0.05)
    fig = plots.plot_spectral_bias(TIMES, amps, (1, 3))
    assert [line.get_ydata()[0] for line in fig.axes[0].lines] == [1.0, 1.0]


def test_ensemble_band(circle):
    """Mean line, ±2σ band and training points; negative round-off variance does not produce NaN."""
    data, k = circle
    out = infinite_ensemble_prediction(k, k, data.y, 10.0, k[:, :], k, np.diag(k))
    variance = out.test_covariance.copy()
    variance[0] = -1e-15
    fig = plots.plot_ensemble(data.angles, out.test_mean, variance, x_train=data.angles, y_train=data.y)
    ax = fig.axes[0]
    assert len(ax.collections) == 1 and np.all(np.isfinite(ax.lines[0].get_ydata()))


def test_approximation_error_reports_the_fitted_slope(circle):
    """Log-log error curve with the fitted slope in the legend and a reference power law."""
    _, k = circle
    errs = nystrom_errors(k, [2, 4, 8, 16], n_seeds=2)
    fig = plots.plot_approximation_error(errs.sizes, errs.errors, reference_slope=None, xlabel="landmarks")
    assert "kernel (slope" in " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    sizes = np.array([10, 100, 1000])
    fig = plots.plot_width_scaling(sizes, 1 / np.sqrt(sizes))
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "measured (slope -0.50)" in legend and "reference slope -0.5" in legend


def test_old_name_loglog_slope_is_the_one_slope_helper_with_a_deprecation_warning():
    """The second name of the slope helper still works for old code, warns, and is the same function."""
    from ntkcourse.fitting import fit_loglog_slope

    with pytest.warns(DeprecationWarning, match="fit_loglog_slope"):
        old = plots.loglog_slope
    assert old is fit_loglog_slope


def test_drawing_on_given_axes_returns_its_figure():
    """ax=... draws there and returns that axes' figure."""
    fig = Figure()
    ax = fig.add_subplot(1, 2, 2)
    assert plots.plot_spectrum(np.array([3.0, 2.0, 1.0]), ax=ax) is fig
    assert len(ax.lines) == 1
