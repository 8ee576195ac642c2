"""What :func:`ntkcourse.stax.layer.layer` adds around a layer's formulas: the
refusals of padded inputs and of other layouts, whole, and padding passed on
by the layers that keep every position.

A refusal is the user's only guide when a network cannot be computed, so its
whole text is checked: the layer it names, the value it got, the layers that
would take the input, what to do instead. Kernel maps are called directly on
small input kernels (no compilation).
"""
import re

import jax
import numpy as np
import pytest

from ntkcourse import stax
from ntkcourse.stax.layer import _finite_input_layout, kernel_map_of, layer, remask

X = np.random.default_rng(0).normal(size=(3, 4))
SEQUENCES = np.stack([X, X])  # (2, 3, 4): the last step of the first sequence is padding
SEQUENCES[0, 2] = 7.0

PADDING_REFUSED = (
    "{name}: received a kernel of sequences with padded time steps or images with padded pixels "
    "(kernel_fn(..., mask_constant=...)), but this layer does not handle padding; the layers that do are Dense, "
    "Conv, ConvTranspose, ConvLocal, AvgPool, SumPool, ImageResize, Index, LayerNorm, the activations, "
    "GlobalAvgPool, GlobalSumPool, Flatten and Dropout (and serial, parallel, repeat, FanOut, FanInSum, "
    "FanInConcat, FanInProd, Identity), and for sequences Recurrent and GlobalSelfAttention: read the inputs out "
    "with one of them first (e.g. GlobalAvgPool, or Recurrent(..., return_sequences=False)), or pass inputs of "
    "equal sizes without mask_constant.")


@pytest.fixture(autouse=True)
def _float64():
    # The finite layers' outputs compared with the float64 inputs themselves.
    with jax.enable_x64(True):
        yield


def _masked_kernel():
    return stax.Identity()[2](SEQUENCES, None, mask_constant=7.0)


def _whole(message):
    return "^" + re.escape(message) + "$"


def test_a_layer_without_padding_rules_refuses_a_masked_kernel_whole():
    with pytest.raises(ValueError, match=_whole(PADDING_REFUSED.format(name="Aggregate"))):
        kernel_map_of(stax.Aggregate())(_masked_kernel())


def test_the_refusal_of_padding_holds_for_a_list_of_branches():
    with pytest.raises(ValueError, match=_whole(PADDING_REFUSED.format(name="Aggregate"))):
        kernel_map_of(stax.Aggregate())([_masked_kernel()])


_NAMED = PADDING_REFUSED.split("the layers that do are ")[1].split(": read")[0]


@pytest.mark.parametrize("name", re.findall(r"\b([A-Z][A-Za-z]+)\b", _NAMED))
def test_every_layer_the_refusal_names_is_a_layer_of_the_package(name):
    # A name with a typo would send the user to a layer that does not exist.
    assert callable(getattr(stax, name))


def test_a_layer_without_padding_rules_keeps_its_kernel_on_unpadded_inputs():
    k = stax.Identity()[2](SEQUENCES, None)
    out = kernel_map_of(stax.Aggregate())(k)
    np.testing.assert_array_equal(out.nngp, k.nngp)


def test_apply_fn_of_a_layer_without_padding_rules_refuses_mask_constant_whole():
    message = ("Aggregate: apply_fn received mask_constant=7.0 (padded sequences), but this layer does not handle "
               "padding (its kernel_fn refuses it too); it would read the padding as data.")
    with pytest.raises(ValueError, match=_whole(message)):
        stax.Aggregate()[1]((), SEQUENCES, mask_constant=7.0)


def test_apply_fn_of_a_layer_without_padding_rules_refuses_masked_activations_whole():
    net = stax.serial(stax.Dense(4), stax.Aggregate())
    _, params = net[0](jax.random.PRNGKey(0), SEQUENCES.shape)
    message = ("Aggregate: apply_fn received the activations of padded inputs (apply_fn(..., mask_constant=...) of "
               "the network), but this layer does not handle padding (its kernel_fn refuses it too); it would read "
               "the padding as data. Read the positions out first (e.g. GlobalAvgPool), or pass inputs of equal "
               "sizes without mask_constant.")
    with pytest.raises(ValueError, match=_whole(message)):
        net[1](params, SEQUENCES, mask_constant=7.0)


