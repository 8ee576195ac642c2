"""Reproduction: RNTK classification of UCR sets against the MLP NTK, an RBF-SVM
and 1-nearest-neighbour Euclidean, on the official TRAIN/TEST splits.

The protocol and the grids are those of
:func:`ntkcourse.sequence_classification.compare_methods` (C-SVM on each
precomputed kernel; C relative to the mean training diagonal; cosine
normalisation as one more option of the RNTK and the MLP NTK; the kernel's
settings and C chosen by 10-fold stratified cross-validation on the training
split only; the test split used once). Padded sets (PickupGestureWiimoteZ) go
through ``mask_constant=nan``. For each method it prints the chosen setting,
the chosen relative C and whether it is an end of the grid, the chosen
setting's CV accuracy at every C of the grid, and how many (setting, C) pairs
tie at the best CV accuracy.

    .venv/bin/python benchmarks/repro_rntk_ucr.py [--sets ItalyPowerDemand GunPoint ...] [--hindsight]

``--hindsight`` adds a diagnostic that is *not* part of the protocol: for
every RNTK kernel setting, its own CV choice of c and the test accuracy at that
c (reading the test labels), to see how far the protocol's pick is from the
best RNTK setting in hindsight.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from ntkcourse.data import UCR_SETS, load_ucr
from ntkcourse.sequence_classification import (DEFAULT_GRIDS, RELATIVE_C_GRID, choose_from_table, compare_methods,
                                               cosine_normalise, cv_accuracy_table, rntk_gram, svm_accuracy)


def _edge(c: float) -> str:
    if c == RELATIVE_C_GRID[0]:
        return " (bottom of the grid)"
    if c == RELATIVE_C_GRID[-1]:
        return " (top of the grid)"
    return ""


def hindsight(data):
    """Each RNTK setting's CV accuracy (training split) and test accuracy at its own CV choice of c."""
    print("  hindsight (diagnostic, reads the test labels): RNTK setting -> best CV, chosen c, test accuracy")
    kernels = sorted({(s["W_std"], s["b_std"]) for s in DEFAULT_GRIDS["RNTK"]})
    for w, b in kernels:
        k_train = rntk_gram(w, b, data.x_train)
        k_train = (k_train + k_train.T) / 2
        k_test = rntk_gram(w, b, data.x_test, data.x_train)
        d_train, d_test = np.diag(k_train), np.diag(rntk_gram(w, b, data.x_test))
        for normalize in (False, True):
            a, t = k_train, k_test
            if normalize:
                a, t = cosine_normalise(k_train, d_train, d_train), cosine_normalise(k_test, d_test, d_train)
            unit = float(np.mean(np.diag(a)))
            row = cv_accuracy_table([a], data.y_train)
            c = RELATIVE_C_GRID[choose_from_table(row)[1]]
            acc = svm_accuracy(a / unit, data.y_train, t / unit, data.y_test, c)
            print(f"    W_std={w:.3f} b_std={b:g} normalize={normalize!s:5s}: CV {row.max():.3f}, c={c:g}, "
                  f"test {acc:.3f}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", nargs="*", default=list(UCR_SETS))
    parser.add_argument("--hindsight", action="store_true", help="also print the RNTK diagnostic (test labels)")
    args = parser.parse_args()
    print("grids:", {m: list(g) for m, g in DEFAULT_GRIDS.items()})
    print("relative C:", RELATIVE_C_GRID)
    table = []
    for name in args.sets:
        t0, c0 = time.perf_counter(), time.process_time()
        res = compare_methods(load_ucr(name))
        print(f"\n{name}: {res.n_train} train, {res.n_test} test, length {res.length}"
              f"{' (padded)' if res.padded else ''}, {time.perf_counter() - t0:.0f} s wall, "
              f"{time.process_time() - c0:.0f} s CPU", flush=True)
        for r in res.results:
            print(f"  {r.method:15s} test accuracy {r.test_accuracy:.3f}   chosen {r.setting}, "
                  f"c={r.relative_C:g}{_edge(r.relative_C)} (C={r.C:.3g})   CV on train {r.cv_accuracy:.3f} "
                  f"({r.n_tied} pairs tied)   CV by c {[round(v, 3) for v in r.cv_by_C]}   {r.seconds:.1f} s",
                  flush=True)
        if args.hindsight:
            hindsight(load_ucr(name))
        table.append(res)
    methods = [r.method for r in table[0].results]
    print("\n| set | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for res in table:
        print(f"| {res.name} | " + " | ".join(f"{res.accuracy(m):.3f}" for m in methods) + " |")


if __name__ == "__main__":
    main()
