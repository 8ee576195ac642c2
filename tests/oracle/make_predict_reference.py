"""Write neural-tangents 0.6.5 reference values for ``nt.predict`` and ``max_learning_rate``.

Runs ONLY in the oracle virtualenv (see ``make_reference.py`` for building it):

    .nt-oracle/venv/bin/python tests/oracle/make_predict_reference.py

Output: ``tests/data/nt_predict_reference.json``: the inputs (from
``numpy.random.default_rng(0)``), the network (a ReLU MLP), and what
neural-tangents' ``predict`` functions return for them in float64.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "data" / "nt_predict_reference.json"


def main():
    rng = np.random.default_rng(0)
    x_train, x_test = rng.normal(size=(6, 3)), rng.normal(size=(4, 3))
    y_train = rng.normal(size=(6, 2))
    fx_train_0, fx_test_0 = rng.normal(size=(6, 2)), rng.normal(size=(4, 2))
    _, _, kernel_fn = stax.serial(stax.Dense(64, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(1, W_std=1.5))
    k_dd = kernel_fn(x_train, None, ("nngp", "ntk"))
    k_td = kernel_fn(x_test, x_train, ("nngp", "ntk"))
    k_tt = kernel_fn(x_test, None, ("nngp", "ntk"))
    ref = {"network": "serial(Dense(64, W_std=1.5, b_std=0.1), Relu(), Dense(1, W_std=1.5))",
           "x_train": x_train, "x_test": x_test, "y_train": y_train,
           "fx_train_0": fx_train_0, "fx_test_0": fx_test_0}
    times = np.array([[0.5, 3.0]])
    for reg in (0.0, 0.1):
        predict_fn = nt.predict.gradient_descent_mse(k_dd.ntk, y_train, learning_rate=2.0, diag_reg=reg)
        train, test = predict_fn(times, fx_train_0, fx_test_0, k_td.ntk)
        ref[f"mse/reg{reg}/t/train"], ref[f"mse/reg{reg}/t/test"] = train, test
        train, test = predict_fn(None, fx_train_0, fx_test_0, k_td.ntk)
        ref[f"mse/reg{reg}/inf/train"], ref[f"mse/reg{reg}/inf/test"] = train, test
    ens = nt.predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, learning_rate=2.0, diag_reg=0.1)
    for t_name, t in (("t", 1.5), ("inf", None)):
        for where, x in (("test", x_test), ("train", None)):
            out = ens(t, x, ("nngp", "ntk"), compute_cov=True)
            for g in ("nngp", "ntk"):
                ref[f"ensemble/{t_name}/{where}/{g}/mean"] = getattr(out, g).mean
                ref[f"ensemble/{t_name}/{where}/{g}/cov"] = getattr(out, g).covariance
    gp = nt.predict.gp_inference(k_dd, y_train, diag_reg=0.05)
    out = gp(("nngp", "ntk"), k_td, k_tt)
    for g in ("nngp", "ntk"):
        ref[f"gp/{g}/mean"] = getattr(out, g).mean
        ref[f"gp/{g}/cov"] = getattr(out, g).covariance
    def cross_entropy(fx, y_hat):
        return -jax.numpy.mean(jax.nn.log_softmax(fx) * y_hat)

    labels = np.eye(2)[(y_train[:, 0] > 0).astype(int)]
    ref["labels"] = labels
    for mom in (None, 0.9):
        gd = nt.predict.gradient_descent(cross_entropy, k_dd.ntk, labels, learning_rate=0.5, momentum=mom)
        train, test = gd(np.array([0.0, 2.0, 10.0]), fx_train_0, fx_test_0, k_td.ntk)
        ref[f"gd/momentum{mom}/train"], ref[f"gd/momentum{mom}/test"] = train, test
    ref["max_lr"] = nt.predict.max_learning_rate(k_dd.ntk)
    ref["max_lr/size12/momentum0.5"] = nt.predict.max_learning_rate(k_dd.ntk, y_train_size=12, momentum=0.5)
    ref = {k: (np.asarray(v).tolist() if not isinstance(v, str) else v) for k, v in ref.items()}
    ref["versions"] = {"neural_tangents": nt.__version__ if hasattr(nt, "__version__") else "0.6.5",
                       "jax": jax.__version__}
    OUT.write_text(json.dumps(ref, indent=None) + "\n")
    print("wrote", OUT, len(ref), "entries")


if __name__ == "__main__":
    main()
