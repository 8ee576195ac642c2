r"""neural-tangents' ``nt.predict`` names, arguments and conventions, over
:mod:`ntkcourse.dynamics` and :mod:`ntkcourse.inference`.

The formulas live in those two modules (gradient flow on the linearised
network, GP posterior, infinite ensembles; Jacot et al. 2018, Lee et al.
2019); this module only translates neural-tangents' (Novak et al. 2020)
conventions to theirs:

* **Loss and learning rate.** neural-tangents trains on
  :math:`\frac{1}{2\,|y|}\sum (f - y)^2`, a mean over the ``y_train.size``
  entries, and measures time in units of ``learning_rate``: the outputs
  follow :math:`\dot f = -\frac{\eta}{|y|}\Theta (f - y)`. The package's
  dynamics use a sum, so ``learning_rate`` :math:`\eta` here is
  :math:`\eta / |y|` there.
* **``diag_reg``** is relative by default: the kernel used is
  :math:`\Theta + \lambda \frac{\operatorname{tr}\Theta}{n} I`, or
  :math:`\Theta + \lambda I` with ``diag_reg_absolute_scale=True``; the
  regularised kernel replaces the kernel in every formula (neural-tangents'
  ``_add_diagonal_regularizer``).
* **``t=None``** is :math:`t = \infty`.
* **``trace_axes``**: only the default ``(-1,)`` (one kernel shared by every
  output column, kernels of shape ``(n, n)``) is implemented; others raise.

Results are JAX arrays in the current mode's float dtype, as there (the
computation itself runs in float64 NumPy); times ``t`` may have any shape
(leading axes of the outputs, as there).

**Under the caller's ``jit``, ``vmap`` or ``grad``** (kernels, targets,
times, test inputs or ``diag_reg`` traced) the same functions of
:mod:`ntkcourse.dynamics` and :mod:`ntkcourse.inference` compute with
``jax.numpy`` (:mod:`ntkcourse.array_module`): there is no second copy of
the formulas here. What those modules cannot check on traced values (finite
and positive-definite kernels, non-negative times) is documented there.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import ode

from . import dynamics, inference, spectral
from .array_module import HOST, ArrayModule, array_module, is_traced

__all__ = [
    "Gaussian",
    "ODEState",
    "gradient_descent",
    "gradient_descent_mse",
    "gradient_descent_mse_ensemble",
    "gp_inference",
    "max_learning_rate",
]

_GETS = ("nngp", "ntk")


class Gaussian(NamedTuple):
    """A ``(mean, covariance)`` pair, as neural-tangents' ``predict.Gaussian``."""

    mean: np.ndarray
    covariance: Optional[np.ndarray]


def as_jax(tree):
    """NumPy results as JAX arrays of the current mode's float dtype (float64 in
    64-bit mode, float32 otherwise), as neural-tangents returns them (so that
    ``.block_until_ready()`` and ``jnp`` code work on them).
    """
    return jax.tree_util.tree_map(jnp.asarray, tree)


def _check_trace_axes(where: str, trace_axes, y_train) -> None:
    axes = tuple(trace_axes) if isinstance(trace_axes, (list, tuple)) else (trace_axes,)
    ndim = np.ndim(y_train)
    if ndim != 2 or tuple(a % ndim for a in axes) != (1,):
        raise NotImplementedError(
            f"{where}: only trace_axes=(-1,) with y_train of shape (n, k) is implemented (one kernel (n, n) shared "
            f"by the k outputs); got trace_axes={trace_axes!r} and y_train of shape {np.shape(y_train)}."
        )


def _matrix(where: str, name: str, k, am: ArrayModule = HOST):
    arr = am.numpy.asarray(k, dtype=am.float)
    if arr.ndim != 2:
        raise ValueError(f"{where}: `{name}` must be a kernel matrix of shape (n, n) or (m, n); got shape {arr.shape}.")
    return arr


