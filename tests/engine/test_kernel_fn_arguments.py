"""kernel_fn's arguments: nothing is silently ignored, bad values are named."""
import numpy as np
import pytest

from ntkcourse import stax
from ntkcourse.engine import ExecutionPlan, execution_plan, default_plan
from ntkcourse.engine.plan import parse_bytes


def _fn():
    return stax.serial(stax.Dense(3, W_std=1.5), stax.Relu(), stax.Dense(1))[2]


X = np.ones((2, 4))


def test_an_unknown_keyword_is_refused_with_its_name():
    with pytest.raises(TypeError, match=r"kernel_fn: unexpected keyword argument `diagonal_spatail`"):
        _fn()(X, None, "nngp", diagonal_spatail=True)


def test_mask_constant_on_inputs_without_spatial_axes_is_refused():
    # Masks are per position of sequences or images: flat inputs (batch, features) have none.
    with pytest.raises(ValueError, match=r"`mask_constant` marks padded time steps of sequences .* `x1` has shape"):
        _fn()(X, None, "nngp", mask_constant=100.0)


def test_diagonal_batch_false_is_refused():
    with pytest.raises(TypeError, match=r"`diagonal_batch` is not supported"):
        _fn()(X, None, "nngp", diagonal_batch=False)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(diagonal_spatial="yes"), r"`diagonal_spatial` must be True or False, got 'yes'"),
    (dict(plan={"memory_budget": 1}), r"`plan` must be an ntkcourse.engine.ExecutionPlan"),
    (dict(get="cov"), r"`get` must be a name or a tuple of names among 'nngp', 'ntk', 'cov1', 'cov2', .*got 'cov'"),
])
def test_bad_values_are_named(kwargs, pattern):
    get = kwargs.pop("get", "nngp")
    with pytest.raises(ValueError, match=pattern):
        _fn()(X, None, get, **kwargs)


@pytest.mark.parametrize("text, expected", [("8GB", 8 * 10**9), ("512MiB", 512 * 2**20), ("1e6", 10**6),
                                            (" 2 kB ", 2000), (1.5e9, 1_500_000_000)])
def test_memory_sizes_are_read_with_their_units(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("bad", ["lots", "8 GBs", -1, 0, True])
def test_unreadable_memory_budgets_are_refused(bad):
    with pytest.raises(ValueError, match=r"ExecutionPlan: `memory_budget` must be"):
        ExecutionPlan(memory_budget=bad)


def test_execution_plan_context_changes_the_default_inside_the_block_only():
    before = default_plan()
    with execution_plan(symmetric_tile=7) as plan:
        assert default_plan() is plan and plan.symmetric_tile == 7
    assert default_plan() is before
