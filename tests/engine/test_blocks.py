"""Image kernels in blocks within a memory budget (ntkcourse.engine.blocks).

Claims: a computation that does not fit the budget in one piece completes in
blocks with the values of one piece (to round-off: every entry is computed by
the same formulas, so 1e-13 relative covers summation order); only the blocks
on and above the diagonal are computed for K(x, x); when not even one pair of
inputs fits, a KernelMemoryError says how much memory is needed and how to
change the budget; the spatial-diagonal path gives the diagonal of the full
path exactly; a stage whose output has its input's layout is compiled to
write over its input (donated), and no other.
"""
import logging
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax
from ntkcourse.engine import ExecutionPlan, KernelMemoryError, blocks

# Every entry of a block is computed by the same formulas as one piece; only
# the order of the few sums (input Gram, window averages) may differ.
ROUND_OFF = dict(rtol=1e-13, atol=1e-15)


def _conv_stack():
    return [stax.Conv(4, (3, 3), padding="SAME", W_std=1.5, b_std=0.1), stax.Relu(),
            stax.Conv(4, (2, 2), padding="VALID", W_std=1.3), stax.Erf()]


def _gap_net():
    return stax.serial(*_conv_stack(), stax.GlobalAvgPool(), stax.Dense(1, W_std=1.2, b_std=0.2))


def _images(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 5, 4, 2))


def _blocks_used(caplog):
    return [r.block_size for r in caplog.records if hasattr(r, "block_size")]


def test_a_kernel_larger_than_the_budget_completes_in_blocks_with_the_same_values(caplog):
    x = _images(13)
    _, _, kernel_fn = _gap_net()
    whole = kernel_fn(x, None, ("nngp", "ntk"))
    # One 13 x 13 block of this network needs ~6 MB; 1 MB forces blocks of a few images.
    with caplog.at_level(logging.DEBUG, logger="ntkcourse.engine.blocks"):
        blocked = kernel_fn(x, None, ("nngp", "ntk"), plan=ExecutionPlan(memory_budget="1MB"))
    sizes = _blocks_used(caplog)
    assert sizes and 1 <= sizes[-1] < 13
    np.testing.assert_allclose(blocked.nngp, whole.nngp, **ROUND_OFF)
    np.testing.assert_allclose(blocked.ntk, whole.ntk, **ROUND_OFF)


def test_symmetric_blocking_computes_only_upper_blocks_and_mirrors_them(monkeypatch):
    x = _images(10, seed=1)
    _, _, kernel_fn = _gap_net()
    whole = kernel_fn(x, None, ("nngp", "ntk"))
    calls = []
    real_chain = blocks._Chain.__call__

    def counting(self, a, b):
        calls.append(b is None)
        return real_chain(self, a, b)

    monkeypatch.setattr(blocks._Chain, "__call__", counting)
    tiled = kernel_fn(x, None, ("nngp", "ntk"), plan=ExecutionPlan(block_size=3))
    # 4 blocks of rows: 4 diagonal blocks and 6 above the diagonal, not 16.
    assert len(calls) == 10 and sum(calls) == 4
    np.testing.assert_allclose(tiled.nngp, whole.nngp, **ROUND_OFF)
    np.testing.assert_allclose(tiled.ntk, whole.ntk, **ROUND_OFF)
    np.testing.assert_allclose(tiled.ntk, np.asarray(tiled.ntk).T, **ROUND_OFF)


def test_cross_kernel_in_blocks_equals_one_piece_including_the_variances():
    x1, x2 = _images(7, seed=2), _images(5, seed=3)
    _, _, kernel_fn = _gap_net()
    whole = kernel_fn(x1, x2)
    blocked = kernel_fn(x1, x2, plan=ExecutionPlan(block_size=2))
    for name in ("nngp", "ntk", "cov1", "cov2"):
        np.testing.assert_allclose(getattr(blocked, name), getattr(whole, name), **ROUND_OFF)