def regularised(k_train_train, diag_reg: float, diag_reg_absolute_scale: bool = False, where: str = "predict"):
    r"""``K + diag_reg * s * I`` with ``s = tr(K)/n`` (relative, the default) or ``s = 1``.

    On traced values (inside ``jit``/``vmap``/``grad``) the same sum in
    ``jax.numpy``; ``diag_reg`` is checked (finite, ``>= 0``) unless it is traced.
    """
    k = _matrix(where, "k_train_train", k_train_train, array_module(k_train_train, diag_reg))
    reg = diag_reg
    if not is_traced(diag_reg):
        reg = float(diag_reg)
        if not np.isfinite(reg) or reg < 0:
            raise ValueError(f"{where}: `diag_reg` must be a finite number >= 0; got {diag_reg!r}.")
    scale = 1.0 if diag_reg_absolute_scale else k.trace() / k.shape[0]
    return k + reg * scale * np.eye(k.shape[0])


def _times(t, learning_rate: float, where: str):
    """(flat array of times in the package's units of ``learning_rate * t``, shape of ``t``)."""
    if t is None:
        return np.array([np.inf]), None
    am = array_module(t)
    arr = am.numpy.asarray(t, dtype=am.float)
    if arr.size == 0:
        raise ValueError(f"{where}: `t` must hold at least one time; got {t!r}.")
    return arr.reshape(-1) * (learning_rate if is_traced(learning_rate) else float(learning_rate)), arr.shape


def _unflat(values, shape):
    """Put the leading axis of flat times back into the shape of ``t`` (dropped for ``t=None``)."""
    if shape is None:
        return values[0]
    return values.reshape(tuple(shape) + values.shape[1:])


def gradient_descent_mse(k_train_train, y_train, learning_rate: float = 1.0, diag_reg: float = 0.0,
                         diag_reg_absolute_scale: bool = False, trace_axes=(-1,)) -> Callable:
    r"""Outputs of a network trained by gradient flow on the mean squared error.

    :math:`f_t = f_0 + (I - e^{-\eta t \tilde\Theta/|y|})(y - f_0)` on the
    training inputs and
    :math:`f_t^* = f_0^* + \Theta_{*X}\tilde\Theta^{-1}(I - e^{-\eta t \tilde\Theta/|y|})(y - f_0)`
    on test inputs, with :math:`\tilde\Theta` the regularised kernel
    (Jacot et al. 2018; Lee et al. 2019, eqs. 9–10; neural-tangents'
    conventions in the module docstring). Computed by
    :func:`ntkcourse.dynamics.gradient_flow_predictor`, on the host or, for
    traced arguments, inside the caller's transformations.

    Returns:
      ``predict_fn(t=None, fx_train_0=0., fx_test_0=None, k_test_train=None)``:
      the train outputs, or ``(train, test)`` when ``fx_test_0`` is given
      (with ``k_test_train``), or only the test outputs when
      ``fx_train_0=None``; leading axes of the shape of ``t``.
    """
    where = "gradient_descent_mse"
    _check_trace_axes(where, trace_axes, y_train)
    am = array_module(y_train)
    y = am.numpy.asarray(y_train, dtype=am.float)
    k = regularised(k_train_train, diag_reg, diag_reg_absolute_scale, where)
    flow = dynamics.gradient_flow_predictor(k, y, learning_rate=1.0 / y.size)

    def predict_fn(t=None, fx_train_0=0.0, fx_test_0=None, k_test_train=None):
        if fx_test_0 is not None and k_test_train is None:
            raise ValueError(f"{where}: `fx_test_0` was given without `k_test_train`; expected both or neither.")
        am = array_module(y, t, fx_train_0, fx_test_0, k_test_train)
        xp = am.numpy
        times, shape = _times(t, learning_rate, where)
        f0 = np.zeros(y.shape) if fx_train_0 is None else xp.broadcast_to(xp.asarray(fx_train_0, am.float), y.shape)
        kt = None if fx_test_0 is None else _matrix(where, "k_test_train", k_test_train, am)
        f0_test = None
        if kt is not None:
            f0_test = xp.broadcast_to(xp.asarray(fx_test_0, am.float), (kt.shape[0],) + y.shape[1:])
        out = flow(times, kt, f0, f0_test)
        train = None if fx_train_0 is None else _unflat(out.train, shape)
        test = None if kt is None else _unflat(out.test, shape)
        if train is not None and test is not None:
            return as_jax((train, test))
        return as_jax(test if train is None else train)

    return predict_fn


