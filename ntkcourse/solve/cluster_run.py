"""Kernel regression on several processes, from the command line: the launch every host runs.

Every process runs the same command with its own ``--process-id``::

    python -m ntkcourse.solve.cluster_run --coordinator HOST0:12345 --num-processes 2 --process-id 0 --n 4000
    python -m ntkcourse.solve.cluster_run --coordinator HOST0:12345 --num-processes 2 --process-id 1 --n 4000

Data: ``n`` training and 200 test points uniform on the sphere S^15 (seed
0), targets ``sin(3x₁) + ½cos(2x₂)``; kernel: the NTK of a ReLU MLP of
``--depth`` hidden layers (``Dense(512, W_std=√2, b_std=0.1)``). Process 0
writes ``--out`` (``.npz``: test predictions, coefficients, iterations,
residual, seconds) and every process prints one JSON line with the rows it
held and the devices that computed them. With ``--num-processes 1`` (the
default) no coordinator is needed.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

__all__ = ["mlp_kernel_fn", "sphere_problem", "main"]


def mlp_kernel_fn(depth: int):
    """``kernel_fn`` of ``[Dense(512, W_std=√2, b_std=0.1), Relu()] × depth`` then ``Dense(1)``."""
    from .. import stax

    layers = []
    for _ in range(depth):
        layers += [stax.Dense(512, W_std=2**0.5, b_std=0.1), stax.Relu()]
    return stax.serial(*layers, stax.Dense(1, W_std=2**0.5, b_std=0.1))[2]


def sphere_problem(n: int, n_test: int = 200, dim: int = 16, seed: int = 0):
    """``(x, y, x_test)``: points uniform on the sphere, targets ``sin(3x₁) + ½cos(2x₂)``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n + n_test, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.sin(3 * x[:, 0]) + 0.5 * np.cos(2 * x[:, 1])
    return x[:n], y[:n], x[n:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coordinator", default=None, help="host:port of process 0")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--block-size", type=int, default=500)
    parser.add_argument("--landmarks", type=int, default=300)
    parser.add_argument("--store", default="hold", choices=["hold", "stream"])
    parser.add_argument("--timeout", type=int, default=120, help="seconds to wait for the other processes")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    import jax

    from .processes import start_processes

    if args.num_processes > 1:
        start_processes(args.coordinator, args.num_processes, args.process_id, timeout_s=args.timeout)
    from .regression import kernel_regression_cg

    x, y, xt = sphere_problem(args.n)
    t0 = time.perf_counter()
    result = kernel_regression_cg(mlp_kernel_fn(args.depth), x, y, xt, ridge=1e-3, tol=1e-8, store=args.store,
                                  block_size=args.block_size, n_landmarks=args.landmarks, progress=False)
    seconds = time.perf_counter() - t0
    report = {"process": jax.process_index(), "processes": jax.process_count(),
              "local_devices": [d.id for d in jax.local_devices()], "seconds": seconds,
              "held_bytes": result.held_bytes,
              "block_devices": {str(k): v for k, v in sorted(result.block_devices.items())},
              "iterations": result.solve.iterations, "relative_residual": result.solve.relative_residual}
    print(json.dumps(report), flush=True)
    if args.out and jax.process_index() == 0:
        np.savez(args.out, test=result.test, coefficients=result.coefficients, iterations=result.solve.iterations,
                 relative_residual=result.solve.relative_residual, seconds=seconds)
    if args.num_processes > 1:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
