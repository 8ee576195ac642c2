"""The formulas of ``ntkcourse.stax.spatial`` against values computed here by hand.

The window sums of convolutions and pools on covariances, the pooling
matrices, the reshapes that broadcast variances against a kernel, and the
masks of a window op's output are compared with a plain Python loop over
output positions and filter offsets (:func:`_reference_window_sum`), whose
output sizes and low pads come from JAX itself (``lax.padtype_to_pads`` and
the shape ``lax.reduce_window`` gives), not from ``spatial.pad_amounts``.
These are direct calls on small arrays (no ``kernel_fn``), a few seconds of
CPU in all, so that the mutation run of ``stax`` (``tools/mutation.py``)
reaches every function of the file cheaply.

Values are float64: the sums have at most a dozen terms of standard normal
entries, so the two orders of addition agree to 1e-13 absolute.
"""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from ntkcourse.engine import one_program
from ntkcourse.kernel import Kernel
from ntkcourse.stax import spatial


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _jit(fn, *args):
    """``fn(array, *args)`` compiled as one program (eagerly, each small operation compiles apart: 5x the CPU)."""
    return jax.jit(lambda a: fn(a, *args))


def _close(got, expected):
    """Sums of <= 16 products of standard normal entries in another order: 1e-13 absolute, exact shape."""
    got = np.asarray(got)
    assert got.shape == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-13)


def _geometry(size, window, stride, padding):
    """(output size, low pad) of a window op from JAX: reduce_window's output shape, padtype_to_pads' low pad."""
    pad = "SAME" if padding == "CIRCULAR" else padding
    out = jax.eval_shape(lambda v: lax.reduce_window(v, 0.0, lax.add, (window,), (stride,), pad),
                         jax.ShapeDtypeStruct((size,), jnp.float64)).shape[0]
    lo = lax.padtype_to_pads((size,), (window,), (stride,), pad)[0][0]
    return out, lo


def _reference_window_sum(x, dims, padding):
    """Σ over filter offsets d (one per dimension, shared by the axes of a pair) of x[o s + d − lo] on every listed
    axis: zero outside the input ('SAME', 'VALID'), or read modulo the size ('CIRCULAR', with 'SAME''s geometry).
    """
    x = np.asarray(x)
    geometry = [(axes, window, stride, x.shape[axes[0]], *_geometry(x.shape[axes[0]], window, stride, padding))
                for axes, window, stride in dims]
    out_shape = list(x.shape)
    for axes, _, _, _, out, _ in geometry:
        for a in axes:
            out_shape[a] = out
    result = np.zeros(out_shape, x.dtype)
    for idx in np.ndindex(*out_shape):
        for offsets in itertools.product(*(range(window) for _, window, _ in dims)):
            src, inside = list(idx), True
            for (axes, _, stride, size, _, lo), d in zip(geometry, offsets):
                for a in axes:
                    p = idx[a] * stride + d - lo
                    if padding == "CIRCULAR":
                        p %= size
                    inside &= 0 <= p < size
                    src[a] = p
            if inside:
                result[idx] += x[tuple(src)]
    return result


