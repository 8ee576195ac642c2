r"""Layer normalisation (neural-tangents' ``LayerNorm``).

The finite layer maps each input to :math:`(z - \bar z)/\sqrt{\epsilon + s^2}`,
with the mean :math:`\bar z` and variance :math:`s^2` over ``axis`` (which must
contain the channel axis). At infinite width the channels of a Gaussian
layer output are i.i.d. zero-mean with variance :math:`q(x, p)` at position
``p``, so :math:`\bar z \to 0` and :math:`s^2 \to \bar q(x)`, the mean of
:math:`q(x, p)` over the normalised spatial axes (just :math:`q(x, p)` for
``axis=-1``). Hence

.. math::
    K(x, p; x', p') \mapsto \frac{K(x, p; x', p')}{\sqrt{(\epsilon + \bar q(x, p))(\epsilon + \bar q(x', p'))}},

and the NTK likewise (the normaliser is a constant in the limit, its
derivative does not contribute). This is neural-tangents' formula.

Padded inputs (``mask_constant``, neural-tangents' rule): the mean of
:math:`q` over the normalised spatial axes, and the finite layer's mean and
variance, are taken over the real positions only; padded positions stay
zero.

Non-Gaussian inputs are refused (as there): after an activation the mean
over channels tends to :math:`\mathbb{E}[\phi(z)] \ne 0`, which the kernels
do not track, so the formula would be wrong. Normalising over the batch
axis is refused too: it makes each input's output depend on the other
inputs of the batch, so ``kernel_fn(x1, x2)`` would depend on how the inputs
are batched.
"""
from __future__ import annotations

import jax.numpy as jnp

from .. import validation
from ..kernel import spatial_diagonal
from .conv_specs import axis_arg, check_layout, layout_value
from .layer import layer
from .masked import MaskedActivations, layout_axes, masked_output, spread_over_values
from .spatial import interleave_ones

__all__ = ["LayerNorm"]


def _axes(axis):
    if isinstance(axis, (int,)) and not isinstance(axis, bool):
        return (axis,)
    try:
        out = tuple(axis)
    except TypeError:
        raise validation.fail("LayerNorm", "axis", "an integer or a sequence of integers", axis) from None
    if not out or not all(isinstance(a, int) and not isinstance(a, bool) for a in out):
        raise validation.fail("LayerNorm", "axis", "an integer or a non-empty sequence of integers", axis)
    return out


