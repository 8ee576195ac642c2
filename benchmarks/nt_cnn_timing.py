"""Time neural-tangents 0.6.5 on the CNN benchmark (oracle venv ONLY).

Run with the oracle virtualenv's python (see ``tests/oracle/make_reference.py``
for how to build ``.nt-oracle/venv``; it also needs scikit-learn):

    .nt-oracle/venv/bin/python benchmarks/nt_cnn_timing.py --n 200

The network and data are those of ``benchmarks/bench_cnn.py``: three
``Conv(1, (3, 3), padding='SAME', W_std=sqrt 2, b_std=0) + Relu``, then
``GlobalAvgPool`` (or ``Flatten``) and ``Dense(1)``, on the first ``n``
scikit-learn digits (each image standardised over its 64 pixels), NNGP and NTK
together, float64, ``x2=None``, ``jax.jit(kernel_fn, static_argnames='get')``:
one call to compile, then the best of ``--repeat``. Prints one JSON line.
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

from neural_tangents import stax  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--readout", choices=("gap", "flatten"), default="gap")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    x = load_digits().data[: args.n] / 16.0
    x = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    x = x.reshape(-1, 8, 8, 1)
    layers = []
    for _ in range(3):
        layers += [stax.Conv(1, (3, 3), padding="SAME", W_std=2**0.5, b_std=0.0), stax.Relu()]
    readout = stax.GlobalAvgPool() if args.readout == "gap" else stax.Flatten()
    _, _, kernel_fn = stax.serial(*layers, readout, stax.Dense(1))
    fn = jax.jit(kernel_fn, static_argnames="get")
    t0 = time.perf_counter()
    jax.block_until_ready(fn(x, None, ("nngp", "ntk")))
    cold = time.perf_counter() - t0
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        k = fn(x, None, ("nngp", "ntk"))
        jax.block_until_ready(k)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"n": args.n, "readout": args.readout, "first_s": cold, "warm_s": min(times),
                      "ntk_00": float(k.ntk[0, 0])}))


if __name__ == "__main__":
    main()
