r"""Padded inputs: ``kernel_fn(..., mask_constant=c)``.

The convention is neural-tangents': an input entry equal to ``mask_constant``
is masked (set to zero). For sequences ``(batch, T, features)`` and images
``(batch, H, W, channels)`` (any number of spatial axes, channels last) a
position is *padding* when all its channels equal ``mask_constant`` (``NaN``
matches ``NaN``): neural-tangents' first ``Dense``/``Conv`` collapses its
per-entry masks over the channels the same way. The masks are per position,
``(batch, T)`` or ``(batch, H, W)``, ``True`` at the real positions.

To run through the memory-bounded blocks unchanged, the mask travels as one
extra feature of the input (:func:`with_mask_channel`); the first stage of a
masked computation (:func:`masked_input_kernel`) splits it off again, builds
the input kernel of the real features (padded entries set to zero) and puts
the masks in the :class:`~ntkcourse.kernel.Kernel`. Which layers read masks
is decided by the layers (``ntkcourse.stax.layer``'s ``handles_masks``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .inputs import input_kernel

__all__ = ["position_mask", "padded_entries", "with_mask_channel", "masked_input_kernel"]


def _check_mask_constant(mask_constant):
    if isinstance(mask_constant, jax.Array) and mask_constant.ndim == 0:
        return  # e.g. traced by a function that passes keyword arguments as arrays
    if isinstance(mask_constant, bool) or not isinstance(mask_constant, (int, float, np.integer, np.floating)):
        raise ValueError(
            f"kernel_fn: `mask_constant` must be a real number (or NaN) marking padded entries, got "
            f"{mask_constant!r}."
        )


def position_mask(x, mask_constant, name: str, where: str = "kernel_fn"):
    """``(batch, *spatial)`` booleans, ``True`` where a position of the
    sequences or images ``x`` (``(batch, *spatial, channels)``) is real: not
    every channel equals ``mask_constant``. An input made only of padding
    has no real position (a batch padded with dummy inputs): the layers give
    it neural-tangents' values (means over no position are 0, and it stays
    padding after a readout, :func:`ntkcourse.stax.masked.read_out_masks`).

    Raises:
      ValueError: ``x`` has no spatial axis.
    """
    _check_mask_constant(mask_constant)
    if np.ndim(x) < 3:
        raise ValueError(
            f"{where}: `mask_constant` marks padded time steps of sequences (batch, T, features) or padded pixels "
            f"of images (batch, H, W, channels); `{name}` has shape {np.shape(x)}, with no spatial axis."
        )
    xp = jnp if isinstance(x, jax.core.Tracer) or isinstance(mask_constant, jax.core.Tracer) else np
    x = x if xp is jnp else np.asarray(x)
    c = mask_constant if xp is jnp else np.asarray(mask_constant)
    padded = (x == c) | (xp.isnan(x) & xp.isnan(c))
    mask = ~xp.all(padded, axis=-1)
    return mask


def padded_entries(inputs, mask_constant):
    """``(x, c, entry)`` for a finite network's ``apply_fn(..., mask_constant=)``
    (read once, from the network's inputs: :mod:`ntkcourse.stax.masked`).

    ``x`` is ``inputs`` as a JAX array (in JAX's current precision, so that
    float64 NumPy inputs with 64-bit mode off give no truncation warning),
    ``c`` the constant in ``x``'s dtype, and ``entry`` the boolean array of
    entries equal to it (NaN matching a NaN constant), which enter the layer
    as zero, as in ``kernel_fn``.
    """
    x = jnp.asarray(inputs)
    c = jnp.asarray(mask_constant, x.dtype)
    return x, c, (x == c) | (jnp.isnan(x) & jnp.isnan(c))


def with_mask_channel(x, mask, mask_constant=None):
    """``x`` with its padded positions set to zero and the mask appended as one
    more channel, shape ``(batch, *spatial, channels + 1)``. With ``mask_constant``
    every entry equal to it is set to zero too, also in steps that are not
    all padding (neural-tangents zeroes each such entry of its inputs).
    """
    tracer = jax.core.Tracer
    xp = jnp if isinstance(x, tracer) or isinstance(mask, tracer) or isinstance(mask_constant, tracer) else np
    x = xp.where(mask[..., None], x, 0).astype(xp.float64 if xp is np else x.dtype)
    if mask_constant is not None:
        c = xp.asarray(mask_constant, x.dtype)
        x = xp.where((x == c) | (xp.isnan(x) & xp.isnan(c)), xp.zeros((), x.dtype), x)
    return xp.concatenate([x, mask[..., None].astype(x.dtype)], axis=-1)


def masked_input_kernel(x1, x2, compute_ntk: bool, dtype, diagonal_spatial: bool = False):
    r"""The input kernel :math:`x_p \cdot x'_{p'} / C` of the real channels of
    inputs made by :func:`with_mask_channel`, with ``mask1``/``mask2`` set
    (``(n, *spatial)``). Every pair of positions is kept (``diagonal_spatial``
    must be false: inputs of different sizes pair positions off the diagonal).
    """
    if diagonal_spatial:
        raise ValueError("kernel_fn: masked inputs need every pair of positions, not only the diagonal.")
    m1 = x1[..., -1] > 0.5
    m2 = None if x2 is None else x2[..., -1] > 0.5
    k = input_kernel(x1[..., :-1], None if x2 is None else x2[..., :-1], compute_ntk, dtype, False)
    return k.replace(mask1=m1, mask2=m2)
