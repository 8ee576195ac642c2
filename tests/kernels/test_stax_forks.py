"""Sums of branches (FanOut ... FanInSum): exact kernels or a refusal, never a wrong value.

The kernel of a sum of branches is the sum of their kernels only when the
branches are uncorrelated; a branch that has passed an affine layer with its
own weights since the FanOut is uncorrelated with every other branch.
"""
import jax
import numpy as np
import pytest

from ntkcourse import empirical, stax
from ntkcourse.stax.layer import stages_of

X = np.random.default_rng(0).normal(size=(3, 5))


def _residual(width, tail=()):
    """The residual block z + Dense(relu(z)) with z = Dense(x): one branch without its own weights."""
    return stax.serial(
        stax.Dense(width),
        stax.FanOut(2),
        stax.parallel(stax.serial(stax.Relu(), stax.Dense(width, W_std=2**0.5)), stax.Identity()),
        stax.FanInSum(),
        *tail,
    )


def test_relu_plus_identity_of_one_gaussian_is_refused():
    # relu(z) + z has variance 2.5 Var(z) (cross term E[relu(z) z] = Var(z)/2);
    # the sum of the branch kernels would give 1.5 Var(z).
    net = stax.serial(stax.Dense(8), stax.FanOut(2), stax.parallel(stax.Relu(), stax.Identity()),
                      stax.FanInSum(), stax.Dense(1))
    with pytest.raises(NotImplementedError, match=r"FanInSum: branches \[0, 1\] are correlated"):
        net[2](X, None, "nngp")


def test_identity_plus_identity_is_refused():
    # z + z = 2z has kernel 4K, not the 2K of summed kernels (neural-tangents returns 2K).
    net = stax.serial(stax.Dense(8), stax.FanOut(2), stax.parallel(stax.Identity(), stax.Identity()),
                      stax.FanInSum())
    with pytest.raises(NotImplementedError, match="FanInSum"):
        net[2](X, None, "nngp")


def test_nested_fork_correlated_with_outer_branch_is_refused():
    # The inner sum W z + z still contains z, so it is correlated with the outer Identity branch.
    inner = stax.serial(stax.FanOut(2), stax.parallel(stax.Dense(8), stax.Identity()), stax.FanInSum())
    net = stax.serial(stax.Dense(8), stax.FanOut(2), stax.parallel(inner, stax.Identity()), stax.FanInSum())
    with pytest.raises(NotImplementedError, match="FanInSum"):
        net[2](X, None, "nngp")


def test_nested_fork_decorrelated_by_outer_dense_is_accepted():
    # Dense after the inner sum gives the outer branch weights of its own:
    # Var = Var(W (W' z + z)) + Var(z) = 2 Var(z) + Var(z) = 3 mean(x^2).
    inner = stax.serial(stax.FanOut(2), stax.parallel(stax.Dense(8), stax.Identity()), stax.FanInSum(),
                        stax.Dense(8))
    net = stax.serial(stax.Dense(8), stax.FanOut(2), stax.parallel(inner, stax.Identity()), stax.FanInSum())
    diag = np.diag(np.asarray(net[2](X, None, "nngp")))
    np.testing.assert_allclose(diag, 3 * np.mean(X**2, axis=1), rtol=1e-12)  # exact up to rounding


def test_residual_block_variance_is_exact():
    # Var(z + W relu(z)) = Var(z) + 2 Var(z)/2 = 2 mean(x^2) with W_std^2 = 2.
    diag = np.diag(np.asarray(_residual(8)[2](X, None, "nngp")))
    np.testing.assert_allclose(diag, 2 * np.mean(X**2, axis=1), rtol=1e-12)  # exact up to rounding


def test_residual_block_matches_wide_networks():
    # Monte Carlo over 200 initialisations of width-128 networks; the mean has
    # a standard error (reported by the estimator) and a finite-width bias of
    # order 1/128. Seeded; a 4.5-standard-error band plus 5% for the bias.
    net = _residual(128, (stax.Relu(), stax.Dense(1)))
    exact = net[2](X, None, ("nngp", "ntk"))
    mc = empirical.monte_carlo_kernel_fn(net, None, jax.random.PRNGKey(0), 200)(X, None, ("nngp", "ntk"))
    for name in ("nngp", "ntk"):
        want = np.asarray(getattr(exact, name))
        got, se = getattr(mc, name), getattr(mc, name + "_stderr")
        assert np.all(np.abs(got - want) <= 4.5 * se + 0.05 * np.abs(want)), name


def _conv_residual():
    """A residual block on images with a convolution in each branch: conv(relu(z)) + conv(z), z = conv(x)."""
    conv = lambda: stax.Conv(2, (3, 3), padding="SAME", W_std=2**0.5, b_std=0.1)  # noqa: E731
    main = stax.serial(stax.Relu(), conv())
    return stax.serial(conv(), stax.FanOut(2), stax.parallel(main, conv()), stax.FanInSum(),
                       stax.GlobalAvgPool(), stax.Dense(1))


def test_parallel_branches_are_staged_in_lockstep_split_at_their_convolutions():
    main = stax.serial(stax.Relu(), stax.Conv(2, (3, 3)), stax.Relu(), stax.Conv(2, (3, 3)))
    net = stax.parallel(main, stax.Identity())
    # One stage per map of the longest branch; a stage reads neighbouring
    # positions when any branch's map at that step does (a convolution).
    assert [reads for _, reads in stages_of(net)] == [False, True, False, True]


def test_a_residual_block_over_images_in_staged_blocks_equals_its_traced_kernel():
    from ntkcourse.engine import ExecutionPlan

    x = np.random.default_rng(1).normal(size=(3, 3, 3, 1))
    kernel_fn = _conv_residual()[2]
    blocked = kernel_fn(x, None, ("nngp", "ntk"), plan=ExecutionPlan(block_size=2))
    with jax.enable_x64(True):  # the caller's jit in 64-bit mode, as neural-tangents users run it
        traced = jax.jit(kernel_fn, static_argnames="get")(x, None, ("nngp", "ntk"))
    # The same maps in programs cut differently: round-off only (values of order one).
    np.testing.assert_allclose(blocked.nngp, traced.nngp, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(blocked.ntk, traced.ntk, rtol=1e-12, atol=1e-14)
