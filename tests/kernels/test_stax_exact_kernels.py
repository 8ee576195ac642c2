"""The stax layers' kernels against exact values of the same finite network.

A network with one affine layer (``Dense`` or ``Conv``) and after it only
linear layers without weights (``AvgPool``, ``GlobalAvgPool``, ``Flatten``)
is linear in its parameters: ``f(x) = J(x) θ`` with a Jacobian ``J`` that does
not depend on θ. Its kernels are then exact for every draw of θ, not only in
the infinite-width limit (Jacot et al. 2018; Lee et al. 2019):

* NTK: ``Θ(x, x') = J(x) J(x')ᵀ`` (gradients with respect to the parameters as
  ``apply_fn`` takes them);
* NNGP: ``Σ(x, x') = E[f(x) f(x')] = J(x) diag(v) J(x')ᵀ`` with ``v`` the
  variance of each parameter at initialisation: 1 in the NTK
  parameterisation (standard normal W and b, the scales are in the layer),
  ``σ_w²/fan_in`` for W and ``σ_b²`` for b in the standard one.

The kernel of a network's output of several units is that of one unit: the
Jacobian products are averaged over the output channels (and, after
``Flatten``, over the flattened units, which pairs each position with
itself); before a readout, kept position by position. ``J`` is computed
here with ``jax.jacobian`` of the network's own ``apply_fn``, so these values
are independent of ``kernel_fn``'s formulas. Values are float64; both sides
are sums of a few hundred products of either sign, hence rtol 1e-12 plus an
absolute 1e-12 of the largest entry (entries near zero lose relative accuracy
to cancellation; a formula error is of the order of the entries).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from ntkcourse import stax



def assert_close(got, expected):
    """Equal to rtol 1e-12 and atol 1e-12 x the largest entry: round-off of float64 sums (module docstring)."""
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.max(np.abs(expected)))


def _inputs(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def _jacobians(net, params, x):
    """J of the network's outputs (n, spatial..., channels) with respect to the flattened parameters."""
    flat, unravel = ravel_pytree(params)
    # Forward mode under jit: a few dozen parameters, one compiled program (op by op it takes seconds).
    return np.asarray(jax.jit(jax.jacfwd(lambda p: net[1](unravel(p), jnp.asarray(x))))(flat))


def _variances(params, standard, w_var, fan_in, b_var):
    """The variance of each flattened parameter at initialisation (see the module docstring)."""
    w, b = params
    if not standard:
        return np.ones(ravel_pytree(params)[0].shape)
    parts = (np.full(w.shape, w_var / fan_in), None if b is None else np.full(b.shape, b_var))
    return np.asarray(ravel_pytree(parts)[0])


def _products(j1, j2, weights=None):
    """Σ_θ J1 J2ᵀ (weighted), per spatial pair of output positions and averaged over the output channels.

    Output (n1, n2) for a readout, (n1, n2, P1, P2) for a 1-D spatial output, (n1, n2, H, H', W, W') for 2-D.
    """
    if weights is not None:
        j1 = j1 * weights
    channels = j1.shape[-2]
    s = j1.ndim - 3  # spatial axes of the output
    if s == 0:
        return np.einsum("icp,jcp->ij", j1, j2) / channels
    if s == 1:
        return np.einsum("iacp,jbcp->ijab", j1, j2) / channels
    return np.einsum("iabcp,jdecp->ijadbe", j1, j2) / channels


def _kernels(net, x1, x2):
    with jax.enable_x64(True):
        k = net[2](x1, x2, None)
        params = net[0](jax.random.PRNGKey(3), x1.shape)[1]
    return k, params


