"""Layer options that no neural-tangents oracle case pins down, checked against independent values.

* ``AvgPool``'s ``strides`` and ``normalize_edges``: after ``AvgPool`` and
  ``Flatten`` (no weights), the NNGP of inputs x, x' is the dot product of the
  pooled images divided by their size (the input kernel is ``x·x'/channels``
  per pair of positions, pooling is linear, Flatten averages the diagonal of
  positions). The pooled images are computed here with explicit NumPy windows.
* ``Elementwise``: the user's dual functions receive ``(cov12, var1, var2)``,
  neural-tangents' order, checked with probes that return one argument each.
* The Gaussian bookkeeping that makes an activation refuse an input it has no
  formula for: after ``Flatten`` (documented in its docstring), and after a
  ``FanInSum`` one of whose branches is not Gaussian (an activation's output
  added back by an identity branch).

Values are float64 (jax.enable_x64) and agree to round-off, hence rtol 1e-12.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax

RTOL = 1e-12  # float64 sums of a few dozen products


def _images():
    return np.random.default_rng(0).standard_normal((3, 5, 4, 2))


def _pooled_flat_nngp(pooled):
    """NNGP after Flatten of pooled images: x·x' over all entries / entries per image."""
    flat = pooled.reshape(pooled.shape[0], -1)
    return flat @ flat.T / flat.shape[1]


