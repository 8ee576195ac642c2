"""Write neural-tangents 0.6.5 reference kernels and outputs for inputs made
only of padding among padded ones (networks in ``compat_cases_all_padding.py``).

Runs ONLY in the oracle virtualenv (see ``make_reference.py``):

    .nt-oracle/venv/bin/python tests/oracle/make_compat_reference_all_padding.py

Output: ``tests/data/nt_compat_reference_all_padding.json`` (NNGP, NTK and
``cov1`` of each case for ``(x1, x2)`` and the NNGP and NTK of
``(x1, None)``, all with ``mask_constant``, float64) and
``tests/data/nt_params_all_padding.npz`` (the parameters neural-tangents'
``init_fn`` draws and its ``unmask_fn(apply_fn)(..., mask_constant=)``
output), written as parts D-H.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

from compat_cases_all_padding import CASES, MASK_CONSTANT, PARAMS, build, inputs  # noqa: E402  (this folder)
from make_compat_reference import write_reference  # noqa: E402
from make_compat_reference_d import write_params  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"

if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # neural-tangents' warning about tied query weights
        write_reference(CASES, build, inputs, DATA / "nt_compat_reference_all_padding.json",
                        keywords=lambda data: ({"mask_constant": MASK_CONSTANT}, {"mask_constant": MASK_CONSTANT}))
        write_params(PARAMS, build, inputs, DATA / "nt_params_all_padding.npz",
                     apply_kwargs={"mask_constant": MASK_CONSTANT})
