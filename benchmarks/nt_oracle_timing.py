"""Time neural-tangents 0.6.5 on the project's reference benchmark (oracle venv ONLY).

This script imports ``neural_tangents``, which does not import on current jax:
run it with the oracle virtualenv's python, from the repository root:

    .nt-oracle/venv/bin/python benchmarks/nt_oracle_timing.py [--n 4000]

(see ``tests/oracle/make_reference.py`` for how to build ``.nt-oracle/venv``).

Benchmark: fully-connected ReLU network with 5 hidden layers,
``Dense(512, W_std=1.5, b_std=0.05) + Relu`` five times then ``Dense(1)``
(NTK parameterization), NNGP and NTK together, float64, ``N`` inputs of
dimension 784 drawn from a standard normal (``numpy.random.default_rng(0)``),
``x2=None``.  Warm timing: ``jax.jit(kernel_fn, static_argnames="get")``, one
call to compile, then the best of 3 calls with ``block_until_ready``.  For
scale it also times one ``x @ x.T`` in numpy float64 on the same data (best of
3).  Prints a JSON line with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import neural_tangents  # noqa: E402
from neural_tangents import stax  # noqa: E402


def network(depth=5, width=512, W_std=1.5, b_std=0.05):
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=W_std, b_std=b_std), stax.Relu()]
    layers.append(stax.Dense(1, W_std=W_std, b_std=b_std))
    return stax.serial(*layers)


def best_of(fn, repeats=3):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--dim", type=int, default=784)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    x_np = np.random.default_rng(0).standard_normal((args.n, args.dim))
    x = jnp.asarray(x_np, dtype=jnp.float64)

    _, _, kernel_fn = network()
    kfn = jax.jit(kernel_fn, static_argnames="get")

    def run_nt():
        k = kfn(x, None, ("nngp", "ntk"))
        jax.block_until_ready(k)
        return k

    t0 = time.perf_counter()
    k = run_nt()
    compile_and_first = time.perf_counter() - t0
    assert k.nngp.dtype == jnp.float64 and k.nngp.shape == (args.n, args.n)
    nt_best, nt_all = best_of(run_nt, args.repeats)

    gram_best, gram_all = best_of(lambda: x_np @ x_np.T, args.repeats)

    result = {
        "benchmark": "fc_relu_5x512_nngp+ntk_float64",
        "n": args.n,
        "dim": args.dim,
        "neural_tangents": neural_tangents.__version__,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "nt_first_call_s": round(compile_and_first, 3),
        "nt_warm_best_s": round(nt_best, 3),
        "nt_warm_all_s": [round(t, 3) for t in nt_all],
        "numpy_gram_best_s": round(gram_best, 3),
        "numpy_gram_all_s": [round(t, 3) for t in gram_all],
        "ntk_trace_check": float(jnp.trace(k.ntk)),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
