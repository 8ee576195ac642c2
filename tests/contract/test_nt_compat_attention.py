"""GlobalSelfAttention gives neural-tangents' kernels and finite outputs, and
parameters drawn by neural-tangents load into this package's ``apply_fn``.

Reference values: neural-tangents 0.6.5 in float64
(``tests/oracle/make_compat_reference_b.py``; networks in
``tests/oracle/compat_cases_b.py``; parameters in ``tests/data/nt_params_b.npz``).

Kernel tolerance 1e-9 relative: both sides evaluate the same closed forms in
float64 in a different order (softmax, einsum contractions), which moves the
last few of 16 digits; a wrong term or factor shows at 1e-3 or more.
"""
import json
import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax

sys.path.insert(0, str(Path(__file__).parents[1] / "oracle"))
from compat_cases_b import ATTENTION, PARAMS, build, inputs  # noqa: E402

DATA = Path(__file__).parents[1] / "data"
REF = json.loads((DATA / "nt_compat_reference_b.json").read_text())
LEAVES = np.load(DATA / "nt_params_b.npz")


def _close(got, want, rtol, what):
    want = np.asarray(want)
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=rtol * np.abs(want).max(), err_msg=what)


@pytest.mark.parametrize("name", sorted(ATTENTION))
def test_attention_kernels_match_neural_tangents(name):
    kind, spec = ATTENTION[name]
    x1, x2 = inputs(kind)
    kernel_fn = build(stax, spec)[2]
    k = kernel_fn(x1, x2, ("nngp", "ntk", "cov1"))
    for field in ("nngp", "ntk", "cov1"):
        _close(getattr(k, field), REF["kernels"][name][field], 1e-9, field)
    _close(kernel_fn(x1, None, "nngp"), REF["kernels"][name]["self_nngp"], 1e-9, "x2=None")


def _nt_params(name):
    """neural-tangents' parameters of network ``name``, placed in this package's tree."""
    kind, spec = PARAMS[name]
    x1, _ = inputs(kind)
    init_fn, apply_fn, _ = build(stax, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, ours = init_fn(jax.random.PRNGKey(0), x1.shape)
    leaves, treedef = jax.tree_util.tree_flatten(ours)
    theirs = [LEAVES[f"{name}/{i}"] for i in range(REF["params"][name]["n_leaves"])]
    return x1, apply_fn, leaves, treedef, theirs


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameters_have_neural_tangents_structure(name):
    # Same containers (serial: list, parallel: tuple, layers: tuples, None for
    # absent biases/queries/embeddings) and the same shape for every leaf.
    _, _, leaves, treedef, theirs = _nt_params(name)
    assert str(treedef) == REF["params"][name]["treedef"]
    assert [tuple(a.shape) for a in leaves] == [tuple(b.shape) for b in theirs]


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_neural_tangents_parameters_give_its_outputs(name):
    x1, apply_fn, _, treedef, theirs = _nt_params(name)
    params = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a) for a in theirs])
    out = apply_fn(params, jnp.asarray(x1))
    # In 64-bit mode the same float64 products: 1e-9. In 32-bit mode (the
    # suite's default) jnp rounds inputs and parameters to float32: a few
    # units of 1e-7 per operation through the network, so 1e-4.
    rtol = 1e-9 if out.dtype == jnp.float64 else 1e-4
    _close(out, REF["params"][name]["output"], rtol, "apply_fn")


@pytest.mark.slow
def test_attention_nngp_matches_wide_networks():
    # 64 networks with 96 channels, keys and values and 4 heads (positional
    # embeddings with neural-tangents' IMDB decay, drawn by Cholesky factor).
    # NNGP within 5 standard errors plus 5% for the O(1/width) bias of finite
    # keys (the logits are averages over 96 key channels). Seeded. Uniform
    # attention weights instead of the softmax move the kernel by > 20%.
    from ntkcourse import empirical

    def decay(d):
        return 1.0 / (1.0 + d**2)

    net = stax.serial(stax.Conv(96, (2,), padding="SAME", b_std=0.1), stax.Relu(),
                      stax.GlobalSelfAttention(96, 96, 96, 4, W_key_std=2.0, b_std=0.2, pos_emb_type="SUM",
                                               pos_emb_decay_fn=decay),
                      stax.Relu(), stax.GlobalAvgPool(), stax.Dense(1))
    x = np.random.default_rng(2).normal(size=(2, 4, 2))
    exact = np.asarray(net[2](x, None, "nngp"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mc = empirical.monte_carlo_kernel_fn(net, None, jax.random.PRNGKey(0), 64)(x, None, ("nngp",))
    assert np.all(np.abs(np.asarray(mc.nngp) - exact) <= 5 * np.asarray(mc.nngp_stderr) + 0.05 * np.abs(exact))


def test_unknown_attention_mechanism_is_refused():
    with pytest.raises(ValueError, match="GlobalSelfAttention: `attention_mechanism`.*'TANH'"):
        stax.GlobalSelfAttention(4, 4, 4, 1, attention_mechanism="TANH")


def test_softmax_without_linear_scaling_has_no_kernel_but_runs_finite():
    init_fn, apply_fn, kernel_fn = stax.GlobalSelfAttention(3, 2, 2, 1, linear_scaling=False)
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    _, params = init_fn(jax.random.PRNGKey(0), x.shape)
    assert apply_fn(params, x).shape == (2, 4, 3)
    with pytest.raises(NotImplementedError, match="GlobalSelfAttention: no closed form.*'SOFTMAX'"):
        kernel_fn(x, None, "nngp")


def test_attention_needs_positions():
    with pytest.raises(ValueError, match="GlobalSelfAttention: attends over spatial positions"):
        stax.GlobalSelfAttention(3, 2, 2, 1)[2](np.ones((2, 3)), None, "nngp")


def test_attention_other_channel_axis_is_refused():
    with pytest.raises(NotImplementedError, match="GlobalSelfAttention: only batch_axis=0 and channel_axis=-1"):
        stax.GlobalSelfAttention(3, 2, 2, 1, channel_axis=1)[2](np.ones((2, 3, 4)), None, "nngp")


def test_summed_embeddings_need_the_inputs_channel_count():
    with pytest.raises(ValueError, match="GlobalSelfAttention: .*`n_chan_pos_emb` must be None or the inputs' 3"):
        stax.GlobalSelfAttention(3, 2, 2, 1, pos_emb_type="SUM", n_chan_pos_emb=5)[2](
            np.ones((2, 4, 3)), None, "nngp")


def test_attention_kernel_block_by_block_equals_whole():
    # Blocks of 2 inputs: each off-diagonal block gets its columns' own
    # attention weights (from their cov2), so the result must not depend on
    # the blocks: equal to rounding (1e-12).
    from ntkcourse.engine import ExecutionPlan

    kind, spec = ATTENTION["softmax"]
    x1, _ = inputs(kind)
    x = np.concatenate([x1, x1[::-1] * 0.5])
    kernel_fn = build(stax, spec)[2]
    whole = kernel_fn(x, None, "ntk")
    blocked = kernel_fn(x, None, "ntk", plan=ExecutionPlan(block_size=2))
    np.testing.assert_allclose(np.asarray(blocked), np.asarray(whole), rtol=1e-12, atol=1e-12)
