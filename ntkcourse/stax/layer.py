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
import numpy as np

from ..engine import make_kernel_fn
from ..kernel import Kernel
from .conv_specs import input_layout as first_input_layout
from .conv_specs import layout_value
from .masked import MaskedActivations, carries_masks, masked_inputs, masked_output, padded_outputs
from .spatial import interleave_ones

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
      input_layout: ``(batch_axis, channel_axis)`` that the layer (for a
        combinator: its first layer that names them) requires of its input,
        possibly negative, ``channel_axis`` ``None`` for ``Flatten``; ``None``
        for layers that act alike in every layout (activations).
    """

    name: str
    config: dict
    children: tuple = ()
    has_params: bool = False
    structured: Optional[StructuredRule] = None
    input_diagonal: Callable = pass_requirement
    input_layout: Optional[tuple] = None


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
    reads_identity: bool = False,
    mask_fn: Optional[Callable] = None,
    input_layout: Optional[tuple] = None,
    layout_free: bool = False,
    finite_layouts: Optional[Callable] = None,
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
    positions (``kernel_fn(..., mask_constant=...)``), and its ``apply_fn``
    accepts :class:`~ntkcourse.stax.masked.MaskedActivations` (the finite
    activations of padded inputs with their masks, or a list of them) and
    returns its output with its masks, or a plain array once the positions
    are read out; any other layer that receives either raises rather than
    ignore the padding.
    ``mask_fn``: for a layer that acts on the positions of padded inputs
    without reading the masks (``Dense``, activations, ``Conv``, window
    pools): the map from the masks ``(batch, *spatial)`` of its input to
    those of its output, in the kernel's order of the spatial axes. The
    layer's map then runs on the kernel without its masks, and every entry
    of the result that involves a padded position is set to zero: padded
    positions are zero at the input of every layer, as in neural-tangents
    (its ``supports_masking(remask_kernel=True)``). Its ``apply_fn`` does
    the same to the finite activations, with the masks carried beside them
    (:mod:`ntkcourse.stax.masked`).
    ``reads_patterns``: the layer reads graph patterns
    (``kernel_fn(..., pattern=...)``, :func:`ntkcourse.stax.Aggregate`); a
    network accepts ``pattern=`` only if one of its layers does (a
    combinator inherits it from its ``children``).
    ``reads_identity``: the layer's kernel map reads whether its kernel is
    of x1 with itself (``cov2`` is ``None``, ``Dropout(mode='train')``), so
    ``kernel_fn`` must tell the engine when x2 is x1 (see
    :func:`ntkcourse.engine.make_kernel_fn`); a combinator inherits it from
    its ``children``.
    ``input_layout``: for a layer with layout arguments, the
    ``(batch_axis, channel_axis)`` it requires of its input (its kernel map
    checks the kernel's ``layout`` itself, :func:`ntkcourse.stax.conv_specs.check_layout`);
    a network's ``kernel_fn`` moves the inputs' axes as the first such layer
    says. ``layout_free``: the layer acts alike in every layout (elementwise
    layers, combinators); any other layer without ``input_layout`` refuses a
    kernel whose activations are not batch first and channels last.
    ``finite_layouts``: for a layer with ``mask_fn`` and layout arguments,
    ``finite_layouts(ndim) -> (input layout, output layout)`` of its finite
    activations (:func:`ntkcourse.stax.conv_specs.layout_value`, ``None``
    for batch first and channels last); ``apply_fn(..., mask_constant=)``
    carries its masks from the one to the other, and refuses activations
    that reach the layer in another layout than it takes.
    """
    # The layout in which the finite network's inputs arrive (where apply_fn reads the masks of padded inputs).
    apply_layout = first_input_layout([c[2].spec for c in children]) if input_layout is None else input_layout
    if mask_fn is not None:
        kernel_map = _remasking(kernel_map, mask_fn)
        apply_fn = _padded_apply(apply_fn, _masking_apply(apply_fn, mask_fn, name, finite_layouts), name,
                                 apply_layout)
    elif handles_masks:
        apply_fn = _padded_apply(apply_fn, apply_fn, name, apply_layout)
    else:
        kernel_map = _refusing_masks(kernel_map, name)
        apply_fn = _refusing_masks_apply(apply_fn, name)
    if input_layout is None and not layout_free:
        kernel_map = _refusing_layouts(kernel_map, name)
    elif layout_free:
        kernel_map = _same_layouts(kernel_map, name)
    if stages is None:
        stages = ((kernel_map, bool(reads_neighbours)),)
    if input_layout is None and children:
        input_layout = apply_layout
    reads_patterns = bool(reads_patterns) or any(getattr(c[2], "reads_patterns", False) for c in children)
    reads_identity = bool(reads_identity) or any(getattr(c[2], "reads_identity", False) for c in children)
    kernel_fn = make_kernel_fn(kernel_map, input_diagonal, stages=stages, reads_patterns=reads_patterns,
                               reads_identity=reads_identity)
    spec = LayerSpec(name, dict(config or {}), tuple(children), has_params, structured, input_diagonal, input_layout)
    if input_layout is not None:
        kernel_fn = _laying_out(kernel_fn, kernel_map, input_diagonal, stages, reads_patterns, reads_identity,
                                input_layout)
    kernel_fn.spec = spec
    apply_fn.spec = spec
    return init_fn, apply_fn, kernel_fn