def _window_mean(x, window, strides, same, normalize_edges):
    """Average pooling written out with loops: output position o covers o*stride - lo ... + window."""
    n, h, w, c = x.shape
    out = []
    for size, win, stride in ((h, window[0], strides[0]), (w, window[1], strides[1])):
        if same:
            count = -(-size // stride)
            lo = max((count - 1) * stride + win - size, 0) // 2
        else:
            count, lo = (size - win) // stride + 1, 0
        out.append([[i for i in range(o * stride - lo, o * stride - lo + win) if 0 <= i < size]
                    for o in range(count)])
    pooled = np.zeros((n, len(out[0]), len(out[1]), c))
    for a, rows in enumerate(out[0]):
        for b, cols in enumerate(out[1]):
            block = x[:, rows][:, :, cols]
            divisor = len(rows) * len(cols) if normalize_edges else window[0] * window[1]
            pooled[:, a, b] = block.sum(axis=(1, 2)) / divisor
    return pooled


@pytest.mark.parametrize("strides, padding", [((2, 1), "VALID"), ((2, 2), "SAME")])
def test_avgpool_kernel_follows_its_strides(strides, padding):
    x = _images()
    net = stax.serial(stax.AvgPool((2, 2), strides=strides, padding=padding), stax.Flatten())
    with jax.enable_x64(True):
        nngp = np.asarray(net[2](x, None, "nngp"))
        pooled_by_layer = np.asarray(net[1](net[0](jax.random.PRNGKey(0), x.shape)[1], x))
    pooled = _window_mean(x, (2, 2), strides, padding == "SAME", normalize_edges=False)
    np.testing.assert_allclose(pooled_by_layer, pooled.reshape(len(x), -1), rtol=RTOL)
    np.testing.assert_allclose(nngp, _pooled_flat_nngp(pooled), rtol=RTOL)


@pytest.mark.parametrize("normalize_edges", [False, True])
def test_avgpool_same_padding_divides_edge_windows_as_asked(normalize_edges):
    """Window 3x3, SAME: an edge window holds 6 (corner: 4) pixels; it is divided by 9, or by that count."""
    x = _images()
    net = stax.serial(stax.AvgPool((3, 3), padding="SAME", normalize_edges=normalize_edges), stax.Flatten())
    with jax.enable_x64(True):
        nngp = np.asarray(net[2](x, None, "nngp"))
        pooled_by_layer = np.asarray(net[1](net[0](jax.random.PRNGKey(0), x.shape)[1], x))
    pooled = _window_mean(x, (3, 3), (1, 1), True, normalize_edges)
    np.testing.assert_allclose(pooled_by_layer, pooled.reshape(len(x), -1), rtol=RTOL)
    np.testing.assert_allclose(nngp, _pooled_flat_nngp(pooled), rtol=RTOL)


def _dense_kernel(x1, x2):
    net = stax.Dense(3, W_std=1.4, b_std=0.3)
    return net, np.asarray(net[2](x1, x2, "nngp")), np.asarray(net[2](x1, None, "nngp")), \
        np.asarray(net[2](x2, None, "nngp"))


@pytest.mark.parametrize("argument", ["cov12", "var1", "var2"])
def test_elementwise_passes_cov12_var1_var2_in_that_order(argument):
    """A probe nngp_fn returning one of its arguments: the layer's NNGP of (x1, x2) is then the Dense
    layer's covariance, the variance of x1's entry (constant along rows) or of x2's (along columns)."""
    x1 = np.random.default_rng(1).standard_normal((3, 4))
    x2 = 2.0 * np.random.default_rng(2).standard_normal((2, 4))
    position = {"cov12": 0, "var1": 1, "var2": 2}[argument]

    def probe(*args):  # the variances come as a column and a row: broadcast like cov12
        return jnp.broadcast_to(args[position], jnp.shape(args[0]))

    with jax.enable_x64(True):
        dense, cov, var1, var2 = _dense_kernel(x1, x2)
        net = stax.serial(dense, stax.Elementwise(lambda u: u, probe, probe))
        got = np.asarray(net[2](x1, x2, "nngp"))
    expected = {"cov12": cov,
                "var1": np.broadcast_to(np.diag(var1)[:, None], cov.shape),
                "var2": np.broadcast_to(np.diag(var2)[None, :], cov.shape)}[argument]
    np.testing.assert_allclose(got, expected, rtol=RTOL)


def test_elementwise_with_the_relu_formulas_equals_relu():
    """The arc-cosine formulas (Cho & Saul 2009), written in neural-tangents' argument order, give Relu's kernels."""

    def relu_nngp(cov12, var1, var2):
        norm = jnp.sqrt(var1 * var2)
        theta = jnp.arccos(jnp.clip(cov12 / norm, -1.0, 1.0))
        return norm * (jnp.sin(theta) + (jnp.pi - theta) * jnp.cos(theta)) / (2 * np.pi)

    def relu_d_nngp(cov12, var1, var2):
        theta = jnp.arccos(jnp.clip(cov12 / jnp.sqrt(var1 * var2), -1.0, 1.0))
        return (np.pi - theta) / (2 * np.pi)

    x1 = np.random.default_rng(3).standard_normal((3, 4))
    x2 = 0.5 * np.random.default_rng(4).standard_normal((2, 4))
    with jax.enable_x64(True):
        dense = stax.Dense(8, W_std=1.3, b_std=0.2)
        readout = stax.Dense(1, W_std=0.9, b_std=0.1)
        custom = stax.serial(dense, stax.Elementwise(lambda u: jnp.maximum(u, 0), relu_nngp, relu_d_nngp), readout)
        relu = stax.serial(dense, stax.Relu(), readout)
        a, b = custom[2](x1, x2, ("nngp", "ntk")), relu[2](x1, x2, ("nngp", "ntk"))
    np.testing.assert_allclose(np.asarray(a.nngp), np.asarray(b.nngp), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(a.ntk), np.asarray(b.ntk), rtol=1e-10)


def test_an_activation_after_flatten_is_refused():
    """Flatten's output is not Gaussian (its docstring: put a Dense first)."""
    net = stax.serial(stax.Conv(2, (2, 2)), stax.Flatten(), stax.Relu())
    with pytest.raises(ValueError, match=r"Relu: an activation needs Gaussian inputs"):
        net[2](_images(), None, "nngp")


def test_an_activation_after_flatten_and_dense_is_accepted():
    net = stax.serial(stax.Conv(2, (2, 2)), stax.Flatten(), stax.Dense(2), stax.Relu())
    assert np.asarray(net[2](_images(), None, "nngp")).shape == (3, 3)


def test_an_activation_after_summing_a_non_gaussian_branch_is_refused():
    """x + Dense(x) with x a ReLU output: x is not Gaussian, so neither is the sum."""
    x = np.random.default_rng(5).standard_normal((3, 4))
    net = stax.serial(stax.Dense(4), stax.Relu(), stax.FanOut(2),
                      stax.parallel(stax.Dense(4), stax.Identity()), stax.FanInSum(), stax.Relu())
    with pytest.raises(ValueError, match=r"Relu: an activation needs Gaussian inputs"):
        net[2](x, None, "nngp")


def test_summing_two_independent_dense_branches_adds_their_kernels_and_stays_gaussian():
    """Two Dense branches with independent weights: the sum's covariance is the sum of theirs, and an
    activation may follow it (its value is that of Relu on the summed covariance)."""
    x = np.random.default_rng(6).standard_normal((3, 4))
    a, b = stax.Dense(4, W_std=1.1, b_std=0.2), stax.Dense(4, W_std=0.7, b_std=0.4)
    with jax.enable_x64(True):
        summed = stax.serial(stax.FanOut(2), stax.parallel(a, b), stax.FanInSum())
        k_sum = np.asarray(summed[2](x, None, "nngp"))
        expected = np.asarray(a[2](x, None, "nngp")) + np.asarray(b[2](x, None, "nngp"))
        after_relu = np.asarray(stax.serial(summed, stax.Relu())[2](x, None, "nngp"))
        relu_of_combined = np.asarray(
            stax.serial(stax.Dense(4, W_std=np.hypot(1.1, 0.7), b_std=np.hypot(0.2, 0.4)), stax.Relu())[2](
                x, None, "nngp"))
    np.testing.assert_allclose(k_sum, expected, rtol=RTOL)
    np.testing.assert_allclose(after_relu, relu_of_combined, rtol=1e-10)
