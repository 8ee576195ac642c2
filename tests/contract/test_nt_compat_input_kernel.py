"""``nt._src.utils.kernel.Kernel``: input kernels built by hand, as
neural-tangents' phase-diagram and trainability notebooks build them, go
through ``kernel_fn`` with the values of the closed forms, also under
``jit``, ``vmap`` and ``grad``; fields this package cannot honour are refused.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkcourse as nt
from ntkcourse import stax


def notebook_kernel(k, **changes):
    """The notebooks' ``Kernel(K)`` helper, with a field optionally changed."""
    fields = dict(cov1=jnp.diag(k), nngp=k, cov2=None, ntk=None, is_gaussian=True, is_reversed=False,
                  diagonal_batch=True, diagonal_spatial=False, shape1=(k.shape[0], 1024),
                  shape2=(k.shape[1], 1024), x1_is_x2=True, is_input=True, batch_axis=0, channel_axis=1,
                  mask1=None, mask2=None)
    fields.update(changes)
    return nt._src.utils.kernel.Kernel(**fields)


def erf_map(w_var, b_var, k):
    """Dense(W_std, b_std) then Erf on the input covariance k (Williams 1997):
    (2/pi) arcsin(2 q12 / sqrt((1 + 2 q1)(1 + 2 q2))) with q = W_var k + b_var."""
    q = w_var * k + b_var
    d = np.diag(q)
    return 2 / np.pi * np.arcsin(2 * q / np.sqrt(np.outer(1 + 2 * d, 1 + 2 * d)))


K = np.array([[1.3, 0.4], [0.4, 0.7]])


def test_hand_built_input_kernel_gives_the_closed_form_map():
    with jax.enable_x64(True):
        kernel_fn = stax.serial(stax.Dense(1024, 1.5, 0.2), stax.Erf())[2]
        out = kernel_fn(notebook_kernel(jnp.asarray(K))).nngp
    # Both sides are float64 arccos/arcsin of the same numbers: 1e-14 relative.
    np.testing.assert_allclose(np.asarray(out), erf_map(1.5**2, 0.2**2, K), rtol=1e-14)


def test_traced_weight_variance_under_vmap_and_grad_matches_the_closed_form_derivative():
    """The phase diagram's chi_1 pattern: W_std built from a traced W_var inside
    vmap, and grad through kernel_fn with respect to a covariance entry. The
    derivative of the closed form is taken by a central difference (step 1e-6,
    error ~1e-10 relative), hence the tolerance 1e-8."""
    def off_diagonal(w_var, c):
        kernel_fn = stax.serial(stax.Dense(1024, jnp.sqrt(w_var), 0.1), stax.Erf())[2]
        k = jnp.array([[1.0, c], [c, 1.0]])
        return kernel_fn(notebook_kernel(k)).nngp[0, 1]

    w_vars = np.array([0.5, 1.0, 2.5])
    with jax.enable_x64(True):
        got = jax.jit(jax.vmap(jax.grad(off_diagonal, argnums=1), (0, None)))(jnp.asarray(w_vars), 0.3)
    h = 1e-6
    want = [(erf_map(w, 0.01, np.array([[1.0, 0.3 + h], [0.3 + h, 1.0]]))[0, 1]
             - erf_map(w, 0.01, np.array([[1.0, 0.3 - h], [0.3 - h, 1.0]]))[0, 1]) / (2 * h) for w in w_vars]
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-8)


def test_tiny_variances_keep_their_relative_precision():
    """In the ordered phase without bias the variance map's fixed point is 0 and
    Newton's iterates reach 1e-20 and below; the map must stay accurate
    relative to its value there (it returned exactly 0 at 1e-20 before the
    arcsin of ntkcourse.dual). Exact to first order: (4/pi) W_var q."""
    with jax.enable_x64(True):
        kernel_fn = stax.serial(stax.Dense(1024, np.sqrt(0.5), 0.0), stax.Erf())[2]
        out = float(kernel_fn(notebook_kernel(jnp.array([[1e-20]]))).nngp[0, 0])
    np.testing.assert_allclose(out, 4 / np.pi * 0.5e-20, rtol=1e-12)


@pytest.mark.parametrize("field, value", [("is_reversed", True), ("diagonal_batch", False), ("batch_axis", 1),
                                          ("channel_axis", 0)])
def test_a_field_this_package_cannot_honour_is_refused_by_name(field, value):
    with pytest.raises(ValueError, match=f"`{field}`"):
        notebook_kernel(jnp.asarray(K), **{field: value})