def _refusing_layouts(kernel_map: Callable, name: str) -> Callable:
    def checked(k):
        ks = k if isinstance(k, (list, tuple)) else (k,)
        for one in ks:
            if isinstance(one, Kernel) and one.layout is not None:
                raise ValueError(
                    f"{name}: kernel_fn is implemented for activations with the batch axis first and the channels "
                    f"last, but the layers before it (or the input) keep them at axes {tuple(one.layout)} of "
                    f"{len(one.shape1)} (batch_axis, channel_axis); put the axes back first (e.g. a Conv with "
                    "output spec 'NHWC', Dense(channel_axis=-1) on such activations)."
                )
        return kernel_map(k)

    return checked


def _same_layouts(kernel_map: Callable, name: str) -> Callable:
    def checked(k):
        if isinstance(k, (list, tuple)):
            layouts = {one.layout for one in k if isinstance(one, Kernel)}
            if len(layouts) > 1:
                raise ValueError(
                    f"{name}: its branches keep the batch and channel axes at different places "
                    f"({sorted(layouts, key=str)}, None: batch first, channels last); the sum of such activations "
                    "mixes channels with positions and has no infinite-width limit."
                )
        return kernel_map(k)

    return checked


def _laying_out(engine_fn, kernel_map, input_diagonal, stages, reads_patterns, reads_identity, input_layout):
    """The public ``kernel_fn`` of a network whose first layer with layout
    arguments names ``input_layout``: inputs in another layout than batch
    first, channels last are transposed to it (the spatial axes keep their
    order) and the input kernel records where the activations keep those
    axes (``Kernel.layout``), as neural-tangents' input kernel does.
    """
    entries = {}

    def entry_fn(layout):
        if layout not in entries:
            def enter(k):
                return k.replace(layout=layout) if isinstance(k, Kernel) else k

            first, reads = stages[0]
            entry_stages = ((lambda k: first(enter(k)), reads),) + tuple(stages[1:])
            entries[layout] = make_kernel_fn(lambda k: kernel_map(enter(k)), input_diagonal, stages=entry_stages,
                                             reads_patterns=reads_patterns, reads_identity=reads_identity)
        return entries[layout]

    def kernel_fn(x1, x2=None, get=None, **kwargs):
        if isinstance(x1, (list, tuple)):
            # Nested lists are one array to the engine (it converts them): their axes move like an array's.
            x1 = _as_numeric_array(x1)
        if isinstance(x1, Kernel) or not hasattr(x1, "ndim") or np.ndim(x1) < 2:
            return engine_fn(x1, x2, get, **kwargs)
        ndim = np.ndim(x1)
        batch_axis, channel_axis = input_layout
        if any(a is not None and not -ndim <= a < ndim for a in (batch_axis, channel_axis)):
            # Inputs with too few axes for the first layer (a Conv given sequences): its own check says so.
            return engine_fn(x1, x2, get, **kwargs)
        layout = layout_value(batch_axis, channel_axis, ndim)
        if layout is None or layout == (0, None):
            return engine_fn(x1, x2, get, **kwargs)
        b, c = layout
        if b == c:
            raise ValueError(
                f"kernel_fn: this network's first layer takes batch_axis={batch_axis} and channel_axis="
                f"{channel_axis}, the same axis of inputs with {ndim} axes; they must differ."
            )
        order = (b,) + tuple(i for i in range(ndim) if i not in (b, c)) + (() if c is None else (c,))
        x1 = _moved(x1, order)
        x2 = None if x2 is None else _moved(x2, order)
        # The input kernel of the moved inputs records where the activations themselves keep the axes;
        # masks of padded inputs (mask_constant) are read from the moved inputs, so they follow the
        # kernel's positions; graph patterns are batch first in every layout and need no move.
        return entry_fn(layout)(x1, x2, get, **kwargs)

    for name in ("kernel_layer", "input_diagonal", "stages", "reads_patterns", "reads_identity"):
        setattr(kernel_fn, name, getattr(engine_fn, name))
    kernel_fn.__doc__ = engine_fn.__doc__
    return kernel_fn


