"""kernel_fn's outputs work in ordinary JAX and NumPy code whether JAX's 64-bit
mode is on or off (each mode in its own subprocess: the mode is process-wide).
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

_SCRIPT = textwrap.dedent(
    """
    import json, warnings
    import numpy as np
    import jax, jax.numpy as jnp
    import ntkcourse as nt
    from ntkcourse import stax

    warnings.simplefilter("error")  # a truncation warning would fail the run
    x = np.random.default_rng(0).normal(size=(3, 5))
    _, _, kernel_fn = stax.serial(stax.Dense(8, b_std=0.1), stax.Relu(), stax.Dense(1))
    k = kernel_fn(x, None, "nngp")
    full = kernel_fn(x, None)
    traced = jax.jit(lambda a: kernel_fn(a, None, "nngp"))(x)
    out = {
        "type": "numpy" if isinstance(k, np.ndarray) else type(k).__module__.split(".")[0],
        # neural-tangents users time kernels with .block_until_ready(): it must exist on every output.
        "ready": [np.asarray(a.block_until_ready(), np.float64).tolist() for a in
                  (k, full.ntk, nt.batch(kernel_fn, batch_size=2)(x, None, "nngp"),
                   nt.batch(kernel_fn, batch_size=2)(x, None, ("nngp", "ntk")).ntk)],
        "dtype": str(k.dtype),
        "values": np.asarray(k, np.float64).tolist(),
        "diag": np.asarray(jnp.diag(k)).tolist(),
        "jnp_sum": float(jnp.sum(k * 2.0 + jnp.ones(3))),
        "cov1_dtype": str(full.cov1.dtype),
        "traced_dtype": str(traced.dtype),
        "traced_mixes": float(jnp.sum(jax.jit(lambda a: kernel_fn(a, None, "nngp") * jnp.ones(3))(x))),
    }
    print(json.dumps(out))
    """
)


def _run(x64: bool):
    env = dict(os.environ, JAX_ENABLE_X64="1" if x64 else "0", JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def modes():
    return {"on": _run(True), "off": _run(False)}


def test_64_bit_mode_on_returns_jax_float64(modes):
    assert (modes["on"]["type"], modes["on"]["dtype"], modes["on"]["traced_dtype"]) == ("jaxlib", "float64", "float64")


def test_64_bit_mode_off_returns_numpy_float64_for_concrete_inputs(modes):
    off = modes["off"]
    assert (off["type"], off["dtype"], off["cov1_dtype"]) == ("numpy", "float64", "float64")


def test_64_bit_mode_off_keeps_every_digit_of_the_float64_computation(modes):
    # The same float64 recursion runs in both modes: equal to the last bit.
    np.testing.assert_array_equal(modes["off"]["values"], modes["on"]["values"])


def test_jnp_code_runs_without_errors_or_warnings_in_both_modes(modes):
    # jnp.diag and jnp arithmetic ran under warnings-as-errors; float32 in the
    # 64-bit-off mode agrees with float64 to float32 rounding (rtol 1e-6).
    for name in ("diag", "jnp_sum"):
        np.testing.assert_allclose(modes["off"][name], modes["on"][name], rtol=1e-6)


def test_traced_outputs_take_the_callers_float_dtype_with_64_bit_mode_off(modes):
    off = modes["off"]
    assert off["traced_dtype"] == "float32"
    np.testing.assert_allclose(off["traced_mixes"], modes["on"]["traced_mixes"], rtol=1e-6)  # float32 rounding


def test_every_output_answers_block_until_ready_with_its_values_in_both_modes(modes):
    # kernel_fn's and nt.batch's outputs, NNGP and NTK, in each mode: the same float64 values (batch blocks
    # are the same recursion: equal to the last bit).
    for mode in ("on", "off"):
        nngp, ntk, batched_nngp, batched_ntk = modes[mode]["ready"]
        np.testing.assert_array_equal(nngp, modes["on"]["values"])
        np.testing.assert_array_equal(batched_nngp, nngp)
        np.testing.assert_array_equal(batched_ntk, ntk)
