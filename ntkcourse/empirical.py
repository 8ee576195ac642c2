r"""Empirical kernels of finite networks: the NTK and NNGP of one draw of the parameters.

For a function :math:`f(\theta, x)` with parameters :math:`\theta` (any pytree)
and outputs :math:`f(\theta, x) \in \mathbb{R}^k`,

* the **empirical NTK** is :math:`\hat\Theta(x, x') = J(x) J(x')^\top`, with
  :math:`J(x) = \partial f(\theta, x) / \partial\theta` (Jacot et al. 2018): the
  kernel of the linearised network (:mod:`ntkcourse.linearize`);
* the **empirical NNGP** is the inner product of the outputs,
  :math:`f(\theta, x) \cdot f(\theta, x')`: one draw whose average over
  initialisations is the NNGP kernel (Lee et al. 2018).

Conventions are those of neural-tangents (``nt.empirical_ntk_fn``,
``nt.empirical_nngp_fn``, ``nt.empirical_kernel_fn``, Novak et al. 2020), so that
switching is a change of import:

* ``trace_axes`` (default ``(-1,)``, the output/logit axis) are **averaged**
  over: :math:`\frac1k \sum_j \hat\Theta_{jj}(x, x')` and
  :math:`\frac1k \sum_j f_j(x) f_j(x')`. neural-tangents divides the trace by
  the size of the traced axes, for both kernels; so do we. The average is the
  quantity that converges to the infinite-width kernel of ``ntkcourse.stax``,
  whatever the number of outputs (the outputs are i.i.d. at infinite width).
* ``trace_axes=()`` gives the full block, shape ``(n1, n2, k, k)``; every
  output axis that is neither traced nor diagonal appears twice, next to its
  partner (``(n1, n2, h, h', w, w')`` for an image-shaped output).
* ``diagonal_axes`` keep only the diagonal of a pair of axes, e.g. ``(0,)``
  for :math:`\hat\Theta(x_i, x_i)`, shape ``(n,)``.
* ``vmap_axes=None`` (the default, as in neural-tangents): ``f`` may mix the
  inputs of a batch (e.g. centring by the batch mean), so the Jacobian is
  taken of the whole batch. Pass ``vmap_axes=0`` when ``f`` treats the inputs
  independently: the Jacobians are then taken one input at a time, which is
  faster. A layer triple of :mod:`ntkcourse.stax` passed as ``f`` always
  takes the per-input path: every one of its layers acts on each input
  separately. The NNGP of :func:`empirical_kernel_fn` and
  :func:`monte_carlo_kernel_fn` takes the outputs the same way as the NTK
  (each input alone for ``vmap_axes=0``), so both kernels are those of one
  function even when ``f`` does mix the batch. neural-tangents evaluates the
  NNGP on the whole batch whatever ``vmap_axes``; the two agree for every
  ``f`` that keeps the promise of ``vmap_axes=0``.

Three implementations of the NTK, equal to float precision:

``'jacobian'``
    Jacobian contraction: form :math:`J(x)` (one reverse pass per output) and
    contract, :math:`n_1 n_2 k^2 P` multiply-adds for :math:`P` parameters
    (the blocks are formed a slice at a time, below).
``'jvp_vjp'``
    NTK–vector products: a column of :math:`\hat\Theta` is
    :math:`J(x_1)\,(J(x_2)^\top e_j)`, one VJP and one JVP; the Jacobian of
    ``x1`` is never formed, and the columns are computed a few at a time.
``'structured'``
    For networks of ``ntkcourse.stax`` layers: a ``Dense`` layer
    :math:`z = c\, a W + \sigma_b b` (with :math:`c = \sigma_w/\sqrt{n_{in}}` in the
    NTK parameterisation, 1 in the standard one) has
    :math:`\partial f / \partial W = c\, a^\top \delta` with
    :math:`\delta = \partial f/\partial z`, so its contribution to the NTK is
    :math:`c^2 (a \cdot a')(\delta \cdot \delta') + \sigma_b^2\, \delta\cdot\delta'`:
    products of :math:`n \times \text{width}` matrices, never the Jacobian.
    One forward pass records every layer input :math:`a_\ell`; one backward pass
    (a VJP with respect to zero "probes" added to every affine output) gives
    every :math:`\delta_\ell`. A ``Conv`` layer sums the same product over pairs
    of output positions, with image patches in place of :math:`a`:
    :math:`c^2 \sum_{p,q} (P_p \cdot P'_q)(\delta_p \cdot \delta'_q)`.
    This is the idea of neural-tangents' "structured derivatives" (Novak et al.
    2022, *Fast finite width neural tangent kernel*). A ``stax`` network (the
    triple or its ``apply_fn``) uses the rules its layers declare; any other
    function (a flax model's ``apply``, plain ``jax.lax`` code) has its rules
    read from its jaxpr by :mod:`ntkcourse.jaxpr_structure`: parameters that
    enter once, linearly, through ``dot_general``, a convolution's kernel or
    an ``add``/``sub``/``mul`` are contracted this way; every other leaf keeps
    its own Jacobian block, taken in the same backward pass
    (:func:`jaxpr_fallback_leaves` lists them).
``'auto'``
    ``'structured'`` when ``f`` is a ``stax`` triple whose layers it supports,
    else ``'jacobian'`` when the Jacobians fit in 256 MiB, else ``'structured'``
    from the jaxpr when the leaves it keeps as Jacobian blocks fit in 256 MiB,
    else ``'jvp_vjp'``.

``'jacobian'`` forms the Jacobian blocks from the same jaxpr factors
(``Σ_p a_p ⊗ δ_p`` for a product or a convolution's patches, the kept leaves'
blocks from the backward pass) instead of ``jax.jacrev``, whose per-input
convolution-kernel gradients are grouped convolutions, several times slower on
CPU. Each block is formed and contracted a slice of its parameter entries at a
time (about ``jaxpr_structure.JACOBIAN_CHUNK_BYTES`` = 1 MiB per side), so that
a slice is contracted while it is still in the processor's cache: the
contraction is the same sum, the whole Jacobian is never held in memory.

:func:`naive_pairwise_ntk` is the blog post's loop over pairs of inputs (two
backward passes per pair), kept as a teaching reference.
"""
from __future__ import annotations

import enum
import functools
import math
import numbers
import string
from typing import NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import jaxpr_structure
from . import stax as _stax
from .stax import masked as _masked
from . import validation
from .progress import progress_bar

__all__ = [
    "NtkImplementation",
    "empirical_ntk_fn",
    "empirical_nngp_fn",
    "empirical_kernel_fn",
    "empirical_ntk_vp_fn",
    "monte_carlo_kernel_fn",
    "MonteCarloKernel",
    "naive_pairwise_ntk",
    "structured_support",
    "jaxpr_fallback_leaves",
]

_JACOBIAN_BUDGET_BYTES = 256 * 2**20
_COLUMN_BUDGET_BYTES = 256 * 2**20


class NtkImplementation(enum.IntEnum):
    """The implementations, numbered as in neural-tangents' ``NtkImplementation``."""

    AUTO = 0
    JACOBIAN_CONTRACTION = 1
    NTK_VECTOR_PRODUCTS = 2
    STRUCTURED_DERIVATIVES = 3


_IMPL_NAMES = {
    "auto": NtkImplementation.AUTO,
    "jacobian": NtkImplementation.JACOBIAN_CONTRACTION,
    "jacobian_contraction": NtkImplementation.JACOBIAN_CONTRACTION,
    "jvp_vjp": NtkImplementation.NTK_VECTOR_PRODUCTS,
    "ntk_vector_products": NtkImplementation.NTK_VECTOR_PRODUCTS,
    "structured": NtkImplementation.STRUCTURED_DERIVATIVES,
    "structured_derivatives": NtkImplementation.STRUCTURED_DERIVATIVES,
}
_SHORT = {
    NtkImplementation.AUTO: "auto",
    NtkImplementation.JACOBIAN_CONTRACTION: "jacobian",
    NtkImplementation.NTK_VECTOR_PRODUCTS: "jvp_vjp",
    NtkImplementation.STRUCTURED_DERIVATIVES: "structured",
}