def _assert_exact(net, x1, x2, standard, w_var, fan_in, b_var):
    """NTK, NNGP and the two self-covariances (cov1, cov2: each input with itself, every pair of positions)."""
    k, params = _kernels(net, x1, x2)
    n1 = len(x1)
    with jax.enable_x64(True):
        # The one affine layer's (W, b): the other layers of a serial network have no parameters.
        affine = params if not isinstance(params, list) else next(p for p in params if len(p) == 2)
        v = _variances(affine, standard, w_var, fan_in, b_var)
        j = _jacobians(net, params, np.concatenate([x1, x2]))  # one compiled Jacobian for both inputs
    j1, j2 = j[:n1], j[n1:]
    # The kernel's record of the output shapes (a later layer reads its fan-in there) is apply_fn's.
    assert (tuple(k.shape1), tuple(k.shape2)) == (j1.shape[:-1], j2.shape[:-1])
    assert_close(np.asarray(k.ntk), _products(j1, j2))
    assert_close(np.asarray(k.nngp), _products(j1, j2, v))
    for cov, jx in ((k.cov1, j1), (k.cov2, j2)):
        self_kernel = _products(jx, jx, v)
        assert_close(np.asarray(cov), self_kernel[np.arange(len(jx)), np.arange(len(jx))])


@pytest.mark.parametrize("parameterization, b_std", [("ntk", 0.7), ("standard", None), ("standard", 0.7)])
def test_dense_kernels_are_the_jacobian_products_of_the_linear_network(parameterization, b_std):
    """Dense(W_std=1.3) on 4-feature inputs: NTK J Jᵀ and NNGP J diag(v) Jᵀ of apply_fn (x2 ≠ x1)."""
    net = stax.Dense(3, W_std=1.3, b_std=b_std, parameterization=parameterization)
    x1, x2 = _inputs((3, 4), 0), _inputs((2, 4), 1)
    _assert_exact(net, x1, x2, parameterization == "standard", 1.3**2, 4, None if b_std is None else b_std**2)


CONV_CASES = [
    # (filter, strides, padding, readout, parameterization): each Conv kernel_fn compiles for ~1.5 s of CPU, so
    # three cases cover the paddings, strides in each direction, both parameterisations and every readout.
    ((3, 2), (2, 1), "SAME", None, "standard"),
    ((2, 2), (1, 2), "CIRCULAR", "circular pool", "ntk"),
    ((2, 3), (1, 1), "VALID", "normalized pool", "ntk"),
]


def _readout(name):
    return {None: [],
            "circular pool": [stax.AvgPool((3, 2), strides=(1, 2), padding="CIRCULAR"), stax.GlobalAvgPool()],
            "normalized pool": [stax.AvgPool((3, 3), strides=(2, 1), padding="SAME", normalize_edges=True),
                                stax.Flatten()]}[name]


@pytest.mark.parametrize("filter_shape, strides, padding, readout, parameterization", CONV_CASES)
def test_conv_kernels_are_the_jacobian_products_of_the_linear_network(filter_shape, strides, padding, readout,
                                                                      parameterization):
    """Conv(W_std=1.2, b_std=0.4) on 5x4 images of 2 channels, then a readout without weights (or none:
    the kernel of every pair of output positions): NTK and NNGP as Jacobian products (x2 ≠ x1, other size).
    """
    conv = stax.Conv(3, filter_shape, strides, padding, W_std=1.2, b_std=0.4, parameterization=parameterization)
    net = stax.serial(conv, *_readout(readout))
    x1, x2 = _inputs((2, 5, 4, 2), 2), _inputs((3, 5, 4, 2), 3)
    _assert_exact(net, x1, x2, parameterization == "standard", 1.2**2, 2 * np.prod(filter_shape), 0.4**2)


def test_dense_after_flatten_reads_its_fan_in_from_the_flattened_shape():
    """Flatten then Dense(W_std=1.3, b_std=0.7, 'standard') on 3x2 images of 2 channels: fan-in 12, NTK
    x·x' + 1 (the gradients unscaled) as the Jacobian product of the linear network, NNGP 1.3² x·x'/12 + 0.7².
    """
    net = stax.serial(stax.Flatten(), stax.Dense(3, W_std=1.3, b_std=0.7, parameterization="standard"))
    _assert_exact(net, _inputs((2, 3, 2, 2), 5), _inputs((3, 3, 2, 2), 6), True, 1.3**2, 12, 0.7**2)


