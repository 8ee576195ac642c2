"""Inputs made only of padding (``mask_constant``): a batch padded with dummy
inputs to a fixed size, as neural-tangents users do for ``jit``.

neural-tangents 0.6.5 gives them numbers: its masked means divide by
``max(count, 1)`` (a global average over no real position is 0), and after a
global pool or ``Flatten`` such an input stays padding (its masks are the
``all`` of its positions'), so every kernel entry with it is 0, also after a
``Dense`` with a bias. Before, this package refused them eagerly and gave NaN
in their rows and columns under ``jit`` (0 / 0 in the pool).

The network (``tests/oracle/compat_cases_all_padding.py``) attends (softmax
over no real key), normalises over the positions (``LayerNorm``: mean and
variance over no real entry), averages over the positions and has biases
after the readout; ``x1[1]`` and ``x2[0]`` are made only of padding. Reference
values: neural-tangents, float64 (``tests/oracle/make_compat_reference_all_padding.py``).

Tolerances: kernels 1e-9 relative to neural-tangents (float64 round-off of two
implementations; measured 3e-12 on such a network, from the LayerNorm's variances), with
an absolute floor of 1e-12 of the largest entry; the entries of the real
inputs beside the all-padding inputs and beside real ones in their place
1e-12 (the same float64 operations on other batch neighbours); finite outputs 1e-10 (the same float64
parameters through the same operations).

CPU: about 11 s in all (compilations of the network's kernel of pairs with
its gradient and of a network's apply_fn, under jit, and of two small
networks' eager kernels, x1 with itself, and one jitted apply_fn).
"""
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax

sys.path.insert(0, str(Path(__file__).parents[1] / "oracle"))
from compat_cases_all_padding import CASES, MASK_CONSTANT, PARAMS, build, inputs  # noqa: E402
from compat_params import outputs_with_their_parameters  # noqa: E402

DATA = Path(__file__).parents[1] / "data"
NAME = "attention_layer_norm_gap_bias"
REF = json.loads((DATA / "nt_compat_reference_all_padding.json").read_text())[NAME]
ARRAYS = np.load(DATA / "nt_params_all_padding.npz")
KIND, SPEC = CASES[NAME]
X1, X2 = inputs(KIND)
EMPTY1, EMPTY2 = 1, 0  # the inputs of x1 and x2 made only of padding


def _close(got, want, err_msg=""):
    want = np.asarray(want, dtype=float)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-12 * np.abs(want).max(), err_msg=err_msg)


@pytest.fixture(scope="module")
def network():
    return build(stax, SPEC)


@pytest.fixture(scope="module")
def jitted_pair(network):
    """``(x1, x2) -> ((total, kernel), d total / d x1)`` under jit, ``total`` the sum of the NNGP's and NTK's
    entries: one compilation (the use case; half the CPU of the eager engine's compilations, which the last
    tests run), reused for other inputs of the same shapes.
    """
    kernel_fn = network[2]

    def total(x1, x2):
        k = kernel_fn(x1, x2, ("nngp", "ntk", "cov1"), mask_constant=MASK_CONSTANT)
        return jnp.sum(k.nngp) + jnp.sum(k.ntk), k

    return jax.jit(jax.value_and_grad(total, has_aux=True))


@pytest.fixture(scope="module")
def pair_and_gradient(jitted_pair):
    with jax.enable_x64(True):
        (_, k), grad = jitted_pair(jnp.asarray(X1), jnp.asarray(X2))
    return k, np.asarray(grad)


def test_the_kernel_of_inputs_with_all_padding_ones_is_neural_tangents(pair_and_gradient):
    # (x1, x2): both batches hold an input made only of padding, so its pairs with real inputs, with itself
    # (cov1) and with the other all-padding input are all compared; they are 0 there. Before: NaN there under
    # jit, a refusal eagerly.
    k, _ = pair_and_gradient
    for key in ("nngp", "ntk", "cov1"):
        _close(getattr(k, key), REF[key], err_msg=key)


def test_the_gradient_through_the_kernel_is_finite(pair_and_gradient):
    # The masked means divide by max(count, 1) rather than select away a 0 / 0, and the ReLU's dual takes
    # sqrt of a zero variance (a padded position) with a zero gradient: no 0 * inf reaches the real inputs
    # (before, x1[2]'s gradient was NaN: the LayerNorm's variance, a mean over its real positions, passed it on).
    _, grad = pair_and_gradient
    assert np.all(np.isfinite(grad))
    assert np.any(grad[0] != 0.0)


