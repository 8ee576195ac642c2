"""Layers added for neural-tangents users give neural-tangents' kernels
(reference values from neural-tangents 0.6.5 in float64,
``tests/oracle/make_compat_reference.py``, networks in ``tests/oracle/compat_cases.py``).

Tolerance: the same closed forms evaluated in another order; the package's
other oracle cases agree to about 1e-15 relative, so 1e-10 leaves a wide
margin while catching any formula error (those show at 1e-3 or more).
"""
import json
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from ntkcourse import stax

sys.path.insert(0, str(Path(__file__).parents[1] / "oracle"))
from compat_cases import CASES, build, inputs  # noqa: E402

REF = json.loads((Path(__file__).parents[1] / "data" / "nt_compat_reference.json").read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernels_match_neural_tangents(name):
    kind, spec = CASES[name]
    x1, x2 = inputs(kind)
    k = build(stax, spec)[2](x1, x2, ("nngp", "ntk", "cov1"))
    for field in ("nngp", "ntk", "cov1"):
        want = np.asarray(REF[name][field])
        np.testing.assert_allclose(np.asarray(getattr(k, field)), want, rtol=1e-10,
                                   atol=1e-12 * np.abs(want).max(), err_msg=field)


def test_sum_pool_finite_network_sums_the_window():
    x = np.arange(2 * 4 * 3 * 1, dtype=np.float32).reshape(2, 4, 3, 1)
    out = stax.SumPool((2, 2), strides=(2, 1))[1]((), x)
    np.testing.assert_allclose(np.asarray(out)[0, 0, 0, 0], x[0, 0:2, 0:2, 0].sum(), rtol=1e-6)


def test_global_sum_pool_matches_wide_networks():
    # Monte Carlo over 100 width-64 networks: NNGP within 4.5 standard errors
    # plus 5% for the O(1/width) finite-width bias. Seeded.
    from ntkcourse import empirical

    net = stax.serial(stax.Conv(64, (2, 2), padding="SAME"), stax.Relu(), stax.GlobalSumPool(), stax.Dense(1))
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 2))
    exact = np.asarray(net[2](x, None, "nngp"))
    mc = empirical.monte_carlo_kernel_fn(net, None, jax.random.PRNGKey(0), 100)(x, None, ("nngp",))
    assert np.all(np.abs(mc.nngp - exact) <= 4.5 * mc.nngp_stderr + 0.05 * np.abs(exact))


def test_get_accepts_neural_tangents_field_names():
    _, _, kernel_fn = stax.serial(stax.Dense(4), stax.Relu())
    x = np.random.default_rng(0).normal(size=(3, 2))
    out = kernel_fn(x, None, ("cov1", "shape1", "is_gaussian"))
    assert out.shape1 == (3, 4) and out.is_gaussian is False
    np.testing.assert_allclose(np.asarray(out.cov1), np.diag(np.asarray(kernel_fn(x, None, "nngp"))), rtol=1e-14)


def test_elementwise_derivative_kernel_by_autodiff_equals_the_closed_form():
    # Erf's dual E[erf(u) erf(v)] = (2/pi) arcsin(2c / sqrt((1+2a)(1+2b))) (Williams 1997); its
    # c-derivative is E[erf'(u) erf'(v)] (Price's theorem), so the NTK must equal stax.Erf()'s.
    import jax.numpy as jnp

    def nngp_fn(c, a, b):
        return 2 / jnp.pi * jnp.arcsin(2 * c / jnp.sqrt((1 + 2 * a) * (1 + 2 * b)))

    x = np.random.default_rng(0).normal(size=(4, 3))
    got = stax.serial(stax.Dense(8, b_std=0.2), stax.Elementwise(nngp_fn=nngp_fn), stax.Dense(1))[2](x, None, "ntk")
    want = stax.serial(stax.Dense(8, b_std=0.2), stax.Erf(), stax.Dense(1))[2](x, None, "ntk")
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12)  # same formula, exact derivative


def test_elementwise_without_fn_refuses_the_finite_network():
    layer = stax.Elementwise(nngp_fn=lambda c, a, b: c)
    with pytest.raises(NotImplementedError, match="Elementwise: no `fn`"):
        layer[1]((), np.ones((2, 3), np.float32))