def _padded_sequences(seed):
    """Sequences (2, 4, 3) and (3, 4, 3) padded with c = -7 (x1's sequence 0 has 3 real steps, x2's sequence 1
    has 2: REAL_STEPS), and the readout layer's reduction of the real steps (mean or sum).
    """
    c = -7.0
    rng = np.random.default_rng(seed)
    x1, x2 = rng.standard_normal((2, 4, 3)), rng.standard_normal((3, 4, 3))
    x1[0, 3] = c
    x2[1, 2:] = c
    return c, x1, x2


REAL_STEPS = ((3, 4), (4, 2, 4))  # real steps of each sequence of x1 and of x2 (_padded_sequences)


def _over_real_steps(x, real, reduce):
    """``reduce`` (np.mean or np.sum) of each sequence of x over its first ``real`` steps."""
    return np.stack([reduce(seq[:t], axis=0) for seq, t in zip(x, real)])


def test_masked_mean_of_a_dense_layer_over_real_steps_is_the_kernel_of_the_mean_real_inputs():
    """serial(Dense(W_std=1.5, b_std=0.5), GlobalAvgPool) on sequences (n, 4, 3) padded with c = -7
    (x1: the last step of sequence 0; x2: the last two of sequence 1), kernel_fn(..., mask_constant=c):
    the mean of 1.5² x_t·x'_t'/3 + 0.5² over the real pairs (t, t') is 1.5² m·m'/3 + 0.5², m the mean of the
    real steps; NTK = NNGP (one layer), cov1 and cov2 the same formula of each input with itself.
    """
    c, x1, x2 = _padded_sequences(4)
    net = stax.serial(stax.Dense(2, W_std=1.5, b_std=0.5), stax.GlobalAvgPool())
    with jax.enable_x64(True):
        k = net[2](x1, x2, None, mask_constant=c)
    m1, m2 = _over_real_steps(x1, REAL_STEPS[0], np.mean), _over_real_steps(x2, REAL_STEPS[1], np.mean)
    expected = 1.5**2 * m1 @ m2.T / 3 + 0.5**2
    assert_close(np.asarray(k.nngp), expected)
    assert_close(np.asarray(k.ntk), expected)
    assert_close(np.asarray(k.cov1), 1.5**2 * np.sum(m1 * m1, axis=1) / 3 + 0.5**2)
    assert_close(np.asarray(k.cov2), 1.5**2 * np.sum(m2 * m2, axis=1) / 3 + 0.5**2)


def test_masked_mean_with_x2_none_is_the_kernel_of_the_mean_real_inputs_with_themselves():
    """As the test above with x2 = None and only the NNGP asked for (no NTK, no cov2 computed): the NNGP of x1
    with itself, 1.5² m·m'/3 + 0.5² over x1's own real steps.
    """
    c, x1, _ = _padded_sequences(4)
    net = stax.serial(stax.Dense(2, W_std=1.5, b_std=0.5), stax.GlobalAvgPool())
    with jax.enable_x64(True):
        nngp = net[2](x1, None, "nngp", mask_constant=c)
    m1 = _over_real_steps(x1, REAL_STEPS[0], np.mean)
    assert_close(np.asarray(nngp), 1.5**2 * m1 @ m1.T / 3 + 0.5**2)


def test_masked_sum_of_a_dense_layer_over_real_steps_is_the_kernel_of_the_summed_real_inputs():
    """serial(Dense(W_std=1.5, b_std=0.5), GlobalSumPool) on the same padded sequences: the sum of
    1.5² x_t·x'_t'/3 + 0.5² over the T1 T2 real pairs is 1.5² s·s'/3 + 0.5² T1 T2, s the sum of the real steps
    (NNGP = NTK, one layer; cov1 the same of each input of x1 with itself).
    """
    c, x1, x2 = _padded_sequences(6)
    net = stax.serial(stax.Dense(2, W_std=1.5, b_std=0.5), stax.GlobalSumPool())
    with jax.enable_x64(True):
        k = net[2](x1, x2, None, mask_constant=c)
    s1, s2 = _over_real_steps(x1, REAL_STEPS[0], np.sum), _over_real_steps(x2, REAL_STEPS[1], np.sum)
    t1, t2 = np.array(REAL_STEPS[0], float), np.array(REAL_STEPS[1], float)
    expected = 1.5**2 * s1 @ s2.T / 3 + 0.5**2 * np.outer(t1, t2)
    assert_close(np.asarray(k.nngp), expected)
    assert_close(np.asarray(k.ntk), expected)
    assert_close(np.asarray(k.cov1), 1.5**2 * np.sum(s1 * s1, axis=1) / 3 + 0.5**2 * t1**2)


