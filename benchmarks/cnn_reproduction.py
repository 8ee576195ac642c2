"""Benchmark: chapter 7's comparison of kernels on the digits, at a chosen size.

The chapter (book/ch07_convolutional.md) compares six kernels (NNGP and NTK of
a depth-3 ReLU MLP, of a depth-3 CNN read out by ``Flatten`` (CNTK-V) and by
``GlobalAvgPool`` (CNTK-GAP); 3x3 filters, 'SAME' padding, W_std = sqrt 2, no
bias) by kernel regression on subsets of scikit-learn's digits, with the
CNTK-GAP on a subset small enough for the book's time budget. This script
runs the same comparison on ``--n`` digits (all 1797 by default; the CNTK-GAP
of all digits takes minutes to hours depending on the engine), over
``--splits`` random splits with ``--train`` training digits each (the rest of
the subset tested), and prints the time of each kernel and the accuracies
(mean ± standard deviation over splits). The kernels are computed once; each
split selects rows and columns. Ridge: 1e-3 of the mean diagonal. With
``--cache FILE.npz`` the kernels are saved there, and read from it by a later
run with the same ``--n`` (to re-split without recomputing them).

    .venv/bin/python benchmarks/cnn_reproduction.py [--n 1797] [--train 60 300] [--splits 5]
        [--kernels MLP CNTK-V CNTK-GAP] [--cache kernels.npz]
"""
import argparse
import os
import resource
import time

import jax
import numpy as np

from ntkcourse import stax
from ntkcourse.data import load_digits, one_hot, split_indices
from ntkcourse.dynamics import kernel_regression

jax.config.update("jax_enable_x64", True)


def networks():
    def cnn(readout):
        layers = []
        for _ in range(3):
            layers += [stax.Conv(1, (3, 3), padding="SAME", W_std=2**0.5), stax.Relu()]
        return stax.serial(*layers, readout, stax.Dense(1))

    mlp = stax.serial(stax.Flatten(), *[lay for _ in range(3) for lay in (stax.Dense(1, W_std=2**0.5), stax.Relu())],
                      stax.Dense(1))
    return {"MLP": mlp, "CNTK-V": cnn(stax.Flatten()), "CNTK-GAP": cnn(stax.GlobalAvgPool())}


def accuracy(k, labels, targets, train, test):
    ridge = 1e-3 * np.mean(np.diag(k))
    out = kernel_regression(k[np.ix_(train, train)], targets[train], k[np.ix_(test, train)], ridge=ridge)
    return float(np.mean(out.argmax(axis=1) == labels[test]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1797)
    ap.add_argument("--train", type=int, nargs="+", default=[60, 300])
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--kernels", nargs="+", default=["MLP", "CNTK-V", "CNTK-GAP"])
    ap.add_argument("--cache", help="an .npz file to save the kernels to, or to read them from")
    args = ap.parse_args(argv)
    digits = load_digits()
    x, labels = digits.images[:args.n], digits.labels[:args.n]
    targets = one_hot(labels)
    nets = networks()
    kernels = {}
    saved = dict(np.load(args.cache)) if args.cache and os.path.exists(args.cache) else {}
    for name in args.kernels:
        if f"{name}/NNGP" in saved and saved[f"{name}/NNGP"].shape == (args.n, args.n):
            kernels[name] = {what: saved[f"{name}/{what}"] for what in ("NNGP", "NTK")}
            print(f"{name:9s} {args.n} digits, NNGP+NTK: read from {args.cache}", flush=True)
            continue
        start = time.perf_counter()
        k = nets[name][2](x, None, ("nngp", "ntk"))
        kernels[name] = {"NNGP": np.asarray(k.nngp), "NTK": np.asarray(k.ntk)}
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(f"{name:9s} {args.n} digits, NNGP+NTK: {time.perf_counter() - start:8.1f} s "
              f"(process peak memory so far {peak / 1e9:.2f} GB)", flush=True)
        if args.cache:
            saved.update({f"{name}/{what}": v for what, v in kernels[name].items()})
            np.savez(args.cache, **saved)
    for n_train in args.train:
        splits = [split_indices(args.n, args.n - n_train, seed) for seed in range(args.splits)]
        print(f"\n{n_train} training digits, {args.n - n_train} test digits, {args.splits} splits")
        for name in args.kernels:
            for what in ("NNGP", "NTK"):
                acc = np.array([accuracy(kernels[name][what], labels, targets, s.train, s.test) for s in splits])
                print(f"  {name:9s} {what:5s} {100 * acc.mean():5.1f} ± {100 * acc.std():.1f} %")
        if {"CNTK-GAP", "CNTK-V"} <= set(args.kernels):
            diff = [accuracy(kernels["CNTK-GAP"]["NTK"], labels, targets, s.train, s.test)
                    - accuracy(kernels["CNTK-V"]["NTK"], labels, targets, s.train, s.test) for s in splits]
            print("  CNTK-GAP minus CNTK-V (NTK), split by split:", " ".join(f"{100 * d:+.1f}" for d in diff), "points")


if __name__ == "__main__":
    main()
