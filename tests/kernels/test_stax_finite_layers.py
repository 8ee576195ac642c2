"""What the stax layers promise besides their kernel values, against NumPy and hand-worked values.

* The finite layers (``init_fn``, ``apply_fn``): the batch and channel axes
  elsewhere than first and last (neural-tangents' ``batch_axis``,
  ``channel_axis``, ``batch_axis_out``), the standard parameterisation's
  initial scales, output shapes, the activations' functions with their
  arguments in the documented order, ``serial``/``parallel``/``FanOut``/
  ``FanInSum`` networks, and ``apply_fn(..., mask_constant=)`` on padded
  sequences.
* What a layer declares to the rest of the package: the multipliers of the
  structured empirical NTK (the squares of those ``apply_fn`` uses) and which
  positions of its input kernel a readout reads.
* Every refusal, worded in full (the layer, the argument, the value, what
  was expected): constructor arguments, layouts ``kernel_fn`` cannot take,
  padded sequences reaching a layer without padding rules, a diagonal-only
  kernel reaching a pooling layer.

Written from the survivors of a mutation run (``tools/mutation.py stax``).
Expected values are NumPy's ``moveaxis``/``reshape``/``mean`` of the same
arrays or the layer's own scalars worked by hand; float64 round-off only,
hence rtol 1e-13.
"""
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from ntkcourse import stax
from ntkcourse.stax.layer import layer_spec, stages_of

RTOL = 1e-13  # float64 products of a handful of terms


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_dense_on_a_middle_channel_axis_is_the_default_dense_on_moved_axes():
    """Dense(channel_axis=1) on (n, C, T): init shape (n, out, T), bias (1, out, 1), and
    apply_fn = the last-axis layer applied to moveaxis(x, 1, -1), moved back.
    """
    x = _x((2, 3, 4))
    init, apply_fn, _ = stax.Dense(5, W_std=1.3, b_std=0.7, channel_axis=1)
    with jax.enable_x64(True):
        shape, (w, b) = init(jax.random.PRNGKey(0), x.shape)
        out = np.asarray(apply_fn((w, b), jnp.asarray(x)))
    assert tuple(shape) == (2, 5, 4) and w.shape == (3, 5) and b.shape == (1, 5, 1)
    moved = np.moveaxis(x, 1, -1)
    expected = 1.3 / np.sqrt(3) * moved @ np.asarray(w) + 0.7 * np.asarray(b).reshape(5)
    np.testing.assert_allclose(out, np.moveaxis(expected, -1, 1), rtol=RTOL)


def test_dense_refuses_params_of_another_input_size_naming_both():
    """apply_fn with W of 3 inputs on 4-feature inputs: the error names both feature counts."""
    init, apply_fn, _ = stax.Dense(2)
    _, params = init(jax.random.PRNGKey(0), (1, 3))
    with pytest.raises(ValueError, match=r"^Dense: input has 4 features but the layer's `params` expect 3\.$"):
        apply_fn(params, jnp.ones((1, 4)))


def test_flatten_moves_the_batch_axis_then_flattens_in_order_and_can_put_it_last():
    """Flatten(batch_axis=1, batch_axis_out=1) on (C, n, H): shape (C H, n), entries moveaxis + reshape + T."""
    x = _x((3, 2, 4))
    init, apply_fn, _ = stax.Flatten(batch_axis=1, batch_axis_out=1)
    shape, _ = init(None, x.shape)
    assert tuple(shape) == (12, 2)
    with jax.enable_x64(True):
        out = np.asarray(apply_fn((), jnp.asarray(x)))
    np.testing.assert_array_equal(out, np.moveaxis(x, 1, 0).reshape(2, 12).T)


def test_flatten_batch_axis_out_minus_one_is_the_last_of_two_axes():
    """batch_axis_out=-1 means 1 for the two output axes: shape (rest, n)."""
    init, _, _ = stax.Flatten(batch_axis_out=-1)
    assert tuple(init(None, (2, 3, 4))[0]) == (12, 2)


def test_global_avg_pool_keeps_batch_and_channel_axes_in_their_order():
    """GlobalAvgPool(batch_axis=2, channel_axis=0) on (C, H, n, W): the mean over H and W, shape (C, n)."""
    x = _x((3, 4, 2, 5))
    init, apply_fn, _ = stax.GlobalAvgPool(batch_axis=2, channel_axis=0)
    assert tuple(init(None, x.shape)[0]) == (3, 2)
    with jax.enable_x64(True):
        out = np.asarray(apply_fn((), jnp.asarray(x)))
    np.testing.assert_allclose(out, x.mean(axis=(1, 3)), rtol=RTOL)


def test_global_avg_pool_with_channels_first_hands_channels_first_outputs_to_the_next_layer():
    """GlobalAvgPool(batch_axis=-1, channel_axis=0) on (C, T, n) inputs outputs (C, n), so a following
    Dense(batch_axis=1, channel_axis=0) is accepted by kernel_fn, with NNGP 1.5² m·m'/3 + 0.5², m the mean over
    T of each input's (T, C) features (the input kernel x·x'/C averaged over all pairs of steps).
    """
    x = _x((3, 4, 2), 1)
    net = stax.serial(stax.GlobalAvgPool(batch_axis=-1, channel_axis=0),
                      stax.Dense(2, W_std=1.5, b_std=0.5, batch_axis=1, channel_axis=0))
    with jax.enable_x64(True):
        nngp = np.asarray(net[2](x, None, "nngp"))
    m = x.mean(axis=1).T
    np.testing.assert_allclose(nngp, 1.5**2 * m @ m.T / 3 + 0.5**2, rtol=RTOL)


def test_global_avg_pool_declares_its_axes():
    """layer_spec's config holds the validated axes, as neural-tangents' layers report their arguments."""
    assert layer_spec(stax.GlobalAvgPool(batch_axis=2, channel_axis=0)).config == {"batch_axis": 2, "channel_axis": 0}