@pytest.mark.parametrize("readout", ["GlobalAvgPool", "GlobalSumPool"])
def test_masked_global_pooling_in_float32_stays_float32(readout):
    """kernel_fn(..., dtype=float32, mask_constant=c) of Dense + a global pooling: the counts of real steps
    that divide the sums (or the ones of the sum) are in the kernel's float32, so every output (NNGP, NTK, cov1,
    cov2) is float32 even in 64-bit mode (where a float64 count would promote it), and equals the float64 kernel
    to float32 round-off.
    """
    c, x1, x2 = _padded_sequences(5)
    net = stax.serial(stax.Dense(2, W_std=1.5, b_std=0.5), getattr(stax, readout)())
    with jax.enable_x64(True):
        k32 = net[2](x1, x2, None, mask_constant=c, dtype=jnp.float32)
        k64 = net[2](x1, x2, None, mask_constant=c)
    for name in ("nngp", "ntk", "cov1", "cov2"):
        got = getattr(k32, name)
        assert got.dtype == jnp.float32, name
        # float32 sums of a dozen products: relative error a few ulps of float32 (1e-7); 1e-5 leaves room
        np.testing.assert_allclose(np.asarray(got), np.asarray(getattr(k64, name)), rtol=1e-5, err_msg=name)


def test_masked_global_pooling_records_the_pooled_shapes_and_a_full_layout():
    """The Kernel after a masked GlobalAvgPool records what apply_fn returns: shapes (n1, C) and (n2, C), no
    spatial axes (diagonal_spatial exactly False, the documented bool), and one mask per input (each has a real
    step; an input made only of padding would stay padding after the pool, as in neural-tangents).
    """
    c, x1, x2 = _padded_sequences(4)
    net = stax.serial(stax.Dense(2, W_std=1.5, b_std=0.5), stax.GlobalAvgPool())
    with jax.enable_x64(True):
        k = net[2](x1, x2, None, mask_constant=c)
    assert (tuple(k.shape1), tuple(k.shape2)) == ((2, 2), (3, 2))
    assert k.diagonal_spatial is False
    assert np.asarray(k.mask1).tolist() == [True, True] and np.asarray(k.mask2).tolist() == [True, True, True]


# --- Activations: closed forms of the Gaussian expectations ---------------------------------------------------
# After Dense (NTK parameterisation, no layer before it) the pre-activations u, v are centred Gaussians with
# Var u = q1, Var v = q2, Cov(u, v) = q12 = σ_w² x·x'/d + σ_b², and the NTK reaching the activation is q12 itself.
# An activation φ maps them to NNGP E[φ(u)φ(v)] and NTK q12 · E[φ'(u)φ'(v)] (Jacot et al. 2018), here in closed
# form: the same float64 formulas evaluated in another order, hence the rtol 1e-12 of assert_close.


def _dense_covariances(x1, x2, w_std, b_std):
    """(q12, q1, q2) of Dense(W_std=w_std, b_std=b_std) on flat inputs (the input kernel x·x'/d)."""
    d = x1.shape[1]
    return (w_std**2 * x1 @ x2.T / d + b_std**2, w_std**2 * np.sum(x1 * x1, 1) / d + b_std**2,
            w_std**2 * np.sum(x2 * x2, 1) / d + b_std**2)


