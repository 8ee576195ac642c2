"""Write neural-tangents 0.6.5 reference kernels for the cases of ``nt_cases.py``.

Runs ONLY in the oracle virtualenv (neural-tangents does not import on current
jax).  To rebuild the oracle environment and regenerate the data, from the
repository root:

    python3 -m venv .nt-oracle/venv
    .nt-oracle/venv/bin/pip install jax==0.4.23 jaxlib==0.4.23 "numpy<2" \
        "scipy<1.13" tf2jax==0.3.6 neural-tangents==0.6.5
    .nt-oracle/venv/bin/python tests/oracle/make_reference.py

(``.nt-oracle/`` is git-ignored.)  Outputs:

* ``tests/data/nt_reference.npz``: for every case ``"<case>/nngp"`` and
  ``"<case>/ntk"``, exactly as neural-tangents returns them from
  ``kernel_fn(x1, x2_or_None, ("nngp", "ntk"))`` in float64; the inputs as
  ``"inputs/fc/x1"``, ``"inputs/fc/x2"``, ``"inputs/image/x1"``,
  ``"inputs/image/x2"``.  For cases whose output kernel keeps spatial axes and
  that neural-tangents returns with the spatial axes in REVERSED order
  (``is_reversed``: after an odd number of shared-weight Conv layers, shape
  ``(N1, N2, W, W, H, H)``), also ``"<case>/nngp_canonical"`` and
  ``"<case>/ntk_canonical"`` with the spatial pairs put back in input order
  ``(N1, N2, H, H, W, W)``.
* ``tests/data/nt_reference.json``: versions, the input seed, and per case its
  spec, input kind, x2 flag, output shapes and ``is_reversed``.

Options: ``--only NAME [NAME ...]`` to compute a subset (prints, writes
nothing).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import neural_tangents  # noqa: E402
from neural_tangents import stax  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import nt_cases  # noqa: E402

DATA = ROOT / "tests" / "data"
NPZ = DATA / "nt_reference.npz"
JSON = DATA / "nt_reference.json"


def _unreverse(a):
    """(N1, N2, S_k, S_k, ..., S_1, S_1) -> (N1, N2, S_1, S_1, ..., S_k, S_k)."""
    a = np.asarray(a)
    n_sp = (a.ndim - 2) // 2
    order = [0, 1]
    for i in reversed(range(n_sp)):
        order += [2 + 2 * i, 3 + 2 * i]
    return np.transpose(a, order)


def compute(case, inputs):
    _, _, kernel_fn = nt_cases.build(case["net"], stax, jnp)
    x1, x2 = inputs[case["input"]]
    k = kernel_fn(jnp.asarray(x1), jnp.asarray(x2) if case["x2"] else None,
                  ("nngp", "ntk"))
    # is_reversed is only visible on the full Kernel object.
    k_full = kernel_fn(jnp.asarray(x1), jnp.asarray(x2) if case["x2"] else None,
                       None)
    nngp = np.asarray(k.nngp, dtype=np.float64)
    ntk = np.asarray(k.ntk, dtype=np.float64)
    assert nngp.dtype == np.float64 and k.nngp.dtype == jnp.float64
    return nngp, ntk, bool(k_full.is_reversed), bool(k_full.diagonal_spatial)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", default=None)
    args = ap.parse_args(argv)

    inputs = {kind: nt_cases.make_inputs(kind, nt_cases.INPUT_SEED)
              for kind in ("fc", "image")}
    cases = nt_cases.CASES
    if args.only:
        cases = [nt_cases.case_by_name(n) for n in args.only]

    arrays = {}
    for kind, (x1, x2) in inputs.items():
        arrays[f"inputs/{kind}/x1"] = x1
        arrays[f"inputs/{kind}/x2"] = x2

    meta_cases = []
    failures = []
    for case in cases:
        name = case["name"]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ElementwiseNumerical warns
                nngp, ntk, is_rev, diag_sp = compute(case, inputs)
        except Exception as e:  # report and keep going
            failures.append((name, f"{type(e).__name__}: {e}"))
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            continue
        if not (np.all(np.isfinite(nngp)) and np.all(np.isfinite(ntk))):
            failures.append((name, "non-finite values"))
            print(f"FAIL {name}: non-finite values", flush=True)
            continue
        arrays[f"{name}/nngp"] = nngp
        arrays[f"{name}/ntk"] = ntk
        entry = {
            "name": name,
            "net": case["net"],
            "input": case["input"],
            "x2": case["x2"],
            "nngp_shape": list(nngp.shape),
            "ntk_shape": list(ntk.shape),
            "is_reversed": is_rev,
        }
        if is_rev and nngp.ndim > 2:
            arrays[f"{name}/nngp_canonical"] = _unreverse(nngp)
            arrays[f"{name}/ntk_canonical"] = _unreverse(ntk)
            entry["canonical_shape"] = list(_unreverse(nngp).shape)
        meta_cases.append(entry)
        print(f"ok   {name:40s} nngp{tuple(nngp.shape)} reversed={is_rev}",
              flush=True)

    # The networks listed in nt_cases.DROPPED must still be refused.
    dropped = []
    for case in ([] if args.only else nt_cases.DROPPED):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                compute(dict(case, x2=False), inputs)
        except Exception as e:
            print(f"drop {case['name']}: still refused ({type(e).__name__})")
            dropped.append({"name": case["name"], "net": case["net"],
                            "error": f"{type(e).__name__}: {e}"})
        else:
            failures.append((case["name"], "DROPPED case no longer raises"))

    if failures:
        print(f"\n{len(failures)} case(s) failed in neural-tangents:")
        for n, msg in failures:
            print(f"  {n}: {msg}")
        return 1
    if args.only:
        return 0

    meta = {
        "generator": "tests/oracle/make_reference.py",
        "neural_tangents_version": neural_tangents.__version__,
        "jax_version": jax.__version__,
        "jaxlib_version": importlib.metadata.version("jaxlib"),
        "numpy_version": np.__version__,
        "jax_enable_x64": True,
        "get": ["nngp", "ntk"],
        "input_seed": nt_cases.INPUT_SEED,
        "input_shapes": {f"{kind}/{which}": list(v.shape)
                         for kind, xs in inputs.items()
                         for which, v in zip(("x1", "x2"), xs)},
        "n_cases": len(meta_cases),
        "case_names": [c["name"] for c in meta_cases],
        "cases": meta_cases,
        "dropped": dropped,
    }
    DATA.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(NPZ, **arrays)
    JSON.write_text(json.dumps(meta, indent=1) + "\n")
    print(f"\nwrote {NPZ.relative_to(ROOT)} ({NPZ.stat().st_size} bytes, "
          f"{len(arrays)} arrays) and {JSON.relative_to(ROOT)}: "
          f"{len(meta_cases)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
