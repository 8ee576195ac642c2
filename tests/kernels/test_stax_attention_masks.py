"""Padded sequences (``kernel_fn(..., mask_constant=...)``) through
``GlobalSelfAttention``, ``Conv``, ``Dense``, activations and
``GlobalAvgPool``: padding is invisible, the kernel matches wide finite
networks whose padded keys are masked, and layers without a masked form
refuse padded kernels. Values against neural-tangents:
``tests/contract/test_nt_compat_graph.py``.
"""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax

C = 100.0  # the padding value
RNG = np.random.default_rng(5)


def _decay(d):
    return 1.0 / (1.0 + d**2)


def _attention_net(width=3, conv=None):
    first = conv or stax.Dense(width, W_std=1.3, b_std=0.2)
    return stax.serial(first, stax.Relu(),
                       stax.GlobalSelfAttention(width, width, width, 1, pos_emb_type="SUM", pos_emb_decay_fn=_decay,
                                                b_std=0.1),
                       stax.Relu(), stax.GlobalAvgPool(), stax.Dense(1))


def test_padding_is_invisible_to_a_position_wise_attention_network():
    # Two sequences of 4 real steps padded to 6: the masked kernel equals the
    # unmasked kernel of the sequences cut to their real steps (softmax over
    # real keys, embeddings of the same positions, mean over real steps).
    # Only round-off differs (1e-12).
    short = RNG.normal(size=(2, 4, 2))
    padded = np.concatenate([short, np.full((2, 2, 2), C)], axis=1)
    kernel_fn = _attention_net()[2]
    masked = kernel_fn(padded, None, ("nngp", "ntk"), mask_constant=C)
    cut = kernel_fn(short, None, ("nngp", "ntk"))
    for field in ("nngp", "ntk"):
        np.testing.assert_allclose(getattr(masked, field), getattr(cut, field), rtol=1e-12)


def test_attention_apply_fn_ignores_padded_keys():
    # With mask= (True at padding), what the padded positions hold does not
    # change the outputs at the real positions.
    init_fn, apply_fn, _ = stax.GlobalSelfAttention(4, 3, 3, 2, pos_emb_type="SUM")
    x = RNG.normal(size=(2, 5, 4))
    _, params = init_fn(jax.random.PRNGKey(0), x.shape)
    padded = np.zeros((2, 5), bool)
    padded[0, 3:] = True
    other = x.copy()
    other[0, 3:] = RNG.normal(size=(2, 4))
    a, b = apply_fn(params, x, mask=padded), apply_fn(params, other, mask=padded)
    np.testing.assert_allclose(a[0, :3], b[0, :3], rtol=1e-6)  # float32 round-off
    assert not np.allclose(apply_fn(params, x)[0, :3], apply_fn(params, other)[0, :3], rtol=1e-3)


@pytest.mark.slow
def test_masked_attention_nngp_matches_wide_networks():
    # 64 networks of width 96, the same masking as neural-tangents' layers:
    # padded positions are zero at every layer's input, attention excludes
    # padded keys, the mean is over real steps. Within 5 standard errors
    # plus 5 % for the O(1/width) bias of finite keys (as the unmasked test
    # of tests/contract/test_nt_compat_attention.py). Seeded.
    width = 96
    conv, relu = stax.Conv(width, (2,), b_std=0.1), stax.Relu()
    gsa = stax.GlobalSelfAttention(width, width, width, 4, W_key_std=2.0, b_std=0.2, pos_emb_type="SUM",
                                   pos_emb_decay_fn=_decay)
    readout = stax.Dense(1)
    x = RNG.normal(size=(3, 6, 2))
    x[0, 4:], x[1, 2:] = C, C
    real = ~np.all(x == C, axis=-1)[:, :5]  # VALID width-2 windows: output t is padding iff step t is
    xz = np.where(x == C, 0.0, x)

    def network(key):
        keys = jax.random.split(key, 3)
        _, p_conv = conv[0](keys[0], x.shape)
        _, p_gsa = gsa[0](keys[1], (3, 5, width))
        _, p_out = readout[0](keys[2], (3, width))
        h = jnp.where(real[..., None], relu[1]((), conv[1](p_conv, xz)), 0.0)
        h = jnp.where(real[..., None], relu[1]((), gsa[1](p_gsa, h, mask=~real)), 0.0)
        return readout[1](p_out, h.sum(1) / real.sum(1)[:, None])[:, 0]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outs = np.asarray(jax.vmap(network)(jax.random.split(jax.random.PRNGKey(0), 64)), np.float64)
    products = outs[:, :, None] * outs[:, None, :]
    mc, se = products.mean(0), products.std(0, ddof=1) / np.sqrt(len(outs))
    exact = np.asarray(stax.serial(conv, relu, gsa, relu, stax.GlobalAvgPool(), readout)[2](
        x, None, "nngp", mask_constant=C))
    assert np.all(np.abs(mc - exact) <= 5 * se + 0.05 * np.abs(exact))


def test_layers_without_a_masked_form_refuse_padded_kernels():
    x = RNG.normal(size=(2, 4, 2))
    x[0, 3:] = C
    _, _, kernel_fn = stax.serial(stax.Dense(2), stax.DotGeneral(rhs=2.0))
    with pytest.raises(ValueError, match="DotGeneral: received a kernel of sequences with padded time steps"):
        kernel_fn(x, None, "nngp", mask_constant=C)