def _cos_expectations(q12, q1, q2, a, b, c):
    """E[φ(u)φ(v)] and E[φ'(u)φ'(v)] for φ = a cos(b x + c): cos A cos B = (cos(A − B) + cos(A + B)) / 2 and
    E cos(t w + s) = cos(s) exp(−t² Var w / 2) for a centred Gaussian w (sin A sin B likewise, with a minus).
    """
    minus = np.exp(-b**2 * (q1 + q2 - 2 * q12) / 2)
    plus = np.cos(2 * c) * np.exp(-b**2 * (q1 + q2 + 2 * q12) / 2)
    return a**2 * (minus + plus) / 2, a**2 * b**2 * (minus - plus) / 2


def test_cos_layer_kernels_are_the_closed_form_expectations_of_a_cosine():
    """serial(Dense(2, W_std=1.2, b_std=0.3), Cos(0.8, 1.7, 0.3)): NNGP, NTK, cov1 and cov2 from the closed form
    of E[a² cos(bu + c) cos(bv + c)] (Cos is Sin with the phase shifted by π/2).
    """
    x1, x2 = _inputs((3, 4), 7), _inputs((2, 4), 8)
    net = stax.serial(stax.Dense(2, W_std=1.2, b_std=0.3), stax.Cos(0.8, 1.7, 0.3))
    with jax.enable_x64(True):
        k = net[2](x1, x2, None)
    q12, q1, q2 = _dense_covariances(x1, x2, 1.2, 0.3)
    nngp, dot = _cos_expectations(q12, q1[:, None], q2[None, :], 0.8, 1.7, 0.3)
    assert_close(np.asarray(k.nngp), nngp)
    assert_close(np.asarray(k.ntk), q12 * dot)
    for cov, q in ((k.cov1, q1), (k.cov2, q2)):
        assert_close(np.asarray(cov), _cos_expectations(q, q, q, 0.8, 1.7, 0.3)[0])


def _relu_expectations(q12, q1, q2):
    """Arc-cosine kernels of degree 1 and 0 (Cho & Saul 2009): with cos θ = q12 / √(q1 q2),
    E[relu(u) relu(v)] = √(q1 q2) (sin θ + (π − θ) cos θ) / 2π and E[step(u) step(v)] = (π − θ) / 2π.
    """
    norm = np.sqrt(q1 * q2)
    theta = np.arccos(np.clip(q12 / norm, -1.0, 1.0))
    return norm * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi), (np.pi - theta) / (2 * np.pi)


def _positionwise_covariances(x1, x2, w_std, b_std):
    """Dense on the channels of sequences, at every position: q(h, h') = σ_w² x_h·x'_h'/C + σ_b², shape
    (n1, n2, H, H').
    """
    c = x1.shape[-1]
    return w_std**2 * np.einsum("ihc,jkc->ijhk", x1, x2) / c + b_std**2


def test_relu_on_channels_first_sequences_maps_every_pair_of_positions():
    """serial(Dense(2, W_std=1.4, b_std=0.2, channel_axis=1), Relu) on channels-first sequences (n, 3, 5), no
    readout: an activation acts alike in every layout, and the kernel of every pair of positions (h, h') is the
    arc-cosine kernel of q(h, h') with the variances q(h, h) and q'(h', h') (the kernel's arrays are batch first,
    positions after); each input's own covariance (cov1, cov2) the same of the input with itself.
    """
    x1, x2 = _inputs((2, 5, 3), 9), _inputs((3, 5, 3), 10)
    net = stax.serial(stax.Dense(2, W_std=1.4, b_std=0.2, channel_axis=1), stax.Relu())
    with jax.enable_x64(True):
        k = net[2](np.swapaxes(x1, 1, 2), np.swapaxes(x2, 1, 2), None)
    q = _positionwise_covariances(x1, x2, 1.4, 0.2)
    s1 = _positionwise_covariances(x1, x1, 1.4, 0.2)[np.arange(2), np.arange(2)]  # (n1, H, H')
    s2 = _positionwise_covariances(x2, x2, 1.4, 0.2)[np.arange(3), np.arange(3)]
    v1, v2 = np.diagonal(s1, axis1=1, axis2=2), np.diagonal(s2, axis1=1, axis2=2)  # (n, H)
    nngp, dot = _relu_expectations(q, v1[:, None, :, None], v2[None, :, None, :])
    assert_close(np.asarray(k.nngp), nngp)
    assert_close(np.asarray(k.ntk), q * dot)
    assert_close(np.asarray(k.cov1), _relu_expectations(s1, v1[:, :, None], v1[:, None, :])[0])
    assert_close(np.asarray(k.cov2), _relu_expectations(s2, v2[:, :, None], v2[:, None, :])[0])


