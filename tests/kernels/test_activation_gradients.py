"""Gradients of kernels with respect to the inputs, through activations whose
kernels have a square-root singularity at correlation ±1.

``kernel_fn(x, None)`` has correlation exactly 1 on its diagonal and
``kernel_fn(x, x[:2])`` at the pairs of equal inputs; there ``sqrt(1 - rho²)``
and ``arccos(rho)`` have infinite derivatives, while rho itself is at its
maximum (its derivative is zero), so the exact gradient is finite. Session 11
found ``ElementwiseNumerical`` and ``RectifiedMonomial`` returning NaN there
(0 × inf); neural-tangents 0.6.5 gives finite values for the first.

Claims: the gradients are finite, equal to central finite differences of the
float64 kernel (step 1e-5: truncation ~1e-10, round-off ~1e-11 relative; the
tolerance 1e-6 leaves a margin of 1e4), and for ``ElementwiseNumerical`` equal
to neural-tangents' (values from the oracle environment, same inputs and
network; quadrature with the same 25 nodes, so round-off only: 1e-12).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import stax

X = np.random.RandomState(0).randn(3, 4)
ACTIVATIONS = {
    "ElementwiseNumerical(tanh)": lambda: stax.ElementwiseNumerical(jnp.tanh, deg=25),
    "RectifiedMonomial(1)": lambda: stax.RectifiedMonomial(1),
    "RectifiedMonomial(2)": lambda: stax.RectifiedMonomial(2),
}


def _summed_kernel(activation, get, cross):
    _, _, kernel_fn = stax.serial(stax.Dense(3, b_std=0.3), ACTIVATIONS[activation](), stax.Dense(1))
    return lambda x: kernel_fn(x, x[:2] * 1.0 if cross else None, get).sum()


def _central_differences(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        grad[index] = (float(f(x + step)) - float(f(x - step))) / (2 * h)
    return grad


@pytest.mark.parametrize("get", ["nngp", "ntk"])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_gradient_of_the_kernel_of_x_with_itself_equals_finite_differences(activation, get):
    with jax.enable_x64(True):
        f = _summed_kernel(activation, get, cross=False)
        grad = np.asarray(jax.grad(f)(jnp.asarray(X)))
        assert np.all(np.isfinite(grad)), grad
        np.testing.assert_allclose(grad, _central_differences(f, X), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("get", ["nngp", "ntk"])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_gradient_through_pairs_of_equal_inputs_is_finite(activation, get):
    with jax.enable_x64(True):
        grad = np.asarray(jax.grad(_summed_kernel(activation, get, cross=True))(jnp.asarray(X)))
    assert np.all(np.isfinite(grad)), grad


# neural-tangents 0.6.5 (oracle environment): jax.grad of kernel_fn(x, x[:2] * 1.0, get).sum() for the
# network above with ElementwiseNumerical(jnp.tanh, deg=25), x64.
NT_CROSS_GRADIENTS = {
    "nngp": [[0.17998493261747922, -0.10472933726258583, 0.10590063296024027, 0.03535802285233837],
             [0.23458618539637652, 0.08256618708506605, 0.14795315379444474, 0.42447032794490375],
             [0.32822804017944474, -0.07835013087242546, 0.1628627660445803, 0.09632263015894944]],
    "ntk": [[0.49656041655714783, -0.19848652805461664, 0.29061996572302473, 0.22779809290552647],
            [0.5973815427138827, 0.12703097106739222, 0.3629488638891591, 0.8909447792106981],
            [0.7018972195148467, -0.1549651982009303, 0.34708073881466617, 0.21960535490551772]],
}


@pytest.mark.parametrize("get", ["nngp", "ntk"])
def test_numerical_activation_gradient_through_equal_inputs_equals_neural_tangents(get):
    with jax.enable_x64(True):
        f = _summed_kernel("ElementwiseNumerical(tanh)", get, cross=True)
        grad = np.asarray(jax.grad(f)(jnp.asarray(X)))
    np.testing.assert_allclose(grad, NT_CROSS_GRADIENTS[get], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", ["RectifiedMonomial(2)", "Sign", "ExpNormalized", "ElementwiseNumerical(tanh)"])
def test_gradient_at_a_zero_input_is_finite(activation):
    """A zero input (variance 0, correlation undefined) gives finite gradients, not sqrt's infinite
    derivative at 0 times zero (NaN) spread to every input; for ``Sign`` and ``ExpNormalized`` the kernel
    is not differentiable there (it depends on the input's direction), any finite value is a valid choice."""
    layers = {"Sign": stax.Sign, "ExpNormalized": stax.ExpNormalized}
    layer = layers[activation]() if activation in layers else ACTIVATIONS[activation]()
    _, _, kernel_fn = stax.serial(stax.Dense(3), layer, stax.Dense(1))
    x = X.copy()
    x[1] = 0.0
    with jax.enable_x64(True):
        grad = np.asarray(jax.grad(lambda x: kernel_fn(x, None, "ntk").sum())(jnp.asarray(x)))
    assert np.all(np.isfinite(grad)), grad