def _canonical_implementation(implementation, where: str) -> str:
    if isinstance(implementation, str):
        key = implementation.lower()
        if key in _IMPL_NAMES:
            return _SHORT[_IMPL_NAMES[key]]
    elif isinstance(implementation, numbers.Integral) and not isinstance(implementation, bool):
        if int(implementation) in {int(v) for v in NtkImplementation}:
            return _SHORT[NtkImplementation(int(implementation))]
    raise ValueError(
        f"{where}: `implementation` must be 'auto', 'jacobian', 'jvp_vjp' or 'structured' (or a NtkImplementation); "
        f"got {implementation!r}."
    )


# --------------------------------------------------------------------------- #
# Output axes: which are traced, which are diagonal, the kernel's layout
# --------------------------------------------------------------------------- #


class _Axes(NamedTuple):
    """Canonical traced and diagonal axes of an output with ``ndim`` axes (batch = 0)."""

    ndim: int
    trace: tuple
    diag: tuple

    def letters(self, pool: Optional[Sequence[str]] = None):
        """Einsum letters for the two outputs and for the kernel (neural-tangents' layout).

        Traced axes share a letter and are summed; diagonal axes share a
        letter and are kept once; the others keep both letters, side by side.
        """
        pool = iter(pool if pool is not None else string.ascii_letters)
        l1 = [next(pool) for _ in range(self.ndim)]
        l2 = [l1[i] if (i in self.trace or i in self.diag) else next(pool) for i in range(self.ndim)]
        out = []
        for i in range(self.ndim):
            if i in self.trace:
                continue
            out += [l1[i]] if i in self.diag else [l1[i], l2[i]]
        return l1, l2, "".join(out), pool

    def trace_size(self, shape) -> int:
        return int(math.prod(shape[i] for i in self.trace))


def _canonical_axes(trace_axes, diagonal_axes, ndim: int, where: str) -> _Axes:
    def canon(axes, name):
        if isinstance(axes, numbers.Integral):
            axes = (axes,)
        try:
            items = tuple(axes)
        except TypeError:
            items = None
        # Only integers: int() would silently truncate an axis 1.5 to 1, or fail on a string with its own message.
        if items is None or not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in items):
            raise ValueError(f"{where}: `{name}` must be a sequence of ints, got {axes!r}.")
        axes = tuple(int(a) for a in items)
        out = []
        for a in axes:
            if not -ndim <= a < ndim:
                raise ValueError(
                    f"{where}: `{name}` contains axis {a}, but the output of f has {ndim} axes "
                    f"(batch first); expected axes in [-{ndim}, {ndim})."
                )
            out.append(a % ndim)
        if len(set(out)) != len(out):
            raise ValueError(f"{where}: `{name}` repeats an axis: {axes!r}.")
        return tuple(sorted(out))

    trace = canon(trace_axes, "trace_axes")
    diag = canon(diagonal_axes, "diagonal_axes")
    if set(trace) & set(diag):
        raise ValueError(
            f"{where}: an axis cannot be both traced and diagonal, got trace_axes={trace_axes!r}, "
            f"diagonal_axes={diagonal_axes!r}."
        )
    return _Axes(ndim, trace, diag)


def _contract_outputs(o1, o2, axes: _Axes, inner: int = 0):
    """Contract two arrays of shape ``(n, *out_shape, *inner_shape)`` into the kernel layout.

    ``inner`` trailing axes (e.g. a parameter's shape) are summed over. Not yet
    divided by the size of the traced axes.
    """
    l1, l2, out, pool = axes.letters()
    tail = "".join(next(pool) for _ in range(inner))
    return jnp.einsum(f"{''.join(l1)}{tail},{''.join(l2)}{tail}->{out}", o1, o2)


def _reduce_full(full, axes: _Axes, first_is_x2: bool = False):
    """Trace / take diagonals of a full kernel laid out as ``(n1, *o, n2, *o)``
    (or ``(n2, *o, n1, *o)`` with ``first_is_x2``).
    """
    l1, l2, out, _ = axes.letters()
    spec = "".join(l2 + l1) if first_is_x2 else "".join(l1 + l2)
    return jnp.einsum(f"{spec}->{out}", full)


def _symmetrise(kernel, axes: _Axes):
    """The kernel of ``x1`` with itself made exactly symmetric: ``K[l, r] = K[r, l]``.

    Here ``l`` are the indices of the first member of every pair of kernel
    axes (the batch axis of x1, the first copy of each untraced output axis)
    and ``r`` those of the second. The implementations compute ``K(x, x')``
    and ``K(x', x)`` by different sequences of float operations (``'jvp_vjp'``
    column by column, the traced sums of ``'structured'``), which differ in the
    last bits. The entries with ``l <= r`` (lexicographically) are kept and
    mirrored: a selection, not an average, so no arithmetic (and no fused
    multiply–add chosen differently for the two halves by the compiler) can
    break the symmetry again. Diagonal axes have no partner.
    """
    pairs, pos = [], 0
    for i in range(axes.ndim):
        if i in axes.trace:
            continue
        if i in axes.diag:
            pos += 1
        else:
            pairs.append((pos, pos + 1))
            pos += 2
    if not pairs:
        return kernel
    perm = list(range(kernel.ndim))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    first = second = jnp.zeros((), jnp.int32)
    for a, b in pairs:
        size = kernel.shape[a]
        first = first * size + lax.broadcasted_iota(jnp.int32, kernel.shape, a)
        second = second * size + lax.broadcasted_iota(jnp.int32, kernel.shape, b)
    kernel = lax.optimization_barrier(kernel)  # materialise K: both halves read the same values
    return jnp.where(first <= second, kernel, jnp.transpose(kernel, perm))


# --------------------------------------------------------------------------- #
# Checking the arguments
# --------------------------------------------------------------------------- #


def is_stax_layer(obj) -> bool:
    return (
        isinstance(obj, tuple)
        and len(obj) == 3
        and callable(obj[1])
        and isinstance(getattr(obj[2], "spec", None), _stax.LayerSpec)
    )


def network_of(f):
    """``(apply_fn, (spec, apply_fn) or None, init_fn or None)`` for a function or a stax triple.

    A bare ``apply_fn`` carries no description of its layers; a future
    ``apply_fn.spec`` attribute (set by ``ntkcourse.stax``) would be used here.
    """
    if is_stax_layer(f):
        return f[1], (f[2].spec, f[1]), f[0]
    if isinstance(getattr(f, "spec", None), _stax.LayerSpec):
        return f, (f.spec, f), None
    if isinstance(f, tuple):
        raise TypeError(
            "`f` must be a function f(params, x) or a layer triple made by ntkcourse.stax "
            f"(init_fn, apply_fn, kernel_fn), got a tuple of {len(f)} items."
        )
    if not callable(f):
        raise TypeError(
            f"`f` must be a function f(params, x) or a ntkcourse.stax layer triple, got {type(f).__name__}."
        )
    return f, None, None


def _as_array(x, name: str, where: str):
    if isinstance(x, (jax.Array, np.ndarray)):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # pragma: no cover - numpy's message is clear enough
            raise TypeError(f"{where}: `{name}` must be an array, got {type(x).__name__}.") from exc
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{where}: `{name}` must be a numeric array, got dtype {arr.dtype}.")
    if arr.ndim < 1 or arr.shape[0] == 0:
        raise ValueError(
            f"{where}: `{name}` must have a non-empty batch axis first, e.g. shape (n, features); "
            f"got shape {arr.shape}."
        )
    return jnp.asarray(arr)


def _shape_key(tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((tuple(np.shape(v)), str(jnp.result_type(v))) for v in leaves)


def _describe(tree) -> str:
    shapes = jax.tree_util.tree_map(lambda v: tuple(np.shape(v)), tree)
    text = str(shapes)
    return text if len(text) < 300 else text[:297] + "..."


def _lists_as_tuples(tree):
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):
        return tuple(_lists_as_tuples(t) for t in tree)
    return tree


