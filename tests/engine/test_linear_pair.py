"""engine.compile.linear_pair: a real-linear map applied to the NNGP and NTK through one complex array."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse.engine import linear_pair


@pytest.fixture(autouse=True)
def _x64():
    # The engine computes kernels in 64-bit mode (kernel_fn enables it); so do these tests.
    with jax.enable_x64(True):
        yield


def _pair(seed=0, shape=(3, 4, 5, 5)):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.standard_normal(shape)), jnp.asarray(rng.standard_normal(shape))


def _mean(x):
    return jnp.mean(x, axis=(2, 3))


def test_the_pair_equals_the_map_applied_to_each_part():
    nngp, ntk = _pair()
    a, b = jax.jit(lambda u, v: linear_pair(_mean, u, v))(nngp, ntk)
    # Only the order of the 25 additions of each mean may differ: a few ulps of values of order one.
    np.testing.assert_allclose(a, _mean(nngp), rtol=0, atol=1e-15)
    np.testing.assert_allclose(b, _mean(ntk), rtol=0, atol=1e-15)


def test_the_parts_come_back_real_and_of_the_input_precision():
    nngp, ntk = _pair()
    for dtype in (jnp.float64, jnp.float32):
        a, b = linear_pair(_mean, nngp.astype(dtype), ntk.astype(dtype))
        assert a.dtype == jnp.dtype(dtype) and b.dtype == jnp.dtype(dtype)


def test_without_an_ntk_only_the_nngp_is_mapped():
    nngp, _ = _pair()
    a, b = linear_pair(_mean, nngp, None)
    assert b is None
    np.testing.assert_array_equal(a, _mean(nngp))


def test_parts_of_different_shapes_are_mapped_one_by_one():
    nngp, _ = _pair()
    ntk = nngp[:, :, :4, :4]
    a, b = linear_pair(_mean, nngp, ntk)
    np.testing.assert_array_equal(a, _mean(nngp))
    np.testing.assert_array_equal(b, _mean(ntk))
