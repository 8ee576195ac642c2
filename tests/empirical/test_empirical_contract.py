"""Specification of ntkcourse.empirical from values computed here without it: the Jacobian of a one-hidden-layer
tanh network derived by hand, outputs multiplied directly, layouts written out with numpy's einsum.

The network: f(θ, x) = tanh(x W + b) V, with W (d, h), b (h,), V (h, k). With t = tanh(x W + b) and
s = 1 − t² (the derivative of tanh), the three parameter blocks give, for outputs a of x and c of x',

    ∂f_a/∂V[h, c'] = t_h δ_{a c'},   ∂f_a/∂W[e, h] = x_e s_h V[h, a],   ∂f_a/∂b[h] = s_h V[h, a],

so the full empirical NTK block is (the explicit sum over the parameters of products of these)

    Θ_{ac}(x, x') = δ_{ac} t·t' + (x·x' + 1) Σ_h s_h s'_h V[h, a] V[h, c]     (Jacot et al. 2018).

Everything runs in float64: agreement to 1e-12 of the kernel's scale (values of order 1, sums of a few dozen
products: round-off is ~1e-15). Written from the survivors of a mutation run (tools/mutation.py empirical).
"""
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import empirical

D, H, K = 3, 4, 2


def net(p, x):
    return jnp.tanh(x @ p["W"] + p["b"]) @ p["V"]


def draw(seed=0, n1=3, n2=2):
    rng = np.random.default_rng(seed)
    params = {"W": rng.standard_normal((D, H)), "b": rng.standard_normal(H), "V": rng.standard_normal((H, K))}
    return params, rng.standard_normal((n1, D)), rng.standard_normal((n2, D))


def hand_ntk(params, x1, x2):
    """The full block Θ[i, j, a, c] of the module docstring, in numpy."""
    W, b, V = (np.asarray(params[k]) for k in ("W", "b", "V"))
    t1, t2 = np.tanh(x1 @ W + b), np.tanh(x2 @ W + b)
    s1, s2 = 1 - t1**2, 1 - t2**2
    readout = np.einsum("ih,jh->ij", t1, t2)[:, :, None, None] * np.eye(K)
    hidden = np.einsum("ij,ih,jh,ha,hc->ijac", x1 @ x2.T + 1, s1, s2, V, V)
    return readout + hidden


def outputs(params, x):
    W, b, V = (np.asarray(params[k]) for k in ("W", "b", "V"))
    return np.tanh(x @ W + b) @ V


def f64(fn):
    with jax.enable_x64(True):
        return np.asarray(fn())


@pytest.mark.parametrize("impl, vmap_axes", [("jacobian", None), ("jvp_vjp", 0)])
def test_full_block_is_the_hand_derived_jacobian_product(impl, vmap_axes):
    """trace_axes=(): Θ̂(x1, x2) of shape (n1, n2, k, k) is the hand-derived block, for both general
    implementations, whether the Jacobian is taken of the whole batch or input by input."""
    params, x1, x2 = draw()
    got = f64(lambda: empirical.empirical_ntk_fn(net, trace_axes=(), vmap_axes=vmap_axes, implementation=impl)(
        x1, x2, params))
    assert got.shape == (3, 2, K, K)
    np.testing.assert_allclose(got, hand_ntk(params, x1, x2), rtol=0, atol=1e-12)


def test_default_trace_averages_the_diagonal_of_the_output_block():
    """The default trace_axes=(-1,) is (1/k) Σ_a Θ_aa: an average over the k outputs, not a sum."""
    params, x1, x2 = draw(1)
    got = f64(lambda: empirical.empirical_ntk_fn(net)(x1, x2, params))
    np.testing.assert_allclose(got, np.einsum("ijaa->ij", hand_ntk(params, x1, x2)) / K, rtol=0, atol=1e-12)


def test_kernel_with_itself_is_the_block_of_x1_with_x1():
    """x2=None means x2 = x1 (default trace: the average of the output diagonal), here with the Jacobian path."""
    params, x1, _ = draw(2)
    got = f64(lambda: empirical.empirical_ntk_fn(net, implementation="jacobian")(x1, None, params))
    np.testing.assert_allclose(got, np.einsum("ijaa->ij", hand_ntk(params, x1, x1)) / K, rtol=0, atol=1e-12)


@pytest.mark.parametrize("impl", ["jacobian", "jvp_vjp"])
def test_diagonal_of_the_batch_axis_is_each_input_with_itself(impl):
    """diagonal_axes=(0,) with x2=None: the vector Θ̂(x_i, x_i), averaged over the outputs, shape (n,)."""
    params, x1, _ = draw(3)
    got = f64(lambda: empirical.empirical_ntk_fn(net, diagonal_axes=(0,), implementation=impl)(x1, None, params))
    assert got.shape == (3,)
    np.testing.assert_allclose(got, np.einsum("iiaa->i", hand_ntk(params, x1, x1)) / K, rtol=0, atol=1e-12)


@pytest.mark.parametrize("impl", ["jacobian", "jvp_vjp"])
def test_diagonal_of_the_output_axis_keeps_one_copy_of_it(impl):
    """trace_axes=(), diagonal_axes=(-1,): Θ_aa(x_i, x'_j) for each output a, shape (n1, n2, k), not summed."""
    params, x1, x2 = draw(4)
    got = f64(lambda: empirical.empirical_ntk_fn(net, trace_axes=(), diagonal_axes=(-1,), implementation=impl)(
        x1, x2, params))
    np.testing.assert_allclose(got, np.einsum("ijaa->ija", hand_ntk(params, x1, x2)), rtol=0, atol=1e-12)


def test_nngp_is_the_average_product_of_the_outputs():
    """The empirical NNGP is (1/k) f(x1) f(x2)ᵀ, from the outputs computed in numpy."""
    params, x1, x2 = draw(5)
    got = f64(lambda: empirical.empirical_nngp_fn(net)(x1, x2, params))
    np.testing.assert_allclose(got, outputs(params, x1) @ outputs(params, x2).T / K, rtol=0, atol=1e-12)


def test_nngp_full_block_is_the_outer_product_of_the_outputs():
    """trace_axes=(): f_a(x_i) f_c(x'_j), shape (n1, n2, k, k)."""
    params, x1, x2 = draw(6)
    got = f64(lambda: empirical.empirical_nngp_fn(net, trace_axes=())(x1, x2, params))
    np.testing.assert_allclose(got, np.einsum("ia,jc->ijac", outputs(params, x1), outputs(params, x2)),
                               rtol=0, atol=1e-12)


def test_empirical_kernel_fn_gives_both_kernels_of_a_plain_function():
    """get=None gives (nngp, ntk) in that order, each the hand value (default trace)."""
    params, x1, x2 = draw(7)
    with jax.enable_x64(True):
        both = empirical.empirical_kernel_fn(net)(x1, x2, None, params)
        assert both._fields == ("nngp", "ntk")
        nngp, ntk = np.asarray(both.nngp), np.asarray(both.ntk)
    np.testing.assert_allclose(nngp, outputs(params, x1) @ outputs(params, x2).T / K, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ntk, np.einsum("ijaa->ij", hand_ntk(params, x1, x2)) / K, rtol=0, atol=1e-12)


# A linear map of image-like inputs: f(θ, x)[i, s, a] = Σ_e x[i, s, e] θ[e, a], output shape (n, S, k).
# ∂f[i, s, a]/∂θ[e, c] = x[i, s, e] δ_ac, so Θ[i, j, s, s', a, a'] = δ_{aa'} x[i, s]·x[j, s'].
S = 3


def spatial(theta, x):
    return jnp.einsum("ise,ea->isa", x, theta)