def _normal(shape, seed, complex_=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    return x + 1j * rng.standard_normal(shape) if complex_ else x


# (shape, dims, padding): pairs of axes (a covariance's two positions) and single axes (a diagonal), windows
# larger than the input (offsets whose every read falls in the padding), strides 1-3.
WINDOWS = [
    ((2, 5, 5, 4, 4), [((1, 2), 3, 2), ((3, 4), 2, 1)], "SAME"),
    ((2, 5, 5, 4, 4), [((1, 2), 4, 1), ((3, 4), 1, 1)], "VALID"),
    ((3, 7, 2), [((1,), 3, 2), ((2,), 4, 1)], "SAME"),
    ((2, 1, 5), [((1,), 3, 1), ((2,), 2, 2)], "SAME"),
    ((2, 6, 3), [((1,), 2, 3), ((2,), 3, 1)], "VALID"),
    ((3, 7, 7), [((1, 2), 3, 3)], "VALID"),
    ((2, 4, 4, 5, 5), [((1, 2), 2, 1), ((3, 4), 3, 2)], "SAME"),
]


@pytest.mark.parametrize("shape, dims, padding", WINDOWS)
def test_pad_amounts_are_the_output_size_and_pads_of_jax_window_ops(shape, dims, padding):
    for axes, window, stride in dims:
        size = shape[axes[0]]
        out, lo = _geometry(size, window, stride, padding)
        hi = 0 if padding == "VALID" else max((out - 1) * stride + window - size, 0) - lo
        assert spatial.pad_amounts(size, window, stride, padding) == (out, lo, hi)


@pytest.mark.parametrize("size, window, stride", [(6, 1, 2), (8, 2, 3), (5, 1, 1)])
def test_pad_amounts_of_same_windows_that_cover_the_input_pad_nothing(size, window, stride):
    """'SAME' windows whose span (out − 1) s + w is at most the size: no padding on either side (JAX's pads)."""
    out, lo = _geometry(size, window, stride, "SAME")
    assert lo == 0
    assert spatial.pad_amounts(size, window, stride, "SAME") == (out, 0, 0)


def test_pad_amounts_refuses_a_window_larger_than_a_valid_input():
    with pytest.raises(ValueError, match=r"^a window of size 4 does not fit an input of size 3 with 'VALID' "
                                         r"padding\.$"):
        spatial.pad_amounts(3, 4, 1, "VALID")


def test_pad_amounts_takes_a_window_equal_to_a_valid_input():
    assert spatial.pad_amounts(3, 3, 2, "VALID") == (1, 0, 0)


@pytest.mark.parametrize("shape, dims, padding", WINDOWS)
def test_window_average_is_the_mean_over_filter_offsets_of_the_shifted_entries(shape, dims, padding):
    x = _normal(shape, 0)
    expected = _reference_window_sum(x, dims, padding) / math.prod(w for _, w, _ in dims)
    _close(_jit(spatial.window_average, dims, padding)(x), expected)


@pytest.mark.parametrize("shape, dims, padding", WINDOWS)
def test_window_sum_as_one_convolution_is_the_sum_over_filter_offsets(shape, dims, padding):
    x = _normal(shape, 1)
    _close(_jit(spatial.window_sum_as_conv, dims, padding)(x), _reference_window_sum(x, dims, padding))


def test_window_sum_as_conv_of_a_complex_array_sums_both_parts():
    """'VALID' padding (an unknown padding would be taken as 'SAME' by pad_amounts, with another output size)."""
    dims, shape = [((1, 2), 3, 2)], (2, 6, 6)
    x = _normal(shape, 2, complex_=True)
    got = _jit(spatial.window_sum_as_conv, dims, "VALID")(x)
    assert jnp.iscomplexobj(got)
    _close(got, _reference_window_sum(x, dims, "VALID"))


def test_window_sum_as_conv_of_a_float32_array_computes_in_float32():
    """The zero padding and the filter of ones take the array's dtype (in 64-bit mode a float64 one would not
    match a float32 operand): float32 out, equal to the float64 sums to float32 round-off (sums of 9 terms).
    """
    dims, shape = [((1, 2), 3, 2)], (2, 5, 5)
    x = _normal(shape, 22)
    got = _jit(spatial.window_sum_as_conv, dims, "SAME")(x.astype(np.float32))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, _reference_window_sum(x, dims, "SAME"), rtol=0, atol=1e-5)


def test_window_average_inside_one_program_is_the_same_average():
    """Inside engine.one_program the average is taken as one convolution (window_sum_as_conv) divided by the
    window size: the same values as the loop ('VALID' padding, whose geometry pad_amounts gives no other name).
    """
    shape, dims, padding = (2, 5, 5, 4, 4), [((1, 2), 4, 1), ((3, 4), 1, 1)], "VALID"
    x = _normal(shape, 3)

    def inside(a):
        with one_program():
            return spatial.window_average(a, dims, padding)

    got = jax.jit(inside)(x)
    _close(got, _reference_window_sum(x, dims, padding) / 4)


