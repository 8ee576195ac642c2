"""Specification of ntkcourse.dual beyond the Gaussian expectations: the elementwise functions, the labels,
quadrature's options and refusals, and exact values at points where the kernels are known in closed form.

Written from the survivors of a mutation run (tools/mutation.py dual). Expected values are numpy/scipy
formulas or hand-worked numbers stated in each docstring.
"""
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from ntkcourse import dual

X = np.linspace(-2.5, 2.5, 11)


def as_float(fn, *args):
    with jax.enable_x64(True):
        return np.asarray(fn(*(jnp.asarray(a, jnp.float64) for a in args)), dtype=np.float64)


# Constructors, called inside each test: a mutation run's fork server imports this module before any mutant is
# active, so activations built here at import would carry the original closures (tools/mutation.py).
@pytest.mark.parametrize(
    "make, expected",
    [
        (dual.relu, np.maximum(X, 0.0)),
        (partial(dual.leaky_relu, 0.2), np.where(X > 0, X, 0.2 * X)),
        (partial(dual.ab_relu, -0.5, 1.5), np.where(X > 0, 1.5 * X, -0.5 * X)),
        (dual.abs_activation, np.abs(X)),
        (partial(dual.erf, 1.3, 0.7, 0.2), 1.3 * special.erf(0.7 * X) + 0.2),
        (dual.gelu, X * special.ndtr(X)),
        (partial(dual.sin, 0.8, 1.7, 0.3), 0.8 * np.sin(1.7 * X + 0.3)),
        (dual.identity, X),
    ],
    ids=["relu", "leaky_relu", "ab_relu", "abs", "erf", "gelu", "sin", "identity"],
)
def test_elementwise_function_is_the_documented_activation(make, expected):
    """``fn`` (the finite network's activation) is the documented function on a grid of [-2.5, 2.5] (1e-14)."""
    np.testing.assert_allclose(as_float(make().fn, X), expected, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize(
    "make, label",
    [
        (dual.relu, "Relu"),
        (partial(dual.leaky_relu, 0.2), "LeakyRelu(0.2)"),
        (partial(dual.ab_relu, -0.5, 1.5), "ABRelu(-0.5, 1.5)"),
        (dual.abs_activation, "Abs"),
        (partial(dual.erf, 1.3, 0.7, 0.2), "Erf(1.3, 0.7, 0.2)"),
        (dual.gelu, "Gelu"),
        (partial(dual.sin, 0.8, 1.7, 0.3), "Sin(0.8, 1.7, 0.3)"),
        (dual.identity, "Identity"),
        (partial(dual.quadrature, jnp.tanh, 7), "Quadrature(tanh, deg=7)"),
        (partial(dual.quadrature, jnp.tanh), "Quadrature(tanh, deg=25)"),  # the documented default degree
        (partial(dual.quadrature, jnp.tanh, 7, name="my tanh"), "Quadrature(my tanh, deg=7)"),
        # A callable without __name__ (a partial) and no name given: the placeholder 'fn'.
        (partial(dual.quadrature, partial(jnp.multiply, 2.0), 7), "Quadrature(fn, deg=7)"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_label_names_the_activation_and_its_parameters(make, label):
    """Each activation's ``name`` is its label with its parameters (what layers and figures show)."""
    assert make().name == label


def test_erf_defaults_are_plain_erf():
    """erf() is erf(x): a = b = 1, c = 0, so E[φ(u)²] at Var u = 1 is (2/π) arcsin(2/3) (Williams 1997; 1e-15)."""
    assert as_float(dual.erf().nngp_diag, 1.0) == pytest.approx(2 / math.pi * math.asin(2 / 3), rel=1e-15)


def test_sin_defaults_are_plain_sine():
    """sin() is sin(x): E[sin(u)²] = (1 − e^{−2q})/2, at q = 0.7 (1e-15)."""
    assert as_float(dual.sin().nngp_diag, 0.7) == pytest.approx((1 - math.exp(-1.4)) / 2, rel=1e-15)


def test_ab_relu_defaults_are_relu():
    """ab_relu() is ReLU: E[relu(u)²] = q/2 and E[1{u>0}] = 1/2 at q = 3 (exact)."""
    act = dual.ab_relu()
    assert as_float(act.nngp_diag, 3.0) == 1.5
    assert as_float(act.dnngp_diag, 3.0) == 0.5


def test_quadrature_uses_the_derivative_it_is_given():
    """With df = 2 (not fn' = 1) for fn = identity, E[df(u) df(v)] = 4 exactly; E[uv] = cov stays exact."""
    act = dual.quadrature(lambda x: x, deg=5, df=lambda x: 2.0 * jnp.ones_like(x))
    assert as_float(act.dnngp, 1.0, 2.0, 0.3) == pytest.approx(4.0, rel=1e-14)
    assert as_float(act.dnngp_diag, 1.5) == pytest.approx(4.0, rel=1e-14)
    assert as_float(act.nngp, 1.0, 2.0, 0.3) == pytest.approx(0.3, rel=1e-13)


def test_quadrature_with_two_nodes_is_exact_for_cubic_products():
    """deg = 2 (the least allowed) integrates polynomials of degree 3 exactly: for fn = identity E[u²] = q, and for
    fn = x² (derivative 2x by autodiff) E[(2u)²] = 4q, at q = 0.6 (1e-14)."""
    act = dual.quadrature(lambda x: x * x, deg=2)
    assert as_float(dual.quadrature(lambda x: x, deg=2).nngp_diag, 0.6) == pytest.approx(0.6, rel=1e-14)
    assert as_float(act.dnngp_diag, 0.6) == pytest.approx(4 * 0.6, rel=1e-14)   # E[(2u)²] = 4q


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(fn=3.0), TypeError, r"^quadrature: `fn` must be callable, got float\.$"),
        (dict(fn=jnp.tanh, deg=1), ValueError, r"^quadrature: `deg` must be an integer >= 2, got 1\.$"),
        (dict(fn=jnp.tanh, deg=2.0), ValueError, r"^quadrature: `deg` must be an integer >= 2, got 2\.0\.$"),
    ],
)
def test_quadrature_refuses_bad_arguments(kwargs, error, match):
    """A non-callable function, fewer than two nodes or a float degree are refused, naming the argument."""
    with pytest.raises(error, match=match):
        dual.quadrature(**kwargs)


def test_quadrature_accepts_a_numpy_integer_degree():
    """deg may be a numpy integer (e.g. from np.arange): deg = np.int64(3) gives the deg-3 rule."""
    assert dual.quadrature(jnp.tanh, np.int64(3)).name == "Quadrature(tanh, deg=3)"


@pytest.mark.parametrize("slope", [1.0, -0.7])
def test_ab_relu_with_equal_slopes_is_linear(slope):
    """ab_relu(a, a) is φ(x) = a x: E[φ(u)φ(v)] = a² cov and E[φ'φ'] = a² (exact), e.g. a = 1 is the identity."""
    act = dual.ab_relu(slope, slope)
    assert as_float(act.nngp, 1.3, 0.7, 0.4) == pytest.approx(slope**2 * 0.4, rel=1e-15)
    assert as_float(act.dnngp, 1.3, 0.7, 0.4) == pytest.approx(slope**2, rel=1e-15)


def test_expectations_refuses_a_covariance_just_beyond_the_cauchy_schwarz_bound():
    """cov² = 1.01·var1·var2 (relative excess 1e-2, far above the 1e-12 round-off allowance) is refused."""
    with pytest.raises(ValueError, match=r"^expectations: covariance `cov` must satisfy cov\^2 <= var1 var2, got "
                                         r"var1=1\.0, var2=4\.0, cov=2\.01\.$"):
        dual.expectations(dual.relu(), 1.0, 4.0, 2.01)


def test_expectations_refuses_a_covariance_between_zero_variances():
    """var1 = var2 = 0 leaves no room for a covariance: cov = 0.5 is refused (the absolute allowance is 1e-300)."""
    with pytest.raises(ValueError, match=r"`cov` must satisfy"):
        dual.expectations(dual.identity(), 0.0, 0.0, 0.5)


def test_expectations_accepts_zero_variances():
    """Zero variances are a zero input, allowed: for the identity E[uv] = 0 and E[1·1] = 1 (exact)."""
    nngp, dnngp = dual.expectations(dual.identity(), 0.0, 0.0, 0.0)
    assert (float(nngp), float(dnngp)) == (0.0, 1.0)


@pytest.mark.parametrize("which, value", [("var1", "-0.5"), ("var2", "-2.0")])
def test_expectations_refusal_of_a_negative_variance_is_worded_fully(which, value):
    """The message names the function, the variance and its value: 'expectations: variance `var1` must be >= 0'."""
    args = {"var1": 1.0, "var2": 1.0}
    args[which] = float(value)
    with pytest.raises(ValueError, match=rf"^expectations: variance `{which}` must be >= 0, got {value}\.$"):
        dual.expectations(dual.relu(), args["var1"], args["var2"], 0.0)


def test_expectations_are_float64_with_x64_off():
    """Results are float64 arrays even though JAX's x64 flag is off globally: E[relu(u) relu(v)] at unit
    variances and zero covariance is 1/(2π) to the last bit, and E[1{u>0}1{v>0}] = 1/4."""
    nngp, dnngp = dual.expectations(dual.relu(), 1.0, 1.0, 0.0)
    assert nngp.dtype == np.float64 and float(nngp) == 1 / (2 * math.pi)
    assert float(dnngp) == 0.25


def test_expectations_compute_float32_inputs_in_float64():
    """Inputs given as float32 are converted to float64 before any arithmetic: E[relu(u) relu(v)] and
    E[1{u>0}1{v>0}] equal the values for the same numbers given as float64 (to the last bit), in float64."""
    q = [np.float32(1.3), np.float32(0.7), np.float32(0.5)]
    got = dual.expectations(dual.relu(), *q)
    expected = dual.expectations(dual.relu(), *(float(v) for v in q))
    assert all(g.dtype == np.float64 for g in got)
    assert [float(g) for g in got] == [float(e) for e in expected]


def test_expectations_absolute_allowance_at_zero_variances_is_inclusive():
    """Between zero variances a covariance with cov² up to 1e-300 (the absolute round-off allowance) is accepted,
    the bound included: cov = 1e-150 (whose square is exactly the float 1e-300) passes, the next float refused."""
    nngp, _ = dual.expectations(dual.identity(), 0.0, 0.0, 1e-150)
    assert float(nngp) == 1e-150  # identity: E[uv] = cov
    with pytest.raises(ValueError, match=r"`cov` must satisfy"):
        dual.expectations(dual.identity(), 0.0, 0.0, float(np.nextafter(1e-150, 1.0)))


def test_quadrature_computes_in_the_precision_of_its_inputs():
    """float32 variances and covariance give a float32 E[φ(u)φ(v)] (nodes and weights are cast to the inputs'
    precision, as the closed forms compute), even with JAX's x64 mode on; float64 inputs give float64."""
    act = dual.quadrature(jnp.tanh, 5)
    with jax.enable_x64(True):
        single = act.nngp(*(jnp.asarray([q], jnp.float32) for q in (1.0, 0.5, 0.3)))
        double = act.nngp(*(jnp.asarray([q], jnp.float64) for q in (1.0, 0.5, 0.3)))
    assert single.dtype == jnp.float32 and double.dtype == jnp.float64


def test_quadrature_of_integer_moments_uses_fractional_nodes():
    """Integer variances and covariance are moments like any others: the nodes stay fractional (they are cast to
    a floating type, never to the inputs' integer type). For φ(x) = x², Isserlis' theorem gives
    E[u²v²] = q1 q2 + 2 q12² and E[u⁴] = 3 q²: 2·3 + 2·1 = 8 and 3·2² = 12, exact for a rule of 3 nodes
    (degree-4 polynomials; round-off only: 1e-12)."""
    act = dual.quadrature(lambda x: x * x, 3)
    with jax.enable_x64(True):
        pair = act.nngp(jnp.asarray([2]), jnp.asarray([3]), jnp.asarray([1]))
        diag = act.nngp_diag(jnp.asarray([2]))
    np.testing.assert_allclose(np.asarray(pair), [8.0], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(diag), [12.0], rtol=1e-12)


def test_quadrature_diagonal_forms_compute_in_the_precision_of_their_inputs():
    """As test_quadrature_computes_in_the_precision_of_its_inputs for E[φ(u)²] and E[φ'(u)²]: float32 variances
    give float32 (nodes and weights cast to them) with x64 on, where the default would be float64."""
    act = dual.quadrature(jnp.tanh, 5)
    with jax.enable_x64(True):
        var = jnp.asarray([0.5, 1.0], jnp.float32)
        assert act.nngp_diag(var).dtype == jnp.float32 and act.dnngp_diag(var).dtype == jnp.float32


def test_quadrature_broadcasts_each_argument_alone():
    """The kernels broadcast over arrays of any shape (module docstring), whichever argument carries the shape:
    var1, var2 or cov an array of 3 entries, the other two scalars, gives 3 entries of E[φ(u)φ(v)]; a column, a
    row and a matrix give the matrix (both kernels, and the diagonal forms over a matrix). For φ(x) = x² (φ' = 2x):
    E[u²v²] = q1 q2 + 2 q12² and E[φ'(u)φ'(v)] = 4 q12 (Isserlis), exact for 3 nodes (round-off: 1e-12)."""
    act = dual.quadrature(lambda x: x * x, 3, df=lambda x: 2 * x)
    column = np.array([1.0, 2.0, 4.0])
    with jax.enable_x64(True):
        for position in range(3):
            args = [np.float64(4.0), np.float64(5.0), np.float64(1.5)]
            args[position] = args[position] * column / 2
            q1, q2, q12 = np.broadcast_arrays(*args)
            np.testing.assert_allclose(np.asarray(act.nngp(*args)), q1 * q2 + 2 * q12**2, rtol=1e-12,
                                       err_msg=f"array at position {position}")
        # The layout of the kernels' recursions: var1 a column, var2 a row, cov the (2, 3) matrix; and the
        # diagonal forms over a (2, 3) matrix of variances (E[u⁴] = 3q², E[(2u)²] = 4q).
        q1, q2 = column[:2, None] * 3, column[None, :] * 2
        q12 = np.sqrt(q1 * q2) * np.array([[0.5, -0.2, 0.9], [0.0, 0.7, -0.6]])
        np.testing.assert_allclose(np.asarray(act.nngp(q1, q2, q12)), q1 * q2 + 2 * q12**2, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(act.dnngp(q1, q2, q12)), 4 * q12, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(np.asarray(act.nngp_diag(q12**2)), 3 * q12**4, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(np.asarray(act.dnngp_diag(q12**2)), 4 * q12**2, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_snap_boundary_is_eight_epsilons_below_one_inclusive(dtype):
    """_arccos_of_abs(snap=True) takes |x| >= 1 − 8ε (ε the machine epsilon of x's own type; z = (1 − |x|)/2 <= 4ε)
    as exactly 1 (angle 0, sine 0) and leaves 1 − 10ε alone (z = 5ε; angle ≈ √(20ε)); without snap (arccos,
    arcsin: the default) 1 − 8ε keeps its angle. Both points and their z are exact binary fractions; the angles are
    compared with numpy's in float64 to 1e-3 relative (a small angle: the half-angle formula is accurate to far
    less), arcsin (≈ π/2) to 10ε."""
    eps = float(np.finfo(dtype).eps)
    edge, beyond = dtype(1.0 - 8 * eps), dtype(1.0 - 10 * eps)
    with jax.enable_x64(True):
        theta, sine = dual._arccos_of_abs(jnp.asarray([edge, beyond], dtype), snap=True)
        plain = dual.arccos(jnp.asarray([edge], dtype))
        asin = dual.arcsin(jnp.asarray([edge], dtype))
    theta, sine = np.asarray(theta, np.float64), np.asarray(sine, np.float64)
    assert theta[0] == 0.0 and sine[0] == 0.0
    np.testing.assert_allclose(theta[1], np.arccos(np.float64(beyond)), rtol=1e-3)
    np.testing.assert_allclose(np.asarray(plain, np.float64), [np.arccos(np.float64(edge))], rtol=1e-3)
    np.testing.assert_allclose(np.asarray(asin, np.float64), [np.arcsin(np.float64(edge))], rtol=10 * eps)


def test_quadrature_keeps_the_function_it_integrates():
    """The activation's ``fn`` (what finite networks apply) is the function given, unchanged."""
    def cube(x):
        return x**3

    act = dual.quadrature(cube, 3)
    assert act.fn is cube
