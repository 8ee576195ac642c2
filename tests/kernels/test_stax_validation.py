"""Validation of ``ntkcourse.stax``: the kernels against finite networks built
from the same definition, the rate at which finite networks approach them,
their mathematical properties, and the handling of bad input.

Finite networks run in float32 (the default with ``jax_enable_x64`` off: their
Monte Carlo and finite-width errors are 1e-3 and larger, far above float32
round-off); the kernels are float64, as ``kernel_fn`` returns them.

Two kinds of error separate a finite network's kernel from the analytic one:

* fluctuations: a network of width n gives an estimate whose standard
  deviation shrinks like 1/sqrt(n); averaging S independent networks
  divides it by sqrt(S) more. The tests estimate the standard error (SE)
  from the spread between the S networks themselves, so it includes every
  source (hidden layers and readout);
* a bias of order 1/n (the next layer's kernel is a nonlinear function of
  the previous layer's fluctuating kernel). Measured for these networks with
  8192 networks of widths 16 and 32 (bias x n / max|K|, see
  ``BIAS_TIMES_WIDTH``), and allowed for explicitly.

The empirical NTK is computed here, independently of the package, as
``sum over parameters of df(x)/dtheta df(x')/dtheta`` for a scalar output,
with per-example ``jax.grad`` over the parameter pytree.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax
from ntkcourse.engine.inputs import check_input

SQRT2 = math.sqrt(2.0)

# Acceptance band for a Monte Carlo mean: Z_MAX standard errors, with the SE
# estimated from S networks (S - 1 degrees of freedom, Student t).
Z_MAX = 5.0

# |E[finite kernel] - analytic| x width / max|K|, rounded up from the largest
# value measured over the MLPs of the Monte Carlo tests below (Relu/Erf/Gelu,
# depth 1-3, with 8192 networks each at widths 16 and 32: at most 0.69 +- 0.24,
# the same at both widths, as a 1/width bias should be; for the ReLU CNN with
# GlobalAvgPool, 32-1024 networks at 16-512 channels, the mean's error stayed
# at the Monte Carlo noise, < 0.3 / channels). The allowance used is twice
# it: 2/width of max|K|.
BIAS_TIMES_WIDTH = 1.0


# --------------------------------------------------------------------------- #
# Inputs and networks
# --------------------------------------------------------------------------- #


def _fc_inputs(n=5, d=6, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def _image_inputs(shape=(4, 8, 8, 3), seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


ACTIVATIONS = {"Relu": stax.Relu, "Erf": stax.Erf, "Gelu": stax.Gelu}


def _mlp(width, depth, activation, out_dim, W_std=1.5, b_std=0.2):
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=W_std, b_std=b_std), activation()]
    return stax.serial(*layers, stax.Dense(out_dim, W_std=W_std, b_std=b_std))


def _cnn(channels, head, out_dim, W_std=1.5, b_std=0.2):
    """Conv + Relu + Conv + Relu, then Flatten or GlobalAvgPool, then Dense."""
    pool = {"flatten": stax.Flatten, "gap": stax.GlobalAvgPool}[head]
    return stax.serial(
        stax.Conv(channels, (3, 3), padding="SAME", W_std=W_std, b_std=b_std),
        stax.Relu(),
        stax.Conv(channels, (3, 3), padding="SAME", W_std=W_std, b_std=b_std),
        stax.Relu(),
        pool(),
        stax.Dense(out_dim, W_std=W_std, b_std=b_std),
    )


# --------------------------------------------------------------------------- #
# Finite-network estimates
# --------------------------------------------------------------------------- #


def empirical_ntk(apply_fn, params, x):
    """Theta(x_i, x_j) = sum over all parameters of df(x_i)/dtheta df(x_j)/dtheta,
    for the first (scalar) output; ``None`` biases are absent from the leaves."""

    def scalar_output(p, xi):
        return apply_fn(p, xi[None])[0, 0]

    grads = jax.vmap(jax.grad(scalar_output), in_axes=(None, 0))(params, x)
    n = x.shape[0]
    return sum(g.reshape(n, -1) @ g.reshape(n, -1).T for g in jax.tree_util.tree_leaves(grads))


def _empirical_nngp(apply_fn, params, x):
    f = apply_fn(params, x)
    return f @ f.T / f.shape[-1]


def per_network_kernels(net, x, what, n_seeds, seed=0, chunk=None, vectorise=True):
    """One empirical kernel per random network, shape (n_seeds, n, n), float64.

    ``what='nngp'``: f(x) f(x')^T / m over the network's m outputs;
    ``what='ntk'``: :func:`empirical_ntk` of its first output. Networks are
    drawn ``chunk`` at a time (all at once by default), so that memory stays
    bounded for wide ones; network i always comes from key i of the split.
    ``vectorise``: vmap over the networks (batched matrix products, right for
    MLPs) or loop over them inside one compiled function (right for CNNs:
    XLA's CPU convolution with a different filter per batch entry is slow).

    Parameters come from ``init_fn`` vmapped over keys and run eagerly, so
    that jax.random.normal is compiled once per (batched) parameter shape and
    reused by later networks of that shape. The keys are explicit, fixed-seed
    ``jax.random.key(seed, impl="rbg")``: the same statistics as the default
    threefry keys, but XLA compiles the default generator for each new shape
    in 2-4 s of CPU (13 s when vmapped) against 0.3-0.6 s for "rbg", which
    made up most of this file's run time. (The tests' claims are statistical;
    they do not depend on the particular stream.)
    """
    x = jnp.asarray(x, jnp.float32)
    chunk = chunk or n_seeds
    assert n_seeds % chunk == 0
    init_fn, apply_fn, _ = net
    estimator = {"nngp": _empirical_nngp, "ntk": empirical_ntk}[what]

    def one(p):
        return estimator(apply_fn, p, x)

    batched = jax.jit(jax.vmap(one) if vectorise else (lambda ps: jax.lax.map(one, ps)))
    keys = jax.random.split(jax.random.key(seed, impl="rbg"), n_seeds)
    out = []
    for start in range(0, n_seeds, chunk):
        params = jax.vmap(lambda key: init_fn(key, x.shape)[1])(keys[start : start + chunk])
        out.append(np.asarray(batched(params), np.float64))
    return np.concatenate(out)


def _relative_error(estimate, exact):
    return float(np.linalg.norm(estimate - exact) / np.linalg.norm(exact))


def _assert_mean_within_mc_error(per_network, analytic, width):
    """|mean over networks - analytic| <= Z_MAX SE + 2 BIAS_TIMES_WIDTH / width * max|K|, entrywise.

    With S networks the t statistic has S - 1 degrees of freedom: a correct
    kernel fails one entry with probability P(|t| > 5) = 6.7e-7 (S = 1024)
    or 1.9e-6 (S = 128); the bias allowance only lowers it."""
    n_seeds = per_network.shape[0]
    mean = per_network.mean(0)
    se = per_network.std(0, ddof=1) / math.sqrt(n_seeds)
    bias = 2 * BIAS_TIMES_WIDTH / width * np.max(np.abs(analytic))
    excess = np.abs(mean - analytic) - (Z_MAX * se + bias)
    worst_z = np.max(np.abs(mean - analytic) / se)
    assert np.all(excess <= 0), (
        f"max |mean - analytic| / SE = {worst_z:.1f} over {n_seeds} networks; "
        f"relative error {_relative_error(mean, analytic):.3f}"
    )


def _log_log_slope(widths, errors, n_seeds):
    """Least-squares slope of log(error) on log(width), weighting each width
    by sqrt(number of networks) (the SE of a log-mean shrinks like 1/sqrt(S))."""
    return float(np.polyfit(np.log(widths), np.log(errors), 1, w=np.sqrt(n_seeds))[0])


# --------------------------------------------------------------------------- #
# Analytic kernels, shared between tests
# --------------------------------------------------------------------------- #
#
# Compiling a network's kernel_fn costs 0.5-4 s of CPU, so the tests share one
# evaluation per (network, x2 form, dtype), on one set of inputs per kind.


def _residual_net():
    """x -> Dense -> [Relu -> Dense] + identity -> Relu -> Dense: the branches
    are uncorrelated (one ends in an independent zero-mean Dense)."""
    return stax.serial(
        stax.Dense(1, W_std=1.5, b_std=0.1),
        stax.FanOut(2),
        stax.parallel(stax.serial(stax.Relu(), stax.Dense(1, W_std=1.5, b_std=0.1)), stax.Identity()),
        stax.FanInSum(),
        stax.Relu(),
        stax.Dense(1, W_std=1.5, b_std=0.1),
    )


NETWORKS = {
    **{
        f"mlp_{act.lower()}_depth{depth}": functools.partial(_mlp, 1, depth, ACTIVATIONS[act], 1)
        for act in ACTIVATIONS
        for depth in (1, 2, 3)
    },
    "mlp_relu_depth3_no_bias": lambda: _mlp(1, 3, stax.Relu, 1, W_std=SQRT2, b_std=None),
    "mlp_abs_depth2": lambda: _mlp(1, 2, stax.Abs, 1),
    "cnn_gap": lambda: _cnn(1, "gap", 1),
    "cnn_flatten": lambda: _cnn(1, "flatten", 1),
    "residual": _residual_net,
}

# Rows of the special inputs that are exact duplicates of row 0.
DUPLICATE_ROW = {"fc": 7, "image": 5}


def _special_inputs(kind):
    """Random inputs plus an exact duplicate of the first (correlation +1, a
    singular kernel matrix), a rescaled copy (correlation +1 at another norm)
    and a negated copy (correlation -1, the arc-cosine's other endpoint)."""
    if kind == "fc":
        x = _fc_inputs(7, 6, seed=3)
    else:
        x = _image_inputs((5, 6, 6, 3), seed=4)
    return np.concatenate([x, x[:1], 2.5 * x[1:2], -x[2:3]])


def _input_kind(network):
    return "image" if network.startswith("cnn") else "fc"


@functools.lru_cache(maxsize=None)
def _kernels(network, x2_form="None", dtype="float64"):
    """NNGP and NTK of NETWORKS[network] on its special inputs, as numpy arrays."""
    x = _special_inputs(_input_kind(network))
    x2 = None if x2_form == "None" else x
    options = {} if dtype == "float64" else {"dtype": jnp.float32}
    kernels = NETWORKS[network]()[2](x, x2, ("nngp", "ntk"), **options)
    return {"nngp": np.asarray(kernels.nngp), "ntk": np.asarray(kernels.ntk)}


# --------------------------------------------------------------------------- #
# Monte Carlo over finite networks: the mean kernel of random networks
# --------------------------------------------------------------------------- #
#
# Precision per unit of cost is best at small width: S networks of width n
# cost ~S n^2 and give an SE ~1/sqrt(S n), while the bias is ~1/n. Width 64
# with 1024 networks (MLP) puts the bias allowance (2/64 = 3 % of max|K|)
# and 5 SE (0.2-9 % of max|K|, larger for deeper networks) at the same level.


MLP_MC_WIDTH = 64
MLP_MC_SEEDS = 1024


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_mlp_nngp_equals_output_covariance_of_random_finite_networks(act, depth):
    """1024 networks of width 64 (with bias), each with a 64-wide readout (64
    output samples, conditionally independent given its hidden layers); the
    SE comes from the spread between networks, so it counts the hidden
    layers' fluctuations too. Measured over the nine networks: relative
    error of the mean 0.008-0.026, |z| <= 2.4 at depths 1-2 and up to 4.1 at
    depth 3 (the 1/width bias, ~2 SE here, which the allowance covers: the
    largest error is 0.24 of the band); the band (5 SE + bias allowance) is
    3-12 % of max|K| per entry."""
    net = _mlp(MLP_MC_WIDTH, depth, ACTIVATIONS[act], MLP_MC_WIDTH)
    per_network = per_network_kernels(net, _special_inputs("fc"), "nngp", MLP_MC_SEEDS)
    _assert_mean_within_mc_error(per_network, _kernels(f"mlp_{act.lower()}_depth{depth}")["nngp"], MLP_MC_WIDTH)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_mlp_ntk_equals_mean_empirical_ntk_of_random_finite_networks(act):
    """Depth-2 MLP of width 64 with a scalar output, 1024 networks. Measured:
    largest |z| 3.1, relative error of the mean 0.008-0.011."""
    net = _mlp(MLP_MC_WIDTH, 2, ACTIVATIONS[act], 1)
    per_network = per_network_kernels(net, _special_inputs("fc"), "ntk", MLP_MC_SEEDS)
    _assert_mean_within_mc_error(per_network, _kernels(f"mlp_{act.lower()}_depth2")["ntk"], MLP_MC_WIDTH)


CNN_MC_CHANNELS = 32
CNN_MC_SEEDS = 128
# Readout widths: the GlobalAvgPool readout has 32 inputs, so 256 outputs
# cost little; the Flatten readout has 6 x 6 x 32 = 1152, so 64.
CNN_MC_READOUT = {"flatten": 64, "gap": 256}


@pytest.mark.parametrize("head", ["flatten", "gap"])
def test_cnn_nngp_equals_output_covariance_of_random_finite_networks(head):
    """Conv(32, 3x3, SAME) + Relu + Conv + Relu + (Flatten | GlobalAvgPool)
    + Dense(m) on the NHWC special inputs (8, 6, 6, 3), with bias; 128 networks.
    Measured: largest |z| 1.6, relative error of the mean 0.016-0.026; the
    band is 8-21 % of max|K| (the channels' fluctuations dominate)."""
    net = _cnn(CNN_MC_CHANNELS, head, CNN_MC_READOUT[head])
    per_network = per_network_kernels(net, _special_inputs("image"), "nngp", CNN_MC_SEEDS, vectorise=False)
    _assert_mean_within_mc_error(per_network, _kernels(f"cnn_{head}")["nngp"], CNN_MC_CHANNELS)


@pytest.mark.parametrize("head", ["flatten", "gap"])
def test_cnn_ntk_equals_mean_empirical_ntk_of_random_finite_networks(head):
    """The CNN of the NNGP test with a scalar output, 128 networks. Measured:
    largest |z| 2.2, relative error of the mean 0.022-0.024."""
    net = _cnn(CNN_MC_CHANNELS, head, 1)
    per_network = per_network_kernels(net, _special_inputs("image"), "ntk", CNN_MC_SEEDS, vectorise=False)
    _assert_mean_within_mc_error(per_network, _kernels(f"cnn_{head}")["ntk"], CNN_MC_CHANNELS)


# --------------------------------------------------------------------------- #
# Finite-width error shrinks like width^(-1/2)
# --------------------------------------------------------------------------- #
#
# Each network is hidden layers + Dense(1) readout. Its empirical NTK is that
# of its scalar output; its empirical NNGP is the covariance of its output
# given the hidden layers, W_std^2 h(x).h(x')/n (the readout's random
# weights integrated out exactly, so no readout sampling noise is added and
# the same networks serve both kernels).
#
# The relative Frobenius error of ONE network's kernel is ~C/sqrt(width) times
# a random factor whose coefficient of variation (CV) was measured at about
# 0.4 (MLP, 400 networks per width) and 0.40-0.47 (the CNN below, 256-512
# per width); the bias (~1/width) is an order of magnitude below it at these
# widths. The log of the mean of S networks then has an SD ~CV/sqrt(S), and
# the slope of the least-squares fit of log error on log width (weights
# sqrt(S)) has an SE that follows from the widths and S chosen below:
# 0.028-0.029 (MLP) and 0.017-0.019 (CNN, NNGP and NTK). The MLP's band
# [-0.65, -0.35] is +-0.15 around -1/2, 4.4 SE or more; the CNN's
# [-0.58, -0.42] is +-0.08, 4.2-4.7 SE. A correct engine fails either with
# probability < 1e-4; a slope of 0 or -1 is 17 SE or more outside.
#
# The CNN is as small as a CNN can be and keep what makes it one: two 2 x 2
# VALID convolutions on 4 x 4 images (4 x 4 -> 3 x 3 -> 2 x 2 positions, the
# patches overlap and the filters are shared between positions in both
# layers), ReLU, GlobalAvgPool. Its cost is that of the C -> C filter,
# 4 C^2 weights: 67 M (268 MB in float32) at 4096 channels, drawn in 1-2 s
# per network; so 8 networks at 4096 channels, 64 at 1024 and 256 at 64 and
# 256 channels, where they are almost free.

MLP_WIDTHS, MLP_SEEDS, MLP_CHUNKS = (64, 256, 1024, 4096), (128, 128, 16, 3), (128, 128, 16, 1)
CNN_WIDTHS, CNN_SEEDS = (64, 256, 1024, 4096), (256, 256, 64, 8)
SCALING_FC_INPUTS = (6, 8)
# Eight small images give a lower CV than four larger ones for the same cost.
SCALING_IMAGES = (8, 4, 4, 3)


def _relu_hidden_layers(kind, width):
    if kind == "mlp":
        return stax.serial(stax.Dense(width, W_std=SQRT2), stax.Relu(), stax.Dense(width, W_std=SQRT2), stax.Relu())
    # 2 x 2 filters, VALID: 4 x 4 images -> 3 x 3 -> 2 x 2 positions, overlapping patches in both layers.
    return stax.serial(
        stax.Conv(width, (2, 2), padding="VALID", W_std=SQRT2),
        stax.Relu(),
        stax.Conv(width, (2, 2), padding="VALID", W_std=SQRT2),
        stax.Relu(),
        stax.GlobalAvgPool(),
    )


def _scaling_analytic(kind):
    x_np = _fc_inputs(*SCALING_FC_INPUTS) if kind == "mlp" else _image_inputs(SCALING_IMAGES)
    net = stax.serial(_relu_hidden_layers(kind, 1), stax.Dense(1, W_std=SQRT2))
    return x_np, {what: np.asarray(k) for what, k in zip(("nngp", "ntk"), net[2](x_np, None, ("nngp", "ntk")))}


@functools.lru_cache(maxsize=None)
def _mlp_mean_single_network_errors():
    """{'nngp': mean relative error per width, 'ntk': ...} for the depth-2
    ReLU MLP, W_std = sqrt 2, no bias."""
    x_np, analytic = _scaling_analytic("mlp")
    x = jnp.asarray(x_np, jnp.float32)
    errors = {"nngp": [], "ntk": []}
    for width, n_seeds, chunk in zip(MLP_WIDTHS, MLP_SEEDS, MLP_CHUNKS):
        hidden = _relu_hidden_layers("mlp", width)
        init_fn, apply_fn, _ = stax.serial(hidden, stax.Dense(1, W_std=SQRT2))

        def kernels(params):
            h = hidden[1](params[0], x)
            return 2.0 * h @ h.T / h.shape[-1], empirical_ntk(apply_fn, params, x)

        batched = jax.jit(jax.vmap(kernels))
        keys = jax.random.split(jax.random.key(width, impl="rbg"), n_seeds)
        per_network = {"nngp": [], "ntk": []}
        for start in range(0, n_seeds, chunk):
            params = jax.vmap(lambda key: init_fn(key, x.shape)[1])(keys[start : start + chunk])
            for what, k in zip(("nngp", "ntk"), batched(params)):
                per_network[what].append(np.asarray(k, np.float64))
        for what in ("nngp", "ntk"):
            exact = analytic[what]
            errors[what].append(np.mean([_relative_error(k, exact) for k in np.concatenate(per_network[what])]))
    return {what: np.array(e) for what, e in errors.items()}


def _patches_2x2(a):
    """The 2 x 2 VALID patches of NHWC ``a``: (n, H-1, W-1, 4C), offset (i, j)
    major and channel minor, the order of an HWIO filter reshaped to (4C, out)."""
    h, w = a.shape[1] - 1, a.shape[2] - 1
    return jnp.concatenate([a[:, i : i + h, j : j + w] for i in range(2) for j in range(2)], axis=-1)


def _cnn_gap_kernels(params, x):
    """(empirical NNGP, empirical NTK) of ONE network
    ``serial(_relu_hidden_layers("cnn", C), Dense(1, W_std=sqrt 2))``.

    The network is written out with explicit patches and matrix products:
    z1 = c1 P(x) W1, z2 = c2 P(relu z1) W2, h = mean over positions of
    relu z2, f = c3 h.w3, with c = sqrt(2 / fan-in). Its NTK, the sum over
    parameters of df(x_i)/dtheta df(x_j)/dtheta, is summed layer by layer:
    df_i/dW = c sum_p P_ip (x) delta_ip with delta = df_i/dz, so a conv layer
    gives c^2 sum_{p,q} (P_ip . P_jq)(delta_ip . delta_jq) and the readout
    c3^2 h_i . h_j. The deltas of all inputs come from one backward pass (of
    sum_i f_i, with respect to zero probes added to z1 and z2). The per-input
    gradients themselves, 4 C^2 numbers each, are never formed: with them (and
    XLA's CPU convolution) a network of 4096 channels took 13 s instead of 0.6.
    The caller checks both kernels against ``apply_fn`` and
    :func:`empirical_ntk`."""
    ((w1, _), _, (w2, _), _, _), (w3, _) = params
    n = x.shape[0]

    def output_sum(probes):
        a, patches = x, []
        for w, probe in zip((w1, w2), probes):
            p = _patches_2x2(a)
            patches.append(p.reshape(n, -1, p.shape[-1]))
            a = jax.nn.relu(SQRT2 / math.sqrt(p.shape[-1]) * p @ w.reshape(p.shape[-1], -1) + probe)
        h = a.mean(axis=(1, 2))
        return jnp.sum(SQRT2 / math.sqrt(h.shape[-1]) * h @ w3), (patches, h)

    probes = [jnp.zeros((n, x.shape[1] - k, x.shape[2] - k, w1.shape[-1]), x.dtype) for k in (1, 2)]
    deltas, (patches, h) = jax.grad(output_sum, has_aux=True)(probes)
    nngp = 2.0 * h @ h.T / h.shape[-1]
    ntk = nngp
    for p, d in zip(patches, deltas):
        d = d.reshape(n, -1, d.shape[-1])
        pp, dd = jnp.einsum("ipa,jqa->ipjq", p, p), jnp.einsum("ipa,jqa->ipjq", d, d)
        ntk = ntk + 2.0 / p.shape[-1] * jnp.einsum("ipjq,ipjq->ij", pp, dd)
    return nngp, ntk


@functools.lru_cache(maxsize=None)
def _cnn_gap_mean_single_network_errors():
    """{'nngp': mean relative error per width, 'ntk': ...} for the ReLU CNN
    with GlobalAvgPool, W_std = sqrt 2, no bias.

    Network s of width C has its weights drawn by NumPy,
    ``default_rng([C, s]).standard_normal`` in float32, in the shapes of
    ``init_fn``'s parameters: in the NTK parameterisation ``init_fn`` draws
    every weight i.i.d. N(0, 1), the same distribution (the Monte Carlo tests
    above check ``init_fn`` itself). NumPy draws the 4 x 4096^2 weights of the
    widest conv in 1.2-2 s; XLA's CPU generators take 2-5 s (threefry) or 8 s
    (rbg), and compile for each new shape."""
    x_np, analytic = _scaling_analytic("cnn")
    x = jnp.asarray(x_np, jnp.float32)
    kernels = jax.jit(_cnn_gap_kernels)
    errors = {"nngp": [], "ntk": []}
    for width, n_seeds in zip(CNN_WIDTHS, CNN_SEEDS):
        hidden = _relu_hidden_layers("cnn", width)
        init_fn, apply_fn, _ = stax.serial(hidden, stax.Dense(1, W_std=SQRT2))
        shapes = jax.eval_shape(lambda key: init_fn(key, x.shape)[1], jax.random.key(0))
        leaves, treedef = jax.tree_util.tree_flatten(shapes)
        per_network = {"nngp": [], "ntk": []}
        for s in range(n_seeds):
            rng = np.random.default_rng([width, s])
            params = jax.tree_util.tree_unflatten(treedef, [rng.standard_normal(l.shape, np.float32) for l in leaves])
            nngp, ntk = (np.asarray(k, np.float64) for k in kernels(params, x))
            if width == CNN_WIDTHS[0] and s == 0:
                # The hand-written network and NTK are those of stax's apply_fn (float32 round-off).
                h = hidden[1](params[0], x)
                np.testing.assert_allclose(nngp, 2.0 * h @ h.T / width, rtol=1e-4, atol=1e-5 * np.max(np.abs(nngp)))
                reference = np.asarray(empirical_ntk(apply_fn, params, x))
                np.testing.assert_allclose(ntk, reference, rtol=1e-4, atol=1e-5 * np.max(np.abs(ntk)))
            per_network["nngp"].append(_relative_error(nngp, analytic["nngp"]))
            per_network["ntk"].append(_relative_error(ntk, analytic["ntk"]))
        for what in ("nngp", "ntk"):
            errors[what].append(np.mean(per_network[what]))
    return {what: np.array(e) for what, e in errors.items()}


@pytest.mark.slow
@pytest.mark.parametrize("what", ["nngp", "ntk"])
def test_relu_mlp_single_network_kernel_error_decays_like_inverse_sqrt_width(what):
    """Depth-2 ReLU MLP at widths 64, 256, 1024, 4096 (128, 128, 16, 3
    networks). Measured mean errors: NNGP 0.373, 0.201, 0.081, 0.054 (slope
    -0.490); NTK 0.317, 0.161, 0.070, 0.039 (slope -0.514). The NTK goes to
    4096 as well: it is computed on the same networks. (The first of the two
    parametrisations computes both kernels; the second reads them back.)"""
    errors = _mlp_mean_single_network_errors()[what]
    slope = _log_log_slope(MLP_WIDTHS, errors, MLP_SEEDS)
    assert -0.65 <= slope <= -0.35, (slope, errors)


@pytest.mark.slow
@pytest.mark.parametrize("what", ["nngp", "ntk"])
def test_cnn_gap_single_network_kernel_error_decays_like_inverse_sqrt_channels(what):
    """Conv(C, 2x2) + Relu + Conv(C, 2x2) + Relu + GlobalAvgPool + Dense(1)
    on eight 4 x 4 x 3 images, at 64, 256, 1024 and 4096 channels (256, 256,
    64, 8 networks; the same networks give both kernels). Measured mean
    errors: NNGP 0.229, 0.116, 0.055, 0.038 (slope -0.492, SE 0.017); NTK
    0.207, 0.103, 0.050, 0.035 (slope -0.494, SE 0.017), the SE from the
    spread of the errors at each width. Three other sets of seeds gave
    slopes -0.478 to -0.489 (NNGP) and -0.479 to -0.494 (NTK). Run time
    33-37 s (2 cores; ~17 s of it the 8 widest networks), peak memory 1 GB."""
    errors = _cnn_gap_mean_single_network_errors()[what]
    slope = _log_log_slope(CNN_WIDTHS, errors, CNN_SEEDS)
    assert -0.58 <= slope <= -0.42, (slope, errors)


# --------------------------------------------------------------------------- #
# Symmetric and positive semi-definite
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("network", ["mlp_relu_depth3", "mlp_erf_depth2", "cnn_gap", "residual"])
def test_kernels_are_symmetric_and_positive_semidefinite(network):
    """Symmetric to 1e-12 of the largest entry (both triangles come from the
    same float64 formulas; measured asymmetry <= 6e-16) and smallest
    eigenvalue >= -1e-10 x largest (a PSD matrix's eigenvalues computed in
    float64 come out >= -(n eps) x largest, ~ -1e-15; the duplicate input
    makes the true smallest eigenvalue exactly 0, the hardest case; measured
    smallest/largest >= -4e-18)."""
    for what, k in _kernels(network).items():
        assert np.max(np.abs(k - k.T)) <= 1e-12 * np.max(np.abs(k)), what
        eigenvalues = np.linalg.eigvalsh((k + k.T) / 2)
        assert eigenvalues[0] >= -1e-10 * eigenvalues[-1], (what, eigenvalues[0], eigenvalues[-1])


# --------------------------------------------------------------------------- #
# ERRATA #1: the NTK recursion
# --------------------------------------------------------------------------- #


def _relu_expectations_numpy(a, b, c):
    """Arc-cosine formulas (Cho & Saul 2009): E[relu(u) relu(v)] and E[1{u>0} 1{v>0}]."""
    rho = np.clip(c / np.sqrt(a * b), -1.0, 1.0)
    theta = np.arccos(rho)
    e_relu = (np.sqrt(a * b) * np.sin(theta) + (np.pi - theta) * c) / (2 * np.pi)
    e_step = (np.pi - theta) / (2 * np.pi)
    return e_relu, e_step


def _relu_ntk_recursions_numpy(x, hidden_layers, w_var):
    """(Sigma, correct Theta, the documents' Theta) of a no-bias ReLU MLP, NTK parameterisation.

    Sigma^(0) = x x'/d; layer 1: Sigma^(1) = Theta^(1) = w_var Sigma^(0);
    then for each hidden layer, with expectations under N(0, Sigma^(l-1)):
    Sigma^(l) = w_var E[relu relu];
    correct:     Theta^(l) = Sigma^(l) + Theta^(l-1) Sigma_dot^(l), Sigma_dot^(l) = w_var E[relu' relu'];
    documents':  Theta^(l) = Sigma^(l) E[relu' relu'] + Theta^(l-1) E[relu relu].
    """
    sigma = w_var * (x @ x.T / x.shape[1])
    theta_correct, theta_document = sigma.copy(), sigma.copy()
    for _ in range(hidden_layers):
        variances = np.diag(sigma)
        e_relu, e_step = _relu_expectations_numpy(variances[:, None], variances[None, :], sigma)
        new_sigma = w_var * e_relu
        theta_correct = new_sigma + theta_correct * (w_var * e_step)
        theta_document = new_sigma * e_step + theta_document * e_relu
        sigma = new_sigma
    return sigma, theta_correct, theta_document


def _errata1_net(width):
    """3 hidden ReLU layers, W_std = sqrt 2, no bias, NTK parameterisation."""
    layers = []
    for _ in range(3):
        layers += [stax.Dense(width, W_std=SQRT2), stax.Relu()]
    return stax.serial(*layers, stax.Dense(1, W_std=SQRT2))


def test_errata1_kernel_fn_ntk_equals_correct_recursion_written_in_numpy():
    """Both evaluate the same float64 formulas: measured agreement 1.0e-15
    relative (NTK) and 1.1e-15 (NNGP)."""
    x = _fc_inputs(6, 8)
    sigma, theta_correct, _ = _relu_ntk_recursions_numpy(x, 3, 2.0)
    kernels = _errata1_net(1)[2](x, None, ("nngp", "ntk"))
    np.testing.assert_allclose(np.asarray(kernels.nngp), sigma, rtol=1e-12, atol=1e-12 * np.max(sigma))
    np.testing.assert_allclose(np.asarray(kernels.ntk), theta_correct, rtol=1e-12, atol=1e-12 * np.max(theta_correct))


def test_errata1_figures_diagonal_is_5_47_by_correct_recursion_and_1_91_by_documents():
    """The ERRATA's example: an input with x.x/d = 0.684. With W_std^2 = 2 a
    ReLU layer keeps the diagonal, so Theta = 8 x 0.684 = 5.472 (correct),
    and the documents' recursion gives s + s^2 + s^3 + 2 s^4 = 1.9096."""
    x = np.full((1, 8), math.sqrt(0.684))
    _, theta_correct, theta_document = _relu_ntk_recursions_numpy(x, 3, 2.0)
    assert float(np.asarray(_errata1_net(1)[2](x, None, "ntk"))[0, 0]) == pytest.approx(5.472, rel=1e-12)
    assert theta_correct[0, 0] == pytest.approx(5.472, rel=1e-12)
    assert theta_document[0, 0] == pytest.approx(1.9096, abs=5e-5)


def test_errata1_empirical_ntk_of_wide_networks_matches_correct_recursion_not_documents():
    """8 networks of width 1024. One network's NTK is off by 0.07-0.19
    relative (measured; mean 0.107), so the mean of 8 by ~0.04 RMS: measured
    0.040 from the correct recursion and 0.52 from the documents' (itself
    0.56 from the correct one). Thresholds: 0.15 (3.7 x that RMS) and 0.4."""
    x = _fc_inputs(6, 8)
    _, theta_correct, theta_document = _relu_ntk_recursions_numpy(x, 3, 2.0)
    mean_ntk = per_network_kernels(_errata1_net(1024), x, "ntk", 8, seed=7, chunk=2).mean(0)
    assert _relative_error(mean_ntk, theta_correct) < 0.15
    assert _relative_error(mean_ntk, theta_document) > 0.4


# --------------------------------------------------------------------------- #
# Numerical robustness
# --------------------------------------------------------------------------- #


def _assert_finite(kernels):
    for what in ("nngp", "ntk"):
        k = np.asarray(kernels[what] if isinstance(kernels, dict) else getattr(kernels, what))
        assert np.all(np.isfinite(k)), (what, k)


@pytest.mark.parametrize(
    "network",
    ["mlp_relu_depth3", "mlp_relu_depth3_no_bias", "mlp_erf_depth2", "mlp_gelu_depth2", "mlp_abs_depth2",
     "cnn_gap", "cnn_flatten"],
)
def test_identical_and_antipodal_inputs_give_finite_kernels_and_equal_rows(network):
    """Correlations exactly +1 and -1 (the arc-cosine's endpoints) give finite
    kernels, and an input's duplicate has the same kernel row (to 1e-12 of
    the scale: both rows come from the same formulas on equal numbers)."""
    kernels = _kernels(network)
    _assert_finite(kernels)
    dup = DUPLICATE_ROW[_input_kind(network)]
    for what, k in kernels.items():
        np.testing.assert_allclose(k[dup], k[0], rtol=0, atol=1e-12 * np.max(np.abs(k)), err_msg=what)


@pytest.mark.parametrize("b_std", [None, 0.1])
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_zero_input_vector_gives_finite_kernels(act, b_std):
    """A zero input has no direction (correlation 0/0). Without bias its
    kernel row is exactly 0; with bias it is finite, positive on the diagonal."""
    x = np.concatenate([np.zeros((1, 6)), _fc_inputs(3, 6)])
    kernels = _mlp(1, 2, ACTIVATIONS[act], 1, W_std=1.5, b_std=b_std)[2](x, None, ("nngp", "ntk"))
    _assert_finite(kernels)
    for what in ("nngp", "ntk"):
        k = np.asarray(getattr(kernels, what))
        if b_std is None:
            assert np.all(k[0] == 0.0), (what, k[0])
        else:
            assert k[0, 0] > 0, (what, k[0, 0])


def _layers_of_relu_mlp(depth, W_std, b_std):
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(1, W_std=W_std, b_std=b_std), stax.Relu()]
    return layers + [stax.Dense(1, W_std=W_std, b_std=b_std)]


def _kernel_layer_by_layer(layers, x):
    """The documented continuation ``kernel_fn(Kernel)``, one layer at a time."""
    kernel = layers[0][2](x, None, None)
    for layer in layers[1:]:
        kernel = layer[2](kernel)
    return kernel


def test_kernel_continued_layer_by_layer_equals_whole_network():
    """Passing the Kernel from layer to layer gives the whole network's kernel
    (same formulas, evaluated eagerly instead of in one compiled function):
    1e-12 relative. Run inside jax.enable_x64(True) so that this claim does
    not depend on the continuation's own x64 handling (tested next)."""
    layers = _layers_of_relu_mlp(3, SQRT2, 0.1)
    x = _fc_inputs()
    whole = stax.serial(*layers)[2](x, None, None)
    with jax.enable_x64(True):
        stepwise = _kernel_layer_by_layer(layers, x)
    for what in ("nngp", "ntk"):
        a, b = np.asarray(getattr(stepwise, what)), np.asarray(getattr(whole, what))
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.max(np.abs(b)), err_msg=what)