def _as_numeric_array(x):
    """``x`` (nested lists of numbers) as a NumPy array; ``x`` itself when it is
    not one (ragged lists, lists of arrays of other shapes: the engine's own
    check refuses them).
    """
    try:
        out = np.asarray(x)
    except (ValueError, TypeError):
        return x
    return out if out.dtype.kind in "biuf" else x


def _moved(x, order):
    if tuple(order) == tuple(range(len(order))):
        return x
    return x.transpose(order) if hasattr(x, "transpose") else np.transpose(x, order)


def _read_out(masks) -> bool:
    """Whether ``masks`` are those of a readout, one per input (``(batch,)``,
    :func:`~ntkcourse.stax.masked.read_out_masks`): no positions left.
    """
    return all(m is None or m.ndim == 1 for m in masks)


def _refusing_masks(kernel_map: Callable, name: str) -> Callable:
    def checked(k):
        if isinstance(k, Kernel) and k.is_masked and _read_out((k.mask1, k.mask2)):
            # After a readout: the layer acts on each input alone; an input made only of padding stays padding.
            return remask(kernel_map(k.replace(mask1=None, mask2=None)), k.mask1, k.mask2)
        ks = k if isinstance(k, (list, tuple)) else (k,)
        if any(getattr(one, "is_masked", False) for one in ks):
            raise ValueError(
                f"{name}: received a kernel of sequences with padded time steps or images with padded pixels "
                "(kernel_fn(..., mask_constant=...)), but this layer does not handle padding; the layers that do "
                "are Dense, Conv, ConvTranspose, ConvLocal, AvgPool, SumPool, ImageResize, Index, LayerNorm, the "
                "activations, GlobalAvgPool, GlobalSumPool, Flatten and Dropout (and serial, parallel, repeat, "
                "FanOut, FanInSum, FanInConcat, FanInProd, Identity), and for "
                "sequences Recurrent and GlobalSelfAttention: read the inputs out with one of them first (e.g. "
                "GlobalAvgPool, or Recurrent(..., return_sequences=False)), or pass inputs of equal sizes without "
                "mask_constant."
            )
        return kernel_map(k)

    return checked


def _refusing_masks_apply(apply_fn: Callable, name: str) -> Callable:
    """``apply_fn`` that refuses padded inputs (as the layer's kernel does)
    instead of passing padded positions on as data: ``mask_constant`` given to
    it, or activations carrying masks (:class:`~ntkcourse.stax.masked.MaskedActivations`)
    from the layers before it.
    """
    def checked(params, inputs, *args, mask_constant=None, **kwargs):
        if mask_constant is not None:
            raise ValueError(
                f"{name}: apply_fn received mask_constant={mask_constant!r} (padded sequences), but this layer does "
                "not handle padding (its kernel_fn refuses it too); it would read the padding as data."
            )
        if isinstance(inputs, MaskedActivations) and inputs.layout is None and _read_out((inputs.real,)):
            out = apply_fn(params, inputs.values, *args, **kwargs)
            if hasattr(out, "ndim") and out.ndim >= 1 and out.shape[0] == inputs.real.shape[0]:
                return masked_output(out, inputs.real)  # after a readout, as the kernel (above)
        if carries_masks(inputs):
            raise ValueError(
                f"{name}: apply_fn received the activations of padded inputs (apply_fn(..., mask_constant=...) of "
                "the network), but this layer does not handle padding (its kernel_fn refuses it too); it would "
                "read the padding as data. Read the positions out first (e.g. GlobalAvgPool), or pass inputs of "
                "equal sizes without mask_constant."
            )
        return apply_fn(params, inputs, *args, **kwargs)

    return checked


