"""The boundary between a layer's formulas and the engine that computes them.

:func:`layer` turns what a layer is — its finite network (``init_fn``,
``apply_fn``), its kernel map ``Kernel -> Kernel``, and what it declares to
the rest of the package — into the public triple ``(init_fn, apply_fn,
kernel_fn)``. The ``kernel_fn`` comes from :func:`ntkcourse.engine.make_kernel_fn`.

What a layer declares (:class:`LayerSpec`):

* ``has_params``: whether ``init_fn`` draws parameters;
* ``structured``: for an affine layer, its :class:`StructuredRule` — how its
  parameters enter the empirical NTK (used by
  ``ntkcourse.empirical``'s ``'structured'`` implementation). A layer with
  parameters and no rule cannot take the structured path: asking for it
  explicitly is an error, and ``'auto'`` chooses another implementation;
* ``input_diagonal``: given whether only the spatial diagonal of the layer's
  output kernel is needed, whether only the diagonal of its input kernel is
  (``Flatten`` needs only the diagonal; pooling needs every pair of positions;
  elementwise and convolutional layers pass the requirement on).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Tuple

import jax.numpy as jnp

from ..engine import make_kernel_fn

__all__ = ["LayerSpec", "StructuredRule", "layer", "layer_spec", "kernel_map_of", "stages_of", "pass_requirement",
           "remask", "same_mask"]


class StructuredRule(NamedTuple):
    r"""How an affine layer's parameters enter the empirical NTK.

    For ``z = c_w \, \mathrm{patches}(x) W + c_b b`` the layer contributes
    :math:`c_w^2 \sum_p a_p \cdot a'_p \, \delta_p \delta'_p + c_b^2 \sum_{p,p'} \delta_p \delta'_{p'}`
    to the NTK, with ``a`` the patches of the layer's input and
    :math:`\delta = \partial f / \partial z` (Novak, Sohl-Dickstein & Schoenholz 2022).

    Attributes:
      scales: ``scales(input_channels) -> (c_w**2, c_b**2)``.
      patches: the layer input as ``(n, positions..., features)`` rows that
        multiply ``W`` (the identity for ``Dense``).
    """

    scales: Callable[[int], Tuple[float, float]]
    patches: Callable[[Any], Any]


def pass_requirement(output_diagonal):
    """The requirement of a layer that acts on each position (or pair of
    positions) separately: whatever its output needs, its input needs.
    """
    return output_diagonal


class LayerSpec(NamedTuple):
    """What a layer is, for introspection (e.g. the structured empirical NTK).

    Attributes:
      name: the constructor's name (``"Dense"``, ``"serial"``, ``"Relu"``, ...).
      config: its arguments after validation (``W_std``, ``b_std``, ...); for
        activations ``{"activation": DualActivation}``.
      children: the sub-layers (triples) of ``serial`` and ``parallel``.
      has_params: whether the layer has parameters of its own.
      structured: its :class:`StructuredRule`, for affine layers.
      input_diagonal: see the module docstring.
    """

    name: str
    config: dict
    children: tuple = ()
    has_params: bool = False
    structured: Optional[StructuredRule] = None
    input_diagonal: Callable = pass_requirement


def layer(
    init_fn: Callable,
    apply_fn: Callable,
    kernel_map: Callable,
    name: str,
    config: Optional[dict] = None,
    children=(),
    *,
    has_params: bool = False,
    structured: Optional[StructuredRule] = None,
    input_diagonal: Callable = pass_requirement,
    stages=None,
    reads_neighbours: bool = False,
    handles_masks: bool = False,
    reads_patterns: bool = False,
    mask_fn: Optional[Callable] = None,
):
    """The public triple of a layer, remembering its kernel map (for
    composition) and its :class:`LayerSpec` (``kernel_fn.spec`` and
    ``apply_fn.spec``, so that tools given only ``(init_fn, apply_fn)`` find
    the structure).

    ``stages``: the kernel map as a sequence of ``(map, reads_neighbours)``
    whose composition it is (``serial`` passes its layers' stages).
    ``reads_neighbours``: the layer reads each entry of its input kernel at
    several positions (a convolution, a pooling), so the engine stores its
    input once before it (see :func:`ntkcourse.engine.make_kernel_fn`).
    ``handles_masks``: the layer accepts a kernel carrying masks of padded
    time steps (``kernel_fn(..., mask_constant=...)``); any other layer that
    receives one raises rather than ignore the padding.
    ``mask_fn``: for a layer that acts on the positions of a padded sequence
    without reading the masks (``Dense``, activations, ``Conv``): the map
    from the masks ``(batch, T)`` of its input to those of its output. The
    layer's map then runs on the kernel without its masks, and every entry
    of the result that involves a padded position is set to zero: padded
    positions are zero at the input of every layer, as in neural-tangents
    (its ``supports_masking(remask_kernel=True)``).
    ``reads_patterns``: the layer reads graph patterns
    (``kernel_fn(..., pattern=...)``, :func:`ntkcourse.stax.Aggregate`); a
    network accepts ``pattern=`` only if one of its layers does (a
    combinator inherits it from its ``children``).
    """
    if mask_fn is not None:
        kernel_map = _remasking(kernel_map, mask_fn)
        apply_fn = _masking_apply(apply_fn, mask_fn)
    elif not handles_masks:
        kernel_map = _refusing_masks(kernel_map, name)
    if stages is None:
        stages = ((kernel_map, bool(reads_neighbours)),)
    reads_patterns = bool(reads_patterns) or any(getattr(c[2], "reads_patterns", False) for c in children)
    kernel_fn = make_kernel_fn(kernel_map, input_diagonal, stages=stages, reads_patterns=reads_patterns)
    kernel_fn.spec = LayerSpec(name, dict(config or {}), tuple(children), has_params, structured, input_diagonal)
    apply_fn.spec = kernel_fn.spec
    return init_fn, apply_fn, kernel_fn


def _refusing_masks(kernel_map: Callable, name: str) -> Callable:
    def checked(k):
        ks = k if isinstance(k, (list, tuple)) else (k,)
        if any(getattr(one, "is_masked", False) for one in ks):
            raise ValueError(
                f"{name}: received a kernel of sequences with padded time steps (kernel_fn(..., mask_constant=...)), "
                "but this layer does not handle padding; the layers that do are Recurrent, Dense, 1-D Conv "
                "('VALID'/'SAME'), the activations, GlobalSelfAttention and GlobalAvgPool (and serial, parallel, "
                "FanOut, Identity): read the sequences out with one of them first (e.g. GlobalAvgPool, or "
                "Recurrent(..., return_sequences=False)), or pass equal-length sequences without mask_constant."
            )
        return kernel_map(k)

    return checked


def remask(k, mask1, mask2):
    """``k`` with the masks ``mask1``, ``mask2`` (``(n, T)``, ``True`` at real
    steps; ``mask2=None``: x2 is x1) and every entry that pairs a padded step
    set to zero.
    """
    m2 = mask1 if mask2 is None else mask2
    if k.diagonal_spatial:
        pair, self1, self2 = mask1[:, None, :] & m2[None, :, :], mask1, m2
    else:
        pair = mask1[:, None, :, None] & m2[None, :, None, :]
        self1, self2 = mask1[:, :, None] & mask1[:, None, :], m2[:, :, None] & m2[:, None, :]

    def zero(x, where):
        return None if x is None else jnp.where(where, x, jnp.zeros((), x.dtype))

    return k.replace(nngp=zero(k.nngp, pair), ntk=zero(k.ntk, pair), cov1=zero(k.cov1, self1),
                     cov2=zero(k.cov2, self2), mask1=mask1, mask2=mask2)


def _remasking(kernel_map: Callable, mask_fn: Callable) -> Callable:
    def masked(k):
        if isinstance(k, (list, tuple)) or not getattr(k, "is_masked", False):
            return kernel_map(k)
        m1 = mask_fn(k.mask1)
        m2 = None if k.mask2 is None else mask_fn(k.mask2)
        return remask(kernel_map(k.replace(mask1=None, mask2=None)), m1, m2)

    return masked


def _masking_apply(apply_fn: Callable, mask_fn: Callable) -> Callable:
    """``apply_fn`` that keeps padded steps padded, as its kernel does.

    With ``mask_constant`` and sequences ``(batch, T, features)``: entries
    equal to ``mask_constant`` enter the layer as zero (as in ``kernel_fn``),
    and the output steps that ``mask_fn`` marks as padding are set to
    ``mask_constant`` again, so that a following ``Recurrent`` (or any layer
    reading the padding) sees it. Without this, ``Recurrent -> Dense ->
    Recurrent`` on padded sequences had a kernel that treated the padding as
    padding while the finite network's second ``Recurrent`` read it as data.
    """
    def masked_apply(params, inputs, mask_constant=None, **kwargs):
        if mask_constant is None or getattr(inputs, "ndim", 0) != 3:
            return apply_fn(params, inputs, **kwargs)
        c = jnp.asarray(mask_constant, inputs.dtype)
        entry = (inputs == c) | (jnp.isnan(inputs) & jnp.isnan(c))
        out = apply_fn(params, jnp.where(entry, 0, inputs), **kwargs)
        real = mask_fn(~jnp.all(entry, axis=-1))
        return jnp.where(real[..., None], out, c.astype(out.dtype))

    return masked_apply


def same_mask(mask):
    """The ``mask_fn`` of a layer that keeps every position (``Dense``, activations)."""
    return mask


def kernel_map_of(triple) -> Callable:
    """The ``Kernel -> Kernel`` map of a layer triple made by :func:`layer`."""
    if not (isinstance(triple, tuple) and len(triple) == 3 and hasattr(triple[2], "kernel_layer")):
        raise TypeError(
            f"expected a layer made by ntkcourse.stax (a triple init_fn, apply_fn, kernel_fn), got {triple!r}."
        )
    return triple[2].kernel_layer


def stages_of(triple):
    """The kernel map of a layer triple as a sequence of maps (see :func:`layer`)."""
    kernel_map_of(triple)
    return triple[2].stages


def layer_spec(triple) -> LayerSpec:
    """The :class:`LayerSpec` of a layer triple made by this package."""
    kernel_map_of(triple)
    return triple[2].spec
