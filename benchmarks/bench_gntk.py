"""Benchmark: the GNTK Gram matrix of MUTAG, and its growth with the number of graphs.

1. The full MUTAG Gram (188 graphs), ``num_layers=2, num_mlp_layers=2,
   jk=True, scale='uniform'`` (the authors' default): first call and warm
   time (best of ``--repeat``). Goal (issue #14): <= 0.3 s warm and >= 10x
   faster than the authors' loop over graph pairs.
2. With ``--authors PATH/gntk.py`` (their file from
   https://github.com/KangchengHou/gntk, NOT part of this repository), their
   code in the same run, exactly as their ``gram.py`` drives it (sparse
   ``A + Aᵀ + I``, ``GNTK.diag`` per graph, ``GNTK.gntk`` for every pair
   i <= j, one process): its time, the speed-up, and the largest differences
   between the two Gram matrices (off the diagonal, and on it, relative).
3. ``--scaling``: synthetic graphs of 20..40 nodes (Erdős–Rényi, mean degree
   about 2.5, one-hot features of 7 labels, seed 0), for several counts up to
   ``--max-graphs`` (>= 2000), each in a fresh process: warm time and peak
   resident memory, and the fitted exponent of time against the count (2
   expected: the work is one tile per pair of node groups).

    .venv/bin/python benchmarks/bench_gntk.py [--authors /tmp/gntk/gntk.py] [--scaling]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import time

import numpy as np

from _timing import best_time  # benchmarks/_timing.py, next to this script
from ntkcourse.data import load_mutag
from ntkcourse.graph import gntk

SETTINGS = dict(num_layers=2, num_mlp_layers=2, jk=True, scale="uniform")


def synthetic_graphs(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    graphs = []
    for _ in range(count):
        n = int(rng.integers(20, 41))
        upper = np.triu(rng.random((n, n)) < 2.5 / n, 1).astype(float)
        features = np.zeros((n, 7))
        features[np.arange(n), rng.integers(0, 7, n)] = 1.0
        graphs.append((upper + upper.T, features))
    return graphs


def authors_gram(path: str, graphs):
    """Their GNTK class, driven as their gram.py does, one process."""
    import scipy.sparse

    spec = importlib.util.spec_from_file_location("authors_gntk", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Graph:
        def __init__(self, features):
            self.node_features = features

    model = module.GNTK(**SETTINGS)
    objects, adjacency, diags = [], [], []
    for a, x in graphs:
        rows, cols = np.nonzero(np.triu(a))
        coo = scipy.sparse.coo_matrix(([1] * len(rows), (rows, cols)), shape=a.shape, dtype=np.float32)
        adjacency.append(coo + coo.T + scipy.sparse.identity(a.shape[0]))
        objects.append(Graph(x))
        diags.append(model.diag(objects[-1], adjacency[-1]))
    m = len(graphs)
    gram = np.zeros((m, m))
    for i in range(m):
        for j in range(i, m):
            gram[i, j] = gram[j, i] = model.gntk(objects[i], objects[j], diags[i], diags[j],
                                                 adjacency[i], adjacency[j])
    return gram


def one_scaling_point(count: int, repeat: int):
    graphs = synthetic_graphs(count)
    gntk(graphs, **SETTINGS)
    warm = best_time(lambda: gntk(graphs, **SETTINGS), repeat)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    nodes = sum(a.shape[0] for a, _ in graphs)
    print(json.dumps({"graphs": count, "nodes": nodes, "warm_s": warm, "peak_rss_mb": peak_mb}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--authors", help="path of gntk.py from KangchengHou/gntk, to time it in this run")
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--max-graphs", type=int, default=2000)
    parser.add_argument("--one-point", type=int, help=argparse.SUPPRESS)  # a scaling point, in a child process
    args = parser.parse_args()
    if args.one_point:
        one_scaling_point(args.one_point, repeat=2)
        return

    graphs = load_mutag().graphs
    t0 = time.perf_counter()
    ours = gntk(graphs, **SETTINGS)
    cold = time.perf_counter() - t0
    warm = best_time(lambda: gntk(graphs, **SETTINGS), args.repeat)
    print(f"MUTAG, 188 graphs, {SETTINGS}")
    print(f"  ntkcourse.graph.gntk: first call {cold:.2f} s, warm {warm:.3f} s (best of {args.repeat}; goal <= 0.3 s)")
    if args.authors:
        t0 = time.perf_counter()
        theirs = authors_gram(args.authors, graphs)
        loop = time.perf_counter() - t0
        off = ~np.eye(len(theirs), dtype=bool)
        scale = np.sqrt(np.outer(np.diag(theirs), np.diag(theirs)))
        print(f"  authors' loop (one process): {loop:.2f} s; speed-up {loop / warm:.0f}x (goal >= 10x)")
        print(f"  largest difference off the diagonal: {np.max(np.abs(ours - theirs)[off] / scale[off]):.1e} "
              f"of sqrt(K_ii K_jj); on the diagonal: "
              f"{np.max(np.abs(np.diag(ours) - np.diag(theirs)) / np.diag(theirs)):.1e} relative")

    if args.scaling:
        counts = [args.max_graphs // 8, args.max_graphs // 4, args.max_graphs // 2, args.max_graphs]
        print(f"scaling: synthetic graphs of 20-40 nodes, {SETTINGS}, block_nodes=256 (default)")
        print(f"  {'graphs':>7} {'nodes':>7} {'warm s':>8} {'peak RSS MB':>12}")
        points = []
        for count in counts:
            result = subprocess.run([sys.executable, __file__, "--one-point", str(count)],
                                    capture_output=True, text=True, check=True)
            point = json.loads(result.stdout.strip().splitlines()[-1])
            points.append(point)
            print(f"  {point['graphs']:>7} {point['nodes']:>7} {point['warm_s']:>8.2f} {point['peak_rss_mb']:>12.0f}")
        slope = np.polyfit(np.log([p["graphs"] for p in points]), np.log([p["warm_s"] for p in points]), 1)[0]
        print(f"  fitted exponent of time against the number of graphs: {slope:.2f} (2 expected)")
        print("  memory: the output (graphs² float64) plus tiles of a fixed size, whatever the count")


if __name__ == "__main__":
    main()