def _names(where: str, get):
    names = _GETS if get is None else ((get,) if isinstance(get, str) else tuple(get))
    if not names or any(g not in _GETS for g in names):
        raise ValueError(f"{where}: `get` must be 'nngp', 'ntk', a tuple of them, or None; got {get!r}.")
    return names, isinstance(get, str)


def _pack(names, single, values):
    if single:
        return values[names[0]]
    return NamedTuple("Gaussians", [(n, object) for n in names])(*(values[n] for n in names))


def _field(kernel, name: str, where: str, what: str):
    if isinstance(kernel, (np.ndarray,)) or hasattr(kernel, "shape"):
        return kernel
    value = getattr(kernel, name, None)
    if value is None:
        raise ValueError(f"{where}: `{what}` has no `{name}` kernel; compute it with get including '{name}'.")
    return value


def gp_inference(k_train_train, y_train, diag_reg: float = 0.0, diag_reg_absolute_scale: bool = False,
                 trace_axes=(-1,)) -> Callable:
    r"""Posterior of the NNGP (exact Bayesian inference in an infinitely wide
    network) and the :math:`t\to\infty` distribution of an infinite ensemble
    trained by gradient flow (``'ntk'``), as neural-tangents' ``gp_inference``.

    ``'nngp'``: mean :math:`K_{*X}\tilde K^{-1}y`, covariance
    :math:`K_{**} - K_{*X}\tilde K^{-1}K_{X*}`
    (:func:`ntkcourse.inference.gp_posterior`, with the relative regulariser
    as noise variance). ``'ntk'``: Lee et al. 2019 eqs. 15–16 at
    :math:`t = \infty` (:func:`ntkcourse.inference.infinite_ensemble_predictor`),
    which needs the NNGP as well for the covariance. Both run on the host or,
    for traced arguments, inside the caller's transformations.

    Returns:
      ``predict_fn(get=None, k_test_train=None, k_test_test=None)``: a
      :class:`Gaussian` per name (``covariance`` only when ``k_test_test`` is
      given), the means alone without ``k_test_test``; a named tuple for
      several names. Kernels are arrays or objects with ``nngp``/``ntk``.
    """
    where = "gp_inference"
    _check_trace_axes(where, trace_axes, y_train)
    y = y_train if is_traced(y_train) else np.asarray(y_train, dtype=np.float64)

    def reg(k):
        return regularised(k, diag_reg, diag_reg_absolute_scale, where)

    def predict_fn(get=None, k_test_train=None, k_test_test=None):
        names, single = _names(where, get)
        am = array_module(k_train_train, y, k_test_train, k_test_test, diag_reg)
        out = {}
        for g in names:
            k_dd = _field(k_train_train, g, where, "k_train_train")
            if k_test_train is None:
                cov = None if k_test_test is None else np.zeros((y.shape[0], y.shape[0]))
                out[g] = y if k_test_test is None else Gaussian(y, cov)
                continue
            k_td = _matrix(where, "k_test_train", _field(k_test_train, g, where, "k_test_train"), am)
            if g == "nngp":
                kss = None if k_test_test is None else _field(k_test_test, "nngp", where, "k_test_test")
                post = inference.gp_posterior(reg(k_dd), y, k_td, kss)
                mean, cov = post.mean, post.covariance
            else:
                nngp_dd = _field(k_train_train, "nngp", where, "k_train_train") if k_test_test is not None else k_dd
                nngp_td = _field(k_test_train, "nngp", where, "k_test_train") if k_test_test is not None else k_td
                kss = np.zeros(k_td.shape[0]) if k_test_test is None else _field(k_test_test, "nngp", where,
                                                                                 "k_test_test")
                res = inference.infinite_ensemble_predictor(reg(k_dd), nngp_dd, y, learning_rate=1.0)(
                    np.inf, k_td, nngp_td, kss)
                mean, cov = res.test_mean, res.test_covariance
            out[g] = mean if k_test_test is None else Gaussian(mean, cov)
        return as_jax(_pack(names, single, out))

    return predict_fn


