"""Write neural-tangents 0.6.5 reference kernels for issue 19, part C (graph
layers: ``Aggregate`` with dense and sparse patterns; padded sequences through
convolutions and self-attention with ``mask_constant``; networks in
``compat_cases_c.py``).

Runs ONLY in the oracle virtualenv (see ``make_reference.py``):

    .nt-oracle/venv/bin/python tests/oracle/make_compat_reference_c.py

Output: ``tests/data/nt_compat_reference_c.json``: for each case the NNGP,
NTK and ``cov1`` of ``(x1, x2)`` with ``pattern=(p1, p2)`` (graphs) or
``mask_constant`` (padded sequences), and the NNGP and NTK of ``(x1, None)``
with ``pattern=(p1, p1)`` or ``mask_constant`` (float64), as neural-tangents
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
from compat_cases_c import GRAPH, MASK_CONSTANT, MASKED, build, inputs  # noqa: E402
from make_compat_reference import write_reference  # noqa: E402

OUT = HERE.parent / "data" / "nt_compat_reference_c.json"


def _keywords(data):
    _, _, p1, p2 = data
    if p1 is None:
        return {"mask_constant": MASK_CONSTANT}, {"mask_constant": MASK_CONSTANT}
    return {"pattern": (p1, p2)}, {"pattern": (p1, p1)}


def main():
    with warnings.catch_warnings():
        # SPARSE's reminder that negative indices are padding; linear-scaling attention's tied queries.
        warnings.simplefilter("ignore")
        write_reference({**GRAPH, **MASKED}, build, inputs, OUT, keywords=_keywords)


if __name__ == "__main__":
    main()
