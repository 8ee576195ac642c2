r"""An optax gradient transformation that applies per-layer learning-rate multipliers to any optax optimiser.

μP (Tensor Programs V, Tables 3 and 9) gives each parameter its own learning rate :math:`\eta\,\lambda_p`, with
:math:`\lambda_p` a power of the width. With optax this is one more link in a chain, after the optimiser::

    opt = optax.chain(optax.adam(eta), scale_by_layer(net.lr_multipliers("adam")))

``scale_by_layer`` multiplies the update of parameter ``p`` by ``λ_p``: for SGD
:math:`\Delta\theta_p = -\eta\,\lambda_p\, g_p`; for Adam :math:`\Delta\theta_p = -\eta\,\lambda_p\,
\hat m_p / (\sqrt{\hat v_p} + \epsilon)` — the learning rate is scaled, not the gradient (scaling the gradient
before Adam would have no effect on its update). It composes with clipping, schedules and weight decay
placed before it in the chain.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = ["scale_by_layer", "width_scaled", "scaled_optimizer"]


def _check_multipliers(multipliers):
    leaves = jax.tree_util.tree_leaves(multipliers)
    if not leaves:
        raise ValueError("scale_by_layer: `multipliers` must be a pytree with at least one number, got an empty tree.")
    for leaf in leaves:
        if not (np.ndim(leaf) == 0 and np.isfinite(float(leaf)) and float(leaf) > 0):
            raise ValueError(
                f"scale_by_layer: every leaf of `multipliers` must be a positive finite number, got {leaf!r}."
            )


def scale_by_layer(multipliers) -> optax.GradientTransformation:
    """Multiply the update of each parameter by its own fixed factor.

    Args:
      multipliers: a pytree with the structure of the parameters and one positive number per leaf
        (e.g. ``MupMLP.lr_multipliers(optimizer)``).

    Returns:
      An ``optax.GradientTransformation`` with an empty state; ``update`` raises a ValueError if the updates'
      tree structure differs from that of ``multipliers``.

    Example:
      >>> import optax, jax.numpy as jnp
      >>> opt = optax.chain(optax.sgd(0.1), scale_by_layer({"w": 2.0, "b": 0.5}))
      >>> params = {"w": jnp.ones(2), "b": jnp.ones(1)}
      >>> u, _ = opt.update({"w": jnp.ones(2), "b": jnp.ones(1)}, opt.init(params))
      >>> [round(float(u["w"][0]), 6), round(float(u["b"][0]), 6)]
      [-0.2, -0.05]
    """
    _check_multipliers(multipliers)
    structure = jax.tree_util.tree_structure(multipliers)

    def init_fn(params):
        if jax.tree_util.tree_structure(params) != structure:
            raise ValueError(
                "scale_by_layer: the parameters' tree structure must match `multipliers`; "
                f"got {jax.tree_util.tree_structure(params)}, expected {structure}."
            )
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        if jax.tree_util.tree_structure(updates) != structure:
            raise ValueError(
                "scale_by_layer: the updates' tree structure must match `multipliers`; "
                f"got {jax.tree_util.tree_structure(updates)}, expected {structure}."
            )
        scaled = jax.tree_util.tree_map(lambda u, m: u * jnp.asarray(m, dtype=u.dtype), updates, multipliers)
        return scaled, state

    return optax.GradientTransformation(init_fn, update_fn)


def width_scaled(optimizer: optax.GradientTransformation, multipliers) -> optax.GradientTransformation:
    """``optax.chain(optimizer, scale_by_layer(multipliers))``: any optax optimiser with per-layer learning rates."""
    return optax.chain(optimizer, scale_by_layer(multipliers))


def scaled_optimizer(network, optimizer: str, learning_rate) -> optax.GradientTransformation:
    """``optax.sgd`` or ``optax.adam`` at ``learning_rate`` (a number or an optax schedule), followed by
    ``network.lr_multipliers(optimizer)``: the optimiser a parameterisation prescribes for ``network``
    (a :class:`~ntkcourse.mup.networks.MupMLP`).
    """
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"scaled_optimizer: `optimizer` must be 'sgd' or 'adam', got {optimizer!r}.")
    base = optax.sgd(learning_rate) if optimizer == "sgd" else optax.adam(learning_rate)
    return width_scaled(base, network.lr_multipliers(optimizer))
