"""Write neural-tangents 0.6.5 reference kernels for the layers and ``get`` names
added for neural-tangents users (issue 19): ``FanInConcat``, ``SumPool``,
``GlobalSumPool``, ``Dropout(mode='test')``, ``Gelu(approximate=True)``,
``Cos``, and ``get='cov1'``.

Runs ONLY in the oracle virtualenv (see ``make_reference.py``):

    .nt-oracle/venv/bin/python tests/oracle/make_compat_reference.py

Output: ``tests/data/nt_compat_reference.json``: for each case its inputs'
seed and shape, and the NNGP and NTK (float64) as neural-tangents returns them.
The networks are written twice, here and in ``tests/contract/test_nt_compat_layers.py``;
both build them from the same ``CASES`` table of plain data.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

from neural_tangents import stax  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compat_cases import CASES, build, inputs  # noqa: E402

OUT = HERE.parent / "data" / "nt_compat_reference.json"


def write_reference(cases, build, inputs, out, keywords=None):
    """neural-tangents' NNGP, NTK and cov1 of each case ``{name: (input kind, spec)}``, written to ``out``.

    ``keywords``: for cases whose inputs come with side data (``inputs(kind)``
    returns more than ``(x1, x2)``), ``keywords(data) -> (kwargs for (x1, x2),
    kwargs for (x1, None))``; the NNGP and NTK of ``(x1, None)`` are then
    written too (``self_nngp``, ``self_ntk``).
    """
    ref = {}
    for name, (kind, spec) in cases.items():
        data = inputs(kind)
        x1, x2 = data[:2]
        pair, alone = ({}, None) if keywords is None else keywords(data)
        kernel_fn = build(stax, spec)[2]
        k = kernel_fn(x1, x2, ("nngp", "ntk", "cov1"), **pair)
        ref[name] = {"nngp": np.asarray(k.nngp).tolist(), "ntk": np.asarray(k.ntk).tolist(),
                     "cov1": np.asarray(k.cov1).tolist()}
        if alone is not None:
            k = kernel_fn(x1, None, ("nngp", "ntk"), **alone)
            ref[name].update(self_nngp=np.asarray(k.nngp).tolist(), self_ntk=np.asarray(k.ntk).tolist())
    out.write_text(json.dumps(ref) + "\n")
    print("wrote", out, len(ref), "cases")


def main():
    write_reference(CASES, build, inputs, OUT)


if __name__ == "__main__":
    main()