def _without_leading_ones(shape) -> tuple:
    """A shape without its leading 1s: a bias of shape (out,) or (1, out) acts the same on (batch, ..., out)."""
    shape = tuple(int(n) for n in shape)
    while shape and shape[0] == 1 and len(shape) > 1:
        shape = shape[1:]
    return shape


def _check_params_against_init(init_fn, params, x, where: str):
    """The parameters that ``init_fn`` would draw for inputs like ``x`` must have params' structure and shapes."""
    shape = tuple(x.shape)
    try:
        _, expected = jax.eval_shape(lambda k: init_fn(k, shape), jax.random.PRNGKey(0))
    except Exception as exc:
        raise ValueError(f"{where}: inputs of shape {shape} do not fit the network: {exc}") from exc
    # Lists and tuples are the same structure here: stax's serial returns a list (as neural-tangents'),
    # older code and hand-built parameters often hold tuples.
    exp_leaves, exp_def = jax.tree_util.tree_flatten_with_path(_lists_as_tuples(expected))
    got_leaves, got_def = jax.tree_util.tree_flatten_with_path(_lists_as_tuples(params))
    if exp_def != got_def:
        raise ValueError(
            f"{where}: `params` do not match the network: expected the structure of init_fn's parameters "
            f"{_describe(expected)}, got {_describe(params)}."
        )
    for (path, e), (_, g) in zip(exp_leaves, got_leaves):
        if _without_leading_ones(e.shape) != _without_leading_ones(np.shape(g)):
            raise ValueError(
                f"{where}: `params{jax.tree_util.keystr(path)}` has shape {tuple(np.shape(g))}, but the network "
                f"expects {tuple(e.shape)} for inputs of shape {shape} (wrong number of input features, "
                "or parameters of another network?)."
            )


def _check_call(apply_fn, params, x, kwargs, where: str, name: str, vmap_axes):
    try:
        out = jax.eval_shape(lambda p, xx: apply_fn(p, xx, **kwargs), params, x)
    except Exception as exc:
        raise ValueError(
            f"{where}: f(params, {name}) failed for params of shapes {_describe(params)} and {name} of shape "
            f"{tuple(x.shape)}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise ValueError(
            f"{where}: f must return one array; f(params, {name}) returned {type(out).__name__} "
            "(a network ending in several branches needs FanInSum)."
        )
    if vmap_axes == 0 and (out.ndim < 1 or out.shape[0] != x.shape[0]):
        raise ValueError(
            f"{where}: with vmap_axes=0, f(params, {name}) must return the batch axis first "
            f"(length {x.shape[0]}), got output shape {tuple(out.shape)}. Pass vmap_axes=None for other functions."
        )
    return out


# --------------------------------------------------------------------------- #
# The structured path for ntkcourse.stax networks
# --------------------------------------------------------------------------- #


class _Unsupported(Exception):
    """A layer that the structured path does not know (it has parameters)."""


class _Site(NamedTuple):
    """One affine layer met in the forward pass: its declared rule, whether
    it has a bias, and the number of channels of its input.
    """

    rule: _stax.StructuredRule
    has_bias: bool
    channels: int


def _children(spec):
    return [(_stax.layer_spec(c), c[1]) for c in spec.children]


def _walk(node, params, x, probes, record, kwargs):
    """Run the network layer by layer, adding ``probes[i]`` to the output of the
    i-th affine layer and recording each affine layer's input in ``record``.
    """
    spec, apply_fn = node
    name = spec.name
    if name == "serial":
        kids = _children(spec)
        if not isinstance(params, (tuple, list)) or len(params) != len(kids):
            raise _Unsupported(f"serial with params not a sequence of {len(kids)} entries")
        for child, p in zip(kids, params):
            x = _walk(child, p, x, probes, record, kwargs)
        return x
    if name == "parallel":
        kids = _children(spec)
        if not isinstance(params, (tuple, list)) or len(params) != len(kids):
            raise _Unsupported(f"parallel with params not a sequence of {len(kids)} entries")
        return [_walk(c, p, xi, probes, record, kwargs) for c, p, xi in zip(kids, params, x)]
    if spec.structured is not None:
        _, b = params
        out = apply_fn(params, x, **kwargs)
        i = len(record)
        if isinstance(x, _masked.MaskedActivations):
            # Padded inputs: the values are zero at padded positions; the probe enters before the layer's
            # output is zeroed there, so nothing flows back through padding.
            record.append((_Site(spec.structured, b is not None, x.values.shape[-1]), x.values, out.values))
            return out if probes is None else _masked.masked_output(out.values + probes[i], out.real)
        record.append((_Site(spec.structured, b is not None, x.shape[-1]), x, out))
        return out if probes is None else out + probes[i]
    if not spec.has_params or not jax.tree_util.tree_leaves(params):
        return apply_fn(params, x, **kwargs)
    raise _Unsupported(f"layer {name!r} has parameters but declares no structured rule")


def structured_support(network) -> Optional[str]:
    """``None`` when ``implementation='structured'`` supports ``network``, else the reason it does not.

    A plain function is always supported: its structured derivatives are read from its jaxpr, and the
    leaves that no rule covers keep their Jacobian blocks (:func:`jaxpr_fallback_leaves` lists them). A stax
    triple is supported when each of its layers with parameters declares a structured rule.
    """
    _, node, _ = network_of(network)
    if node is None:
        return None
    return _unsupported_reason(node[0])


def _draws_masks(spec) -> bool:
    """Whether the network (or layer) has a ``Dropout(mode='train')`` that draws a random mask."""
    if spec.name == "Dropout":
        return spec.config.get("mode") == "train" and spec.config.get("rate") != 1.0
    return any(_draws_masks(_stax.layer_spec(child)) for child in spec.children)


def _unsupported_reason(spec) -> Optional[str]:
    if spec.name in ("serial", "parallel"):
        for child in spec.children:
            reason = _unsupported_reason(_stax.layer_spec(child))
            if reason:
                return reason
        return None
    if _draws_masks(spec):
        # Its random mask comes from the rng that serial splits among its layers, and the walker calls the
        # layers one by one: the network's own apply_fn (the Jacobian paths) draws the masks as apply_fn does.
        return "layer 'Dropout' in mode='train' draws a random mask from the `rng` keyword of apply_fn"
    if spec.structured is not None or not spec.has_params:
        return None
    return f"layer {spec.name!r} has parameters but declares no structured rule (ntkcourse.stax.StructuredRule)"


def _structured_factors(node, params, x, kwargs):
    """Forward pass with probes, then all back-propagated signals in one VJP.

    Returns the output ``(n, *o)`` and, per affine layer, ``(site, a, delta)``
    with ``a`` the layer input (patches for Conv) as ``(n, p, f)`` and ``delta``
    = ∂f/∂z as ``(*o, n, p, c)``. ``p`` is the number of output positions.
    The one-hot output cotangents are broadcast over the batch: each input's
    output depends only on that input, so one backward pass serves all inputs.
    """
    sites = []
    mask_constant = kwargs.get("mask_constant")
    if mask_constant is not None:
        # The masks of padded inputs, once, carried between the layers (ntkcourse.stax.masked).
        kwargs = {k: v for k, v in kwargs.items() if k != "mask_constant"}
        x = _masked.masked_inputs(x, mask_constant, "empirical_ntk_fn")

    def outs_of_sites(xx):
        # Shapes of the affine outputs, from an abstract forward pass; the
        # static description of each layer is kept (a Python side effect).
        rec = []
        _walk(node, params, xx, None, rec, kwargs)
        sites[:] = [site for site, _, _ in rec]
        return [z for _, _, z in rec]

    z_shapes = jax.eval_shape(outs_of_sites, x)
    probes0 = [jnp.zeros(s.shape, s.dtype) for s in z_shapes]

    def forward(probes):
        rec = []
        out = _walk(node, params, x, probes, rec, kwargs)
        if mask_constant is not None:
            out = _masked.padded_outputs(out, mask_constant)  # as apply_fn returns it
        return out, [a for _, a, _ in rec]

    out, vjp_fn, inputs = jax.vjp(forward, probes0, has_aux=True)
    rec = list(zip(sites, inputs))
    o_shape = out.shape[1:]
    k = int(math.prod(o_shape))
    basis = jnp.broadcast_to(jnp.eye(k, dtype=out.dtype).reshape((k, 1) + o_shape), (k,) + out.shape)
    (deltas,) = jax.vmap(vjp_fn)(basis)
    factors = []
    for (site, a), d in zip(rec, deltas):
        n = a.shape[0]
        a = site.rule.patches(a)
        a = a.reshape(n, -1, a.shape[-1])
        d = d.reshape(o_shape + (n, -1, d.shape[-1]))
        factors.append((site, a, d))
    return out, factors