def test_apply_fn_of_a_layer_without_padding_rules_runs_on_unpadded_inputs():
    pattern = np.broadcast_to(np.eye(3), (2, 3, 3))
    np.testing.assert_allclose(stax.Aggregate()[1]((), SEQUENCES, pattern=pattern), SEQUENCES, rtol=0, atol=0)


def test_dropout_in_test_mode_passes_padding_on():
    # The identity: the masked kernel and the padded sequences come out as they went in.
    k = _masked_kernel()
    out = kernel_map_of(stax.Dropout(0.5, mode="test"))(k)
    np.testing.assert_array_equal(out.mask1, k.mask1)
    np.testing.assert_array_equal(stax.Dropout(0.5, mode="test")[1]((), SEQUENCES, mask_constant=7.0), SEQUENCES)


def test_a_layer_for_batch_first_channels_last_refuses_another_layout_whole():
    dot = stax.DotGeneral(rhs=np.ones((4, 4)), dimension_numbers=(((2,), (0,)), ((), ())))
    k = stax.Identity()[2](SEQUENCES, None).replace(layout=(0, 1))
    message = ("DotGeneral: kernel_fn is implemented for activations with the batch axis first and the channels "
               "last, but the layers before it (or the input) keep them at axes (0, 1) of 3 (batch_axis, "
               "channel_axis); put the axes back first (e.g. a Conv with output spec 'NHWC', Dense(channel_axis=-1) "
               "on such activations).")
    with pytest.raises(ValueError, match=_whole(message)):
        kernel_map_of(dot)(k)
    with pytest.raises(ValueError, match=_whole(message)):
        kernel_map_of(dot)([k])


def test_masked_activations_in_another_layout_than_a_layer_takes_are_refused_naming_both():
    net = stax.serial(stax.Conv(2, (1,), dimension_numbers=("NWC", "WIO", "NCW")), stax.Conv(2, (1,)))
    _, params = net[0](jax.random.PRNGKey(0), SEQUENCES.shape)
    message = ("Conv: apply_fn(..., mask_constant=...): the activations reaching this layer keep their batch and "
               "channel axes at (batch_axis, channel_axis) = (0, 1), but the layer takes them at batch first, "
               "channels last; give the layer the layout of its inputs.")
    with pytest.raises(ValueError, match=_whole(message)):
        net[1](params, SEQUENCES, mask_constant=7.0)


def test_a_layer_without_padding_rules_gets_its_parameters_and_every_argument_on_unpadded_inputs():
    # The refusal wraps the layer's own apply_fn: on plain inputs it must call it unchanged. A layer made
    # with layer() directly, with parameters and extra positional and keyword arguments.
    def apply_fn(params, x, offset, scale=1.0):
        return x * params + offset * scale

    triple = layer(lambda key, s: (s, 2.0), apply_fn, lambda k: k, "Scaled", has_params=True)
    np.testing.assert_array_equal(triple[1](3.0, X, 1.0, scale=0.5), X * 3.0 + 0.5)


def test_a_network_taking_channels_first_accepts_x2_as_a_nested_list():
    # kernel_fn moves the inputs' axes to the layout of the first layer; x2 given as lists (no transpose method)
    # must be moved like the array x1.
    x = np.random.default_rng(4).normal(size=(2, 4, 3))
    net = stax.serial(stax.Conv(2, (1,), dimension_numbers=("NCW", "WIO", "NWC")), stax.Flatten())
    np.testing.assert_array_equal(net[2](x, x.tolist(), "nngp"), net[2](x, x, "nngp"))


