"""Benchmark: neural-tangents' ``empirical_ntk_resnet`` notebook workload, with this package or with neural-tangents.

The notebook's flax ResNet18 (written here after its architecture: a 7 × 7 stride-2 stem convolution without
bias, an inference-mode ``BatchNorm``, a 3 × 3 stride-2 max pool, four stages of two residual blocks of
64, 128, 256, 512 filters with a strided 1 × 1 ``conv_proj`` and ``norm_proj`` where the shape changes, a global
average pool and a ``Dense`` readout), ``f(params, x) = model.apply(params, x, train=False,
mutable=['batch_stats'])[0]``, float32, ``trace_axes=()``, ``vmap_axes=0``, each implementation inside
``jax.jit``. The images are ``--size`` × ``--size`` (the notebook's 224 is far too slow on a CPU; 32 by default).

The same script runs in either environment: ``--lib ours`` imports ``ntkcourse as nt``, ``--lib nt`` imports
``neural_tangents as nt`` (run it with neural-tangents' Python). flax must be importable (``PYTHONPATH``).
Inputs are drawn with NumPy (the same in both environments); the parameters come from ``model.init`` with
``PRNGKey(0)``, or from ``--load-params`` (an ``.npz`` written by ``--save-params`` in the other environment),
so that the kernels of both libraries can be compared on the same parameters: ``--save-kernels`` writes them,
``--compare FILE`` prints the largest difference to the kernels of ``FILE`` relative to their mean absolute
entry.

Prints, for each implementation asked, the first call (compilation included) and the best warm call of
``--repeat`` (wall-clock and process CPU time, ``time.process_time``: all threads), and the largest difference
between the implementations' kernels relative to the mean absolute entry of the first one.

    PYTHONPATH=/work/flax-ours nice -n 10 .venv/bin/python benchmarks/bench_nt_resnet_jacobian.py --lib ours \
        [--impl jacobian,structured] [--n 8] [--outputs 8] [--size 32] [--repeat 3] \
        [--save-params P.npz | --load-params P.npz] [--save-kernels K.npz] [--compare K.npz]
"""
import argparse
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

IMPLEMENTATIONS = {"jacobian": "JACOBIAN_CONTRACTION", "jvp_vjp": "NTK_VECTOR_PRODUCTS",
                   "structured": "STRUCTURED_DERIVATIVES", "auto": "AUTO"}


class Block(nn.Module):
    """The notebook's ``_ResNetBlock``: two 3 × 3 convolutions with BatchNorm, a projected residual."""

    filters: int
    conv: object
    norm: object
    strides: tuple = (1, 1)

    @nn.compact
    def __call__(self, x):
        y = self.conv(self.filters, (3, 3), self.strides)(x)
        y = nn.relu(self.norm()(y))
        y = self.conv(self.filters, (3, 3))(y)
        y = self.norm(scale_init=nn.initializers.zeros)(y)
        if x.shape != y.shape:
            x = self.conv(self.filters, (1, 1), self.strides, name="conv_proj")(x)
            x = self.norm(name="norm_proj")(x)
        return nn.relu(x + y)


class ResNet18(nn.Module):
    """The notebook's ``_ResNet`` with ``stage_sizes=[2, 2, 2, 2]``."""

    num_classes: int
    num_filters: int = 64

    @nn.compact
    def __call__(self, x, train: bool = True):
        conv = partial(nn.Conv, use_bias=False, dtype=jnp.float32)
        norm = partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=jnp.float32)
        x = conv(self.num_filters, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], name="conv_init")(x)
        x = nn.relu(norm(name="bn_init")(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for i in range(4):
            for j in range(2):
                strides = (2, 2) if i > 0 and j == 0 else (1, 1)
                x = Block(self.num_filters * 2 ** i, conv=conv, norm=norm, strides=strides)(x)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, dtype=jnp.float32)(x)


def flat(tree):
    return {jax.tree_util.keystr(p): np.asarray(v) for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def unflat(like, arrays):
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(like)
    leaves = [jnp.asarray(arrays[jax.tree_util.keystr(p)]) for p, _ in with_paths]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", choices=("ours", "nt"), required=True)
    parser.add_argument("--impl", default="jacobian,structured", help="comma-separated: " + ",".join(IMPLEMENTATIONS))
    parser.add_argument("--n", type=int, default=8, help="inputs in x1 and in x2")
    parser.add_argument("--outputs", type=int, default=8)
    parser.add_argument("--size", type=int, default=32, help="image height and width")
    parser.add_argument("--repeat", type=int, default=3, help="warm calls timed (0: the first call only)")
    parser.add_argument("--save-params")
    parser.add_argument("--load-params")
    parser.add_argument("--save-kernels")
    parser.add_argument("--compare")
    args = parser.parse_args()
    if args.lib == "ours":
        import ntkcourse as nt
    else:
        import neural_tangents as nt

    rng = np.random.RandomState(1)
    x1 = jnp.asarray(rng.standard_normal((args.n, args.size, args.size, 3)), jnp.float32)
    x2 = jnp.asarray(rng.standard_normal((args.n, args.size, args.size, 3)), jnp.float32)
    model = ResNet18(num_classes=args.outputs)
    params = model.init(jax.random.PRNGKey(0), x1)
    if args.load_params:
        params = unflat(params, np.load(args.load_params))
    if args.save_params:
        np.savez(args.save_params, **flat(params))

    def apply_fn(p, x):
        return model.apply(p, x, train=False, mutable=["batch_stats"])[0]

    n_params = sum(int(np.size(v)) for v in jax.tree_util.tree_leaves(params["params"]))
    print(f"{args.lib} ({nt.__name__}), JAX {jax.__version__}: flax ResNet18, {n_params} trainable parameters, "
          f"x1 and x2 ({args.n}, {args.size}, {args.size}, 3), {args.outputs} outputs, float32, trace_axes=(), "
          "vmap_axes=0, jit", flush=True)
    kernels = {}
    for impl in args.impl.split(","):
        fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0,
                                         implementation=getattr(nt.NtkImplementation, IMPLEMENTATIONS[impl])))
        t0, c0 = time.perf_counter(), time.process_time()
        kernels[impl] = np.asarray(jax.block_until_ready(fn(x1, x2, params)))
        first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
        best = best_cpu = np.inf
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            jax.block_until_ready(fn(x1, x2, params))
            best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
        warm = f", best warm {best:7.3f} s (CPU {best_cpu:7.2f} s)" if args.repeat else ""
        print(f"{args.lib:>4} {impl:>10}: first call {first:7.2f} s (CPU {first_cpu:7.2f} s){warm}", flush=True)
    names = list(kernels)
    scale = np.mean(np.abs(kernels[names[0]]))
    for impl in names[1:]:
        diff = np.max(np.abs(kernels[impl] - kernels[names[0]])) / scale
        print(f"{impl} vs {names[0]}: largest difference {diff:.1e} of the mean absolute entry")
    if args.save_kernels:
        np.savez(args.save_kernels, **kernels)
    if args.compare:
        other = np.load(args.compare)
        for impl in names:
            if impl in other.files:
                ref = other[impl]
                diff = np.max(np.abs(kernels[impl] - ref)) / np.mean(np.abs(ref))
                print(f"{impl} vs {args.compare}: largest difference {diff:.1e} of the mean absolute entry")


if __name__ == "__main__":
    main()
