"""Run neural-tangents' ``examples/imdb.py`` with this package and with
neural-tangents itself, and compare their predictions (issue 19).

The example's only change is its import (``import neural_tangents as nt`` /
``from neural_tangents import stax`` -> ``ntkcourse``). Data: the example's
own ``use_dummy_data=True`` inputs (nothing is downloaded); they are drawn
once, in this package's environment, and shared, because ``jax.random``
draws differ between the two environments' JAX versions. Its
``examples/datasets.py`` (TensorFlow) is replaced by an empty module, which
the dummy-data path does not use. Both runs are in JAX's 64-bit mode.

    python tools/run_nt_imdb.py --nt-repo PATH_TO_NEURAL_TANGENTS_CHECKOUT \
        --nt-python .nt-oracle/venv/bin/python [--work /tmp/nt_imdb]

Prints each run's output and the largest relative difference between the
two libraries' NNGP and NTK test predictions.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DRIVER = '''
import sys, time
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
which, out = sys.argv[1], sys.argv[2]
from examples import util
mod = __import__("examples.imdb_" + which, fromlist=["main"])
data = np.load("dummy_data.npz")
mod._get_dummy_data = lambda mask_constant: tuple(
    jax.numpy.asarray(data[k]) for k in ("x_train", "y_train", "x_test", "y_test"))
saved = {}
summary = util.print_summary
def keep(name, labels, net_p, lin_p, loss):
    saved[name.replace(" ", "_")] = np.asarray(net_p)
    summary(name, labels, net_p, lin_p, loss)
util.print_summary = keep
start = time.time()
mod.main(use_dummy_data=True)
print("total seconds", round(time.time() - start, 1))
np.savez(out, **saved)
'''

MAKE_DATA = '''
import numpy as np, jax
jax.config.update("jax_enable_x64", True)
from examples import imdb_ours
d = imdb_ours._get_dummy_data(100.0)
np.savez("dummy_data.npz", **dict(zip(("x_train", "y_train", "x_test", "y_test"), map(np.asarray, d))))
'''


def switched(source: str) -> str:
    """The example with its neural-tangents imports replaced by this package."""
    lines = source.splitlines()
    out = [{"import neural_tangents as nt": "import ntkcourse as nt",
            "from neural_tangents import stax": "from ntkcourse import stax"}.get(line, line) for line in lines]
    if out == lines:
        raise SystemExit("run_nt_imdb: the example's neural-tangents imports were not found.")
    return "\n".join(out) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nt-repo", required=True, type=Path, help="a checkout of google/neural-tangents")
    parser.add_argument("--nt-python", required=True, help="the Python of an environment with neural-tangents")
    parser.add_argument("--work", default="/tmp/nt_imdb", type=Path, help="scratch directory")
    args = parser.parse_args(argv)
    examples = args.work / "examples"
    examples.mkdir(parents=True, exist_ok=True)
    source = (args.nt_repo / "examples" / "imdb.py").read_text()
    (examples / "imdb_nt.py").write_text(source)
    (examples / "imdb_ours.py").write_text(switched(source))
    (examples / "util.py").write_text((args.nt_repo / "examples" / "util.py").read_text())
    (examples / "datasets.py").write_text('"""Offline stand-in: the dummy-data path needs no dataset."""\n')
    (examples / "__init__.py").write_text("")
    (args.work / "drive.py").write_text(DRIVER)
    env_ours = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", MAKE_DATA], cwd=args.work, check=True, env=env_ours)
    for which, python, env in (("ours", sys.executable, env_ours), ("nt", args.nt_python, None)):
        print(f"--- {which}", flush=True)
        subprocess.run([python, "drive.py", which, f"out_{which}.npz"], cwd=args.work, check=True, env=env)
    import numpy as np

    ours, theirs = np.load(args.work / "out_ours.npz"), np.load(args.work / "out_nt.npz")
    for name in theirs:
        diff = np.abs(ours[name] - theirs[name]).max() / np.abs(theirs[name]).max()
        print(f"{name}: largest difference {diff:.2g} of neural-tangents' largest prediction")


if __name__ == "__main__":
    main()