def _is_arrays(value) -> bool:
    leaves = jax.tree_util.tree_leaves(value)
    return bool(leaves) and all(isinstance(v, (np.ndarray, jax.Array)) for v in leaves)


def _first(value):
    """The part of a keyword argument meant for ``x1`` (neural-tangents' split of ``(v1, v2)`` pairs)."""
    return value[0] if isinstance(value, tuple) and len(value) == 2 else value


def _same(a, b) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b) or (isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b))
    except (TypeError, ValueError):
        return False


def kernel_kwargs_for_test(train_kwargs: dict, test_kwargs: dict, where: str):
    """The keyword arguments of ``kernel_fn`` for the test-train and test-test
    kernels, neural-tangents' rule: the training ones (e.g. ``mask_constant``),
    overridden by those given to ``predict_fn``; a pair of arrays ``(v1, v2)``
    (e.g. graph patterns) becomes (test's, train's) for the test-train kernel;
    other values must be the same for training and test inputs.

    Returns:
      ``(kwargs_test_train, kwargs_test_test)``.
    """
    td, tt = dict(train_kwargs), dict(train_kwargs)
    for name, v_tt in test_kwargs.items():
        v_td = v_tt
        if name in train_kwargs:
            v_dd = train_kwargs[name]
            if _is_arrays(v_dd) and _is_arrays(v_tt):
                pair = all(isinstance(v, tuple) and len(v) == 2 for v in (v_dd, v_tt))
                v_td = (_first(v_tt), _first(v_dd)) if pair else v_tt
            elif not _same(v_dd, v_tt):
                raise ValueError(
                    f"{where}: the keyword argument `{name}` of kernel_fn is {v_dd!r} for the training inputs and "
                    f"{v_tt!r} for the test inputs; the test-train kernel needs one value."
                )
        td[name], tt[name] = v_td, v_tt
    return td, tt


def gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, learning_rate: float = 1.0, get=None,
                                  diag_reg: float = 0.0, diag_reg_absolute_scale: bool = False,
                                  trace_axes=(-1,), **kernel_fn_train_train_kwargs) -> Callable:
    r"""Mean and covariance of an infinite ensemble of infinitely wide networks
    trained by gradient flow on the mean squared error, from their ``kernel_fn``
    (Lee et al. 2019, eqs. 15–16; neural-tangents' function of that name).

    With ``'ntk'`` the networks train all layers (NTK dynamics, NNGP prior);
    with ``'nngp'`` the NNGP is both (training the last layer only). Computed by
    :func:`ntkcourse.inference.infinite_ensemble_predictor` with the
    regularised kernel and :math:`\eta/|y|` (module docstring), on the host
    or, for traced arguments, inside the caller's transformations.

    Keyword arguments (``**kernel_fn_train_train_kwargs``, e.g.
    ``mask_constant``) go to every ``kernel_fn`` call, those of ``predict_fn``
    override them for the test inputs (:func:`kernel_kwargs_for_test`), as in
    neural-tangents.

    Returns:
      ``predict_fn(t=None, x_test=None, get=None, compute_cov=False, **kwargs)``:
      for each name, the mean, or a :class:`Gaussian` when ``compute_cov``; on
      ``x_test`` (or on the training inputs when ``x_test=None``); leading
      axes of the shape of ``t``.
    """
    where = "gradient_descent_mse_ensemble"
    _check_trace_axes(where, trace_axes, y_train)
    y = y_train if is_traced(y_train) else np.asarray(y_train, dtype=np.float64)
    default_get = get
    cache = {}

    def train_kernels():
        if "dd" in cache:
            return cache["dd"]
        k = kernel_fn(x_train, None, ("nngp", "ntk"), **kernel_fn_train_train_kwargs)
        if not is_traced(k):  # a kernel computed inside the caller's trace must not outlive it
            cache["dd"] = k
        return k

    def predict_fn(t=None, x_test=None, get=None, compute_cov=False, **kernel_fn_test_test_kwargs):
        names, single = _names(where, default_get if get is None else get)
        k_dd = train_kernels()
        k_td = nngp_tt = None
        if x_test is not None:
            kw_td, kw_tt = kernel_kwargs_for_test(kernel_fn_train_train_kwargs, kernel_fn_test_test_kwargs, where)
            k_td = kernel_fn(x_test, x_train, ("nngp", "ntk"), **kw_td)
            nngp_tt = kernel_fn(x_test, None, "nngp", **kw_tt)
        times, shape = _times(t, learning_rate, where)
        out = {}
        for g in names:
            theta = regularised(getattr(k_dd, g), diag_reg, diag_reg_absolute_scale, where)
            # Training the last layer only: the regularised NNGP is the prior too (as in neural-tangents).
            prior = theta if g == "nngp" else k_dd.nngp
            ens = inference.infinite_ensemble_predictor(theta, prior, y, learning_rate=1.0 / y.size)
            if x_test is None:
                res = ens(times)
                mean, cov = res.train_mean, res.train_covariance
            else:
                res = ens(times, getattr(k_td, g), k_td.nngp, nngp_tt)
                mean, cov = res.test_mean, res.test_covariance
            mean = _unflat(mean, shape)
            out[g] = Gaussian(mean, _unflat(cov, shape)) if compute_cov else mean
        return as_jax(_pack(names, single, out))

    return predict_fn