def test_kernel_continued_from_a_kernel_object_stays_float64_with_x64_disabled():
    """The module promises float64 "whatever the global jax_enable_x64
    setting"; the continuation path ``kernel_fn(Kernel)`` must keep it too.
    (It used to run outside the x64 context and come back float32, off by
    5e-4 of the scale after three layers.)"""
    assert not jax.config.jax_enable_x64
    layers = _layers_of_relu_mlp(1, 1.5, 0.1)
    x = _fc_inputs()
    stepwise = _kernel_layer_by_layer(layers, x)
    whole = stax.serial(*layers)[2](x, None, None)
    for what in ("nngp", "ntk"):
        a, b = np.asarray(getattr(stepwise, what)), np.asarray(getattr(whole, what))
        assert a.dtype == np.float64, what
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.max(np.abs(b)), err_msg=what)


def test_relu_mlp_of_depth_100_gives_finite_kernels():
    """W_std = sqrt 2 keeps the NNGP diagonal fixed while the NTK grows
    linearly with depth and all correlations approach 1 (arccos's round-off
    territory). Evaluated layer by layer (equal to the whole network, see
    above): compiling the 201-layer network as one function takes ~110 s of
    CPU (reported as an engine problem)."""
    x = np.concatenate([_fc_inputs(), -_fc_inputs()[:1]])
    with jax.enable_x64(True):
        kernels = _kernel_layer_by_layer(_layers_of_relu_mlp(100, SQRT2, 0.1), x)
    _assert_finite(kernels)
    nngp_diag, ntk_diag = _relu_mlp_diagonal(x, 100, 2.0, 0.1)
    np.testing.assert_allclose(np.diag(np.asarray(kernels.nngp)), nngp_diag, rtol=1e-10)
    np.testing.assert_allclose(np.diag(np.asarray(kernels.ntk)), ntk_diag, rtol=1e-10)


