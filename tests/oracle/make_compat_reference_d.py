"""Write neural-tangents 0.6.5 reference kernels for issue 19, part D
(``ConvTranspose``, ``ConvLocal``, ``DotGeneral``, the layout arguments;
networks in ``compat_cases_d.py``).

Runs ONLY in the oracle virtualenv (see ``make_reference.py``):

    .nt-oracle/venv/bin/python tests/oracle/make_compat_reference_d.py

Output: ``tests/data/nt_compat_reference_d.json``: for each case the NNGP,
NTK and ``cov1`` (float64) as neural-tangents returns them for the inputs of
``compat_cases_d.inputs``; ``tests/data/nt_params_d.npz``: for each ``PARAMS``
network the parameters neural-tangents' ``init_fn`` draws (leaves in
``jax.tree_util`` order, ``<name>/<i>``) and its ``apply_fn`` output
(``<name>/output``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compat_cases_d import CASES, PARAMS, build, inputs  # noqa: E402
from make_compat_reference import write_reference  # noqa: E402

OUT = HERE.parent / "data" / "nt_compat_reference_d.json"
OUT_PARAMS = HERE.parent / "data" / "nt_params_d.npz"


def write_params(networks, build, inputs, out, apply_kwargs=None):
    """For each network ``{name: (input kind, spec)}``: the parameters
    neural-tangents' ``init_fn`` draws and its ``apply_fn`` output, to ``out``.
    ``apply_kwargs``: keyword arguments of ``apply_fn`` (e.g. ``mask_constant``;
    a masked output is stored with its masked entries zero, ``stax.unmask_fn``).
    """
    from neural_tangents import stax

    arrays = {}
    for name, (kind, spec) in networks.items():
        x1, _ = inputs(kind)
        init_fn, apply_fn, _ = build(stax, spec)
        _, params = init_fn(jax.random.PRNGKey(5), x1.shape)
        for i, leaf in enumerate(jax.tree_util.tree_leaves(params)):
            arrays[f"{name}/{i}"] = np.asarray(leaf, np.float64)
        if apply_kwargs:
            apply_fn = stax.unmask_fn(apply_fn)
        arrays[f"{name}/output"] = np.asarray(apply_fn(params, x1, **(apply_kwargs or {})), np.float64)
    np.savez_compressed(out, **arrays)
    print("wrote", out, len(networks), "networks")


def main():
    write_reference(CASES, build, inputs, OUT)
    write_params(PARAMS, build, inputs, OUT_PARAMS)


if __name__ == "__main__":
    main()
