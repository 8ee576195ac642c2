"""Write neural-tangents 0.6.5 reference kernels for issue 19, part H (padded
images through ``ConvTranspose``, ``ConvLocal``, ``ImageResize``, ``Index``;
networks in ``compat_cases_h.py``).

Runs ONLY in the oracle virtualenv (see ``make_reference.py``):

    .nt-oracle/venv/bin/python tests/oracle/make_compat_reference_h.py

Output: ``tests/data/nt_compat_reference_h.json`` and
``tests/data/nt_params_h.npz``, written as part F's (``write_part`` there),
and ``tests/data/nt_compat_reference_h_layouts.json`` (the unpadded
``LAYOUTS`` cases: NNGP, NTK, ``cov1`` of ``(x1, x2)``).
"""
from __future__ import annotations

from compat_cases_h import CASES, LAYOUTS, PARAMS, build, inputs  # noqa: E402  (this folder)
from make_compat_reference import write_reference  # noqa: E402
from make_compat_reference_f import DATA, write_part  # noqa: E402

if __name__ == "__main__":
    write_part(CASES, PARAMS, "h")
    write_reference(LAYOUTS, build, inputs, DATA / "nt_compat_reference_h_layouts.json")
