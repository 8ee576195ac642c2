"""Measurement: μP against SP and NTK on scikit-learn's digits — coordinate check, learning-rate transfer,
feature learning against width, and the mean-field limit of a two-layer network.

Not run by the test suite (the tests in ``tests/test_mup_*.py`` check the same claims at smaller sizes).
Four parts, each printing its figures and its time, and saving a figure to ``--out`` (default
``benchmarks/out/``); the printed figures are also written to ``<out>/bench_mup.json``:

``coord``     coordinate check, widths 64 … 2048, 3 seeds, 3 SGD steps on 16 digits: fitted slopes per layer.
``transfer``  learning-rate transfer (Tensor Programs V, Figure 1 at CPU scale): MLPs with 2 hidden layers (zero
              readout for SP too, so that both are the same network at the base width 64) on 512 training digits
              (flat features, centred one-hot targets, squared loss), mini-batches of 128,
              SGD over a grid of powers of 2, widths 64 … 1024; best rate per width and its drift in grid steps.
``features``  relative change of the last hidden representation and of the empirical NTK after training,
              against width, under NTK and μP, with fitted slopes.
``meanfield`` a two-layer tanh network in the mean-field parameterisation on 8 points of the circle: a
              many-particle run (width 16384) stands for the limit; widths 64 … 2048 converge to it (fitted
              rate), next to the same network in the NTK parameterisation, whose features do not move.

    .venv/bin/python benchmarks/bench_mup.py [--parts coord transfer features meanfield] [--quick]

``--quick`` runs smaller grids (3 widths, fewer rates and steps) for a first look.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ntkcourse.data import load_digits, one_hot  # noqa: E402
from ntkcourse.mup import (  # noqa: E402
    coordinate_check,
    feature_learning_vs_width,
    learning_rate_sweep,
    mlp,
    train_for,
    width_slopes,
)

MARKERS = {"sp": ("o", "-"), "ntk": ("s", "--"), "mup": ("^", ":"), "mean_field": ("^", ":")}


def digits(n_train, n_test=400, seed=0):
    d = load_digits(flat=True)
    idx = np.random.default_rng(seed).permutation(len(d.labels))
    tr, te = idx[:n_train], idx[-n_test:]
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    return f32(d.images[tr]), f32(one_hot(d.labels[tr])), f32(d.images[te]), f32(one_hot(d.labels[te]))


def make(name, depth=2, d=64, k=10, activation="relu", base=64, zero_readout=None):
    # μP's readout starts at zero (allowed by its b ≥ 1/2; recommended by microsoft/mup's authors, issue #7).
    out_std = 0.0 if (name == "mup" if zero_readout is None else zero_readout) else 1.0
    return lambda w: mlp(d, w, k, depth=depth, parameterization=name, base_width=base, out_std=out_std,
                         activation=activation)


def part_coord(args, report):
    x, y, _, _ = digits(16)
    widths = [64, 128, 256, 512] if args.quick else [64, 128, 256, 512, 1024, 2048]
    lrs = {"mup": 3e-4, "sp": 3e-5, "ntk": 3e-4}
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=False)
    for ax, name in zip(axes, ("sp", "ntk", "mup")):
        cc = coordinate_check(make(name), widths, x, y, learning_rate=lrs[name], steps=3, seeds=3)
        s, e = cc.slopes("change")
        report["coord"][name] = {"lr": lrs[name], "layers": list(cc.layers), "slope": s.tolist(),
                                 "stderr": e.tolist()}
        fits = ", ".join(f"{layer} {a:+.2f}±{b:.2f}" for layer, a, b in zip(cc.layers, s, e))
        print(f"coord {name:4s} lr={lrs[name]:g}: {fits}")
        for j, (layer, mk, ls) in enumerate(zip(cc.layers, "os^", ("-", "--", ":"))):
            ax.loglog(cc.widths, cc.change.mean(1)[:, j], marker=mk, linestyle=ls, label=layer)
        ax.set(title=name, xlabel="width", ylabel="mean |Δ coordinate| after 3 steps")
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "mup_coord_check.png", dpi=120)


def part_transfer(args, report):
    x, y, xt, yt = digits(512)
    widths = [64, 256, 1024] if args.quick else [64, 128, 256, 512, 1024]
    lrs = 2.0 ** np.arange(-19, -9 if args.quick else -8)
    steps = 100 if args.quick else 300
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, name in zip(axes, ("sp", "mup")):
        # Both start from a zero readout: at the base width SP and μP are then the same network.
        sw = learning_rate_sweep(make(name, zero_readout=True), widths, lrs, x, y, xt, yt, steps=steps,
                                 batch_size=128, seeds=2)
        best = np.log2(sw.learning_rates[sw.best_indices()])
        report["transfer"][name] = {"widths": widths, "log2_lr": np.log2(lrs).tolist(), "steps": steps,
                                    "train_loss": np.where(np.isfinite(sw.train_loss.mean(2)), sw.train_loss.mean(2),
                                                           None).tolist(),
                                    "best_log2_lr": best.tolist(), "drift": sw.drift()}
        print(f"transfer {name:3s}: best log2 lr per width {dict(zip(widths, best.tolist()))}, "
              f"drift {sw.drift()} steps")
        for i, w in enumerate(widths):
            loss = sw.train_loss.mean(2)[i]
            ok = np.isfinite(loss)
            ax.plot(np.log2(lrs)[ok], loss[ok], marker="osd^v"[i % 5], linestyle=["-", "--", ":", "-."][i % 4],
                    label=f"width {w}")
        ax.set(title=f"{name}: training loss after {steps} steps", xlabel="log2 learning rate", yscale="log")
        ax.legend()
    axes[0].set_ylabel("½‖f − y‖² per point")
    fig.tight_layout()
    fig.savefig(args.out / "mup_lr_transfer.png", dpi=120)


def part_features(args, report):
    x, y, _, _ = digits(32)
    widths = [128, 256, 512] if args.quick else [128, 256, 512, 1024, 2048]
    for name, lr in (("ntk", 3e-4), ("mup", 3e-4)):
        fl = feature_learning_vs_width(make(name), widths, x, y, learning_rate=lr, steps=10, seeds=3)
        sl = fl.slopes()
        report["features"][name] = {"widths": widths, "representation": fl.representation.mean(1).tolist(),
                                    "ntk": fl.ntk.mean(1).tolist(), "slopes": sl}
        print(f"features {name:3s}: Δφ slope {sl['representation'][0]:+.2f}±{sl['representation'][1]:.2f}, "
              f"ΔΘ slope {sl['ntk'][0]:+.2f}±{sl['ntk'][1]:.2f}")


def circle_data():
    phi = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    x = np.stack([np.cos(phi), np.sin(phi)], 1).astype(np.float32)
    return x, (np.sin(2 * phi) + 0.5 * np.cos(phi))[:, None].astype(np.float32)


def part_meanfield(args, report):
    x, y = circle_data()
    n_limit = 4096 if args.quick else 16384
    widths = [64, 128, 256, 512] if args.quick else [64, 128, 256, 512, 1024, 2048]
    steps, lr, seeds = 200, 0.01, 4
    out = {}
    for name in ("mean_field", "ntk"):
        mk = make(name, depth=1, d=2, k=1, activation="tanh")
        big = mk(n_limit)
        p0 = big.init_fn(jax.random.PRNGKey(100))
        pt = train_for(big, p0, x, y, steps=steps, learning_rate=lr)
        f_limit = np.asarray(big.apply_fn(pt, x))
        h0, ht = big.features_fn(p0, x)[0], big.features_fn(pt, x)[0]
        rep = float(np.linalg.norm(ht - h0) / np.linalg.norm(h0))
        dev = np.zeros((len(widths), seeds))
        for i, w in enumerate(widths):
            net = mk(w)
            for s in range(seeds):
                q0 = net.init_fn(jax.random.PRNGKey(s))
                f = np.asarray(net.apply_fn(train_for(net, q0, x, y, steps=steps, learning_rate=lr), x))
                dev[i, s] = np.sqrt(np.mean((f - f_limit) ** 2))
        slope, err = width_slopes(widths, dev)
        out[name] = dict(widths=widths, deviation=dev.mean(1).tolist(), slope=float(slope), stderr=float(err),
                         representation_change_at_limit=rep, final_loss_limit=float(0.5 * np.mean((f_limit - y) ** 2)))
        print(f"meanfield {name}: RMS distance to the width-{n_limit} run after {steps} steps ∝ "
              f"width^{float(slope):+.2f}±{float(err):.2f}; "
              f"relative change of the hidden layer at width {n_limit}: {rep:.3f}")
    report["meanfield"] = out
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, mk_ in (("mean_field", "^"), ("ntk", "s")):
        ax.loglog(widths, out[name]["deviation"], marker=mk_, linestyle=MARKERS[name][1],
                  label=f"{name}: slope {out[name]['slope']:+.2f}")
    ax.set(xlabel="width", ylabel=f"RMS |f_n − f_{n_limit}| after {steps} steps")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "mup_mean_field.png", dpi=120)


PARTS = {"coord": part_coord, "transfer": part_transfer, "features": part_features, "meanfield": part_meanfield}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", nargs="+", choices=sorted(PARTS), default=list(PARTS))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {p: {} for p in args.parts}
    report["quick"] = args.quick
    for part in args.parts:
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        PARTS[part](args, report)
        report[part + "_seconds"] = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - cpu0}
        print(f"{part}: {time.perf_counter() - t0:.0f} s wall, {time.process_time() - cpu0:.0f} s CPU")
    (args.out / "bench_mup.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
