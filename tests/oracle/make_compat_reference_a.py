"""Write neural-tangents 0.6.5 reference kernels for issue 19, part A (the
remaining activations and simple layers; networks in ``compat_cases_a.py``).

Runs ONLY in the oracle virtualenv (see ``make_reference.py``):

    .nt-oracle/venv/bin/python tests/oracle/make_compat_reference_a.py

Output: ``tests/data/nt_compat_reference_a.json``: for each case the NNGP,
NTK and ``cov1`` (float64) as neural-tangents returns them for the inputs of
``compat_cases_a.inputs``.
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compat_cases_a import CASES, HERMITE_CASES, LAYER_CASES, build, inputs  # noqa: E402
from make_compat_reference import write_reference  # noqa: E402

OUT = HERE.parent / "data" / "nt_compat_reference_a.json"


def main():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Hermite's unit-variance reminder
        write_reference({**CASES, **HERMITE_CASES, **LAYER_CASES}, build, inputs, OUT)


if __name__ == "__main__":
    main()
