"""Specification of ntkcourse.empirical: empirical NTK/NNGP, Monte Carlo kernels, the naive reference.

Claims: the three implementations compute the same kernel J(x1) J(x2)ᵀ (to round-off: 1e-10 of the
kernel's scale in float64, 1e-4 in float32, where sums of a few thousand float32 products differ in
their last bits); the output layout and the averaging over traced axes are those of neural-tangents;
the blog post's pairwise loop gives the same numbers; the Monte Carlo mean of a one-hidden-layer
network is an unbiased estimate of the infinite-width kernels (its errors are a few standard
errors) and its standard error shrinks like 1/√samples; bad input fails with a message naming it.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax
from ntkcourse.empirical import (
    MonteCarloKernel,
    NtkImplementation,
    empirical_kernel_fn,
    empirical_nngp_fn,
    empirical_ntk_fn,
    monte_carlo_kernel_fn,
    naive_pairwise_ntk,
    structured_support,
)

IMPLEMENTATIONS = ("jacobian", "jvp_vjp", "structured")


def _mlp():
    """Several outputs, a standard-parameterised layer, biases with and without."""
    return stax.serial(
        stax.Dense(24, W_std=1.5, b_std=0.1), stax.Relu(),
        stax.Dense(16, W_std=1.2, b_std=0.2, parameterization="standard"), stax.Erf(),
        stax.Dense(3, W_std=0.9),
    )


def _cnn():
    """SAME and VALID padding, strides, a standard-parameterised conv, Dense on spatial features, Flatten."""
    return stax.serial(
        stax.Conv(5, (3, 3), padding="SAME", W_std=1.3, b_std=0.2), stax.Relu(),
        stax.Conv(4, (2, 2), strides=(2, 1), parameterization="standard", b_std=0.1),
        stax.Dense(2, b_std=0.1), stax.Flatten(), stax.Dense(2, W_std=1.1),
    )


def _residual():
    """Nested serial, FanOut / parallel / FanInSum, Identity."""
    block = stax.serial(stax.Relu(), stax.Dense(8, W_std=1.4))
    return stax.serial(
        stax.Dense(8, b_std=0.1), stax.FanOut(2), stax.parallel(block, stax.Identity()), stax.FanInSum(),
        stax.serial(stax.Relu(), stax.serial(stax.Dense(2, b_std=0.5))),
    )


def _pooled_cnn():
    """Pooling layers between convolutions."""
    return stax.serial(stax.Conv(4, (2, 2), padding="SAME"), stax.Erf(), stax.AvgPool((2, 2)), stax.Conv(3, (2, 2)),
                       stax.GlobalAvgPool(), stax.Dense(1))


def _small():
    """The cheapest network with every feature the layout tests need (two layers, three outputs)."""
    return stax.serial(stax.Dense(6, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(3, b_std=0.2))


NETWORKS = {"mlp": (_mlp, (7,)), "cnn": (_cnn, (6, 5, 3)), "residual": (_residual, (5,)),
            "pooled_cnn": (_pooled_cnn, (4, 4, 2)), "small": (_small, (7,))}


def random_params(net, input_shape, dtype, seed=0):
    """Standard-normal parameters with the structure init_fn gives, drawn by NumPy.

    The kernels' agreement does not depend on the distribution, and drawing
    with jax.random would compile a random-number kernel per shape (seconds each).
    """
    rng = np.random.default_rng(seed)
    _, shapes = jax.eval_shape(lambda k: net[0](k, input_shape), jax.random.PRNGKey(0))
    return jax.tree_util.tree_map(lambda s: jnp.asarray(rng.standard_normal(s.shape), dtype), shapes)


def _case(name, dtype, n1=4, n2=3, seed=0):
    make, feature_shape = NETWORKS[name]
    net = make()
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal((n1,) + feature_shape).astype(dtype)
    x2 = rng.standard_normal((n2,) + feature_shape).astype(dtype)
    return net, x1, x2, random_params(net, x1.shape, dtype, seed)


@pytest.mark.parametrize("name, dtype", [("mlp", np.float64), ("cnn", np.float64), ("residual", np.float64),
                                         ("mlp", np.float32), ("pooled_cnn", np.float32)])
def test_the_three_implementations_agree(name, dtype):
    """Jacobian contraction, NTK-vector products and the structured path: the same full block (n1, n2, k, k)."""
    with jax.enable_x64(dtype == np.float64):
        net, x1, x2, params = _case(name, dtype)
        kernels = {impl: np.asarray(empirical_ntk_fn(net, trace_axes=(), implementation=impl)(x1, x2, params))
                   for impl in IMPLEMENTATIONS}
    ref = kernels["jacobian"]
    assert ref.dtype == dtype
    assert ref.shape[:2] == (4, 3) and ref.shape[2] == ref.shape[3]
    tol = 1e-10 if dtype == np.float64 else 1e-4
    scale = np.abs(ref).max()
    for impl, k in kernels.items():
        np.testing.assert_allclose(k, ref, rtol=0, atol=tol * scale, err_msg=impl)


def test_empirical_kernel_fn_returns_both_kernels_like_neural_tangents():
    with jax.enable_x64(True):
        net, x1, x2, params = _case("small", np.float64)
        kernel_fn = empirical_kernel_fn(net, implementation=NtkImplementation.STRUCTURED_DERIVATIVES)
        both = kernel_fn(x1, x2, ("nngp", "ntk"), params)
        assert both._fields == ("nngp", "ntk")
        np.testing.assert_allclose(both.ntk, empirical_ntk_fn(net)(x1, x2, params), atol=1e-12)
        np.testing.assert_allclose(both.nngp, empirical_nngp_fn(net)(x1, x2, params), atol=1e-12)
        np.testing.assert_allclose(kernel_fn(x1, x2, "ntk", params), both.ntk, atol=0)


def _counting(net):
    """net's apply_fn, counting how often Python runs it (each trace or eager call)."""
    calls = []

    def f(params, x):
        calls.append(1)
        return net[1](params, x)

    return f, calls