def test_conv_pair_axes_averages_along_the_diagonal_of_one_pair_of_axes():
    """'VALID' padding, whose output size differs from that of 'SAME' (which pad_amounts takes for any other)."""
    x = _normal((2, 3, 6, 6, 2), 4)
    expected = _reference_window_sum(x, [((2, 3), 3, 2)], "VALID") / 3
    _close(_jit(spatial.conv_pair_axes, 2, 3, 2, "VALID")(x), expected)


@pytest.mark.parametrize("dims", [[((1, 2), 3, 2), ((3, 4), 2, 1)], [((1,), 4, 1), ((2,), 3, 3)]],
                         ids=["pairs", "diagonal"])
def test_circular_window_average_reads_positions_modulo_the_size(dims):
    x = _normal((2, 5, 5, 4, 4) if len(dims[0][0]) == 2 else (2, 5, 4), 5)
    expected = _reference_window_sum(x, dims, "CIRCULAR") / math.prod(w for _, w, _ in dims)
    _close(_jit(spatial.circular_window_average, dims)(x), expected)


def test_circular_pad_wraps_each_listed_axis_by_the_same_pads():
    """A (2, 5, 4) array padded for a window of 4 (stride 1) on axis 1 and 3 (stride 2) on axis 2: 'SAME''s
    pads (1, 2) and (0, 1) from JAX, filled with x[(i - lo) mod n]; the batch axis is not padded.
    """
    x = _normal((2, 5, 4), 6)
    got = np.asarray(_jit(spatial.circular_pad, [((1,), 4, 1), ((2,), 3, 2)])(x))
    rows, cols = (np.arange(-1, 5 + 2) % 5), (np.arange(0, 4 + 1) % 4)
    np.testing.assert_array_equal(got, x[:, rows][:, :, cols])


def _matrix_from_columns(size, window, stride, padding):
    """The matrix of the window sum along one axis, column j the sum applied to the unit vector e_j."""
    eye = np.eye(size)
    return np.stack([_reference_window_sum(e, [((0,), window, stride)], padding) for e in eye], axis=1)


@pytest.mark.parametrize("size, window, stride", [(5, 3, 2), (4, 2, 2), (6, 4, 1), (3, 5, 2)])
def test_circular_pool_matrix_averages_each_window_modulo_the_size(size, window, stride):
    expected = _matrix_from_columns(size, window, stride, "CIRCULAR") / window
    _close(spatial.circular_pool_matrix(size, window, stride), expected)


@pytest.mark.parametrize("size, window, stride, padding", [(5, 3, 2, "SAME"), (6, 4, 1, "SAME"),
                                                           (7, 3, 2, "VALID"), (4, 4, 1, "VALID")])
@pytest.mark.parametrize("normalize_edges", [False, True])
def test_pool_matrix_averages_each_window_over_its_size_or_its_real_entries(size, window, stride, padding,
                                                                            normalize_edges):
    """normalize_edges=False: each window's sum divided by the filter size (padding counts as zeros); True:
    divided by the number of its entries inside the input.
    """
    sums = _matrix_from_columns(size, window, stride, padding)
    counts = sums.sum(axis=1, keepdims=True) if normalize_edges else window
    _close(spatial.pool_matrix(size, window, stride, padding, normalize_edges), sums / counts)


def test_pool_pair_axes_multiplies_p_on_the_first_axis_and_q_on_the_second():
    x = _normal((2, 3, 4, 5), 7)
    p, q = _normal((2, 3), 8), _normal((3, 4), 9)
    _close(_jit(spatial.pool_pair_axes, 1, p, q)(x), np.einsum("ah,bk,nhkw->nabw", p, q, x))


def test_pool_pair_axes_uses_p_on_both_axes_by_default():
    x = _normal((2, 3, 3, 5), 10)
    p = _normal((2, 3), 11)
    _close(_jit(spatial.pool_pair_axes, 1, p)(x), np.einsum("ah,bk,nhkw->nabw", p, p, x))


def test_pool_pair_axes_computes_in_the_dtype_of_the_array():
    got = _jit(spatial.pool_pair_axes, 1, np.full((1, 2), 0.5))(np.ones((1, 2, 2), np.float32))
    assert got.dtype == jnp.float32
    _close(np.asarray(got, np.float64), np.ones((1, 1, 1)))


