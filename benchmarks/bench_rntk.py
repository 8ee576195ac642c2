"""Benchmark: RNTK Gram matrices of UCR sets (``stax.Recurrent``), float64.

1. ItalyPowerDemand, all 1,096 series (train and test, length 24), every
   pair, NNGP and NTK of ``Recurrent(Relu) -> Dense``: first call and warm
   time (best of ``--repeat``). Goal (issue #13): <= 2 s warm.
2. The arithmetic floor of (1): one evaluation of the ReLU dual (NNGP and
   derivative, fused) over all n^2 pairs, times the T steps of the recursion,
   compiled alone: no recurrent layer can do less arithmetic than that.
3. The same Gram under a 0.5 GB memory budget (blocks), and the largest
   difference to the unconstrained result.
4. ArrowHead (211 series of length 251): warm time.
5. PickupGestureWiimoteZ (100 series, lengths 29-361, NaN padding,
   ``mask_constant=nan``): every pair of steps (t, t') is needed, O(T T') per
   pair: warm time.

Times are wall-clock and CPU seconds of this process; on a shared machine
the wall time depends on the load, which is printed.

    .venv/bin/python benchmarks/bench_rntk.py [--repeat 3] [--skip-long]
"""
from __future__ import annotations

import argparse
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from _timing import best_time  # benchmarks/_timing.py, next to this script
from ntkcourse import dual, stax
from ntkcourse.data import load_ucr
from ntkcourse.engine import ExecutionPlan


def network():
    return stax.serial(
        stax.Recurrent(1, stax.Relu(), W_std=math.sqrt(2.0), U_std=1.0, b_std=0.1),
        stax.Dense(1, W_std=1.0),
    )


def timed(label, fn, repeat):
    c0, t0 = time.process_time(), time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    c1 = time.process_time()
    warm = best_time(fn, repeat)
    cpu = (time.process_time() - c1) / repeat
    print(f"{label}: first call {first:.2f} s (cpu {c1 - c0:.2f} s); warm {warm:.3f} s (cpu {cpu:.3f} s per call)")
    return out, warm


def floor(n, T, repeat):
    act = dual.relu()

    @jax.jit
    def one_step(v, c):
        a, b = v[:, None], v[None, :]
        return act.nngp(a, b, c) + act.dnngp(a, b, c)

    with jax.enable_x64(True):
        v = jnp.asarray(np.random.default_rng(0).uniform(1, 2, n))
        c = 0.5 * jnp.outer(jnp.sqrt(v), jnp.sqrt(v))
        t = best_time(lambda: one_step(v, c), repeat)
    print(f"arithmetic floor: one fused ReLU dual over {n}^2 pairs {t:.3f} s, x T = {T}: {t * T:.3f} s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-long", action="store_true", help="only ItalyPowerDemand")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs, jax {jax.__version__}")
    kernel_fn = network()[2]

    d = load_ucr("ItalyPowerDemand")
    x = np.concatenate([d.x_train, d.x_test])
    k, _ = timed(f"ItalyPowerDemand {x.shape}, NNGP+NTK", lambda: kernel_fn(x, None, ("nngp", "ntk")), args.repeat)
    floor(x.shape[0], x.shape[1], args.repeat)
    small = ExecutionPlan(memory_budget="0.5GB")
    kb, _ = timed("  same, memory budget 0.5 GB", lambda: kernel_fn(x, None, ("nngp", "ntk"), plan=small), 1)
    print(f"  max |difference| to the unconstrained Gram: "
          f"{max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(k, kb)):.2e}")
    if args.skip_long:
        return
    a = load_ucr("ArrowHead")
    xa = np.concatenate([a.x_train, a.x_test])
    timed(f"ArrowHead {xa.shape}, NNGP+NTK", lambda: kernel_fn(xa, None, ("nngp", "ntk")), args.repeat)
    p = load_ucr("PickupGestureWiimoteZ")
    xp = np.concatenate([p.x_train, p.x_test])
    timed(f"PickupGestureWiimoteZ {xp.shape}, padded, NNGP+NTK over every (t, t')",
          lambda: kernel_fn(xp, None, ("nngp", "ntk"), mask_constant=np.nan), 1)


if __name__ == "__main__":
    main()