def test_relu_on_padded_sequences_keeps_the_padding_out_of_the_mean_over_pairs():
    """serial(Dense(2, W_std=1.5, b_std=0.5), Relu, GlobalAvgPool) on the padded sequences above,
    kernel_fn(..., mask_constant=c): the activation passes the masks on, so the pool averages the arc-cosine
    kernel of q(t, t') over the real pairs (t, t') only (variances q(t, t), q'(t', t')).
    """
    c, x1, x2 = _padded_sequences(4)
    net = stax.serial(stax.Dense(2, W_std=1.5, b_std=0.5), stax.Relu(), stax.GlobalAvgPool())
    with jax.enable_x64(True):
        k = net[2](x1, x2, None, mask_constant=c)
    q = _positionwise_covariances(x1, x2, 1.5, 0.5)
    v1 = np.diagonal(_positionwise_covariances(x1, x1, 1.5, 0.5)[np.arange(2), np.arange(2)], axis1=1, axis2=2)
    v2 = np.diagonal(_positionwise_covariances(x2, x2, 1.5, 0.5)[np.arange(3), np.arange(3)], axis1=1, axis2=2)
    nngp, dot = _relu_expectations(q, v1[:, None, :, None], v2[None, :, None, :])
    expected_nngp, expected_ntk = np.zeros((2, 3)), np.zeros((2, 3))
    for i, t1 in enumerate(REAL_STEPS[0]):
        for j, t2 in enumerate(REAL_STEPS[1]):
            expected_nngp[i, j] = nngp[i, j, :t1, :t2].mean()
            expected_ntk[i, j] = (q * dot)[i, j, :t1, :t2].mean()
    assert_close(np.asarray(k.nngp), expected_nngp)
    assert_close(np.asarray(k.ntk), expected_ntk)


def test_an_activation_after_an_activation_is_refused_naming_it():
    """The output of an activation is not Gaussian: a second one is refused, naming it and the fix (the whole
    message, then the end of the string or the line JAX appends under its trace).
    """
    net = stax.serial(stax.Dense(2), stax.Relu(), stax.Erf())
    with pytest.raises(ValueError, match=r"^Erf\(1\.0, 1\.0, 0\.0\): an activation needs Gaussian inputs; put a "
                                         r"Dense or Conv layer before it \(the input of the network, the output of "
                                         r"another activation or of Dropout\(mode='train'\) is not Gaussian\)\."
                                         r"(\n|$)"):
        net[2](np.ones((1, 3)), None, "nngp")


def _elementwise_dual(make):
    """The DualActivation an Elementwise layer carries (the one its kernel map and signal_propagation use)."""
    from ntkcourse.stax.layer import layer_spec
    return layer_spec(make()).config["activation"]


# Values of (var1, var2, cov12) that tell the three arguments apart.
VAR1, VAR2, COV12 = 1.5, 2.5, 0.7


def test_elementwise_passes_neural_tangents_argument_order_to_the_user_functions():
    """nngp_fn(cov12, var1, var2) and d_nngp_fn(cov12, var1, var2), also on the diagonal (cov = var1 = var2):
    functions that are not symmetric in their arguments give back which argument went where.
    """
    act = _elementwise_dual(lambda: stax.Elementwise(jnp.tanh, nngp_fn=lambda c, a, b: c + 10 * a + 100 * b,
                                                     d_nngp_fn=lambda c, a, b: c - 10 * a - 100 * b))
    assert float(act.nngp(VAR1, VAR2, COV12)) == pytest.approx(COV12 + 10 * VAR1 + 100 * VAR2, rel=1e-15)
    assert float(act.dnngp(VAR1, VAR2, COV12)) == pytest.approx(COV12 - 10 * VAR1 - 100 * VAR2, rel=1e-15)
    assert float(act.nngp_diag(VAR1)) == pytest.approx(111 * VAR1, rel=1e-15)
    assert float(act.dnngp_diag(VAR1)) == pytest.approx(-109 * VAR1, rel=1e-15)
    assert act.fn is jnp.tanh


