"""Write neural-tangents 0.6.5 reference values for issue 19, part B:
``GlobalSelfAttention`` kernels, and parameters drawn by neural-tangents'
``init_fn`` with its ``apply_fn`` outputs (to check that they load into this
package's ``apply_fn``).

Runs ONLY in the oracle virtualenv (see ``make_reference.py``):

    .nt-oracle/venv/bin/python tests/oracle/make_compat_reference_b.py

Output: ``tests/data/nt_compat_reference_b.json`` (kernels in float64, the
parameter tree structure as text, the finite outputs) and
``tests/data/nt_params_b.npz`` (the parameter leaves of each ``PARAMS``
network, in ``jax.tree_util`` order, as ``<name>/<i>``).
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
from compat_cases_b import ATTENTION, PARAMS, build, inputs  # noqa: E402

OUT = HERE.parent / "data" / "nt_compat_reference_b.json"
OUT_PARAMS = HERE.parent / "data" / "nt_params_b.npz"


def main():
    ref = {"kernels": {}, "params": {}}
    for name, (kind, spec) in ATTENTION.items():
        x1, x2 = inputs(kind)
        kernel_fn = build(stax, spec)[2]
        k = kernel_fn(x1, x2, ("nngp", "ntk", "cov1"))
        ref["kernels"][name] = {f: np.asarray(getattr(k, f)).tolist() for f in ("nngp", "ntk", "cov1")}
        ref["kernels"][name]["self_nngp"] = np.asarray(kernel_fn(x1, None, "nngp")).tolist()
        print(name, "kernel done", flush=True)
    leaves_out = {}
    for name, (kind, spec) in PARAMS.items():
        x1, _ = inputs(kind)
        init_fn, apply_fn, _ = build(stax, spec)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, params = init_fn(jax.random.PRNGKey(3), x1.shape)
        leaves, treedef = jax.tree_util.tree_flatten(params)
        for i, leaf in enumerate(leaves):
            leaves_out[f"{name}/{i}"] = np.asarray(leaf, np.float64)
        ref["params"][name] = {"treedef": str(treedef), "n_leaves": len(leaves),
                               "output": np.asarray(apply_fn(params, x1)).tolist()}
        print(name, "params done", flush=True)
    OUT.write_text(json.dumps(ref) + "\n")
    np.savez_compressed(OUT_PARAMS, **leaves_out)
    print("wrote", OUT, OUT_PARAMS)


if __name__ == "__main__":
    main()