def LayerNorm(axis=-1, eps: float = 1e-12, batch_axis: int = 0, channel_axis: int = -1):
    """Layer normalisation over ``axis`` (see the module docstring for the kernel).

    Args:
      axis: the axes normalised over, axes of the activations in their
        layout; must include the channel axis, may include spatial axes, not
        the batch axis.
      eps: added to the variance, > 0.
      batch_axis, channel_axis: where the activations keep those axes
        (neural-tangents' arguments; any layout, for ``kernel_fn`` too).
    """
    axes = _axes(axis)
    eps = validation.positive("LayerNorm", "eps", eps)
    batch_axis = axis_arg("LayerNorm", "batch_axis", batch_axis)
    channel_axis = axis_arg("LayerNorm", "channel_axis", channel_axis)

    def canonical(ndim):
        """``axis`` as sorted non-negative axes of activations with ``ndim`` axes, checked."""
        out = []
        for a in axes:
            if not -ndim <= a < ndim:
                raise ValueError(f"LayerNorm: axis {a} is out of range for inputs with {ndim} axes.")
            out.append(a % ndim)
        b, c = batch_axis % ndim, channel_axis % ndim
        if b == c:
            raise ValueError(f"LayerNorm: `batch_axis` and `channel_axis` must differ, got {batch_axis} and "
                             f"{channel_axis} for activations with {ndim} axes.")
        if c not in out:
            raise ValueError(f"LayerNorm: `axis` must include the channel axis ({c} = channel_axis) for the "
                             f"infinite-width limit to exist, got axis={axis!r}.")
        if b in out:
            raise NotImplementedError(
                f"LayerNorm: normalising over the batch axis (axis={axis!r}, batch_axis={batch_axis}) makes each "
                "output depend on the other inputs of the batch; not implemented.")
        return sorted(set(out))

    def kernel_spatial_axes(ndim):
        """The normalised spatial axes as 0-based indices of the kernel's spatial axes (the activations' order)."""
        b, c = batch_axis % ndim, channel_axis % ndim
        spatial = [a for a in range(ndim) if a not in (b, c)]
        return [spatial.index(a) for a in canonical(ndim) if a != c]

    def init_fn(key, input_shape):
        canonical(len(input_shape))
        return input_shape, ()

    def apply_fn(params, inputs, **kwargs):
        if not isinstance(inputs, MaskedActivations):
            ax = tuple(canonical(inputs.ndim))
            mean = jnp.mean(inputs, axis=ax, keepdims=True)
            var = jnp.mean((inputs - mean) ** 2, axis=ax, keepdims=True)
            return (inputs - mean) / jnp.sqrt(eps + var)
        # Padded inputs: the mean and variance over the real entries of each normalised group only
        # (neural-tangents' masked mean_and_var); padded positions stay zero.
        x = inputs.values
        ax = tuple(canonical(x.ndim))
        if inputs.layout != layout_value(batch_axis, channel_axis, x.ndim):
            raise ValueError(f"LayerNorm: apply_fn received padded activations with batch and channel axes at "
                             f"{layout_axes(inputs.layout, x.ndim)}, but it takes batch_axis={batch_axis}, "
                             f"channel_axis={channel_axis}.")
        weight = jnp.broadcast_to(spread_over_values(inputs.real, inputs.layout, x.ndim), x.shape).astype(x.dtype)
        count = jnp.maximum(jnp.sum(weight, axis=ax, keepdims=True), 1)
        mean = jnp.sum(x * weight, axis=ax, keepdims=True) / count
        var = jnp.sum(((x - mean) * weight) ** 2, axis=ax, keepdims=True) / count
        return masked_output((x - mean) / jnp.sqrt(eps + var), inputs.real, inputs.layout)

    def kernel_map(k):
        check_layout("LayerNorm", k, batch_axis, channel_axis)
        if not k.is_gaussian:
            raise ValueError(
                "LayerNorm: needs Gaussian inputs (put a Dense or Conv layer before it): after an activation the "
                "mean over channels tends to E[phi(z)], which the kernels do not track.")
        s = k.spatial_ndim
        spatial = kernel_spatial_axes(s + 2)
        diag = k.diagonal_spatial

        def variances(cov, mask):
            var = cov if (s == 0 or diag) else spatial_diagonal(cov, 1, s)
            if spatial:
                axes_ = tuple(1 + a for a in spatial)
                if mask is None:
                    var = jnp.mean(var, axis=axes_, keepdims=True) * jnp.ones_like(var)
                else:
                    # padded inputs: the mean over the real positions of each group (variances are zero at
                    # padded ones), as the finite layer's masked mean
                    count = jnp.maximum(jnp.sum(mask, axis=axes_, keepdims=True), 1).astype(var.dtype)
                    var = jnp.sum(var, axis=axes_, keepdims=True) / count * jnp.ones_like(var)
            return eps + var

        v1 = variances(k.cov1, k.mask1)
        v2 = v1 if k.cov2 is None else variances(k.cov2, k.mask1 if k.mask2 is None else k.mask2)
        scale = jnp.sqrt(interleave_ones(v1, s, left=True, batch_pair=True, diagonal=diag)) * jnp.sqrt(
            interleave_ones(v2, s, left=False, batch_pair=True, diagonal=diag))

        def self_scale(v):
            if s == 0 or diag:
                return v
            return jnp.sqrt(interleave_ones(v, s, left=True, batch_pair=False)) * jnp.sqrt(
                interleave_ones(v, s, left=False, batch_pair=False))

        return k.replace(
            nngp=k.nngp / scale, ntk=None if k.ntk is None else k.ntk / scale,
            cov1=k.cov1 / self_scale(v1), cov2=None if k.cov2 is None else k.cov2 / self_scale(v2))

    return layer(init_fn, apply_fn, kernel_map, "LayerNorm",
                 {"axis": axes, "eps": eps, "batch_axis": batch_axis, "channel_axis": channel_axis},
                 input_layout=(batch_axis, channel_axis), handles_masks=True)
