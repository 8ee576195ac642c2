"""``nt._src.utils.kernel.Kernel``: input kernels built by hand, as
neural-tangents' phase-diagram and trainability notebooks build them, go
through ``kernel_fn`` with the values of the closed forms, also under
``jit``, ``vmap`` and ``grad``; fields this package cannot honour are refused.
The ``Kernel`` object's neural-tangents attributes and methods in other
layouts (``batch_axis``, ``channel_axis``, ``is_reversed``, ``replace``,
indexing, ``slice``, ``transpose``), with neural-tangents' meanings.
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


@pytest.mark.parametrize("field, value", [("is_reversed", True), ("diagonal_batch", False), ("channel_axis", 2)])
def test_a_field_this_package_cannot_honour_is_refused_by_name(field, value):
    with pytest.raises(ValueError, match=f"`{field}`"):
        notebook_kernel(jnp.asarray(K), **{field: value})


RNG = np.random.default_rng(2)
X_NCHW = RNG.normal(size=(3, 2, 4, 3))  # (N, C, H, W)
NCHW = ("NCHW", "OIHW", "NCHW")


def test_kernel_of_nchw_activations_carries_their_axes_as_neural_tangents():
    # neural-tangents' Kernel after a Conv with output spec NCHW: batch_axis 0, channel_axis 1.
    k = stax.Conv(2, (2, 2), padding="SAME", dimension_numbers=NCHW)[2](X_NCHW, None, None)
    assert (k.batch_axis, k.channel_axis, k.is_reversed, k.diagonal_batch, k.x1_is_x2) == (0, 1, False, True, True)
    assert k.shape1 == (3, 4, 3, 2)  # this package's shapes: batch first, channels last (README)


def _kernel(layout=(0, 1)):
    """A kernel of NCHW activations (2 and 3 inputs, 4 x 3 pixels, 5 channels) with distinct entries."""
    from ntkcourse.kernel import Kernel as PackageKernel
    full = np.arange(2 * 3 * 4 * 4 * 3 * 3, dtype=float).reshape(2, 3, 4, 4, 3, 3)
    return PackageKernel(full, -full, full[:, 0], full[0], (2, 4, 3, 5), (3, 4, 3, 5), layout=layout,
                         mask1=np.ones((2, 4, 3), bool), mask2=np.arange(36).reshape(3, 4, 3) % 2 == 0)


def test_indexing_reads_the_index_in_the_activations_layout():
    # k[batch, channel, h, w] as on the NCHW activations: rows 1:3 of both positions of the h pair, column 2
    # of both positions of the w pair (an integer removes the axis), the batch slice on both inputs.
    k = _kernel()
    part = k[:1, :, 1:3, 2]
    np.testing.assert_array_equal(part.nngp, k.nngp[:1, :1, 1:3, 1:3, 2, 2])
    np.testing.assert_array_equal(part.cov1, k.cov1[:1, 1:3, 1:3, 2, 2])
    np.testing.assert_array_equal(part.mask2, k.mask2[:1, 1:3, 2])
    assert (part.shape1, part.shape2, part.batch_axis, part.channel_axis) == ((1, 2, 5), (1, 2, 5), 0, 1)


@pytest.mark.parametrize("index, message", [((slice(None), 0), "channel axis 1"), ((0,), "batch axis 0")])
def test_indexing_the_channels_or_removing_the_batch_axis_is_refused(index, message):
    with pytest.raises(NotImplementedError, match=message):
        _kernel()[index]


def test_replace_takes_neural_tangents_axis_names():
    k = _kernel()
    assert k.replace(channel_axis=-1).layout is None  # back to batch first, channels last
    assert k.replace(batch_axis=1, channel_axis=0).layout == (1, 0)
    with pytest.raises(ValueError, match="`is_reversed` can only be False"):
        k.replace(is_reversed=True)


def test_slice_and_transpose_move_every_array_with_the_kernel():
    k = _kernel()
    part = k.slice(slice(1, 2), slice(0, 2))
    np.testing.assert_array_equal(part.nngp, k.nngp[1:2, 0:2])
    assert (part.shape1, part.shape2, part.mask2.shape) == ((1, 4, 3, 5), (2, 4, 3, 5), (2, 4, 3))
    swapped = k.transpose((1, 0))
    np.testing.assert_array_equal(swapped.nngp, k.nngp.transpose(0, 1, 4, 5, 2, 3))
    np.testing.assert_array_equal(swapped.mask2, k.mask2.transpose(0, 2, 1))
    assert swapped.shape1 == (2, 3, 4, 5)


@pytest.mark.slow  # two compilations of a convolutional network (~3 s of CPU)
def test_hand_built_nchw_input_kernel_gives_the_network_kernel_of_the_inputs():
    # neural-tangents' fields for NCHW inputs: shapes in that layout, masks True where masked (none here).
    x = X_NCHW
    cov = np.einsum("nchw,mcij->nmhiwj", x, x) / x.shape[1]
    arrays = dict(nngp=cov, ntk=np.zeros(()), cov1=cov[np.arange(3), np.arange(3)],
                  mask1=np.zeros((3, 1, 4, 3), bool))
    fields = dict(cov2=None, x1_is_x2=True, is_gaussian=False, is_reversed=False, is_input=True, diagonal_batch=True,
                  diagonal_spatial=False, shape1=x.shape, shape2=x.shape, batch_axis=0, channel_axis=1, mask2=None)
    kernel_fn = stax.serial(stax.Conv(2, (2, 2), padding="SAME", dimension_numbers=NCHW), stax.Relu(),
                            stax.GlobalAvgPool(channel_axis=1))[2]
    with jax.enable_x64(True):  # one compilation instead of op-by-op dispatch
        got = jax.jit(lambda a: kernel_fn(nt._src.utils.kernel.Kernel(**a, **fields), None, ("nngp", "ntk")))(arrays)
    want = kernel_fn(x, None, ("nngp", "ntk"))
    # The same float64 operations on the same input kernel: round-off only.
    np.testing.assert_allclose(np.asarray(got.nngp), np.asarray(want.nngp), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(got.ntk), np.asarray(want.ntk), rtol=1e-13)
