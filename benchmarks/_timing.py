"""Timing helper shared by the benchmark scripts."""
import time

import jax


def best_time(fn, repeat):
    """Shortest wall-clock time of ``fn()`` over ``repeat`` calls, waiting for JAX results."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return min(times)
