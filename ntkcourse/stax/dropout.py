"""Dropout (neural-tangents' ``Dropout``), in its test mode.

At test time dropout is the identity, and so are its kernels. In training
mode the finite network multiplies by a random mask scaled by ``1 / rate``
(``rate`` is the probability of *keeping* a unit, as in
``jax.example_libraries.stax``), which changes the kernel's diagonal; that
mode is not implemented here and is refused rather than ignored.
"""
from __future__ import annotations

from .. import validation
from .layer import layer

__all__ = ["Dropout"]


def Dropout(rate: float, mode: str = "train"):
    """Dropout with keep probability ``rate``; only ``mode='test'`` (the identity) is implemented."""
    rate = validation.nonnegative("Dropout", "rate", rate)
    if not 0.0 < rate <= 1.0:
        raise validation.fail("Dropout", "rate", "a keep probability in (0, 1]", rate)
    mode = validation.one_of("Dropout", "mode", mode, ("train", "test"))
    if mode == "train":
        raise NotImplementedError(
            "Dropout: mode='train' (a random mask, which changes the kernel's diagonal) is not implemented; use "
            "mode='test' (the identity) for the kernel of the network at test time."
        )
    # The identity keeps padded positions where they are: masks pass through, as neural-tangents' Dropout.
    return layer(lambda key, s: (s, ()), lambda params, x, **kw: x, lambda k: k, "Dropout",
                 {"rate": rate, "mode": mode}, layout_free=True, handles_masks=True)
