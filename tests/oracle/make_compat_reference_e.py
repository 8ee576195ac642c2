"""Write neural-tangents 0.6.5 reference kernels for issue 19, part E (the
``s`` argument and kernels in other layouts; networks in ``compat_cases_e.py``).

Runs ONLY in the oracle virtualenv (see ``make_reference.py``):

    .nt-oracle/venv/bin/python tests/oracle/make_compat_reference_e.py

Output: ``tests/data/nt_compat_reference_e.json`` (NNGP, NTK and ``cov1`` of
each case, float64), ``tests/data/nt_compat_reference_e_masked.json`` (the
same for the padded sequences of ``MASKED`` with ``mask_constant``, and the
kernels of ``(x1, None)``) and ``tests/data/nt_params_e.npz`` (for each ``PARAMS``
network the parameters neural-tangents' ``init_fn`` draws, ``<name>/<i>`` in
``jax.tree_util`` order, and its ``apply_fn`` output, ``<name>/output``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compat_cases_e import CASES, MASK_CONSTANT, MASKED, PARAMS, build, inputs  # noqa: E402
from make_compat_reference import write_reference  # noqa: E402
from make_compat_reference_d import write_params  # noqa: E402

OUT = HERE.parent / "data" / "nt_compat_reference_e.json"
OUT_PARAMS = HERE.parent / "data" / "nt_params_e.npz"
OUT_MASKED = HERE.parent / "data" / "nt_compat_reference_e_masked.json"


def _masked(data):
    return {"mask_constant": MASK_CONSTANT}, {"mask_constant": MASK_CONSTANT}


if __name__ == "__main__":
    write_reference(CASES, build, inputs, OUT)
    write_params(PARAMS, build, inputs, OUT_PARAMS)
    write_reference(MASKED, build, inputs, OUT_MASKED, keywords=_masked)