def _structured_ntk(f1, f2, axes: _Axes):
    """Sum of the per-layer contributions, from the factors of x1 and x2 (not yet averaged)."""
    total = None
    for (site, a1, d1), (_, a2, d2) in zip(f1, f2):
        l1, l2, out, pool = axes.letters()
        p, q, fe, c = (next(pool) for _ in range(4))
        n1, n2 = l1[0], l2[0]
        o1, o2 = "".join(l1[1:]), "".join(l2[1:])
        w_scale, b_scale = site.rule.scales(site.channels)
        if a1.shape[1] == 1:  # one position: drop the position axes
            spec = f"{n1}{fe},{n2}{fe},{o1}{n1}{c},{o2}{n2}{c}->{out}"
            ops = (a1[:, 0], a2[:, 0], d1[..., 0, :], d2[..., 0, :])
        else:
            spec = f"{n1}{p}{fe},{n2}{q}{fe},{o1}{n1}{p}{c},{o2}{n2}{q}{c}->{out}"
            ops = (a1, a2, d1, d2)
        term = w_scale * jnp.einsum(spec, *ops, optimize="optimal")
        if site.has_bias and b_scale:
            s1, s2 = jnp.sum(d1, axis=-2), jnp.sum(d2, axis=-2)
            term = term + b_scale * jnp.einsum(f"{o1}{n1}{c},{o2}{n2}{c}->{out}", s1, s2)
        total = term if total is None else total + term
    return total


# --------------------------------------------------------------------------- #
# The structured path for plain functions, from their jaxpr
# --------------------------------------------------------------------------- #


def _program(apply_fn, params, kwargs, per_input: bool):
    """``(fn, leaves, extra)``: ``fn(*leaves, x, *extra)`` is ``f`` as a function of flat arrays (the parameter
    leaves first, then the input, then the array keyword arguments; the others are closed over), of one input
    without its batch axis when ``per_input``.
    """
    leaves, treedef = jax.tree_util.tree_flatten(params)
    names = sorted(kwargs)
    arrays = [k for k in names if isinstance(kwargs[k], jax.Array) or _is_array_like(kwargs[k])]
    fixed = {k: kwargs[k] for k in names if k not in arrays}
    n = len(leaves)

    def fn(*args):
        p = jax.tree_util.tree_unflatten(treedef, args[:n])
        kw = dict(fixed, **dict(zip(arrays, args[n + 1:])))
        if per_input:
            return apply_fn(p, args[n][None], **kw)[0]
        return apply_fn(p, args[n], **kw)

    return fn, leaves, [jnp.asarray(kwargs[k]) for k in arrays]


def _jaxpr_plans(fn, leaves, extra, x1, x2, per_input: bool):
    """One plan per distinct input shape, with the same structured leaves in each."""
    n = len(leaves)
    shapes = [x1.shape[1:] if per_input else x1.shape]
    if x2 is not None and not per_input and x2.shape != x1.shape:
        shapes.append(x2.shape)

    def make(shape, force):
        x = jax.ShapeDtypeStruct(tuple(shape), x1.dtype)
        return jaxpr_structure.structure_plan(fn, [*leaves, x, *extra], n, force)

    plans = jaxpr_structure.matching_plans(make, shapes)
    return plans[0], plans[-1]


def _jaxpr_factors(plan, fn_args, x, per_input: bool, out_shape):
    """Factors of one side, with delta's output axis unfolded to the output's shape (batch first)."""
    leaves, extra = fn_args
    if per_input:
        out, sites, grads = jax.vmap(lambda xi: jaxpr_structure.factors(plan, [*leaves, xi, *extra]))(x)
        o_shape = (x.shape[0],) + tuple(out_shape[1:])
        sites = [(a, d.reshape(o_shape + d.shape[2:]), c) for a, d, c in sites]
        grads = [g.reshape(o_shape + g.shape[2:]) for g in grads]
    else:
        out, sites, grads = jaxpr_structure.factors(plan, [*leaves, x, *extra])
        o_shape = tuple(out.shape)
        sites = [(a, d.reshape(o_shape + d.shape[1:]), c) for a, d, c in sites]
        grads = [g.reshape(o_shape + g.shape[1:]) for g in grads]
    return out, sites, grads


def _jaxpr_ntk(apply_fn, params, x1, x2, kwargs, axes: _Axes, vmap_axes, out_shape, form_jacobians=False):
    """The NTK of a plain function by structured derivatives read from its jaxpr (see ``jaxpr_structure``);
    returns the kernel (not yet averaged) and the outputs of x1 and x2. With ``form_jacobians`` every site's
    Jacobian block is formed from its factors and then contracted (the Jacobian contraction of ``vmap_axes=0``).
    """
    per_input = vmap_axes == 0
    fn, leaves, extra = _program(apply_fn, params, kwargs, per_input)
    plan1, plan2 = _jaxpr_plans(fn, leaves, extra, x1, x2, per_input)
    o1, s1, g1 = _jaxpr_factors(plan1, (leaves, extra), x1, per_input, out_shape)
    o2, s2, g2 = (o1, s1, g1) if x2 is None else _jaxpr_factors(plan2, (leaves, extra), x2, per_input, out_shape)
    l1, l2, result, _ = axes.letters()
    lead = ("".join(l1), "".join(l2))
    samp = (l1[0], l2[0]) if per_input else ("", "")
    total = 0.0 * _contract_outputs(o1, o2, axes)
    for j in range(len(plan1.sites)):
        if form_jacobians:
            total = total + jaxpr_structure.site_jacobian_gram(plan1, plan2, j, s1[j], s2[j], samp, lead, result,
                                                               same=x2 is None)
        else:
            total = total + jaxpr_structure.site_gram(plan1, plan2, j, s1[j], s2[j], samp, lead, result)
    # A leaf kept whole for one input shape may be unused for the other (its block there is zero).
    kept2 = dict(zip(plan2.fallback, g2))
    for leaf, a in zip(plan1.fallback, g1):
        if leaf in kept2:
            total = total + jaxpr_structure.leaf_gram(a, kept2[leaf], lead, result)
    return total, (o1, o2)


def jaxpr_fallback_leaves(f, params, x, vmap_axes=None, **kwargs):
    """The parameter leaves (as key paths) that ``implementation='structured'`` keeps as Jacobian blocks for
    a plain function ``f``: those that do not enter ``f`` once and linearly through a ``dot_general``, a
    convolution's kernel, or an ``add``/``sub``/``mul`` (see :mod:`ntkcourse.jaxpr_structure`).
    """
    where = "jaxpr_fallback_leaves"
    apply_fn = network_of(f)[0]
    x = _as_array(x, "x", where)
    per_input = _check_vmap_axes(vmap_axes, where) == 0
    fn, leaves, extra = _program(apply_fn, params, kwargs, per_input)
    plan, _ = _jaxpr_plans(fn, leaves, extra, x, None, per_input)
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    return [paths[i] for i in plan.fallback]


# --------------------------------------------------------------------------- #
# The general implementations
# --------------------------------------------------------------------------- #