def test_elementwise_without_d_nngp_fn_differentiates_nngp_fn_in_the_covariance():
    """φ(x) = x²: E[u²v²] = q1 q2 + 2 q12² and, by Price's theorem, E[φ'(u)φ'(v)] = ∂/∂q12 = 4 q12 (= E[4uv]);
    on the diagonal 4 q. Autodiff of float64 polynomials: exact to rounding.
    """
    act = _elementwise_dual(lambda: stax.Elementwise(lambda x: x * x, nngp_fn=lambda c, a, b: a * b + 2 * c * c))
    with jax.enable_x64(True):
        assert float(act.dnngp(VAR1, VAR2, COV12)) == pytest.approx(4 * COV12, rel=1e-15)
        assert float(act.dnngp_diag(VAR1)) == pytest.approx(4 * VAR1, rel=1e-15)
        assert float(act.nngp(VAR1, VAR2, COV12)) == pytest.approx(VAR1 * VAR2 + 2 * COV12**2, rel=1e-15)


def test_elementwise_kernels_after_dense_are_those_of_its_dual_functions():
    """serial(Dense(2, W_std=1.2, b_std=0.3), Elementwise(x², E[u²v²])): NNGP q1 q2 + 2 q12², NTK
    q12 · 4 q12 (the derivative kernel by autodiff), cov1 3 q1².
    """
    x1, x2 = _inputs((3, 4), 12), _inputs((2, 4), 13)
    net = stax.serial(stax.Dense(2, W_std=1.2, b_std=0.3),
                      stax.Elementwise(lambda x: x * x, nngp_fn=lambda c, a, b: a * b + 2 * c * c))
    with jax.enable_x64(True):
        k = net[2](x1, x2, None)
    q12, q1, q2 = _dense_covariances(x1, x2, 1.2, 0.3)
    assert_close(np.asarray(k.nngp), np.outer(q1, q2) + 2 * q12**2)
    assert_close(np.asarray(k.ntk), 4 * q12**2)
    assert_close(np.asarray(k.cov1), 3 * q1**2)


def test_elementwise_refuses_a_non_callable_argument_naming_it():
    """Each of fn, nngp_fn, d_nngp_fn must be callable (fn and d_nngp_fn may be None)."""
    for kwargs, name, got in (({"nngp_fn": 1.0}, "nngp_fn", "float"), ({"fn": 2, "nngp_fn": abs}, "fn", "int"),
                              ({"nngp_fn": abs, "d_nngp_fn": "x"}, "d_nngp_fn", "str")):
        with pytest.raises(TypeError, match=rf"^Elementwise: `{name}` must be callable, got {got}\.$"):
            stax.Elementwise(**kwargs)


def test_elementwise_numerical_takes_the_derivative_it_is_given():
    """ElementwiseNumerical(fn=x, deg=8, df=3): the derivative kernel is the quadrature of df, E[3 · 3] = 9, not
    that of fn's own derivative (1); the NNGP E[uv] = cov12. Gauss–Hermite with 8 nodes integrates these
    polynomials exactly: round-off of a weighted sum of 64 terms.
    """
    act = _elementwise_dual(lambda: stax.ElementwiseNumerical(lambda x: x, 8, df=lambda x: 3.0 * jnp.ones_like(x)))
    with jax.enable_x64(True):
        assert float(act.dnngp(VAR1, VAR2, COV12)) == pytest.approx(9.0, rel=1e-13)
        assert float(act.nngp(VAR1, VAR2, COV12)) == pytest.approx(COV12, rel=1e-13)
