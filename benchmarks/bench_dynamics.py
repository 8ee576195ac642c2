"""Benchmark: closed-form gradient-flow predictions for 2000 train and 2000 test points at 100 times.

Goal (issue "Training dynamics"): one eigendecomposition of the train kernel,
then matrix products only, so the whole prediction costs at most 1.5× a single
``numpy.linalg.eigh`` of the train kernel measured in the same run.

    .venv/bin/python benchmarks/bench_dynamics.py [--n 2000] [--m 2000] [--times 100] [--repeats 3]

The kernel is the one-hidden-layer ReLU NTK (NTK parameterisation, W_std=1,
b_std=0.1 on the hidden layer) of points on the sphere, computed in closed form
with numpy; the timing does not include building it. Each figure is the best of
``--repeats`` interleaved runs (the machine may be shared); process CPU time is
printed too, as it is less sensitive to other load than wall-clock time.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ntkcourse.dynamics import gradient_flow_predictor
from ntkcourse.spectral import sphere_data


def relu_ntk(x1, x2, b_std=0.1):
    """One-hidden-layer ReLU NTK: Σ₁ = x·x'/d + b², Θ = κ₁(Σ₁) + Σ₁·κ₀(Σ₁) (Cho & Saul 2009 arc-cosine)."""
    d = x1.shape[1]
    s12 = x1 @ x2.T / d + b_std**2
    s11 = np.sum(x1 * x1, axis=1) / d + b_std**2
    s22 = np.sum(x2 * x2, axis=1) / d + b_std**2
    norm = np.sqrt(np.outer(s11, s22))
    cos = np.clip(s12 / norm, -1.0, 1.0)
    theta = np.arccos(cos)
    nngp = norm * (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi)
    dot = (np.pi - theta) / (2 * np.pi)
    return nngp + s12 * dot


def seconds(fn):
    """(wall-clock, process CPU) seconds of one call; CPU time is the steadier figure on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="training points")
    parser.add_argument("--m", type=int, default=2000, help="test points")
    parser.add_argument("--times", type=int, default=100, help="number of times t")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    x = sphere_data(args.n + args.m, 10, seed=0)
    x_train, x_test = x[: args.n], x[args.n:]
    k_train_train = relu_ntk(x_train, x_train)
    k_test_train = relu_ntk(x_test, x_train)
    y_train = np.sin(3 * x_train[:, 0])
    times = np.logspace(-2, 4, args.times)

    def predict_all():
        predict = gradient_flow_predictor(k_train_train, y_train, learning_rate=1.0)
        return predict(times, k_test_train)

    # Interleaved, so that both timings see the same load on a shared machine.
    pairs = [(seconds(lambda: np.linalg.eigh(k_train_train)), seconds(predict_all)) for _ in range(args.repeats)]
    t_eigh, c_eigh = (min(p[0][i] for p in pairs) for i in (0, 1))
    t_pred, c_pred = (min(p[1][i] for p in pairs) for i in (0, 1))
    out = predict_all()
    assert out.train.shape == (args.times, args.n) and out.test.shape == (args.times, args.m)
    print(f"n_train={args.n} n_test={args.m} times={args.times}")
    print(f"numpy.linalg.eigh of the train kernel : {t_eigh:.3f} s wall, {c_eigh:.3f} s CPU")
    print(f"closed-form predictions (train + test): {t_pred:.3f} s wall, {c_pred:.3f} s CPU")
    print(f"ratio (best wall / best wall)         : {t_pred / t_eigh:.2f}  (goal ≤ 1.5)")
    print(f"ratio (best CPU / best CPU)           : {c_pred / c_eigh:.2f}")
    print("per-repeat wall ratios                : " + " ".join(f"{p[1][0] / p[0][0]:.2f}" for p in pairs))


if __name__ == "__main__":
    main()
