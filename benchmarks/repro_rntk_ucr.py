"""Reproduction: RNTK classification of UCR sets against the MLP NTK, an RBF-SVM
and 1-nearest-neighbour Euclidean, on the official TRAIN/TEST splits.

The protocol and the grids are those of
:func:`ntkcourse.sequence_classification.compare_methods` (C-SVM on each
precomputed kernel; the kernel's settings and C chosen by 5-fold stratified
cross-validation on the training split only; the test split used once).
Padded sets (PickupGestureWiimoteZ) go through ``mask_constant=nan``.

    .venv/bin/python benchmarks/repro_rntk_ucr.py [--sets ItalyPowerDemand GunPoint ...]
"""
from __future__ import annotations

import argparse
import time

from ntkcourse.data import UCR_SETS, load_ucr
from ntkcourse.sequence_classification import C_GRID, DEFAULT_GRIDS, compare_methods


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", nargs="*", default=list(UCR_SETS))
    args = parser.parse_args()
    print("grids:", {m: list(g) for m, g in DEFAULT_GRIDS.items()}, "C:", C_GRID)
    table = []
    for name in args.sets:
        t0 = time.perf_counter()
        res = compare_methods(load_ucr(name))
        print(f"\n{name}: {res.n_train} train, {res.n_test} test, length {res.length}"
              f"{' (padded)' if res.padded else ''}, {time.perf_counter() - t0:.0f} s")
        for r in res.results:
            print(f"  {r.method:15s} test accuracy {r.test_accuracy:.3f}   chosen {r.setting}, C={r.C}   "
                  f"CV on train {r.cv_accuracy:.3f}   {r.seconds:.1f} s")
        table.append(res)
    methods = [r.method for r in table[0].results]
    print("\n| set | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for res in table:
        print(f"| {res.name} | " + " | ".join(f"{res.accuracy(m):.3f}" for m in methods) + " |")


if __name__ == "__main__":
    main()
