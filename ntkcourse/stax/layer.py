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

from ..engine import make_kernel_fn

__all__ = ["LayerSpec", "StructuredRule", "layer", "layer_spec", "kernel_map_of", "stages_of", "pass_requirement"]


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
    ``reads_patterns``: the layer reads graph patterns
    (``kernel_fn(..., pattern=...)``, :func:`ntkcourse.stax.Aggregate`); a
    network accepts ``pattern=`` only if one of its layers does (a
    combinator inherits it from its ``children``).
    """
    if not handles_masks:
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
                "but this layer does not handle padding; only stax.Recurrent reads masked sequences (read them "
                "out with Recurrent(..., return_sequences=False) before this layer), or pass equal-length "
                "sequences without mask_constant."
            )
        return kernel_map(k)

    return checked


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
