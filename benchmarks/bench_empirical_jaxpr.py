"""Benchmark: empirical NTK of a plain-JAX ResNet-like function (no ntkcourse.stax), three implementations.

The network is written with ``jax.lax`` only, in the shape of neural-tangents' ``empirical_ntk_resnet``
notebook's model: a 3 × 3 stem convolution, residual blocks of two 3 × 3 convolutions with an inference-mode
normalisation after each (``(z - mean) * scale * rsqrt(var + eps) + bias``, every one of them a parameter, as
a flax ``BatchNorm`` with its ``batch_stats``), a strided 1 × 1 projection where the width changes, a global
average pool and a dense readout. Structured derivatives are read from its jaxpr
(``ntkcourse.jaxpr_structure``): convolution kernels, the readout, means, scales and biases are sites; each
``var`` enters through ``rsqrt`` and keeps its Jacobian block.

Prints, for ``implementation`` = 'structured', 'jacobian', 'jvp_vjp' (``trace_axes=()``, ``vmap_axes=0``, as
the notebook), the first call (compilation included) and the best warm call of ``--repeat``, with the process's
CPU time for each, the ratios to 'structured', and the largest difference between the kernels relative to
their mean absolute entry.

    nice -n 10 .venv/bin/python benchmarks/bench_empirical_jaxpr.py [--n 8] [--outputs 8] [--size 16]
        [--widths 16,32,64] [--repeat 3] [--float64] [--skip jvp_vjp]
"""
import argparse
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ntkcourse.empirical import empirical_ntk_fn

DN = ("NHWC", "HWIO", "NHWC")


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def conv(x, kernel, stride=1):
    return lax.conv_general_dilated(x, kernel, (stride, stride), "SAME", dimension_numbers=DN)


def norm(z, p):
    return (z - p["mean"]) * (p["scale"] * lax.rsqrt(p["var"] + 1e-5)) + p["bias"]


def block(p, x, stride):
    y = jax.nn.relu(norm(conv(x, p["conv1"], stride), p["norm1"]))
    y = norm(conv(y, p["conv2"]), p["norm2"])
    if "proj" in p:
        x = norm(conv(x, p["proj"], stride), p["norm_proj"])
    return jax.nn.relu(x + y)


def resnet(params, x):
    h = jax.nn.relu(norm(conv(x, params["stem"]), params["stem_norm"]))
    for p, stride in zip(params["blocks"], params["strides"]):
        h = block(p, h, stride)
    return jnp.mean(h, axis=(1, 2)) @ params["readout"]


def init(key, widths, outputs, dtype):
    keys = iter(jax.random.split(key, 64))

    def kernel(k, c_in, c_out):
        return jax.random.normal(next(keys), (k, k, c_in, c_out), dtype) * np.sqrt(2.0 / (k * k * c_in))

    def norm_params(c):
        return {"mean": 0.1 * jax.random.normal(next(keys), (c,), dtype),
                "var": 1.0 + 0.1 * jax.random.uniform(next(keys), (c,), dtype),
                "scale": 1.0 + 0.1 * jax.random.normal(next(keys), (c,), dtype),
                "bias": 0.1 * jax.random.normal(next(keys), (c,), dtype)}

    params = {"stem": kernel(3, 3, widths[0]), "stem_norm": norm_params(widths[0]), "blocks": [], "strides": []}
    c_in = widths[0]
    for i, c in enumerate(widths):
        stride = 1 if i == 0 else 2
        p = {"conv1": kernel(3, c_in, c), "norm1": norm_params(c), "conv2": kernel(3, c, c), "norm2": norm_params(c)}
        if c != c_in or stride != 1:
            p["proj"], p["norm_proj"] = kernel(1, c_in, c), norm_params(c)
        params["blocks"].append(p)
        params["strides"].append(stride)
        c_in = c
    params["readout"] = jax.random.normal(next(keys), (c_in, outputs), dtype) / np.sqrt(c_in)
    return params


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="inputs in x1 and in x2")
    parser.add_argument("--outputs", type=int, default=8)
    parser.add_argument("--size", type=int, default=16, help="image height and width")
    parser.add_argument("--widths", default="16,32,64")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--float64", action="store_true")
    parser.add_argument("--skip", default="", help="comma-separated implementations not to run")
    args = parser.parse_args()
    if args.float64:
        jax.config.update("jax_enable_x64", True)
    dtype = jnp.float64 if args.float64 else jnp.float32
    widths = [int(w) for w in args.widths.split(",")]
    params = init(jax.random.PRNGKey(0), widths, args.outputs, dtype)
    strides = tuple(params.pop("strides"))
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    x1 = jax.random.normal(k1, (args.n, args.size, args.size, 3), dtype)
    x2 = jax.random.normal(k2, (args.n, args.size, args.size, 3), dtype)

    def f(p, x):
        return resnet({**p, "strides": strides}, x)

    n_params = sum(int(np.size(v)) for v in jax.tree_util.tree_leaves(params))
    print(f"plain-JAX ResNet: widths {widths}, {n_params} parameters, x1 and x2 "
          f"({args.n}, {args.size}, {args.size}, 3), {args.outputs} outputs, {jnp.dtype(dtype).name}, "
          "trace_axes=(), vmap_axes=0; "
          f"JAX {jax.__version__}, devices {jax.devices()}", flush=True)
    kernels, warm = {}, {}
    for impl in ("structured", "jacobian", "jvp_vjp"):
        if impl in args.skip.split(","):
            continue
        fn = jax.jit(empirical_ntk_fn(f, trace_axes=(), vmap_axes=0, implementation=impl))
        t0, c0 = time.perf_counter(), cpu_seconds()
        kernels[impl] = np.asarray(jax.block_until_ready(fn(x1, x2, params)))
        first, first_cpu = time.perf_counter() - t0, cpu_seconds() - c0
        best = best_cpu = np.inf
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), cpu_seconds()
            jax.block_until_ready(fn(x1, x2, params))
            best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, cpu_seconds() - c0)
        warm[impl] = best
        print(f"{impl:>10}: first call {first:7.2f} s (CPU {first_cpu:7.2f} s), warm {best:7.3f} s "
              f"(CPU {best_cpu:7.2f} s)", flush=True)
    base = "structured" if "structured" in warm else next(iter(warm))
    scale = np.mean(np.abs(kernels[base]))
    for impl in warm:
        diff = np.max(np.abs(kernels[impl] - kernels[base])) / scale
        print(f"{impl:>10} / {base}: time ratio {warm[impl] / warm[base]:6.2f}, largest difference {diff:.1e}")


if __name__ == "__main__":
    main()
