"""The combinators' own rules, exactly and at the cost of a few small kernels.

``FanOut`` copies its input and opens a fork level on which no branch is yet
independent of the others; ``close_fork`` (used by ``FanInSum`` and the other
fan-ins) accepts a combination of branches only when at most one of them has
no affine layer of its own since the fork, and hands the outer fork levels on;
``repeat`` is ``serial(*[layer] * n)`` with neural-tangents' stacked
parameters. Each test states one rule; kernel maps are called directly on the
input kernel where the rule is about the map itself (no compilation), and
whole networks are compared with the network they must equal, exactly (the same
float64 operations in the same order: equal to the last bit, or to 1e-12 where
``lax.scan`` and an unrolled loop may order them differently).
"""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax
from ntkcourse.stax.combinators import close_fork
from ntkcourse.stax.layer import kernel_map_of, layer_spec, stages_of
from ntkcourse.stax.masked import MaskedActivations

X = np.random.default_rng(0).normal(size=(3, 4))
IMAGES = np.random.default_rng(1).normal(size=(2, 3, 3, 2))


@pytest.fixture(autouse=True)
def _float64():
    with jax.enable_x64(True):
        yield


def _input_kernel(x=X, **changes):
    k = stax.Identity()[2](x, None)
    return k.replace(**changes) if changes else k


@pytest.mark.parametrize("make, name, config", [
    (lambda: stax.FanOut(3), "FanOut", {"num": 3}),
    (lambda: stax.FanInSum(), "FanInSum", {}),
    (lambda: stax.Identity(), "Identity", {}),
    (lambda: stax.repeat(stax.Dense(4), 2), "repeat", {"n": 2}),
    (lambda: stax.parallel(stax.Identity(), stax.Relu()), "parallel", {}),
    (lambda: stax.serial(stax.Identity(), stax.Relu()), "serial", {}),
])
def test_each_combinator_declares_its_name_and_configuration(make, name, config):
    # The LayerSpec is what introspection (the structured empirical NTK, parameter structure) reads.
    spec = layer_spec(make())
    assert (spec.name, spec.config) == (name, config)


def test_fan_out_copies_its_input_shape_and_values_into_each_branch():
    init_fn, apply_fn, _ = stax.FanOut(3)
    assert init_fn(jax.random.PRNGKey(0), (3, 4)) == ([(3, 4)] * 3, ())
    outs = apply_fn((), X)
    assert len(outs) == 3 and all(o is X for o in outs)


def test_fan_out_opens_one_fork_level_on_which_no_branch_is_independent():
    k = _input_kernel(fork_independent=(True,))
    ks = kernel_map_of(stax.FanOut(2))(k)
    assert [b.fork_independent for b in ks] == [(True, False), (True, False)]


@pytest.mark.parametrize("required, needs_only_diagonal", [
    (True, True), (False, False), ([True, True], True), ([True, False], False), ([False, True], False)])
def test_fan_out_needs_only_the_input_diagonal_when_every_branch_does(required, needs_only_diagonal):
    # One requirement for all branches, or one per branch (a list): the input serves them all.
    assert layer_spec(stax.FanOut(2)).input_diagonal(required) is needs_only_diagonal


def test_fan_out_takes_activations_in_any_layout():
    # An NCHW network's kernel records where its activations keep their axes; FanOut passes it on unchanged.
    k = _input_kernel(layout=(0, 1))
    assert [b.layout for b in kernel_map_of(stax.FanOut(2))(k)] == [(0, 1), (0, 1)]


def test_fan_out_passes_padded_inputs_to_every_branch():
    seq = np.stack([X, X])  # (2, 3, 4): two sequences of three steps; the last step of the first is padding
    seq[0, 2] = 7.0
    outs = stax.FanOut(2)[1]((), seq, mask_constant=7.0)
    assert len(outs) == 2
    for out in outs:
        np.testing.assert_array_equal(np.asarray(out), seq)