def max_learning_rate(ntk_train_train, y_train_size: Optional[int] = None, momentum: float = 0.0,
                      eps: float = 1e-12) -> float:
    r"""Largest stable learning rate of (momentum) gradient descent on the mean squared error,
    in neural-tangents' units: :math:`2(1+\mu)\,|y| / (\lambda_{\max} + \epsilon)`.

    This is :func:`ntkcourse.spectral.max_learning_rate` (loss summed over
    the points) times ``y_train_size``, since the loss here is a mean over the
    ``y_train_size`` entries (default: the number of rows of the kernel, as
    there).
    """
    k = _matrix("max_learning_rate", "ntk_train_train", ntk_train_train)
    size = k.shape[0] if y_train_size is None else int(y_train_size)
    if size < 1:
        raise ValueError(f"max_learning_rate: `y_train_size` must be a positive integer, got {y_train_size!r}.")
    mu = float(momentum)
    if not 0.0 <= mu < 1.0:
        raise ValueError(f"max_learning_rate: `momentum` must be in [0, 1), got {momentum!r}.")
    top = spectral.kernel_eigendecomposition(k, name="ntk_train_train", where="max_learning_rate").eigenvalues[0]
    return float(2.0 * (1.0 + mu) * size / (top + float(eps)))


class ODEState(NamedTuple):
    """Outputs (and, with momentum, their velocities) in :func:`gradient_descent`'s ODE."""

    fx_train: Optional[jnp.ndarray] = None
    fx_test: Optional[jnp.ndarray] = None
    qx_train: Optional[jnp.ndarray] = None
    qx_test: Optional[jnp.ndarray] = None


