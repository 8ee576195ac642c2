"""Benchmark: empirical NTK of a 2-hidden-layer ReLU MLP, width 2048, 128 inputs of dimension 64, float32.

Prints the warm time (best of ``--repeat``, after one compiling call) of
``ntkcourse.empirical.empirical_ntk_fn`` with each implementation, and of a
plain ``jax.jacrev`` Jacobian contraction (the Jacobian of the whole batch's
outputs with respect to all parameters, flattened, times its transpose),
measured in the same run, and the ratio structured / plain. Goal (issue #3):
structured <= 0.2 s on the 2-core reference machine and ratio <= 0.1.
neural-tangents 0.6.5 on that machine: Jacobian contraction 20 s, NTK-vector
products 4.9 s, structured derivatives 1.7 s.

    .venv/bin/python benchmarks/bench_empirical.py [--n 128] [--width 2048] [--repeat 5] [--skip-slow]
"""
import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from _timing import best_time  # benchmarks/_timing.py, next to this script
from ntkcourse import stax
from ntkcourse.empirical import empirical_ntk_fn


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-slow", action="store_true", help="time only 'structured' and the plain jacrev baseline")
    args = parser.parse_args()

    net = stax.serial(
        stax.Dense(args.width, W_std=1.5, b_std=0.05), stax.Relu(),
        stax.Dense(args.width, W_std=1.5, b_std=0.05), stax.Relu(),
        stax.Dense(1, W_std=1.5, b_std=0.05),
    )
    init_fn, apply_fn, _ = net
    x = jnp.asarray(np.random.default_rng(0).standard_normal((args.n, args.d)), jnp.float32)
    _, params = init_fn(jax.random.PRNGKey(0), x.shape)
    n_params = sum(p.size for p in jax.tree_util.tree_leaves(params))
    print(f"MLP 2 x {args.width} ReLU, {n_params / 1e6:.2f} M parameters, {args.n} inputs of dimension {args.d}, "
          f"float32, full {args.n} x {args.n} NTK")

    @jax.jit
    def plain_jacrev(params, x):
        jac = jax.jacrev(lambda p: apply_fn(p, x)[:, 0])(params)
        flat = jnp.concatenate([leaf.reshape(x.shape[0], -1) for leaf in jax.tree_util.tree_leaves(jac)], axis=1)
        return flat @ flat.T

    timings = {}
    reference = None
    impls = ["structured"] if args.skip_slow else ["structured", "jvp_vjp", "jacobian"]
    for impl in impls:
        fn = empirical_ntk_fn(net, implementation=impl)
        t0 = time.perf_counter()
        k = jax.block_until_ready(fn(x, None, params))
        cold = time.perf_counter() - t0
        repeat = args.repeat if impl == "structured" else 1
        timings[impl] = best_time(lambda: fn(x, None, params), repeat)
        if reference is None:
            reference = np.asarray(k)
        err = np.max(np.abs(np.asarray(k) - reference)) / np.max(np.abs(reference))
        print(f"{impl:>11}: first call {cold:7.3f} s, warm {timings[impl]:7.3f} s  "
              f"(max rel. diff. to structured {err:.1e})")

    t0 = time.perf_counter()
    k = jax.block_until_ready(plain_jacrev(params, x))
    cold = time.perf_counter() - t0
    plain = best_time(lambda: plain_jacrev(params, x), 1)
    err = np.max(np.abs(np.asarray(k) - reference)) / np.max(np.abs(reference))
    print(f"{'jax.jacrev':>11}: first call {cold:7.3f} s, warm {plain:7.3f} s  "
          f"(max rel. diff. to structured {err:.1e})")
    print(f"ratio structured / plain jax.jacrev contraction: {timings['structured'] / plain:.4f}  (goal <= 0.1)")
    print(f"structured warm: {timings['structured']:.3f} s  (goal <= 0.2 s)")


if __name__ == "__main__":
    main()
