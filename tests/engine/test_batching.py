"""Blocked kernel computation (ntkcourse.batching.batch).

Claims: blocks give the same kernel as one call (to round-off: each entry is
computed by the same formulas, only the matrix product of the input kernel is
split, so 1e-13 relative covers summation order); no block exceeds
``batch_size`` inputs; symmetric kernels compute only the upper blocks; and
with two (virtual CPU) devices both devices get blocks and the result is the
same.
"""
import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import batching, stax
from ntkcourse.engine import ExecutionPlan, host


def _mlp():
    return stax.serial(stax.Dense(64, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(1, W_std=1.5))


def _cnn():
    return stax.serial(stax.Conv(8, (3, 3), padding="SAME", b_std=0.1), stax.Relu(), stax.Conv(8, (2, 2)), stax.Erf())


@pytest.fixture(scope="module")
def fc_inputs():
    rng = np.random.default_rng(0)
    return rng.standard_normal((23, 6)), rng.standard_normal((17, 6))


def test_blocked_symmetric_kernel_equals_unblocked(fc_inputs):
    x1, _ = fc_inputs
    _, _, kernel_fn = _mlp()
    full = kernel_fn(x1, None, ("nngp", "ntk"))
    blocked = batching.batch(kernel_fn, 5)(x1, None, ("nngp", "ntk"))
    np.testing.assert_allclose(blocked.nngp, full.nngp, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(blocked.ntk, full.ntk, rtol=1e-13, atol=1e-15)


def test_blocked_cross_kernel_equals_unblocked(fc_inputs):
    x1, x2 = fc_inputs
    _, _, kernel_fn = _mlp()
    full = kernel_fn(x1, x2, "ntk")
    blocked = batching.batch(kernel_fn, 4)(x1, x2, "ntk")
    np.testing.assert_allclose(blocked, full, rtol=1e-13, atol=1e-15)


def test_blocked_cnn_kernel_keeps_spatial_pairs_in_order():
    x = np.random.default_rng(1).standard_normal((7, 5, 4, 2))
    _, _, kernel_fn = _cnn()
    full = kernel_fn(x, None, "nngp")
    blocked = batching.batch(kernel_fn, 3)(x, None, "nngp")
    assert blocked.shape == full.shape == (7, 7, 4, 4, 3, 3)
    np.testing.assert_allclose(blocked, full, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("height, width", [(3, 3), (3, 4)])
def test_blocked_kernel_of_spatial_diagonals_mirrors_only_the_batch_axes(height, width):
    """With ``diagonal_spatial=True`` the blocks below the diagonal of K(x, x) are those above with the two
    inputs swapped and the positions left as they are (session 11: they were also transposed in space,
    wrong values for square images and a shape error for others)."""
    x = np.random.default_rng(7).normal(size=(5, height, width, 2))
    _, _, kernel_fn = stax.serial(stax.Conv(3, (2, 2), padding="SAME"), stax.Relu(),
                                  stax.Conv(3, (2, 2), padding="SAME"))
    whole = np.asarray(kernel_fn(x, None, ("nngp", "ntk"), diagonal_spatial=True).ntk)
    blocked = batching.batch(kernel_fn, batch_size=2, progress=False)(x, None, ("nngp", "ntk"), diagonal_spatial=True)
    assert blocked.ntk.shape == (5, 5, height, width)
    np.testing.assert_allclose(blocked.ntk, whole, rtol=1e-13, atol=0)


def test_no_block_holds_more_than_batch_size_inputs(fc_inputs):
    x1, x2 = fc_inputs
    _, _, kernel_fn = _mlp()
    seen = []

    def spy(a, b=None, get=None, **kw):
        seen.append((a.shape[0], None if b is None else b.shape[0]))
        return kernel_fn(a, b, get, **kw)

    batching.batch(spy, 5)(x1, x2, "nngp")
    assert seen and max(max(s for s in pair if s is not None) for pair in seen) <= 5


def test_symmetric_kernel_computes_only_upper_blocks(fc_inputs):
    x1, _ = fc_inputs
    _, _, kernel_fn = _mlp()
    calls = []

    def spy(a, b=None, get=None, **kw):
        calls.append(b is None)
        return kernel_fn(a, b, get, **kw)

    batching.batch(spy, 5)(x1, None, "nngp")  # 23 inputs -> 5 blocks -> 15 upper pairs
    assert len(calls) == 15 and sum(calls) == 5


@pytest.mark.parametrize(
    "kwargs, match",
    [({"batch_size": -1}, "batch_size"), ({"batch_size": 4, "device_count": 99}, "device_count")],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    _, _, kernel_fn = _mlp()
    with pytest.raises(ValueError, match=match):
        batching.batch(kernel_fn, **kwargs)


def test_blocks_are_spread_over_two_devices():
    """Run in a fresh process with two virtual CPU devices (XLA_FLAGS)."""
    script = textwrap.dedent(
        """
        import jax, numpy as np
        from ntkcourse import stax, batching
        assert len(jax.devices()) == 2, jax.devices()
        _, _, kernel_fn = stax.serial(stax.Dense(32, b_std=0.1), stax.Relu(), stax.Dense(1))
        used = set()
        def spy(a, b=None, get=None, **kw):
            used.add(next(iter(a.devices())))
            return kernel_fn(a, b, get, **kw)
        x = np.random.default_rng(0).standard_normal((20, 5))
        blocked = batching.batch(spy, 4)(x, None, ("nngp", "ntk"))
        full = kernel_fn(x, None, ("nngp", "ntk"))
        assert len(used) == 2, used
        np.testing.assert_allclose(blocked.ntk, full.ntk, rtol=1e-13, atol=1e-15)
        print("OK", sorted(str(d) for d in used))
        """
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("OK")


@pytest.mark.parametrize("net", [_mlp, _cnn], ids=["mlp", "cnn"])
def test_symmetric_tiles_inside_kernel_fn_equal_one_block(net):
    """kernel_fn(x, None) on many inputs computes only the upper tiles (flat
    inputs: engine.tiles; images: engine.blocks) and mirrors them; the result
    equals one block."""
    x = np.random.default_rng(2).standard_normal((11, 5, 4, 2) if net is _cnn else (11, 6))
    _, _, kernel_fn = net()
    whole = kernel_fn(x, None, ("nngp", "ntk"))
    tiled = kernel_fn(x, None, ("nngp", "ntk"), plan=ExecutionPlan(symmetric_tile=3, block_size=3))
    np.testing.assert_allclose(tiled.nngp, whole.nngp, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(tiled.ntk, whole.ntk, rtol=1e-13, atol=1e-15)


def test_host_input_kernel_equals_xla_input_kernel():
    """Flat inputs on CPU get their input Gram from NumPy's BLAS
    (engine.host.host_inputs); with that path switched off by the plan, from
    XLA. The two differ only in summation order: rtol 1e-13 (a few ulps after
    3 layers)."""
    import jax

    x = np.random.default_rng(3).standard_normal((9, 7))
    _, _, kernel_fn = _mlp()
    assert host.host_inputs(jax.numpy.asarray(x), None) is not None
    on_host = kernel_fn(x, x[:4], ("nngp", "ntk"))
    xla = kernel_fn(x, x[:4], ("nngp", "ntk"), plan=ExecutionPlan(host_gram=False))
    host_k = on_host
    np.testing.assert_allclose(host_k.nngp, xla.nngp, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(host_k.ntk, xla.ntk, rtol=1e-13, atol=1e-15)


def test_symmetric_host_tiles_nngp_only_and_output_variances():
    """The tiled host path with get='nngp' (no NTK) and its Kernel's cov1 (the
    output variances, not the input ones) equal the untiled computation."""
    x = np.random.default_rng(4).standard_normal((10, 6))
    _, _, kernel_fn = _mlp()
    whole = kernel_fn(x, None)
    whole_nngp = kernel_fn(x, None, "nngp")
    tiles = ExecutionPlan(symmetric_tile=3)
    tiled = kernel_fn(x, None, plan=tiles)
    np.testing.assert_allclose(kernel_fn(x, None, "nngp", plan=tiles), whole_nngp, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(tiled.cov1, whole.cov1, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(np.diag(tiled.nngp), tiled.cov1, rtol=1e-13)


def test_host_gram_tiles_equal_the_matrix_product_on_every_requested_tile():
    """engine.host.host_gram_tiles fills exactly the requested tiles of x x^T (one
    BLAS call per tile, so only summation order differs from x @ x.T: 1e-13),
    with the squared norms on the diagonal exactly."""
    x = np.random.default_rng(5).standard_normal((10, 7))
    spans = [slice(0, 3), slice(3, 7), slice(7, 10)]
    pairs = [(spans[i], spans[j]) for i in range(3) for j in range(i, 3)]
    sq_norms = np.einsum("nc,nc->n", x, x)
    out = host.host_gram_tiles(x, pairs, sq_norms)
    full = x @ x.T
    for ri, rj in pairs:
        np.testing.assert_allclose(out[ri, rj], full[ri, rj], rtol=1e-13, atol=1e-13)
    assert np.array_equal(np.diag(out), sq_norms)
    assert out.ctypes.data % 64 == 0


def test_tiled_host_path_leaves_the_blas_thread_setting_as_it_was():
    """The tiled path runs BLAS single-threaded inside the call only: the
    caller's BLAS thread counts are the same afterwards."""
    from threadpoolctl import threadpool_info

    before = [(i["prefix"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]
    _, _, kernel_fn = _mlp()
    kernel_fn(np.random.default_rng(6).standard_normal((9, 4)), None, ("nngp", "ntk"),
              plan=ExecutionPlan(symmetric_tile=3))
    after = [(i["prefix"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]
    assert after == before


def test_tiled_host_path_outputs_are_separate_arrays_that_do_not_change_later():
    """The NNGP is written over the host buffer that held the input Gram; the
    returned NNGP and NTK share no memory, and a second call leaves the first
    call's arrays untouched."""
    tiles = ExecutionPlan(symmetric_tile=3)
    _, _, kernel_fn = _mlp()
    rng = np.random.default_rng(7)
    k1 = kernel_fn(rng.standard_normal((9, 4)), None, ("nngp", "ntk"), plan=tiles)
    saved = np.array(k1.nngp), np.array(k1.ntk)
    assert not np.shares_memory(np.asarray(k1.nngp), np.asarray(k1.ntk))
    kernel_fn(rng.standard_normal((9, 4)), None, ("nngp", "ntk"), plan=tiles)
    assert np.array_equal(np.asarray(k1.nngp), saved[0]) and np.array_equal(np.asarray(k1.ntk), saved[1])


def test_wide_vector_compile_option_changes_values_by_round_off_only():
    """kernel_fn compiles with XLA's 512-bit vector preference
    (engine.compile.WIDE_VECTOR_OPTIONS); without it (the plan's
    wide_vectors=False) the values agree to round-off (1e-13 relative:
    vectorisation may reorder nothing but a fused multiply-add)."""
    x = np.random.default_rng(8).standard_normal((12, 5))
    wide = _mlp()[2](x, None, ("nngp", "ntk"))
    plain = _mlp()[2](x, None, ("nngp", "ntk"), plan=ExecutionPlan(wide_vectors=False))
    np.testing.assert_allclose(wide.nngp, plain.nngp, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(wide.ntk, plain.ntk, rtol=1e-13, atol=1e-15)


def test_kernel_jit_falls_back_to_plain_jit_where_jax_has_no_compiler_options(monkeypatch):
    """On a JAX whose jit does not take `compiler_options`, layers still build and compute."""
    import jax

    from ntkcourse.engine import compile as compile_module

    real_jit = jax.jit

    def old_jit(fn=None, **kwargs):
        if "compiler_options" in kwargs:
            raise TypeError("jit() got an unexpected keyword argument 'compiler_options'")
        return real_jit(fn, **kwargs)

    monkeypatch.setattr(compile_module.jax, "jit", old_jit)
    x = np.random.default_rng(9).standard_normal((4, 3))
    k = _mlp()[2](x, None, "ntk")
    monkeypatch.undo()
    np.testing.assert_allclose(k, _mlp()[2](x, None, "ntk"), rtol=1e-13)


def test_tiled_host_path_in_float32_equals_one_block_in_float32():
    """dtype=float32 through the tiled path (float32 Gram tiles and outputs)
    equals the untiled float32 kernel to float32 round-off (1e-5 relative)."""
    x = np.random.default_rng(10).standard_normal((11, 6)).astype(np.float32)
    _, _, kernel_fn = _mlp()
    whole = kernel_fn(x, None, ("nngp", "ntk"), dtype=jnp.float32)
    tiled = kernel_fn(x, None, ("nngp", "ntk"), dtype=jnp.float32, plan=ExecutionPlan(symmetric_tile=3))
    assert tiled.ntk.dtype == np.float32 and tiled.nngp.dtype == np.float32
    np.testing.assert_allclose(tiled.nngp, whole.nngp, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tiled.ntk, whole.ntk, rtol=1e-5, atol=1e-6)