def _outputs(apply_fn, params, x, kwargs, vmap_axes):
    """The outputs ``(n, *o)`` of the inputs ``x`` as the NTK sees them: of the whole batch at once for
    ``vmap_axes=None``, of each input alone (a batch of one) for ``vmap_axes=0``, as the Jacobians are taken.
    """
    if vmap_axes == 0:
        return jax.vmap(lambda xi: apply_fn(params, xi[None], **kwargs)[0])(x)
    return apply_fn(params, x, **kwargs)


def _outputs_padding_zeroed(spec, apply_fn, params, x, kwargs):
    """A stax network's outputs on padded inputs (``mask_constant`` in ``kwargs``) with zeros where its
    ``apply_fn`` returns ``mask_constant``: its padded positions, and an input made only of padding after a
    readout (neural-tangents' ``unmask_fn``, on which its empirical NNGP is taken). The activations carry their
    masks (:mod:`ntkcourse.stax.masked`), whose values are zero there; the NNGP of such an input is then 0, as
    the kernel's.
    """
    from .stax.layer import _finite_input_layout  # the layout apply_fn reads the masks in

    rest = {k: v for k, v in kwargs.items() if k != "mask_constant"}
    layout = _finite_input_layout(spec.input_layout, np.ndim(x))
    out = apply_fn(params, _masked.masked_inputs(x, kwargs["mask_constant"], "empirical_nngp_fn", layout), **rest)
    return out.values if isinstance(out, _masked.MaskedActivations) else out


