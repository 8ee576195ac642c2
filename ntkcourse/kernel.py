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

__all__ = ["Kernel", "spatial_diagonal"]


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
      mask1, mask2: for sequences ``(n, T, features)`` given to ``kernel_fn``
        with ``mask_constant``: boolean arrays ``(n1, T)`` and ``(n2, T)``,
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

    def tree_flatten(self):
        children = (self.nngp, self.ntk, self.cov1, self.cov2, self.mask1, self.mask2, self.pattern1, self.pattern2)
        return children, (self.shape1, self.shape2, self.is_gaussian, self.diagonal_spatial, self.fork_independent,
                          self.layout)

    @classmethod
    def tree_unflatten(cls, aux, children):
        nngp, ntk, cov1, cov2, mask1, mask2, pattern1, pattern2 = children
        return cls(nngp, ntk, cov1, cov2, *aux[:5], mask1, mask2, pattern1, pattern2, aux[5])

    @property
    def is_masked(self) -> bool:
        """Whether the kernel carries masks of padded time steps."""
        return self.mask1 is not None or self.mask2 is not None

    def replace(self, **changes) -> "Kernel":
        """A copy with the given fields changed."""
        return dataclasses.replace(self, **changes)

    def after_affine(self, **changes) -> "Kernel":
        """A copy for the output of an affine layer with weights of its own:
        independent of the other branches of every open fork (see
        ``fork_independent``), and Gaussian.
        """
        return self.replace(is_gaussian=True, fork_independent=(True,) * len(self.fork_independent), **changes)

    @property
    def spatial_ndim(self) -> int:
        """Number of spatial axes of the finite activations (0 for flat ones)."""
        return len(self.shape1) - 2


def spatial_diagonal(cov, batch_ndim: int, spatial_ndim: int):
    """``(b..., S1, S1', S2, S2', ...) -> (b..., S1, S2, ...)``: the covariance of
    each position with itself, from a kernel holding every pair of positions.
    """
    for _ in range(spatial_ndim):
        cov = jnp.diagonal(cov, axis1=batch_ndim, axis2=batch_ndim + 1)
    return cov
