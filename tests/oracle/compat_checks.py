"""Comparisons with stored neural-tangents values shared by the compatibility tests (parts E and F)."""
from __future__ import annotations

import numpy as np


def assert_padded_kernels_match(kernel_fn, x1, x2, reference: dict, mask_constant) -> None:
    """Pairs (x1, x2) and x1 with itself, both with ``mask_constant``, against neural-tangents' stored
    ``nngp``, ``ntk``, ``cov1``, ``self_nngp``, ``self_ntk`` (rtol 1e-9: float64 round-off of two
    implementations, with an absolute floor of 1e-12 of the largest entry for entries near zero).
    """
    pair = kernel_fn(x1, x2, ("nngp", "ntk", "cov1"), mask_constant=mask_constant)
    alone = kernel_fn(x1, None, ("nngp", "ntk"), mask_constant=mask_constant)
    for got, key in [(pair.nngp, "nngp"), (pair.ntk, "ntk"), (pair.cov1, "cov1"), (alone.nngp, "self_nngp"),
                     (alone.ntk, "self_ntk")]:
        want = np.asarray(reference[key], dtype=float)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-12 * np.abs(want).max(), err_msg=key)