def test_naive_pairwise_reference_compiles_once_per_function_and_shapes():
    """Called again with new parameters of the same shapes, the loop reuses the compiled gradient: f is not
    traced again (it used to be re-jitted on every call, about 0.4 s each on the 2-core machine)."""
    net, x1, _, params = _case("small", np.float32, n1=3)
    f, calls = _counting(net)
    naive_pairwise_ntk(f, params, x1)
    traced = len(calls)
    naive_pairwise_ntk(f, random_params(net, x1.shape, np.float32, seed=1), x1)
    assert len(calls) == traced


def test_naive_pairwise_reference_uses_the_parameters_of_each_call():
    """The compiled gradient takes the parameters as an argument (not a captured constant): a second call with
    other parameters gives their kernel (to 1e-12 of the scale in float64), not the first call's."""
    with jax.enable_x64(True):
        net, x1, x2, params = _case("small", np.float64, n1=3, n2=2)
        f, _ = _counting(net)
        naive_pairwise_ntk(f, params, x1, x2)
        other = random_params(net, x1.shape, np.float64, seed=1)
        np.testing.assert_allclose(naive_pairwise_ntk(f, other, x1, x2), empirical_ntk_fn(net)(x1, x2, other),
                                   rtol=0, atol=1e-12 * np.abs(naive_pairwise_ntk(f, other, x1, x2)).max())


def _swap_pairs(k):
    """K with the members of every pair of axes swapped: (n1, n2, k, k') -> (n2, n1, k', k)."""
    perm = [i + 1 if i % 2 == 0 else i - 1 for i in range(k.ndim)]
    return np.transpose(k, perm)


