r"""MLPs built under an abc-parameterisation (SP, NTK, μP, mean-field), with their per-layer learning rates.

The network, for hidden width :math:`n`, depth :math:`L` (hidden layers) and activation :math:`\phi`:

.. math::
   h_1 = \phi(m_1\, x W_1 + m_b\, b_1),\quad
   h_\ell = \phi(m_\ell\, h_{\ell-1} W_\ell + m_b\, b_\ell)\ (2 \le \ell \le L),
   \quad f(x) = m_{L+1}\, h_L W_{L+1},

with multipliers :math:`m` and initial standard deviations from
:func:`ntkcourse.mup.parameterization.layer_scales` (kinds ``input``, ``hidden``, ``output``, ``bias``; the output
layer has no bias). At ``width == base_width`` every parameterisation gives the same standard network.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Tuple

import jax
import jax.numpy as jnp

from ..validation import nonnegative, one_of, positive_int
from .parameterization import OPTIMIZERS, Parameterization, get_parameterization, layer_scales

__all__ = ["MupMLP", "mlp", "ACTIVATIONS"]

ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh}


class MupMLP(NamedTuple):
    """An MLP under a parameterisation.

    Attributes:
      init_fn: ``init_fn(key) -> params``: a tuple of per-layer dicts, ``{"w": (fan_in, fan_out), "b": (n,)}``
        for the ``depth`` hidden layers and ``{"w": (n, k)}`` for the readout.
      apply_fn: ``apply_fn(params, x) -> (batch, k)``.
      features_fn: ``features_fn(params, x) -> (h_1, …, h_L, f)``: every hidden representation (after the
        activation) and the output, the quantities a coordinate check follows.
      kinds: the kind of each parameter, a pytree shaped like ``params`` (strings).
      parameterization, width, base_width, depth, input_dim, output_dim: what the network was built with.
    """

    init_fn: Callable
    apply_fn: Callable
    features_fn: Callable
    kinds: Tuple
    parameterization: Parameterization
    width: int
    base_width: int
    depth: int
    input_dim: int
    output_dim: int
    W_std: float
    b_std: float
    out_std: float

    def layer_scales(self, kind: str, optimizer: str = "sgd"):
        """:func:`~ntkcourse.mup.parameterization.layer_scales` of one kind of parameter of this network."""
        base_fan_in = {"input": self.input_dim, "hidden": self.base_width, "output": self.base_width, "bias": 1}[kind]
        std = {"input": self.W_std, "hidden": self.W_std, "output": self.out_std, "bias": self.b_std}[kind]
        return layer_scales(self.parameterization, kind, width=self.width, base_width=self.base_width,
                            optimizer=optimizer, std=std, base_fan_in=base_fan_in)

    def lr_multipliers(self, optimizer: str = "sgd"):
        """The learning-rate multiplier ``r^-c`` of every parameter (for ``optimizer`` 'sgd' or 'adam'), shaped
        like ``params``: pass it to :func:`ntkcourse.mup.optax_scaling.scale_by_layer`.
        """
        optimizer = one_of("MupMLP.lr_multipliers", "optimizer", optimizer, OPTIMIZERS)
        return jax.tree_util.tree_map(lambda k: self.layer_scales(k, optimizer).lr_multiplier, self.kinds)


def mlp(
    input_dim: int,
    width: int,
    output_dim: int,
    *,
    depth: int = 2,
    parameterization="mup",
    base_width: int = 64,
    activation: str = "relu",
    W_std: float = 2.0**0.5,
    b_std: float = 0.0,
    out_std: float = 1.0,
) -> MupMLP:
    """An MLP of ``depth`` hidden layers of ``width`` units under ``parameterization`` anchored at ``base_width``.

    Args:
      input_dim, width, output_dim: d, n, k.
      depth: number of hidden layers L ≥ 1 (the mean-field preset requires 1).
      parameterization: ``'sp'``, ``'ntk'``, ``'mup'``, ``'mean_field'`` or a ``Parameterization``.
      base_width: n₀ ≤ n, where every parameterisation equals the standard one.
      activation: ``'relu'`` or ``'tanh'``.
      W_std, b_std, out_std: σ of the input and hidden weights, of the biases and of the readout
        (the standard deviation at base width is σ/√fan-in, σ_b for biases).

    Raises:
      ValueError: an unknown parameterisation or activation, a width below the base width, a layer kind the
        parameterisation does not define (hidden layers under mean-field).
    """
    where = "mlp"
    p = get_parameterization(parameterization)
    input_dim = positive_int(where, "input_dim", input_dim)
    width = positive_int(where, "width", width)
    output_dim = positive_int(where, "output_dim", output_dim)
    depth = positive_int(where, "depth", depth)
    base_width = positive_int(where, "base_width", base_width)
    act = ACTIVATIONS[one_of(where, "activation", activation, tuple(ACTIVATIONS))]
    kinds = tuple(
        [{"w": "input", "b": "bias"}] + [{"w": "hidden", "b": "bias"}] * (depth - 1) + [{"w": "output"}]
    )
    net = MupMLP(None, None, None, kinds, p, width, base_width, depth, input_dim, output_dim,
                 nonnegative(where, "W_std", W_std), nonnegative(where, "b_std", b_std),
                 nonnegative(where, "out_std", out_std))
    # Computing every kind's scales here raises, at construction, the errors about widths and undefined kinds.
    scales = jax.tree_util.tree_map(lambda k: net.layer_scales(k), kinds)
    mult = jax.tree_util.tree_map(lambda s: s.multiplier, scales, is_leaf=lambda s: hasattr(s, "multiplier"))
    stds = jax.tree_util.tree_map(lambda s: s.init_std, scales, is_leaf=lambda s: hasattr(s, "multiplier"))
    dims = [input_dim] + [width] * depth + [output_dim]

    def init_fn(key):
        keys = jax.random.split(key, 2 * len(kinds))
        params = []
        for i, layer_kinds in enumerate(kinds):
            layer = {"w": stds[i]["w"] * jax.random.normal(keys[2 * i], (dims[i], dims[i + 1]))}
            if "b" in layer_kinds:
                layer["b"] = stds[i]["b"] * jax.random.normal(keys[2 * i + 1], (dims[i + 1],))
            params.append(layer)
        return tuple(params)

    def features_fn(params, x):
        h, feats = x, []
        for i, layer in enumerate(params[:-1]):
            h = act(mult[i]["w"] * (h @ layer["w"]) + mult[i]["b"] * layer["b"])
            feats.append(h)
        feats.append(mult[-1]["w"] * (h @ params[-1]["w"]))
        return tuple(feats)

    def apply_fn(params, x):
        return features_fn(params, x)[-1]

    return net._replace(init_fn=init_fn, apply_fn=apply_fn, features_fn=features_fn)

