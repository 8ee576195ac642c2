"""Write neural-tangents 0.6.5 reference kernels for issue 19, part A (the
remaining activations and simple layers; networks in ``compat_cases_a.py``).

Runs ONLY in the oracle virtualenv (see ``make_reference.py``):

    .nt-oracle/venv/bin/python tests/oracle/make_compat_reference_a.py

Output: ``tests/data/nt_compat_reference_a.json``: for each case the NNGP,
NTK and ``cov1`` (float64) as neural-tangents returns them for the inputs of
``compat_cases_a.inputs``.
"""
from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

from neural_tangents import stax  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compat_cases_a import CASES, HERMITE_CASES, LAYER_CASES, build, inputs  # noqa: E402

OUT = HERE.parent / "data" / "nt_compat_reference_a.json"


def main():
    ref = {}
    for name, (kind, spec) in {**CASES, **HERMITE_CASES, **LAYER_CASES}.items():
        x1, x2 = inputs(kind)
        kernel_fn = build(stax, spec)[2]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Hermite's unit-variance reminder
            k = kernel_fn(x1, x2, ("nngp", "ntk", "cov1"))
        ref[name] = {"nngp": np.asarray(k.nngp).tolist(), "ntk": np.asarray(k.ntk).tolist(),
                     "cov1": np.asarray(k.cov1).tolist()}
    OUT.write_text(json.dumps(ref) + "\n")
    print("wrote", OUT, len(ref), "cases")


if __name__ == "__main__":
    main()