def test_global_avg_pool_kernel_has_no_spatial_axes_left():
    """After GlobalAvgPool the Kernel records (n, C) shapes and diagonal_spatial exactly False (the documented
    bool; nothing spatial is left to be diagonal).
    """
    k = stax.serial(stax.Dense(2), stax.GlobalAvgPool())[2](_x((2, 4, 3)), None, None)
    assert (tuple(k.shape1), k.diagonal_spatial) == ((2, 2), False)
    assert k.diagonal_spatial is False


def test_global_avg_pool_of_sequences_has_the_batch_by_channels_shape_apply_fn_gives():
    """Sequences (n, T, C) have one spatial axis: init_fn gives (n, C), the shape of apply_fn's mean over T."""
    x = _x((2, 5, 3))
    init, apply_fn, _ = stax.GlobalAvgPool()
    with jax.enable_x64(True):
        out = np.asarray(apply_fn((), jnp.asarray(x)))
    assert tuple(init(None, x.shape)[0]) == out.shape == (2, 3)
    np.testing.assert_allclose(out, x.mean(axis=1), rtol=RTOL)


def test_global_avg_pool_refuses_equal_batch_and_channel_axes():
    """batch_axis=1 and channel_axis=-3 are one axis of a 4-axis input: init_fn and apply_fn refuse it, naming
    the layer and both axes.
    """
    init, apply_fn, _ = stax.GlobalAvgPool(batch_axis=1, channel_axis=-3)
    message = re.escape("GlobalAvgPool: `batch_axis` and `channel_axis` must differ, got 1 and -3 for inputs with "
                        "4 axes.")
    with pytest.raises(ValueError, match=message):
        init(None, (2, 3, 4, 5))
    with pytest.raises(ValueError, match=message):
        apply_fn((), jnp.zeros((2, 3, 4, 5)))


@pytest.mark.parametrize("parameterization, b_std, expected", [
    ("ntk", 0.7, (1.3**2 / 4, 0.7**2)),  # W multiplied by W_std/sqrt(n_in), b by b_std
    ("ntk", None, (1.3**2 / 4, 0.0)),  # no bias
    ("standard", 0.7, (1.0, 1.0)),  # W and b enter unscaled (their scale is in init)
])
def test_dense_structured_rule_gives_the_squared_multipliers_of_apply_fn(parameterization, b_std, expected):
    """Dense(W_std=1.3) on 4 features: the structured rule's (c_w², c_b²) and identity patches."""
    rule = layer_spec(stax.Dense(3, W_std=1.3, b_std=b_std, parameterization=parameterization)).structured
    assert rule.scales(4) == pytest.approx(expected, rel=1e-15)
    x = _x((2, 4))
    np.testing.assert_array_equal(rule.patches(x), x)


