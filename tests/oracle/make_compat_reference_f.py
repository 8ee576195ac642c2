"""Write neural-tangents 0.6.5 reference kernels for issue 19, part F (padded
images, ``mask_constant``; networks in ``compat_cases_f.py``).

Runs ONLY in the oracle virtualenv (see ``make_reference.py``):

    .nt-oracle/venv/bin/python tests/oracle/make_compat_reference_f.py

Output: ``tests/data/nt_compat_reference_f.json`` (NNGP, NTK and ``cov1`` of
each case for ``(x1, x2)`` and the NNGP and NTK of ``(x1, None)``, all with
``mask_constant``, float64; for ``GRAPH_LAYOUTS`` the same with their
patterns) and ``tests/data/nt_params_f.npz`` (for each
``PARAMS`` network the parameters neural-tangents' ``init_fn`` draws and its
``apply_fn(..., mask_constant=)`` output). The writing is that of parts D and E.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

from compat_cases_f import CASES, GRAPH_LAYOUTS, MASK_CONSTANT, PARAMS, build, inputs  # noqa: E402  (this folder)
from make_compat_reference import write_reference  # noqa: E402
from make_compat_reference_d import write_params  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"


def _keywords(data):
    """Padded images: ``mask_constant``; graphs ``(x1, x2, p1, p2)``: their patterns."""
    if len(data) == 4:
        return {"pattern": tuple(data[2:])}, {"pattern": (data[2], data[2])}
    return {"mask_constant": MASK_CONSTANT}, {"mask_constant": MASK_CONSTANT}


def write_part(cases, params, letter):
    """Kernels of ``cases`` and outputs of ``params`` with ``mask_constant``
    (graph cases with their patterns) to ``nt_compat_reference_<letter>.json``
    and ``nt_params_<letter>.npz`` (also part H's writer).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # neural-tangents' warning about a batch axis other than 0
        write_reference(cases, build, inputs, DATA / f"nt_compat_reference_{letter}.json", keywords=_keywords)
    write_params(params, build, inputs, DATA / f"nt_params_{letter}.npz", apply_kwargs={"mask_constant": MASK_CONSTANT})


if __name__ == "__main__":
    write_part({**CASES, **GRAPH_LAYOUTS}, PARAMS, "f")
