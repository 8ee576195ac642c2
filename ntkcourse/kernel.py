"""The :class:`Kernel` object that layers pass to each other.

It is the one piece of data shared by what a network *is* (the layers of
:mod:`ntkcourse.stax`, each a map ``Kernel -> Kernel``) and *how* its kernel
is computed (:mod:`ntkcourse.engine`, which builds the input kernel and runs
the map block by block), so it lives apart from both.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Tuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Kernel", "spatial_diagonal"]

# neural-tangents' Kernel fields that Kernel.replace translates (see there).
_NT_FIELDS = frozenset({"batch_axis", "channel_axis", "is_reversed", "diagonal_batch"})
_WHY = {"is_reversed": "the spatial axes stay in the activations' order",
        "diagonal_batch": "cov1 and cov2 hold each input's own covariance"}


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True)
class Kernel:
    """Kernels of the layer outputs, passed from layer to layer.

    Attributes:
      nngp: covariance between outputs for x1 and x2, shape ``(n1, n2)``;
        for spatial outputs ``(n1, n2, H1, H2, W1, W2)`` (every pair of
        positions), or ``(n1, n2, H, W)`` when ``diagonal_spatial`` (only
        pairs of equal positions, all a ``Flatten`` readout needs).
      ntk: the neural tangent kernel, same shape (``None`` when not requested).
      cov1: covariance of each x1 with itself, shape ``(n1,)``,
        ``(n1, H, H, W, W)`` or ``(n1, H, W)`` when ``diagonal_spatial``.
      cov2: the same for x2, or ``None`` when x2 is x1.
      shape1, shape2: shapes of the finite activations (for the standard
        parameterisation, which needs the fan-in).
      is_gaussian: whether the outputs are Gaussian (true after an affine
        layer); an activation needs Gaussian inputs.
      diagonal_spatial: whether the spatial axes hold only the diagonal
        ``(p, p)`` of every pair of positions.
      fork_independent: one entry per ``FanOut`` still open around this
        branch (innermost last): whether the branch has passed an affine
        layer with weights of its own (``Dense``, ``Conv``) since that fork.
        Such a branch is uncorrelated with every other branch of the fork
        (its weights are independent and zero-mean), so the kernel of a sum
        of branches is the sum of their kernels when at most one branch is
        not independent; ``FanInSum`` refuses the other cases. ``()`` outside
        any fork.
      mask1, mask2: for sequences ``(n, T, features)`` or images given to
        ``kernel_fn`` with ``mask_constant``: boolean arrays ``(n1, T)`` and
        ``(n2, T)`` (``(n1, H, W)``, ... for images, spatial axes in the
        kernel's order),
        ``True`` at the real time steps, ``False`` at padding; ``None`` when
        nothing is masked (``mask2`` is also ``None`` when x2 is x1). Only
        layers that declare they handle masks accept a kernel with masks
        (see :func:`ntkcourse.stax.layer`).
      pattern1, pattern2: for graph networks (``kernel_fn(..., pattern=(p1, p2))``,
        read by :func:`ntkcourse.stax.Aggregate`): each input's adjacency
        pattern, leading axis the batch (``(n1, ...)`` and ``(n2, ...)``), in
        the form the network's ``Aggregate`` layers take; ``None`` when no
        pattern was given (``pattern2`` is also ``None`` when x2 is x1).
      layout: where the finite activations keep their batch and channel axes,
        ``(batch_axis, channel_axis)`` as non-negative axis indices of
        activations with ``len(shape1)`` axes (neural-tangents' ``Kernel``
        attributes of those names), or ``None`` for batch first and channels
        last. The kernel's own arrays and ``shape1``/``shape2`` are always
        batch first and channels last, with the spatial axes in the order
        the activations hold them; layers with layout arguments
        (``dimension_numbers``, ``batch_axis``, ``channel_axis``) check their
        arguments against it. ``channel_axis`` is ``None`` for inputs that
        only a ``Flatten`` reads.
      is_input: whether no layer with weights of its own has acted yet (the
        kernel of the inputs, or of layers without weights applied to them,
        e.g. a pooling): the activations still have the inputs' finitely
        many channels. ``kernel_fn`` sets it on the input kernel and affine
        layers (:meth:`after_affine`) and ``Recurrent`` clear it;
        ``Dropout(mode='train')`` refuses such a kernel.
      same_inputs: on the kernel ``kernel_fn(x1, x2)`` returns with ``x2``
        given, whether x2 is x1: the same array object, or equal in shape and
        within ``1e-12`` in every entry (neural-tangents' test); a traced
        boolean when the inputs are traced (then a JAX boolean array out of
        ``jax.jit``). ``False`` on the kernels layers pass to each other,
        where ``cov2 is None`` says it. Read it as :attr:`x1_is_x2`.
    """

    nngp: Any
    ntk: Any
    cov1: Any
    cov2: Any
    shape1: Tuple[int, ...]
    shape2: Tuple[int, ...]
    is_gaussian: bool = False
    diagonal_spatial: bool = False
    fork_independent: Tuple[bool, ...] = ()
    mask1: Any = None
    mask2: Any = None
    pattern1: Any = None
    pattern2: Any = None
    layout: Any = None
    is_input: bool = False
    same_inputs: Any = False

    def tree_flatten(self):
        children = (self.nngp, self.ntk, self.cov1, self.cov2, self.mask1, self.mask2, self.pattern1, self.pattern2,
                    self.same_inputs)
        return children, (self.shape1, self.shape2, self.is_gaussian, self.diagonal_spatial, self.fork_independent,
                          self.layout, self.is_input)

    @classmethod
    def tree_unflatten(cls, aux, children):
        nngp, ntk, cov1, cov2, mask1, mask2, pattern1, pattern2, same_inputs = children
        return cls(nngp, ntk, cov1, cov2, *aux[:5], mask1, mask2, pattern1, pattern2, *aux[5:], same_inputs)

    @property
    def is_masked(self) -> bool:
        """Whether the kernel carries masks of padded positions (``mask_constant``)."""
        return self.mask1 is not None or self.mask2 is not None

    def replace(self, **changes) -> "Kernel":
        """A copy with the given fields changed.

        neural-tangents' field names are accepted too: ``batch_axis`` and
        ``channel_axis`` (where the finite activations keep those axes; they
        set ``layout``), and ``is_reversed=False``, ``diagonal_batch=True``
        (the only values this package holds; others raise ``ValueError``).
        """
        if changes.keys() & _NT_FIELDS:
            changes = self._from_nt_fields(changes)
        return dataclasses.replace(self, **changes)

    def _from_nt_fields(self, changes):
        changes = dict(changes)
        for name, only in (("is_reversed", False), ("diagonal_batch", True)):
            if name in changes and bool(changes.pop(name)) != only:
                raise ValueError(f"Kernel.replace: `{name}` can only be {only} here ({_WHY[name]}).")
        if "batch_axis" in changes or "channel_axis" in changes:
            ndim = len(changes.get("shape1", self.shape1))
            b = changes.pop("batch_axis", self.batch_axis) % ndim
            c = changes.pop("channel_axis", self.channel_axis)
            c = None if c is None else c % ndim
            if b == c:
                raise ValueError(f"Kernel.replace: `batch_axis` and `channel_axis` must differ, got {b} and {c}.")
            changes["layout"] = None if (b, c) == (0, ndim - 1) else (b, c)
        return changes

    # neural-tangents' ``Kernel`` attributes, read from this package's fields.
    @property
    def batch_axis(self) -> int:
        """Where the finite activations keep the batch axis (neural-tangents'
        attribute): an axis of activations with ``len(shape1)`` axes.
        """
        return 0 if self.layout is None else self.layout[0]

    @property
    def channel_axis(self):
        """Where the finite activations keep the channel axis (neural-tangents'
        attribute; ``None`` for inputs only a ``Flatten`` reads).
        """
        return len(self.shape1) - 1 if self.layout is None else self.layout[1]

    @property
    def is_reversed(self) -> bool:
        """Always ``False``: the spatial axes of the arrays are in the order the
        activations hold them (neural-tangents stores them reversed after an
        odd number of convolutions and sets this flag).
        """
        return False

    @property
    def diagonal_batch(self) -> bool:
        """Always ``True``: ``cov1``/``cov2`` hold each input's own covariance."""
        return True

    @property
    def x1_is_x2(self):
        """Whether the kernel is of x1 with itself (neural-tangents' attribute).

        ``True`` when ``cov2`` is ``None`` (``kernel_fn(x1)``, ``kernel_fn(x1,
        None)``), else :attr:`same_inputs`: ``kernel_fn(x, x)`` gives ``True``
        with ``cov2`` equal to ``cov1``, as in neural-tangents.
        """
        return True if self.cov2 is None else self.same_inputs

    def slice(self, n1_slice, n2_slice) -> "Kernel":
        """The kernel of ``x1[n1_slice]`` and ``x2[n2_slice]`` (neural-tangents' method)."""
        cov1 = self.cov1[n1_slice]
        cov2 = self.cov1[n2_slice] if self.cov2 is None else self.cov2[n2_slice]
        mask2 = self.mask1 if self.mask2 is None else self.mask2  # x2 is x1 when mask2 is None
        return self.replace(
            nngp=self.nngp[n1_slice, n2_slice],
            ntk=None if self.ntk is None or jnp.ndim(self.ntk) == 0 else self.ntk[n1_slice, n2_slice],
            cov1=cov1, cov2=cov2,
            shape1=(cov1.shape[0],) + tuple(self.shape1[1:]), shape2=(cov2.shape[0],) + tuple(self.shape2[1:]),
            mask1=None if self.mask1 is None else self.mask1[n1_slice],
            mask2=None if mask2 is None else mask2[n2_slice],
        )

    def __getitem__(self, idx) -> "Kernel":
        """Index the kernel as the finite activations (neural-tangents' rule):
        ``idx`` has one entry per axis of the activations, in their layout
        (``batch_axis``, ``channel_axis``, the spatial axes); the batch entry
        applies to both inputs, each spatial entry to both positions of its
        pair. The channel axis cannot be indexed and the batch axis not with
        an integer (``NotImplementedError``, as there).
        """
        ndim = len(self.shape1)
        idx = idx if isinstance(idx, tuple) else (idx,)
        if any(i is Ellipsis for i in idx):
            at = idx.index(Ellipsis)
            idx = idx[:at] + (slice(None),) * (ndim - len(idx) + 1) + idx[at + 1:]
        idx = idx + (slice(None),) * (ndim - len(idx))
        if len(idx) != ndim:
            raise IndexError(f"Kernel: {len(idx)} indices for activations with {ndim} axes.")
        b, c = self.batch_axis, self.channel_axis
        if c is not None and idx[c] != slice(None):
            raise NotImplementedError(f"Kernel: indexing the (infinite) channel axis {c} is not supported.")
        if isinstance(idx[b], (int, np.integer)):
            raise NotImplementedError(
                f"Kernel: an integer index removes the batch axis {b}; a kernel keeps a batch axis, so index it "
                "with a slice or a tuple."
            )
        spatial = tuple(i for a, i in enumerate(idx) if a not in (b, c))
        pairs = spatial if self.diagonal_spatial else tuple(i for i in spatial for _ in range(2))

        def cut(x, batch_ndim):
            return x if x is None or jnp.ndim(x) == 0 else x[(idx[b],) * batch_ndim + pairs]

        kept = [a for a, i in enumerate(idx) if not isinstance(i, (int, np.integer))]
        layout = None
        if self.layout is not None:
            layout = (kept.index(b), None if c is None else kept.index(c))
            layout = None if layout == (0, len(kept) - 1) else layout

        def shape(old):
            # the kernel's shapes are batch first, channels last, spatial axes in the activations' order
            return np.empty(tuple(old[:-1]), dtype=bool)[(idx[b],) + spatial].shape + (old[-1],)

        def mask(m):
            return None if m is None else m[(idx[b],) + spatial]

        return dataclasses.replace(
            self, nngp=cut(self.nngp, 2), ntk=cut(self.ntk, 2) if self.ntk is not None else None,
            cov1=cut(self.cov1, 1), cov2=cut(self.cov2, 1), shape1=shape(self.shape1), shape2=shape(self.shape2),
            mask1=mask(self.mask1), mask2=mask(self.mask2), layout=layout,
        )

    def transpose(self, axes=None) -> "Kernel":
        """The kernel with its spatial axes permuted (neural-tangents' method):
        spatial axis ``j`` of the result is spatial axis ``axes[j]`` (both
        positions of a pair move together); ``None`` keeps the order.
        """
        s = self.spatial_ndim
        axes = tuple(range(s)) if axes is None else tuple(int(a) for a in axes)
        if sorted(axes) != list(range(s)):
            raise ValueError(f"Kernel.transpose: `axes` must permute the {s} spatial axes, got {axes}.")

        def move(x, batch_ndim):
            if x is None or jnp.ndim(x) == 0:
                return x
            order = ([batch_ndim + a for a in axes] if self.diagonal_spatial
                     else [batch_ndim + 2 * a + e for a in axes for e in (0, 1)])
            return jnp.transpose(x, tuple(range(batch_ndim)) + tuple(order))

        def shape(old):
            return (old[0],) + tuple(old[1 + a] for a in axes) + (old[-1],)

        def mask(m):
            return None if m is None else jnp.transpose(m, (0,) + tuple(1 + a for a in axes))

        return dataclasses.replace(self, nngp=move(self.nngp, 2), ntk=move(self.ntk, 2), cov1=move(self.cov1, 1),
                                   cov2=move(self.cov2, 1), shape1=shape(self.shape1), shape2=shape(self.shape2),
                                   mask1=mask(self.mask1), mask2=mask(self.mask2))

    # neural-tangents' arithmetic: the kernel of ``a * f`` and of ``f + b`` with a
    # shared random offset ``b ~ N(0, a**2)`` (what its layers use them for).
    def __mul__(self, other) -> "Kernel":
        """The kernel of the outputs multiplied by ``other`` (neural-tangents'
        rule): ``nngp``, ``cov1``, ``cov2`` and ``ntk`` times ``other**2``.
        """
        var = _scalar(other, "*") ** 2
        return self.replace(nngp=var * self.nngp, cov1=var * self.cov1,
                            cov2=None if self.cov2 is None else var * self.cov2,
                            ntk=None if self.ntk is None else var * self.ntk)

    __rmul__ = __mul__

    def __truediv__(self, other) -> "Kernel":
        """The kernel of the outputs divided by ``other``: ``self * (1 / other)``."""
        return self.__mul__(1.0 / _scalar(other, "/"))

    def __add__(self, other) -> "Kernel":
        """The kernel after adding one random offset ``b ~ N(0, other**2)``
        shared by every input and position (neural-tangents' rule, as a bias
        with ``b_std=other`` and no trained parameter): ``nngp``, ``cov1``,
        ``cov2`` plus ``other**2``, the NTK unchanged. ``k - a`` is ``k + a``
        (a zero-mean offset's sign does not change its covariance).
        """
        var = _scalar(other, "+") ** 2
        return self.replace(nngp=var + self.nngp, cov1=var + self.cov1,
                            cov2=None if self.cov2 is None else var + self.cov2)

    __radd__ = __add__
    __sub__ = __add__
    __rsub__ = __add__

    def __neg__(self) -> "Kernel":
        """``-k`` is ``k``: negating zero-mean outputs keeps their covariance."""
        return self

    __pos__ = __neg__

    def asdict(self) -> dict:
        """neural-tangents' fields by name (``Kernel.asdict()`` there): ``nngp``,
        ``ntk``, ``cov1``, ``cov2``, ``x1_is_x2``, ``is_gaussian``,
        ``is_reversed``, ``is_input``, ``diagonal_batch``,
        ``diagonal_spatial``, ``shape1``, ``shape2``, ``batch_axis``,
        ``channel_axis``, ``mask1``, ``mask2`` — with this package's
        conventions for the shapes (batch first, channels last) and masks
        (``True`` at real positions), as the attributes of the same names.
        """
        return {name: getattr(self, name) for name in _NT_ORDER}

    def astuple(self) -> tuple:
        """The values of :meth:`asdict` in neural-tangents' field order."""
        return tuple(self.asdict().values())

    def reverse(self):
        """Not provided: neural-tangents stores the spatial axes reversed after
        some convolutions and flips ``is_reversed``; here the arrays always hold
        them in the activations' order (``is_reversed`` is ``False``).
        """
        raise NotImplementedError(
            "Kernel.reverse: the spatial axes stay in the activations' order here (is_reversed is always False); "
            "to reorder them use k.transpose(axes), e.g. k.transpose(tuple(reversed(range(k.spatial_ndim))))."
        )

    def dot_general(self, *args, **kwargs):
        """Not provided as a method: use the layer ``stax.DotGeneral``."""
        raise NotImplementedError("Kernel.dot_general: not provided here; use the layer stax.DotGeneral(...), "
                                  "whose kernel_fn computes the same map for batch-first, channels-last outputs.")

    def after_affine(self, **changes) -> "Kernel":
        """A copy for the output of an affine layer with weights of its own:
        independent of the other branches of every open fork (see
        ``fork_independent``), Gaussian, and no longer the inputs' kernel.
        """
        return self.replace(is_gaussian=True, fork_independent=(True,) * len(self.fork_independent), is_input=False,
                            **changes)

    @property
    def spatial_ndim(self) -> int:
        """Number of spatial axes of the finite activations (0 for flat ones)."""
        return len(self.shape1) - 2


_NT_ORDER = ("nngp", "ntk", "cov1", "cov2", "x1_is_x2", "is_gaussian", "is_reversed", "is_input", "diagonal_batch",
             "diagonal_spatial", "shape1", "shape2", "batch_axis", "channel_axis", "mask1", "mask2")


def _scalar(value, op: str):
    """A real scalar (Python, NumPy or JAX, possibly traced) for ``Kernel``'s
    arithmetic; anything else raises ``TypeError`` naming the operation.
    """
    scalar = isinstance(value, (int, float, complex, np.number)) or getattr(value, "ndim", None) == 0
    dtype = jnp.result_type(value) if scalar and not isinstance(value, (bool, np.bool_)) else None
    if dtype is None or not jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(f"Kernel {op}: the other operand must be a real scalar, got {value!r}.")
    return value


def spatial_diagonal(cov, batch_ndim: int, spatial_ndim: int):
    """``(b..., S1, S1', S2, S2', ...) -> (b..., S1, S2, ...)``: the covariance of
    each position with itself, from a kernel holding every pair of positions.
    """
    for _ in range(spatial_ndim):
        cov = jnp.diagonal(cov, axis1=batch_ndim, axis2=batch_ndim + 1)
    return cov
