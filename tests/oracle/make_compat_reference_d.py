"""Write neural-tangents 0.6.5 reference kernels for issue 19, part D
(``ConvTranspose``, ``ConvLocal``, ``DotGeneral``, the layout arguments;
networks in ``compat_cases_d.py``).

Runs ONLY in the oracle virtualenv (see ``make_reference.py``):

    .nt-oracle/venv/bin/python tests/oracle/make_compat_reference_d.py

Output: ``tests/data/nt_compat_reference_d.json``: for each case the NNGP,
NTK and ``cov1`` (float64) as neural-tangents returns them for the inputs of
``compat_cases_d.inputs``.
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
from compat_cases_d import CASES, build, inputs  # noqa: E402
from make_compat_reference import write_reference  # noqa: E402

OUT = HERE.parent / "data" / "nt_compat_reference_d.json"


def main():
    write_reference(CASES, build, inputs, OUT)


if __name__ == "__main__":
    main()
