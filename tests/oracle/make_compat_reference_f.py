"""Write neural-tangents 0.6.5 reference kernels for issue 19, part F (padded
images, ``mask_constant``; networks in ``compat_cases_f.py``).

Runs ONLY in the oracle virtualenv (see ``make_reference.py``):

    .nt-oracle/venv/bin/python tests/oracle/make_compat_reference_f.py

Output: ``tests/data/nt_compat_reference_f.json`` (NNGP, NTK and ``cov1`` of
each case for ``(x1, x2)`` and the NNGP and NTK of ``(x1, None)``, all with
``mask_constant``, float64) and ``tests/data/nt_params_f.npz`` (for each
``PARAMS`` network the parameters neural-tangents' ``init_fn`` draws and its
``apply_fn(..., mask_constant=)`` output). The writing is that of parts D and E.
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

from compat_cases_f import CASES, MASK_CONSTANT, PARAMS, build, inputs  # noqa: E402  (this script's folder)
from make_compat_reference import write_reference  # noqa: E402
from make_compat_reference_d import write_params  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"


def _masked(data):
    return {"mask_constant": MASK_CONSTANT}, {"mask_constant": MASK_CONSTANT}


if __name__ == "__main__":
    write_reference(CASES, build, inputs, DATA / "nt_compat_reference_f.json", keywords=_masked)
    write_params(PARAMS, build, inputs, DATA / "nt_params_f.npz", apply_kwargs={"mask_constant": MASK_CONSTANT})
