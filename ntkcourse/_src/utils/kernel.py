"""``nt._src.utils.kernel.Kernel``: build a :class:`ntkcourse.kernel.Kernel`
from neural-tangents' constructor arguments.

neural-tangents' ``Kernel`` has fields this package does not keep, because
they have one value here: the batch axis first and the channel axis last
(``batch_axis=0``, ``channel_axis=-1``), spatial axes in input order
(``is_reversed=False``), ``cov1``/``cov2`` holding each input's own
covariance (``diagonal_batch=True``). Those values are accepted; any other
raises ``ValueError`` naming the argument, rather than being ignored.
``x1_is_x2`` and ``is_input`` are hints neural-tangents uses to save work
(x2 is x1; the kernel is a network's input kernel): the values computed here
depend only on ``nngp``, ``ntk``, ``cov1`` and ``cov2`` (``cov2=None`` means
x2 is x1), so both hints are accepted either way, as there.
"""
from __future__ import annotations

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
      ``cov2``, ``shape1``, ``shape2``, ``is_gaussian``, ``diagonal_spatial``,
      ``mask1``, ``mask2`` as given; pass it to a ``kernel_fn``.
    """
    _require("is_reversed", is_reversed, (False,), "spatial axes stay in input order here")
    _require("diagonal_batch", diagonal_batch, (True,), "cov1 and cov2 hold each input's own covariance")
    _require("batch_axis", batch_axis, (0,), "the batch axis comes first")
    rank = len(tuple(shape1))
    _require("channel_axis", channel_axis, (-1, rank - 1), "the channel axis comes last")
    return _PackageKernel(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2, shape1=tuple(shape1), shape2=tuple(shape2),
                          is_gaussian=bool(is_gaussian), diagonal_spatial=bool(diagonal_spatial),
                          mask1=mask1, mask2=mask2)
