"""Benchmark: neural-tangents' own convolutional examples, with this package and with neural-tangents (issue 19).

Two workloads, written as a neural-tangents user writes them and run with
either library (``import ntkcourse as nt`` or ``import neural_tangents as
nt``, nothing else changed), 64-bit, compile time included:

* ``wrn``: the WideResNet of neural-tangents' README
  (``WideResnet(block_size=4, k=1, num_classes=10)``: 25 convolutions, 12
  residual blocks, ``AvgPool((8, 8))``, ``Flatten``, ``Dense``), called as the
  README does, ``kernel_fn(x, None, ('nngp', 'ntk'))`` without ``jit``, on
  4 random 32 x 32 x 3 images (the README gives no inputs; these are ours);
* ``myrtle``: the network of neural-tangents' notebook
  ``myrtle_kernel_with_neural_tangents.ipynb`` (Shankar et al. 2020, depth
  5), ``jit(kernel_fn, static_argnames='get')``, ``ker_fn(x1, None, 'nngp')``
  on 10 random 32 x 32 x 3 images, as in the notebook;
* ``myrtle_ntk``: the same with ``get=('nngp', 'ntk')`` (the notebook's
  third timing cell).

The inputs are drawn by NumPy (seed 0), identical in both environments. For
each it prints the first call (compilation included) and the best of the
next ``--repeat`` calls, for each library, measured one after the other in
the same run, and how far the two kernels differ. neural-tangents runs from
its own environment (``--nt-python``; see ``tests/oracle/``); without it that
side is skipped with a message.

    .venv/bin/python benchmarks/bench_nt_examples.py [--cases wrn myrtle] [--repeat 1]
        [--nt-python PATH/TO/.nt-oracle/venv/bin/python]
"""
import argparse
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ORACLE_PY = ROOT / ".nt-oracle" / "venv" / "bin" / "python"
CASES = ("wrn", "myrtle", "myrtle_ntk")


def wide_resnet(stax, block_size=4, k=1, num_classes=10):
    """neural-tangents' README WideResNet, with the given ``stax`` module."""

    def block(channels, strides=(1, 1), channel_mismatch=False):
        main = stax.serial(stax.Relu(), stax.Conv(channels, (3, 3), strides, padding="SAME"),
                           stax.Relu(), stax.Conv(channels, (3, 3), padding="SAME"))
        shortcut = (stax.Conv(channels, (3, 3), strides, padding="SAME") if channel_mismatch
                    else stax.Identity())
        return stax.serial(stax.FanOut(2), stax.parallel(main, shortcut), stax.FanInSum())

    def group(n, channels, strides=(1, 1)):
        return stax.serial(block(channels, strides, channel_mismatch=True),
                           *[block(channels) for _ in range(n - 1)])

    return stax.serial(stax.Conv(16, (3, 3), padding="SAME"), group(block_size, int(16 * k)),
                       group(block_size, int(32 * k), (2, 2)), group(block_size, int(64 * k), (2, 2)),
                       stax.AvgPool((8, 8)), stax.Flatten(), stax.Dense(num_classes, 1.0, 0.0))


def myrtle(stax, depth=5, W_std=2**0.5, b_std=0.0):
    """The Myrtle network of neural-tangents' notebook (Shankar et al. 2020)."""
    factor = {5: [2, 1, 1], 7: [2, 2, 2], 10: [3, 3, 3]}[depth]
    conv = functools.partial(stax.Conv, W_std=W_std, b_std=b_std, padding="SAME")
    layers = [conv(1, (3, 3)), stax.Relu()] * factor[0] + [stax.AvgPool((2, 2), strides=(2, 2))]
    layers += [conv(1, (3, 3)), stax.Relu()] * factor[1] + [stax.AvgPool((2, 2), strides=(2, 2))]
    layers += [conv(1, (3, 3)), stax.Relu()] * factor[2] + [stax.AvgPool((2, 2), strides=(2, 2))] * 3
    layers += [stax.Flatten(), stax.Dense(10, W_std, b_std)]
    return stax.serial(*layers)


def run_case(case, lib, repeat):
    """Run one case with one library in this process; print one JSON line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import jax

    jax.config.update("jax_enable_x64", True)
    if lib == "nt":
        from neural_tangents import stax
    else:
        from ntkcourse import stax
    rng = np.random.default_rng(0)
    if case == "wrn":
        _, _, kernel_fn = wide_resnet(stax)
        x = rng.standard_normal((4, 32, 32, 3))
        get = ("nngp", "ntk")
    else:
        _, _, kernel_fn = myrtle(stax)
        kernel_fn = jax.jit(kernel_fn, static_argnames="get")
        x = rng.standard_normal((10, 32, 32, 3))
        get = "nngp" if case == "myrtle" else ("nngp", "ntk")
    x = jax.numpy.asarray(x)

    def once():
        t0, c0 = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(kernel_fn(x, None, get))
        return time.perf_counter() - t0, time.process_time() - c0, out

    first, first_cpu, out = once()
    warm = [once()[:2] for _ in range(repeat)]
    value = np.asarray(out[-1] if isinstance(out, tuple) else out)
    np.save(f"/tmp/bench_nt_examples_{case}_{lib}.npy", value)
    print(json.dumps({"case": case, "lib": lib, "first_s": first, "first_cpu_s": first_cpu,
                      "warm_s": min(w[0] for w in warm) if warm else None,
                      "warm_cpu_s": min(w[1] for w in warm) if warm else None}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--nt-python", type=Path, default=ORACLE_PY)
    parser.add_argument("--run-case", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_case:
        run_case(args.run_case[0], args.run_case[1], args.repeat)
        return
    for case in args.cases:
        results = {}
        sides = [("ntkcourse", sys.executable)]
        if args.nt_python.exists():
            sides.append(("nt", str(args.nt_python)))
        else:
            print(f"{case}: neural-tangents not measured: no {args.nt_python} (pass --nt-python)")
        for lib, python in sides:
            out = subprocess.run([python, __file__, "--run-case", case, lib, "--repeat", str(args.repeat)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{case} {lib}: failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results[lib] = r
            warm = "" if r["warm_s"] is None else f", then {r['warm_s']:.2f} s (CPU {r['warm_cpu_s']:.1f} s)"
            print(f"{case:7s} {lib:10s} first call {r['first_s']:.2f} s (CPU {r['first_cpu_s']:.1f} s){warm}")
        if len(results) == 2:
            a = np.load(f"/tmp/bench_nt_examples_{case}_ntkcourse.npy")
            b = np.load(f"/tmp/bench_nt_examples_{case}_nt.npy")
            rel = float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
            ratio = results["ntkcourse"]["first_s"] / results["nt"]["first_s"]
            print(f"{case:7s} first-call ratio ours/neural-tangents {ratio:.2f}; "
                  f"kernels agree to {rel:.1e} (max relative to the largest entry)")


if __name__ == "__main__":
    main()