@pytest.mark.parametrize("trace_axes", [(-1,), ()], ids=["traced", "full_block"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_kernel_of_inputs_with_themselves_is_exactly_symmetric(impl, dtype, trace_axes):
    """x2=None: K(x, x') equals K(x', x) to the bit, not only to round-off (tolerance 0), for every implementation
    and both precisions; NTK-vector products build K(x, x') and K(x', x) from different columns and used to
    differ in the last bits (float32 1e-7), so K was not symmetric for eigh, Cholesky or np.array_equal(K, K.T)."""
    with jax.enable_x64(dtype == np.float64):
        net, x1, _, params = _case("mlp", dtype, n1=9)
        k = np.asarray(empirical_ntk_fn(net, trace_axes=trace_axes, implementation=impl)(x1, None, params))
    assert k.dtype == dtype
    np.testing.assert_array_equal(k, _swap_pairs(k))


def test_monte_carlo_kernel_of_inputs_with_themselves_is_exactly_symmetric():
    """The Monte Carlo mean of x with itself is symmetric to the bit (tolerance 0); float32 and NTK-vector
    products, where single draws used to differ in the last bits."""
    net = stax.serial(stax.Dense(64, W_std=1.5, b_std=0.1), stax.Erf(), stax.Dense(3))
    x = np.random.default_rng(4).standard_normal((9, 7)).astype(np.float32)
    k = monte_carlo_kernel_fn(net, None, jax.random.PRNGKey(1), 2, implementation="jvp_vjp", progress=False)(x)
    np.testing.assert_array_equal(k.ntk, k.ntk.T)
    np.testing.assert_array_equal(k.nngp, k.nngp.T)


def test_auto_uses_the_structured_path_for_stax_networks_and_the_jacobian_for_a_small_plain_function():
    net, x1, _, params = _case("small", np.float32)
    def plain(p, x):  # the same network, hidden behind a plain function
        return net[1](p, x)

    assert structured_support(net) is None
    assert structured_support(net[1]) is None  # stax apply_fns carry their layer spec
    assert structured_support(plain) is None  # read from its jaxpr
    assert empirical_ntk_fn(net).implementation_for(x1, None, params) == "structured"
    assert empirical_ntk_fn(net[1]).implementation_for(x1, None, params) == "structured"
    assert empirical_ntk_fn(plain).implementation_for(x1, None, params) == "jacobian"
    k = empirical_ntk_fn(plain, implementation="structured")(x1, None, params)
    np.testing.assert_allclose(k, empirical_ntk_fn(net)(x1, None, params), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #


def test_params_of_another_network_are_refused_with_the_offending_entry():
    net, x1, _, _ = _case("small", np.float32)
    wider = stax.serial(stax.Dense(9, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(3, b_std=0.2))
    other = random_params(wider, x1.shape, np.float32)
    with pytest.raises(ValueError, match=r"params\[0\]\[0\]` has shape \(7, 9\), but the network expects \(7, 6\)"):
        empirical_ntk_fn(net)(x1, None, other)
    with pytest.raises(ValueError, match="structure"):
        empirical_ntk_fn(net)(x1, None, other[:2])


def test_params_that_do_not_fit_a_plain_function_are_refused():
    def f(p, x):
        return x @ p["w"]

    x = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"f\(params, x1\) failed.*shape \(3, 4\)"):
        empirical_ntk_fn(f)(x, None, {"w": jnp.ones((5, 1))})
    with pytest.raises(ValueError, match="batch axis first"):
        empirical_ntk_fn(lambda p, x: jnp.sum(x @ p["w"]), vmap_axes=0)(x, None, {"w": jnp.ones((4, 1))})


def test_inputs_of_the_wrong_shape_are_refused():
    net, x1, _, params = _case("small", np.float32)
    ntk_fn = empirical_ntk_fn(net)
    with pytest.raises(ValueError, match=r"expects \(9, 6\) for inputs of shape \(4, 9\)"):
        ntk_fn(np.ones((4, 9), np.float32), None, params)
    with pytest.raises(ValueError, match="same shape as `x1` apart from the batch axis"):
        ntk_fn(x1, np.ones((2, 8), np.float32), params)
    with pytest.raises(TypeError, match="numeric"):
        ntk_fn(np.array([["a"]]), None, params)
    with pytest.raises(ValueError, match="non-empty batch axis"):
        ntk_fn(np.ones((0, 7), np.float32), None, params)
    cnn, xi, _, cparams = _case("pooled_cnn", np.float32)
    with pytest.raises(ValueError, match="do not fit the network"):
        empirical_ntk_fn(cnn)(xi.reshape(4, -1), None, cparams)


def test_bad_options_are_refused():
    net, x1, _, params = _case("small", np.float32)
    with pytest.raises(ValueError, match="`implementation`"):
        empirical_ntk_fn(net, implementation="fast")
    with pytest.raises(ValueError, match="`trace_axes` contains axis 5"):
        empirical_ntk_fn(net, trace_axes=(5,))(x1, None, params)
    with pytest.raises(ValueError, match="both traced and diagonal"):
        empirical_ntk_fn(net, trace_axes=(-1,), diagonal_axes=(1,))(x1, None, params)
    with pytest.raises(ValueError, match="`vmap_axes`"):
        empirical_ntk_fn(net, vmap_axes=1)
    with pytest.raises(TypeError, match="layer triple"):
        empirical_ntk_fn((net[0], net[1]))


# --------------------------------------------------------------------------- #
# Monte Carlo
# --------------------------------------------------------------------------- #


@functools.lru_cache(maxsize=None)
def _one_hidden_layer():
    return stax.serial(stax.Dense(32, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(2, W_std=1.2, b_std=0.2))


@pytest.fixture(scope="module")
def monte_carlo():
    """400 draws of a width-32, one-hidden-layer network (float64), with estimates after 100 and 400."""
    net = _one_hidden_layer()
    x = np.random.default_rng(3).standard_normal((5, 4))
    with jax.enable_x64(True):
        analytic = net[2](x, None, ("nngp", "ntk"))
        kernel_fn = monte_carlo_kernel_fn(net, None, jax.random.PRNGKey(7), [100, 400], batch_size=100, progress=False)
        estimates = kernel_fn(x)
    return dict(net=net, x=x, analytic=analytic, estimates=estimates)


def test_monte_carlo_mean_is_unbiased_for_one_hidden_layer(monte_carlo):
    """One hidden layer: E[Θ̂] and E[f fᵀ] equal the infinite-width kernels at any width (the first layer's
    pre-activations are exactly Gaussian, the readout is independent of them). So each entry's error is
    a standard-normal multiple of its standard error: all 15 distinct entries stay within 4.5 of them."""
    est = monte_carlo["estimates"][-1]
    assert isinstance(est, MonteCarloKernel) and est.n_samples == 400
    for name in ("nngp", "ntk"):
        z = (getattr(est, name) - np.asarray(getattr(monte_carlo["analytic"], name))) / getattr(est, name + "_stderr")
        assert np.max(np.abs(z[np.triu_indices(5)])) < 4.5, name


def test_monte_carlo_standard_error_shrinks_like_one_over_root_samples(monte_carlo):
    """Four times the samples: half the standard error (±15%: the error of a standard deviation from 100 draws)."""
    first, last = monte_carlo["estimates"]
    ratio = np.median(last.ntk_stderr / first.ntk_stderr)
    assert first.n_samples == 100 and 0.42 < ratio < 0.58


def test_monte_carlo_does_not_depend_on_the_batch_size_or_the_implementation(monte_carlo):
    """Sample s always uses fold_in(key, s): batches of 3 (jacobian path, separate functions) or of 6 agree."""
    net, x = monte_carlo["net"], monte_carlo["x"]
    with jax.enable_x64(True):
        a = monte_carlo_kernel_fn(net, None, jax.random.PRNGKey(7), 6, batch_size=6, progress=False)(x)
        b = monte_carlo_kernel_fn(net[0], net[1], jax.random.PRNGKey(7), 6, batch_size=3, implementation="jacobian",
                                  progress=False)(x, None, "ntk")
    assert isinstance(b, np.ndarray)
    np.testing.assert_allclose(b, a.ntk, rtol=1e-12)


def test_monte_carlo_rejects_bad_sample_counts():
    net = _one_hidden_layer()
    with pytest.raises(ValueError, match="increasing"):
        monte_carlo_kernel_fn(net, None, jax.random.PRNGKey(0), [10, 5])
    with pytest.raises(ValueError, match="apply_fn=None"):
        monte_carlo_kernel_fn(net, net[1], jax.random.PRNGKey(0), 10)


def test_monte_carlo_mean_and_standard_error_equal_those_of_the_stacked_samples():
    """Seven draws in batches of 3, 3 and 1 (so the running variance combines batches): the mean is
    ``np.mean`` of the seven empirical kernels computed one by one from ``fold_in(key, s)``, and the
    standard error is their ``np.std(ddof=1) / sqrt(7)``. Both paths do the same float64 arithmetic in a
    different order, hence rtol 1e-9; a dropped between-batch term or a wrong scale is off by percents."""
    net = _one_hidden_layer()
    x = np.random.default_rng(5).standard_normal((3, 4))
    key = jax.random.PRNGKey(11)
    with jax.enable_x64(True):
        est = monte_carlo_kernel_fn(net, None, key, 7, batch_size=3, progress=False)(x)
        one = empirical_kernel_fn(net[1])
        samples = {"nngp": [], "ntk": []}
        for s in range(7):
            _, params = net[0](jax.random.fold_in(key, s), x.shape)
            k = one(x, None, ("nngp", "ntk"), params)
            samples["nngp"].append(np.asarray(k.nngp))
            samples["ntk"].append(np.asarray(k.ntk))
    for name, stack in samples.items():
        stack = np.stack(stack)
        np.testing.assert_allclose(getattr(est, name), stack.mean(axis=0), rtol=1e-9, err_msg=name)
        np.testing.assert_allclose(getattr(est, name + "_stderr"), stack.std(axis=0, ddof=1) / np.sqrt(7),
                                   rtol=1e-9, err_msg=name)


def test_parameters_held_in_tuples_or_with_flat_biases_give_the_same_kernel():
    """stax's serial returns a list of (W, b) with b shaped (1, out) (neural-tangents' structure); parameters
    saved by older code hold tuples and biases shaped (out,): the same network, so the same kernel (exactly)."""
    net = stax.serial(stax.Dense(16, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(1, b_std=0.1))
    x = np.random.default_rng(0).normal(size=(3, 4))
    _, params = net[0](jax.random.PRNGKey(0), x.shape)
    as_tuples = tuple(tuple(layer) for layer in params)
    flat_biases = tuple((layer[0], layer[1].reshape(-1)) if len(layer) == 2 else layer for layer in as_tuples)
    fn = empirical_ntk_fn(net)
    expected = np.asarray(fn(x, None, params))
    np.testing.assert_array_equal(np.asarray(fn(x, None, as_tuples)), expected)
    np.testing.assert_array_equal(np.asarray(fn(x, None, flat_biases)), expected)
