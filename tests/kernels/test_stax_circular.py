"""Circular (periodic) padding of Conv and AvgPool: definition, Monte Carlo, invariance.

The values against neural-tangents are in ``test_stax_oracle.py`` (cases named
``*circular*``). Here: the finite layers compute the periodic operation
itself, wide random circular CNNs have the layer's kernel on average, and the
shift symmetries of ERRATA #6 hold exactly (GAP: shifting either image;
Flatten: only shifting both).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax
from ntkcourse.empirical import monte_carlo_kernel_fn


def _images(seed, n=3, h=6, w=5, c=2):
    return np.random.default_rng(seed).standard_normal((n, h, w, c))


def test_circular_conv_reads_positions_modulo_the_image_size():
    """Output o of a 1-D periodic conv is sum_d W[d] x[(o + d - lo) mod n] / sqrt(fan-in),
    lo = 1 for a filter of 3 ('SAME' amounts). Exact up to float64 round-off."""
    init_fn, apply_fn, _ = stax.Conv(2, (3,), padding="CIRCULAR")
    x = np.random.default_rng(0).standard_normal((2, 7, 3))
    with jax.enable_x64(True):
        _, (W, b) = init_fn(jax.random.PRNGKey(1), x.shape)
        got = np.asarray(apply_fn((W, b), jnp.asarray(x)))
    want = np.zeros((2, 7, 2))
    for o in range(7):
        for d in range(3):
            want[:, o] += x[:, (o + d - 1) % 7] @ np.asarray(W[d])
    np.testing.assert_allclose(got, want / np.sqrt(3 * 3), rtol=1e-12, atol=1e-12)


def test_circular_avgpool_averages_wrapped_windows():
    """A periodic average pool of window 2, stride 2 over 5 positions ('SAME': 3 outputs,
    lo = 0) averages (0, 1), (2, 3) and (4, 0)."""
    _, apply_fn, _ = stax.AvgPool((2,), strides=(2,), padding="CIRCULAR")
    x = jnp.arange(5.0).reshape(1, 5, 1)
    np.testing.assert_allclose(np.asarray(apply_fn((), x))[0, :, 0], [0.5, 2.5, 2.0])


def test_circular_conv_kernel_layer_is_wrapped_window_average():
    """The kernel of one periodic Conv (W_std=1, no bias) on a 1-D input is the
    average of x_(o+d) . x'_(o'+d) / C over offsets d, both positions taken modulo n."""
    _, _, kernel_fn = stax.Conv(1, (3,), padding="CIRCULAR")
    x = np.random.default_rng(2).standard_normal((2, 5, 2))
    k = np.asarray(kernel_fn(x, None, "nngp"))  # (2, 2, 5, 5)
    gram = np.einsum("ahc,bgc->abhg", x, x) / 2
    want = np.zeros_like(gram)
    for o in range(5):
        for o2 in range(5):
            for d in range(3):
                want[:, :, o, o2] += gram[:, :, (o + d - 1) % 5, (o2 + d - 1) % 5] / 3
    np.testing.assert_allclose(k, want, rtol=1e-12, atol=1e-12)


def _circular_gap_net(pool, width=64):
    return stax.serial(
        stax.Conv(width, (3, 3), padding="CIRCULAR", W_std=1.5, b_std=0.1), stax.Relu(),
        stax.Conv(width, (3, 3), padding="CIRCULAR", W_std=1.5, b_std=0.1), stax.Relu(),
        pool, stax.Dense(64, W_std=1.5, b_std=0.1),
    )


@pytest.mark.slow
def test_wide_circular_cnn_kernels_match_monte_carlo():
    """Mean empirical NNGP/NTK (averaged over the 64 outputs) of 64-channel circular CNNs
    with a GAP readout, over 40 draws, equals the analytic kernel within 12% of
    its largest entry. Measured (seed 0): 4.7% (NNGP), 0.7% (NTK), from the
    Monte Carlo and O(1/width) errors; the SAME-padding kernel is 78% and 99%
    away, so a padding that does not wrap around fails."""
    net = _circular_gap_net(stax.GlobalAvgPool())
    x = _images(3, n=2, h=4, w=4, c=1)
    exact = net[2](x, None, ("nngp", "ntk"))
    mc = monte_carlo_kernel_fn(net, None, jax.random.PRNGKey(0), 40, progress=False)(x, None, ("nngp", "ntk"))
    for what in ("nngp", "ntk"):
        ref = np.asarray(getattr(exact, what))
        np.testing.assert_allclose(np.asarray(getattr(mc, what)), ref, atol=0.12 * np.max(np.abs(ref)), err_msg=what)


def _shift(x, s):
    return np.roll(x, s, axis=(1, 2))


def test_gap_kernel_invariant_to_shifting_one_image():
    """Circular conv + GAP: K(T_s x, x') = K(x, x') for NNGP and NTK (exact symmetry, round-off tolerance)."""
    _, _, kernel_fn = _circular_gap_net(stax.GlobalAvgPool())
    x, x2 = _images(4), _images(5, n=2)
    base = kernel_fn(x, x2, ("nngp", "ntk"))
    moved = kernel_fn(_shift(x, (2, 1)), x2, ("nngp", "ntk"))
    for what in ("nngp", "ntk"):
        np.testing.assert_allclose(getattr(moved, what), getattr(base, what), rtol=1e-12, err_msg=what)


def test_flatten_kernel_invariant_to_shifting_both_images():
    """Circular conv + Flatten: K(T_s x, T_s x') = K(x, x') (exact symmetry, round-off tolerance)."""
    _, _, kernel_fn = _circular_gap_net(stax.Flatten())
    x, x2 = _images(4), _images(5, n=2)
    base = kernel_fn(x, x2, ("nngp", "ntk"))
    moved = kernel_fn(_shift(x, (2, 1)), _shift(x2, (2, 1)), ("nngp", "ntk"))
    for what in ("nngp", "ntk"):
        np.testing.assert_allclose(getattr(moved, what), getattr(base, what), rtol=1e-12, err_msg=what)


def test_flatten_kernel_changes_when_one_image_is_shifted():
    """Circular conv + Flatten is not invariant to shifting one image: the NTK moves by
    more than 1% of its scale (here ~20%), far above round-off."""
    _, _, kernel_fn = _circular_gap_net(stax.Flatten())
    x, x2 = _images(4), _images(5, n=2)
    base = np.asarray(kernel_fn(x, x2, "ntk"))
    moved = np.asarray(kernel_fn(_shift(x, (2, 1)), x2, "ntk"))
    assert np.max(np.abs(moved - base)) > 0.01 * np.max(np.abs(base))


def test_same_padding_gap_kernel_is_not_shift_invariant():
    """With zero ('SAME') padding the GAP kernel changes when one image is shifted
    (by more than 1% of its scale): the invariance is a property of circular padding."""
    net = stax.serial(stax.Conv(8, (3, 3), padding="SAME", W_std=1.5, b_std=0.1), stax.Relu(),
                      stax.Conv(8, (3, 3), padding="SAME", W_std=1.5, b_std=0.1), stax.Relu(),
                      stax.GlobalAvgPool(), stax.Dense(1, W_std=1.5, b_std=0.1))
    x, x2 = _images(4), _images(5, n=2)
    base = np.asarray(net[2](x, x2, "ntk"))
    moved = np.asarray(net[2](_shift(x, (2, 1)), x2, "ntk"))
    assert np.max(np.abs(moved - base)) > 0.01 * np.max(np.abs(base))


def test_circular_cnn_gap_output_invariant_to_shift():
    """The finite circular CNN with GAP gives the same output for a shifted image (exact, round-off)."""
    init_fn, apply_fn, _ = _circular_gap_net(stax.GlobalAvgPool())
    x = _images(6)
    with jax.enable_x64(True):
        _, params = init_fn(jax.random.PRNGKey(0), x.shape)
        moved = apply_fn(params, jnp.asarray(_shift(x, (3, 2))))
        base = apply_fn(params, jnp.asarray(x))
    np.testing.assert_allclose(moved, base, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("layer", [lambda: stax.Conv(1, (3, 3), padding="circle"),
                                   lambda: stax.AvgPool((2, 2), padding="wrap")])
def test_unknown_padding_is_refused_with_the_choices(layer):
    with pytest.raises(ValueError, match="CIRCULAR"):
        layer()
