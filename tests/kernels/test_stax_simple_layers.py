"""LayerNorm, FanInProd and repeat (issue 19, part A): wide finite networks,
refusals where the kernel would be wrong, bad input. Their values against
neural-tangents are in ``tests/contract/test_nt_compat_layers_a.py``.

Monte Carlo: 100 networks of width 256 (``empirical.monte_carlo_kernel_fn``,
fixed key), read out by ``Dense(32)`` whose 32 i.i.d. outputs are averaged
(same kernel as ``Dense(1)``, a smaller standard error). The SE comes from
the samples; a check passes within 5 SE plus 2 % for the O(1/width) bias of
width 256 (measured: |z| <= 2.7 over all 24 entries of the two networks, without the allowance).
"""
import jax
import numpy as np
import pytest

from ntkcourse import empirical, stax

WIDTH = 256


def _within_monte_carlo(net, x):
    mc = empirical.monte_carlo_kernel_fn(net, None, jax.random.PRNGKey(0), 100)(x, None, ("nngp", "ntk"))
    exact = net[2](x, None, ("nngp", "ntk"))
    for field in ("nngp", "ntk"):
        got, want = np.asarray(getattr(mc, field)), np.asarray(getattr(exact, field))
        se = np.asarray(getattr(mc, field + "_stderr"))
        assert np.all(np.abs(got - want) <= 5 * se + 0.02 * np.abs(want)), field


X = 0.8 * np.random.default_rng(1).normal(size=(3, 4))


@pytest.mark.slow
def test_layer_norm_matches_wide_networks():
    _within_monte_carlo(stax.serial(stax.Dense(WIDTH, W_std=1.5, b_std=0.1), stax.LayerNorm(), stax.Relu(),
                                    stax.Dense(32)), X)


@pytest.mark.slow
def test_fan_in_prod_of_independent_branches_matches_wide_networks():
    branches = stax.parallel(stax.Identity(), stax.serial(stax.Relu(), stax.Dense(WIDTH, b_std=0.2)))
    _within_monte_carlo(stax.serial(stax.Dense(WIDTH, W_std=1.5, b_std=0.1), stax.FanOut(2), branches,
                                    stax.FanInProd(), stax.Dense(32)), X)


def test_fan_in_prod_of_one_branch_with_itself_is_refused():
    # z * z: E[u^2 v^2] = q1 q2 + 2 q12^2, not K^2 (what neural-tangents returns).
    net = stax.serial(stax.Dense(8), stax.FanOut(2), stax.parallel(stax.Identity(), stax.Identity()),
                      stax.FanInProd())
    with pytest.raises(NotImplementedError, match=r"FanInProd: branches \[0, 1\] are correlated"):
        net[2](X, None, "nngp")


def test_fan_in_prod_of_unequal_shapes_is_refused():
    net = stax.serial(stax.FanOut(2), stax.parallel(stax.Dense(3), stax.Dense(5)), stax.FanInProd())
    with pytest.raises(ValueError, match="FanInProd: all branches must have the same shape"):
        net[0](jax.random.PRNGKey(0), X.shape)


def test_layer_norm_after_an_activation_is_refused():
    # The mean over channels of relu(z) tends to E[relu(z)] > 0, which the kernels do not track.
    with pytest.raises(ValueError, match="LayerNorm: needs Gaussian inputs"):
        stax.serial(stax.Dense(8), stax.Relu(), stax.LayerNorm())[2](X, None, "nngp")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"axis": 0}, ValueError, r"LayerNorm: `axis` must include the channel axis"),
    ({"axis": (0, 1)}, NotImplementedError, r"LayerNorm: normalising over the batch axis"),
    ({"axis": 5}, ValueError, r"LayerNorm: axis 5 is out of range for inputs with 2 axes"),
    ({"axis": "x"}, ValueError, r"LayerNorm: `axis` must be an integer or a non-empty sequence"),
    ({"eps": 0.0}, ValueError, r"LayerNorm: `eps` must be"),
    ({"channel_axis": 0}, ValueError, r"LayerNorm: `batch_axis` and `channel_axis` must differ, got 0 and 0"),
    ({"batch_axis": 1}, ValueError, r"LayerNorm: `batch_axis` and `channel_axis` must differ, got 1 and -1"),
    ({"batch_axis": True}, ValueError, r"LayerNorm: `batch_axis` must be an integer axis index"),
])
def test_layer_norm_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        stax.serial(stax.Dense(8), stax.LayerNorm(**kwargs))[0](jax.random.PRNGKey(0), X.shape)


def test_layer_norm_finite_layer_normalises_each_input():
    out = np.asarray(stax.LayerNorm()[1]((), X.astype(np.float32)))
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(out.var(axis=1), 1.0, rtol=1e-5)  # float32 round-off


