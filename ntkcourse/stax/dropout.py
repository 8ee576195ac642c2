r"""Dropout (neural-tangents' ``Dropout``), in its training and test modes.

``rate`` is the probability of *keeping* a unit (as in
``jax.example_libraries.stax`` and neural-tangents). In ``mode='train'`` (the
default) the finite network multiplies its input by a random mask,
``where(keep, x / rate, 0)`` with ``keep ~ Bernoulli(rate)`` drawn
independently for every input, position and channel from the key
``apply_fn(..., rng=key)``; in ``mode='test'`` it is the identity.

The kernel in training mode is the expectation over the weights *and* the
masks. Two different entries of the mask are independent, and
:math:`E[(m / \mathrm{rate})^2] = 1 / \mathrm{rate}` while
:math:`E[m m' / \mathrm{rate}^2] = 1` for independent entries, so:

* ``cov1``/``cov2`` (each input with itself): the entries that pair a
  position with itself are multiplied by ``1 / rate`` (all entries with
  ``diagonal_spatial``);
* ``nngp``/``ntk``: the same factor on the entries where the batch index and
  every position are equal, **only** for the kernel of x1 with itself: one
  input at one position sees one mask entry; a different input, even one
  equal to it, gets a mask of its own. That is neural-tangents' rule,
  including its test of "x1 with itself": ``x2=None``, or ``x2`` of the
  shape of ``x1`` and equal to it within ``1e-12`` in every entry (see
  :func:`ntkcourse.engine.make_kernel_fn`'s ``reads_identity``).

The output is not Gaussian (a mixture over the masks), so an activation or
``LayerNorm`` straight after it is refused, as in neural-tangents; a
``Dense`` or ``Conv`` after it makes it Gaussian again (its width averages
the masks out). On the inputs themselves (before any layer with weights) it
is refused: the inputs have finitely many channels, so the mask does not
average out and the output of the next affine layer is a mixture of
Gaussians, whose kernel after an activation is not the one computed from the
mean covariance (neural-tangents means to refuse it too, ``k.is_input``,
but its flag is never set, and it computes that value).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import validation
from ..kernel import Kernel
from .layer import layer, same_mask

__all__ = ["Dropout"]


def _pairs_equal(shape, axis_pairs):
    """Booleans broadcastable to ``shape``: ``True`` where both axes of every
    pair in ``axis_pairs`` hold the same index (a constant, from the shapes).
    """
    where = np.ones((1,) * len(shape), bool)
    for a, b in axis_pairs:
        eye_shape = [1] * len(shape)
        eye_shape[a], eye_shape[b] = shape[a], shape[b]
        where = where & np.eye(shape[a], shape[b], dtype=bool).reshape(eye_shape)
    return where


def _scale_diagonal(x, factor: float, batch_ndim: int, diagonal_spatial: bool):
    """``x`` with the entries on its diagonal multiplied by ``factor``: equal
    batch indices (``batch_ndim=2``: ``(n1, n2, ...)``) and, for kernels with
    every pair of positions, equal members of each spatial pair.
    """
    if x is None or jnp.ndim(x) == 0:
        return x  # no NTK asked for; or a scalar zero NTK, unchanged by a factor
    pairs = [(0, 1)] if batch_ndim == 2 else []
    if not diagonal_spatial:
        pairs += [(a, a + 1) for a in range(batch_ndim, x.ndim, 2)]
    if not pairs:
        return x * factor
    return jnp.where(_pairs_equal(x.shape, pairs), x * factor, x)


def _train_kernel_map(rate: float):
    factor = 1.0 / rate

    def kernel_map(k: Kernel) -> Kernel:
        if k.is_input:
            raise ValueError(
                "Dropout: mode='train' on the network's inputs (no Dense or Conv before it) is not implemented: "
                "the inputs have finitely many channels, so the random mask does not average out and the kernel "
                "after the next activation is not the infinite-width one; put Dropout after an affine layer, or "
                "use mode='test'."
            )
        diag = k.diagonal_spatial
        same = k.cov2 is None  # the kernel of x1 with itself (a diagonal block or tile)
        return k.replace(
            cov1=_scale_diagonal(k.cov1, factor, 1, diag),
            cov2=_scale_diagonal(k.cov2, factor, 1, diag),
            nngp=_scale_diagonal(k.nngp, factor, 2, diag) if same else k.nngp,
            ntk=_scale_diagonal(k.ntk, factor, 2, diag) if same else k.ntk,
            is_gaussian=False,
        )

    return kernel_map


def Dropout(rate: float, mode: str = "train"):
    """Dropout with keep probability ``rate`` (neural-tangents' ``Dropout``).

    Args:
      rate: the probability of keeping a unit, ``0 < rate <= 1``
        (``rate=1`` keeps every unit: the identity, in either mode).
      mode: ``'train'`` (default, as in neural-tangents): ``apply_fn(params,
        x, rng=key)`` keeps each entry of ``x`` with probability ``rate`` and
        divides it by ``rate`` (``jax.random.bernoulli(key, rate, x.shape)``),
        and the kernel is the expectation over weights and masks (module
        docstring: ``1 / rate`` on the diagonal of each input with itself).
        ``'test'``: the identity, and so are its kernels.

    Raises:
      ValueError: ``rate`` outside ``(0, 1]`` or ``mode`` neither ``'train'``
        nor ``'test'``; in training mode, ``apply_fn`` called without
        ``rng=``, and ``kernel_fn`` for a network that applies it to its inputs
        (no layer with weights before it).
    """
    rate = validation.finite_real("Dropout", "rate", rate)
    if not 0.0 < rate <= 1.0:
        raise validation.fail("Dropout", "rate", "a keep probability in (0, 1]", rate)
    mode = validation.one_of("Dropout", "mode", mode, ("train", "test"))
    config = {"rate": rate, "mode": mode}
    if mode == "test" or rate == 1.0:
        # The identity keeps padded positions where they are: masks pass through, as neural-tangents' Dropout.
        return layer(lambda key, s: (s, ()), lambda params, x, **kw: x, lambda k: k, "Dropout", config,
                     layout_free=True, handles_masks=True)

    def apply_fn(params, x, rng=None, **kwargs):
        if rng is None:
            raise ValueError(
                "Dropout: mode='train' draws a random mask and needs a PRNG key: call "
                "apply_fn(params, x, rng=jax.random.key(0)) (a serial network splits the key among its layers), "
                "or build the layer with mode='test'."
            )
        keep = jax.random.bernoulli(rng, rate, jnp.shape(x))
        return jnp.where(keep, x / rate, jnp.zeros((), jnp.result_type(x)))

    # Padded inputs: the mask of real positions is kept, and the padded positions stay zero (zero times the
    # factor); the kernel's entries there are zero whatever the factor.
    return layer(lambda key, s: (s, ()), apply_fn, _train_kernel_map(rate), "Dropout", config,
                 layout_free=True, mask_fn=same_mask, reads_identity=True)
