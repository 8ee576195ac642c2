"""Only what the readout needs: the spatial diagonal (ntkcourse.engine + layers).

A convolution keeps the offset between the two positions of a pair, so the
diagonal (p, p) of its output depends only on the diagonal of its input, and
an activation acts on each pair separately. A network read out by Flatten
therefore needs only the diagonal at every layer. Claims: the diagonal path
gives exactly the diagonal of the full path (same operations on the same
numbers), both through ``diagonal_spatial=True`` and inside a Flatten
readout; pooling, which mixes positions, makes the engine keep every pair.
"""
import numpy as np
import pytest

from ntkcourse import stax

EXACT = dict(rtol=1e-14, atol=1e-15)  # the same floating-point operations, in another array layout


def _convs():
    return [stax.Conv(3, (3, 2), strides=(1, 2), padding="SAME", W_std=1.4, b_std=0.3), stax.Gelu(),
            stax.Conv(3, (2, 2), padding="VALID", W_std=1.1, parameterization="standard", b_std=0.2), stax.Relu()]


def _x(n=5, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 6, 7, 2))


def test_diagonal_spatial_output_is_the_diagonal_of_the_full_output():
    _, _, kernel_fn = stax.serial(*_convs())
    x1, x2 = _x(), _x(3, seed=1)
    full = kernel_fn(x1, x2)
    diag = kernel_fn(x1, x2, diagonal_spatial=True)
    assert diag.nngp.shape == (5, 3, 5, 3) and diag.diagonal_spatial
    for name, batch in (("nngp", 2), ("ntk", 2), ("cov1", 1), ("cov2", 1)):
        spec = "nmhhww->nmhw" if batch == 2 else "nhhww->nhw"  # NumPy: float64 whatever JAX's mode
        expected = np.einsum(spec, np.asarray(getattr(full, name)))
        np.testing.assert_allclose(getattr(diag, name), expected, **EXACT)


def test_a_flatten_readout_computes_on_the_diagonal_and_equals_the_full_computation():
    """Flatten + Dense(W_std=1) of the full kernel: NNGP = mean of the
    diagonal, NTK = mean of the diagonal NTK + NNGP."""
    convs = stax.serial(*_convs())
    readout = stax.serial(*_convs(), stax.Flatten(), stax.Dense(1, W_std=1.0))
    assert readout[2].input_diagonal(False) is True
    x = _x(6, seed=2)
    full = convs[2](x, None)
    # NumPy, not jax.numpy: outside JAX's 64-bit mode a jnp reduction would truncate to float32.
    nngp = np.einsum("nmhhww->nmhw", np.asarray(full.nngp)).mean(axis=(2, 3))
    ntk = np.einsum("nmhhww->nmhw", np.asarray(full.ntk)).mean(axis=(2, 3)) + nngp
    k = readout[2](x, None, ("nngp", "ntk"))
    np.testing.assert_allclose(k.nngp, nngp, **EXACT)
    np.testing.assert_allclose(k.ntk, ntk, **EXACT)


@pytest.mark.parametrize("pool", [stax.GlobalAvgPool(), stax.AvgPool((2, 2))], ids=["gap", "avgpool"])
def test_pooling_needs_every_pair_of_positions(pool):
    _, _, kernel_fn = stax.serial(*_convs(), pool)
    assert kernel_fn.input_diagonal(True) is False


def test_a_diagonal_kernel_given_to_pooling_is_refused():
    _, _, conv_fn = stax.serial(*_convs())
    diag = conv_fn(_x(2), None, diagonal_spatial=True)
    _, _, pool_fn = stax.GlobalAvgPool()
    with pytest.raises(ValueError, match="GlobalAvgPool: needs the covariance of every pair of positions"):
        pool_fn(diag)