def _padded_apply(plain_apply: Callable, masked_apply: Callable, name: str, input_layout=None) -> Callable:
    """The public ``apply_fn`` of a layer that handles padded inputs.

    Without ``mask_constant`` and without masks in ``inputs``: ``plain_apply``,
    unchanged. Called by a combinator with
    :class:`~ntkcourse.stax.masked.MaskedActivations` (the inputs of the
    network were padded): ``masked_apply``, which returns its output with its
    masks (a ``mask_constant`` passed along as well is the one those masks
    came from). Called on plain inputs with ``mask_constant``: the outermost
    layer, which computes the masks once from its inputs
    (:func:`~ntkcourse.stax.masked.masked_inputs`) and returns a plain array,
    ``mask_constant`` at padded positions (:func:`~ntkcourse.stax.masked.padded_outputs`).
    The masks are read over the channel axis of ``input_layout`` (the
    ``(batch_axis, channel_axis)`` the layer, or a combinator's first layer
    naming one, takes; channels last when it names none), as ``kernel_fn``
    reads them.
    """
    def apply_fn(params, inputs, *args, mask_constant=None, **kwargs):
        if carries_masks(inputs):
            return masked_apply(params, inputs, *args, **kwargs)
        if mask_constant is None:
            return plain_apply(params, inputs, *args, **kwargs)
        layout = _finite_input_layout(input_layout, np.ndim(inputs[0] if isinstance(inputs, (list, tuple))
                                                            else inputs))
        outputs = masked_apply(params, masked_inputs(inputs, mask_constant, name, layout), *args, **kwargs)
        return padded_outputs(outputs, mask_constant)

    return apply_fn


def remask(k, mask1, mask2):
    """``k`` with the masks ``mask1``, ``mask2`` (``(n, *spatial)``, ``True``
    at real positions; ``mask2=None``: x2 is x1) and every entry that pairs a
    padded position set to zero.
    """
    m2 = mask1 if mask2 is None else mask2
    s, diagonal = mask1.ndim - 1, k.diagonal_spatial

    def pair(a, b, batch_pair):
        return (interleave_ones(a, s, True, batch_pair, diagonal)
                & interleave_ones(b, s, False, batch_pair, diagonal))

    def zero(x, where):
        return None if x is None else jnp.where(where, x, jnp.zeros((), x.dtype))

    both = pair(mask1, m2, True)
    return k.replace(nngp=zero(k.nngp, both), ntk=zero(k.ntk, both), cov1=zero(k.cov1, pair(mask1, mask1, False)),
                     cov2=zero(k.cov2, pair(m2, m2, False)), mask1=mask1, mask2=mask2)


def _remasking(kernel_map: Callable, mask_fn: Callable) -> Callable:
    def masked(k):
        if isinstance(k, (list, tuple)) or not getattr(k, "is_masked", False):
            return kernel_map(k)
        m1 = mask_fn(k.mask1)
        m2 = None if k.mask2 is None else mask_fn(k.mask2)
        return remask(kernel_map(k.replace(mask1=None, mask2=None)), m1, m2)

    return masked


def _finite_input_layout(input_layout, ndim: int):
    """The layout (:func:`~ntkcourse.stax.conv_specs.layout_value`) of inputs
    with ``ndim`` axes that a layer taking ``input_layout`` reads: channels
    last when it names no channel axis (``Flatten``); batch first, channels
    last when the axes do not fit (the layer's own check then says so).
    """
    if input_layout is None or ndim < 2:
        return None
    batch_axis, channel_axis = input_layout
    channel_axis = -1 if channel_axis is None else channel_axis
    if not all(-ndim <= a < ndim for a in (batch_axis, channel_axis)) or (batch_axis - channel_axis) % ndim == 0:
        return None
    return layout_value(batch_axis, channel_axis, ndim)


def _describe_layout(layout) -> str:
    return "batch first, channels last" if layout is None else f"(batch_axis, channel_axis) = {tuple(layout)}"


def _masking_apply(apply_fn: Callable, mask_fn: Callable, name: str, finite_layouts: Optional[Callable]):
    """The masked ``apply_fn`` of a layer that acts on the positions of its
    inputs without reading the masks: its finite network on the values
    (zero at padded positions), its output masks by ``mask_fn``, as its
    kernel's, and its outputs at padded positions zero again (as ``kernel_fn``
    zeroes the kernel there, :func:`remask`), so that every following layer
    sees the padding as its kernel does.

    With layout arguments (``finite_layouts``): the activations must reach
    the layer in the layout it takes, and its output is in the layout it
    gives; elementwise layers keep the layout they receive.

    Raises:
      ValueError: the activations reach the layer in another layout than it
        takes (``finite_layouts``), naming the layer.
    """
    def masked_apply(params, inputs, **kwargs):
        layout_out = inputs.layout
        if finite_layouts is not None:
            layout_in, layout_out = finite_layouts(inputs.values.ndim)
            if layout_in != inputs.layout:
                raise ValueError(
                    f"{name}: apply_fn(..., mask_constant=...): the activations reaching this layer keep their "
                    f"batch and channel axes at {_describe_layout(inputs.layout)}, but the layer takes them at "
                    f"{_describe_layout(layout_in)}; give the layer the layout of its inputs."
                )
        return masked_output(apply_fn(params, inputs.values, **kwargs), mask_fn(inputs.real), layout_out)

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
