"""Benchmark: convolutional kernels on scikit-learn's digits (issue 12).

Network: three ``Conv(1, (3, 3), padding='SAME', W_std=sqrt 2, b_std=0) + Relu``,
then ``GlobalAvgPool`` (CNTK-GAP) or ``Flatten`` (CNTK-V), then ``Dense(1)``;
NNGP and NTK together, float64, ``x2=None``, on the digits of
``ntkcourse.data.load_digits``. Each case runs in a fresh process, so that
its peak memory (resident set) is its own. Cases and goals:

* ``gap200``: 200 digits, warm; against neural-tangents 0.6.5 run in the same
  session from its own environment (``.nt-oracle/venv``; skipped with a
  message when absent): goal >= 15x faster;
* ``gap-all``: all 1797 digits with GlobalAvgPool: goal <= 120 s, peak <= 8 GB;
* ``flatten-all``: all 1797 digits with Flatten: goal <= 10 s.

For each it prints the arithmetic floor: the floating-point operations the
recursion needs (an estimate: per entry of the kernel, per layer, the 9-term
window sum of NNGP and NTK and the arc-cosine dual, ~70 operations), over the
pairs computed (half of them, by symmetry), at the machine's measured rate of
float64 matrix products (numpy), an optimistic rate for this kind of work.

    .venv/bin/python benchmarks/bench_cnn.py [--cases gap200 gap-all flatten-all] [--repeat 3]
        [--nt-python PATH/TO/.nt-oracle/venv/bin/python]

``--nt-python`` names the Python of neural-tangents' environment when it is not
this checkout's ``.nt-oracle/venv`` (e.g. another checkout's).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ORACLE_PY = ROOT / ".nt-oracle" / "venv" / "bin" / "python"
CASES = {"gap200": (200, "gap"), "gap-all": (1797, "gap"), "flatten-all": (1797, "flatten")}
OPS_PER_ENTRY_LAYER = 70
LAYERS = 3


def flop_rate(repeat=3):
    a = np.random.default_rng(0).standard_normal((1500, 1500))
    best = min(_timed(lambda: a @ a) for _ in range(repeat))
    return 2 * 1500**3 / best


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_case(name, repeat):
    """Run in this (fresh) process; print one JSON line."""
    import jax

    from ntkcourse import stax
    from ntkcourse.data import load_digits

    n, readout = CASES[name]
    layers = []
    for _ in range(LAYERS):
        layers += [stax.Conv(1, (3, 3), padding="SAME", W_std=2**0.5, b_std=0.0), stax.Relu()]
    head = stax.GlobalAvgPool() if readout == "gap" else stax.Flatten()
    _, _, kernel_fn = stax.serial(*layers, head, stax.Dense(1))
    x = load_digits().images[:n]

    def once():
        k = kernel_fn(x, None, ("nngp", "ntk"))
        jax.block_until_ready(k)
        return k

    cold = _timed(once)
    warm = min(_timed(once) for _ in range(repeat)) if repeat else cold
    k = once()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"case": name, "n": n, "first_s": cold, "warm_s": warm, "peak_bytes": peak,
                      "ntk_00": float(k.ntk[0, 0])}))


def floor_seconds(n, readout, rate):
    entries = 64 * 64 if readout == "gap" else 64
    pairs = n * (n + 1) / 2
    return pairs * entries * LAYERS * OPS_PER_ENTRY_LAYER / rate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--nt-python", type=Path, default=ORACLE_PY,
                        help="the Python of neural-tangents' environment (default: .nt-oracle/venv/bin/python)")
    parser.add_argument("--run-case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_case:
        run_case(args.run_case, args.repeat)
        return
    rate = flop_rate()
    print(f"machine: float64 matrix product rate {rate / 1e9:.1f} GFLOP/s (numpy, {os.cpu_count()} cores)")
    for name in args.cases:
        n, readout = CASES[name]
        repeat = args.repeat if name == "gap200" else 1
        out = subprocess.run([sys.executable, __file__, "--run-case", name, "--repeat", str(repeat)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        floor = floor_seconds(n, readout, rate)
        print(f"{name:12s} {n} digits, {readout}: first call {r['first_s']:.2f} s, warm {r['warm_s']:.2f} s, "
              f"peak memory {r['peak_bytes'] / 1e9:.2f} GB; arithmetic floor ~{floor:.2f} s "
              f"(ratio to floor {r['warm_s'] / floor:.1f})")
        if name == "gap200":
            if args.nt_python.exists():
                nt = subprocess.run([str(args.nt_python), str(ROOT / "benchmarks" / "nt_cnn_timing.py"), "--n", str(n)],
                                    capture_output=True, text=True)
                if nt.returncode == 0:
                    ref = json.loads(nt.stdout.strip().splitlines()[-1])
                    agree = abs(ref["ntk_00"] - r["ntk_00"]) / abs(ref["ntk_00"])
                    print(f"{'':12s} neural-tangents 0.6.5 warm {ref['warm_s']:.2f} s (first {ref['first_s']:.2f} s): "
                          f"speed-up {ref['warm_s'] / r['warm_s']:.1f}x (goal >= 15); NTK[0,0] agrees to {agree:.1e}")
                else:
                    print(f"{'':12s} neural-tangents run failed: {nt.stderr.strip().splitlines()[-1:]}")
            else:
                print(f"{'':12s} neural-tangents not measured: no {args.nt_python} "
                      "(see tests/oracle/make_reference.py, or pass --nt-python)")


if __name__ == "__main__":
    main()
