r"""Finite networks on padded inputs: activations carried with their masks.

``apply_fn(params, x, mask_constant=c)`` on sequences ``(batch, T, features)``
or images ``(batch, H, W, channels)`` (batch first, channels last): the masks
are computed **once**, from the network's inputs, with neural-tangents'
convention (:mod:`ntkcourse.engine.masks`: an entry equal to ``c`` counts as
zero; a position whose channels all equal ``c`` is padding). From there on
they travel between the layers *out of band*, as :class:`MaskedActivations`
``(values, real)`` beside the activations, never re-read from the values:
each layer maps the masks as its ``kernel_fn`` maps the kernel's (a window's
centre rule for ``Conv`` and the window pools, nothing for ``Dense`` and the
activations, a union over the branches of ``FanInSum``/``FanInConcat``/
``FanInProd``), and the layers that read padding (``GlobalAvgPool``,
``GlobalSumPool``, ``Flatten``, ``Recurrent``, ``GlobalSelfAttention``) use
the masks they receive. neural-tangents carries its masks the same way (its
``MaskedArray(masked_value, mask)``, ``True`` at padding there). Any layout
that ``kernel_fn`` takes: the masks are read over the channel axis that the
network's first layer naming one takes (``batch_axis``, ``channel_axis``,
``dimension_numbers``), and their spatial axes follow the activations'.

Why not in band: reading "all channels equal ``c``" again at a hidden layer
takes a *real* position whose activations all equal ``c`` for padding, e.g.
``c = 0`` after a ReLU with few channels, and the finite network then
disagrees with its kernel, whose masks come from the inputs only.

The invariant, the one ``kernel_fn`` keeps for its kernels
(:func:`ntkcourse.stax.layer.remask`): ``values`` are zero at every padded
position, so padded positions are zero at the input of every layer.

What the outermost ``apply_fn`` returns: a plain array, with ``c`` at the
padded positions of outputs that still have positions (as before the masks
travelled out of band, so that code reading the padding of the outputs keeps
working); after a readout that removes the positions (a global pool,
``Flatten``, ``Recurrent(return_sequences=False)``) the masks are one per
input (:func:`read_out_masks`): the values as they are for every input with
a real position, ``c`` for an input made only of padding.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..engine.masks import padded_entries

__all__ = ["MaskedActivations", "layout_axes", "spread_over_values", "carries_masks", "masked_inputs",
           "padded_outputs", "masked_output", "read_out_masks", "union_of_masks", "combined_branches",
           "combined_kernel_masks"]


@jax.tree_util.register_pytree_node_class
class MaskedActivations:
    """Finite activations of padded inputs and their masks.

    Attributes:
      values: the activations, ``(batch, *spatial, channels)`` or in the
        layout ``layout``, zero at every padded position.
      real: booleans ``(batch, *spatial)``, ``True`` at the real positions,
        the spatial axes in the order ``values`` holds them (the polarity and
        order of :class:`ntkcourse.Kernel`'s ``mask1``; the opposite polarity
        of neural-tangents' ``MaskedArray.mask``).
      layout: where ``values`` keeps its batch and channel axes,
        ``(batch_axis, channel_axis)`` non-negative, or ``None`` for batch
        first and channels last (as :class:`ntkcourse.Kernel`'s ``layout``).
    """

    def __init__(self, values, real, layout=None):
        self.values = values
        self.real = real
        self.layout = layout

    def tree_flatten(self):
        return (self.values, self.real), self.layout

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, layout=aux)

    def __repr__(self):
        return f"MaskedActivations(values={self.values!r}, real={self.real!r}, layout={self.layout!r})"


def layout_axes(layout, ndim: int):
    """``(batch_axis, channel_axis)``, non-negative, of activations with
    ``ndim`` axes in ``layout`` (``None``: batch first, channels last).
    """
    return (0, ndim - 1) if layout is None else tuple(layout)


def spread_over_values(real, layout, ndim: int):
    """The masks ``real`` ``(batch, *spatial)`` with their axes where the
    activations in ``layout`` keep theirs and a channel axis of size one, so
    that they broadcast against the activations.
    """
    batch_axis, channel_axis = layout_axes(layout, ndim)
    moved = jnp.moveaxis(real, 0, batch_axis if batch_axis < channel_axis else batch_axis - 1)
    return jnp.expand_dims(moved, channel_axis)


def carries_masks(inputs) -> bool:
    """Whether ``inputs`` (an array, or the list of a ``FanOut``'s branches)
    holds :class:`MaskedActivations`: the call comes from a layer of a
    network whose inputs were padded.
    """
    if isinstance(inputs, MaskedActivations):
        return True
    return isinstance(inputs, (list, tuple)) and any(carries_masks(x) for x in inputs)


def masked_inputs(inputs, mask_constant, where: str, layout=None):
    """The network's inputs as :class:`MaskedActivations` (each branch of a
    list alike): entries equal to ``mask_constant`` set to zero (``NaN``
    matches ``NaN``), a position real when not all its channels equal it.
    ``layout``: where the inputs keep their batch and channel axes (that
    the network's first layer naming them takes; ``None``: batch first,
    channels last).

    An input made only of padding is accepted (all its masks ``False``).

    Raises:
      ValueError: an input has no spatial axis, naming ``where``.
    """
    if isinstance(inputs, (list, tuple)):
        return [masked_inputs(x, mask_constant, where, layout) for x in inputs]
    if np.ndim(inputs) < 3:
        raise ValueError(
            f"{where}: apply_fn(..., mask_constant={mask_constant!r}) marks padded time steps of sequences "
            f"(batch, T, features) or padded pixels of images (batch, H, W, channels); the inputs have shape "
            f"{np.shape(inputs)}, with no spatial axis."
        )
    x, c, entry = padded_entries(inputs, mask_constant)
    batch_axis, channel_axis = layout_axes(layout, x.ndim)
    real = jnp.moveaxis(~jnp.all(entry, axis=channel_axis),
                        batch_axis if batch_axis < channel_axis else batch_axis - 1, 0)
    return MaskedActivations(jnp.where(entry, jnp.zeros((), x.dtype), x), real, layout)


def masked_output(values, real, layout=None) -> MaskedActivations:
    """A layer's output ``values`` (in ``layout``) with the masks ``real`` of
    its positions, zeroed at the padded ones (the invariant of
    :class:`MaskedActivations`).
    """
    where = spread_over_values(real, layout, values.ndim)
    return MaskedActivations(jnp.where(where, values, jnp.zeros((), values.dtype)), real, layout)


def read_out_masks(real):
    """The masks ``(batch,)`` of a readout's output (a global pool, ``Flatten``,
    a last-step ``Recurrent``) from those of its input ``(batch, *spatial)``:
    ``True`` for an input with at least one real position. An input made only
    of padding stays padding after the readout (neural-tangents' rule: its
    pools' and ``Flatten``'s masks are the ``all`` of the positions' masks), so
    the layers after it keep its kernel entries and outputs zero and the
    outermost ``apply_fn`` returns ``mask_constant`` for it.
    """
    return jnp.any(real.reshape(real.shape[0], -1), axis=1)


def padded_outputs(outputs, mask_constant):
    """What the outermost ``apply_fn`` returns: ``outputs`` with every
    :class:`MaskedActivations` replaced by its values, ``mask_constant`` at
    the padded positions (each branch of a list alike).
    """
    if isinstance(outputs, MaskedActivations):
        values = outputs.values
        where = spread_over_values(outputs.real, outputs.layout, values.ndim)
        return jnp.where(where, values, jnp.asarray(mask_constant, values.dtype))
    if isinstance(outputs, (list, tuple)):
        return [padded_outputs(x, mask_constant) for x in outputs]
    return outputs


def union_of_masks(where: str, branches):
    """The masks of a combination of branches (sum, product, concatenation
    along the channels): a position is real when it is real in any branch,
    as neural-tangents' ``_sum_masks`` (padded only when padded in every
    branch). ``branches``: the masks ``(batch, *spatial)`` of each branch
    (``(batch,)`` after a readout, :func:`read_out_masks`), ``None`` for a
    branch without masks.

    Raises:
      ValueError: some branches carry masks of positions and others none or
        only those of a readout (one of them read its positions out, e.g. a
        global pool), or the masks differ in shape, naming ``where``.
    """
    present = [m for m in branches if m is not None]
    if not present:
        return None
    if len(present) != len(branches) or len({m.ndim == 1 for m in present}) > 1:
        raise ValueError(
            f"{where}: some branches carry the masks of padded inputs and others do not (a branch that read "
            "its positions out, e.g. with a global pool); such branches have different shapes and cannot be "
            "combined."
        )
    shapes = {tuple(m.shape) for m in present}
    if len(shapes) != 1:
        raise ValueError(f"{where}: the branches' masks of padded positions differ in shape: {sorted(shapes)}.")
    out = present[0]
    for m in present[1:]:
        out = out | m
    return out


def combined_branches(where: str, branches, combine):
    """``combine(values of the branches)``, with the union of their masks
    (:func:`union_of_masks`) when they carry masks: zero wherever every
    branch is padded, so the invariant of :class:`MaskedActivations` holds
    for sums, products and concatenations along the channels.
    """
    if not carries_masks(branches):
        return combine(list(branches))
    masked = [x for x in branches if isinstance(x, MaskedActivations)]
    layouts = {x.layout for x in masked}
    if len(layouts) > 1:
        raise ValueError(f"{where}: its branches keep the batch and channel axes at different places "
                         f"({sorted(layouts, key=str)}, None: batch first, channels last).")
    real = union_of_masks(where, [x.real if isinstance(x, MaskedActivations) else None for x in branches])
    return MaskedActivations(combine([x.values if isinstance(x, MaskedActivations) else x for x in branches]), real,
                             masked[0].layout)


def combined_kernel_masks(where: str, kernels) -> dict:
    """``mask1``/``mask2`` of the kernel of a combination of branches (the
    ``Kernel.replace`` arguments): the union of the branches' masks, as for
    the finite network (:func:`combined_branches`). The branches' kernels
    are zero at their own padded positions, so their sum, product or
    channel-weighted mean needs no remasking.
    """
    return {"mask1": union_of_masks(where, [k.mask1 for k in kernels]),
            "mask2": union_of_masks(where, [k.mask2 for k in kernels])}
