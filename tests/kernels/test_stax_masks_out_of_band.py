"""Finite networks on padded inputs (``apply_fn(params, x, mask_constant=0)``)
whose hidden activations are exactly zero at some real positions (a ReLU with
one or two channels): the masks are computed once from the inputs and travel
beside the activations (``ntkcourse.stax.masked``), so such a position stays
real. Before, each layer re-read "all channels equal the constant" from its
input values, took those positions for padding, and the finite network
disagreed with its ``kernel_fn`` (whose masks come from the inputs only).

The reference values need no masks: the mean over the real steps computed by
hand, or the same network (same parameters) on the inputs cut to their real
positions (padding at the end, the same number of real positions in each
input so that one call computes them all, no positional parameters, stride-1
windows: the cut inputs have the same real positions and zeros where the
padded ones have padding). Every test first checks that a real position
with all-zero hidden activations exists, so it tests the fault. Inputs of
different real sizes in one batch, and kernels against the Jacobian of the
masked finite network: ``tests/kernels/test_stax_pool_masks.py``; with
neural-tangents' parameters: ``tests/contract/test_nt_compat_masks_g.py``.
"""
import jax
import jax.numpy as jnp
import numpy as np

from ntkcourse import stax

C = 0.0  # the padding value: a ReLU's zero output equals it


def _padded_sequences(seed, n_features, n_real=4, T=6, n=3):
    x = np.random.default_rng(seed).normal(size=(n, T, n_features))
    x[:, n_real:] = C
    return x


def _params(init_fn, input_shape, seed=1):
    """Standard normal parameters in ``init_fn``'s structure, drawn by NumPy
    (``jax.random`` compiles anew for every new shape, about 0.5 s of CPU each).
    """
    shapes = jax.eval_shape(lambda key: init_fn(key, input_shape)[1], jax.random.PRNGKey(0))
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda s: jnp.asarray(rng.normal(size=s.shape)), shapes)


def _masked_and_cut(layers, x, cut, n_hidden):
    """The network's masked outputs on ``x``, its unmasked outputs on the
    inputs cut to their real positions ``cut`` (one compiled program: far
    less CPU than op by op), and whether the first ``n_hidden`` layers
    give a real position all-zero activations (the fault's condition).
    """
    init_fn, apply_fn, _ = stax.serial(*layers)
    hidden_fn = stax.serial(*layers[:n_hidden])[1]

    def both(p, a, b):
        return apply_fn(p, a, mask_constant=C), apply_fn(p, b), hidden_fn(p[:n_hidden], a)

    with jax.enable_x64(True):
        params = _params(init_fn, x.shape)
        masked, reference, hidden = (np.asarray(v) for v in jax.jit(both)(params, jnp.asarray(x), jnp.asarray(cut)))
    real = ~np.all(x == C, axis=-1)
    return masked, reference, bool(np.any(np.all(hidden == 0.0, axis=-1) & real))


def test_the_mean_over_real_steps_keeps_a_real_step_whose_relu_output_is_zero():
    # The reproduction of the fault: Dense(1) -> Relu -> GlobalAvgPool on sequences of 6 steps, the last 2
    # zero (padding). Before: [0.5425, 0.6130] (a zero ReLU output dropped from the mean); here the mean
    # over the 4 real steps, by hand.
    x = np.random.default_rng(0).normal(size=(2, 6, 3))
    x[:, -2:] = 0.0
    init_fn, apply_fn, _ = stax.serial(stax.Dense(1), stax.Relu(), stax.GlobalAvgPool())
    with jax.enable_x64(True):
        _, params = init_fn(jax.random.PRNGKey(0), x.shape)
        out = np.asarray(apply_fn(params, jnp.asarray(x), mask_constant=0.0))
    W, b = (np.asarray(p) for p in params[0])
    hidden = np.maximum(x[:, :4] @ W / np.sqrt(3), 0.0)  # Dense's defaults: W_std 1, no bias
    assert np.any(hidden == 0.0)  # the fault's condition
    # float64 round-off of a 3-term product and a 4-term mean
    np.testing.assert_allclose(out, hidden.mean(axis=1), rtol=1e-13)


