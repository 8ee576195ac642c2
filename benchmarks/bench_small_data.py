"""Benchmark: NTK/NNGP kernels (SVM and kernel regression) against a random forest and an RBF SVM on small data sets.

The protocol and the hyper-parameter grids are those of
:mod:`ntkcourse.small_data` (Arora et al. 2020): stratified 4-fold
cross-validation repeated with ``--repeats`` shuffles, hyper-parameters chosen
by an inner 3-fold cross-validation on each training fold. Prints, per data
set and method, the mean test accuracy ± its standard deviation over the
folds, and the time taken.

    .venv/bin/python benchmarks/bench_small_data.py [--sets iris wine breast_cancer digits] [--repeats 2]
"""
import argparse
import time

from ntkcourse.small_data import DATA_SETS, GRIDS, cross_validated_accuracy, load_small_data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(DATA_SETS))
    parser.add_argument("--methods", nargs="+", default=list(GRIDS))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"{'data set':<14} {'n':>5} " + " ".join(f"{m:>15}" for m in args.methods), flush=True)
    for name in args.sets:
        x, y = load_small_data(name)
        cells, seconds = [], []
        for method in args.methods:
            t0 = time.perf_counter()
            acc = cross_validated_accuracy(x, y, method, repeats=args.repeats).accuracies
            seconds.append(time.perf_counter() - t0)
            cells.append(f"{100 * acc.mean():6.1f} ± {100 * acc.std(ddof=1):4.1f}")
        print(f"{name:<14} {len(y):5d} " + " ".join(f"{c:>15}" for c in cells), flush=True)
        print(f"{'  seconds':<20} " + " ".join(f"{s:15.0f}" for s in seconds), flush=True)


if __name__ == "__main__":
    main()