def _jvp_vjp_ntk(apply_fn, params, x1, x2, kwargs, axes, vmap_axes, out_shape):
    """Columns J(x1) (J(x2)ᵀ e) for every output e of x2, a few at a time."""
    x2_ = x1 if x2 is None else x2
    o_shape = tuple(out_shape[1:])
    k = int(math.prod(o_shape))
    # Cotangents have the outputs' dtype; the memory of a tangent is that of the parameters.
    dtype = jax.eval_shape(lambda p: apply_fn(p, x2_, **kwargs), params).dtype
    leaves = jax.tree_util.tree_leaves(params)
    n_params = sum(int(np.size(p)) for p in leaves)
    itemsize = max([jnp.dtype(jnp.result_type(p)).itemsize for p in leaves] + [1])

    def f1(p):
        return apply_fn(p, x1, **kwargs)

    def jvp1(tangent):
        return jax.jvp(f1, (params,), (tangent,))[1]

    if vmap_axes == 0:
        basis = jnp.eye(k, dtype=dtype).reshape((k,) + o_shape)

        def column(xj):
            _, vjp_fn = jax.vjp(lambda p: apply_fn(p, xj[None], **kwargs)[0], params)
            (tangents,) = jax.vmap(vjp_fn)(basis)
            return jax.vmap(jvp1)(tangents)  # (k, n1, *o)

        per = max(1, min(x2_.shape[0], _COLUMN_BUDGET_BYTES // max(1, 2 * k * n_params * itemsize)))
        cols = lax.map(column, x2_, batch_size=per)  # (n2, k, n1, *o)
        full = cols.reshape((x2_.shape[0],) + o_shape + cols.shape[2:])
    else:
        n2 = x2_.shape[0]
        _, vjp_fn = jax.vjp(lambda p: apply_fn(p, x2_, **kwargs), params)

        def column(i):
            ct = jax.nn.one_hot(i, n2 * k, dtype=dtype).reshape((n2,) + o_shape)
            (tangent,) = vjp_fn(ct)
            return jvp1(tangent)

        per = max(1, min(n2 * k, _COLUMN_BUDGET_BYTES // max(1, 2 * n_params * itemsize)))
        cols = lax.map(column, jnp.arange(n2 * k), batch_size=per)
        full = cols.reshape((n2,) + o_shape + cols.shape[1:])
    return _reduce_full(full, axes, first_is_x2=True)


# --------------------------------------------------------------------------- #
# Public constructors
# --------------------------------------------------------------------------- #


def _check_vmap_axes(vmap_axes, where):
    if vmap_axes is None:
        return None
    if isinstance(vmap_axes, numbers.Integral) and not isinstance(vmap_axes, bool) and int(vmap_axes) == 0:
        return 0
    raise ValueError(
        f"{where}: `vmap_axes` must be 0 (inputs and outputs batched along axis 0, processed independently) "
        f"or None (f may mix the inputs of a batch), got {vmap_axes!r}."
    )


class _KernelComputer:
    """Checks the arguments once per shape, picks the implementation, runs one jitted function."""

    def __init__(self, f, trace_axes, diagonal_axes, vmap_axes, implementation, where):
        self.where = where
        self.apply_fn, self.node, self.init_fn = network_of(f)
        self.trace_axes, self.diagonal_axes = trace_axes, diagonal_axes
        self.vmap_axes = _check_vmap_axes(vmap_axes, where)
        if self.node is not None and not _draws_masks(self.node[0]):
            # Every ntkcourse.stax layer acts on each input separately. Not a Dropout in training mode: its mask
            # for a batch is not those it draws for each input alone (the key is the same), so such a network
            # is differentiated on the whole batch, as apply_fn runs it (neural-tangents' vmap_axes=None).
            self.vmap_axes = 0
        self.requested = _canonical_implementation(implementation, where)
        self._checked = {}
        self._jitted = {}

    def _choose(self, params, x1, x2, out, kwargs) -> str:
        req = self.requested
        if self.node is not None and req in ("auto", "structured"):
            reason = _unsupported_reason(self.node[0])
            if reason is None:
                return "structured"
            if req == "structured":
                raise ValueError(f"{self.where}: implementation='structured' is not available: {reason}.")
        if req != "auto":
            return req
        # A plain function (or a stax network with a layer the stax rules do not cover): the Jacobian contraction
        # while the Jacobians fit in the budget; else structured derivatives read from the jaxpr, unless the
        # leaves they keep as Jacobian blocks are themselves over it; else the NTK-vector products.
        n = x1.shape[0] + (0 if x2 is None else x2.shape[0])
        k = int(math.prod(out.shape[1:]))
        leaves = jax.tree_util.tree_leaves(params)
        sizes = [int(np.size(p)) * jnp.dtype(jnp.result_type(p)).itemsize for p in leaves]
        if n * k * sum(sizes) <= _JACOBIAN_BUDGET_BYTES:
            return "jacobian"
        per_input = self.vmap_axes == 0
        fn, flat, extra = _program(self.apply_fn, params, kwargs, per_input)
        plan, _ = _jaxpr_plans(fn, flat, extra, x1, x2, per_input)
        kept = sum(sizes[i] for i in plan.fallback)
        return "structured" if n * k * kept <= _JACOBIAN_BUDGET_BYTES else "jvp_vjp"

    def prepare(self, x1, x2, params, kwargs):
        """Check the arguments (once per shapes) and return (x1, x2, implementation, axes)."""
        x1 = _as_array(x1, "x1", self.where)
        x2 = None if x2 is None else _as_array(x2, "x2", self.where)
        if x2 is not None and x1.shape[1:] != x2.shape[1:]:
            raise ValueError(
                f"{self.where}: `x2` must have the same shape as `x1` apart from the batch axis; "
                f"got x1 {tuple(x1.shape)} and x2 {tuple(x2.shape)}."
            )
        key = (
            _shape_key(params),
            (tuple(x1.shape), str(x1.dtype)),
            None if x2 is None else (tuple(x2.shape), str(x2.dtype)),
            tuple(sorted(kwargs)),
        )
        if key not in self._checked:
            if self.init_fn is not None:
                _check_params_against_init(self.init_fn, params, x1, self.where)
            out = _check_call(self.apply_fn, params, x1, kwargs, self.where, "x1", self.vmap_axes)
            if x2 is not None:
                _check_call(self.apply_fn, params, x2, kwargs, self.where, "x2", self.vmap_axes)
            axes = _canonical_axes(self.trace_axes, self.diagonal_axes, out.ndim, self.where)
            if x2 is not None:
                for i in set(axes.trace) | set(axes.diag):
                    if i == 0 and x1.shape[0] != x2.shape[0]:
                        raise ValueError(
                            f"{self.where}: tracing or taking the diagonal of the batch axis needs x1 and x2 of "
                            f"the same length, got {x1.shape[0]} and {x2.shape[0]}."
                        )
            self._checked[key] = (self._choose(params, x1, x2, out, kwargs), axes, out)
        impl, axes, out = self._checked[key]
        return x1, x2, impl, axes, out

    def core(self, impl, axes, out_shape, get):
        """The pure function ``(x1, x2, params, kwargs) -> {name: kernel}`` (jittable, vmappable)."""
        apply_fn, node, vmap_axes = self.apply_fn, self.node, self.vmap_axes
        if node is not None and _unsupported_reason(node[0]) is not None:
            node = None  # 'auto' chose structured derivatives from the jaxpr of its apply_fn

        def run(x1, x2, params, kwargs):
            res = {}
            size = axes.trace_size(out_shape)
            outs = None
            if "ntk" in get:
                if impl == "structured" and node is None:
                    ntk, outs = _jaxpr_ntk(apply_fn, params, x1, x2, kwargs, axes, vmap_axes, out_shape)
                elif impl == "structured":
                    o1, fac1 = _structured_factors(node, params, x1, kwargs)
                    o2, fac2 = (o1, fac1) if x2 is None else _structured_factors(node, params, x2, kwargs)
                    outs = (o1, o2)
                    ntk = _structured_ntk(fac1, fac2, axes)
                elif impl == "jacobian":
                    # Jacobian blocks formed from the jaxpr's factors rather than by jax.jacrev: per-input
                    # convolution-kernel gradients of vmap(jacrev) are grouped convolutions, several times slower on
                    # CPU, and JAX 0.10.2's jit(jacrev) returned a wrong block for a flax ResNet's strided 1 × 1
                    # convolution (README).
                    ntk, outs = _jaxpr_ntk(apply_fn, params, x1, x2, kwargs, axes, vmap_axes, out_shape,
                                           form_jacobians=True)
                else:
                    ntk = _jvp_vjp_ntk(apply_fn, params, x1, x2, kwargs, axes, vmap_axes, out_shape)
                res["ntk"] = ntk / size
            if "nngp" in get:
                if self.node is not None and kwargs.get("mask_constant") is not None:
                    o1 = _outputs_padding_zeroed(self.node[0], apply_fn, params, x1, kwargs)
                    outs = (o1, o1 if x2 is None else _outputs_padding_zeroed(self.node[0], apply_fn, params, x2,
                                                                              kwargs))
                elif outs is None:
                    # A plain function's outputs are taken as its NTK takes them (input by input for
                    # vmap_axes=0); a stax network's on the whole batch, as its structured path does.
                    batching = vmap_axes if node is None else None
                    o1 = _outputs(apply_fn, params, x1, kwargs, batching)
                    outs = (o1, o1 if x2 is None else _outputs(apply_fn, params, x2, kwargs, batching))
                res["nngp"] = _contract_outputs(outs[0], outs[1], axes) / size
            if x2 is None:
                res = {name: _symmetrise(value, axes) for name, value in res.items()}
            return res

        return run

    def __call__(self, x1, x2, params, get, kwargs):
        x1, x2, impl, axes, out = self.prepare(x1, x2, params, kwargs)
        static = {k: v for k, v in kwargs.items() if not _is_array_like(v)}
        dynamic = {k: v for k, v in kwargs.items() if _is_array_like(v)}
        jkey = (impl, axes, tuple(out.shape), get, tuple(sorted(static.items(), key=lambda kv: kv[0])))
        try:
            hash(jkey)
        except TypeError:
            raise ValueError(f"{self.where}: non-array keyword arguments must be hashable, got {static!r}.") from None
        if jkey not in self._jitted:
            run = self.core(impl, axes, tuple(out.shape), get)
            self._jitted[jkey] = jax.jit(lambda a, b, p, kw: run(a, b, p, {**kw, **static}))
        return self._jitted[jkey](x1, x2, params, dynamic)


def _is_array_like(v) -> bool:
    return isinstance(v, (jax.Array, np.ndarray, numbers.Number)) and not isinstance(v, bool)


def empirical_ntk_fn(f, trace_axes=(-1,), diagonal_axes=(), vmap_axes=None, implementation="auto"):
    r"""The empirical NTK :math:`\hat\Theta(x_1, x_2) = J(x_1) J(x_2)^\top` of ``f`` at given parameters.

    Args:
      f: ``f(params, x, **kwargs)`` with any pytree ``params``, or a layer
        triple of :mod:`ntkcourse.stax` (needed for ``'structured'``).
      trace_axes: output axes averaged over (trace divided by their size, as
        neural-tangents does); ``()`` for the full per-output block.
      diagonal_axes: output axes on which only the diagonal is kept.
      vmap_axes: ``None`` (default, as neural-tangents): ``f`` may mix the
        inputs of a batch; ``0`` if ``f`` treats them independently (faster).
        Ignored for a layer triple of :mod:`ntkcourse.stax`, whose layers
        always act on each input separately.
      implementation: ``'auto'``, ``'jacobian'``, ``'jvp_vjp'``, ``'structured'``
        (or a :class:`NtkImplementation`); see the module docstring.

    Returns:
      ``ntk_fn(x1, x2, params, **kwargs)``: ``x2=None`` means ``x1`` (and the kernel is then
      exactly symmetric: pairs of axes swapped, equal to the bit, in every
      implementation and precision; so are the NNGP and the Monte Carlo means). Shape
      ``(n1, n2)`` for the default ``trace_axes``, ``(n1, n2, k, k)`` for
      ``trace_axes=()``. Computed in the dtype of ``params`` and the inputs.
      Keyword arguments are passed to ``f`` (arrays as traced arguments,
      anything else as static, hashable values).
      ``ntk_fn.implementation_for(x1, x2, params)`` names the implementation
      that ``'auto'`` picks for those arguments.
    """
    computer = _KernelComputer(f, trace_axes, diagonal_axes, vmap_axes, implementation, "empirical_ntk_fn")

    def ntk_fn(x1, x2, params, **apply_fn_kwargs):
        return computer(x1, x2, params, ("ntk",), apply_fn_kwargs)["ntk"]

    ntk_fn.implementation_for = lambda x1, x2, params, **kw: computer.prepare(x1, x2, params, kw)[2]
    ntk_fn.empirical = True  # for ntkcourse.batching: inputs in the current JAX mode's dtype
    return ntk_fn


def empirical_nngp_fn(f, trace_axes=(-1,), diagonal_axes=()):
    r"""The empirical NNGP: the outputs' inner product :math:`\frac1k\sum_j f_j(x_1) f_j(x_2)`.

    The average over the traced axes (neural-tangents divides by their size,
    ``dot / size_at(out, trace_axes)``), so that the mean over initialisations
    converges to the NNGP kernel of ``ntkcourse.stax`` for any number of outputs.

    Returns:
      ``nngp_fn(x1, x2, params, **kwargs)``, same shapes as :func:`empirical_ntk_fn`.
    """
    computer = _KernelComputer(f, trace_axes, diagonal_axes, None, "jacobian", "empirical_nngp_fn")

    def nngp_fn(x1, x2, params, **apply_fn_kwargs):
        return computer(x1, x2, params, ("nngp",), apply_fn_kwargs)["nngp"]

    nngp_fn.empirical = True
    return nngp_fn


def empirical_ntk_vp_fn(f, x1, x2, params, **apply_fn_kwargs):
    r"""The product of the full empirical NTK with a vector, without forming it:
    :math:`v \mapsto \hat\Theta(x_1, x_2)\, v = J(x_1)\,(J(x_2)^\top v)`, one VJP
    and one JVP (neural-tangents' ``empirical_ntk_vp_fn``; Novak,
    Sohl-Dickstein & Schoenholz 2022). No axis is traced.

    Args:
      f: ``f(params, x, **kwargs)`` or a layer triple of :mod:`ntkcourse.stax`.
      x1, x2: inputs; ``x2=None`` means ``x1``.
      params: the parameters at which the Jacobians are taken.

    Returns:
      ``ntk_vp_fn(cotangents)``, ``cotangents`` of the shape of
      ``f(params, x2)``, returning an array of the shape of ``f(params, x1)``.
    """
    apply_fn = network_of(f)[0]
    x2 = x1 if x2 is None else x2
    _, vjp_fn = jax.vjp(lambda p: apply_fn(p, x2, **apply_fn_kwargs), params)

    def ntk_vp_fn(cotangents):
        (tangent,) = vjp_fn(cotangents)
        return jax.jvp(lambda p: apply_fn(p, x1, **apply_fn_kwargs), (params,), (tangent,))[1]

    return ntk_vp_fn


def _normalise_get(get, where):
    """``(names, single)``: the kernels asked for (both for ``None``), and whether one name was given."""
    names = validation.get_names(where, get, ("nngp", "ntk"))
    return (("nngp", "ntk") if names is None else names), isinstance(get, str)


def empirical_kernel_fn(f, trace_axes=(-1,), diagonal_axes=(), vmap_axes=None, implementation="auto"):
    """Both empirical kernels from one function, as neural-tangents' ``empirical_kernel_fn``.

    Returns:
      ``kernel_fn(x1, x2, get, params, **kwargs)``: an array for a single name
      (``get='ntk'``), else a named tuple with fields in the order of ``get``
      (``None``: both, ``('nngp', 'ntk')``). With ``'structured'`` the NNGP
      comes from the same forward pass as the NTK.
    """
    computer = _KernelComputer(f, trace_axes, diagonal_axes, vmap_axes, implementation, "empirical_kernel_fn")

    def kernel_fn(x1, x2=None, get=None, params=None, **apply_fn_kwargs):
        if params is None:
            raise ValueError("empirical_kernel_fn: `params` are required: kernel_fn(x1, x2, get, params).")
        names, single = _normalise_get(get, "empirical_kernel_fn")
        res = computer(x1, x2, params, tuple(sorted(set(names))), apply_fn_kwargs)
        if single:
            return res[names[0]]
        return _named(names)(*(res[n] for n in names))

    kernel_fn.empirical = True
    return kernel_fn


@functools.lru_cache(maxsize=None)
def _named(names):
    return __import__("collections").namedtuple("Kernel", names)


# --------------------------------------------------------------------------- #
# Monte Carlo kernels
# --------------------------------------------------------------------------- #


class MonteCarloKernel(NamedTuple):
    r"""The mean of the empirical kernels over ``n_samples`` initialisations, with standard errors.

    ``*_stderr`` is the standard error of the mean, entry by entry:
    the sample standard deviation (``ddof=1``) over :math:`\sqrt{n}`. Fields
    that were not requested are ``None``. Arrays are float64 NumPy arrays.
    """

    nngp: Optional[np.ndarray]
    ntk: Optional[np.ndarray]
    nngp_stderr: Optional[np.ndarray]
    ntk_stderr: Optional[np.ndarray]
    n_samples: int


class _Running:
    """Running mean and sum of squared deviations (Chan et al.'s pairwise update), in float64."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, None, None

    def add(self, batch: np.ndarray):
        b = batch.shape[0]
        bmean = batch.mean(axis=0)
        bm2 = ((batch - bmean) ** 2).sum(axis=0)
        if self.n == 0:
            self.n, self.mean, self.m2 = b, bmean, bm2
            return
        n = self.n + b
        delta = bmean - self.mean
        self.mean = self.mean + delta * (b / n)
        self.m2 = self.m2 + bm2 + delta**2 * (self.n * b / n)
        self.n = n

    def stderr(self):
        if self.n < 2:
            return np.full_like(self.mean, np.nan)
        return np.sqrt(self.m2 / (self.n - 1) / self.n)


def monte_carlo_kernel_fn(
    init_fn,
    apply_fn,
    key,
    n_samples,
    batch_size=None,
    trace_axes=(-1,),
    diagonal_axes=(),
    vmap_axes=None,
    implementation="auto",
    progress=None,
):
    r"""Average empirical NNGP and NTK over random initialisations.

    :math:`\bar K = \frac1S \sum_{s=1}^S \hat K_{\theta_s}` with
    :math:`\theta_s` drawn by ``init_fn`` from independent keys; its standard
    error shrinks like :math:`1/\sqrt{S}`. At finite width the mean converges to
    the expectation over initialisations, which equals the infinite-width kernel
    up to a bias of order 1/width (exactly, for one hidden layer).

    Args:
      init_fn, apply_fn: the network, as in neural-tangents. To let ``'auto'``
        use the structured path, pass the ``ntkcourse.stax`` triple as
        ``init_fn`` and ``apply_fn=None``.
      key: a PRNG key; sample ``s`` (from 0) uses ``jax.random.fold_in(key, s)``,
        so the estimate does not depend on ``batch_size``. A network with
        ``Dropout(mode='train')`` also draws each sample's masks, from that
        key folded once more (``rng=`` given to the kernel function instead
        is used by every sample).
      n_samples: an int, or an increasing sequence of ints: then the kernel
        function returns a list with the estimate after each count (one run).
      batch_size: samples drawn and evaluated together (``vmap``); ``None``
        picks as many as fit in about 64 MiB of parameters. Unlike
        neural-tangents (where ``batch_size`` splits the inputs), this is
        a number of samples; split large inputs with ``ntkcourse.batching``.
      trace_axes, diagonal_axes, vmap_axes, implementation: as in
        :func:`empirical_kernel_fn`.
      progress: a progress bar over the samples: ``None`` (default) shows it
        only on a terminal and for runs longer than 2 s (so executed notebooks
        stay clean), ``True`` always, ``False`` never (see ``ntkcourse.progress``).

    Returns:
      ``kernel_fn(x1, x2=None, get=None, **kwargs)`` returning a
      :class:`MonteCarloKernel` (for ``get=None`` or a tuple), or the mean array
      for a single name (neural-tangents' behaviour); a list of them when
      ``n_samples`` is a sequence.
    """
    where = "monte_carlo_kernel_fn"
    if is_stax_layer(init_fn):
        if apply_fn is not None:
            raise ValueError(
                f"{where}: pass either a stax layer triple as `init_fn` with apply_fn=None, or both functions."
            )
        network = init_fn
        init_fn = network[0]
    else:
        if not callable(init_fn) or not callable(apply_fn):
            raise TypeError(f"{where}: `init_fn` and `apply_fn` must be functions (or a stax triple and None).")
        network = apply_fn
    try:
        counts = [n_samples] if isinstance(n_samples, numbers.Integral) else list(n_samples)
    except TypeError:  # neither an int nor a sequence (e.g. 100.0)
        counts = []
    # A bool is an Integral to Python, but True is no count of samples: refused, as a float is.
    if (not counts or any(not isinstance(c, numbers.Integral) or isinstance(c, bool) or c < 1 for c in counts)
            or counts != sorted(set(counts))):
        raise ValueError(
            f"{where}: `n_samples` must be a positive int or an increasing sequence of them, got {n_samples!r}."
        )
    counts = [int(c) for c in counts]
    if batch_size is not None and (not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool)
                                   or batch_size < 1):
        raise ValueError(f"{where}: `batch_size` must be a positive int or None, got {batch_size!r}.")
    computer = _KernelComputer(network, trace_axes, diagonal_axes, vmap_axes, implementation, where)
    sampler = _KernelSampler(init_fn, computer, key, where)
    total = counts[-1]

    def kernel_fn(x1, x2=None, get=None, **apply_fn_kwargs):
        names, single = _normalise_get(get, where)
        names_set = tuple(sorted(set(names)))
        stats = {n: _Running() for n in names_set}
        results = []
        bar = progress_bar(total, "Monte Carlo kernel", "sample", progress)
        try:
            pending = list(counts)
            done = 0
            for res in sampler.batches(x1, x2, names_set, apply_fn_kwargs, total, batch_size):
                m = len(res[names_set[0]])
                start = 0
                while start < m and pending:
                    stop = min(m, start + pending[0] - done)
                    for n in names_set:
                        stats[n].add(res[n][start:stop])
                    done += stop - start
                    start = stop
                    if done == pending[0]:
                        pending.pop(0)
                        results.append(_snapshot(stats, names, names_set, single, done))
                bar.update(m)
        finally:
            bar.close()
        return results[0] if isinstance(n_samples, numbers.Integral) else results

    return kernel_fn


# The data folded into a sample's key for the masks of its Dropout layers (any constant apart from the
# initialisation's own use of the key).
_MASK_STREAM = 0x6D61736B


class _KernelSampler:
    """Empirical kernels of networks drawn by ``init_fn(fold_in(key, s))``, for s = 0, 1, ..., in jitted batches.

    Initialisation and kernel run in one compiled function (``vmap`` over the
    samples of a batch), compiled once per input shapes and batch size.
    """

    def __init__(self, init_fn, computer: _KernelComputer, key, where: str):
        self.init_fn, self.computer, self.key, self.where = init_fn, computer, key, where
        self._compiled = {}

    def batches(self, x1, x2, names, kwargs, total: int, batch_size=None):
        """Yield dicts ``{name: float64 array (m, ...)}`` covering samples 0..total-1 in order."""
        init_fn, key, where = self.init_fn, self.key, self.where
        x1a = _as_array(x1, "x1", where)
        shape = tuple(x1a.shape)
        try:
            _, params0 = jax.eval_shape(lambda k: init_fn(k, shape), key)
        except Exception as exc:
            raise ValueError(f"{where}: init_fn failed for inputs of shape {shape}: {exc}") from exc
        params0 = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), params0)
        node = self.computer.node
        masks = node is not None and _draws_masks(node[0]) and kwargs.get("rng") is None
        if masks:
            # A Dropout in training mode: each sample draws its own masks too (neural-tangents passes each
            # sample a key of its own as `rng`), from a stream apart from the sample's initialisation key.
            kwargs = {**kwargs, "rng": jax.random.fold_in(key, 0)}
        x1a, x2a, impl, axes, out = self.computer.prepare(x1a, x2, params0, kwargs)
        leaves = jax.tree_util.tree_leaves(params0)
        n_bytes = sum(int(np.size(p)) * jnp.dtype(jnp.result_type(p)).itemsize for p in leaves)
        per = min(total, batch_size or max(1, min(64, (64 * 2**20) // max(1, n_bytes))))
        static = tuple(sorted((k, v) for k, v in kwargs.items() if not _is_array_like(v)))
        dynamic = {k: v for k, v in kwargs.items() if _is_array_like(v)}
        ckey = (impl, axes, tuple(out.shape), names, per, static, shape, None if x2a is None else tuple(x2a.shape))
        if ckey not in self._compiled:
            run = self.computer.core(impl, axes, tuple(out.shape), names)

            @jax.jit
            def batch(first, a, b, kw):
                def one(s):
                    _, params = init_fn(jax.random.fold_in(key, s), shape)
                    drawn = {"rng": jax.random.fold_in(jax.random.fold_in(key, s), _MASK_STREAM)} if masks else {}
                    return run(a, b, params, {**kw, **dict(static), **drawn})

                return jax.vmap(one)(first + jnp.arange(per))

            self._compiled[ckey] = batch
        batch = self._compiled[ckey]
        # Whole batches only (one compilation): samples past ``total`` are dropped.
        for b in range(-(-total // per)):
            res = batch(b * per, x1a, x2a, dynamic)
            m = min(per, total - b * per)
            yield {n: np.asarray(res[n][:m], dtype=np.float64) for n in names}


def pure_kernel(network, x, get=("ntk",), implementation="auto", where="empirical", trace_axes=(-1,)):
    """A traceable ``params -> {name: kernel of x with itself}`` for a stax triple, after checking once.

    For code that puts initialisation, training and kernels in one compiled
    function (``ntkcourse.finite_width``).
    """
    init_fn = network[0]
    computer = _KernelComputer(network, trace_axes, (), 0, implementation, where)
    shape = tuple(np.shape(x))
    _, params0 = jax.eval_shape(lambda k: init_fn(k, shape), jax.random.PRNGKey(0))
    params0 = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), params0)
    x1, _, impl, axes, out = computer.prepare(x, None, params0, {})
    run = computer.core(impl, axes, tuple(out.shape), tuple(sorted(get)))
    return lambda params: run(x1, None, params, {})


def _snapshot(stats, names, names_set, single, n):
    mean = {k: stats[k].mean.copy() for k in names_set}
    if single:
        return mean[names[0]]
    err = {k: stats[k].stderr() for k in names_set}
    return MonteCarloKernel(mean.get("nngp"), mean.get("ntk"), err.get("nngp"), err.get("ntk"), n)


# --------------------------------------------------------------------------- #
# The teaching reference
# --------------------------------------------------------------------------- #


def _naive_output(apply_fn, params, x):
    return apply_fn(params, x)


def _naive_grad_of_output(apply_fn, params, x, j):
    """The gradient of output entry ``j`` of one input ``x``: one backward pass."""
    return jax.grad(lambda p: apply_fn(p, x[None]).reshape(-1)[j])(params)


_NAIVE_JITTED = (jax.jit(_naive_output, static_argnums=0), jax.jit(_naive_grad_of_output, static_argnums=0))


def _naive_functions(apply_fn):
    """The jitted forward pass and gradient of :func:`naive_pairwise_ntk`, compiled once per ``apply_fn`` and
    shapes (``apply_fn`` is a static argument, the parameters a traced one): calling it again, e.g. in a
    loop over training steps, compiles nothing new. An unhashable ``apply_fn`` cannot be a static argument:
    then the functions are compiled for this call only.
    """
    try:
        hash(apply_fn)
    except TypeError:
        return tuple(jax.jit(functools.partial(fn, apply_fn)) for fn in (_naive_output, _naive_grad_of_output))
    return tuple(functools.partial(fn, apply_fn) for fn in _NAIVE_JITTED)


def naive_pairwise_ntk(f, params, x1, x2=None):
    r"""TEACHING REFERENCE, SLOW: the blog post's loop, two backward passes per pair of inputs.

    For every pair :math:`(x_i, x'_j)`: the gradient of :math:`f(\theta, x_i)`,
    the gradient of :math:`f(\theta, x'_j)`, and their inner product summed over
    all parameter tensors — :math:`2 n_1 n_2` backward passes where the fast
    paths need a handful. Outputs with several entries are averaged over
    all of them, one gradient per entry (for outputs ``(n, k)`` this is the
    default ``trace_axes=(-1,)`` of :func:`empirical_ntk_fn`).
    With ``x2=None`` only the pairs ``i <= j`` are computed and mirrored: the
    kernel of ``x1`` with itself is exactly symmetric.
    Use it to check your understanding on a few inputs, never for real work.
    (The gradient function is compiled once per ``f`` and shapes, so repeated
    calls are slow only because of the loop itself.)

    Returns:
      a NumPy array ``(n1, n2)``.
    """
    apply_fn, _, _ = network_of(f)
    symmetric = x2 is None
    x1 = np.asarray(x1)
    x2 = x1 if symmetric else np.asarray(x2)
    if x1.shape[1:] != x2.shape[1:]:
        raise ValueError(f"naive_pairwise_ntk: x1 {x1.shape} and x2 {x2.shape} differ apart from the batch axis.")
    output, grad_of_output = _naive_functions(apply_fn)
    k = int(np.prod(output(params, x1[:1]).shape[1:]))

    out = np.zeros((x1.shape[0], x2.shape[0]))
    for i in range(x1.shape[0]):
        for m in range(i if symmetric else 0, x2.shape[0]):
            value = 0.0
            for j in range(k):
                g1 = grad_of_output(params, x1[i], j)
                g2 = grad_of_output(params, x2[m], j)
                for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2)):
                    value += float(jnp.sum(a * b))
            out[i, m] = value / k
            if symmetric:
                out[m, i] = out[i, m]
    return out