def test_interleave_ones_broadcasts_two_variances_to_every_pair_of_inputs_and_positions():
    """Cross kernel (n1, n2, H, H', W, W'): left (n1, 1, H, 1, W, 1), right (1, n2, 1, H', 1, W')."""
    v1, v2 = _normal((2, 3, 4), 12), _normal((3, 3, 4), 13)
    a = spatial.interleave_ones(jnp.asarray(v1), 2, left=True, batch_pair=True)
    b = spatial.interleave_ones(jnp.asarray(v2), 2, left=False, batch_pair=True)
    assert (a.shape, b.shape) == ((2, 1, 3, 1, 4, 1), (1, 3, 1, 3, 1, 4))
    _close(np.asarray(a) * np.asarray(b), np.einsum("ihw,jkv->ijhkwv", v1, v2))


def test_interleave_ones_of_a_self_kernel_pairs_the_positions_of_one_input():
    v = _normal((2, 3, 4), 14)
    a = spatial.interleave_ones(jnp.asarray(v), 2, left=True, batch_pair=False)
    b = spatial.interleave_ones(jnp.asarray(v), 2, left=False, batch_pair=False)
    assert (a.shape, b.shape) == ((2, 3, 1, 4, 1), (2, 1, 3, 1, 4))
    _close(np.asarray(a) * np.asarray(b), np.einsum("ihw,ikv->ihkwv", v, v))


def test_interleave_ones_of_a_diagonal_kernel_keeps_the_spatial_axes():
    v1, v2 = _normal((2, 3, 4), 15), _normal((3, 3, 4), 16)
    a = spatial.interleave_ones(jnp.asarray(v1), 2, left=True, batch_pair=True, diagonal=True)
    b = spatial.interleave_ones(jnp.asarray(v2), 2, left=False, batch_pair=True, diagonal=True)
    assert (a.shape, b.shape) == ((2, 1, 3, 4), (1, 3, 3, 4))
    _close(np.asarray(a) * np.asarray(b), np.einsum("ihw,jhw->ijhw", v1, v2))


def _kernel(diagonal=False, sizes=(2, 3), with_cov2=True, with_ntk=True):
    """A Kernel of 1-D, 2-D or 3-D spatial axes of the given sizes, entries standard normal, n1 = 2, n2 = 3."""
    spatial_shape = sizes if diagonal else tuple(s for size in sizes for s in (size, size))
    return Kernel(nngp=jnp.asarray(_normal((2, 3) + spatial_shape, 17)),
                  ntk=jnp.asarray(_normal((2, 3) + spatial_shape, 18)) if with_ntk else None,
                  cov1=jnp.asarray(_normal((2,) + spatial_shape, 19)),
                  cov2=jnp.asarray(_normal((3,) + spatial_shape, 20)) if with_cov2 else None,
                  shape1=(2,) + sizes + (5,), shape2=(3,) + sizes + (5,), diagonal_spatial=diagonal)


def _scaled_by_batch_ndim(x, batch_ndim):
    """A linear map that tells the two batch ranks apart: x (1 + batch_ndim)."""
    return x * (1 + batch_ndim)


@pytest.mark.parametrize("ntk_too", [True, False])
def test_map_kernel_applies_the_map_to_each_covariance_with_its_batch_rank(ntk_too):
    k = _kernel(sizes=(2,))
    got = spatial.map_kernel(k, _scaled_by_batch_ndim, ntk_too=ntk_too)
    nngp, ntk, cov1, cov2 = (np.asarray(a) for a in (k.nngp, k.ntk, k.cov1, k.cov2))
    _close(got.nngp, _scaled_by_batch_ndim(nngp, 2))
    _close(got.ntk, _scaled_by_batch_ndim(ntk, 2) if ntk_too else ntk)
    _close(got.cov1, _scaled_by_batch_ndim(cov1, 1))
    _close(got.cov2, _scaled_by_batch_ndim(cov2, 1))
    assert (got.shape1, got.shape2) == (k.shape1, k.shape2)


def test_map_kernel_leaves_a_missing_cov2_and_ntk_missing():
    got = spatial.map_kernel(_kernel(sizes=(2,), with_cov2=False, with_ntk=False), _scaled_by_batch_ndim)
    assert got.cov2 is None and got.ntk is None


