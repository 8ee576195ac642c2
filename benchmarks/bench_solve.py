"""Benchmark: NTK regression of a 5-hidden-layer ReLU MLP by Nyström-preconditioned CG, up to n = 30,000.

For each size ``n`` (each in a fresh process, so that its peak memory is its
own) this prints the time to compute and hold the kernel, to build the
preconditioner, to solve to a relative residual ``≤ 1e-6``, the number of
iterations, the residual reached and the peak resident memory; at
``n = 4000`` it also solves densely (``ntkcourse.dynamics.kernel_regression``,
Cholesky) and prints the largest difference of the test predictions; at the
end, the exponent of time ∝ n^p fitted over the sizes.

Data: inputs uniform on the sphere S^15 (16 dimensions), targets
``sin(3 x·u) + ½ cos(2 x·v)`` for fixed unit ``u, v``, plus noise 0.1; 1000
test points. Kernel: ``serial([Dense(512, W_std=√2, b_std=0.1), Relu()] × 5,
Dense(1, W_std=√2, b_std=0.1))``, NTK. Ridge ``ρ = 10⁻³ · tr K / n``, the
mean diagonal estimated from 1000 evenly spaced diagonal entries.

    .venv/bin/python benchmarks/bench_solve.py [--sizes 7500 15000 30000] [--landmarks 1000]
"""
import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def _kernel_fn():
    from ntkcourse import stax

    layers = []
    for _ in range(5):
        layers += [stax.Dense(512, W_std=2**0.5, b_std=0.1), stax.Relu()]
    return stax.serial(*layers, stax.Dense(1, W_std=2**0.5, b_std=0.1))[2]


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n + 1000, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    u, v = np.eye(16)[0], np.eye(16)[1]
    y = np.sin(3 * x @ u) + 0.5 * np.cos(2 * x @ v) + 0.1 * rng.standard_normal(n + 1000)
    return x[:n], y[:n], x[n:]


def one_size(n, landmarks, dense):
    from ntkcourse import dynamics
    from ntkcourse.solve import conjugate_gradient, cross_kernel_product, kernel_operator, nystrom_preconditioner

    kernel_fn = _kernel_fn()
    x, y, xt = _data(n)
    out = {"n": n}
    t0 = time.perf_counter()
    op = kernel_operator(kernel_fn, x, "ntk", store="hold", block_size=1000)
    out["kernel_s"] = time.perf_counter() - t0
    diag = op.columns(np.arange(0, n, max(1, n // 1000)))
    trace_est = float(np.mean([diag[i * max(1, n // 1000), i] for i in range(diag.shape[1])]))
    ridge = 1e-3 * trace_est
    out["ridge"] = ridge
    t0 = time.perf_counter()
    pre = nystrom_preconditioner(op, landmarks, ridge)
    out["preconditioner_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = conjugate_gradient(op, y, ridge=ridge, preconditioner=pre, tol=1e-6, max_iter=1000)
    out["solve_s"] = time.perf_counter() - t0
    out["iterations"] = res.iterations
    out["relative_residual"] = res.relative_residual
    t0 = time.perf_counter()
    pred = cross_kernel_product(kernel_fn, xt, x, res.solution, "ntk", block_size=1000)
    out["predict_s"] = time.perf_counter() - t0
    out["total_s"] = out["kernel_s"] + out["preconditioner_s"] + out["solve_s"] + out["predict_s"]
    if dense:
        del op, pre
        t0 = time.perf_counter()
        k = np.asarray(kernel_fn(x, None, "ntk"))
        kt = np.asarray(kernel_fn(xt, x, "ntk"))
        ref = dynamics.kernel_regression(k, y, kt, ridge=ridge)
        out["dense_s"] = time.perf_counter() - t0
        out["max_rel_diff_vs_dense"] = float(np.max(np.abs(pred - ref)) / np.max(np.abs(ref)))
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    print(json.dumps(out), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 7500, 15000, 30000])
    parser.add_argument("--landmarks", type=int, default=1000)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_size(args.one, args.landmarks, dense=args.one <= 4000)
        return
    rows = []
    for n in args.sizes:
        proc = subprocess.run([sys.executable, __file__, "--one", str(n), "--landmarks", str(args.landmarks)],
                              capture_output=True, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print(f"{'n':>6} {'kernel s':>9} {'precond s':>9} {'CG s':>7} {'iters':>5} {'residual':>9} {'total s':>8} "
          f"{'peak GB':>7}")
    for r in rows:
        print(f"{r['n']:6d} {r['kernel_s']:9.1f} {r['preconditioner_s']:9.1f} {r['solve_s']:7.1f} "
              f"{r['iterations']:5d} {r['relative_residual']:9.2e} {r['total_s']:8.1f} {r['peak_rss_gb']:7.2f}")
    for r in rows:
        if "max_rel_diff_vs_dense" in r:
            print(f"n = {r['n']}: dense Cholesky {r['dense_s']:.1f} s; largest difference of the test predictions "
                  f"relative to their largest value: {r['max_rel_diff_vs_dense']:.2e}")
    big = [r for r in rows if r["n"] > 4000] or rows
    if len(big) >= 2:
        slope = np.polyfit(np.log([r["n"] for r in big]), np.log([r["total_s"] for r in big]), 1)[0]
        kslope = np.polyfit(np.log([r["n"] for r in big]), np.log([r["kernel_s"] for r in big]), 1)[0]
        print(f"time grows like n^{slope:.2f} in all (kernel alone n^{kslope:.2f}) over n = "
              f"{', '.join(str(r['n']) for r in big)}")


if __name__ == "__main__":
    main()
