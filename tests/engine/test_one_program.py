"""Convolution networks under the caller's ``jit``, ``grad`` and ``vmap``: the
whole network is one XLA program, where the window sums of convolutions are
written as one ``lax.conv_general_dilated`` (``engine.one_program``,
``stax.spatial.window_sum_as_conv``) instead of a sum of shifted slices.

That a convolutional network under ``jit`` gives the kernel computed in
blocks is tested in tests/kernels/test_stax_forks.py (a residual block); the
window sums of every geometry (strides, 'VALID', the 'VALID' sums that
'CIRCULAR' padding and ``ConvTranspose`` reduce to, complex arrays), as one
convolution and as shifted slices, are compared with a loop over positions
and offsets in tests/kernels/test_stax_spatial_formulas.py.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax
from ntkcourse.engine import one_program
from ntkcourse.stax.spatial import window_average


@pytest.fixture(autouse=True)
def _x64():
    # kernel_fn computes in float64; finite differences need it too.
    with jax.enable_x64(True):
        yield


def test_window_average_takes_the_convolution_form_only_inside_one_program():
    x = jnp.ones((1, 1, 4, 4))
    dims = [((2, 3), 3, 1)]
    outside = jax.jit(lambda a: window_average(a, dims, "SAME")).lower(x).as_text()

    def inside(a):
        with one_program():
            return window_average(a, dims, "SAME")

    assert "convolution" not in outside
    assert "convolution" in jax.jit(inside).lower(x).as_text()


def _cnn():
    return stax.serial(stax.Conv(1, (3, 3), padding="SAME"), stax.Relu(), stax.Conv(1, (2, 2), (2, 2)),
                       stax.GlobalAvgPool())[2]


def test_grad_through_a_convolution_network_matches_a_central_difference():
    kernel_fn = _cnn()
    rng = np.random.default_rng(3)
    x, other = rng.standard_normal((2, 4, 4, 1)), jnp.asarray(rng.standard_normal((1, 4, 4, 1)))

    def total(a):
        return jnp.sum(kernel_fn(a, other, "ntk"))

    value_and_grad = jax.jit(jax.value_and_grad(total))
    grad = np.asarray(value_and_grad(jnp.asarray(x))[1])
    h, e = 1e-6, np.zeros_like(x)
    e[1, 2, 3, 0] = h
    fd = (float(value_and_grad(jnp.asarray(x + e))[0]) - float(value_and_grad(jnp.asarray(x - e))[0])) / (2 * h)
    # Central difference: truncation O(h^2), round-off O(1e-16 / h) relative.
    assert grad[1, 2, 3, 0] == pytest.approx(fd, rel=1e-6)


def test_vmap_over_images_gives_each_images_own_kernel():
    kernel_fn = _cnn()
    x = jnp.asarray(np.random.default_rng(4).standard_normal((3, 4, 4, 1)))
    got = jax.jit(jax.vmap(lambda a: kernel_fn(a[None], None, "nngp")[0, 0]))(x)
    batch = jax.jit(kernel_fn, static_argnames="get")(x, None, "nngp")  # = blocked kernel (test_stax_forks.py)
    # The same formulas in a batched program: round-off only.
    np.testing.assert_allclose(got, np.diag(np.asarray(batch)), rtol=1e-12)
