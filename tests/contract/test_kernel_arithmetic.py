"""neural-tangents' ``Kernel`` arithmetic and ``asdict``/``astuple`` on this
package's ``Kernel`` (what ``kernel_fn(..., get=None)`` returns).

Each rule is checked against an independent kernel: ``k * a`` against the
same network whose readout has ``W_std`` and ``b_std`` multiplied by ``a``
(its outputs are ``a`` times the original's, so both kernels scale by
``a**2``), ``k + c`` against a readout whose untrained offset variance
grows by ``c**2`` (NNGP of ``b_std = sqrt(b**2 + c**2)``, NTK of the original).
64-bit; the kernels are closed-form recursions, so they agree to round-off
(1e-13 relative leaves a margin of ~100 ulps).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax



@pytest.fixture(autouse=True)
def _x64():
    # 64-bit inside each test only: a module-level switch would leak into the other tests of the worker.
    with jax.enable_x64(True):
        yield

W, B = 1.3, 0.4
RTOL = 1e-13


@functools.lru_cache(maxsize=None)
def _kernel(readout_w=W, readout_b=B):
    _, _, kernel_fn = stax.serial(stax.Dense(5, W_std=1.1, b_std=0.2), stax.Relu(),
                                  stax.Dense(1, W_std=readout_w, b_std=readout_b))
    x1 = np.random.default_rng(0).normal(size=(3, 4))
    x2 = np.random.default_rng(1).normal(size=(2, 4))
    return kernel_fn(x1, x2, get=None)


@pytest.mark.parametrize("a", [2.5, np.float32(0.5), jnp.asarray(-1.5)])
def test_multiplying_a_kernel_is_the_kernel_of_the_scaled_network(a):
    k, scaled = _kernel() * a, _kernel(W * abs(float(a)), B * abs(float(a)))  # lru_cache: built once, in the test run
    for name in ("nngp", "ntk", "cov1", "cov2"):
        np.testing.assert_allclose(getattr(k, name), getattr(scaled, name), rtol=RTOL, err_msg=name)


def test_dividing_a_kernel_is_multiplying_by_the_inverse():
    k = _kernel() / 4.0
    scaled = _kernel(W / 4.0, B / 4.0)
    np.testing.assert_allclose(k.ntk, scaled.ntk, rtol=RTOL)


def test_adding_to_a_kernel_adds_an_untrained_shared_offset():
    c = 0.7
    k, wider_bias, original = _kernel() + c, _kernel(W, np.sqrt(B**2 + c**2)), _kernel()
    for name in ("nngp", "cov1", "cov2"):
        np.testing.assert_allclose(getattr(k, name), getattr(wider_bias, name), rtol=RTOL, err_msg=name)
    np.testing.assert_array_equal(k.ntk, original.ntk)


def test_subtracting_and_negating_keep_the_covariance_of_zero_mean_outputs():
    k = _kernel()
    np.testing.assert_array_equal((k - 0.7).nngp, (k + 0.7).nngp)
    assert (-k) is k and (+k) is k


def test_arithmetic_works_under_jit_with_a_traced_scalar():
    k = _kernel()
    np.testing.assert_allclose(jax.jit(lambda a: (k * a).nngp)(3.0), 9.0 * k.nngp, rtol=RTOL)


@pytest.mark.parametrize("other", ["2", True, np.bool_(True), None, np.ones(2), 1j, [2.0]])
def test_arithmetic_refuses_anything_but_a_real_scalar(other):
    with pytest.raises(TypeError, match=r"Kernel \*: the other operand must be a real scalar"):
        _kernel() * other


def test_asdict_has_neural_tangents_fields_in_its_order():
    k = _kernel()
    d = k.asdict()
    assert list(d) == ["nngp", "ntk", "cov1", "cov2", "x1_is_x2", "is_gaussian", "is_reversed", "is_input",
                       "diagonal_batch", "diagonal_spatial", "shape1", "shape2", "batch_axis", "channel_axis",
                       "mask1", "mask2"]
    assert d["nngp"] is k.nngp and d["shape1"] == (3, 1) and d["x1_is_x2"] is False and d["is_input"] is False
    assert k.astuple() == tuple(d.values())


def test_reverse_and_dot_general_are_refused_with_the_alternative():
    k = _kernel()
    with pytest.raises(NotImplementedError, match=r"k\.transpose"):
        k.reverse()
    with pytest.raises(NotImplementedError, match="stax.DotGeneral"):
        k.dot_general(None, None, None)