def test_conv_structured_rule_divides_by_the_filter_size_and_reads_patches():
    """Conv((3, 2), W_std=1.2, b_std=0.4) on 2 channels: c_w² = 1.44/(2·6), c_b² = 0.16; patches are
    lax.conv_general_dilated_patches of the input with the layer's filter, strides and padding.
    """
    rule = layer_spec(stax.Conv(3, (3, 2), (2, 1), "SAME", W_std=1.2, b_std=0.4)).structured
    assert rule.scales(2) == pytest.approx((1.44 / 12, 0.16), rel=1e-15)
    x = _x((2, 5, 4, 2))
    expected = lax.conv_general_dilated_patches(jnp.asarray(x), (3, 2), (2, 1), "SAME",
                                                dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_array_equal(np.asarray(rule.patches(jnp.asarray(x))), np.asarray(expected))


def test_dense_on_another_channel_axis_has_no_structured_rule():
    """The structured path multiplies W on the last axis: Dense(channel_axis=1) declares no rule."""
    assert layer_spec(stax.Dense(3, channel_axis=1)).structured is None


def test_masked_dense_keeps_padded_steps_padded_and_real_steps_unchanged():
    """apply_fn(..., mask_constant=c) on (n, T, C) with the last step of sequence 0 equal to c: that step of
    the output is c, every other step is apply_fn without the mask.
    """
    c = -7.0
    x = _x((2, 4, 3))
    x[0, 3] = c
    init, apply_fn, _ = stax.Dense(2, W_std=1.5, b_std=0.5)
    with jax.enable_x64(True):
        _, params = init(jax.random.PRNGKey(1), x.shape)
        masked = np.asarray(apply_fn(params, jnp.asarray(x), mask_constant=c))
        plain = np.asarray(apply_fn(params, jnp.asarray(x)))
    np.testing.assert_array_equal(masked[0, 3], [c, c])
    real = np.ones((2, 4), bool)
    real[0, 3] = False
    np.testing.assert_allclose(masked[real], plain[real], rtol=RTOL)



@pytest.mark.parametrize("readout", ["GlobalAvgPool", "GlobalSumPool"])
def test_masked_global_pooling_apply_reduces_the_real_steps_with_padded_entries_as_zero(readout):
    """apply_fn((), x, mask_constant=c) on (3, 5, 2) sequences with 5, 3 and 1 real steps, and one entry equal
    to c inside a real step: the mean (sum) over each sequence's real steps of x with that entry set to zero.
    """
    c = 4.0
    x = _x((3, 5, 2), 7)
    x[1, 3:], x[2, 1:] = c, c
    x[0, 2, 1] = c  # inside a real step: counts as zero
    with jax.enable_x64(True):
        out = np.asarray(getattr(stax, readout)()[1]((), jnp.asarray(x), mask_constant=c))
    zeroed = np.where(x == c, 0.0, x)
    sums = np.stack([zeroed[0].sum(0), zeroed[1, :3].sum(0), zeroed[2, :1].sum(0)])
    expected = sums / np.array([[5.0], [3.0], [1.0]]) if readout == "GlobalAvgPool" else sums
    np.testing.assert_allclose(out, expected, rtol=RTOL)


@pytest.mark.parametrize("readout", ["GlobalAvgPool", "GlobalSumPool"])
def test_masked_global_pooling_apply_keeps_float32_inputs_float32(readout):
    """In 64-bit mode, float32 padded sequences pool to float32 (the zeros put in place of padded entries and the
    counts of real steps are in the inputs' dtype), equal to the float64 result to float32 round-off.
    """
    c = 4.0
    x = _x((2, 3, 2), 8)
    x[1, 2:] = c
    pool = getattr(stax, readout)()[1]
    with jax.enable_x64(True):
        out32 = pool((), jnp.asarray(x, jnp.float32), mask_constant=c)
        out64 = pool((), jnp.asarray(x.astype(np.float32), jnp.float64), mask_constant=c)
    assert out32.dtype == jnp.float32
    # sums of three float32 numbers: a few float32 ulps (1e-7 relative); 1e-6 leaves room
    np.testing.assert_allclose(np.asarray(out32), np.asarray(out64), rtol=1e-6)


@pytest.mark.parametrize("shape", [(2, 2, 5), (2, 2, 3, 3)], ids=["sequences", "images"])
def test_masked_global_pooling_apply_averages_the_real_positions_of_channels_first_inputs(shape):
    """Padded sequences or images with the channels at axis 1 (GlobalAvgPool(channel_axis=1), which reads its
    masks over that axis): the mean over each input's real positions, a position padding when both its
    channels equal the constant (before: refused, naming the shape).
    """
    c = 0.5
    x = _x(shape, 9)
    x[0, :, 1:] = c  # input 0: only its first position along the first spatial axis is real
    with jax.enable_x64(True):
        out = np.asarray(stax.GlobalAvgPool(channel_axis=1)[1]((), jnp.asarray(x), mask_constant=c))
    spatial = tuple(range(1, x.ndim - 1))
    expected = np.stack([x[0][:, :1].mean(axis=spatial), x[1].mean(axis=spatial)])
    np.testing.assert_allclose(out, expected, rtol=RTOL)


GRID = np.linspace(-2.5, 2.5, 11)


@pytest.mark.parametrize("make, expected", [
    (lambda: stax.Relu(), np.maximum(GRID, 0.0)),
    (lambda: stax.LeakyRelu(0.2), np.where(GRID > 0, GRID, 0.2 * GRID)),
    (lambda: stax.ABRelu(-0.5, 1.5), np.where(GRID > 0, 1.5 * GRID, -0.5 * GRID)),
    (lambda: stax.Abs(), np.abs(GRID)),
    (lambda: stax.Erf(1.3, 0.7, 0.2), 1.3 * np.vectorize(math.erf)(0.7 * GRID) + 0.2),
    (lambda: stax.Sin(0.8, 1.7, 0.3), 0.8 * np.sin(1.7 * GRID + 0.3)),
    (lambda: stax.Cos(0.8, 1.7, 0.3), 0.8 * np.cos(1.7 * GRID + 0.3)),
    (lambda: stax.Cos(), np.cos(GRID)),
    (lambda: stax.Gelu(), GRID * 0.5 * (1 + np.vectorize(math.erf)(GRID / math.sqrt(2)))),
    (lambda: stax.Gelu(approximate=True),
     0.5 * GRID * (1 + np.tanh(math.sqrt(2 / math.pi) * (GRID + 0.044715 * GRID**3)))),
], ids=["Relu", "LeakyRelu", "ABRelu", "Abs", "Erf", "Sin", "Cos", "Cos-default", "Gelu", "Gelu-tanh"])
def test_activation_layer_applies_the_documented_function(make, expected):
    """apply_fn of each activation layer, with its arguments in the documented order (Cos also with its defaults
    a = b = 1, c = 0: the neural-tangents oracle has Erf and Sin with theirs), on [-2.5, 2.5] (the tanh formula
    of GELU for approximate=True; rtol 1e-12: library erf/tanh against math's).
    """
    _, apply_fn, _ = make()
    with jax.enable_x64(True):
        got = np.asarray(apply_fn((), jnp.asarray(GRID)))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_cos_layer_is_named_cos():
    """Cos is Sin with the phase shifted but keeps its own name (in errors and in the layer's spec)."""
    assert layer_spec(stax.Cos()).name == "Cos"


@pytest.mark.parametrize("layer_name, make, name, value", [
    ("LeakyRelu", lambda v: stax.LeakyRelu(v), "alpha", math.inf),
    ("ABRelu", lambda v: stax.ABRelu(v, 1.0), "a", math.nan),
    ("ABRelu", lambda v: stax.ABRelu(0.0, v), "b", math.inf),
    ("Erf", lambda v: stax.Erf(v), "a", math.inf),
    ("Erf", lambda v: stax.Erf(1.0, v), "b", math.inf),
    ("Erf", lambda v: stax.Erf(1.0, 1.0, v), "c", math.inf),
    ("Sin", lambda v: stax.Sin(v), "a", math.inf),
    ("Sin", lambda v: stax.Sin(1.0, v), "b", math.inf),
    ("Sin", lambda v: stax.Sin(1.0, 1.0, v), "c", math.inf),
    ("Cos", lambda v: stax.Cos(v), "a", math.inf),
    ("Cos", lambda v: stax.Cos(1.0, v), "b", math.inf),
    ("Cos", lambda v: stax.Cos(1.0, 1.0, v), "c", math.inf),
])
def test_activation_with_a_non_finite_argument_is_refused_naming_it(layer_name, make, name, value):
    """Each constructor's numeric arguments must be finite; the error names the layer and the argument."""
    with pytest.raises(ValueError, match=rf"^{layer_name}: `{name}` must be a finite number, got {value!r}\.$"):
        make(value)


@pytest.mark.parametrize("make, layer_name", [
    (lambda v: stax.Relu(do_stabilize=v), "Relu"), (lambda v: stax.LeakyRelu(0.1, do_stabilize=v), "LeakyRelu"),
    (lambda v: stax.ABRelu(0.0, 1.0, do_stabilize=v), "ABRelu"), (lambda v: stax.Abs(do_stabilize=v), "Abs"),
])
def test_do_stabilize_must_be_a_bool(make, layer_name):
    """do_stabilize="yes" is refused naming the layer and the flag; numpy's bool is accepted."""
    with pytest.raises(ValueError, match=rf"^{layer_name}: `do_stabilize` must be True or False, got 'yes'\.$"):
        make("yes")
    make(np.bool_(True))


def test_gelu_approximate_must_be_a_bool():
    """Gelu(approximate=1) is refused naming the flag."""
    with pytest.raises(ValueError, match=r"^Gelu: `approximate` must be True or False, got 1\.$"):
        stax.Gelu(approximate=1)


def test_elementwise_without_fn_has_no_finite_network():
    """Elementwise(nngp_fn=...) alone: apply_fn raises NotImplementedError asking for fn=."""
    _, apply_fn, _ = stax.Elementwise(nngp_fn=lambda c, a, b: c)
    with pytest.raises(NotImplementedError, match=r"^Elementwise: no `fn` was given.*pass fn= as well as nngp_fn=\.$"):
        apply_fn((), jnp.ones(3))


def test_elementwise_takes_its_name_from_fn():
    """The layer is named after fn (neural-tangents' behaviour), 'Elementwise' without one."""
    def square(x):
        return x * x

    assert layer_spec(stax.Elementwise(square, lambda c, a, b: c)).name == "square"
    assert layer_spec(stax.Elementwise(nngp_fn=lambda c, a, b: c)).name == "Elementwise"


def test_residual_network_applies_each_branch_to_the_input_and_sums():
    """serial(FanOut(2), parallel(Identity(), Dense(3)), FanInSum()) on x: x + Dense(x), with the Dense
    parameters where init_fn put them (params of parallel: one entry per branch).
    """
    x = _x((2, 3))
    init, apply_fn, _ = stax.serial(stax.FanOut(2), stax.parallel(stax.Identity(), stax.Dense(3, W_std=1.1, b_std=0.2)),
                                    stax.FanInSum())
    with jax.enable_x64(True):
        shape, params = init(jax.random.PRNGKey(2), x.shape)
        out = np.asarray(apply_fn(params, jnp.asarray(x)))
    w, b = (np.asarray(a) for a in params[1][1])
    assert tuple(shape) == (2, 3) and params[0] == () and params[1][0] == () and params[2] == ()
    np.testing.assert_allclose(out, x + 1.1 / np.sqrt(3) * x @ w + 0.2 * b, rtol=RTOL)


def test_serial_draws_each_layer_from_its_own_key():
    """serial(Dense, Dense) gives the two layers different weights (one key split per layer), and params
    with the wrong number of entries are refused naming both counts.
    """
    init, apply_fn, _ = stax.serial(stax.Dense(3), stax.Dense(3))
    _, params = init(jax.random.PRNGKey(0), (1, 3))
    assert not np.allclose(np.asarray(params[0][0]), np.asarray(params[1][0]))
    with pytest.raises(ValueError, match=r"^serial: `params` has 1 entries for a network of 2 layers\.$"):
        apply_fn(params[:1], jnp.ones((1, 3)))


def test_parallel_refuses_a_wrong_number_of_inputs_naming_both():
    """A parallel of two branches given three input shapes: refused, naming 2 and 3."""
    init, _, _ = stax.parallel(stax.Identity(), stax.Identity())
    with pytest.raises(ValueError, match=r"^parallel: expected 2 input shapes \(one per branch\), got 3\.$"):
        init(jax.random.PRNGKey(0), [(1, 2)] * 3)


def test_fan_in_sum_refuses_branches_of_different_shapes():
    """FanInSum's init_fn on shapes (1, 2) and (1, 3): refused, listing the shapes."""
    init, _, _ = stax.FanInSum()
    shapes = re.escape("[(1, 2), (1, 3)]")
    with pytest.raises(ValueError, match=rf"^FanInSum: all branches must have the same shape, got {shapes}\.$"):
        init(None, [(1, 2), (1, 3)])


@pytest.mark.parametrize("make, message", [
    (lambda: stax.Dense(0), "Dense: `out_dim` must be a positive integer, got 0."),
    (lambda: stax.Dense(2, W_std=-1), "Dense: `W_std` must be a finite number >= 0, got -1."),
    (lambda: stax.Dense(2, b_std=-1), "Dense: `b_std` must be a finite number >= 0 or None, got -1."),
    (lambda: stax.Dense(2, batch_axis=1.5), "Dense: `batch_axis` must be an integer axis index, got 1.5."),
    (lambda: stax.Dense(2, channel_axis="a"), "Dense: `channel_axis` must be an integer axis index, got 'a'."),
    (lambda: stax.Dense(2, parameterization="x"), "Dense: `parameterization` must be 'ntk' or 'standard', got 'x'."),
    (lambda: stax.Conv(0, (2,)), "Conv: `out_chan` must be a positive integer, got 0."),
    (lambda: stax.Conv(2, (0,)), "Conv: `filter_shape` must be a sequence of positive integers, got (0,)."),
    (lambda: stax.Conv(2, (2,), strides=(1, 1)), "Conv: `strides` must be a sequence of 1 positive integers, "
                                                 "got (1, 1)."),
    (lambda: stax.Conv(2, (2,), padding="x"), "Conv: `padding` must be 'SAME' or 'VALID' or 'CIRCULAR', got 'x'."),
    (lambda: stax.Conv(2, (2,), W_std=-1), "Conv: `W_std` must be a finite number >= 0, got -1."),
    (lambda: stax.Conv(2, (2,), b_std=-1), "Conv: `b_std` must be a finite number >= 0 or None, got -1."),
    (lambda: stax.Conv(2, (2,), parameterization="x"), "Conv: `parameterization` must be 'ntk' or 'standard', "
                                                       "got 'x'."),
    (lambda: stax.AvgPool((0,)), "AvgPool: `window_shape` must be a sequence of positive integers, got (0,)."),
    (lambda: stax.AvgPool((2,), strides=(1, 2)), "AvgPool: `strides` must be a sequence of 1 positive integers, "
                                                 "got (1, 2)."),
    (lambda: stax.AvgPool((2,), padding="x"), "AvgPool: `padding` must be 'SAME' or 'VALID' or 'CIRCULAR', got 'x'."),
    (lambda: stax.GlobalAvgPool(batch_axis=0.5), "GlobalAvgPool: `batch_axis` must be an integer axis index, got 0.5."),
    (lambda: stax.GlobalAvgPool(channel_axis=None), "GlobalAvgPool: `channel_axis` must be an integer axis index, "
                                                    "got None."),
    (lambda: stax.Flatten(batch_axis="a"), "Flatten: `batch_axis` must be an integer axis index, got 'a'."),
    (lambda: stax.Flatten(batch_axis_out=2), "Flatten: `batch_axis_out` must be 0 or 1 (or -2, -1), got 2."),
    (lambda: stax.Flatten(batch_axis_out="a"), "Flatten: `batch_axis_out` must be an integer axis index, got 'a'."),
    (lambda: stax.FanOut(0), "FanOut: `num` must be a positive integer, got 0."),
    (lambda: stax.serial(), "serial: needs at least one layer."),
    (lambda: stax.parallel(), "parallel: needs at least one layer."),
])
def test_a_bad_constructor_argument_is_refused_naming_layer_argument_and_value(make, message):
    """The whole message, so that the layer's and the argument's names in it are checked too."""
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        make()


def test_padding_is_read_in_any_case():
    """padding='same' / 'circular' are 'SAME' / 'CIRCULAR' (neural-tangents accepts either case)."""
    assert layer_spec(stax.Conv(2, (2,), padding="same")).config["padding"] == "SAME"
    assert layer_spec(stax.AvgPool((2,), padding="circular")).config["padding"] == "CIRCULAR"


X2, X3, X4 = np.ones((2, 3)), np.ones((2, 4, 3)), np.ones((2, 4, 4, 3))


@pytest.mark.parametrize("call, message", [
    (lambda: stax.GlobalAvgPool()[2](X2, None, "nngp"),
     "GlobalAvgPool: expects inputs with spatial axes, got shape (2, 3)."),
    (lambda: stax.GlobalAvgPool()[0](None, (2, 3)),
     "GlobalAvgPool: expects inputs with spatial axes, got shape (2, 3)."),
    (lambda: stax.GlobalAvgPool()[1]((), jnp.ones((2, 3))),
     "GlobalAvgPool: expects inputs with spatial axes, got shape (2, 3)."),
    (lambda: stax.AvgPool((2, 2))[1]((), jnp.ones((2, 4, 3))),
     "AvgPool: `inputs` must have 4 axes (batch, 2 spatial, channels) for a window of shape (2, 2); "
     "got shape (2, 4, 3)."),
    (lambda: stax.AvgPool((2, 2))[0](None, (2, 3)),
     "AvgPool: `input_shape` must have 4 axes (batch, 2 spatial, channels) for a window of shape (2, 2); "
     "got shape (2, 3)."),
    (lambda: stax.serial(stax.Dense(2), stax.GlobalAvgPool(batch_axis=1, channel_axis=0))[2](_x((2, 4, 3)), None,
                                                                                             "nngp"),
     "GlobalAvgPool: kernel_fn needs `batch_axis` = 1 to be the batch axis of the activations it receives, but the "
     "layers before it (or the input) keep that axis at 0 of 3 (layout batch_axis=0, channel_axis=2); the "
     "infinite-width limit of this network is not defined. Give the layer `batch_axis=0`."),
    (lambda: stax.serial(stax.Dense(2), stax.GlobalAvgPool(channel_axis=1))[2](_x((2, 4, 3)), None, "nngp"),
     "GlobalAvgPool: kernel_fn needs `channel_axis` = 1 to be the channel axis of the activations it receives, but "
     "the layers before it (or the input) keep that axis at 2 of 3 (layout batch_axis=0, channel_axis=2); the "
     "infinite-width limit of this network is not defined. Give the layer `channel_axis=2`."),
])
def test_a_layout_the_layer_cannot_take_is_refused_naming_what_it_takes(call, message):
    """Window layers need their spatial rank (other layouts of Dense, Flatten and the pools are computed:
    tests/contract/test_nt_compat_layers_e.py).
    """
    # Under kernel_fn's tracing JAX appends a note after a newline; the message itself must be whole.
    with pytest.raises(ValueError, match="^" + re.escape(message) + r"(\n|$)"):
        call()


# Layers are built inside the tests (lambdas), not at collection: a mutation run must see them built.
@pytest.mark.parametrize("make, name", [
    (lambda: stax.serial(stax.Dense(2), stax.DotGeneral(rhs=2.0)), "DotGeneral"),
    (lambda: stax.serial(stax.Dense(2), stax.Aggregate()), "Aggregate"),
])
def test_a_layer_without_padding_rules_refuses_padded_sequences(make, name):
    """kernel_fn(..., mask_constant=c) on sequences with a padded step: a layer that does not handle padding
    raises, naming itself, rather than treat the padding as data.
    """
    x = np.ones((2, 4, 3))
    x[0, 3] = -7.0
    start = (f"{name}: received a kernel of sequences with padded time steps or images with padded pixels "
             "(kernel_fn(..., mask_constant=...)), but this layer does not handle padding")
    with pytest.raises(ValueError, match="^" + re.escape(start)):
        make()[2](x, None, "nngp", mask_constant=-7.0)


@pytest.mark.parametrize("make", [lambda: stax.AvgPool((2, 2)), lambda: stax.GlobalAvgPool()],
                         ids=["AvgPool", "GlobalAvgPool"])
def test_pooling_refuses_a_kernel_that_holds_only_the_spatial_diagonal(make):
    """Continuing from a Kernel computed with diagonal_spatial=True: pooling mixes positions, so it raises,
    naming itself and what it needs, rather than average the diagonal alone.
    """
    pool = make()
    k = stax.Conv(2, (2, 2))[2](np.ones((2, 4, 4, 3)), None, None, diagonal_spatial=True)
    message = (f"{layer_spec(pool).name}: needs the covariance of every pair of positions, but the kernel holds only "
               "the spatial diagonal (computed for a Flatten readout or diagonal_spatial=True).")
    with pytest.raises(ValueError, match="^" + re.escape(message) + r"(\n|$)"):
        pool[2](k)


@pytest.mark.parametrize("make, needs_only_diagonal", [
    (lambda: stax.Flatten(), True),  # pairs each position with itself
    (lambda: stax.AvgPool((2,)), False),  # mixes positions
    (lambda: stax.GlobalAvgPool(), False),
])
def test_readout_layers_declare_which_positions_of_their_input_they_read(make, needs_only_diagonal):
    """The engine computes only the spatial diagonal below a layer whose input_diagonal says so (the kernel of
    Conv -> Flatten never holds pairs of different positions); pooling asks for every pair whatever its output
    needs.
    """
    spec = layer_spec(make())
    assert spec.input_diagonal(False) is needs_only_diagonal
    assert spec.input_diagonal(True) is needs_only_diagonal


@pytest.mark.parametrize("make, fan_in", [
    (lambda p: stax.Dense(3, W_std=1.3, b_std=0.7, parameterization=p), 4),
    (lambda p: stax.Conv(3, (3, 2), W_std=1.3, b_std=0.7, parameterization=p), 4 * 3 * 2),
], ids=["Dense", "Conv"])
def test_standard_parameterisation_draws_the_ntk_parameters_times_their_std(make, fan_in):
    """From the same key, standard W = ntk W · W_std/sqrt(fan_in) and b = ntk b · b_std (the NTK
    parameterisation draws standard normals and scales in apply_fn; fan-in 4 features, or 4 channels x 3 x 2).
    """
    shape = (2, 4) if fan_in == 4 else (2, 5, 5, 4)
    with jax.enable_x64(True):
        out_ntk, (w_ntk, b_ntk) = make("ntk")[0](jax.random.PRNGKey(5), shape)
        out_std, (w_std, b_std) = make("standard")[0](jax.random.PRNGKey(5), shape)
    assert tuple(out_ntk) == tuple(out_std)
    np.testing.assert_allclose(np.asarray(w_std), np.asarray(w_ntk) * 1.3 / math.sqrt(fan_in), rtol=RTOL)
    np.testing.assert_allclose(np.asarray(b_std), np.asarray(b_ntk) * 0.7, rtol=RTOL)
    assert not np.allclose(np.asarray(w_ntk).ravel()[:3], np.asarray(b_ntk).ravel())  # W and b from different keys


@pytest.mark.parametrize("filter_shape, strides, padding", [
    ((3, 2), (2, 1), "SAME"), ((2, 3), (1, 2), "VALID"), ((3, 3), (2, 2), "CIRCULAR"),
])
def test_conv_init_shape_is_the_shape_apply_fn_returns(filter_shape, strides, padding):
    """init_fn's output shape for 5x4 images equals that of apply_fn's output (ceil(n/stride) for SAME and
    CIRCULAR, (n - f)//stride + 1 for VALID).
    """
    init, apply_fn, _ = stax.Conv(2, filter_shape, strides, padding)
    shape, params = init(jax.random.PRNGKey(0), (1, 5, 4, 3))
    out = apply_fn(params, jnp.ones((1, 5, 4, 3)))
    assert tuple(shape) == out.shape
    sizes = zip((5, 4), filter_shape, strides)
    expected = [-(-n // s) if padding != "VALID" else (n - f) // s + 1 for n, f, s in sizes]
    assert list(out.shape[1:3]) == expected


def test_flatten_batch_axis_out_minus_two_is_the_first_of_two_axes():
    """batch_axis_out=-2 means 0: shape (n, rest)."""
    init, _, _ = stax.Flatten(batch_axis_out=-2)
    assert tuple(init(None, (2, 3, 4))[0]) == (2, 12)


def test_flatten_of_inputs_without_spatial_axes_changes_nothing():
    """Flatten on (n, features) is the identity, also for the kernel, which stays Gaussian: Dense -> Flatten ->
    Relu has the kernels of Dense -> Relu (equal floats: the same operations).
    """
    x = _x((3, 4))
    with jax.enable_x64(True):
        flat = stax.serial(stax.Dense(2, W_std=1.3, b_std=0.2), stax.Flatten(), stax.Relu())[2](x, None)
        plain = stax.serial(stax.Dense(2, W_std=1.3, b_std=0.2), stax.Relu())[2](x, None)
    np.testing.assert_array_equal(np.asarray(flat.ntk), np.asarray(plain.ntk))
    np.testing.assert_array_equal(np.asarray(flat.nngp), np.asarray(plain.nngp))


def test_flatten_gives_a_full_kernel_of_non_gaussian_outputs():
    """After Flatten the kernel has no spatial axes, so it is not a diagonal-only kernel, and its outputs are
    marked non-Gaussian (kernel_fn's get='diagonal_spatial' / 'is_gaussian' return these flags, as booleans),
    even when Flatten read only the diagonal of its input (here a Dense layer on sequences).
    """
    k = stax.serial(stax.Dense(2), stax.Flatten())[2](np.ones((2, 4, 3)), None, None)
    assert k.diagonal_spatial is False and k.is_gaussian is False
    assert (tuple(k.shape1), tuple(k.shape2)) == ((2, 8), (2, 8))


def test_flatten_declares_its_name_arguments_and_that_it_reads_several_positions():
    """The layer's spec (used by the empirical NTK and error messages) and its one stage, marked as reading
    each input entry at several positions (the mean over the diagonal), so that the engine stores its input.
    """
    init_fn, apply_fn, kernel_fn = stax.Flatten(batch_axis=1, batch_axis_out=1)
    assert layer_spec((init_fn, apply_fn, kernel_fn)).name == "Flatten"
    assert layer_spec((init_fn, apply_fn, kernel_fn)).config == {"batch_axis": 1, "batch_axis_out": 1}
    assert [reads for _, reads in stages_of((init_fn, apply_fn, kernel_fn))] == [True]


def test_a_conv_network_given_inputs_with_too_few_axes_names_the_conv_and_the_callers_shape():
    """A Conv first takes its channels on axis 3; sequences (2, 4, 3) have no axis 3. The refusal is the Conv's
    own rank check with the shape the caller passed (before: a layout error calling axes 0 and 3 "the same
    axis", or the engine's one-row probe shape (1, 4, 3)).
    """
    _, _, kernel_fn = stax.serial(stax.Conv(2, (3, 3)), stax.Relu())
    message = ("Conv: `x1` must have 4 axes (batch, 2 spatial, channels) for a filter of shape (3, 3); "
               "got shape (2, 4, 3).")
    with pytest.raises(ValueError, match="^" + re.escape(message) + r"(\n|$)"):
        kernel_fn(np.ones((2, 4, 3)), None, "nngp")


def test_a_global_pool_given_another_layout_than_its_padded_inputs_refuses_naming_both():
    """apply_fn(..., mask_constant=c): the pool's channel_axis=1 makes it pool over axis 2 of activations that keep
    their channels there (Dense's output, batch first and channels last): refused, naming what each has.
    """
    x = np.ones((2, 3, 4))
    x[0, 2] = 7.0
    net = stax.serial(stax.Dense(4), stax.GlobalAvgPool(channel_axis=1))
    _, params = net[0](jax.random.PRNGKey(0), x.shape)
    message = ("GlobalAvgPool: apply_fn(..., mask_constant=...): the activations reaching this layer keep their "
               "batch and channel axes at (0, 2) of 3, but the layer pools over axes (2,); give it the batch_axis "
               "and channel_axis of its inputs.")
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        net[1](params, x, mask_constant=7.0)


@pytest.mark.parametrize("axis, value, have", [("batch_axis", 1, 0), ("channel_axis", 1, 2)])
def test_avg_pool_refuses_an_axis_where_the_layer_before_it_keeps_another_whole(axis, value, have):
    # Dense keeps batch first and channels last (axes 0 and 2 of 3): a pool told otherwise must say so, not pool
    # the wrong axes.
    seqs = np.random.default_rng(0).normal(size=(2, 5, 2))
    message = (f"AvgPool: kernel_fn needs `{axis}` = {value} to be the {axis.split('_')[0]} axis of the activations "
               f"it receives, but the layers before it (or the input) keep that axis at {have} of 3 (layout "
               f"batch_axis=0, channel_axis=2); the infinite-width limit of this network is not defined. Give the "
               f"layer `{axis}={have}`.")
    with pytest.raises(ValueError, match="^" + re.escape(message) + r"(\n|$)"):
        stax.serial(stax.Dense(3), stax.AvgPool((2,), **{axis: value}))[2](seqs, None, "nngp")


def test_circular_avg_pool_wraps_each_window_around_the_sequence():
    # Window 3, stride 1, 'CIRCULAR': output t is the mean of steps t-1, t, t+1 taken modulo T (the geometry of
    # 'SAME', centred windows), so the first and last outputs read the other end; zero padding would halve them.
    seq = np.arange(1.0, 6.0)[None, :, None]  # (1, 5, 1): 1 2 3 4 5
    with jax.enable_x64(True):
        out = stax.AvgPool((3,), padding="CIRCULAR")[1]((), jnp.asarray(seq))
    want = (np.roll(seq, 1, axis=1) + seq + np.roll(seq, -1, axis=1)) / 3
    np.testing.assert_allclose(out, want, rtol=RTOL, atol=0)


def test_circular_avg_pool_kernel_is_the_product_of_its_pooled_inputs():
    # The pool is linear without parameters: its NNGP of inputs x, x' is the channel mean of (P x)(P x')^T for every
    # pair of positions, with P the finite layer's circular pooling (window 2, stride 2 on 5 steps: 3 outputs).
    seqs = np.random.default_rng(4).normal(size=(2, 5, 3))
    pool = stax.AvgPool((2,), strides=(2,), padding="CIRCULAR")
    with jax.enable_x64(True):
        pooled = np.asarray(pool[1]((), jnp.asarray(seqs)))
        got = pool[2](seqs, None, "nngp")
    want = np.einsum("atc,bsc->abts", pooled, pooled) / 3
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-15)


def test_avg_pool_declares_its_arguments():
    """layer_spec's config holds the validated arguments, as neural-tangents' layers report theirs."""
    spec = layer_spec(stax.AvgPool((2, 3), strides=(1, 2), padding="same", normalize_edges=True, batch_axis=1,
                                   channel_axis=0))
    assert spec.config == {"window_shape": (2, 3), "strides": (1, 2), "padding": "SAME", "normalize_edges": True,
                           "batch_axis": 1, "channel_axis": 0}


@pytest.mark.parametrize("make, reads", [
    (lambda: stax.Conv(2, (2, 2)), True), (lambda: stax.AvgPool((2, 2)), True), (lambda: stax.Dense(2), False),
    (lambda: stax.Relu(), False)])
def test_window_layers_declare_that_they_read_neighbouring_positions(make, reads):
    # The engine stores the input of such a layer once, in a program of its own (kernel_fn's stage groups): an
    # activation fused into every read of a window would be recomputed at each filter offset.
    assert [flag for _, flag in stages_of(make())] == [reads]


def test_flatten_of_padded_sequences_flattens_them_with_padding_as_zero():
    seqs = np.random.default_rng(5).normal(size=(2, 3, 2))
    seqs[1, 2] = 9.0  # the last step of the second sequence is padding
    with jax.enable_x64(True):
        out = stax.Flatten()[1]((), jnp.asarray(seqs), mask_constant=9.0)
    want = np.where(seqs == 9.0, 0.0, seqs).reshape(2, 6)
    np.testing.assert_array_equal(out, want)


def test_flatten_refuses_padded_activations_whose_batch_axis_is_not_its_own():
    # Dense keeps the batch first; a Flatten told the batch is axis 1 would mix inputs with their steps.
    seqs = np.random.default_rng(5).normal(size=(2, 3, 2))
    seqs[1, 2] = 9.0
    _, params = stax.serial(stax.Dense(2), stax.Flatten(batch_axis=1))[0](jax.random.PRNGKey(0), seqs.shape)
    message = ("Flatten: apply_fn(..., mask_constant=...): the activations reaching this layer keep their batch "
               "axis at 0, but the layer takes batch_axis=1; give it the batch axis of its inputs.")
    with pytest.raises(ValueError, match="^" + re.escape(message) + r"(\n|$)"):
        stax.serial(stax.Dense(2), stax.Flatten(batch_axis=1))[1](params, seqs, mask_constant=9.0)


@pytest.mark.parametrize("dimension_numbers, shape, w_shape, b_shape", [
    (("NHWC", "HWIO", "NHWC"), (2, 5, 5, 2), (2, 2, 2, 3), (1, 1, 1, 3)),
    (("NCHW", "OIHW", "NCHW"), (2, 2, 5, 5), (3, 2, 2, 2), (1, 3, 1, 1)),
])
def test_conv_parameters_have_neural_tangents_shapes(dimension_numbers, shape, w_shape, b_shape):
    # The bias has one entry per output channel, laid along the output's channel axis (neural-tangents' shapes,
    # so that its saved parameters load here).
    _, (w, b) = stax.Conv(3, (2, 2), b_std=0.1, dimension_numbers=dimension_numbers)[0](jax.random.PRNGKey(0), shape)
    assert (w.shape, b.shape) == (w_shape, b_shape)


@pytest.mark.parametrize("s, message", [
    ((0, 1), "Conv: `s` must be a pair (s_in, s_out) of positive integers, got (0, 1)."),
    ((1,), "Conv: `s` must be a pair (s_in, s_out) of positive integers, got (1,)."),
])
def test_conv_refuses_widths_s_that_are_not_a_pair_of_positive_integers_naming_itself(s, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        stax.Conv(2, (2,), s=s, parameterization="standard")


def test_conv_declares_its_arguments():
    """layer_spec's config holds the validated arguments (parameter structure and introspection read them)."""
    spec = layer_spec(stax.Conv(2, (2, 3), strides=(1, 2), padding="same", W_std=1.5, b_std=0.1,
                                parameterization="standard", s=(2, 1)))
    assert spec.config == {"out_chan": 2, "filter_shape": (2, 3), "strides": (1, 2), "padding": "SAME",
                           "W_std": 1.5, "b_std": 0.1, "parameterization": "standard",
                           "dimension_numbers": ("NHWC", "HWIO", "NHWC"), "s": (2, 1)}


def test_dense_declares_its_arguments():
    """layer_spec's config holds the validated arguments (parameter structure and introspection read them)."""
    spec = layer_spec(stax.Dense(3, W_std=1.5, b_std=0.1, batch_axis=1, channel_axis=0, parameterization="standard",
                                 s=(2, 1)))
    assert spec.config == {"out_dim": 3, "W_std": 1.5, "b_std": 0.1, "batch_axis": 1, "channel_axis": 0,
                           "parameterization": "standard", "s": (2, 1)}


def test_conv_apply_refuses_inputs_of_another_rank_naming_the_argument():
    _, params = stax.Conv(2, (2, 2))[0](jax.random.PRNGKey(0), (2, 3, 3, 2))
    message = ("Conv: `inputs` must have 4 axes (batch, 2 spatial, channels) for a filter of shape (2, 2); got "
               "shape (2, 3, 2).")
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        stax.Conv(2, (2, 2))[1](params, np.ones((2, 3, 2)))


def test_conv_refuses_padded_images_of_another_rank_than_its_filter_naming_itself():
    # The masks are mapped before the kernel: their refusal is the one the user sees.
    images = np.random.default_rng(0).normal(size=(2, 3, 3, 2))
    images[0, 2] = 5.0
    message = ("Conv: padded inputs (kernel_fn(..., mask_constant=...)) have masks over 2 spatial axes, but the "
               "window has shape (2,).")
    with pytest.raises(ValueError, match="^" + re.escape(message) + r"(\n|$)"):
        stax.serial(stax.Conv(2, (2,)))[2](images, None, "nngp", mask_constant=5.0)


def test_standard_dense_ntk_with_a_wider_input_is_the_jacobian_product_of_apply_fn():
    """Standard parameterisation, s = (2, 1): apply_fn is x W / sqrt(2) + b, linear in (W, b), so its NTK is
    exactly J J^T = x x' / 2 + 1 for every output (the weights' term (C_in / s_in) times the input covariance
    x x' / C_in); float64, a few products: 1e-13."""
    x = np.random.default_rng(6).normal(size=(3, 4))
    net = stax.Dense(2, W_std=1.3, b_std=0.2, parameterization="standard", s=(2, 1))
    with jax.enable_x64(True):
        ntk = np.asarray(net[2](x, None, "ntk"))
    np.testing.assert_allclose(ntk, x @ x.T / 2 + 1, rtol=1e-13, atol=1e-13)