def test_images_conv_relu_global_pool_keep_real_pixels_whose_hidden_activations_are_zero():
    x = np.random.default_rng(2).normal(size=(3, 5, 4, 2))
    x[:, 4:], x[:, :, 3:] = C, C  # 4 x 3 real pixels
    layers = [stax.Conv(1, (2, 2), padding="SAME", b_std=0.1), stax.Relu(), stax.GlobalAvgPool(), stax.Dense(1)]
    masked, cut, bites = _masked_and_cut(layers, x, x[:, :4, :3], 2)
    assert bites
    # float64 round-off only (the same operations on the same real pixels)
    np.testing.assert_allclose(masked, cut, rtol=1e-12)


def test_a_recurrent_stack_keeps_real_steps_whose_hidden_activations_are_zero():
    # The Recurrent reads every step after Dense(2) -> Relu: a real step whose two channels are zero must
    # still drive its state (before: frozen as if padding); its sequence outputs feed a second one.
    x = _padded_sequences(3, 2)
    layers = [stax.Dense(2, W_std=1.5, b_std=0.1), stax.Relu(),
              stax.Recurrent(2, stax.Relu(), b_std=0.1, return_sequences=True), stax.Recurrent(1, stax.Erf())]
    masked, cut, bites = _masked_and_cut(layers, x, x[:, :4], 2)
    assert bites
    np.testing.assert_allclose(masked, cut, rtol=1e-12)  # float64 round-off only


def test_a_self_attention_stack_keeps_real_steps_whose_hidden_activations_are_zero():
    # Attention over the real keys only, and the mean over the real steps after it; before, its apply_fn
    # ignored mask_constant and attended to the padding as data.
    x = _padded_sequences(4, 3)
    layers = [stax.Dense(2, W_std=1.5, b_std=0.1), stax.Relu(), stax.GlobalSelfAttention(2, 2, 2, 1, b_std=0.1),
              stax.Relu(), stax.GlobalAvgPool()]
    masked, cut, bites = _masked_and_cut(layers, x, x[:, :4], 2)
    assert bites
    np.testing.assert_allclose(masked, cut, rtol=1e-12)  # float64 round-off only


def test_concatenated_branches_keep_real_steps_whose_hidden_activations_are_zero():
    # FanOut -> parallel -> FanInConcat (before: refused with masks) after a ReLU of two channels.
    x = _padded_sequences(5, 3)
    layers = [stax.Dense(2, W_std=1.5, b_std=0.1), stax.Relu(), stax.FanOut(2),
              stax.parallel(stax.serial(stax.Dense(1, b_std=0.1), stax.Relu()), stax.Conv(2, (2,), padding="SAME")),
              stax.FanInConcat(), stax.GlobalAvgPool()]
    masked, cut, bites = _masked_and_cut(layers, x, x[:, :4], 2)
    assert bites
    np.testing.assert_allclose(masked, cut, rtol=1e-12)  # float64 round-off only


def test_a_jitted_masked_apply_fn_equals_the_eager_one():
    # mask_constant traced as an argument of the jitted function; the padded steps of the sequence
    # outputs hold mask_constant in both.
    x = _padded_sequences(6, 3)
    x[0, 4:] = np.random.default_rng(7).normal(size=(2, 3))  # real steps: 6, 4 and 4
    init_fn, apply_fn, _ = stax.serial(stax.Dense(2, b_std=0.1), stax.Relu(), stax.Conv(2, (2,), padding="SAME"))
    with jax.enable_x64(True):
        params = _params(init_fn, x.shape, 2)
        eager = np.asarray(apply_fn(params, jnp.asarray(x), mask_constant=C))
        jitted = np.asarray(jax.jit(lambda p, a, c: apply_fn(p, a, mask_constant=c))(params, jnp.asarray(x), C))
    # XLA may fuse the float64 operations differently: round-off only
    np.testing.assert_allclose(jitted, eager, rtol=1e-12, atol=1e-15)
    assert np.all(jitted[1:, 4:] == C)
