"""ntkcourse.finite_width does its width-independent and shape-independent work once.

(tests/empirical/test_finite_width.py holds the scaling claims; these are about cost, plus the correctness of the
rewritten Hessian power iteration.)

Claims:
- hessian_spectral_norm compiles once per apply_fn and shapes: a second call with new parameters, input, key
  and number of iterations compiles nothing (it used to re-jit on every call: ~4 s each on the 2-core machine);
- it still returns the spectral norm of the Hessian and the norm of the gradient (float64, against the dense
  jax.hessian of a 64-parameter network);
- for networks in the NTK parameterisation the analytic (infinite-width) kernel is computed once per sweep, not
  once per width.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from ntkcourse import stax
from ntkcourse.finite_width import hessian_spectral_norm, ntk_fluctuation_vs_width

_COMPILATIONS = []
_COUNTING = [False]


def _on_event(event, duration_secs, **kwargs):
    if _COUNTING[0] and "backend_compile" in event:
        _COMPILATIONS.append(event)


jax.monitoring.register_event_duration_secs_listener(_on_event)


def _compilations(fn, *args, **kwargs):
    """How many XLA compilations running ``fn`` (and waiting for its result) takes."""
    _COMPILATIONS.clear()
    _COUNTING[0] = True
    try:
        jax.block_until_ready(fn(*args, **kwargs))
    finally:
        _COUNTING[0] = False
    return len(_COMPILATIONS)


def _small_network():
    return stax.serial(stax.Dense(6, b_std=0.1), stax.Erf(), stax.Dense(5, b_std=0.2), stax.Relu(), stax.Dense(1))


def _params(init_fn, input_shape, dtype, seed):
    """Standard-normal parameters with init_fn's structure, drawn by NumPy (jax.random would compile per shape)."""
    rng = np.random.default_rng(seed)
    _, shapes = jax.eval_shape(lambda k: init_fn(k, input_shape), jax.random.PRNGKey(0))
    return jax.tree_util.tree_map(lambda s: jnp.asarray(rng.standard_normal(s.shape), dtype), shapes)


def test_hessian_spectral_norm_compiles_once_per_function_and_shapes():
    init_fn, apply_fn, _ = _small_network()
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    p0, p1 = _params(init_fn, x.shape, np.float32, 0), _params(init_fn, x.shape, np.float32, 1)
    k0, k1 = jax.random.PRNGKey(2), jax.random.PRNGKey(3)
    assert _compilations(hessian_spectral_norm, apply_fn, p0, x[:1], k0, n_iter=10) > 0
    assert _compilations(hessian_spectral_norm, apply_fn, p1, x[1:], k1, n_iter=20) == 0


def test_hessian_spectral_norm_matches_the_dense_hessian():
    """1000 iterations: the power iteration's error falls like (|λ₂|/|λ₁|)^(2k), with |λ₂|/|λ₁| = 0.976
    for these parameters: below 1e-20; the tolerance 1e-8 leaves room for float64 round-off in 64-dimensional
    products."""
    init_fn, apply_fn, _ = _small_network()
    with jax.enable_x64(True):
        x = np.random.default_rng(0).standard_normal((1, 3))
        params = _params(init_fn, x.shape, np.float64, 6)
        flat, unravel = ravel_pytree(params)
        scalar = lambda q: jnp.sum(apply_fn(unravel(q), x))  # noqa: E731
        dense = np.abs(np.linalg.eigvalsh(np.asarray(jax.jit(jax.hessian(scalar))(flat)))).max()
        gradient = np.linalg.norm(np.asarray(jax.jit(jax.grad(scalar))(flat)))
        lam, gnorm = hessian_spectral_norm(apply_fn, params, x, jax.random.PRNGKey(0), n_iter=1000)
    assert float(lam) == pytest.approx(dense, rel=1e-8)
    assert float(gnorm) == pytest.approx(gradient, rel=1e-12)


def test_analytic_kernel_is_computed_once_per_sweep_in_the_ntk_parameterisation():
    """Θ of the NTK parameterisation does not depend on the width: one evaluation for two widths."""
    calls = []

    def make_network(width):
        init_fn, apply_fn, kernel_fn = stax.serial(stax.Dense(width, W_std=1.5, b_std=0.1), stax.Relu(),
                                                   stax.Dense(1))

        @functools.wraps(kernel_fn)  # keeps the layer description that stax.layer_spec reads
        def counted(*args, **kwargs):
            calls.append(width)
            return kernel_fn(*args, **kwargs)

        return init_fn, apply_fn, counted

    x = np.random.default_rng(0).standard_normal((3, 2))
    ntk_fluctuation_vs_width(make_network, [4, 8], x, jax.random.PRNGKey(0), n_seeds=1)
    assert calls == [4]


def test_the_standard_parameterisation_gets_the_analytic_kernel_of_each_width():
    """Its NTK grows with the width (Dense standard: Θ ∝ width), so each width needs its own: kernel_fn is
    called once per width, and the deviation at width 256 stays O(n^-1/2)-small (below 0.5; one reused
    width-8 kernel would put it near 256/8 - 1 = 31)."""
    calls = []

    def make_network(width):
        init_fn, apply_fn, kernel_fn = stax.serial(
            stax.Dense(width, W_std=1.5, b_std=0.1, parameterization="standard"), stax.Relu(),
            stax.Dense(1, parameterization="standard"))

        @functools.wraps(kernel_fn)
        def counted(*args, **kwargs):
            calls.append(width)
            return kernel_fn(*args, **kwargs)

        return init_fn, apply_fn, counted

    x = np.random.default_rng(0).standard_normal((3, 2))
    sweep = ntk_fluctuation_vs_width(make_network, [8, 256], x, jax.random.PRNGKey(0), n_seeds=2)
    assert calls == [8, 256]
    assert sweep.mean[-1] < 0.5, sweep.mean
