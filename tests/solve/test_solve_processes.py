"""The solvers on several JAX processes and devices (ntkcourse.solve.processes, cluster_run).

Claims: two real processes on localhost, joined by ``jax.distributed`` (Gloo
collectives on CPU), each holding every other block of kernel rows, give the
single-process predictor; one process with two CPU devices
(``--xla_force_host_platform_device_count=2``) deals its blocks to both and
gives the same predictor. Each block is computed by the same ``kernel_fn``
call whatever the process or device, and every process runs the same CG
arithmetic on the gathered products, so agreement is to round-off; 1e-12
relative leaves room for a different BLAS summation order across processes.
"""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from ntkcourse.solve import kernel_regression_cg
from ntkcourse.solve.cluster_run import mlp_kernel_fn, sphere_problem

ARGS = ["--n", "300", "--depth", "2", "--block-size", "50", "--landmarks", "40"]


@pytest.fixture(scope="module")
def single():
    x, y, xt = sphere_problem(300)
    return kernel_regression_cg(mlp_kernel_fn(2), x, y, xt, ridge=1e-3, tol=1e-8, block_size=50, n_landmarks=40)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(commands, env, timeout=90):
    """Start every command at once; wait for all; kill the ones still running on timeout or failure."""
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for c in commands]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, err[-3000:]
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return outs


def _env(**extra):
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env.update(extra)
    return env


@pytest.mark.slow
def test_two_processes_give_the_single_process_predictor(single, tmp_path):
    port = _free_port()
    out = tmp_path / "two.npz"
    base = [sys.executable, "-m", "ntkcourse.solve.cluster_run", *ARGS, "--num-processes", "2",
            "--coordinator", f"127.0.0.1:{port}", "--timeout", "60"]
    reports = _run([base + ["--process-id", "0", "--out", str(out)], base + ["--process-id", "1"]], _env())
    got = np.load(out)
    assert np.max(np.abs(got["test"] - single.test)) <= 1e-12 * np.max(np.abs(single.test))
    # Each process held its own half: blocks 0, 2, 4 and 1, 3, 5 of 50 rows, 300 columns each.
    assert sorted(int(k) for k in reports[0]["block_devices"]) == [0, 2, 4]
    assert sorted(int(k) for k in reports[1]["block_devices"]) == [1, 3, 5]
    assert reports[0]["held_bytes"] == reports[1]["held_bytes"] == 150 * 300 * 8


@pytest.mark.slow
def test_two_devices_in_one_process_give_the_same_predictor(single, tmp_path):
    out = tmp_path / "devices.npz"
    env = _env(XLA_FLAGS="--xla_force_host_platform_device_count=2")
    (report,) = _run([[sys.executable, "-m", "ntkcourse.solve.cluster_run", *ARGS, "--out", str(out)]], env)
    assert sorted(set(report["block_devices"].values())) == report["local_devices"] == [0, 1]
    got = np.load(out)
    assert np.max(np.abs(got["test"] - single.test)) <= 1e-12 * np.max(np.abs(single.test))