def _relu_mlp_diagonal(x, depth, w_var, b_std):
    """Closed form of a ReLU MLP's diagonal: at correlation 1, E[relu(u)^2] = q/2 and E[step(u)^2] = 1/2,
    so q <- w_var q / 2 + b^2 and Theta <- w_var Theta / 2 + q, from q = Theta = w_var x.x/d + b^2."""
    q = w_var * np.sum(x * x, axis=1) / x.shape[1] + b_std**2
    theta = q
    for _ in range(depth):
        q = w_var * q / 2 + b_std**2
        theta = w_var * theta / 2 + q
    return q, theta


def test_large_weight_std_gives_finite_kernels():
    """W_std = 3 multiplies the ReLU NNGP by 4.5 per layer (4.5^10 = 3e6 over 10 layers)."""
    kernels = stax.serial(*_layers_of_relu_mlp(10, 3.0, 0.1))[2](_fc_inputs(), None, ("nngp", "ntk"))
    _assert_finite(kernels)
    # float32 kernels: a few ulps per layer over 21 layers, well inside 1e-4.
    for what, exact in zip(("nngp", "ntk"), _relu_mlp_diagonal(_fc_inputs(), 10, 9.0, 0.1)):
        np.testing.assert_allclose(np.diag(np.asarray(getattr(kernels, what))), exact, rtol=1e-4, err_msg=what)


