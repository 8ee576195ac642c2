"""Specification of ntkcourse.mup.optax_scaling: per-layer learning-rate multipliers for any optax optimiser,
measured on known gradients, and their composition with other optax transformations.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ntkcourse.mup import mlp, scale_by_layer, scaled_optimizer, width_scaled
from ntkcourse.training import train_network

MULT = {"w": 4.0, "b": 0.25}
PARAMS = {"w": jnp.zeros(3), "b": jnp.zeros(2)}
GRAD = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array([3.0, -1.0])}


def updates(opt, grads_seq):
    state = opt.init(PARAMS)
    out = []
    for g in grads_seq:
        u, state = opt.update(g, state, PARAMS)
        out.append(u)
    return out


def test_sgd_update_is_minus_rate_times_multiplier_times_gradient():
    (u,) = updates(width_scaled(optax.sgd(0.1), MULT), [GRAD])
    for k in MULT:
        np.testing.assert_allclose(u[k], -0.1 * MULT[k] * GRAD[k], rtol=1e-6)  # float32 round-off


def test_adam_first_step_is_minus_rate_times_multiplier_times_sign():
    # Adam's first step is m̂/(√v̂ + ε) = g/(|g| + ε): the sign of g up to ε/|g| ≤ 2e-8 here; rtol 2e-5 because
    # the bias corrections divide by 1 − β₂ = 1e-3 computed in float32 (relative error ~1e-5).
    (u,) = updates(width_scaled(optax.adam(0.01), MULT), [GRAD])
    for k in MULT:
        np.testing.assert_allclose(u[k], -0.01 * MULT[k] * jnp.sign(GRAD[k]), rtol=2e-5)


def test_scaling_after_adam_is_not_undone_by_adam():
    # Scaling the gradient before Adam would cancel in m̂/√v̂; scaling the update does not.
    (before,) = updates(optax.chain(scale_by_layer(MULT), optax.adam(0.01)), [GRAD])
    (after,) = updates(width_scaled(optax.adam(0.01), MULT), [GRAD])
    np.testing.assert_allclose(before["w"], -0.01 * jnp.sign(GRAD["w"]), rtol=2e-5)  # as above
    np.testing.assert_allclose(after["w"], 4.0 * before["w"], rtol=2e-5)


def test_composes_with_global_norm_clipping():
    # ‖GRAD‖ = √(1 + 4 + 0.25 + 9 + 1) = √15.25; clipped to norm 1 before the step, then scaled per layer.
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1), scale_by_layer(MULT))
    (u,) = updates(opt, [GRAD])
    norm = np.sqrt(15.25)
    for k in MULT:
        np.testing.assert_allclose(u[k], -0.1 * MULT[k] * GRAD[k] / norm, rtol=1e-6)


def test_composes_with_a_learning_rate_schedule():
    schedule = optax.exponential_decay(0.1, transition_steps=1, decay_rate=0.5)  # 0.1, 0.05, 0.025
    us = updates(width_scaled(optax.sgd(schedule), MULT), [GRAD] * 3)
    for step, u in enumerate(us):
        np.testing.assert_allclose(u["b"], -0.1 * 0.5**step * 0.25 * GRAD["b"], rtol=1e-6)


def test_scaled_optimizer_trains_the_mup_network_like_per_layer_sgd_by_hand():
    # One step through ntkcourse.training with μP's Adam multipliers equals θ − η λ_p sign(g_p) computed by hand.
    net = mlp(4, 128, 2, parameterization="mup", base_width=32)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((5, 2)).astype(np.float32)
    p0 = net.init_fn(jax.random.PRNGKey(0))
    run = train_network(net.apply_fn, p0, x, y, steps=1, optimizer=scaled_optimizer(net, "adam", 1e-3),
                        progress=False)
    g = jax.grad(lambda p: 0.5 * jnp.sum((net.apply_fn(p, x) - y) ** 2))(p0)
    lam = net.lr_multipliers("adam")
    expected = jax.tree_util.tree_map(lambda p, gg, m: p - 1e-3 * m * gg / (jnp.abs(gg) + 1e-8), p0, g, lam)
    for got, want in zip(jax.tree_util.tree_leaves(run.params), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)  # float32 gradients of a width-128 network


def test_mismatched_parameter_tree_is_refused():
    opt = width_scaled(optax.sgd(0.1), MULT)
    with pytest.raises(ValueError, match=r"scale_by_layer: the parameters' tree structure must match `multipliers`"):
        opt.init({"w": jnp.zeros(3)})


def test_non_positive_multiplier_is_refused():
    with pytest.raises(ValueError, match=r"scale_by_layer: every leaf of `multipliers` must be a positive finite "
                                         r"number, got -1.0"):
        scale_by_layer({"w": -1.0})


def test_unknown_optimizer_name_is_refused():
    with pytest.raises(ValueError, match=r"scaled_optimizer: `optimizer` must be 'sgd' or 'adam', got 'rmsprop'"):
        scaled_optimizer(mlp(4, 64, 1), "rmsprop", 0.1)


def test_mup_equals_sp_at_the_base_width():
    # At n = n₀ every multiplier is 1: same parameters, same outputs, same trained parameters.
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((6, 1)).astype(np.float32)
    nets = [mlp(4, 64, 1, parameterization=p, base_width=64) for p in ("mup", "sp")]
    runs = [train_network(n.apply_fn, n.init_fn(jax.random.PRNGKey(3)), x, y, steps=5,
                          optimizer=scaled_optimizer(n, "sgd", 1e-2), progress=False) for n in nets]
    np.testing.assert_array_equal(runs[0].train_outputs, runs[1].train_outputs)
