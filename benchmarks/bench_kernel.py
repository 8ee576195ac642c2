"""Benchmark: NNGP + NTK of a 5-hidden-layer ReLU MLP for 4000 inputs of dimension 784.

Prints the warm time of ``kernel_fn`` (float64, x2=None), the time of one
X @ X.T product in NumPy float64 on the same data (the floor: every kernel
method computes it), and their ratio. Goal (issue #2): ratio <= 2, i.e.
<= 0.6 s on the 2-core reference machine, where neural-tangents 0.6.5 takes 3.1 s.

    .venv/bin/python benchmarks/bench_kernel.py [--n 4000] [--repeat 5]
"""
import argparse
import time

import jax
import numpy as np

from _timing import best_time  # benchmarks/_timing.py, next to this script
from ntkcourse import stax


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--d", type=int, default=784)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    layers = []
    for _ in range(args.depth):
        layers += [stax.Dense(512, W_std=1.5, b_std=0.05), stax.Relu()]
    _, _, kernel_fn = stax.serial(*layers, stax.Dense(1, W_std=1.5, b_std=0.05))
    x = np.random.default_rng(0).standard_normal((args.n, args.d))

    def run_kernel():
        k = kernel_fn(x, None, ("nngp", "ntk"))
        jax.block_until_ready(k.ntk)

    t0 = time.perf_counter()
    run_kernel()
    cold = time.perf_counter() - t0
    warm = best_time(run_kernel, args.repeat)
    gram = best_time(lambda: x @ x.T, args.repeat)
    print(f"inputs: {args.n} x {args.d}, {args.depth} hidden ReLU layers, NNGP+NTK, float64")
    print(f"kernel_fn first call (compile + run): {cold:.3f} s")
    print(f"kernel_fn warm (best of {args.repeat}):        {warm:.3f} s")
    print(f"numpy X @ X.T (best of {args.repeat}):         {gram:.3f} s")
    print(f"ratio kernel_fn / X @ X.T:             {warm / gram:.2f}  (goal <= 2)")


if __name__ == "__main__":
    main()
