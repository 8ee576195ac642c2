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


@pytest.mark.parametrize("impl, vmap_axes", [("jacobian", None), ("jacobian", 0), ("jvp_vjp", None), ("jvp_vjp", 0)])
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


def linear_apply(p, x):
    return x @ p["w"]


def test_monte_carlo_mean_and_standard_error_are_those_of_the_stacked_draws():
    """f = x·w with w drawn by init_fn(fold_in(key, s)): the NNGP of draw s is (x·w_s)(x'·w_s)ᵀ, computed here in
    numpy from the same draws. Estimates after 2 and 5 draws, in batches of 2 (the last batch cut to 1): the mean
    is np.mean and the standard error np.std(ddof=1)/√n of the stacked draws (the running update combines
    batches: same arithmetic in another order, rtol 1e-12); the NTK is x x'ᵀ for every draw, so its mean is
    x x'ᵀ and its standard error 0 (to round-off of the mean of equal numbers, 1e-15 of the scale)."""
    rng = np.random.default_rng(15)
    x1, x2 = rng.standard_normal((3, D)), rng.standard_normal((2, D))
    key = jax.random.PRNGKey(3)
    with jax.enable_x64(True):
        first, last = empirical.monte_carlo_kernel_fn(linear_init, linear_apply, key, [2, 5], batch_size=2,
                                                      progress=False)(x1, x2)
        w = [np.asarray(linear_init(jax.random.fold_in(key, s), x1.shape)[1]["w"]) for s in range(5)]
    draws = np.stack([(x1 @ ws) @ (x2 @ ws).T for ws in w])
    for est, n in ((first, 2), (last, 5)):
        assert est.n_samples == n
        np.testing.assert_allclose(est.nngp, draws[:n].mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(est.nngp_stderr, draws[:n].std(axis=0, ddof=1) / np.sqrt(n), rtol=1e-12)
        np.testing.assert_allclose(est.ntk, x1 @ x2.T, rtol=0, atol=1e-15 * np.abs(x1 @ x2.T).max())
        np.testing.assert_allclose(est.ntk_stderr, 0.0, rtol=0, atol=1e-15 * np.abs(x1 @ x2.T).max())