def test_repeat_stacks_parameters_and_equals_the_unrolled_network():
    block = stax.serial(stax.Dense(4, b_std=0.1), stax.Relu())
    init_fn, apply_fn, kernel_fn = stax.repeat(block, 3)
    shape, params = init_fn(jax.random.PRNGKey(0), X.shape)
    w, b = params[0]
    assert shape == X.shape and w.shape == (3, 4, 4) and b.shape == (3, 1, 4)  # neural-tangents' layout
    unrolled = stax.serial(*[block] * 3)
    unstacked = tuple(jax.tree_util.tree_map(lambda a, i=i: a[i], params) for i in range(3))
    np.testing.assert_allclose(np.asarray(apply_fn(params, X)), np.asarray(unrolled[1](unstacked, X)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(kernel_fn(X, None, "ntk")), np.asarray(unrolled[2](X, None, "ntk")),
                               rtol=1e-14)


@pytest.mark.parametrize("n, match", [(-1, r"repeat: `n` must be an integer >= 0, got -1"),
                                      (2.0, r"repeat: `n` must be an integer >= 0, got 2.0")])
def test_repeat_bad_n(n, match):
    with pytest.raises(ValueError, match=match):
        stax.repeat(stax.Relu(), n)


def test_repeat_of_a_shape_changing_layer_is_refused():
    with pytest.raises(ValueError, match=r"repeat: the layer changes the shape \(3, 4\) into \(3, 8\)"):
        stax.repeat(stax.Dense(8), 2)[0](jax.random.PRNGKey(0), X.shape)


IMAGES = np.random.default_rng(2).normal(size=(2, 3, 4, 2))


def test_index_finite_layer_is_numpy_indexing_and_slice_builds_the_index():
    idx = stax.Slice[:, 1:, ..., ::-1]
    assert idx == (slice(None), slice(1, None), Ellipsis, slice(None, None, -1))
    init_fn, apply_fn, _ = stax.Index(idx)
    np.testing.assert_array_equal(np.asarray(apply_fn((), IMAGES)), IMAGES[:, 1:, :, ::-1])
    assert init_fn(jax.random.PRNGKey(0), IMAGES.shape)[0] == IMAGES[:, 1:, :, ::-1].shape


def test_index_kernel_is_the_sub_kernel_of_the_selected_positions():
    # The kernel of rows 1: and reversed columns is the matching sub-array of the full spatial kernel.
    conv = stax.serial(stax.Conv(4, (2, 2), padding="SAME"), stax.Relu())
    full = np.asarray(conv[2](IMAGES, None, "nngp"))  # (n1, n2, H1, H2, W1, W2)
    sub = np.asarray(stax.serial(conv, stax.Index(stax.Slice[:, 1:, ::-1]))[2](IMAGES, None, "nngp"))
    np.testing.assert_array_equal(sub, full[:, :, 1:, 1:, ::-1, ::-1])


@pytest.mark.parametrize("idx, error, match", [
    (stax.Slice[..., 0], NotImplementedError, r"Index: indexing the channel axis"),
    (stax.Slice[::2], NotImplementedError, r"Index: indexing the batch axis \(slice\(None, None, 2\)"),
    (stax.Slice[:, [0, 1]], TypeError, r"Index: `idx` may hold only slices, integers and `...`"),
    (stax.Slice[..., :, ...], ValueError, r"Index: `idx` may hold at most one `...`"),
    (stax.Slice[:, :, :, :, :], ValueError, r"Index: `idx` .* has 5 entries for activations with 4 axes"),
])
def test_index_bad_index_is_refused(idx, error, match):
    with pytest.raises(error, match=match):
        stax.serial(stax.Conv(4, (2, 2)), stax.Index(idx))[2](IMAGES, None, "nngp")


@pytest.mark.slow  # 20-80 s at load ~30 (compilation); not profiled
@pytest.mark.parametrize("new, method", [((5, 3), "linear")])
def test_image_resize_kernel_is_the_resize_matrix_on_both_position_axes(new, method):
    # The finite layer is y = M_H x M_W^T per channel (M from resizing unit vectors with the layer's own
    # apply_fn), so the kernel must be M_H M_H M_W M_W applied to K. After one Conv, where
    # neural-tangents 0.6.5 resizes the wrong axes (off by up to 0.39 here).
    import jax.numpy as jnp

    def matrix(n_in, n_out):
        resize = stax.ImageResize((-1, n_out, -1), method)[1]
        return np.asarray(resize((), jnp.eye(n_in)[:, :, None]))[:, :, 0].T  # (n_out, n_in)

    x = 0.8 * np.random.default_rng(0).normal(size=(2, 3, 2, 2))
    base = stax.serial(stax.Conv(8, (2, 2), padding="SAME", W_std=1.5, b_std=0.1), stax.Relu())
    k = np.asarray(base[2](x, None, "nngp"))
    m_h, m_w = matrix(3, new[0]), matrix(2, new[1])
    want = np.einsum("pa,qb,rc,sd,ijabcd->ijpqrs", m_h, m_h, m_w, m_w, k)
    got = np.asarray(stax.serial(base, stax.ImageResize((-1,) + new + (-1,), method))[2](x, None, "nngp"))
    # M comes from the float32 finite layer (entries like 1/3 to 6e-8): 1e-6 relative.
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("kwargs, error, match", [
    ({"shape": (-1, 4, 4, 3), "method": "linear"}, ValueError, r"ImageResize: resizing the channel axis"),
    ({"shape": (2, 4, 4, -1), "method": "linear"}, NotImplementedError, r"ImageResize: resizing the batch axis"),
    ({"shape": (-1, 4, 4, -1), "method": "bogus"}, ValueError, r"ImageResize: `method` must be"),
    ({"shape": (-1, 0, 4, -1), "method": "linear"}, ValueError, r"ImageResize: `shape` must be positive sizes"),
])
def test_image_resize_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        stax.ImageResize(**kwargs)


def test_image_resize_kernel_refuses_cubic_but_apply_runs_it():
    layer = stax.ImageResize((-1, 4, 3, -1), "cubic")
    assert layer[1]((), IMAGES).shape == (2, 4, 3, 2)
    with pytest.raises(NotImplementedError, match="ImageResize: kernel_fn supports only the methods"):
        stax.serial(stax.Conv(4, (2, 2)), layer)[2](IMAGES, None, "nngp")


def test_image_resize_shape_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match=r"ImageResize: `shape` \(-1, 4, -1\) has 3 entries for inputs with 4 axes"):
        stax.ImageResize((-1, 4, -1), "linear")[0](jax.random.PRNGKey(0), IMAGES.shape)