def test_close_fork_outside_any_fork_has_no_level():
    ks = [_input_kernel(), _input_kernel()]
    assert close_fork("FanInSum", ks) == ()


def test_close_fork_refuses_branches_of_different_fork_levels():
    ks = [_input_kernel(fork_independent=(True,)), _input_kernel(fork_independent=(True, False))]
    with pytest.raises(ValueError) as err:
        close_fork("FanInProd", ks)
    assert str(err.value) == "FanInProd: the branches come from different FanOut levels ([1, 2])."


def test_close_fork_accepts_one_dependent_branch_among_independent_ones():
    ks = [_input_kernel(fork_independent=(f,)) for f in (True, True, False)]
    assert close_fork("FanInSum", ks) == ()


def test_close_fork_refuses_two_dependent_branches_and_names_them():
    ks = [_input_kernel(fork_independent=(f,)) for f in (False, True, False)]
    with pytest.raises(NotImplementedError) as err:
        close_fork("FanInSum", ks)
    assert str(err.value) == (
        "FanInSum: branches [0, 2] are correlated (none of them has an affine layer with its own weights "
        "(Dense, Conv) after the FanOut), and this package does not compute the covariance between branches: "
        "combining them as if independent would give a wrong kernel. Keep at most one branch without such a "
        "layer, e.g. parallel(Identity(), serial(Relu(), Dense(n))) for a residual block.")


def test_close_fork_hands_on_each_outer_level_independent_only_where_every_branch_is():
    # Three levels: the innermost is closed; of the two outer ones, a branch of the combination is
    # independent on a level only if every combined branch was.
    ks = [_input_kernel(fork_independent=(True, True, True)), _input_kernel(fork_independent=(True, False, False))]
    assert close_fork("FanInSum", ks) == (True, False)


def test_fan_in_sum_of_a_single_branch_is_that_branch():
    net = stax.serial(stax.Dense(3), stax.FanOut(1), stax.parallel(stax.Dense(5)), stax.FanInSum())
    ref = stax.serial(stax.Dense(3), stax.Dense(5))
    assert net[0](jax.random.PRNGKey(0), X.shape)[0] == (3, 5)
    np.testing.assert_array_equal(net[2](X, None, "ntk"), ref[2](X, None, "ntk"))


def test_fan_in_sum_names_itself_when_masked_and_plain_branches_meet():
    values = jnp.asarray(np.stack([X, X]))
    masked = MaskedActivations(values, jnp.ones(values.shape[:2], bool), None)
    with pytest.raises(ValueError, match=r"^FanInSum: some branches carry the masks of padded inputs"):
        stax.FanInSum()[1]((), [masked, values])


def _repeated_block():
    return stax.serial(stax.Dense(4, W_std=1.3, b_std=0.2), stax.Erf())


@pytest.mark.parametrize("n", [-1, 1.0, True, "2"])
def test_repeat_refuses_a_count_that_is_not_a_nonnegative_integer(n):
    with pytest.raises(ValueError, match="^" + re.escape(f"repeat: `n` must be an integer >= 0, got {n!r}.") + "$"):
        stax.repeat(_repeated_block(), n)


def test_repeat_once_is_the_layer_itself():
    block = _repeated_block()
    np.testing.assert_array_equal(stax.repeat(block, 1)[2](X, None, "ntk"), block[2](X, None, "ntk"))


def test_repeat_asks_of_its_input_what_the_repeated_layer_asks():
    # A pooling layer that keeps the shape needs every pair of positions of its input, whatever its output needs.
    pool = stax.AvgPool((2,), strides=(1,), padding="SAME")
    assert layer_spec(stax.repeat(pool, 2)).input_diagonal(True) is False


@pytest.mark.parametrize("make", [lambda: stax.Identity(), lambda: stax.repeat(stax.Identity(), 2)],
                         ids=["Identity", "repeat"])
def test_identity_and_repeat_take_activations_in_any_layout(make):
    k = _input_kernel(layout=(0, 1))
    assert kernel_map_of(make())(k).layout == (0, 1)