def spatial_case(seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((D, K)), rng.standard_normal((3, S, D)), rng.standard_normal((2, S, D))


@pytest.mark.parametrize("impl", ["jacobian", "jvp_vjp"])
def test_untraced_output_axes_appear_twice_next_to_their_partner(impl):
    """trace_axes=(): shape (n1, n2, S, S, k, k), each untraced axis of x1 beside its partner of x2."""
    theta, x1, x2 = spatial_case(8)
    got = f64(lambda: empirical.empirical_ntk_fn(spatial, trace_axes=(), implementation=impl)(x1, x2, theta))
    expected = np.einsum("ise,jte,ac->ijstac", x1, x2, np.eye(K))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("impl", ["jacobian", "jvp_vjp"])
def test_a_diagonal_spatial_axis_and_a_traced_output_axis(impl):
    """diagonal_axes=(1,), trace_axes=(-1,): x[i, s]·x[j, s], shape (n1, n2, S) (the trace of δ_aa' over k
    outputs divided by k is 1)."""
    theta, x1, x2 = spatial_case(9)
    got = f64(lambda: empirical.empirical_ntk_fn(spatial, diagonal_axes=(1,), implementation=impl)(x1, x2, theta))
    np.testing.assert_allclose(got, np.einsum("ise,jse->ijs", x1, x2), rtol=0, atol=1e-12)


def test_tracing_two_axes_divides_by_the_product_of_their_sizes():
    """trace_axes=(1, 2): (1/(S k)) Σ_{s,a} Θ[i, j, s, s, a, a] = (1/S) Σ_s x[i, s]·x[j, s]."""
    theta, x1, x2 = spatial_case(10)
    got = f64(lambda: empirical.empirical_ntk_fn(spatial, trace_axes=(1, 2))(x1, x2, theta))
    np.testing.assert_allclose(got, np.einsum("ise,jse->ij", x1, x2) / S, rtol=0, atol=1e-12)


def test_vmap_axes_zero_takes_each_input_alone():
    """f(θ, x) = (x − batch mean) θ is 0 for a batch of one input, so with vmap_axes=0 (the Jacobian taken one
    input at a time) the kernel is exactly 0, while vmap_axes=None gives C Cᵀ of the centred inputs."""
    rng = np.random.default_rng(11)
    x, theta = rng.standard_normal((4, D)), rng.standard_normal((D, 1))

    def centred(p, xx):
        return (xx - xx.mean(axis=0)) @ p

    per_input = f64(lambda: empirical.empirical_ntk_fn(centred, vmap_axes=0)(x, None, theta))
    batch = f64(lambda: empirical.empirical_ntk_fn(centred, vmap_axes=None, implementation="jvp_vjp")(
        x, None, theta))
    c = x - x.mean(axis=0)
    np.testing.assert_array_equal(per_input, np.zeros((4, 4)))
    np.testing.assert_allclose(batch, c @ c.T, rtol=0, atol=1e-12)


def test_ntk_vector_product_is_the_full_block_applied_to_the_vector():
    """empirical_ntk_vp_fn(f, x1, x2, θ)(v)[i, a] = Σ_{j,c} Θ[i, j, a, c] v[j, c], with no axis traced."""
    params, x1, x2 = draw(12)
    v = np.random.default_rng(13).standard_normal((2, K))
    got = f64(lambda: empirical.empirical_ntk_vp_fn(net, x1, x2, params)(jnp.asarray(v)))
    np.testing.assert_allclose(got, np.einsum("ijac,jc->ia", hand_ntk(params, x1, x2), v), rtol=0, atol=1e-12)


def test_naive_pairwise_reference_is_the_averaged_hand_kernel():
    """The blog post's loop over pairs and outputs: (1/k) Σ_a Θ_aa, with x2 given."""
    params, x1, x2 = draw(14, n1=2, n2=2)
    got = f64(lambda: empirical.naive_pairwise_ntk(net, params, x1, x2))
    np.testing.assert_allclose(got, np.einsum("ijaa->ij", hand_ntk(params, x1, x2)) / K, rtol=0, atol=1e-12)


def linear_init(key, shape):
    return shape[:-1] + (1,), {"w": jax.random.normal(key, (shape[-1], 1), jnp.float64)}


def _default_float_init(key, shape):
    """linear_init in JAX's default float type (no float64 request, hence no warning with 64-bit mode off)."""
    return shape[:-1] + (1,), {"w": jax.random.normal(key, (shape[-1], 1))}


def linear_apply(p, x):
    return x @ p["w"]


def test_monte_carlo_mean_and_standard_error_are_those_of_the_stacked_draws():
    """f = x·w with w drawn by init_fn(fold_in(key, s)): the NNGP of draw s is (x·w_s)(x'·w_s)ᵀ, computed here in
    numpy from the same draws. Estimates after 1, 2 and 5 draws, in batches of 2 (the first estimate inside a
    batch, the last batch cut to 1): the mean is np.mean and the standard error np.std(ddof=1)/√n of the stacked
    draws (the running update combines batches: same arithmetic in another order, rtol 1e-12), undefined (NaN,
    in the mean's shape) after one draw; the NTK is x x'ᵀ for every draw, so its mean is x x'ᵀ and its
    standard error 0 (to round-off of the mean of equal numbers, 1e-15 of the scale)."""
    rng = np.random.default_rng(15)
    x1, x2 = rng.standard_normal((3, D)), rng.standard_normal((2, D))
    key = jax.random.PRNGKey(3)
    with jax.enable_x64(True):
        one, first, last = empirical.monte_carlo_kernel_fn(linear_init, linear_apply, key, [1, 2, 5], batch_size=2,
                                                           progress=False)(x1, x2)
        w = [np.asarray(linear_init(jax.random.fold_in(key, s), x1.shape)[1]["w"]) for s in range(5)]
    draws = np.stack([(x1 @ ws) @ (x2 @ ws).T for ws in w])
    assert one.n_samples == 1
    np.testing.assert_allclose(one.nngp, draws[0], rtol=1e-12)
    assert one.nngp_stderr.shape == one.ntk_stderr.shape == (3, 2)
    assert np.isnan(one.nngp_stderr).all() and np.isnan(one.ntk_stderr).all()
    for est, n in ((first, 2), (last, 5)):
        assert est.n_samples == n
        np.testing.assert_allclose(est.nngp, draws[:n].mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(est.nngp_stderr, draws[:n].std(axis=0, ddof=1) / np.sqrt(n), rtol=1e-12)
        np.testing.assert_allclose(est.ntk, x1 @ x2.T, rtol=0, atol=1e-15 * np.abs(x1 @ x2.T).max())
        np.testing.assert_allclose(est.ntk_stderr, 0.0, rtol=0, atol=1e-15 * np.abs(x1 @ x2.T).max())


# --------------------------------------------------------------------------- #
# Refusals: each names the function, the argument, the value and what was expected (the whole message)
# --------------------------------------------------------------------------- #

def _unhashable_option(p, x, opt):
    return net(p, x)


def _refuses_two_inputs(p, x):
    if x.shape[0] == 2:
        raise RuntimeError("two inputs")
    return net(p, x)


def _two_outputs(p, x):
    return net(p, x), net(p, x)


REFUSALS = {
    "params missing": (lambda p, x1, x2: empirical.empirical_kernel_fn(net)(x1, x2), ValueError,
                       "empirical_kernel_fn: `params` are required: kernel_fn(x1, x2, get, params)."),
    "unknown get": (lambda p, x1, x2: empirical.empirical_kernel_fn(net)(x1, None, "bad", p), ValueError,
                    "empirical_kernel_fn: `get` must be a name or a tuple of names among 'nngp', 'ntk', got 'bad'."),
    "axis out of range": (
        lambda p, x1, x2: empirical.empirical_kernel_fn(net, trace_axes=(5,))(x1, None, None, p), ValueError,
        "empirical_kernel_fn: `trace_axes` contains axis 5, but the output of f has 2 axes (batch first); "
        "expected axes in [-2, 2)."),
    "axis just below the range": (
        lambda p, x1, x2: empirical.empirical_ntk_fn(net, diagonal_axes=(-3,))(x1, None, p), ValueError,
        "empirical_ntk_fn: `diagonal_axes` contains axis -3, but the output of f has 2 axes (batch first); "
        "expected axes in [-2, 2)."),
    "repeated axis": (lambda p, x1, x2: empirical.empirical_ntk_fn(net, trace_axes=(0, -2))(x1, None, p), ValueError,
                      "empirical_ntk_fn: `trace_axes` repeats an axis: (0, -2)."),
    "axes not a sequence": (lambda p, x1, x2: empirical.empirical_ntk_fn(net, trace_axes=None)(x1, None, p),
                            ValueError, "empirical_ntk_fn: `trace_axes` must be a sequence of ints, got None."),
    "a float axis": (lambda p, x1, x2: empirical.empirical_ntk_fn(net, trace_axes=[1.5])(x1, None, p), ValueError,
                     "empirical_ntk_fn: `trace_axes` must be a sequence of ints, got [1.5]."),
    "axes a string": (lambda p, x1, x2: empirical.empirical_ntk_fn(net, diagonal_axes="a")(x1, None, p), ValueError,
                      "empirical_ntk_fn: `diagonal_axes` must be a sequence of ints, got 'a'."),
    "unknown implementation": (
        lambda p, x1, x2: empirical.empirical_ntk_fn(net, implementation="fast"), ValueError,
        "empirical_ntk_fn: `implementation` must be 'auto', 'jacobian', 'jvp_vjp' or 'structured' "
        "(or a NtkImplementation); got 'fast'."),
    "implementation True": (
        lambda p, x1, x2: empirical.empirical_kernel_fn(net, implementation=True), ValueError,
        "empirical_kernel_fn: `implementation` must be 'auto', 'jacobian', 'jvp_vjp' or 'structured' "
        "(or a NtkImplementation); got True."),
    "implementation number out of range": (
        lambda p, x1, x2: empirical.empirical_ntk_fn(net, implementation=4), ValueError,
        "empirical_ntk_fn: `implementation` must be 'auto', 'jacobian', 'jvp_vjp' or 'structured' "
        "(or a NtkImplementation); got 4."),
    "float sample count": (
        lambda p, x1, x2: empirical.monte_carlo_kernel_fn(linear_init, linear_apply, jax.random.PRNGKey(0), 2.0),
        ValueError,
        "monte_carlo_kernel_fn: `n_samples` must be a positive int or an increasing sequence of them, got 2.0."),
    "traced and diagonal": (
        lambda p, x1, x2: empirical.empirical_nngp_fn(net, diagonal_axes=(-1,))(x1, None, p), ValueError,
        "empirical_nngp_fn: an axis cannot be both traced and diagonal, got trace_axes=(-1,), diagonal_axes=(-1,)."),
    "vmap_axes True": (
        lambda p, x1, x2: empirical.empirical_ntk_fn(net, vmap_axes=True), ValueError,
        "empirical_ntk_fn: `vmap_axes` must be 0 (inputs and outputs batched along axis 0, processed independently) "
        "or None (f may mix the inputs of a batch), got True."),
    "f a pair": (lambda p, x1, x2: empirical.empirical_ntk_fn((net, net)), TypeError,
                 "`f` must be a function f(params, x) or a layer triple made by ntkcourse.stax "
                 "(init_fn, apply_fn, kernel_fn), got a tuple of 2 items."),
    "f not callable": (lambda p, x1, x2: empirical.empirical_ntk_fn(3), TypeError,
                       "`f` must be a function f(params, x) or a ntkcourse.stax layer triple, got int."),
    "x2 of another shape": (
        lambda p, x1, x2: empirical.empirical_ntk_fn(net)(x1, np.ones((2, 4)), p), ValueError,
        "empirical_ntk_fn: `x2` must have the same shape as `x1` apart from the batch axis; "
        "got x1 (3, 3) and x2 (2, 4)."),
    "batch diagonal of unequal batches": (
        lambda p, x1, x2: empirical.empirical_ntk_fn(net, diagonal_axes=(0,))(x1, x2, p), ValueError,
        "empirical_ntk_fn: tracing or taking the diagonal of the batch axis needs x1 and x2 of the same length, "
        "got 3 and 2."),
    "unhashable option": (
        lambda p, x1, x2: empirical.empirical_ntk_fn(_unhashable_option)(x1, x2, p, opt=[1]), ValueError,
        "empirical_ntk_fn: non-array keyword arguments must be hashable, got {'opt': [1]}."),
    "several outputs": (
        lambda p, x1, x2: empirical.empirical_ntk_fn(_two_outputs)(x1, x2, p), ValueError,
        "empirical_ntk_fn: f must return one array; f(params, x1) returned tuple (a network ending in several "
        "branches needs FanInSum)."),
    "x1 not numeric": (lambda p, x1, x2: empirical.empirical_ntk_fn(net)(np.array([["a"]]), None, p), TypeError,
                       "empirical_ntk_fn: `x1` must be a numeric array, got dtype <U1."),
    "x2 empty": (
        lambda p, x1, x2: empirical.empirical_ntk_fn(net)(x1, np.ones((0, 3)), p), ValueError,
        "empirical_ntk_fn: `x2` must have a non-empty batch axis first, e.g. shape (n, features); got shape (0, 3)."),
    "x1 a scalar": (
        lambda p, x1, x2: empirical.empirical_ntk_fn(net)(1.0, None, p), ValueError,
        "empirical_ntk_fn: `x1` must have a non-empty batch axis first, e.g. shape (n, features); got shape ()."),
    "f fails": (
        lambda p, x1, x2: empirical.empirical_ntk_fn(net)(x1, None, {"W": p["W"]}), ValueError,
        "empirical_ntk_fn: f(params, x1) failed for params of shapes {'W': (3, 4)} and x1 of shape (3, 3): "
        "KeyError: 'b'"),
    "f fails on x2": (
        lambda p, x1, x2: empirical.empirical_ntk_fn(_refuses_two_inputs)(x1, x2, p), ValueError,
        "empirical_ntk_fn: f(params, x2) failed for params of shapes {'V': (4, 2), 'W': (3, 4), 'b': (4,)} and x2 "
        "of shape (2, 3): RuntimeError: two inputs"),
    "vmap_axes=0 and no batch axis": (
        lambda p, x1, x2: empirical.empirical_ntk_fn(lambda q, x: jnp.sum(net(q, x)), vmap_axes=0)(x1, None, p),
        ValueError,
        "empirical_ntk_fn: with vmap_axes=0, f(params, x1) must return the batch axis first (length 3), got output "
        "shape (). Pass vmap_axes=None for other functions."),
    "vmap_axes=0 and another batch length": (
        lambda p, x1, x2: empirical.empirical_ntk_fn(lambda q, x: net(q, x)[:2], vmap_axes=0)(x1, None, p),
        ValueError,
        "empirical_ntk_fn: with vmap_axes=0, f(params, x1) must return the batch axis first (length 3), got output "
        "shape (2, 2). Pass vmap_axes=None for other functions."),
    "naive reference with inputs of other shapes": (
        lambda p, x1, x2: empirical.naive_pairwise_ntk(net, p, x1, np.ones((2, 4))), ValueError,
        "naive_pairwise_ntk: x1 (3, 3) and x2 (2, 4) differ apart from the batch axis."),
    "zero samples": (lambda p, x1, x2: empirical.monte_carlo_kernel_fn(linear_init, linear_apply, jax.random.PRNGKey(0),
                                                                       0), ValueError,
                     "monte_carlo_kernel_fn: `n_samples` must be a positive int or an increasing sequence of them, "
                     "got 0."),
    "repeated sample count": (
        lambda p, x1, x2: empirical.monte_carlo_kernel_fn(linear_init, linear_apply, jax.random.PRNGKey(0), [3, 3]),
        ValueError,
        "monte_carlo_kernel_fn: `n_samples` must be a positive int or an increasing sequence of them, got [3, 3]."),
    "no sample count": (
        lambda p, x1, x2: empirical.monte_carlo_kernel_fn(linear_init, linear_apply, jax.random.PRNGKey(0), []),
        ValueError,
        "monte_carlo_kernel_fn: `n_samples` must be a positive int or an increasing sequence of them, got []."),
    "float sample count in a list": (
        lambda p, x1, x2: empirical.monte_carlo_kernel_fn(linear_init, linear_apply, jax.random.PRNGKey(0), [2.0]),
        ValueError,
        "monte_carlo_kernel_fn: `n_samples` must be a positive int or an increasing sequence of them, got [2.0]."),
    "bool sample count": (
        lambda p, x1, x2: empirical.monte_carlo_kernel_fn(linear_init, linear_apply, jax.random.PRNGKey(0), True),
        ValueError,
        "monte_carlo_kernel_fn: `n_samples` must be a positive int or an increasing sequence of them, got True."),
    "bool sample count in a list": (
        lambda p, x1, x2: empirical.monte_carlo_kernel_fn(linear_init, linear_apply, jax.random.PRNGKey(0),
                                                          [True, 2]), ValueError,
        "monte_carlo_kernel_fn: `n_samples` must be a positive int or an increasing sequence of them, "
        "got [True, 2]."),
    "bool batch size": (
        lambda p, x1, x2: empirical.monte_carlo_kernel_fn(linear_init, linear_apply, jax.random.PRNGKey(0), 3,
                                                          batch_size=True), ValueError,
        "monte_carlo_kernel_fn: `batch_size` must be a positive int or None, got True."),
    "Monte Carlo x1 empty": (
        lambda p, x1, x2: empirical.monte_carlo_kernel_fn(linear_init, linear_apply, jax.random.PRNGKey(0), 2)(
            np.ones((0, 3))), ValueError,
        "monte_carlo_kernel_fn: `x1` must have a non-empty batch axis first, e.g. shape (n, features); "
        "got shape (0, 3)."),
    "Monte Carlo trace axis out of range": (
        lambda p, x1, x2: empirical.monte_carlo_kernel_fn(_default_float_init, linear_apply, jax.random.PRNGKey(0),
                                                          2, trace_axes=(5,))(x1), ValueError,
        "monte_carlo_kernel_fn: `trace_axes` contains axis 5, but the output of f has 2 axes (batch first); "
        "expected axes in [-2, 2)."),
    "Monte Carlo unknown kernel": (
        lambda p, x1, x2: empirical.monte_carlo_kernel_fn(linear_init, linear_apply, jax.random.PRNGKey(0), 2)(
            x1, None, "bad"), ValueError,
        "monte_carlo_kernel_fn: `get` must be a name or a tuple of names among 'nngp', 'ntk', got 'bad'."),
    "zero batch size": (
        lambda p, x1, x2: empirical.monte_carlo_kernel_fn(linear_init, linear_apply, jax.random.PRNGKey(0), 3,
                                                          batch_size=0), ValueError,
        "monte_carlo_kernel_fn: `batch_size` must be a positive int or None, got 0."),
    "float batch size": (
        lambda p, x1, x2: empirical.monte_carlo_kernel_fn(linear_init, linear_apply, jax.random.PRNGKey(0), 3,
                                                          batch_size=2.0), ValueError,
        "monte_carlo_kernel_fn: `batch_size` must be a positive int or None, got 2.0."),
    "apply_fn missing": (
        lambda p, x1, x2: empirical.monte_carlo_kernel_fn(linear_init, None, jax.random.PRNGKey(0), 3), TypeError,
        "monte_carlo_kernel_fn: `init_fn` and `apply_fn` must be functions (or a stax triple and None)."),
    "init_fn fails": (
        lambda p, x1, x2: empirical.monte_carlo_kernel_fn(lambda k, s: 1 / 0, linear_apply, jax.random.PRNGKey(0),
                                                          3)(x1), ValueError,
        "monte_carlo_kernel_fn: init_fn failed for inputs of shape (3, 3): division by zero"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusal_message_names_the_function_argument_and_value(case):
    """The whole message (anchored at both ends), so that no part of it can change unnoticed."""
    call, error, message = REFUSALS[case]
    params, x1, x2 = draw()
    with pytest.raises(error) as info:
        call(params, x1, x2)
    assert str(info.value) == message


def _always_fails(p, x):
    raise RuntimeError("no")


@pytest.mark.parametrize("n_leaves, shown", [(49, "[" + ", ".join(["(1,)"] * 49) + "]"),
                                             (50, ("[" + ", ".join(["(1,)"] * 50) + "]")[:297] + "...")])
def test_parameter_shapes_in_a_message_are_cut_at_300_characters(n_leaves, shown):
    """The shapes of 49 parameters of shape (1,) print in 294 characters, shown whole; 50 print in exactly 300,
    cut to their first 297 characters and '...' (300 in all)."""
    params = [np.zeros(1)] * n_leaves
    with pytest.raises(ValueError) as info:
        empirical.empirical_ntk_fn(_always_fails)(np.ones((2, 3)), None, params)
    assert len(shown) == (294 if n_leaves == 49 else 300)
    assert str(info.value) == (f"empirical_ntk_fn: f(params, x1) failed for params of shapes {shown} and x1 of "
                               "shape (2, 3): RuntimeError: no")


def test_structured_support_accepts_a_plain_function():
    """A plain function takes the structured path (rules read from its jaxpr, the other leaves as Jacobian blocks):
    no reason to refuse it."""
    assert empirical.structured_support(net) is None


def _scaled(p, x, scale):
    return scale * net(p, x)


def test_ntk_vector_product_passes_keyword_arguments_and_defaults_x2_to_x1():
    """f(θ, x, scale) = scale · net: its NTK is scale² Θ; with x2=None the product is with Θ(x1, x1)."""
    params, x1, _ = draw(16)
    v = np.random.default_rng(17).standard_normal((3, K))
    got = f64(lambda: empirical.empirical_ntk_vp_fn(_scaled, x1, None, params, scale=3.0)(jnp.asarray(v)))
    np.testing.assert_allclose(got, 9.0 * np.einsum("ijac,jc->ia", hand_ntk(params, x1, x1), v), rtol=0,
                               atol=1e-11)  # values up to ~50: 1e-12 relative


def _centred(p, xx):
    return (xx - xx.mean(axis=0)) @ p


@pytest.mark.parametrize("impl", ["jacobian", "jvp_vjp"])
def test_empirical_kernel_fn_takes_both_kernels_input_by_input_with_vmap_axes_zero(impl):
    """empirical_kernel_fn(vmap_axes=0) sees each input alone, for the NTK and the NNGP alike: the batch-centring
    function of test_vmap_axes_zero_takes_each_input_alone is 0 for a batch of one, so both kernels are exactly 0
    (the NNGP taken of the whole batch would be (Cθ)(Cθ)ᵀ ≠ 0)."""
    rng = np.random.default_rng(18)
    x, theta = rng.standard_normal((4, D)), rng.standard_normal((D, 1))
    with jax.enable_x64(True):
        both = empirical.empirical_kernel_fn(_centred, vmap_axes=0, implementation=impl)(x, None, None, theta)
    np.testing.assert_array_equal(np.asarray(both.ntk), np.zeros((4, 4)))
    np.testing.assert_array_equal(np.asarray(both.nngp), np.zeros((4, 4)))


def test_empirical_kernel_fn_takes_both_kernels_of_the_whole_batch_by_default():
    """vmap_axes=None: NTK C Cᵀ (the Jacobian of Cθ is C) and NNGP (Cθ)(Cθ)ᵀ, C the centred inputs, x2 = x1 and
    x2 given apart alike (values of order 1: 1e-12)."""
    rng = np.random.default_rng(19)
    x, theta = rng.standard_normal((4, D)), rng.standard_normal((D, 1))
    c = x - x.mean(axis=0)
    with jax.enable_x64(True):
        kernel_fn = empirical.empirical_kernel_fn(_centred, implementation="jacobian")
        alone, apart = kernel_fn(x, None, None, theta), kernel_fn(x, x, None, theta)
    for got in (alone, apart):
        np.testing.assert_allclose(np.asarray(got.ntk), c @ c.T, rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.asarray(got.nngp), (c @ theta) @ (c @ theta).T, rtol=0, atol=1e-12)


def test_monte_carlo_nngp_takes_each_input_alone_with_vmap_axes_zero():
    """monte_carlo_kernel_fn(vmap_axes=0) averages kernels that see each input alone: the NNGP of the centring
    function is 0 whatever the draw (the whole batch's would be the mean of (Cθ_s)(Cθ_s)ᵀ, as
    test_empirical_kernel_fn_takes_both_kernels_of_the_whole_batch_by_default checks for one draw)."""
    x = np.random.default_rng(20).standard_normal((3, D))

    def init(key, shape):
        return (shape[0], 1), jax.random.normal(key, (D, 1))

    with jax.enable_x64(True):
        alone = empirical.monte_carlo_kernel_fn(init, _centred, jax.random.PRNGKey(3), 2, vmap_axes=0,
                                                implementation="jacobian", progress=False)(x, None, "nngp")
    np.testing.assert_array_equal(np.asarray(alone), np.zeros((3, 3)))


def test_kernel_functions_are_marked_empirical_for_batching():
    """ntkcourse.batching reads ``kernel_fn.empirical`` (True) to pass inputs in the caller's dtype and to allow
    get=None; the three constructors mark their functions."""
    assert empirical.empirical_kernel_fn(net).empirical is True
    assert empirical.empirical_ntk_fn(net).empirical is True
    assert empirical.empirical_nngp_fn(net).empirical is True


class _Unhashable:
    """A callable network that defines equality and hence has no hash (it cannot be a static jit argument)."""

    def __eq__(self, other):
        return self is other

    def __call__(self, p, x):
        return net(p, x)


def test_naive_pairwise_reference_accepts_an_unhashable_function():
    """An unhashable f (here an object with __eq__ and no __hash__) is compiled for the call only, with the same
    kernel: the hand value, averaged over the outputs, x2 = x1."""
    params, x1, _ = draw(19, n1=2)
    got = f64(lambda: empirical.naive_pairwise_ntk(_Unhashable(), params, x1))
    np.testing.assert_allclose(got, np.einsum("ijaa->ij", hand_ntk(params, x1, x1)) / K, rtol=0, atol=1e-12)


def _stax_case():
    """stax.serial(Dense(4, W_std=1.5, b_std=0.1), Relu(), Dense(2)) (NTK parameterisation), inputs (3, 5), and
    float64 parameters drawn by numpy with init_fn's shapes (jax.random would compile a kernel per shape)."""
    from ntkcourse import stax
    network = stax.serial(stax.Dense(4, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(2))
    rng = np.random.default_rng(20)
    x = rng.standard_normal((3, 5))
    _, shapes = jax.eval_shape(lambda k: network[0](k, x.shape), jax.random.PRNGKey(0))
    return network, x, jax.tree_util.tree_map(lambda s: rng.standard_normal(s.shape), shapes)


def stax_hand(params, x):
    """Outputs and full NTK block of _stax_case's network, by hand. With z = (1.5/√5) x W + 0.1 b, h = relu(z),
    g = 1{z > 0} and f = (1/√4) h V: Θ_ac = δ_ac h·h'/4 + (1.5²/5 x·x' + 0.1²)/4 Σ_k g_k g'_k V_ka V_kc."""
    (W, b), _, (V, _) = params
    z = 1.5 / np.sqrt(5) * x @ W + 0.1 * np.reshape(b, -1)
    h, g = np.maximum(z, 0), (z > 0).astype(float)
    ntk = (np.einsum("ik,jk->ij", h, h)[:, :, None, None] * np.eye(2)
           + np.einsum("ij,ik,jk,ka,kc->ijac", 0.45 * x @ x.T + 0.01, g, g, V, V)) / 4
    return h @ V / 2, ntk


def test_pure_kernel_gives_the_kernels_asked_for_in_the_layout_asked_for():
    """pure_kernel (the traceable kernel of finite_width; the structured path for this stax network) with
    get=('nngp', 'ntk') and trace_axes=(): the hand-derived NTK block and the outer product of the outputs."""
    network, x, params = _stax_case()
    with jax.enable_x64(True):
        got = empirical.pure_kernel(network, x, get=("nngp", "ntk"), trace_axes=())(params)
    out, ntk = stax_hand(params, x)
    assert sorted(got) == ["nngp", "ntk"]
    np.testing.assert_allclose(np.asarray(got["ntk"]), ntk, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(got["nngp"]), np.einsum("ia,jc->ijac", out, out), rtol=0, atol=1e-12)


def test_pure_kernel_defaults_to_the_traced_ntk_only():
    """Default get=('ntk',) and trace_axes=(-1,): only the NTK, averaged over the 2 outputs, shape (n, n) (here with
    the NTK-vector products)."""
    network, x, params = _stax_case()
    with jax.enable_x64(True):
        got = empirical.pure_kernel(network, x, implementation="jvp_vjp")(params)
    assert list(got) == ["ntk"]
    np.testing.assert_allclose(np.asarray(got["ntk"]), np.einsum("ijaa->ij", stax_hand(params, x)[1]) / 2, rtol=0,
                               atol=1e-12)


@pytest.mark.parametrize("where", ["finite_width", None])
def test_pure_kernel_refusals_name_the_caller(where):
    """The caller's name (``where``; 'empirical' by default) starts the message of a bad argument."""
    network, x, _ = _stax_case()
    kwargs = {} if where is None else {"where": where}
    with pytest.raises(ValueError) as info:
        empirical.pure_kernel(network, x, trace_axes=(7,), **kwargs)
    assert str(info.value) == (f"{where or 'empirical'}: `trace_axes` contains axis 7, but the output of f has 2 axes "
                               "(batch first); expected axes in [-2, 2).")


@pytest.mark.parametrize("implementation, name", [(1, "jacobian"), (2, "jvp_vjp"), ("Jacobian_Contraction", "jacobian"),
                                                  ("NTK_VECTOR_PRODUCTS", "jvp_vjp"), (0, "jacobian")])
def test_implementations_may_be_named_by_number_or_long_name_in_any_case(implementation, name):
    """neural-tangents' numbers (1 Jacobian contraction, 2 NTK-vector products, 0 auto) and long names, in any
    case, select the implementation that ``implementation_for`` reports (auto: the Jacobian for a small plain f)."""
    params, x1, _ = draw()
    assert empirical.empirical_ntk_fn(net, implementation=implementation).implementation_for(x1, None, params) == name


def test_array_keyword_arguments_reach_f_as_traced_values():
    """ntk_fn(x1, x2, θ, scale=np.array(3.0)) passes the array on to f(θ, x, scale) (a traced argument: an
    unhashable numpy array could not be a static one): the kernel of 3·net is 9 Θ."""
    params, x1, x2 = draw(21)
    got = f64(lambda: empirical.empirical_ntk_fn(_scaled)(x1, x2, params, scale=np.array(3.0)))
    np.testing.assert_allclose(got, 9.0 * np.einsum("ijaa->ij", hand_ntk(params, x1, x2)) / K, rtol=0, atol=1e-11)


def _jacobian_rows(apply_fn, params, x):
    """∂f_a(x_i)/∂θ_p as an array (n, k, P) from jax.jacrev of the whole batch, the leaves flattened and joined
    (no code of ntkcourse.empirical)."""
    jac = jax.jacrev(lambda p: apply_fn(p, x).reshape(len(x), -1))(params)
    return np.concatenate([np.reshape(leaf, leaf.shape[:2] + (-1,)) for leaf in jax.tree_util.tree_leaves(jac)],
                          axis=-1)


def test_structured_path_is_the_jacobian_product_for_conv_and_residual_layers():
    """implementation='structured', trace_axes=(): the full block Θ[i, j, a, c] = Σ_p J1[i, a, p] J2[j, c, p] of
    the network's own apply_fn, and the NNGP the outer product of the outputs, for a network whose affine layers the
    structured path handles apart: a strided standard-parameterised Conv with SAME padding and a bias, a residual
    block (FanOut, parallel, FanInSum: the parallel branch of the forward walk) of Dense layers acting on every
    position, Flatten and a readout; also with the batch axis diagonal (x2 = None, outputs averaged) and the output
    axis diagonal (float64; values of order 1-10, sums of a few hundred products: 1e-11)."""
    from ntkcourse import stax
    block = stax.serial(stax.Relu(), stax.Dense(3, W_std=1.4, b_std=0.2))
    network = stax.serial(
        stax.Conv(3, (2, 2), strides=(2, 1), padding="SAME", parameterization="standard", b_std=0.3),
        stax.FanOut(2), stax.parallel(block, stax.Identity()), stax.FanInSum(), stax.Flatten(), stax.Dense(2))
    rng = np.random.default_rng(22)
    x = rng.standard_normal((5, 3, 1, 2))  # 2 output positions after the stride (2, 1): not the one-position shortcut
    with jax.enable_x64(True):
        _, shapes = jax.eval_shape(lambda k: network[0](k, x.shape), jax.random.PRNGKey(0))
        params = jax.tree_util.tree_map(lambda s: rng.standard_normal(s.shape), shapes)
        got = empirical.empirical_kernel_fn(network, trace_axes=(), implementation="structured")(
            x[:2], x[2:], None, params)
        # The layouts with diagonal axes, on the same path: each input of x1 with itself (traced outputs), and the
        # output axis kept once.
        batch_diag = empirical.empirical_ntk_fn(network, diagonal_axes=(0,), implementation="structured")(
            x[:2], None, params)
        output_diag = empirical.empirical_ntk_fn(network, trace_axes=(), diagonal_axes=(-1,),
                                                 implementation="structured")(x[:2], x[2:], params)
        jac = _jacobian_rows(network[1], params, x)
        out = np.asarray(network[1](params, x)).reshape(len(x), -1)
    np.testing.assert_allclose(np.asarray(got.ntk), np.einsum("iap,jcp->ijac", jac[:2], jac[2:]), rtol=0, atol=1e-11)
    np.testing.assert_allclose(np.asarray(got.nngp), np.einsum("ia,jc->ijac", out[:2], out[2:]), rtol=0, atol=1e-11)
    np.testing.assert_allclose(np.asarray(batch_diag), np.einsum("iap,iap->i", jac[:2], jac[:2]) / out.shape[1],
                               rtol=0, atol=1e-11)
    np.testing.assert_allclose(np.asarray(output_diag), np.einsum("iap,jap->ija", jac[:2], jac[2:]), rtol=0,
                               atol=1e-11)


def _wide_linear(p, x):
    return x @ p["w"]


def _wide_tanh(p, x):
    return x @ jnp.tanh(p["w"])


@pytest.mark.parametrize("width, n1, n2, extra, expected", [
    (4096, 1, None, 0, "jacobian"),    # 1 input × 4096 outputs × 4 × 4096 × 4 bytes = 2^28: at the budget
    (4096, 1, None, 1, "structured"),  # one more float32 parameter (unused by f, but held): over it
    (4096, 1, 1, 0, "structured"),     # x2 counts: 2 inputs, twice the budget
    (4096, 2, None, 0, "structured"),  # two inputs in x1
    (1024, 15, 1, 0, "jacobian"),      # 16 inputs × 1024 × 4 × 1024 × 4 bytes = 2^28: x2's batch counts, not its 4 features
    (1024, 16, 1, 0, "structured"),    # 17 inputs: over
])
def test_auto_takes_the_jacobian_while_it_fits_in_256_mib(width, n1, n2, extra, expected):
    """'auto' on a plain function: the Jacobian contraction when (inputs of x1 and x2) × (outputs per input) ×
    (bytes of all parameters, in their own dtype) <= 256 MiB, else structured derivatives read from the jaxpr
    (W enters once, linearly: no leaf kept as a Jacobian block). f(θ, x) = x W with W float32 (4, width), width
    outputs per input; ``implementation_for`` only looks at shapes (f is traced, nothing is computed). In 64-bit
    mode, so that float32 parameters are not the default dtype."""
    params = {"w": np.zeros((4, width), np.float32)}
    if extra:
        params["extra"] = np.zeros(extra, np.float32)
    x1 = np.zeros((n1, 4), np.float32)
    x2 = None if n2 is None else np.zeros((n2, 4), np.float32)
    with jax.enable_x64(True):
        assert empirical.empirical_ntk_fn(_wide_linear).implementation_for(x1, x2, params) == expected


@pytest.mark.parametrize("n1, expected", [(1, "jacobian"), (2, "jvp_vjp")])
def test_auto_takes_the_vector_products_when_the_leaves_kept_whole_are_over_the_budget(n1, expected):
    """'auto' over the budget, for f(θ, x) = x tanh(W): W enters nonlinearly, so structured derivatives would keep
    its whole Jacobian block, itself over 256 MiB for 2 inputs: the NTK-vector products."""
    params = {"w": np.zeros((4, 4096), np.float32)}
    with jax.enable_x64(True):
        got = empirical.empirical_ntk_fn(_wide_tanh).implementation_for(np.zeros((n1, 4), np.float32), None, params)
    assert got == expected


def _powers(theta, x):
    """f(θ, x)[i, s, a] = g_a(x[i, s])·θ with g_1(u) = u and g_2(u) = u² (elementwise): outputs whose kernel block is
    not symmetric in the output pair, Θ[i, j, s, s', a, c] = g_a(x[i, s])·g_c(x[j, s']) ≠ Θ[..., c, a]."""
    return jnp.stack([x @ theta, (x * x) @ theta], axis=-1)


def _powers_kernel(g, diagonal_axes):
    """The block Θ[i, j, s, t, a, c] = g[i, s, :, a]·g[j, t, :, c] in the layout of the diagonal axes asked for."""
    full = np.einsum("isea,jtec->ijstac", g, g)
    if diagonal_axes == (1,):
        return np.einsum("ijssac->ijsac", full)
    if diagonal_axes == (0,):
        return np.einsum("iistac->istac", full)
    return full


@pytest.mark.parametrize("diagonal_axes", [(), (1,), (0,)])
def test_kernel_of_x1_with_itself_keeps_every_pair_of_axes_in_place(diagonal_axes):
    """x2 = None, trace_axes=(): the kernel of x1 with itself, made exactly symmetric by mirroring, is still
    g_a(x_is)·g_c(x_jt) entry by entry, for a block that is symmetric only under the swap of all pairs at once
    (batch, position, output); also with a diagonal position or batch axis among the pairs (values of order 1-10:
    1e-12)."""
    rng = np.random.default_rng(23)
    x, theta = rng.standard_normal((3, 2, D)), rng.standard_normal(D)
    got = f64(lambda: empirical.empirical_ntk_fn(_powers, trace_axes=(), diagonal_axes=diagonal_axes,
                                                 implementation="jacobian")(x, None, theta))
    g = np.stack([x, x * x], axis=-1)  # (n, S, d, 2)
    np.testing.assert_allclose(got, _powers_kernel(g, diagonal_axes), rtol=0, atol=1e-12)


def test_structured_asked_of_a_plain_function_reads_its_jaxpr():
    """implementation='structured' with a plain f: no warning, the structured path itself (read from f's jaxpr: W,
    b and V each enter once, linearly), and the hand value (1e-12)."""
    params, x1, x2 = draw(24)
    with jax.enable_x64(True), warnings.catch_warnings():
        warnings.simplefilter("error")
        ntk_fn = empirical.empirical_ntk_fn(net, implementation="structured")
        got = np.asarray(ntk_fn(x1, x2, params))
        used = ntk_fn.implementation_for(x1, x2, params)
        kept = empirical.jaxpr_fallback_leaves(net, params, x1)
    assert (used, kept) == ("structured", [])
    np.testing.assert_allclose(got, np.einsum("ijaa->ij", hand_ntk(params, x1, x2)) / K, rtol=0, atol=1e-12)


def test_structured_asked_of_a_stax_layer_without_a_structured_rule_is_refused():
    """A stax network whose Dense acts on another channel axis (channel_axis=1: no structured rule) cannot take the
    structured path: refused with the layer named, while 'auto' quietly takes a general implementation."""
    from ntkcourse import stax
    network = stax.serial(stax.Dense(2, channel_axis=1), stax.Relu())
    x = np.zeros((2, 3, 4), np.float32)
    _, shapes = jax.eval_shape(lambda k: network[0](k, x.shape), jax.random.PRNGKey(0))
    params = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    with pytest.raises(ValueError) as info:
        empirical.empirical_ntk_fn(network, implementation="structured")(x, None, params)
    assert str(info.value) == (
        "empirical_ntk_fn: implementation='structured' is not available: layer 'Dense' has parameters but declares "
        "no structured rule (ntkcourse.stax.StructuredRule).")
    assert empirical.empirical_ntk_fn(network).implementation_for(x, None, params) == "jacobian"


def test_monte_carlo_progress_bar_counts_samples(capsys):
    """progress=True: a bar on stderr labelled 'Monte Carlo kernel', counting samples out of n_samples (tqdm's text:
    '0/3' at the start, the unit 'sample')."""
    x = np.ones((2, 3))
    with jax.enable_x64(True):
        empirical.monte_carlo_kernel_fn(linear_init, linear_apply, jax.random.PRNGKey(0), 3, progress=True)(x)
    shown = capsys.readouterr().err
    assert "Monte Carlo kernel:" in shown and "0/3" in shown and "sample/s" in shown


def _scaled_by_options(p, x, factors=(1,), sign="+"):
    return (factors[0] if sign == "+" else -factors[0]) * (x @ p)


def test_several_static_keyword_arguments_each_reach_f():
    """Two non-array keyword arguments of different types (a tuple and a str: static, part of the compilation key,
    in any order) both reach f(θ, x) = ±factors[0]·xθ, whose NTK is factors[0]²·x·x' (the sign squares away): 4 then
    9 times the Gram matrix, a new compilation for the new value (exact in float64: 1e-12)."""
    rng = np.random.default_rng(26)
    x1, x2, theta = rng.standard_normal((3, D)), rng.standard_normal((2, D)), rng.standard_normal((D, 1))
    with jax.enable_x64(True):
        ntk_fn = empirical.empirical_ntk_fn(_scaled_by_options)
        two = np.asarray(ntk_fn(x1, x2, theta, factors=(2,), sign="-"))
        three = np.asarray(ntk_fn(x1, x2, theta, sign="-", factors=(3,)))
    np.testing.assert_allclose(two, 4 * x1 @ x2.T, rtol=0, atol=1e-12)
    np.testing.assert_allclose(three, 9 * x1 @ x2.T, rtol=0, atol=1e-12)


@pytest.mark.parametrize("vmap_axes", [None, 0])
def test_ntk_vector_products_pass_a_keyword_argument_without_default(vmap_axes):
    """implementation='jvp_vjp' with f(θ, x, scale) whose scale has no default (every evaluation of f, the output's
    dtype included, must receive it), on the whole batch and input by input: the NTK of scale·x·w is scale² x x'ᵀ,
    9 times the Gram matrix (1e-12)."""
    rng = np.random.default_rng(31)
    x1, x2 = rng.standard_normal((3, D)), rng.standard_normal((2, D))
    with jax.enable_x64(True):
        ntk_fn = empirical.empirical_ntk_fn(_linear_with_options, implementation="jvp_vjp", vmap_axes=vmap_axes)
        got = np.asarray(ntk_fn(x1, x2, {"w": rng.standard_normal((D, 1))}, scale=3.0))
    np.testing.assert_allclose(got, 9 * x1 @ x2.T, rtol=0, atol=1e-12)


def test_monte_carlo_returns_float64_means_of_float32_draws():
    """With 64-bit mode off, a float32 network's draws are accumulated and returned as float64 NumPy arrays (the
    class docstring): the mean of 3 draws of (x·w_s)(x'·w_s)ᵀ equals np.mean of the float32 draws taken in float64
    (the draws themselves are float32: 1e-6 relative)."""
    def init(key, shape):
        return shape[:-1] + (1,), {"w": jax.random.normal(key, (shape[-1], 1), jnp.float32)}

    x = np.random.default_rng(27).standard_normal((2, D)).astype(np.float32)
    key = jax.random.PRNGKey(4)
    est = empirical.monte_carlo_kernel_fn(init, linear_apply, key, 3, progress=False)(x)
    w = [np.asarray(init(jax.random.fold_in(key, s), x.shape)[1]["w"], np.float64) for s in range(3)]
    assert est.nngp.dtype == est.ntk.dtype == est.nngp_stderr.dtype == np.float64
    np.testing.assert_allclose(est.nngp, np.mean([(x @ ws) @ (x @ ws).T for ws in w], axis=0), rtol=1e-6)


def _linear_with_options(p, x, scale, sign="+"):
    return (scale if sign == "+" else -scale) * (x @ p["w"])


def test_monte_carlo_counts_inside_a_batch_and_batches_of_one():
    """Estimates after 3 and 4 draws in batches of 2 (the count 3 falls inside the second batch) and after 2 draws
    in batches of one (the smallest batch size): the means of the stacked draws (x·w_s)(x·w_s)ᵀ of init_fn's w_s, in
    the order s = 0, 1, ... (rtol 1e-12: the same sums in another order)."""
    x = np.random.default_rng(28).standard_normal((2, D))
    key = jax.random.PRNGKey(5)
    with jax.enable_x64(True):
        three, four = empirical.monte_carlo_kernel_fn(linear_init, linear_apply, key, [3, 4], batch_size=2,
                                                      progress=False)(x, None, "nngp")
        ones = empirical.monte_carlo_kernel_fn(linear_init, linear_apply, key, 2, batch_size=1, progress=False)(
            x, None, "nngp")
        w = [np.asarray(linear_init(jax.random.fold_in(key, s), x.shape)[1]["w"]) for s in range(4)]
    draws = np.stack([(x @ ws) @ (x @ ws).T for ws in w])
    for got, n in ((three, 3), (four, 4), (ones, 2)):
        np.testing.assert_allclose(got, draws[:n].mean(axis=0), rtol=1e-12)


def test_monte_carlo_progress_bar_advances_by_the_samples_used(monkeypatch):
    """n_samples=5 in batches of 2: the bar (total 5) advances 2, 2 and 1: the last batch, cut to the one sample
    used, counts one sample, not the two drawn (implementation='jvp_vjp': the fastest to compile)."""
    updates = []

    class Recorder:
        def update(self, m):
            updates.append(m)

        def close(self):
            pass

    def recording_bar(total, desc, unit, progress):
        updates.append(("total", total))
        return Recorder()

    monkeypatch.setattr(empirical, "progress_bar", recording_bar)
    with jax.enable_x64(True):
        empirical.monte_carlo_kernel_fn(linear_init, linear_apply, jax.random.PRNGKey(0), 5, batch_size=2,
                                        implementation="jvp_vjp")(np.ones((1, 3)), None, "ntk")
    assert updates == [("total", 5), 2, 2, 1]


def _init_with_unused_buffer(key, shape):
    """linear_init plus an unused leaf of 2.2 million float16 zeros (4.4 MB, 2 bytes an entry)."""
    out_shape, params = linear_init(key, shape)
    return out_shape, {**params, "buffer": jnp.zeros(2_200_000, jnp.float16)}


def test_monte_carlo_default_batch_of_parameters_over_one_mib():
    """batch_size=None takes as many samples a batch as fit in 64 MiB of parameter bytes: with 4.4 MB (an unused
    float16 leaf: bytes are entries times 2) 15 samples, fewer than 64; 64 samples (five batches, the last cut)
    estimate the NTK of x·w, which is x x'ᵀ for every draw (the unused leaf adds nothing): rtol 1e-12, the mean of
    64 equal numbers. The NTK-vector products (implementation='jvp_vjp') compile ten times faster than the other
    implementations here; the batching does not depend on the implementation."""
    rng = np.random.default_rng(30)
    x1, x2 = rng.standard_normal((2, D)), rng.standard_normal((1, D))
    with jax.enable_x64(True):
        got = empirical.monte_carlo_kernel_fn(_init_with_unused_buffer, linear_apply, jax.random.PRNGKey(8), 64,
                                              implementation="jvp_vjp", progress=False)(x1, x2, "ntk")
    np.testing.assert_allclose(got, x1 @ x2.T, rtol=1e-12)


def test_monte_carlo_passes_keyword_arguments_and_follows_the_input_shape():
    """Keyword arguments reach f through the Monte Carlo draws (an array, traced, and a str, static): the NNGP of
    ±s·x·w is s² (x·w)(x·w)ᵀ; the same kernel function called again with inputs of another shape draws parameters
    for that shape (rtol 1e-12)."""
    key = jax.random.PRNGKey(6)
    rng = np.random.default_rng(29)
    x3, x4 = rng.standard_normal((2, 3)), rng.standard_normal((2, 4))
    with jax.enable_x64(True):
        kernel_fn = empirical.monte_carlo_kernel_fn(linear_init, _linear_with_options, key, 1, implementation="jacobian",
                                                    progress=False)
        got3 = kernel_fn(x3, None, "nngp", scale=np.array(2.0), sign="-")
        got4 = kernel_fn(x4, None, "nngp", scale=np.array(3.0), sign="-")
        w3 = np.asarray(linear_init(jax.random.fold_in(key, 0), x3.shape)[1]["w"])
        w4 = np.asarray(linear_init(jax.random.fold_in(key, 0), x4.shape)[1]["w"])
    np.testing.assert_allclose(got3, 4 * (x3 @ w3) @ (x3 @ w3).T, rtol=1e-12)
    np.testing.assert_allclose(got4, 9 * (x4 @ w4) @ (x4 @ w4).T, rtol=1e-12)


@pytest.mark.parametrize("vmap_axes", [0, None])
def test_nngp_passes_keyword_arguments_to_f(vmap_axes):
    """empirical_kernel_fn's NNGP of a plain f takes f's outputs with the keyword arguments given (an array scale s):
    s² f(x1)·f(x2)/k, input by input or of the whole batch (1e-11 of values up to ~50)."""
    params, x1, x2 = draw(30)
    with jax.enable_x64(True):
        got = empirical.empirical_kernel_fn(_scaled, vmap_axes=vmap_axes, implementation="jacobian")(
            x1, x2, "nngp", params, scale=np.array(3.0))
    np.testing.assert_allclose(np.asarray(got), 9 * outputs(params, x1) @ outputs(params, x2).T / K, rtol=0,
                               atol=1e-11)


def test_structured_path_is_the_jacobian_product_for_a_dense_layer_on_one_feature_sequences():
    """Dense on sequences of one feature: its input has several positions and one feature, which must not take
    the one-position shortcut of the structured contraction (float64, sums of a few dozen products: 1e-11)."""
    from ntkcourse import stax
    network = stax.serial(stax.Dense(3, b_std=0.2), stax.Relu(), stax.Flatten(), stax.Dense(2))
    rng = np.random.default_rng(23)
    x = rng.standard_normal((4, 3, 1))  # 3 positions, 1 feature
    with jax.enable_x64(True):
        _, shapes = jax.eval_shape(lambda k: network[0](k, x.shape), jax.random.PRNGKey(0))
        params = jax.tree_util.tree_map(lambda s: rng.standard_normal(s.shape), shapes)
        got = empirical.empirical_ntk_fn(network, trace_axes=(), implementation="structured")(x[:2], x[2:], params)
        jac = _jacobian_rows(network[1], params, x)
    np.testing.assert_allclose(np.asarray(got), np.einsum("iap,jcp->ijac", jac[:2], jac[2:]), rtol=0, atol=1e-11)


def test_parameters_of_another_structure_are_refused_showing_both_structures():
    """A bias where the network has none: the message shows init_fn's structure and the one given (shapes)."""
    from ntkcourse import stax
    net = stax.serial(stax.Dense(2), stax.Relu(), stax.Dense(1))
    _, params = net[0](jax.random.PRNGKey(0), (2, 3))
    wrong = [params[0], params[1], (params[2][0], np.ones(1))]
    message = ("empirical_ntk_fn: `params` do not match the network: expected the structure of init_fn's parameters "
               "[((3, 2), None), (), ((2, 1), None)], got [((3, 2), None), (), ((2, 1), (1,))].")
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        empirical.empirical_ntk_fn(net)(np.ones((2, 3)), None, wrong)


def test_a_single_integer_trace_axis_is_the_tuple_of_that_axis():
    with jax.enable_x64(True):
        x = np.random.default_rng(3).normal(size=(3, 4))
        params = {"w": np.random.default_rng(4).normal(size=(4, 2))}
        one = empirical.empirical_ntk_fn(_wide_linear, trace_axes=-1)(x, None, params)
        tup = empirical.empirical_ntk_fn(_wide_linear, trace_axes=(-1,))(x, None, params)
    np.testing.assert_array_equal(one, tup)


def _scalar_inputs(p, x):
    return jnp.tanh(x[:, None] * p["w"])


def test_inputs_of_one_axis_are_a_batch_of_scalars():
    """x of shape (n,): the batch axis alone (nt takes any x with the batch first): Θ = (1 - tanh²)² x x' w·w
    summed over the outputs' traced axis, here against the hand formula (float64, 1e-12)."""
    with jax.enable_x64(True):
        x = np.array([0.3, -1.2, 0.7])
        w = np.array([0.5, -0.4])
        got = np.asarray(empirical.empirical_ntk_fn(_scalar_inputs)(x, None, {"w": w}))
    d = 1 - np.tanh(x[:, None] * w) ** 2  # (n, k): derivative of each output with respect to its weight / x
    want = np.einsum("ik,jk->ij", d * x[:, None], d * x[:, None]) / w.size  # outputs traced: averaged
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_parameters_in_a_named_tuple_of_another_type_are_refused():
    """A NamedTuple is a structure of its own (its type and field names), unlike lists and tuples, which are taken
    as one: parameters of another NamedTuple type are parameters of another network."""
    from typing import NamedTuple

    from ntkcourse.stax.layer import layer

    class Params(NamedTuple):
        w: jax.Array

    class Other(NamedTuple):
        v: jax.Array

    net = layer(lambda key, shape: (shape[:-1] + (1,), Params(jax.random.normal(key, (shape[-1], 1)))),
                lambda p, x, **kwargs: x @ p[0], lambda k: k, "Linear", has_params=True)
    _, params = net[0](jax.random.PRNGKey(0), (2, 3))
    x = np.ones((2, 3))
    np.testing.assert_allclose(empirical.empirical_ntk_fn(net)(x, None, params), np.full((2, 2), 3.0), rtol=1e-6)
    message = ("empirical_ntk_fn: `params` do not match the network: expected the structure of init_fn's parameters "
               "Params(w=(3, 1)), got Other(v=(3, 1)).")
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        empirical.empirical_ntk_fn(net)(x, None, Other(params.w))


def test_inputs_of_another_dtype_are_checked_again():
    """The arguments are checked once per shapes and dtypes: f refusing integer inputs is reported as f's failure
    for them, after a call with floats of the same shape."""
    def f(p, x):
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError("floating inputs only")
        return x @ p

    fn = empirical.empirical_ntk_fn(f)
    params = jnp.ones((3, 1))
    np.testing.assert_allclose(fn(jnp.ones((2, 3), jnp.float32), None, params), np.full((2, 2), 3.0), rtol=1e-6)
    message = ("empirical_ntk_fn: f(params, x1) failed for params of shapes (3, 1) and x1 of shape (2, 3): "
               "TypeError: floating inputs only")
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        fn(jnp.ones((2, 3), jnp.int32), None, params)