@pytest.mark.parametrize("second", ["none", "other"])
def test_padded_images_in_blocks_keep_the_masks_of_one_piece(second):
    """The masks of padded inputs (``mask_constant``) come back as the whole call gives them: those of
    all of x1 (and of x2, when given), not ``None``."""
    x1 = _images(5, seed=5)
    x1[1, 3:] = x1[3, :, 2:] = 100.0
    x2 = None if second == "none" else _images(3, seed=6)
    if x2 is not None:
        x2[0, :, :1] = 100.0
    _, _, kernel_fn = _gap_net()
    whole = kernel_fn(x1, x2, mask_constant=100.0)
    blocked = kernel_fn(x1, x2, mask_constant=100.0, plan=ExecutionPlan(block_size=2))
    np.testing.assert_array_equal(blocked.mask1, whole.mask1)
    assert (blocked.mask2 is None) == (whole.mask2 is None)
    if whole.mask2 is not None:
        np.testing.assert_array_equal(blocked.mask2, whole.mask2)
    np.testing.assert_allclose(blocked.nngp, whole.nngp, **ROUND_OFF)


def test_spatial_kernel_output_in_blocks_keeps_its_pairs_of_positions():
    """Without a readout the output keeps every pair of positions; blocks of
    K(x, x) below the diagonal are the transposes with each pair swapped."""
    x = _images(6, seed=4)
    _, _, kernel_fn = stax.serial(*_conv_stack())
    whole = kernel_fn(x, None, "ntk")
    blocked = kernel_fn(x, None, "ntk", plan=ExecutionPlan(block_size=4))
    assert blocked.shape == (6, 6, 4, 4, 3, 3)
    np.testing.assert_allclose(blocked, whole, **ROUND_OFF)


def test_when_not_even_one_pair_fits_the_error_says_what_is_needed_and_how_to_change_it():
    _, _, kernel_fn = _gap_net()
    with pytest.raises(KernelMemoryError, match=r"needs .* GB .*memory budget of .*NTKCOURSE_MEMORY_BUDGET"):
        kernel_fn(_images(4), None, ("nngp", "ntk"), plan=ExecutionPlan(memory_budget=2000))


def test_outputs_larger_than_the_budget_are_refused_before_any_work():
    _, _, kernel_fn = stax.serial(*_conv_stack())
    with pytest.raises(KernelMemoryError, match=r"output kernels alone take .*diagonal_spatial=True"):
        kernel_fn(_images(40), None, ("nngp", "ntk"), plan=ExecutionPlan(memory_budget="100kB"))


def test_the_budget_comes_from_the_environment_when_the_plan_names_none(monkeypatch):
    monkeypatch.setenv("NTKCOURSE_MEMORY_BUDGET", "3kB")
    assert ExecutionPlan().budget_bytes() == 3000
    _, _, kernel_fn = _gap_net()
    with pytest.raises(KernelMemoryError):
        kernel_fn(_images(4), None, "ntk")


def test_float32_blocks_equal_one_float32_piece():
    x = _images(9, seed=5).astype(np.float32)
    _, _, kernel_fn = _gap_net()
    whole = kernel_fn(x, None, "ntk", dtype=jnp.float32)
    blocked = kernel_fn(x, None, "ntk", dtype=jnp.float32, plan=ExecutionPlan(block_size=4))
    assert blocked.dtype == np.float32
    np.testing.assert_allclose(blocked, whole, rtol=1e-5, atol=1e-6)  # float32 round-off


def test_blocks_write_each_stage_over_its_input_where_the_layouts_match(monkeypatch):
    # Stages after the first: Relu (same layout), Conv VALID 2x2 (smaller),
    # Erf (same), GlobalAvgPool (no spatial axes), Dense (same): donation
    # (XLA's input_output_alias) exactly where the layouts match, no JAX
    # warning about unusable donated buffers, and the values of one piece.
    chains = []
    real_init = blocks._Chain.__init__

    def recording(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        chains.append(self)

    monkeypatch.setattr(blocks._Chain, "__init__", recording)
    x = _images(10, seed=3)
    _, _, kernel_fn = _gap_net()
    whole = kernel_fn(x, None, ("nngp", "ntk"), plan=ExecutionPlan(block_size=10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        blocked = kernel_fn(x, None, ("nngp", "ntk"), plan=ExecutionPlan(block_size=3))
    aliased = ["input_output_alias" in stage.as_text() for stage in chains[-1].stages]
    assert aliased == [True, False, True, False, True]
    np.testing.assert_allclose(blocked.nngp, whole.nngp, **ROUND_OFF)
    np.testing.assert_allclose(blocked.ntk, whole.ntk, **ROUND_OFF)