def gradient_descent(loss: Callable, k_train_train, y_train, learning_rate: float = 1.0,
                     momentum: Optional[float] = None, trace_axes=(-1,)) -> Callable:
    r"""Outputs of a network trained by gradient flow on any loss, by an ODE solver
    (neural-tangents' ``predict.gradient_descent``).

    In function space (Lee et al. 2019) the outputs follow
    :math:`\dot f = -\Theta\, \nabla_f \ell(f, y)` on the training inputs and
    :math:`\dot f_* = -\Theta_{*X} \nabla_f \ell(f, y)` on test inputs, in time
    units of ``learning_rate`` (``t -> learning_rate * t``), solved by
    ``jax.experimental.ode.odeint`` (Dormand–Prince, relative tolerance 1.4e-8).
    With ``momentum`` :math:`\mu`, neural-tangents' continuous-time heavy ball:
    time in units of :math:`\sqrt{\eta}`, :math:`\dot f = q`,
    :math:`\dot q = -\Theta \nabla_f \ell + \frac{\mu - 1}{\sqrt\eta} q`.

    Args:
      loss: ``loss(fx, y_hat) -> scalar``, e.g. ``0.5 * jnp.mean((fx - y_hat)**2)``.
      k_train_train: ``(n, n)`` kernel; y_train: ``(n, k)`` targets.

    Returns:
      ``predict_fn(t=None, fx_train_or_state_0=0., fx_test_0=None, k_test_train=None)``,
      as neural-tangents': train outputs, ``(train, test)``, or an
      :class:`ODEState` when one was passed; leading axes of the shape of ``t``.
    """
    where = "gradient_descent"
    _check_trace_axes(where, trace_axes, y_train)
    validation_lr = float(learning_rate)
    if not np.isfinite(validation_lr) or validation_lr <= 0:
        raise ValueError(f"{where}: `learning_rate` must be a finite number > 0; got {learning_rate!r}.")
    k_dd = jnp.asarray(_matrix(where, "k_train_train", k_train_train))
    y = jnp.asarray(y_train, k_dd.dtype)
    grad_loss = jax.grad(lambda fx: loss(fx, y))
    scale = validation_lr if momentum is None else validation_lr**0.5
    friction = None if momentum is None else (float(momentum) - 1.0) / scale

    def predict_fn(t=None, fx_train_or_state_0=0.0, fx_test_0=None, k_test_train=None):
        if fx_test_0 is not None and k_test_train is None:
            raise ValueError(f"{where}: `fx_test_0` was given without `k_test_train`; expected both or neither.")
        k_td = None if k_test_train is None else jnp.asarray(_matrix(where, "k_test_train", k_test_train))
        given_state = isinstance(fx_train_or_state_0, ODEState)
        state = fx_train_or_state_0 if given_state else ODEState(fx_train_or_state_0, fx_test_0)
        if state.fx_train is None:
            raise ValueError(f"{where}: the training outputs are needed to follow the dynamics; got None.")
        f_dd = jnp.broadcast_to(jnp.asarray(state.fx_train, k_dd.dtype), y.shape)
        f_td = None if k_td is None else jnp.broadcast_to(jnp.asarray(state.fx_test, k_dd.dtype),
                                                          (k_td.shape[0],) + y.shape[1:])
        if friction is not None:
            q_dd = jnp.zeros_like(f_dd) if state.qx_train is None else jnp.asarray(state.qx_train, k_dd.dtype)
            q_td = None if f_td is None else (jnp.zeros_like(f_td) if state.qx_test is None
                                              else jnp.asarray(state.qx_test, k_dd.dtype))
            start = ODEState(f_dd, f_td, q_dd, q_td)
        else:
            start = ODEState(f_dd, f_td)

        def rate(st, _):
            g = grad_loss(st.fx_train)
            force_dd = -k_dd @ g
            force_td = None if k_td is None else -k_td @ g
            if friction is None:
                return ODEState(force_dd, force_td)
            return ODEState(st.qx_train, st.qx_test, force_dd + friction * st.qx_train,
                            None if force_td is None else force_td + friction * st.qx_test)

        times = jnp.asarray(np.inf if t is None else t, k_dd.dtype) * scale
        shape = times.shape
        flat = times.reshape(-1)
        # odeint starts at the first time given: prepend 0 (or just below it when t[0] = 0).
        t0 = jnp.where(flat[0] == 0, -1e-24, 0.0).astype(flat.dtype)[None]
        path = ode.odeint(rate, start, jnp.concatenate([t0, flat]))
        path = jax.tree_util.tree_map(lambda a: a[1:].reshape(shape + a.shape[1:]), path)
        if given_state:
            return path
        if fx_test_0 is None:
            return path.fx_train
        return path.fx_train, path.fx_test

    return predict_fn
