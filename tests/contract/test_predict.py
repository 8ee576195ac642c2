"""``ntkcourse.predict`` gives neural-tangents' ``nt.predict`` values on the same
kernels (reference values from neural-tangents 0.6.5 in float64,
``tests/oracle/make_predict_reference.py``).

Tolerances: the kernels themselves agree with neural-tangents to about 1e-15;
the predictions go through an eigendecomposition or a Cholesky solve of a
6 x 6 kernel of condition number below 1e3, so 1e-9 relative covers the
different orders of floating-point operations with a wide margin.
"""
import json
from pathlib import Path

import numpy as np
import pytest

import ntkcourse as nt
from ntkcourse import stax

@pytest.fixture(autouse=True)
def x64():
    # neural-tangents' values are from 64-bit mode; predict returns arrays of the current mode's dtype.
    import jax

    with jax.enable_x64(True):
        yield


REF = json.loads((Path(__file__).parents[1] / "data" / "nt_predict_reference.json").read_text())
RTOL, ATOL = 1e-9, 1e-11


def _a(name):
    return np.asarray(REF[name], dtype=np.float64)


@pytest.fixture(scope="module")
def kernels():
    _, _, kernel_fn = stax.serial(stax.Dense(64, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(1, W_std=1.5))
    x_train, x_test = _a("x_train"), _a("x_test")
    return (kernel_fn, kernel_fn(x_train, None, ("nngp", "ntk")), kernel_fn(x_test, x_train, ("nngp", "ntk")),
            kernel_fn(x_test, None, ("nngp", "ntk")))


@pytest.mark.parametrize("reg", [0.0, 0.1])
def test_gradient_descent_mse_at_finite_times_matches_neural_tangents(kernels, reg):
    _, k_dd, k_td, _ = kernels
    predict_fn = nt.predict.gradient_descent_mse(k_dd.ntk, _a("y_train"), learning_rate=2.0, diag_reg=reg)
    train, test = predict_fn(np.array([[0.5, 3.0]]), _a("fx_train_0"), _a("fx_test_0"), k_td.ntk)
    assert train.shape == (1, 2, 6, 2)  # leading axes of t, as neural-tangents
    np.testing.assert_allclose(train, _a(f"mse/reg{reg}/t/train"), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(test, _a(f"mse/reg{reg}/t/test"), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("reg", [0.0, 0.1])
def test_gradient_descent_mse_at_infinite_time_matches_neural_tangents(kernels, reg):
    _, k_dd, k_td, _ = kernels
    predict_fn = nt.predict.gradient_descent_mse(k_dd.ntk, _a("y_train"), learning_rate=2.0, diag_reg=reg)
    train, test = predict_fn(None, _a("fx_train_0"), _a("fx_test_0"), k_td.ntk)
    np.testing.assert_allclose(train, _a(f"mse/reg{reg}/inf/train"), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(test, _a(f"mse/reg{reg}/inf/test"), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("t_name,t", [("t", 1.5), ("inf", None)])
@pytest.mark.parametrize("where", ["test", "train"])
def test_gradient_descent_mse_ensemble_matches_neural_tangents(kernels, t_name, t, where):
    kernel_fn = kernels[0]
    ens = nt.predict.gradient_descent_mse_ensemble(kernel_fn, _a("x_train"), _a("y_train"), learning_rate=2.0,
                                                   diag_reg=0.1)
    out = ens(t, _a("x_test") if where == "test" else None, ("nngp", "ntk"), compute_cov=True)
    for g in ("nngp", "ntk"):
        np.testing.assert_allclose(getattr(out, g).mean, _a(f"ensemble/{t_name}/{where}/{g}/mean"),
                                   rtol=RTOL, atol=ATOL, err_msg=g)
        np.testing.assert_allclose(getattr(out, g).covariance, _a(f"ensemble/{t_name}/{where}/{g}/cov"),
                                   rtol=RTOL, atol=ATOL, err_msg=g)


def test_gp_inference_matches_neural_tangents(kernels):
    _, k_dd, k_td, k_tt = kernels
    out = nt.predict.gp_inference(k_dd, _a("y_train"), diag_reg=0.05)(("nngp", "ntk"), k_td, k_tt)
    for g in ("nngp", "ntk"):
        np.testing.assert_allclose(getattr(out, g).mean, _a(f"gp/{g}/mean"), rtol=RTOL, atol=ATOL, err_msg=g)
        np.testing.assert_allclose(getattr(out, g).covariance, _a(f"gp/{g}/cov"), rtol=RTOL, atol=ATOL, err_msg=g)


def test_max_learning_rate_matches_neural_tangents(kernels):
    _, k_dd, _, _ = kernels
    assert nt.predict.max_learning_rate(k_dd.ntk) == pytest.approx(REF["max_lr"], rel=1e-12)
    assert nt.predict.max_learning_rate(k_dd.ntk, y_train_size=12, momentum=0.5) == pytest.approx(
        REF["max_lr/size12/momentum0.5"], rel=1e-12)


def test_other_trace_axes_are_refused_not_ignored(kernels):
    _, k_dd, _, _ = kernels
    with pytest.raises(NotImplementedError, match="gradient_descent_mse: only trace_axes=\\(-1,\\)"):
        nt.predict.gradient_descent_mse(k_dd.ntk, _a("y_train"), trace_axes=())


def _cross_entropy(fx, y_hat):
    import jax

    return -jax.numpy.mean(jax.nn.log_softmax(fx) * y_hat)


@pytest.mark.parametrize("momentum", [None, 0.9])
def test_gradient_descent_on_any_loss_matches_neural_tangents(kernels, momentum):
    import jax

    _, k_dd, k_td, _ = kernels
    with jax.enable_x64(True):
        gd = nt.predict.gradient_descent(_cross_entropy, k_dd.ntk, _a("labels"), learning_rate=0.5, momentum=momentum)
        train, test = gd(np.array([0.0, 2.0, 10.0]), _a("fx_train_0"), _a("fx_test_0"), k_td.ntk)
    # Both solve the same ODE with odeint's default tolerances (rtol 1.4e-8) in float64.
    np.testing.assert_allclose(np.asarray(train), _a(f"gd/momentum{momentum}/train"), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.asarray(test), _a(f"gd/momentum{momentum}/test"), rtol=1e-6, atol=1e-8)