@pytest.mark.parametrize("diagonal", [False, True])
def test_remask_zeroes_every_entry_that_pairs_a_padded_position(diagonal):
    # Images (2, 3, 3, 1) of ones: every entry of the input kernel is 1, and the masks decide which stay 1. Image 0
    # has its last row padded; image 1 its first column. With diagonal_spatial the kernel holds equal positions only.
    images = np.ones((2, 3, 3, 1))
    k = stax.Identity()[2](images, None, diagonal_spatial=diagonal)
    real = np.ones((2, 3, 3), bool)
    real[0, 2, :] = False
    real[1, :, 0] = False
    out = remask(k, real, None)
    if diagonal:
        want = real[:, None, :, :] & real[None, :, :, :]  # (n1, n2, H, W)
        want_cov = real
    else:
        want = real[:, None, :, None, :, None] & real[None, :, None, :, None, :]  # (n1, n2, H, H', W, W')
        want_cov = real[:, :, None, :, None] & real[:, None, :, None, :]  # (n, H, H', W, W')
    np.testing.assert_array_equal(out.nngp, want.astype(float))
    np.testing.assert_array_equal(out.cov1, want_cov.astype(float))
    assert out.mask1 is real and out.mask2 is None


@pytest.mark.parametrize("layout, ndim, want", [
    ((1, 1), 4, None), ((1, -3), 4, None), ((0, -4), 4, None), ((4, 0), 4, None),  # one axis twice, or out of range
    ((0, -1), 4, None), ((2, 0), 3, (2, 0)), ((1, None), 3, (1, 2)),  # None: channels last (Flatten)
])
def test_the_finite_layout_of_a_layer_s_input_is_none_when_its_axes_do_not_fit(layout, ndim, want):
    # None means "batch first, channels last" (also the default layout itself): for axes that do not fit, the
    # layer's own check then refuses the axes it was given.
    got = _finite_input_layout(layout, ndim)
    assert (got if got is None else tuple(got)) == want


def test_a_layer_that_keeps_positions_zeroes_its_kernel_at_padded_positions():
    # A biased Dense adds b_std² to every entry; the entries pairing the padded step (sequence 0, step 2) must stay
    # 0, as the finite network's outputs there are zeroed (remask after the layer's formula).
    k = _masked_kernel()
    out = kernel_map_of(stax.Dense(2, b_std=0.5))(k)
    assert out.nngp.shape == (2, 2, 3, 3)
    np.testing.assert_array_equal(out.nngp[0, :, 2, :], 0.0)
    np.testing.assert_array_equal(out.nngp[:, 0, :, 2], 0.0)
    np.testing.assert_allclose(out.nngp[1, 1], k.nngp[1, 1] + 0.25, rtol=1e-14)  # real steps: W_std² q + b_std²


@pytest.mark.parametrize("axis, value, have, what", [("channel_axis", 1, 2, "channel"), ("batch_axis", 1, 0, "batch")])
def test_dense_refuses_a_kernel_whose_axis_is_elsewhere_whole(axis, value, have, what):
    k = stax.Identity()[2](SEQUENCES, None)  # batch first, channels last: axes 0 and 2 of 3
    message = (f"Dense: kernel_fn needs `{axis}` = {value} to be the {what} axis of the activations it receives, "
               f"but the layers before it (or the input) keep that axis at {have} of 3 (layout batch_axis=0, "
               "channel_axis=2); the infinite-width limit of this network is not defined. Give the layer "
               f"`{axis}={have}`.")
    with pytest.raises(ValueError, match=_whole(message)):
        kernel_map_of(stax.Dense(2, **{axis: value}))(k)


def test_dense_apply_refuses_padded_activations_in_another_layout_than_it_takes_whole():
    # The first Dense gives channels last; a Dense told the channels are axis 1 would mix the steps of a sequence.
    net = stax.serial(stax.Dense(4), stax.Dense(2, channel_axis=1))
    _, params = net[0](jax.random.PRNGKey(0), (2, 4, 4))
    message = ("Dense: apply_fn(..., mask_constant=...): the activations reaching this layer keep their batch and "
               "channel axes at batch first, channels last, but the layer takes them at (batch_axis, channel_axis) "
               "= (0, 1); give the layer the layout of its inputs.")
    with pytest.raises(ValueError, match=_whole(message)):
        net[1](params, np.concatenate([SEQUENCES, SEQUENCES[:, :1]], axis=1), mask_constant=7.0)


