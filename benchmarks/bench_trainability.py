"""Trainable depth of tanh networks on digits against 6 xi_c (Schoenholz et al. 2017, fig. 5).

Trains fully connected tanh networks (width 64, sigma_b^2 = 0.05, SGD with
learning rate 1e-2, batch 128, 300 steps, on the first 512 digits) over a grid
of weight variances and depths, and prints the training accuracy next to the
predicted trainable depth 6 xi_c. Not run by the test suite (minutes of CPU).

    .venv/bin/python benchmarks/bench_trainability.py
"""
import time

import jax.numpy as jnp
import numpy as np

from ntkcourse import dual, signal_propagation, trainability
from ntkcourse.data import load_digits

SIGMA_B2 = 0.05
SIGMA_W2 = np.array([0.5, 0.8, 1.0, 1.3, 1.76, 2.5, 3.0, 4.0, 5.0])
DEPTHS = [5, 10, 20, 30, 50, 70]


def main():
    digits = load_digits(flat=True)
    x, y = digits.images[:512], digits.labels[:512]
    tanh = dual.quadrature(jnp.tanh, deg=50)
    start = time.perf_counter()
    acc = trainability.training_accuracy_grid(jnp.tanh, SIGMA_W2, SIGMA_B2, DEPTHS, x, y, width=64, steps=300,
                                              learning_rate=1e-2, seed=0)
    seconds = time.perf_counter() - start
    print(f"training accuracy after 300 SGD steps (chance 0.10); {seconds:.0f} s")
    print("sigma_w2   6 xi_c | " + " ".join(f"L={d:<4d}" for d in DEPTHS))
    agree = total = 0
    for i, sw2 in enumerate(SIGMA_W2):
        limit = signal_propagation.trainable_depth(tanh, float(sw2), SIGMA_B2)
        print(f"{sw2:8.2f} {limit:8.1f} | " + " ".join(f"{a:6.2f}" for a in acc[i]))
        for j, depth in enumerate(DEPTHS):
            total += 1
            agree += (acc[i, j] > 0.5) == (depth < limit)
    print(f"prediction (trains iff L < 6 xi_c; 'trains' = accuracy > 0.5) right in {agree} of {total} cells")


if __name__ == "__main__":
    main()