def test_the_entries_of_real_inputs_do_not_depend_on_the_all_padding_ones(jitted_pair, pair_and_gradient):
    # The same batches with the all-padding inputs replaced by real ones (the same shapes: no new compilation).
    rng = np.random.default_rng(4)
    x1, x2 = X1.copy(), X2.copy()
    x1[EMPTY1], x2[EMPTY2] = rng.normal(size=x1.shape[1:]), rng.normal(size=x2.shape[1:])
    pair, _ = pair_and_gradient
    with jax.enable_x64(True):
        (_, other), _ = jitted_pair(jnp.asarray(x1), jnp.asarray(x2))
    rows, cols = [i for i in range(len(X1)) if i != EMPTY1], [j for j in range(len(X2)) if j != EMPTY2]
    for key in ("nngp", "ntk"):
        got, want = np.asarray(getattr(pair, key)), np.asarray(getattr(other, key))
        np.testing.assert_allclose(got[np.ix_(rows, cols)], want[np.ix_(rows, cols)], rtol=1e-12, err_msg=key)
    np.testing.assert_allclose(np.asarray(pair.cov1)[rows], np.asarray(other.cov1)[rows], rtol=1e-12)


def test_neural_tangents_parameters_give_its_outputs_and_the_padding_value_for_all_padding_inputs():
    # Real inputs: neural-tangents' outputs. The input made only of padding is padding after the readout (its
    # mask in neural-tangents' MaskedArray, 0 after its unmask_fn): this package's outermost apply_fn returns
    # mask_constant there, as for padded positions of outputs that keep positions.
    (name, (kind, spec)), = PARAMS.items()
    got = outputs_with_their_parameters(build(stax, spec), X1, ARRAYS, name, mask_constant=MASK_CONSTANT)
    want = ARRAYS[f"{name}/output"]
    real = [i for i in range(len(X1)) if i != EMPTY1]
    np.testing.assert_allclose(got[real], want[real], rtol=1e-10, atol=1e-12 * np.abs(want).max())
    np.testing.assert_array_equal(want[EMPTY1], 0.0)
    np.testing.assert_array_equal(got[EMPTY1], MASK_CONSTANT)


def test_a_layer_without_a_masked_form_after_the_readout_keeps_an_all_padding_input_padding():
    # DotGeneral has no masked form: on the readout's masks (one per input) it acts on each input and passes them
    # on, so x1[1] keeps zero kernel entries after the biased Dense and mask_constant as its output (before this
    # change such a layer received no masks there, and x1[1] got b_std**2). The kernel eagerly: no refusal.
    init_fn, apply_fn, kernel_fn = stax.serial(stax.Dense(2, b_std=0.1), stax.GlobalAvgPool(),
                                               stax.DotGeneral(rhs=2.0), stax.Dense(1, b_std=0.3))
    with jax.enable_x64(True):
        nngp = np.asarray(kernel_fn(X1, None, "nngp", mask_constant=MASK_CONSTANT))
        shapes = jax.eval_shape(lambda key: init_fn(key, X1.shape)[1], jax.random.PRNGKey(0))
        rng = np.random.default_rng(5)
        params = jax.tree_util.tree_map(lambda s: jnp.asarray(rng.normal(size=s.shape)), shapes)
        out = np.asarray(jax.jit(lambda p, x: apply_fn(p, x, mask_constant=MASK_CONSTANT))(params, X1))
    real = [i for i in range(len(X1)) if i != EMPTY1]
    assert np.all(nngp[EMPTY1] == 0.0) and np.all(nngp[:, EMPTY1] == 0.0) and np.all(nngp[np.ix_(real, real)] != 0)
    assert out[EMPTY1, 0] == MASK_CONSTANT and np.all(np.abs(out[real]) < 10.0)


def test_a_global_average_as_the_last_layer_gives_zero_for_an_all_padding_input():
    # No layer after the pool sets its entries to zero again: the mean over no real position is itself 0 (the sum
    # divided by max(count, 1), neural-tangents' rule), where 0 / 0 gave NaN. Eagerly: no refusal.
    kernel_fn = stax.serial(stax.Dense(2, b_std=0.1), stax.GlobalAvgPool())[2]
    with jax.enable_x64(True):
        nngp = np.asarray(kernel_fn(X1, None, "nngp", mask_constant=MASK_CONSTANT))
    real = [i for i in range(len(X1)) if i != EMPTY1]
    assert np.all(nngp[EMPTY1] == 0.0) and np.all(nngp[:, EMPTY1] == 0.0)
    assert np.all(np.isfinite(nngp)) and np.all(nngp[np.ix_(real, real)] != 0.0)
