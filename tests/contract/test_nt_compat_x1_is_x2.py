"""``Kernel.x1_is_x2``, ``get=`` of the Kernel's other fields, and ``nt.batch``
assembling every part of a kernel, with neural-tangents' meanings.

The expected values are those neural-tangents 0.6.5 gives for the same calls
(run in the oracle environment, tests/oracle/README: ``kernel_fn(x, None)``,
``kernel_fn(x, x)`` and ``kernel_fn(x, x.copy())`` have ``x1_is_x2`` true, the
last two with ``cov2`` computed; other inputs false; under ``jax.jit`` the
test is made on the traced inputs; ``nt.batch`` returns ``cov1`` of all of
x1, ``cov2`` of all of x2 (``None`` for ``x2=None``) and the whole Kernel for
``get=None``). Each batched part is compared with the unbatched call, which
is the reference of its values.
"""
import jax
import numpy as np
import pytest

import ntkcourse as nt
from ntkcourse import stax
from ntkcourse.kernel import Kernel

_, _, KERNEL_FN = stax.serial(stax.Dense(4), stax.Relu(), stax.Dense(1))
X = np.random.default_rng(0).normal(size=(5, 3))


@pytest.mark.parametrize("x2, expected", [
    (None, True), ("same object", True), ("equal copy", True), ("shifted", False), ("fewer inputs", False),
])
def test_x1_is_x2_is_neural_tangents_test_of_the_inputs(x2, expected):
    second = {None: None, "same object": X, "equal copy": X.copy(), "shifted": X + 1e-9, "fewer inputs": X[:3]}[x2]
    assert KERNEL_FN(X, second).x1_is_x2 is expected
    assert KERNEL_FN(X, second, "x1_is_x2") is expected


def test_kernel_of_x_with_itself_given_twice_carries_cov2_equal_to_cov1():
    k = KERNEL_FN(X, X)
    assert k.x1_is_x2 and k.cov2 is not None
    np.testing.assert_array_equal(np.asarray(k.cov2), np.asarray(k.cov1))


@pytest.mark.parametrize("shift, expected", [(0.0, True), (1.0, False)])
def test_x1_is_x2_is_decided_on_traced_inputs_under_jit(shift, expected):
    k = jax.jit(KERNEL_FN)(X, X + shift)
    assert isinstance(k.x1_is_x2, jax.Array) and bool(k.x1_is_x2) is expected


@pytest.mark.parametrize("name, expected", [
    ("is_reversed", False), ("diagonal_batch", True), ("batch_axis", 0), ("channel_axis", 1),
    ("is_gaussian", True), ("diagonal_spatial", False), ("shape1", (5, 1)),
])
def test_get_names_the_other_fields_of_the_kernel(name, expected):
    assert KERNEL_FN(X, None, name) == expected


def test_hand_built_kernel_keeps_the_x1_is_x2_it_was_given_with_cov2():
    k = KERNEL_FN(X, X.copy())
    rebuilt = nt._src.utils.kernel.Kernel(
        nngp=k.nngp, ntk=k.ntk, cov1=k.cov1, cov2=k.cov2, x1_is_x2=False, is_gaussian=True, is_reversed=False,
        is_input=False, diagonal_batch=True, diagonal_spatial=False, shape1=(5, 1), shape2=(5, 1),
        batch_axis=0, channel_axis=1)
    assert rebuilt.x1_is_x2 is False and rebuilt.replace(cov2=None).x1_is_x2 is True


# --- nt.batch: every part of the kernel, from blocks of 2 of the 5 inputs -------------------------

BATCHED = nt.batch(KERNEL_FN, batch_size=2, progress=False)
SECONDS = {"None": None, "itself": X, "other": np.random.default_rng(1).normal(size=(3, 3))}


@pytest.mark.parametrize("second", list(SECONDS))
@pytest.mark.parametrize("name", ["cov1", "cov2", "shape1", "shape2", "x1_is_x2", "is_gaussian"])
def test_batch_gives_each_part_of_the_kernel_as_the_unbatched_call(second, name):
    x2 = SECONDS[second]
    got, want = BATCHED(X, x2, get=("nngp", name)), KERNEL_FN(X, x2, ("nngp", name))
    got_part, want_part = getattr(got, name), getattr(want, name)
    if want_part is None or isinstance(want_part, (bool, tuple)):
        assert got_part == want_part
    else:
        np.testing.assert_allclose(np.asarray(got_part), np.asarray(want_part), rtol=1e-14, atol=0)
    np.testing.assert_allclose(got.nngp, want.nngp, rtol=1e-14, atol=0)


@pytest.mark.parametrize("second", list(SECONDS))
def test_batch_without_get_gives_the_whole_kernel(second):
    x2 = SECONDS[second]
    got, want = BATCHED(X, x2), KERNEL_FN(X, x2)
    assert isinstance(got, Kernel)
    for name in ("nngp", "ntk", "cov1"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-14, atol=0)
    assert (got.cov2 is None) == (want.cov2 is None)
    if want.cov2 is not None:
        np.testing.assert_allclose(got.cov2, want.cov2, rtol=1e-14, atol=0)
    assert (got.shape1, got.shape2, got.is_gaussian, got.x1_is_x2) == (want.shape1, want.shape2, True,
                                                                       want.x1_is_x2)


def test_batch_without_get_keeps_the_masks_of_padded_sequences():
    """``mask1``/``mask2`` of the whole inputs, as the unbatched kernel has them (blocks of 2 of 5)."""
    _, _, kernel_fn = stax.serial(stax.Conv(4, (2,), padding="SAME"), stax.Relu(), stax.GlobalAvgPool(),
                                  stax.Dense(1))
    x = np.random.default_rng(2).normal(size=(5, 6, 2))
    x[1, 4:] = x[3, 2:] = 100.0
    x2 = x[:3].copy()
    x2[0, 5:] = 100.0
    got = nt.batch(kernel_fn, batch_size=2, progress=False)(x, x2, mask_constant=100.0)
    want = kernel_fn(x, x2, mask_constant=100.0)
    np.testing.assert_array_equal(got.mask1, want.mask1)
    np.testing.assert_array_equal(got.mask2, want.mask2)
    np.testing.assert_allclose(got.nngp, want.nngp, rtol=1e-13, atol=0)
