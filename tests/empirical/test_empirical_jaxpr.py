"""Structured derivatives of plain JAX functions, read from their jaxpr (ntkcourse.jaxpr_structure).

Reference: the full block Θ[i, j, a, c] = Σ_θ ∂f_a(x_i)/∂θ · ∂f_c(x'_j)/∂θ from ``jax.jacrev`` of the whole batch,
every leaf flattened and joined, contracted with numpy (no code of ntkcourse.empirical), then traced or cut to its
diagonal with numpy's einsum. Every function below is written with ``jax.lax``/``jnp`` only; each test names which
of its leaves must keep a Jacobian block, so that a rule silently falling back everywhere fails.

Everything runs in float64; kernels have entries of order 1–100, sums of at most a few thousand products:
round-off ~1e-13, hence an absolute tolerance of 1e-10 (a wrong rule is off by O(1)).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from ntkcourse import empirical

TOL = 1e-10


def conv_net(p, x):
    """Two convolutions: strides, SAME padding, kernel dilation and two feature groups (kernel HWIO); then explicit
    uneven padding, input dilation and channels-first outputs (kernel OIHW); a bias broadcast over positions."""
    h = lax.conv_general_dilated(x, p["k1"], (2, 1), "SAME", rhs_dilation=(1, 2), feature_group_count=2,
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    h = jnp.tanh(h + p["c1"])
    h = lax.conv_general_dilated(h, p["k2"], (1, 1), ((1, 0), (0, 1)), lhs_dilation=(2, 1),
                                 dimension_numbers=("NHWC", "OIHW", "NCHW"))
    return jnp.mean(jnp.sin(h), axis=(2, 3)) @ p["w"]


def mixed(p, x):
    """A residual block with a centring shift (sub), a scale (mul) and a bias (add) broadcast over the batch, a
    readout scaled by a constant and reshaped (a scalar and a shape change in the leaf's chain); ``w`` enters two
    products and ``g`` enters through exp (both must keep their Jacobian blocks)."""
    h = ((x - p["shift"]) @ p["w1"]) * p["scale"] + p["bias"]
    h = x + jnp.tanh(h)
    h = jnp.tanh(h @ p["w"]) @ p["w"].T
    return (h @ (p["v"].reshape(4, 2) * 0.5)) * jnp.exp(p["g"])


def attention(p, x):
    """Self-attention on sequences (n, t, d): projections, scores and mixing (dot_general with batch axes between
    activations), and a per-position readout weight (a dot_general with a batch axis in the parameter)."""
    q, k, v = x @ p["wq"], x @ p["wk"], x @ p["wv"]
    s = jnp.einsum("ntd,nsd->nts", q, k) / 2.0
    o = jnp.einsum("nts,nsd->ntd", jax.nn.softmax(s, axis=-1), v)
    return jnp.einsum("ntd,tdk->ntk", o, p["wt"])


def sequence_mlp(p, x):
    """Dense layers acting on every position of a sequence (n, t, d): outputs (n, t, k) for the layouts."""
    return jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"]


def products(p, x):
    """Weights in three places of a dot_general: sharing a batch axis with the input (a per-position weight,
    einsum 'ntd,tdk->ntk'), contracted over two of their axes (tensordot of (n, t, d) inputs with a (t, d, k)
    weight: two contracted axes, one free) and as the left operand (W @ hᵀ)."""
    h = jnp.tanh(jnp.einsum("ntd,tdk->ntk", x, p["wt"]))
    g = jnp.tensordot(x, p["w2"], axes=([1, 2], [0, 1]))
    return (p["wl"] @ h.reshape(h.shape[0], -1).T).T + g


def scales(p, x):
    """Parameters scaled by constants before a product: halved (a division by a literal) and negated (both
    constant scales of a site); and ``2 / b``, a constant divided by the parameter (not linear: ``b`` keeps its
    Jacobian block)."""
    h = x @ (p["a"] / 2.0) + x @ (-p["c"])
    return jnp.tanh(h) * (2.0 / p["b"])


def _draw(shapes, seed):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s) for k, s in shapes.items()}


CASES = {
    "conv": (conv_net, {"k1": (3, 2, 2, 6), "c1": (6,), "k2": (3, 6, 2, 2), "w": (3, 2)}, (6, 5, 4), []),
    "mixed": (mixed, {"shift": (4,), "w1": (4, 4), "scale": (4,), "bias": (4,), "w": (4, 4), "v": (8,), "g": (2,)},
              (4,), ["['g']", "['w']"]),
    "attention": (attention, {"wq": (3, 2), "wk": (3, 2), "wv": (3, 2), "wt": (4, 2, 2)}, (4, 3), []),
    "sequence_mlp": (sequence_mlp, {"w1": (3, 5), "b1": (5,), "w2": (5, 2)}, (4, 3), []),
    "products": (products, {"wt": (3, 2, 4), "w2": (3, 2, 2), "wl": (2, 12)}, (3, 2), []),
    "scales": (scales, {"a": (4, 3), "c": (4, 3), "b": (3,)}, (4,), ["['b']"]),
}


def _case(name, n1=3, n2=2, seed=0):
    fn, shapes, x_shape, fallback = CASES[name]
    params = _draw(shapes, seed)
    rng = np.random.default_rng(seed + 100)
    return fn, params, rng.standard_normal((n1,) + x_shape), rng.standard_normal((n2,) + x_shape), fallback


@functools.lru_cache(maxsize=None)
def _case_block(name, n1, n2, x2_given):
    """The reference block of a case, computed once per module. These functions treat inputs independently, so
    the rows of x1 and x2 come from one Jacobian of both batches joined (one compilation of jacrev, not two)."""
    fn, params, x1, x2, _ = _case(name, n1, n2)
    if not x2_given:
        return _full_block(fn, params, x1, x1)
    joined = np.concatenate([x1, x2])
    both = _full_block(fn, params, joined, joined)
    nd = np.ndim(fn(params, x1))
    return both[(slice(0, n1),) + (slice(None),) * (nd - 1) + (slice(n1, None),)]


def _full_block(fn, params, x1, x2):
    """Θ[i, j, a..., c...] from jax.jacrev of the whole batch (n, *o, P), laid out (n1, *o, n2, *o)."""
    jacobian = jax.jit(jax.jacrev(fn))

    def rows(x):
        out_nd = np.ndim(fn(params, x))
        return np.concatenate([np.reshape(j, np.shape(j)[:out_nd] + (-1,))
                               for j in jax.tree_util.tree_leaves(jacobian(params, x))], axis=-1)

    with jax.enable_x64(True):
        j1 = rows(x1)
        j2 = j1 if x2 is x1 else rows(x2)
    return np.tensordot(j1, j2, axes=([-1], [-1]))


def _layout(full, out_nd, trace_axes, diagonal_axes):
    """The kernel layout of ntkcourse.empirical (neural-tangents'): traced axes averaged, diagonal axes once,
    the other axes' two copies side by side; ``full`` is (n1, *o, n2, *o) with ``out_nd`` = 1 + len(o)."""
    trace = {a % out_nd for a in trace_axes}
    diag = {a % out_nd for a in diagonal_axes}
    letters = iter("abcdefghijklmnop")
    l1 = [next(letters) for _ in range(out_nd)]
    l2 = [l1[i] if i in trace | diag else next(letters) for i in range(out_nd)]
    out = "".join(l1[i] if i in diag else l1[i] + l2[i] for i in range(out_nd) if i not in trace)
    size = np.prod([full.shape[i] for i in trace]) if trace else 1
    return np.einsum(f"{''.join(l1 + l2)}->{out}", full) / size


def _ntk(fn, params, x1, x2, **kw):
    with jax.enable_x64(True):
        return np.asarray(empirical.empirical_ntk_fn(fn, implementation="structured", **kw)(x1, x2, params))


# The attention case (five products and a softmax) takes ~4 s of CPU, mostly XLA compilation: kept out of the
# default suite's budget.
@pytest.mark.parametrize("name", ["conv", "mixed", "products", "scales",
                                  pytest.param("attention", marks=pytest.mark.slow)])
def test_structured_full_block_equals_the_jacobian_product(name):
    """trace_axes=(), x2 given, vmap_axes=None: Θ[i, j, a, c] of the structured path is J(x1)J(x2)ᵀ of jacrev,
    for every function (sites of each primitive, and leaves kept as Jacobian blocks)."""
    fn, params, x1, x2, _ = _case(name)
    got = _ntk(fn, params, x1, x2, trace_axes=())
    full = _case_block(name, 3, 2, True)
    np.testing.assert_allclose(got, _layout(full, np.ndim(fn(params, x1)), (), ()), rtol=0, atol=TOL)


@pytest.mark.parametrize("name", sorted(CASES))
def test_leaves_kept_as_jacobian_blocks_are_exactly_those_not_entering_once_and_linearly(name):
    """jaxpr_fallback_leaves: the used-twice and nonlinear leaves, and no other (every other leaf of these
    functions enters once through dot_general, a convolution's kernel, add, sub or mul)."""
    fn, params, x1, _, fallback = _case(name)
    with jax.enable_x64(True):
        assert empirical.jaxpr_fallback_leaves(fn, params, x1) == fallback


LAYOUTS = [((), (), 0, False), ((-1,), (), None, True), ((-1,), (0,), 0, True), ((), (1,), None, False)]


@pytest.mark.parametrize("trace_axes, diagonal_axes, vmap_axes, x2_given", LAYOUTS)
def test_structured_layouts_equal_the_jacobian_product(trace_axes, diagonal_axes, vmap_axes, x2_given):
    """Dense layers on sequences (outputs (n, t, k): a position and an output axis) in the layouts: traced axes
    averaged, diagonal axes kept once (batch, position), Jacobians per input (vmap_axes=0) or of the whole batch,
    x2 = None (the kernel of x1 with itself) or given; each of trace_axes (), (-1,) and each vmap_axes with both
    x2s."""
    fn, params, x1, x2, _ = _case("sequence_mlp", n1=3, n2=3)
    got = _ntk(fn, params, x1, x2 if x2_given else None, trace_axes=trace_axes, diagonal_axes=diagonal_axes,
               vmap_axes=vmap_axes)
    full = _case_block("sequence_mlp", 3, 3, x2_given)
    np.testing.assert_allclose(got, _layout(full, 3, trace_axes, diagonal_axes), rtol=0, atol=TOL)


@pytest.mark.slow  # ~1.5 s of CPU, kept out of the default suite's budget; vmap_axes=None is in the layouts above
def test_structured_batch_mixing_function_takes_the_whole_batch():
    """vmap_axes=None for f that centres by the batch mean: every input's output depends on the whole batch, and
    the structured kernel is still J Jᵀ of the batch (each output direction back-propagated through all inputs)."""
    def centred(p, x):
        return jnp.tanh((x - x.mean(0)) @ p["w"] + p["b"]) @ p["v"]

    params = _draw({"w": (4, 5), "b": (5,), "v": (5, 2)}, 3)
    x1 = np.random.default_rng(4).standard_normal((4, 4))
    got = _ntk(centred, params, x1, None, trace_axes=())
    np.testing.assert_allclose(got, _layout(_full_block(centred, params, x1, x1), 2, (), ()), rtol=0, atol=TOL)


def test_structured_kernel_of_x1_with_itself_under_jit_equals_eager():
    """jax.jit around the kernel function (inputs and parameters traced): the same values as the eager call (the
    jaxpr is then read from tracers)."""
    fn, params, x1, _, _ = _case("sequence_mlp")
    with jax.enable_x64(True):
        ntk_fn = empirical.empirical_ntk_fn(fn, implementation="structured", vmap_axes=0)
        eager = np.asarray(ntk_fn(x1, None, params))
        jitted = np.asarray(jax.jit(lambda a, p: ntk_fn(a, None, p))(x1, params))
    np.testing.assert_allclose(jitted, eager, rtol=0, atol=TOL)


# Each block is formed and contracted a slice of parameter entries at a time, about
# jaxpr_structure.JACOBIAN_CHUNK_BYTES per side (1 MiB: one slice for these functions), set small here. 6 rows (3
# inputs × 2 outputs), float64: a column of conv's first patches (12 per group; 2 groups × 3 output channels) is
# 288 bytes of its block, one of the second's (24; 3 channels) 144, one of the readout's inputs (3) 96: 1440 bytes
# are slices of 5 columns out of 12 and of 10 out of 24 (three each, the last ones padded with zero columns), and
# the readout whole; 8 bytes are one column at a time in both products of the mixed function that are sites. The
# mixed case takes another ~1.5 s of CPU, kept out of the default suite's budget.
@pytest.mark.parametrize("name, x2_given, chunk_bytes",
                         [("conv", True, 1440), pytest.param("mixed", False, 8, marks=pytest.mark.slow)])
def test_per_input_jacobian_contraction_equals_the_jacobian_product(monkeypatch, name, x2_given, chunk_bytes):
    """implementation='jacobian' with vmap_axes=0 forms each input's Jacobian blocks from the jaxpr's factors
    (patches ⊗ signal, input ⊗ signal, the signal itself for a bias, kept leaves from the backward pass), a slice of
    columns of the recorded input at a time (a loop, the last slice padded with zeros; or the whole block): the sum
    of the slices' products is still J(x1)J(x2)ᵀ of jacrev, with x2 given or x2 = None (each slice formed once and
    contracted with itself)."""
    monkeypatch.setattr(empirical.jaxpr_structure, "JACOBIAN_CHUNK_BYTES", chunk_bytes)
    fn, params, x1, x2, _ = _case(name)
    with jax.enable_x64(True):
        got = np.asarray(empirical.empirical_ntk_fn(fn, trace_axes=(), vmap_axes=0, implementation="jacobian")(
            x1, x2 if x2_given else None, params))
    np.testing.assert_allclose(got, _layout(_case_block(name, 3, 2, x2_given), 2, (), ()), rtol=0, atol=TOL)


def bias_reshaped(p, x):
    """A bias broadcast over the batch and then reshaped to add an axis of size 1 ((n, d) -> (n, 1, d)): a chain
    whose reshape meets a broadcast axis. Outputs (n, 1, d)."""
    b = jnp.broadcast_to(p["b"], x.shape).reshape(x.shape[0], 1, x.shape[1])
    return (x @ p["w"])[:, None, :] + b


def test_reshape_adding_an_axis_of_size_one_keeps_a_broadcast_bias_structured():
    """jaxpr_fallback_leaves: a reshape that only adds a 1 to a broadcast chain keeps the bias a site (no leaf is
    kept as a Jacobian block)."""
    params = _draw({"w": (3, 3), "b": (3,)}, 5)
    x = np.random.default_rng(6).standard_normal((2, 3))
    with jax.enable_x64(True):
        assert empirical.jaxpr_fallback_leaves(bias_reshaped, params, x) == []


def test_reshape_adding_an_axis_of_size_one_sums_the_bias_over_the_broadcast_batch_axis():
    """The structured kernel of the reshaped bias (batch 2, features 3: the batch axis, not the feature axis,
    is the one the bias is broadcast along after the reshape) is J Jᵀ of jacrev, off-diagonal pairs included."""
    params = _draw({"w": (3, 3), "b": (3,)}, 5)
    x = np.random.default_rng(6).standard_normal((2, 3))
    got = _ntk(bias_reshaped, params, x, None, trace_axes=())
    np.testing.assert_allclose(got, _layout(_full_block(bias_reshaped, params, x, x), 3, (), ()), rtol=0, atol=TOL)


def test_reshape_merging_a_broadcast_axis_keeps_the_leaf_as_a_jacobian_block():
    """A reshape joining the broadcast batch axis with the bias's own axis ((n, d) -> (n d,)) has no mask of
    broadcast axes: the bias keeps its Jacobian block."""
    def merged(p, x):
        return x.reshape(-1) + jnp.broadcast_to(p["b"], x.shape).reshape(-1)

    params = _draw({"b": (3,)}, 5)
    x = np.random.default_rng(6).standard_normal((2, 3))
    with jax.enable_x64(True):
        assert empirical.jaxpr_fallback_leaves(merged, params, x) == ["['b']"]


def batch_broadcast_weight(p, x):
    """A weight broadcast along the batch and contracted per input (a dot_general with a batch axis): the
    broadcast axis has size n for the whole batch, 1 for one input."""
    return jnp.einsum("nd,ndk->nk", x, jnp.broadcast_to(p["w"], (x.shape[0],) + p["w"].shape))


def test_fallback_leaves_of_the_whole_batch_include_a_weight_broadcast_along_it():
    """vmap_axes=None (the default): the weight reaches dot_general through a broadcast of size n, so it keeps
    its Jacobian block."""
    params = _draw({"w": (3, 2)}, 7)
    x = np.random.default_rng(8).standard_normal((2, 3))
    with jax.enable_x64(True):
        assert empirical.jaxpr_fallback_leaves(batch_broadcast_weight, params, x) == ["['w']"]


def test_fallback_leaves_per_input_exclude_a_weight_broadcast_along_the_batch():
    """vmap_axes=0: each input is read alone (a batch of one), the broadcast adds no summed axis, and the weight
    is a dot_general site."""
    params = _draw({"w": (3, 2)}, 7)
    x = np.random.default_rng(8).standard_normal((2, 3))
    with jax.enable_x64(True):
        assert empirical.jaxpr_fallback_leaves(batch_broadcast_weight, params, x, vmap_axes=0) == []


def test_fallback_leaves_refuse_a_non_numeric_input_naming_x():
    """A string input: TypeError naming the function and `x`."""
    with pytest.raises(TypeError) as info:
        empirical.jaxpr_fallback_leaves(sequence_mlp, {"w1": np.ones((3, 5))}, ["a", "b"])
    assert str(info.value) == "jaxpr_fallback_leaves: `x` must be a numeric array, got dtype <U1."


def test_fallback_leaves_refuse_vmap_axes_other_than_0_or_none():
    """vmap_axes=1: ValueError naming the function and `vmap_axes`."""
    with pytest.raises(ValueError) as info:
        empirical.jaxpr_fallback_leaves(sequence_mlp, {"w1": np.ones((3, 5))}, np.ones((2, 3)), vmap_axes=1)
    assert str(info.value) == ("jaxpr_fallback_leaves: `vmap_axes` must be 0 (inputs and outputs batched along "
                               "axis 0, processed independently) or None (f may mix the inputs of a batch), got 1.")


def test_fallback_leaves_per_input_exclude_a_weight_of_one_input_feature_broadcast_along_the_batch():
    """vmap_axes=0 with a weight of shape (1, 2) (one input feature): its broadcast to (1, 1, 2) stretches no axis
    of size 1 to more entries, so no axis is summed and the weight is a dot_general site."""
    params = _draw({"w": (1, 2)}, 9)
    x = np.random.default_rng(10).standard_normal((2, 1))
    with jax.enable_x64(True):
        assert empirical.jaxpr_fallback_leaves(batch_broadcast_weight, params, x, vmap_axes=0) == []


def row_bias(p, x):
    """A Dense layer whose bias is a row (1, k), broadcast explicitly to the batch (n, k): the size-1 axis is
    stretched, so the bias's Jacobian block is summed over the batch."""
    return x @ p["w"] + jnp.broadcast_to(p["b"], (x.shape[0], p["b"].shape[1]))


def test_a_row_bias_stretched_along_the_batch_is_summed_over_it():
    """The structured kernel of a (1, k) bias broadcast to (2, k) (batch 2) is J Jᵀ of jacrev, off-diagonal pairs
    (i ≠ j, where only the bias contributes a shared term) included."""
    params = _draw({"w": (3, 2), "b": (1, 2)}, 11)
    x = np.random.default_rng(12).standard_normal((2, 3))
    got = _ntk(row_bias, params, x, None, trace_axes=())
    np.testing.assert_allclose(got, _layout(_full_block(row_bias, params, x, x), 2, (), ()), rtol=0, atol=TOL)


def _scaled_by_a_scalar_weight(p, x):
    """A weight vector times a scalar weight (a product of two leaves, so not a constant scale: a site of each
    leaf whose other factor is the other leaf's value), times an activation."""
    return jnp.tanh(x @ p["t"]) * (p["s"] * p["u"])


@pytest.mark.parametrize("vmap_axes", [0, None])
def test_a_weight_times_a_scalar_weight_equals_the_jacobian_product(vmap_axes):
    """The site of ``s`` multiplies it by the scalar ``u``: input by input (vmap_axes=0) its recorded factor has a
    sample axis and no axis of its own, which must broadcast against every output axis."""
    rng = np.random.default_rng(7)
    params = {"t": rng.standard_normal((3, 2)), "s": rng.standard_normal(2), "u": rng.standard_normal(())}
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((2, 3))
    got = _ntk(_scaled_by_a_scalar_weight, params, x1, x2, trace_axes=(), vmap_axes=vmap_axes)
    np.testing.assert_allclose(got, _layout(_full_block(_scaled_by_a_scalar_weight, params, x1, x2), 2, (), ()),
                               rtol=0, atol=TOL)


def test_structured_per_input_keeps_the_jacobian_blocks_of_the_fallback_leaves():
    """vmap_axes=0 (input by input): the leaves kept as Jacobian blocks (``mixed``: ``g`` through exp, ``w`` used
    twice) have per-input blocks whose output axes are unfolded like the sites' signals."""
    fn, params, x1, x2, _ = _case("mixed")
    got = _ntk(fn, params, x1, x2, trace_axes=(), vmap_axes=0)
    np.testing.assert_allclose(got, _layout(_case_block("mixed", 3, 2, True), 2, (), ()), rtol=0, atol=TOL)


def _weight_per_input(p, x):
    """A weight broadcast along the batch, then contracted input by input (a batch axis of the product)."""
    return jnp.tanh(jnp.einsum("nd,ndk->nk", x, jnp.broadcast_to(p["w"], (x.shape[0],) + p["w"].shape)))


def test_structured_of_one_input_and_three_keeps_a_leaf_whose_site_changes_with_the_batch_whole():
    """Whole batch: for x1 of one input the weight's broadcast adds an axis of size one (a product site), for x2
    of three it is broadcast along the batch (no site): the two plans must agree, so the weight keeps its
    Jacobian block in both."""
    rng = np.random.default_rng(8)
    params = {"w": rng.standard_normal((3, 2))}
    x1, x2 = rng.standard_normal((1, 3)), rng.standard_normal((3, 3))
    got = _ntk(_weight_per_input, params, x1, x2, trace_axes=(), vmap_axes=None)
    want = _layout(_full_block(_weight_per_input, params, x1, x2), 2, (), ())
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


def _chain_of_products(p, x):
    return jnp.einsum("nd,dk,kj->nj", x, p["a"], p["b"])


def test_structured_of_one_input_and_three_keeps_a_leaf_whose_product_changes_with_the_batch_whole():
    """jnp.einsum orders a chain of products by cost, which depends on the batch: x (a b) for three inputs,
    (x a) b for one (d = j = 2, k = 8), so ``a`` and ``b`` enter other products in the two plans; the plans
    must agree, so both keep their Jacobian blocks."""
    rng = np.random.default_rng(9)
    params = {"a": rng.standard_normal((2, 8)), "b": rng.standard_normal((8, 2))}
    x1, x2 = rng.standard_normal((1, 2)), rng.standard_normal((3, 2))
    got = _ntk(_chain_of_products, params, x1, x2, trace_axes=(), vmap_axes=None)
    want = _layout(_full_block(_chain_of_products, params, x1, x2), 2, (), ())
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