@pytest.mark.parametrize("diagonal", [False, True])
def test_permute_spatial_moves_both_positions_of_each_axis_and_the_shapes(diagonal):
    """The permutation (2, 0, 1) on spatial sizes (2, 3, 4): the result's axes have sizes (4, 2, 3), entry-wise the
    transposes written out by hand.
    """
    k = _kernel(diagonal, sizes=(2, 3, 4))
    got = spatial.permute_spatial(k, (2, 0, 1))
    if diagonal:
        pair, single = (0, 1, 4, 2, 3), (0, 3, 1, 2)
    else:
        pair, single = (0, 1, 6, 7, 2, 3, 4, 5), (0, 5, 6, 1, 2, 3, 4)
    for name, order in (("nngp", pair), ("ntk", pair), ("cov1", single), ("cov2", single)):
        np.testing.assert_array_equal(getattr(got, name), np.transpose(getattr(k, name), order), err_msg=name)
    assert (got.shape1, got.shape2) == ((2, 4, 2, 3, 5), (3, 4, 2, 3, 5))


def test_permute_spatial_leaves_a_missing_cov2_missing():
    assert spatial.permute_spatial(_kernel(with_cov2=False), (1, 0)).cov2 is None


def test_permute_spatial_by_the_identity_returns_the_kernel_itself():
    k = _kernel()
    assert spatial.permute_spatial(k, (0, 1)) is k


def test_conv_relayout_orders_the_spatial_axes_as_the_output_spec_and_records_its_layout():
    """Output spec 'NWCH' of an 'NCHW' input: spatial axes (W, H), the batch at 0 and channels at 2."""
    k = _kernel()
    got = spatial.conv_relayout(k, ("NCHW", "OIHW", "NWCH"))
    np.testing.assert_array_equal(got.nngp, np.transpose(k.nngp, (0, 1, 4, 5, 2, 3)))
    np.testing.assert_array_equal(got.cov2, np.transpose(k.cov2, (0, 3, 4, 1, 2)))
    assert got.shape1 == (2, 3, 2, 5)
    assert got.layout == (0, 2)


def test_conv_relayout_to_the_default_layout_records_none():
    k = _kernel().replace(layout=(0, 1))
    assert spatial.conv_relayout(k, ("NCHW", "OIHW", "NHWC")).layout is None


def _reference_step_mask(mask, windows, strides, padding):
    """Output position o is real when its window's centre, input position o s − lo + (w − 1) // 2, is."""
    index = [np.arange(mask.shape[0])]
    for i, (window, stride) in enumerate(zip(windows, strides)):
        out, lo = _geometry(mask.shape[1 + i], window, stride, padding)
        index.append(np.arange(out) * stride - lo + (window - 1) // 2)
    return mask[np.ix_(*index)]


@pytest.mark.parametrize("windows, strides, padding", [((3,), (2,), "SAME"), ((4,), (1,), "SAME"),
                                                       ((2,), (3,), "VALID"), ((3,), (1,), "CIRCULAR"),
                                                       ((2, 3), (1, 2), "SAME"), ((3, 2), (2, 1), "VALID")])
def test_window_step_mask_keeps_the_positions_whose_window_is_centred_on_a_real_one(windows, strides, padding):
    rng = np.random.default_rng(21)
    mask = rng.random((2, 7) if len(windows) == 1 else (2, 7, 6)) < 0.6
    got = spatial.window_step_mask("Conv", jnp.asarray(mask), windows, strides, padding)
    np.testing.assert_array_equal(got, _reference_step_mask(mask, windows, strides, padding))


def test_window_step_mask_refuses_a_window_of_another_rank_naming_the_layer():
    with pytest.raises(ValueError, match=r"^AvgPool: padded inputs \(kernel_fn\(\.\.\., mask_constant=\.\.\.\)\) "
                                         r"have masks over 1 spatial axes, but the window has shape \(3, 3\)\.$"):
        spatial.window_step_mask("AvgPool", jnp.ones((2, 5), bool), (3, 3), (1, 1), "SAME")
