r"""Training deep plain networks from different initialisations: which ones train?

Schoenholz et al. (2017, "Deep information propagation", fig. 5) trained
fully connected tanh networks of many depths :math:`L` and weight variances
:math:`\sigma_w^2` and found that they train when :math:`L \lesssim 6\,\xi_c`
(:func:`ntkcourse.signal_propagation.trainable_depth`) and fail beyond.
:func:`training_accuracy_grid` runs the same kind of experiment at CPU scale:
networks of ``width`` units, weights
:math:`\mathcal N(0, \sigma_w^2/\text{fan-in})`, biases
:math:`\mathcal N(0, \sigma_b^2)` (standard parameterisation, as in the paper),
softmax cross-entropy, plain mini-batch SGD for a fixed number of steps, and
reports the training accuracy of each ``(sigma_w2, depth)``. The hidden
layers are stacked and run by ``lax.scan``, so one compilation serves every
weight variance of a depth (they are ``vmap``-ed).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from . import validation

__all__ = ["training_accuracy_grid"]


def _init(key, sigma_w2, sigma_b2, d_in, width, depth, n_classes):
    k_in, k_hidden, k_out, k_b = jax.random.split(key, 4)
    sw, sb = jnp.sqrt(sigma_w2), math.sqrt(sigma_b2)
    return {
        "w_in": sw * jax.random.normal(k_in, (d_in, width)) / math.sqrt(d_in),
        "w": sw * jax.random.normal(k_hidden, (depth - 1, width, width)) / math.sqrt(width),
        "b": sb * jax.random.normal(k_b, (depth, width)),
        "w_out": sw * jax.random.normal(k_out, (width, n_classes)) / math.sqrt(width),
    }


def _logits(params, x, fn):
    h = x @ params["w_in"] + params["b"][0]

    def layer(h, wb):
        w, b = wb
        return fn(h) @ w + b, None

    h, _ = jax.lax.scan(layer, h, (params["w"], params["b"][1:]))
    return fn(h) @ params["w_out"]


def training_accuracy_grid(fn, sigma_w2s, sigma_b2: float, depths, x, labels, *, width: int = 64,
                           steps: int = 300, learning_rate: float = 1e-2, batch_size: int = 128, seed: int = 0):
    r"""Training accuracy after ``steps`` of SGD, for each weight variance and depth.

    Args:
      fn: the activation (e.g. ``jnp.tanh``).
      sigma_w2s: weight variances :math:`\sigma_w^2` (1-D).
      sigma_b2: bias variance.
      depths: numbers of hidden layers, each >= 1.
      x: training inputs ``(n, d)``; labels: integer classes ``(n,)``.
      width, steps, learning_rate, batch_size, seed: the SGD run (the same
        mini-batches for every network).

    Returns:
      float array ``(len(sigma_w2s), len(depths))`` of accuracies on ``x``.
    """
    where = "training_accuracy_grid"
    validation.callable_arg(where, "fn", fn)
    sigma_w2s = np.asarray(sigma_w2s, dtype=np.float64)
    if sigma_w2s.ndim != 1 or sigma_w2s.size == 0 or not np.all(sigma_w2s > 0):
        raise validation.fail(where, "sigma_w2s", "a non-empty 1-D array of weight variances > 0", sigma_w2s)
    sigma_b2 = validation.nonnegative(where, "sigma_b2", sigma_b2)
    depths = [validation.positive_int(where, "depths", d) for d in depths]
    width, steps, batch_size = (validation.positive_int(where, k, v) for k, v in
                                (("width", width), ("steps", steps), ("batch_size", batch_size)))
    learning_rate = validation.nonnegative(where, "learning_rate", learning_rate)
    x = np.asarray(x, dtype=np.float32)
    labels = np.asarray(labels)
    if x.ndim != 2 or labels.shape != (x.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise validation.fail(where, "x, labels", "inputs (n, d) and integer labels (n,)", (x.shape, labels.shape))
    n_classes = int(labels.max()) + 1
    rng = np.random.default_rng(seed)
    batches = np.stack([rng.choice(x.shape[0], size=min(batch_size, x.shape[0]), replace=False)
                        for _ in range(steps)])
    onehot = jax.nn.one_hot(labels, n_classes)
    x, labels = jnp.asarray(x), jnp.asarray(labels)

    def loss(params, idx):
        logp = jax.nn.log_softmax(_logits(params, x[idx], fn))
        return -jnp.mean(jnp.sum(onehot[idx] * logp, axis=-1))

    def run(key, sigma_w2, depth):
        params = _init(key, sigma_w2, sigma_b2, x.shape[1], width, depth, n_classes)

        def step(params, idx):
            grads = jax.grad(loss)(params, idx)
            # A NaN from an exploding network stays NaN, and its accuracy is chance or worse.
            return jax.tree_util.tree_map(lambda p, g: p - learning_rate * g, params, grads), None

        params, _ = jax.lax.scan(step, params, jnp.asarray(batches))
        return jnp.mean(jnp.argmax(_logits(params, x, fn), axis=-1) == labels)

    key = jax.random.PRNGKey(seed)
    out = np.empty((sigma_w2s.size, len(depths)))
    for j, depth in enumerate(depths):
        grid = jax.jit(jax.vmap(lambda s, depth=depth: run(key, s, depth)))
        out[:, j] = np.asarray(grid(jnp.asarray(sigma_w2s, jnp.float32)))
    return out
