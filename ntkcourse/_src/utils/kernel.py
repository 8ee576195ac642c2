"""``nt._src.utils.kernel.Kernel``: build a :class:`ntkcourse.kernel.Kernel`
from neural-tangents' constructor arguments.

neural-tangents' ``Kernel`` describes the finite activations in their own
layout: ``shape1``/``shape2`` in that layout, ``batch_axis`` and
``channel_axis`` where they sit, masks ``True`` at *masked* entries. This
package's ``Kernel`` keeps ``shape1``/``shape2`` batch first and channels
last (spatial axes in the activations' order), the layout in ``layout`` and
masks ``True`` at *real* positions; the constructor translates. Two fields
have one value here: the spatial axes in the activations' order
(``is_reversed=False``) and ``cov1``/``cov2`` holding each input's own
covariance (``diagonal_batch=True``); any other value raises ``ValueError``
naming the argument, rather than being ignored. ``cov2=None`` means x2
is x1 (``x1_is_x2`` is then ``True`` whatever is given; ``Dropout(mode=
'train')`` scales the diagonal only there); with ``cov2`` given,
``x1_is_x2`` is kept as the kernel's ``same_inputs``. ``is_input`` is
kept (``Dropout(mode='train')`` refuses the kernel of the inputs).
"""
from __future__ import annotations

import jax.numpy as jnp

from ...kernel import Kernel as _PackageKernel

__all__ = ["Kernel"]


def _require(name, value, allowed, why):
    if value not in allowed:
        raise ValueError(f"Kernel: `{name}`={value!r} is not supported ({why}); "
                         f"expected {' or '.join(repr(a) for a in allowed)}.")


def Kernel(nngp, ntk, cov1, cov2, x1_is_x2, is_gaussian, is_reversed, is_input,
           diagonal_batch, diagonal_spatial, shape1, shape2, batch_axis, channel_axis,
           mask1=None, mask2=None):
    """A kernel object with neural-tangents' constructor signature (all
    fields by name, as ``neural_tangents._src.utils.kernel.Kernel``).

    Returns:
      :class:`ntkcourse.kernel.Kernel` with ``nngp``, ``ntk``, ``cov1``,
      ``cov2``, ``is_gaussian``, ``diagonal_spatial`` as given (a scalar
      ``ntk``, as in neural-tangents' input kernels, filled to ``nngp``'s
      shape), ``shape1`` and
      ``shape2`` reordered batch first and channels last, ``layout`` from
      ``batch_axis``/``channel_axis`` (``k.batch_axis`` and
      ``k.channel_axis`` give them back), and each mask (neural-tangents':
      broadcastable to the activations, ``True`` at masked entries) turned
      into this package's ``(n, *spatial)`` mask of real positions (a
      position is padding when all its channels are masked); pass it to a
      ``kernel_fn``.
    """
    _require("is_reversed", is_reversed, (False,), "spatial axes stay in the activations' order here")
    _require("diagonal_batch", diagonal_batch, (True,), "cov1 and cov2 hold each input's own covariance")
    shape1, shape2 = tuple(shape1), tuple(shape2)
    rank = len(shape1)
    for name, axis in (("batch_axis", batch_axis), ("channel_axis", channel_axis)):
        if not isinstance(axis, int) or not -rank <= axis < rank:
            raise ValueError(f"Kernel: `{name}`={axis!r} is not an axis of activations of shape {shape1}.")
    b, c = batch_axis % rank, channel_axis % rank
    if b == c:
        raise ValueError(f"Kernel: `batch_axis` and `channel_axis` must differ, got {batch_axis} and {channel_axis}.")
    order = (b,) + tuple(a for a in range(rank) if a not in (b, c)) + (c,)

    def ours(shape):
        return tuple(shape[a] for a in order)

    def real_positions(mask, shape):
        if mask is None:
            return None
        return ~jnp.all(jnp.transpose(jnp.broadcast_to(mask, shape), order), axis=-1)

    if ntk is not None and jnp.ndim(ntk) == 0:  # neural-tangents' input kernels hold a scalar zero NTK
        ntk = jnp.full(jnp.shape(nngp), ntk, jnp.result_type(nngp))
    return _PackageKernel(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2, shape1=ours(shape1), shape2=ours(shape2),
                          is_gaussian=bool(is_gaussian), diagonal_spatial=bool(diagonal_spatial),
                          is_input=bool(is_input), same_inputs=False if cov2 is None else x1_is_x2,
                          mask1=real_positions(mask1, shape1), mask2=real_positions(mask2, shape2),
                          layout=None if (b, c) == (0, rank - 1) else (b, c))