# --------------------------------------------------------------------------- #
# Bad input: errors that name the argument and the value
# --------------------------------------------------------------------------- #


def test_mismatched_feature_dimensions_raise_naming_x2_and_both_shapes():
    kernel_fn = _mlp(1, 1, stax.Relu, 1)[2]
    with pytest.raises(ValueError, match=r"`x2`.*\(3, 5\).*\(2, 4\)"):
        kernel_fn(np.ones((3, 5)), np.ones((2, 4)))


def test_two_dimensional_input_to_a_conv_network_raises_naming_the_shape():
    kernel_fn = _cnn(1, "gap", 1)[2]
    with pytest.raises(ValueError, match=r"Conv.*`x1`.*4 axes.*\(3, 5\)"):
        kernel_fn(np.ones((3, 5)))


@pytest.mark.parametrize("layer", [stax.Dense, stax.Conv])
def test_negative_weight_std_raises_naming_W_std_and_the_value(layer):
    args = (4,) if layer is stax.Dense else (4, (3, 3))
    with pytest.raises(ValueError, match=r"`W_std`.*-1\.5"):
        layer(*args, W_std=-1.5)


def test_unknown_get_name_raises_naming_get_and_the_name():
    kernel_fn = _mlp(1, 1, stax.Relu, 1)[2]
    with pytest.raises(ValueError, match=r"`get`.*'ntkk'"):
        kernel_fn(_fc_inputs(), None, "ntkk")
    with pytest.raises(ValueError, match=r"`get`.*'nngpp'"):
        kernel_fn(_fc_inputs(), None, ("ntk", "nngpp"))


