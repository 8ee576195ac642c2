"""Comparisons with stored neural-tangents values shared by the compatibility tests (parts E and F)."""
from __future__ import annotations

import numpy as np

from compat_params import outputs_with_their_parameters


def assert_padded_kernels_match(kernel_fn, x1, x2, reference: dict, mask_constant, alone: bool = True) -> None:
    """Pairs (x1, x2) and (``alone``) x1 with itself, both with ``mask_constant``, against neural-tangents'
    stored ``nngp``, ``ntk``, ``cov1``, ``self_nngp``, ``self_ntk`` (rtol 1e-9: float64 round-off of two
    implementations, with an absolute floor of 1e-12 of the largest entry for entries near zero).
    """
    pair = kernel_fn(x1, x2, ("nngp", "ntk", "cov1"), mask_constant=mask_constant)
    checks = [(pair.nngp, "nngp"), (pair.ntk, "ntk"), (pair.cov1, "cov1")]
    if alone:
        self_kernel = kernel_fn(x1, None, ("nngp", "ntk"), mask_constant=mask_constant)
        checks += [(self_kernel.nngp, "self_nngp"), (self_kernel.ntk, "self_ntk")]
    for got, key in checks:
        want = np.asarray(reference[key], dtype=float)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-12 * np.abs(want).max(), err_msg=key)


def assert_masked_outputs_match(net, x, arrays, name: str, mask_constant) -> None:
    """Our ``apply_fn(params, x, mask_constant=...)`` with neural-tangents' stored parameters for ``name``
    against its stored output (rtol 1e-10: the same float64 parameters through the same operations, with an
    absolute floor of 1e-12 of the largest entry).
    """
    got = outputs_with_their_parameters(net, x, arrays, name, mask_constant=mask_constant)
    want = arrays[f"{name}/output"]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())
