"""Benchmark: kernel regression on 1 and on 2 JAX processes of this machine (jax.distributed over localhost).

Runs ``python -m ntkcourse.solve.cluster_run`` (5-hidden-layer ReLU NTK,
``--n`` points of S^15, kernel held in row blocks of 500, Nyström
preconditioner of 300 landmarks, tol 1e-8) once with one process, then with
two processes joined by ``jax.distributed`` on a free localhost port, and
prints each process's time (kernel + preconditioner + CG + predictions, after
start-up), the speed-up, and the largest difference of the predictions.

With ``--pin`` (Linux) every process is bound to one core of its own (the single
process to core 0; the two processes to cores 0 and 1), which is what each
process has on a cluster where it runs on a host of its own. Without it, every
process's XLA thread pool spreads over all cores of this machine, so one process
already uses both cores and two processes compete for them.

    .venv/bin/python benchmarks/bench_processes.py [--n 6000] [--pin]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile

import numpy as np


def _pinned_to(core):
    cores = sorted(os.sched_getaffinity(0))
    return lambda: os.sched_setaffinity(0, {cores[core]})


def _run(commands, timeout, pin=False):
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              preexec_fn=_pinned_to(i) if pin else None)
             for i, c in enumerate(commands)]
    try:
        outs = [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [json.loads(o.strip().splitlines()[-1]) for o in outs]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6000)
    parser.add_argument("--pin", action="store_true", help="bind each process to one core of its own")
    args = parser.parse_args()
    if args.pin and (not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2):
        parser.error("--pin needs Linux and at least 2 cores this process may use")
    base = [sys.executable, "-m", "ntkcourse.solve.cluster_run", "--n", str(args.n), "--block-size", "500"]
    with tempfile.TemporaryDirectory() as tmp:
        (one,) = _run([base + ["--out", f"{tmp}/one.npz"]], 1800, args.pin)
        print(f"1 process: {one['seconds']:.1f} s ({one['iterations']} iterations)", flush=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        two = base + ["--num-processes", "2", "--coordinator", f"127.0.0.1:{port}"]
        reports = _run([two + ["--process-id", "0", "--out", f"{tmp}/two.npz"], two + ["--process-id", "1"]], 1800,
                       args.pin)
        diff = np.max(np.abs(np.load(f"{tmp}/one.npz")["test"] - np.load(f"{tmp}/two.npz")["test"]))
    t2 = max(r["seconds"] for r in reports)
    pinned = " (one core per process)" if args.pin else ""
    print(f"n = {args.n}{pinned}: 1 process {one['seconds']:.1f} s ({one['iterations']} iterations); 2 processes "
          f"{t2:.1f} s (slower of the two); speed-up {one['seconds'] / t2:.2f}; each of the 2 held "
          f"{reports[0]['held_bytes'] / 1e9:.3f} GB against {one['held_bytes'] / 1e9:.3f} GB; largest difference of "
          f"the predictions {diff:.1e}")


if __name__ == "__main__":
    main()
