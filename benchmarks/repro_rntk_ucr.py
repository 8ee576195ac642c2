"""Reproduction: RNTK classification of UCR sets against the MLP NTK, an RBF-SVM
and 1-nearest-neighbour Euclidean, on the official TRAIN/TEST splits.

Each kernel is used by a support vector machine (scikit-learn's ``SVC`` on the
precomputed Gram). Hyper-parameters (the kernel's and the SVM's C) are chosen
by 5-fold stratified cross-validation on the training split only; the test
split is used once, for the accuracy printed. Kernels are computed on train
and test together (no labels enter a kernel).

* RNTK: ``Recurrent(1, Relu(), W_std, U_std=1, b_std=0.1) -> Dense(1)``, NTK,
  W_std in {0.5, 1, sqrt(2)}; padded sets with ``mask_constant=nan``.
* MLP NTK: the series as one vector, ``(Dense(1, sqrt 2, 0.1) -> Relu) x depth
  -> Dense(1)``, depth in {1, 2, 3}; for padded sets, zeros past the end.
* RBF-SVM: gamma in {0.1, 1, 10} / (length), C as for the kernels.
* 1-NN Euclidean: no hyper-parameter (the UCR archive's baseline).

    .venv/bin/python benchmarks/repro_rntk_ucr.py [--sets ItalyPowerDemand GunPoint ...]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC

from ntkcourse import stax
from ntkcourse.data import UCR_SETS, load_ucr

C_GRID = (0.1, 1.0, 10.0, 100.0)


def rntk(W_std):
    return stax.serial(stax.Recurrent(1, stax.Relu(), W_std=W_std, U_std=1.0, b_std=0.1), stax.Dense(1))[2]


def mlp(depth):
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(1, W_std=math.sqrt(2.0), b_std=0.1), stax.Relu()]
    return stax.serial(*layers, stax.Dense(1))[2]


def cv_accuracy(K, y, C, folds=5, seed=0):
    n_splits = min(folds, int(np.bincount(y).min()))
    accs = []
    for tr, va in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(K, y):
        svm = SVC(C=C, kernel="precomputed").fit(K[np.ix_(tr, tr)], y[tr])
        accs.append(np.mean(svm.predict(K[np.ix_(va, tr)]) == y[va]))
    return float(np.mean(accs))


def select_and_test(grams, y_train, y_test, n_train):
    """grams: {setting: full Gram (train+test)}. Best (setting, C) by CV on train."""
    best = max(((cv_accuracy(K[:n_train, :n_train], y_train, C), s, C) for s, K in grams.items() for C in C_GRID),
               key=lambda t: t[0])
    cv, setting, C = best
    K = grams[setting]
    svm = SVC(C=C, kernel="precomputed").fit(K[:n_train, :n_train], y_train)
    return float(np.mean(svm.predict(K[n_train:, :n_train]) == y_test)), setting, C, cv


def one_nn(x_train, y_train, x_test):
    d = ((x_test[:, None, :] - x_train[None, :, :]) ** 2).sum(-1)
    return y_train[np.argmin(d, axis=1)]


def run(name):
    d = load_ucr(name)
    x = np.concatenate([d.x_train, d.x_test])
    n_train = len(d.y_train)
    padded = bool(np.isnan(x).any())
    flat = np.nan_to_num(x[..., 0], nan=0.0)
    rows = {}
    t0 = time.perf_counter()
    grams = {f"W_std={w:.3g}": np.asarray(rntk(w)(x, None, "ntk", **({"mask_constant": np.nan} if padded else {})))
             for w in (0.5, 1.0, math.sqrt(2.0))}
    rows["RNTK"] = select_and_test(grams, d.y_train, d.y_test, n_train) + (time.perf_counter() - t0,)
    t0 = time.perf_counter()
    grams = {f"depth={k}": np.asarray(mlp(k)(flat, None, "ntk")) for k in (1, 2, 3)}
    rows["MLP NTK"] = select_and_test(grams, d.y_train, d.y_test, n_train) + (time.perf_counter() - t0,)
    t0 = time.perf_counter()
    sq = ((flat[:, None, :] - flat[None, :, :]) ** 2).sum(-1) / flat.shape[1]
    grams = {f"gamma={g}/T": np.exp(-g * sq) for g in (0.1, 1.0, 10.0)}
    rows["RBF-SVM"] = select_and_test(grams, d.y_train, d.y_test, n_train) + (time.perf_counter() - t0,)
    acc = float(np.mean(one_nn(flat[:n_train], d.y_train, flat[n_train:]) == d.y_test))
    rows["1-NN Euclidean"] = (acc, "-", "-", float("nan"), 0.0)
    print(f"\n{name}: {n_train} train, {len(d.y_test)} test, length {x.shape[1]}{' (padded)' if padded else ''}")
    for method, (acc, setting, C, cv, secs) in rows.items():
        print(f"  {method:15s} test accuracy {acc:.3f}   chosen {setting}, C={C}   CV on train {cv:.3f}   {secs:.1f} s")
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", nargs="*", default=list(UCR_SETS))
    args = parser.parse_args()
    for name in args.sets:
        run(name)


if __name__ == "__main__":
    main()