def test_repeat_zero_times_is_the_identity():
    init_fn, apply_fn, kernel_fn = stax.repeat(_repeated_block(), 0)
    assert init_fn(jax.random.PRNGKey(0), (3, 4)) == ((3, 4), ())
    assert apply_fn((), X) is X
    np.testing.assert_array_equal(kernel_fn(X, None, "nngp"), stax.Identity()[2](X, None, "nngp"))


def test_repeat_refuses_a_layer_that_changes_the_shape():
    with pytest.raises(ValueError) as err:
        stax.repeat(stax.Dense(5), 2)[0](jax.random.PRNGKey(0), (3, 4))
    assert str(err.value) == ("repeat: the layer changes the shape (3, 4) into (3, 5); use serial(*[layer] * n) "
                              "for such a layer.")


@pytest.mark.parametrize("partitionable", [True, False])
def test_repeat_draws_repetition_i_with_the_ith_split_key_and_stacks_the_parameters(partitionable):
    # Without jax_threefry_partitionable (JAX's default before 0.5, still used to reproduce old draws)
    # split(key, n)[i] depends on n: one repetition uses split(key, 1)[0].
    block = _repeated_block()
    key = jax.random.PRNGKey(3)
    with jax.threefry_partitionable(partitionable):
        _check_repeat_draws(block, key)


def _check_repeat_draws(block, key):
    for n in (1, 3):
        shape, params = stax.repeat(block, n)[0](key, (3, 4))
        assert shape == (3, 4)
        for i, sub in enumerate(jax.random.split(key, n)):
            want = block[0](sub, (3, 4))[1]
            got = jax.tree_util.tree_map(lambda leaf: leaf[i], params)
            jax.tree_util.tree_map(np.testing.assert_array_equal, got, want)


def test_repeat_applies_the_repetitions_in_order_as_the_unrolled_network():
    block = _repeated_block()
    _, params = stax.repeat(block, 3)[0](jax.random.PRNGKey(1), (3, 4))
    want = X
    for i in range(3):
        want = block[1](jax.tree_util.tree_map(lambda leaf: leaf[i], params), want)
    np.testing.assert_allclose(stax.repeat(block, 3)[1](params, X), want, rtol=1e-12, atol=0)


def test_repeat_passes_keyword_arguments_to_each_repetition():
    # Aggregate reads its graph from apply_fn(..., pattern=A): every repetition must aggregate.
    block = stax.serial(stax.Dense(4), stax.Aggregate())
    nodes = np.random.default_rng(2).normal(size=(2, 3, 4))
    pattern = np.broadcast_to(np.array([[0., 1., 1.], [1., 0., 0.], [1., 0., 1.]]), (2, 3, 3))
    _, params = stax.repeat(block, 2)[0](jax.random.PRNGKey(4), nodes.shape)
    want = nodes
    for i in range(2):
        want = block[1](jax.tree_util.tree_map(lambda leaf: leaf[i], params), want, pattern=pattern)
    np.testing.assert_allclose(stax.repeat(block, 2)[1](params, nodes, pattern=pattern), want, rtol=1e-12, atol=0)


def test_repeat_has_the_kernel_and_stages_of_the_unrolled_network():
    block = _repeated_block()
    repeated, unrolled = stax.repeat(block, 2), stax.serial(block, block)
    assert len(stages_of(repeated)) == len(stages_of(unrolled))
    spec = layer_spec(repeated)
    assert spec.has_params and spec.children == (block,)
    assert spec.input_diagonal(True) is True and spec.input_diagonal(False) is False
    np.testing.assert_array_equal(repeated[2](X, None, "ntk"), unrolled[2](X, None, "ntk"))


