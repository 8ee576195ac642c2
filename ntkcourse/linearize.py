r"""Linearisation and Taylor expansion of a network in its parameters, and how far training leaves them.

The first step of the NTK argument (Jacot et al. 2018; Lee et al. 2019): around
its initialisation :math:`\theta_0` a network is approximated by the linear model

.. math:: f^{\rm lin}(\theta, x) = f(\theta_0, x) + J(\theta_0, x)\,(\theta - \theta_0),

whose training by gradient descent on the squared loss is kernel regression
with the empirical NTK :math:`\hat\Theta = J J^\top` (:mod:`ntkcourse.empirical`).
:func:`linearize` and :func:`taylor_expand` follow neural-tangents
(``nt.linearize``, ``nt.taylor_expand``): one forward-mode JVP per order, no
Jacobian formed. :func:`train_network_and_linearization` trains both models from
the same start and records how far apart they get; :func:`linearization_error`
measures the remainder :math:`f(\theta) - f^{\rm lin}(\theta)` at any parameters.

The loss is :math:`L(\theta) = \tfrac12 \sum_i \lVert f(\theta, x_i) - y_i\rVert^2`
(a sum over training points, as in :mod:`ntkcourse.training` and
:mod:`ntkcourse.dynamics`), and gradient descent is
:math:`\theta \leftarrow \theta - \eta \nabla L`. For the linear model the
training outputs then follow exactly
:math:`f_t = y + (I - \eta\hat\Theta)^t (f_0 - y)`.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import sys
import types
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .empirical import network_of
from .training import gradient_descent, mse_loss, optimizer_steps

__all__ = [
    "linearize",
    "taylor_expand",
    "linearization_error",
    "LinearizationRun",
    "train_network_and_linearization",
]


def _check_like(params, params0, where: str):
    d0 = jax.tree_util.tree_structure(params0)
    d = jax.tree_util.tree_structure(params)
    if d != d0:
        raise ValueError(f"{where}: `params` must have the structure of params0 ({d0}); got {d}.")
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(params0)[0], jax.tree_util.tree_leaves(params)):
        if np.shape(a) != np.shape(b):
            raise ValueError(
                f"{where}: `params{jax.tree_util.keystr(path)}` has shape {np.shape(b)}; params0 has {np.shape(a)}."
            )


def _as_function(f, where):
    try:
        apply_fn, _, _ = network_of(f)
    except TypeError as exc:
        raise TypeError(f"{where}: {exc}") from None
    return apply_fn


def linearize(f: Callable, params0) -> Callable:
    r"""The first-order Taylor model of ``f`` in its parameters around ``params0``.

    :math:`f^{\rm lin}(\theta, x) = f(\theta_0, x) + \partial_\theta f(\theta_0, x)\,(\theta - \theta_0)`,
    computed by one JVP (forward mode), as ``nt.linearize``.

    Args:
      f: ``f(params, *args, **kwargs)`` or a ``ntkcourse.stax`` layer triple.
      params0: the expansion point (any pytree).

    Returns:
      ``f_lin(params, *args, **kwargs)`` with the output structure of ``f``.

    Example:
      >>> import jax.numpy as jnp
      >>> f = lambda p, x: jnp.sin(p * x)
      >>> f_lin = linearize(f, 0.0)
      >>> f_lin(0.1, jnp.array([1.0, 2.0]))  # sin(0) + x cos(0) · 0.1
      Array([0.1, 0.2], dtype=float32)
    """
    apply_fn = _as_function(f, "linearize")

    def f_lin(params, *args, **kwargs):
        _check_like(params, params0, "linearize")
        delta = jax.tree_util.tree_map(lambda p, p0: p - p0, params, params0)
        f0, df = jax.jvp(lambda p: apply_fn(p, *args, **kwargs), (params0,), (delta,))
        return jax.tree_util.tree_map(jnp.add, f0, df)

    return f_lin


def taylor_expand(f: Callable, params0, degree: int) -> Callable:
    r"""The Taylor polynomial of ``f`` in its parameters, of degree ``degree``, around ``params0``.

    :math:`\sum_{j=0}^{d} \frac{1}{j!} D^j f(\theta_0)[\Delta, \dots, \Delta]` with
    :math:`\Delta = \theta - \theta_0`, by ``d`` nested JVPs (as ``nt.taylor_expand``).
    ``degree=1`` is :func:`linearize`; ``degree=2`` adds
    :math:`\tfrac12 \Delta^\top H \Delta`, the term that the "slow learning"
    argument shows to vanish with width (Liu, Zhu & Belkin 2020).

    Returns:
      ``f_taylor(params, *args, **kwargs)``.
    """
    if not isinstance(degree, numbers.Integral) or isinstance(degree, bool) or degree < 0:
        raise ValueError(f"taylor_expand: `degree` must be an integer >= 0, got {degree!r}.")
    apply_fn = _as_function(f, "taylor_expand")

    def f_taylor(params, *args, **kwargs):
        _check_like(params, params0, "taylor_expand")
        delta = jax.tree_util.tree_map(lambda p, p0: p - p0, params, params0)

        def g(p):
            return apply_fn(p, *args, **kwargs)

        # Horner form: f + D(f + D(f + ...)/3)/2, each D one JVP along delta.
        def expand(fn, current):
            if current == degree:
                return fn(params0)

            def directional(p):
                return jax.jvp(fn, (p,), (delta,))[1]

            rest = expand(directional, current + 1)
            return jax.tree_util.tree_map(lambda a, b: a + b / (current + 1), fn(params0), rest)

        return expand(g, 0)

    return f_taylor


def linearization_error(f: Callable, params0, params, x, relative: bool = True, **kwargs) -> float:
    r"""How far the network is from its linearisation at ``params``, on inputs ``x``.

    :math:`\lVert f(\theta, x) - f^{\rm lin}(\theta, x)\rVert / \lVert f(\theta, x) - f(\theta_0, x)\rVert`
    (norms over all inputs and outputs): the share of the network's movement
    that the linear model misses. With ``relative=False``, the root mean square
    of :math:`f(\theta, x) - f^{\rm lin}(\theta, x)` instead. Small steps give
    :math:`O(\lVert\theta - \theta_0\rVert)` relative errors, driven by the
    Hessian of :math:`f` (second-order term of :func:`taylor_expand`).
    """
    apply_fn = _as_function(f, "linearization_error")
    _check_like(params, params0, "linearization_error")
    if kwargs:
        lin = np.asarray(linearize(apply_fn, params0)(params, x, **kwargs), dtype=np.float64)
    else:
        lin = np.asarray(_linear_outputs(params, params0, jnp.asarray(x), apply_fn=apply_fn), dtype=np.float64)
    out = np.asarray(apply_fn(params, x, **kwargs), dtype=np.float64)
    if not relative:
        return float(np.sqrt(np.mean((out - lin) ** 2)))
    start = np.asarray(apply_fn(params0, x, **kwargs), dtype=np.float64)
    moved = np.linalg.norm(out - start)
    if moved == 0.0:
        return 0.0
    return float(np.linalg.norm(out - lin) / moved)


class LinearizationRun(NamedTuple):
    """Gradient descent on a network and on its linearisation from the same start.

    Attributes (C checkpoints, n training and m test points, outputs ``(n, k)``):
      steps: (C,) steps taken at each checkpoint (0 = initialisation).
      network_train, linear_train: (C, n, k) outputs of the network and of the
        linear model, each trained by its own gradient descent.
      network_test, linear_test: (C, m, k), or None without ``x_test``.
      loss_network, loss_linear: (C,) ``½ Σᵢ ‖f(xᵢ) − yᵢ‖²``.
      taylor_remainder: (C,) RMS over training outputs of ``f(θ_t) − f_lin(θ_t)``
        at the network's own parameters θ_t (the part of its movement that is
        not linear).
      params_network, params_linear: the parameters after the last step.
    """

    steps: np.ndarray
    network_train: np.ndarray
    linear_train: np.ndarray
    network_test: Optional[np.ndarray]
    linear_test: Optional[np.ndarray]
    loss_network: np.ndarray
    loss_linear: np.ndarray
    taylor_remainder: np.ndarray
    params_network: Any
    params_linear: Any

    @property
    def train_gap(self) -> np.ndarray:
        """(C,) RMS distance between the network's and the linear model's training outputs."""
        return np.sqrt(np.mean((self.network_train - self.linear_train) ** 2, axis=(1, 2)))

    @property
    def test_gap(self) -> Optional[np.ndarray]:
        """(C,) the same on the test inputs (None without them)."""
        if self.network_test is None:
            return None
        return np.sqrt(np.mean((self.network_test - self.linear_test) ** 2, axis=(1, 2)))


def _checkpoint_list(checkpoints, steps, where):
    if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"{where}: `steps` must be an integer >= 0, got {steps!r}.")
    if checkpoints is None:
        grid = np.unique(np.round(np.geomspace(1, max(steps, 1), num=min(20, max(steps, 1)))).astype(int))
        checkpoints = [0] + [int(c) for c in grid if c <= steps]
    cps = sorted({int(c) for c in checkpoints})
    if not cps or cps[0] < 0 or cps[-1] > steps:
        raise ValueError(f"{where}: `checkpoints` must lie in [0, steps={steps}]; got {checkpoints!r}.")
    return cps


def _linear_model(apply_fn, p, p0, x):
    """``f(θ₀, x) + J(θ₀, x)(θ − θ₀)``, by one JVP."""
    delta = jax.tree_util.tree_map(jnp.subtract, p, p0)
    f0, df = jax.jvp(lambda q: apply_fn(q, x), (p0,), (delta,))
    return f0 + df


@functools.partial(jax.jit, static_argnames=("apply_fn",))
def _network_outputs(p, x, *, apply_fn):
    return apply_fn(p, x)


@functools.partial(jax.jit, static_argnames=("apply_fn",))
def _linear_outputs(p, p0, x, *, apply_fn):
    return _linear_model(apply_fn, p, p0, x)


@dataclasses.dataclass(frozen=True)
class _SquaredLoss:
    """``½ Σᵢ ‖g(θ, xᵢ) − yᵢ‖²`` (:func:`ntkcourse.training.mse_loss`) of the network (``linear=False``)
    or of its linearisation at ``θ₀``: a hashable objective for :func:`ntkcourse.training.optimizer_steps`,
    so one compilation serves every start, data set and learning rate of the same network.
    """

    apply_fn: Callable
    linear: bool

    def __call__(self, p, p0, x, y):
        out = _linear_model(self.apply_fn, p, p0, x) if self.linear else self.apply_fn(p, x)
        return mse_loss(out, y)


def train_network_and_linearization(
    f: Callable,
    params0,
    x_train,
    y_train,
    learning_rate: float,
    steps: int,
    x_test=None,
    checkpoints: Optional[Sequence[int]] = None,
) -> LinearizationRun:
    r"""Full-batch gradient descent on ``f`` and on ``linearize(f, params0)``, from ``params0``.

    Both minimise :math:`\tfrac12\sum_i \lVert g(\theta, x_i) - y_i\rVert^2` with the
    same learning rate and number of steps. In the NTK parameterisation the
    gap between the two shrinks like :math:`1/\sqrt{\text{width}}` at a fixed
    learning rate (Lee et al. 2019, Theorem 2.1); the linear model's outputs are
    those of kernel regression with the empirical NTK (see the module docstring).

    Args:
      f: ``f(params, x)`` or a stax triple; outputs ``(n, k)`` (or ``(n,)``).
      params0: initial parameters (the linearisation point).
      x_train, y_train: training inputs ``(n, ...)`` and targets, the shape of
        ``f(params0, x_train)``.
      learning_rate: η; stable for η < 2 / λ_max(Θ̂).
      steps: number of gradient steps.
      x_test: optional inputs on which to record both models.
      checkpoints: the steps at which to record (default: about 20, log-spaced, and 0).
    """
    where = "train_network_and_linearization"
    apply_fn = _as_function(f, where)
    if not isinstance(learning_rate, numbers.Real) or not math.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"{where}: `learning_rate` must be a finite number > 0, got {learning_rate!r}.")
    cps = _checkpoint_list(checkpoints, steps, where)
    x_train = jnp.asarray(x_train)
    y_train = jnp.asarray(y_train)
    out0 = jax.eval_shape(lambda p: apply_fn(p, x_train), params0)
    if tuple(out0.shape) != tuple(y_train.shape):
        if out0.ndim == 2 and out0.shape[1] == 1 and y_train.shape == out0.shape[:1]:
            y_train = y_train[:, None]
        else:
            raise ValueError(
                f"{where}: `y_train` has shape {tuple(y_train.shape)}, but f(params0, x_train) has shape "
                f"{tuple(out0.shape)}."
            )
    y_train = y_train.astype(out0.dtype)
    x_test_ = None if x_test is None else jnp.asarray(x_test)
    net = functools.partial(_network_outputs, apply_fn=apply_fn)
    lin = functools.partial(_linear_outputs, apply_fn=apply_fn)
    advance_net = functools.partial(optimizer_steps, objective=_SquaredLoss(apply_fn, False))
    advance_lin = functools.partial(optimizer_steps, objective=_SquaredLoss(apply_fn, True))

    def as2d(a):
        a = np.asarray(a, dtype=np.float64)
        return a.reshape(a.shape[0], -1)

    rec = {k: [] for k in ("nt", "lt", "ns", "ls", "lossn", "lossl", "rem")}
    # Both models take the same steps: plain gradient descent θ ← θ − η∇L (training.gradient_descent).
    optimizer, state_net = gradient_descent(params0, learning_rate, out0.dtype)
    _, state_lin = gradient_descent(params0, learning_rate, out0.dtype)
    p_net, p_lin = params0, params0
    done = 0
    for c in cps:
        p_net, state_net = advance_net(p_net, state_net, c - done, params0, x_train, y_train, optimizer=optimizer)
        p_lin, state_lin = advance_lin(p_lin, state_lin, c - done, params0, x_train, y_train, optimizer=optimizer)
        done = c
        net_tr, lin_tr = as2d(net(p_net, x_train)), as2d(lin(p_lin, params0, x_train))
        rec["nt"].append(net_tr)
        rec["lt"].append(lin_tr)
        if x_test_ is not None:
            rec["ns"].append(as2d(net(p_net, x_test_)))
            rec["ls"].append(as2d(lin(p_lin, params0, x_test_)))
        rec["lossn"].append(0.5 * float(np.sum((net_tr - as2d(y_train)) ** 2)))
        rec["lossl"].append(0.5 * float(np.sum((lin_tr - as2d(y_train)) ** 2)))
        rem = net_tr - as2d(lin(p_net, params0, x_train))
        rec["rem"].append(float(np.sqrt(np.mean(rem**2))))
    return LinearizationRun(
        steps=np.asarray(cps),
        network_train=np.stack(rec["nt"]),
        linear_train=np.stack(rec["lt"]),
        network_test=np.stack(rec["ns"]) if x_test_ is not None else None,
        linear_test=np.stack(rec["ls"]) if x_test_ is not None else None,
        loss_network=np.asarray(rec["lossn"]),
        loss_linear=np.asarray(rec["lossl"]),
        taylor_remainder=np.asarray(rec["rem"]),
        params_network=p_net,
        params_linear=p_lin,
    )


class _CallableModule(types.ModuleType):
    """This module, callable as its :func:`linearize` function: neural-tangents
    users write ``nt.linearize(f, params)`` after ``import ntkcourse as nt``,
    where ``ntkcourse.linearize`` is this module.
    """

    def __call__(self, f, params):
        return linearize(f, params)


sys.modules[__name__].__class__ = _CallableModule
