r"""Activation layers: an elementwise nonlinearity and its dual on the kernels.

After an activation :math:`\phi`, :math:`\Sigma \mapsto \check\phi(\Sigma)` and
:math:`\Theta \mapsto \Theta \cdot \check{\phi'}(\Sigma)` (Jacot et al. 2018;
the dual activations :math:`\check\phi` are those of :mod:`ntkcourse.dual`,
Daniely, Frostig & Singer 2016). The map acts on each pair of positions
separately, so it passes a spatial-diagonal requirement on unchanged.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import jax
import numpy as np

from .. import dual, validation
from ..engine import fused_pair
from ..kernel import Kernel, spatial_diagonal
from .layer import layer, same_mask
from .spatial import interleave_ones

__all__ = ["activation_layer", "Relu", "LeakyRelu", "ABRelu", "Abs", "Erf", "Gelu", "Sin", "Cos",
           "ElementwiseNumerical", "Elementwise"]


def activation_layer(act: dual.DualActivation):
    """A layer applying ``act.fn`` elementwise, with its dual on the kernels."""

    def kernel_map(k: Kernel) -> Kernel:
        if not k.is_gaussian:
            raise ValueError(
                f"{act.name}: an activation needs Gaussian inputs; put a Dense or Conv layer before it "
                "(the input of the network, the output of another activation or of Dropout(mode='train') is not "
                "Gaussian)."
            )
        s = k.spatial_ndim
        diag = k.diagonal_spatial
        var1 = k.cov1 if diag else spatial_diagonal(k.cov1, 1, s)
        var2 = var1 if k.cov2 is None else (k.cov2 if diag else spatial_diagonal(k.cov2, 1, s))
        a = interleave_ones(var1, s, left=True, batch_pair=True, diagonal=diag)
        b = interleave_ones(var2, s, left=False, batch_pair=True, diagonal=diag)
        nngp = act.nngp(a, b, k.nngp)
        ntk = None if k.ntk is None else k.ntk * act.dnngp(a, b, k.nngp)
        if ntk is not None:
            # One fused loop for both outputs (see ntkcourse.engine.compile).
            nngp, ntk = fused_pair(nngp, ntk, materialise=s > 0)

        def self_cov(cov, var):
            if s == 0 or diag:
                return act.nngp_diag(cov)
            left = interleave_ones(var, s, left=True, batch_pair=False)
            right = interleave_ones(var, s, left=False, batch_pair=False)
            return act.nngp(left, right, cov)

        cov1 = self_cov(k.cov1, var1)
        cov2 = None if k.cov2 is None else self_cov(k.cov2, var2)
        return k.replace(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2, is_gaussian=False)

    def init_fn(key, input_shape):
        return input_shape, ()

    def apply_fn(params, inputs, **kwargs):
        return act.fn(inputs)

    return layer(init_fn, apply_fn, kernel_map, act.name, {"activation": act}, mask_fn=same_mask,
                 layout_free=True)


def _stabilize_flag(where: str, do_stabilize) -> bool:
    r"""Check neural-tangents' ``do_stabilize`` flag of the ReLU family.

    neural-tangents divides the kernels by their largest entry before the
    arc-cosine formula and multiplies back after, so that
    :math:`q_1 q_2` does not overflow in very deep networks. The formulas of
    :func:`ntkcourse.dual.ab_relu` never form :math:`q_1 q_2`: they take
    :math:`\sqrt{q_1}\sqrt{q_2}` and :math:`q_{12}/(\sqrt{q_1}\sqrt{q_2})`,
    which are finite for every finite float64 kernel, and the map is
    homogeneous of degree 1, so rescaling changes nothing. The flag is
    accepted for compatibility and has no effect (tested: equal values with
    and without it, also where :math:`q_1 q_2` overflows).
    """
    if not isinstance(do_stabilize, (bool, np.bool_)):
        raise validation.fail(where, "do_stabilize", "True or False", do_stabilize)
    return bool(do_stabilize)


def Relu(do_stabilize: bool = False):
    """ReLU, ``max(x, 0)``; kernels by the arc-cosine formulas (Cho & Saul 2009).

    ``do_stabilize``: accepted, no effect needed (see ``_stabilize_flag``).
    """
    _stabilize_flag("Relu", do_stabilize)
    return activation_layer(dual.relu())


def LeakyRelu(alpha: float, do_stabilize: bool = False):
    """``x`` for x > 0, ``alpha x`` otherwise. ``do_stabilize`` as :func:`Relu`."""
    alpha = validation.finite_real("LeakyRelu", "alpha", alpha)
    _stabilize_flag("LeakyRelu", do_stabilize)
    return activation_layer(dual.leaky_relu(alpha))


def ABRelu(a: float, b: float, do_stabilize: bool = False):
    """``a min(x, 0) + b max(x, 0)``. ``do_stabilize`` as :func:`Relu`."""
    a, b = (validation.finite_real("ABRelu", name, v) for name, v in (("a", a), ("b", b)))
    _stabilize_flag("ABRelu", do_stabilize)
    return activation_layer(dual.ab_relu(a, b))


def Abs(do_stabilize: bool = False):
    """``|x|``. ``do_stabilize`` as :func:`Relu`."""
    _stabilize_flag("Abs", do_stabilize)
    return activation_layer(dual.abs_activation())


def Erf(a: float = 1.0, b: float = 1.0, c: float = 0.0):
    """``a erf(b x) + c`` (Williams 1997; see ERRATA #2 for erf(x / sqrt 2))."""
    a, b, c = (validation.finite_real("Erf", name, v) for name, v in (("a", a), ("b", b), ("c", c)))
    return activation_layer(dual.erf(a, b, c))


def Gelu(approximate: bool = False):
    """GELU ``x Phi(x)`` (Hendrycks & Gimpel 2016); kernels in closed form
    (Tsuchida, Pearce, van der Heide, Roosta & Gallagher 2021).

    ``approximate=True`` makes the *finite* network use the tanh
    approximation (``jax.nn.gelu(x, approximate=True)``) while the kernels
    stay those of the exact GELU, as in neural-tangents, whose values this
    package reproduces. For the kernels of the approximation itself use
    ``ElementwiseNumerical(lambda x: jax.nn.gelu(x, approximate=True), deg=25)``.
    """
    if not isinstance(approximate, (bool, np.bool_)):
        raise validation.fail("Gelu", "approximate", "True or False", approximate)
    act = dual.gelu()
    if approximate:
        act = act._replace(fn=lambda x: jax.nn.gelu(x, approximate=True))
    return activation_layer(act)


def Sin(a: float = 1.0, b: float = 1.0, c: float = 0.0):
    """``a sin(b x + c)``."""
    a, b, c = (validation.finite_real("Sin", name, v) for name, v in (("a", a), ("b", b), ("c", c)))
    return activation_layer(dual.sin(a, b, c))


def Cos(a: float = 1.0, b: float = 1.0, c: float = 0.0):
    """``a cos(b x + c) = a sin(b x + c + pi/2)``: :func:`Sin` with the phase shifted."""
    a, b, c = (validation.finite_real("Cos", name, v) for name, v in (("a", a), ("b", b), ("c", c)))
    return activation_layer(dual.sin(a, b, c + math.pi / 2)._replace(name="Cos"))


def ElementwiseNumerical(fn: Callable, deg: int, df: Optional[Callable] = None):
    """Any elementwise activation, its kernels by Gauss–Hermite quadrature with
    ``deg`` nodes (see :func:`ntkcourse.dual.quadrature` for the accuracy).
    """
    return activation_layer(dual.quadrature(fn, deg, df))


def Elementwise(fn: Optional[Callable] = None, nngp_fn: Optional[Callable] = None,
                d_nngp_fn: Optional[Callable] = None):
    r"""An activation with user-given dual functions (neural-tangents' arguments).

    ``nngp_fn(cov12, var1, var2) -> E[fn(u) fn(v)]`` and
    ``d_nngp_fn(cov12, var1, var2) -> E[fn'(u) fn'(v)]`` (argument order of
    neural-tangents), elementwise on arrays. Without ``d_nngp_fn`` it is
    obtained by autodiff: for jointly Gaussian ``(u, v)``,
    :math:`\partial_{c} E[\phi(u)\phi(v)] = E[\phi'(u)\phi'(v)]` with ``c`` the
    covariance (Price's theorem, Price 1958). Without ``fn`` only the kernels
    exist: the finite network's ``apply_fn`` raises.
    """
    validation.callable_arg("Elementwise", "nngp_fn", nngp_fn)
    for name, f in (("fn", fn), ("d_nngp_fn", d_nngp_fn)):
        if f is not None:
            validation.callable_arg("Elementwise", name, f)
    if d_nngp_fn is None:
        def d_nngp_fn(c, a, b):
            return jax.grad(lambda cc: jax.numpy.sum(nngp_fn(cc, a, b)))(c)

    def no_fn(x):
        raise NotImplementedError("Elementwise: no `fn` was given, so the finite network (apply_fn) is undefined; "
                                  "pass fn= as well as nngp_fn=.")

    act = dual.DualActivation(
        getattr(fn, "__name__", "Elementwise"),
        no_fn if fn is None else fn,
        lambda a, b, c: nngp_fn(c, a, b),
        lambda a, b, c: d_nngp_fn(c, a, b),
        lambda a: nngp_fn(a, a, a),
        lambda a: d_nngp_fn(a, a, a),
    )
    return activation_layer(act)
