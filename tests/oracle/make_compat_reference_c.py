"""Write neural-tangents 0.6.5 reference kernels for issue 19, part C (graph
layers: ``Aggregate`` with dense and sparse patterns; networks in
``compat_cases_c.py``).

Runs ONLY in the oracle virtualenv (see ``make_reference.py``):

    .nt-oracle/venv/bin/python tests/oracle/make_compat_reference_c.py

Output: ``tests/data/nt_compat_reference_c.json``: for each case the NNGP,
NTK and ``cov1`` of ``(x1, x2)`` with ``pattern=(p1, p2)``, and the NNGP and
NTK of ``(x1, None)`` with ``pattern=(p1, p1)`` (float64), as neural-tangents
returns them for the inputs of ``compat_cases_c.inputs``.
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
from compat_cases_c import GRAPH, build, inputs  # noqa: E402
from make_compat_reference import write_reference  # noqa: E402

OUT = HERE.parent / "data" / "nt_compat_reference_c.json"


def _patterns(data):
    _, _, p1, p2 = data
    return {"pattern": (p1, p2)}, {"pattern": (p1, p1)}


def main():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SPARSE's reminder that negative indices are padding
        write_reference(GRAPH, build, inputs, OUT, keywords=_patterns)


if __name__ == "__main__":
    main()
