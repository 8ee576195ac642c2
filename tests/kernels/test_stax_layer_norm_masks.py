"""``LayerNorm`` on padded inputs (``mask_constant``): padding is invisible.

The finite layer normalises each group (``axis``) with the mean and variance
of its real entries; so a padded sequence gives, at its real steps, what the
same layer gives on the sequence cut to its real steps. neural-tangents
0.6.5's finite layer differs here on purpose: its masked variance adds
``mean**2`` for every padded entry of the group (it sums ``(x - mean)**2``
over padded entries too, whose masked value is 0), so padding changes the
real outputs; its *kernel* agrees with this package's (the mean tends to 0
at infinite width), checked against its values in
``tests/contract/test_nt_compat_layers_h.py``.
"""
import jax
import numpy as np
import pytest

from ntkcourse import stax



@pytest.fixture(autouse=True)
def _x64():
    # 64-bit inside each test only: a module-level switch would leak into the other tests of the worker.
    with jax.enable_x64(True):
        yield

C = -3.0  # the padding value


def _padded_sequences():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 6, 4))
    lengths = [6, 3]
    for i, n in enumerate(lengths):
        x[i, n:] = C
    return x, lengths


@pytest.mark.parametrize("axis", [(1, 2), -1], ids=["steps_and_channels", "channels"])
def test_padded_sequences_give_the_layer_norm_of_their_real_steps(axis):
    # serial(Dense, LayerNorm) with apply_fn(..., mask_constant=C) against the same parameters on each sequence
    # cut to its real steps; float64, the same sums over fewer (real) entries: 1e-12.
    init_fn, apply_fn, _ = stax.serial(stax.Dense(5, b_std=0.5), stax.LayerNorm(axis=axis))
    x, lengths = _padded_sequences()
    _, params = init_fn(jax.random.PRNGKey(0), x.shape)
    padded = np.asarray(apply_fn(params, x, mask_constant=C))
    for i, n in enumerate(lengths):
        alone = np.asarray(apply_fn(params, x[i:i + 1, :n]))[0]
        np.testing.assert_allclose(padded[i, :n], alone, rtol=1e-12, atol=1e-12)
        assert np.all(padded[i, n:] == C)  # padded steps come back as the padding value


def test_padded_kernel_normalises_by_the_mean_variance_of_real_steps():
    # Dense then LayerNorm over (steps, channels): the NNGP of a padded sequence with itself at real steps t, t'
    # is K(t, t') / (eps + mean over real steps of K(s, s)), K the Dense NNGP (W_std=1, b_std=0.5: x.x'/4 + 0.25).
    x, lengths = _padded_sequences()
    _, _, kernel_fn = stax.serial(stax.Dense(5, b_std=0.5), stax.LayerNorm(axis=(1, 2)))
    nngp = np.asarray(kernel_fn(x, None, "nngp", mask_constant=C))
    for i, n in enumerate(lengths):
        real = x[i, :n]
        k = real @ real.T / 4 + 0.25
        want = k / (1e-12 + np.mean(np.diag(k)))
        np.testing.assert_allclose(nngp[i, i, :n, :n], want, rtol=1e-12)  # float64 closed form
        assert np.all(nngp[i, i, n:, :] == 0) and np.all(nngp[i, i, :, n:] == 0)