def test_fan_in_sum_refuses_branches_in_different_layouts_whole():
    k = stax.Identity()[2](SEQUENCES, None)
    message = ("FanInSum: its branches keep the batch and channel axes at different places ([(0, 1), None], None: "
               "batch first, channels last); the sum of such activations mixes channels with positions and has no "
               "infinite-width limit.")
    with pytest.raises(ValueError, match=_whole(message)):
        kernel_map_of(stax.FanInSum())([k.replace(layout=(0, 1)), k])


# kernel_fn of a network whose first layer takes channels first: the inputs' axes are moved to batch first, channels
# last before the engine (stax.layer._laying_out); everything else the call carries must reach it unchanged.
CHANNELS_FIRST = ("NCW", "WIO", "NWC")


def test_a_network_taking_channels_first_accepts_x1_as_a_nested_list():
    x = np.random.default_rng(4).normal(size=(2, 4, 3))
    net = stax.serial(stax.Conv(2, (1,), dimension_numbers=CHANNELS_FIRST), stax.Flatten())
    np.testing.assert_array_equal(net[2](x.tolist(), None, "nngp"), net[2](x, None, "nngp"))


def test_a_network_taking_channels_first_reads_the_padding_of_its_moved_inputs():
    # The same sequences channels first and channels last give the same kernel with mask_constant, and the padding
    # changes it (the padded step would otherwise count in the mean).
    x = np.transpose(SEQUENCES, (0, 2, 1))  # (2, 4, 3): channels first
    first = stax.serial(stax.Conv(2, (1,), dimension_numbers=CHANNELS_FIRST), stax.GlobalAvgPool())
    last = stax.serial(stax.Conv(2, (1,)), stax.GlobalAvgPool())
    got = first[2](x, None, "nngp", mask_constant=7.0)
    np.testing.assert_allclose(got, last[2](SEQUENCES, None, "nngp", mask_constant=7.0), rtol=1e-12)
    assert abs(got[0, 0] - first[2](x, None, "nngp")[0, 0]) > 0.1


def test_a_network_taking_channels_first_refuses_mask_constant_with_a_kernel_whole():
    net = stax.serial(stax.Conv(2, (1,), dimension_numbers=CHANNELS_FIRST), stax.Flatten())
    with pytest.raises(ValueError, match=_whole("kernel_fn: `mask_constant` applies to input arrays, not to a "
                                                "Kernel.")):
        net[2](stax.Identity()[2](SEQUENCES, None), None, "nngp", mask_constant=7.0)


def test_a_network_taking_its_batch_on_axis_1_without_channels_moves_the_batch_first():
    # Flatten names no channel axis: only the batch axis moves.
    x = np.random.default_rng(6).normal(size=(3, 2, 4))  # batch on axis 1
    got = stax.serial(stax.Flatten(batch_axis=1), stax.Dense(1))[2](x, None, "nngp")
    want = stax.serial(stax.Flatten(), stax.Dense(1))[2](np.transpose(x, (1, 0, 2)), None, "nngp")
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_graph_network_taking_channels_first_reads_its_patterns():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 4))  # (batch, nodes, channels)
    pattern = (rng.uniform(size=(2, 3, 3)) < 0.5).astype(float)
    last = stax.serial(stax.Aggregate(), stax.Dense(1))[2](x, None, "nngp", pattern=pattern)
    first = stax.serial(stax.Aggregate(channel_axis=1), stax.Dense(1, channel_axis=1))[2](
        np.transpose(x, (0, 2, 1)), None, "nngp", pattern=pattern)
    np.testing.assert_allclose(first, last, rtol=1e-12)


@pytest.mark.parametrize("make, reads", [
    (lambda: stax.serial(stax.Dense(2), stax.Aggregate()), True),
    (lambda: stax.parallel(stax.Identity(), stax.Aggregate()), True),
    (lambda: stax.serial(stax.Dense(2), stax.Relu()), False),
])
def test_a_network_reads_graph_patterns_when_one_of_its_layers_does(make, reads):
    # kernel_fn refuses `pattern` for a network that would ignore it, and must accept it for one that reads it.
    assert make()[2].reads_patterns is reads