def test_empty_input_raises_naming_x1_and_its_shape():
    kernel_fn = _mlp(1, 1, stax.Relu, 1)[2]
    with pytest.raises(ValueError, match=r"`x1`.*\(0, 5\)"):
        kernel_fn(np.ones((0, 5)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_raises_naming_the_argument(bad):
    kernel_fn = _mlp(1, 1, stax.Relu, 1)[2]
    x = _fc_inputs()
    x_bad = x.copy()
    x_bad[1, 2] = bad
    with pytest.raises(ValueError, match=r"`x1`.*NaN or infinite"):
        kernel_fn(x_bad)
    with pytest.raises(ValueError, match=r"`x2`.*NaN or infinite"):
        kernel_fn(x, x_bad)


def test_finite_input_whose_sum_overflows_is_accepted_and_minus_inf_is_not():
    """The finiteness check sums the input first; a sum that overflows (finite
    entries of 1e308) must fall back to the entrywise check rather than reject,
    and a lone -inf among finite entries must still be caught."""
    huge = np.full((3, 4), 1e308)
    assert check_input(huge, "x1") is huge
    mixed = np.ones((3, 4))
    mixed[2, 3] = -np.inf
    with pytest.raises(ValueError, match=r"`x1`.*NaN or infinite"):
        check_input(mixed, "x1")


def test_activation_right_after_the_input_raises_asking_for_a_dense_layer():
    kernel_fn = stax.serial(stax.Relu(), stax.Dense(1))[2]
    with pytest.raises(ValueError, match=r"Relu.*Gaussian.*Dense"):
        kernel_fn(_fc_inputs())


# --------------------------------------------------------------------------- #
# Precision
# --------------------------------------------------------------------------- #

PRECISION_NETWORKS = ["mlp_erf_depth2", "mlp_gelu_depth2", "mlp_relu_depth3", "residual"]


def test_session_runs_with_x64_disabled_as_a_fresh_process_does():
    """The precision tests are about this setting; a test that turned x64 on
    globally would make them vacuous."""
    assert not jax.config.jax_enable_x64


@pytest.mark.parametrize("network", PRECISION_NETWORKS)
def test_kernels_are_float64_with_x64_disabled(network):
    assert not jax.config.jax_enable_x64
    for what, k in _kernels(network).items():
        assert k.dtype == np.float64, what


@pytest.mark.parametrize("network", PRECISION_NETWORKS)
def test_float32_kernels_are_within_1e4_of_float64(network):
    """dtype=jnp.float32 gives float32 arrays within 1e-4 (relative to the
    largest entry) of the float64 ones. Measured: Erf and Gelu <= 6e-7; the
    ReLU networks' NTK 3.3e-5 to 3.9e-5, from the diagonal (see the next
    test; it reaches 1.0e-4 for an Abs network and 1.4e-4 on other inputs)."""
    k64 = _kernels(network)
    k32 = _kernels(network, dtype="float32")
    for what in ("nngp", "ntk"):
        assert k32[what].dtype == np.float32, what
        assert np.max(np.abs(k32[what] - k64[what])) <= 1e-4 * np.max(np.abs(k64[what])), what


def test_float32_relu_ntk_of_an_input_with_itself_is_accurate():
    """On the diagonal the ReLU derivative kernel is exactly 1/2 (correlation
    1), so a no-bias ReLU MLP with W_std^2 = 2 has Theta(x, x) = 2 (L + 1)
    x.x/d exactly. In float32 that should hold to a few float32 ulps (1e-6):
    correlations within float32 round-off of 1 must be snapped to 1, since
    arccos near 1 turns a round-off of 1e-7 into theta ~ 5e-4 (an error of
    3.7e-5 to 1.4e-4 on this diagonal when they were snapped within 8 float64
    ulps only)."""
    x = _fc_inputs(6, 8)
    layers = _layers_of_relu_mlp(3, SQRT2, None)
    ntk32 = np.asarray(stax.serial(*layers)[2](x, None, "ntk", dtype=jnp.float32))
    exact = 2 * 4 * np.sum(x * x, axis=1) / x.shape[1]
    np.testing.assert_allclose(np.diag(ntk32), exact, rtol=1e-6)


# --------------------------------------------------------------------------- #
# The forms of `get` and of x2
# --------------------------------------------------------------------------- #

_GET_NETWORK = _mlp(1, 2, stax.Relu, 1)


def test_get_single_name_returns_an_array():
    x = _fc_inputs()
    full = _GET_NETWORK[2](x, None, None)
    for what in ("nngp", "ntk"):
        out = _GET_NETWORK[2](x, None, what)
        assert isinstance(out, (np.ndarray, jax.Array)) and out.shape == (5, 5), what
        np.testing.assert_array_equal(np.asarray(out), np.asarray(getattr(full, what)))


def test_get_tuple_returns_named_tuple_with_fields_in_the_order_given():
    x = _fc_inputs()
    full = _GET_NETWORK[2](x, None, None)
    for order in (("nngp", "ntk"), ("ntk", "nngp")):
        out = _GET_NETWORK[2](x, None, order)
        assert out._fields == order
        for i, what in enumerate(order):
            np.testing.assert_array_equal(np.asarray(out[i]), np.asarray(getattr(full, what)))
            np.testing.assert_array_equal(np.asarray(getattr(out, what)), np.asarray(getattr(full, what)))


def test_get_none_returns_the_kernel_object_with_nngp_and_ntk():
    out = _GET_NETWORK[2](_fc_inputs(), None, None)
    assert isinstance(out, stax.Kernel)
    assert np.asarray(out.nngp).shape == np.asarray(out.ntk).shape == (5, 5)


@pytest.mark.parametrize("network", ["mlp_erf_depth2", "mlp_relu_depth3"])
def test_x2_none_equals_passing_x1_as_x2(network):
    """Equal up to the summation order of the input Gram matrix's diagonal
    (x2=None takes it from the per-input variances) and to the ReLU family's
    snapping of correlations within 8 ulps of +-1: 1e-12 of the scale
    (measured <= 7e-15)."""
    same, explicit = _kernels(network), _kernels(network, x2_form="x1")
    for what in ("nngp", "ntk"):
        a, b = same[what], explicit[what]
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12 * np.max(np.abs(a)), err_msg=what)
