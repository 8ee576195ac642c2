r"""The remaining activations of neural-tangents' ``stax``, with its arguments.

Each is an :func:`~ntkcourse.stax.activations.activation_layer` over a dual
from :mod:`ntkcourse.dual_extra` (formulas and their derivations there) or
:mod:`ntkcourse.dual`. Like every activation here they refuse a non-Gaussian
input (put a ``Dense``/``Conv`` before them).

Differences from neural-tangents 0.6.5, on purpose:

* ``Hermite(degree)``: neural-tangents returns :math:`q_{12}^n` and warns that
  it assumes unit-variance inputs; here the kernel is the exact expectation
  for any variance (equal to :math:`q_{12}^n` when the variances are 1), so
  it is always the kernel of the finite network ``apply_fn`` computes.
* ``Monomial(degree)`` accepts every integer degree >= 0 (neural-tangents: 0..5).
* ``Gaussian(a, b)`` with ``b > 0``: where the expectation diverges the
  kernel is ``+inf`` (neural-tangents returns a finite number from its
  formula outside its range, or NaN).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import dual, dual_extra, validation
from .activations import activation_layer

__all__ = ["Sigmoid_like", "Sign", "Exp", "ExpNormalized", "Gaussian", "Rbf", "Monomial", "RectifiedMonomial",
           "Polynomial", "Hermite", "Gabor"]

# neural-tangents' constant: erf(x / 2.4020563531719796) / 2 + 1/2 is the
# erf-sigmoid closest to the logistic sigmoid in squared error on [-5, 5].
_SIGMOID_SCALE = 2.4020563531719796


def _reals(where, **values):
    return [validation.finite_real(where, name, v) for name, v in values.items()]


def _degree(where, degree):
    if isinstance(degree, (bool, np.bool_)) or not isinstance(degree, (int, np.integer)) or degree < 0:
        raise validation.fail(where, "degree", "an integer >= 0", degree)
    return int(degree)


def Sigmoid_like():
    """``erf(x / 2.4020563531719796) / 2 + 1/2``, a sigmoid with erf's closed-form kernels:
    :func:`~ntkcourse.stax.Erf` with ``a = 1/2, b = 1/2.4020563531719796, c = 1/2``.
    """
    return activation_layer(dual.erf(0.5, 1.0 / _SIGMOID_SCALE, 0.5)._replace(name="Sigmoid_like"))


def Sign():
    r"""``sign(x)``: NNGP :math:`\tfrac{2}{\pi}\arcsin\rho`, derivative kernel 0
    (see :func:`ntkcourse.dual_extra.sign`).
    """
    return activation_layer(dual_extra.sign())


def Exp(a: float = 1.0, b: float = 1.0):
    """``a exp(b x)`` (:func:`ntkcourse.dual_extra.exp`)."""
    return activation_layer(dual_extra.exp(*_reals("Exp", a=a, b=b)))


def Gaussian(a: float = 1.0, b: float = -1.0):
    """``a exp(b x^2)`` (:func:`ntkcourse.dual_extra.gaussian`)."""
    return activation_layer(dual_extra.gaussian(*_reals("Gaussian", a=a, b=b)))


def ExpNormalized(gamma: float = 1.0, shift: float = -1.0, do_clip: bool = False):
    """The normalised Gaussian kernel of Shankar et al. (2020); kernel only, ``apply_fn`` raises
    (:func:`ntkcourse.dual_extra.exp_normalized`).
    """
    gamma, shift = _reals("ExpNormalized", gamma=gamma, shift=shift)
    if not isinstance(do_clip, (bool, np.bool_)):
        raise validation.fail("ExpNormalized", "do_clip", "True or False", do_clip)
    return activation_layer(dual_extra.exp_normalized(gamma, shift, bool(do_clip)))


def Rbf(gamma: float = 1.0):
    r"""``sqrt(2) sin(sqrt(2 gamma) x + pi/4)``, whose NNGP map is the RBF kernel
    :math:`e^{-\gamma(q_1 + q_2 - 2q_{12})}` (:func:`ntkcourse.dual.sin` with
    ``a = sqrt 2, b = sqrt(2 gamma), c = pi/4``: the ``cos(2c)`` term vanishes).
    """
    (gamma,) = _reals("Rbf", gamma=gamma)
    if gamma < 0:
        raise validation.fail("Rbf", "gamma", "a real number >= 0", gamma)
    act = dual.sin(math.sqrt(2.0), math.sqrt(2.0 * gamma), math.pi / 4)
    return activation_layer(act._replace(name=f"Rbf({gamma})"))


def Monomial(degree: int):
    """``x^degree`` (:func:`ntkcourse.dual_extra.polynomial`)."""
    degree = _degree("Monomial", degree)
    return activation_layer(dual_extra.polynomial([0.0] * degree + [1.0], name=f"Monomial({degree})"))


def RectifiedMonomial(degree: int):
    """``x^degree`` for ``x >= 0``, 0 otherwise (:func:`ntkcourse.dual_extra.rectified_monomial`)."""
    return activation_layer(dual_extra.rectified_monomial(_degree("RectifiedMonomial", degree)))


def Polynomial(coef: Sequence[float]):
    """``coef[0] + coef[1] x + ... + coef[n] x^n`` (:func:`ntkcourse.dual_extra.polynomial`)."""
    try:
        values = np.asarray(coef, dtype=float)
    except (TypeError, ValueError):
        raise validation.fail("Polynomial", "coef", "a sequence of real numbers", coef) from None
    if values.ndim != 1 or not np.all(np.isfinite(values)):
        raise validation.fail("Polynomial", "coef", "a 1-D sequence of finite real numbers", coef)
    return activation_layer(dual_extra.polynomial(values.tolist()))


def Hermite(degree: int):
    """The normalised Hermite polynomial ``He_n(x) / sqrt(n!)``; exact kernels for
    any input variance (see the module docstring and
    :func:`ntkcourse.dual_extra.hermite_coefficients`).
    """
    degree = _degree("Hermite", degree)
    return activation_layer(dual_extra.polynomial(dual_extra.hermite_coefficients(degree),
                                                  name=f"Hermite({degree})"))


def Gabor():
    """``exp(-x^2) sin(x)`` (:func:`ntkcourse.dual_extra.gabor`)."""
    return activation_layer(dual_extra.gabor())