def test_repeat_takes_padded_inputs_as_the_unrolled_network():
    block = stax.serial(stax.Conv(2, (2, 2), padding="SAME"), stax.Relu())
    x = IMAGES.copy()
    x[0, 2] = 5.0  # the last row of the first image is padding
    _, params = stax.repeat(block, 2)[0](jax.random.PRNGKey(5), x.shape)
    unrolled_params = [jax.tree_util.tree_map(lambda leaf: leaf[i], params) for i in range(2)]
    got = stax.repeat(block, 2)[1](params, x, mask_constant=5.0)
    want = stax.serial(block, block)[1](unrolled_params, x, mask_constant=5.0)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


def test_parallel_draws_each_branch_with_its_own_split_key():
    branches = [stax.Dense(2), stax.Dense(3, b_std=0.5), stax.Dense(4)]
    key = jax.random.PRNGKey(6)
    shapes, params = stax.parallel(*branches)[0](key, [(3, 4)] * 3)
    assert shapes == [(3, 2), (3, 3), (3, 4)] and len(params) == 3
    for branch, sub, got in zip(branches, jax.random.split(key, 3), params):
        jax.tree_util.tree_map(np.testing.assert_array_equal, got, branch[0](sub, (3, 4))[1])


@pytest.mark.parametrize("call, message", [
    (lambda net: net[1]([(), ()], X), "parallel: expected 2 inputs (one per branch), got 1."),
    (lambda net: net[1]([(), ()], [X, X, X]), "parallel: expected 2 inputs (one per branch), got 3."),
    (lambda net: net[0](jax.random.PRNGKey(0), [(3, 4)]), "parallel: expected 2 input shapes (one per branch), got 1."),
    (lambda net: net[0](jax.random.PRNGKey(0), (3, 4)), "parallel: expected 2 input shapes (one per branch, a list "
     "such as FanOut's init_fn returns), got the single shape (3, 4)."),
    (lambda net: kernel_map_of(net)(_input_kernel()), "parallel: expected 2 kernels (one per branch), got 1."),
    (lambda net: net[2](X, None, "nngp"), "parallel: expected 2 kernels (one per branch), got 1."),
])
def test_parallel_refuses_a_number_of_branches_it_does_not_have(call, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + r"(\n|$)"):
        call(stax.parallel(stax.Identity(), stax.Identity()))


def test_parallel_staged_refuses_a_number_of_kernels_it_does_not_have():
    # The engine runs parallel's stages (the branches' t-th stages in lockstep), not its whole map: the same refusal.
    step = stages_of(stax.parallel(stax.Identity(), stax.Identity()))[0][0]
    with pytest.raises(ValueError, match="^" + re.escape("parallel: expected 2 kernels (one per branch), got 1.")):
        step(_input_kernel())


def test_parallel_stages_run_each_branch_s_stages_in_lockstep():
    # Branches of 5, 1 and 3 stages (one per layer): stage t applies each branch's t-th stage, or passes a branch
    # on once its stages are done; it reads neighbours where any branch's t-th stage does.
    branches = [stax.serial(stax.Conv(2, (2, 2), padding="SAME"), stax.Relu(), stax.Conv(2, (2, 2), padding="SAME"),
                            stax.Relu(), stax.Conv(2, (2, 2), padding="SAME")),
                stax.Dense(2),
                stax.serial(stax.Dense(2), stax.Relu(), stax.AvgPool((2, 2), padding="SAME"))]
    stages = stages_of(stax.parallel(*branches))
    per_branch = [stages_of(b) for b in branches]
    assert [len(s) for s in per_branch] == [5, 1, 3] and len(stages) == 5
    assert [flag for _, flag in stages] == [True, False, True, False, True]  # Conv, Relu, Conv/AvgPool, Relu, Conv
    ks = kernel_map_of(stax.FanOut(3))(stax.Identity()[2](IMAGES, None))
    staged = ks
    for step, _ in stages:
        staged = step(staged)
    whole = kernel_map_of(stax.parallel(*branches))(ks)
    for got, want in zip(staged, whole):
        np.testing.assert_allclose(got.nngp, want.nngp, rtol=1e-12, atol=0)
        np.testing.assert_allclose(got.cov1, want.cov1, rtol=1e-12, atol=0)


