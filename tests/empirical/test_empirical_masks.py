"""The empirical NTK of a stax network on padded inputs (``mask_constant``
passed to the kernel function, which passes it to ``apply_fn``): the
structured path, which walks the network layer by layer, carries the masks
of the inputs between the layers as ``apply_fn`` does
(``ntkcourse.stax.masked``), so it is the Jacobian product of ``apply_fn``
itself. Before, each layer of the walk re-read the padding from its input
values (a real step with all-zero ReLU outputs became padding) and let the
probes of padded positions through.
"""
import jax
import jax.numpy as jnp
import numpy as np

from ntkcourse import empirical, stax


def test_structured_ntk_of_padded_sequences_is_the_jacobian_product_of_the_masked_apply_fn():
    x = np.random.default_rng(9).normal(size=(3, 6, 2))
    x[0, 4:], x[2, 3:] = 0.0, 0.0  # 4, 6 and 3 real steps, padded with mask_constant = 0
    first = [stax.Conv(2, (2,), padding="SAME", W_std=1.4, b_std=0.1), stax.Relu()]
    network = stax.serial(*first, stax.Dense(1, b_std=0.2), stax.GlobalAvgPool())
    with jax.enable_x64(True):
        shapes = jax.eval_shape(lambda k: network[0](k, x.shape)[1], jax.random.PRNGKey(0))
        rng = np.random.default_rng(10)
        params = jax.tree_util.tree_map(lambda s: jnp.asarray(rng.normal(size=s.shape)), shapes)
        hidden = np.asarray(stax.serial(*first)[1](params[:2], jnp.asarray(x)))
        # the fault's condition: a real step whose two hidden channels are exactly zero
        assert np.any(np.all(hidden == 0.0, axis=-1) & ~np.all(x == 0.0, axis=-1))
        got, want = (np.asarray(empirical.empirical_ntk_fn(network, implementation=impl)(
            x, None, params, mask_constant=0.0)) for impl in ("structured", "jacobian"))
    # The same sums of float64 products in another order: round-off only.
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_structured_ntk_with_an_all_padding_input_is_the_jacobian_product_and_zero_for_it():
    # A batch padded with a dummy input made only of padding (x[1]): it stays padding after the global pool, so
    # apply_fn returns mask_constant for it whatever the parameters and its entries are 0 (neural-tangents'
    # empirical NTK of unmask_fn(apply_fn) gives 0 there too); the walk's probes carry the readout's masks.
    x = np.random.default_rng(11).normal(size=(3, 4, 2))
    x[1], x[2, 3:] = 5.0, 5.0
    network = stax.serial(stax.Conv(2, (2,), padding="SAME", W_std=1.4, b_std=0.1), stax.Relu(), stax.GlobalAvgPool(),
                          stax.Dense(1, b_std=0.2))
    with jax.enable_x64(True):
        shapes = jax.eval_shape(lambda k: network[0](k, x.shape)[1], jax.random.PRNGKey(0))
        rng = np.random.default_rng(12)
        params = jax.tree_util.tree_map(lambda s: jnp.asarray(rng.normal(size=s.shape)), shapes)
        got, want = (np.asarray(empirical.empirical_ntk_fn(network, implementation=impl)(
            x, None, params, mask_constant=5.0)) for impl in ("structured", "jacobian"))
    np.testing.assert_array_equal(want[1], 0.0)
    np.testing.assert_array_equal(want[:, 1], 0.0)
    # The same sums of float64 products in another order: round-off only (the zeros exactly).
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0.0)


def test_empirical_nngp_of_an_all_padding_input_is_zero_not_the_padding_value():
    # apply_fn returns mask_constant for an input made only of padding (it is padding after the readout); the
    # empirical NNGP takes the outputs with zeros there (neural-tangents' unmask_fn), so its entries are 0 as the
    # kernel's, where mask_constant would give 25 on the diagonal. The other entries are the outputs' products.
    x = np.random.default_rng(11).normal(size=(3, 4, 2))
    x[1] = 5.0
    network = stax.serial(stax.Dense(3, b_std=0.1), stax.Relu(), stax.GlobalAvgPool(), stax.Dense(1, b_std=0.2))
    with jax.enable_x64(True):
        shapes = jax.eval_shape(lambda k: network[0](k, x.shape)[1], jax.random.PRNGKey(0))
        rng = np.random.default_rng(13)
        params = jax.tree_util.tree_map(lambda s: jnp.asarray(rng.normal(size=s.shape)), shapes)
        nngp = np.asarray(empirical.empirical_nngp_fn(network)(x, None, params, mask_constant=5.0))
        out = np.asarray(network[1](params, jnp.asarray(x), mask_constant=5.0))
    assert out[1, 0] == 5.0
    np.testing.assert_array_equal(nngp[1], 0.0)
    np.testing.assert_array_equal(nngp[:, 1], 0.0)
    # one output: the NNGP is the outer product of the outputs (float64 round-off only)
    np.testing.assert_allclose(nngp[np.ix_([0, 2], [0, 2])], np.outer(out[[0, 2], 0], out[[0, 2], 0]), rtol=1e-12)
