"""Measurement: the two finite-width rates over seven widths, for the figures quoted in chapter 5.

Not a timing benchmark: the heavier version of the width sweeps of
``book/ch05_finite_width.md`` (which run at four widths to keep the chapter
fast). For networks with one or two hidden layers in the NTK parameterisation
(``Dense(n, W_std=1.5, b_std=0.5)``), on the chapter's eight points of the unit
circle with targets ``sin 2φ + cos(φ)/2``:

* the fluctuation of the empirical NTK at initialisation,
  ``‖Θ̂₀ − Θ‖_F / ‖Θ‖_F`` (16 draws per width; expected slope −1/2);
* its drift in 100 steps of gradient descent at ``1/λ_max(Θ)``,
  ``‖Θ̂₁₀₀ − Θ̂₀‖_F / ‖Θ̂₀‖_F`` (4 draws per width; −1 for smooth activations,
  Dyer & Gur-Ari 2020; Huang & Yau 2020; the bound of Lee et al. 2019 is −1/2).

Each slope is printed with its jackknife standard error over the draws
(``WidthSweep.slope_stderr``). The keys are the chapter's, so the figures
quoted there are reproduced exactly::

    .venv/bin/python benchmarks/bench_rates.py [--widths 64 128 256 512 1024 2048 4096]

About two minutes on the 2-core reference machine.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ntkcourse import finite_width, stax  # noqa: E402

CASES = [("ReLU", stax.Relu, 1), ("erf", stax.Erf, 1), ("GELU", stax.Gelu, 1),
         ("ReLU", stax.Relu, 2), ("GELU", stax.Gelu, 2)]


def network(n, depth, activation):
    """The chapter's network: ``depth`` hidden layers of width ``n``, one output."""
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(n, W_std=1.5, b_std=0.5), activation()]
    return stax.serial(*layers, stax.Dense(1, W_std=1.5, b_std=0.5))


def circle_task():
    """The chapter's eight inputs on the unit circle and their targets."""
    phi = np.linspace(0, 2 * np.pi, 8, endpoint=False) + 0.2
    return np.stack([np.cos(phi), np.sin(phi)], axis=1), np.sin(2 * phi) + 0.5 * np.cos(phi)


def slope_text(sweep):
    return f"{sweep.slope:.2f} ± {sweep.slope_stderr:.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048, 4096])
    args = parser.parse_args(argv)
    x, y = circle_task()
    start = time.perf_counter()
    fluctuation = finite_width.ntk_fluctuation_vs_width(
        lambda n: network(n, 1, stax.Relu), args.widths, x, jax.random.PRNGKey(0), n_seeds=16)
    print(f"fluctuation at initialisation, ReLU depth 1: {np.round(fluctuation.mean, 4)}"
          f"  slope {slope_text(fluctuation)}")
    for name, activation, depth in CASES:
        drift = finite_width.ntk_change_vs_width(
            lambda n, a=activation, d=depth: network(n, d, a), args.widths, x, y,
            jax.random.PRNGKey(1), steps=100, n_seeds=4)
        print(f"drift in 100 steps, {name} depth {depth}: {np.round(drift.kernel.mean, 5)}"
              f"  slope {slope_text(drift.kernel)}")
    print(f"widths {args.widths}; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