@pytest.mark.parametrize("required, per_branch", [
    (True, [True, True]), (False, [False, True]), ([True, False], [True, True]), ([False, False], [False, True])])
def test_parallel_passes_each_branch_its_own_requirement(required, per_branch):
    # The first branch (an activation) needs what its output needs; Flatten needs only the diagonal.
    assert layer_spec(stax.parallel(stax.Relu(), stax.Flatten())).input_diagonal(required) == per_branch


def test_parallel_passes_keyword_arguments_to_each_branch():
    nodes = np.random.default_rng(3).normal(size=(2, 3, 4))
    pattern = np.broadcast_to(np.array([[0., 1., 1.], [1., 0., 0.], [1., 0., 1.]]), (2, 3, 3))
    out = stax.parallel(stax.Aggregate(), stax.Identity())[1](((), ()), [nodes, nodes], pattern=pattern)
    np.testing.assert_allclose(out[0], stax.Aggregate()[1]((), nodes, pattern=pattern), rtol=0, atol=0)
    np.testing.assert_array_equal(out[1], nodes)


def _branch_kernels(*widths, nonlinear=()):
    """The kernels of Dense branches of the given widths on X after one FanOut (Relu after the branches whose
    index is in ``nonlinear``): every branch independent of the others.
    """
    ks = kernel_map_of(stax.FanOut(len(widths)))(_input_kernel())
    out = []
    for i, (k, width) in enumerate(zip(ks, widths)):
        k = kernel_map_of(stax.Dense(width))(k)
        out.append(kernel_map_of(stax.Relu())(k) if i in nonlinear else k)
    return out


@pytest.mark.parametrize("ks, message", [
    (lambda: _input_kernel(), "FanInSum: expects a list of branches (use FanOut/parallel before it)."),
    (lambda: [], "FanInSum: expects a list of branches (use FanOut/parallel before it)."),
    (lambda: _branch_kernels(3, 3, 5), "FanInSum: branch outputs differ in shape: (3, 3) and (3, 5)."),
])
def test_fan_in_sum_refuses_what_is_not_a_list_of_equal_branches(ks, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        kernel_map_of(stax.FanInSum())(ks())


def test_fan_in_sum_is_gaussian_only_when_every_branch_is():
    total = kernel_map_of(stax.FanInSum())
    assert total(_branch_kernels(3, 3)).is_gaussian
    assert not total(_branch_kernels(3, 3, nonlinear=(1,))).is_gaussian


def test_fan_in_sum_closes_the_fork_of_its_branches():
    # Two Dense branches are independent: the sum is outside the fork again; a FanOut whose two branches
    # are the identity is refused, naming FanInSum.
    assert kernel_map_of(stax.FanInSum())(_branch_kernels(3, 3)).fork_independent == ()
    with pytest.raises(NotImplementedError, match=r"^FanInSum: branches \[0, 1\] are correlated"):
        kernel_map_of(stax.FanInSum())(kernel_map_of(stax.FanOut(2))(_input_kernel()))


def test_fan_in_sum_of_padded_branches_is_real_where_any_branch_is():
    k = stax.Identity()[2](np.stack([X, X]), None)  # two sequences of three steps
    real_a = np.array([[True, True, False], [True, True, True]])
    real_b = np.array([[True, False, False], [True, True, False]])
    out = kernel_map_of(stax.FanInSum())([k.replace(mask1=real_a), k.replace(mask1=real_b)])
    np.testing.assert_array_equal(out.mask1, real_a | real_b)
    with pytest.raises(ValueError, match="^FanInSum: some branches carry the masks of padded inputs"):
        kernel_map_of(stax.FanInSum())([k.replace(mask1=real_a), k])


def test_fan_in_sum_takes_branches_in_any_layout():
    ks = [k.replace(layout=(0, 1)) for k in _branch_kernels(3, 3)]
    assert kernel_map_of(stax.FanInSum())(ks).layout == (0, 1)
