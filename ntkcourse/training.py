"""Training finite networks (``ntkcourse.stax`` or any JAX function) on the squared loss, with optax.

The loss is the one of :mod:`ntkcourse.dynamics`, so that a training run and the
closed-form prediction describe the same thing:

    ``L(θ) = ½ Σᵢ ‖f(xᵢ; θ) − yᵢ‖² + ½ ρ ‖θ − θ₀‖²``   (a sum over the n points).

With ``optax.sgd(η)`` and full batches, ``s`` steps correspond to the closed
form ``gradient_descent_predictor(Θ, y, η)(s)`` and, for small ``η``, to
``gradient_flow_predictor(Θ, y, learning_rate=η)(s)`` (Lee et al. 2019,
:cite:`lee2019wide`: a wide network trained this way stays close to its
linearisation, with a gap that shrinks like ``1/√width``).

Mini-batches of size ``b`` use ``(n/b) · ½ Σ_{i ∈ batch} ‖f(xᵢ) − yᵢ‖²`` (plus
the ridge), an unbiased estimate of the full loss and of its gradient, so the
learning rate means the same thing as in full-batch training. Each epoch is a
fresh random permutation (from ``key``) cut into ``⌊n/b⌋`` batches; the
remainder is skipped in that epoch.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from ._progress import progress_bar

__all__ = ["TrainingResult", "train_network", "mse_loss"]


class TrainingResult(NamedTuple):
    """Trajectory of a training run, recorded at ``steps`` (C checkpoints).

    Attributes:
      steps: ``(C,)`` int, optimiser steps taken at each checkpoint (0 = initialisation).
      times: ``(C,)`` float or None, ``learning_rate · steps`` when the learning rate is known
        (the time of ``gradient_flow_predictor(..., learning_rate=1)``).
      train_outputs: ``(C, n)`` or ``(C, n, k)``, network outputs on ``x_train``
        (shape of ``y_train`` per checkpoint).
      test_outputs: ``(C, m)`` or ``(C, m, k)``, or None without ``x_test``.
      loss: ``(C,)``, full-batch ``½Σᵢ‖f(xᵢ) − yᵢ‖²`` on the training set (without the ridge term).
      weight_change: ``(C,)``, ``‖θ_s − θ₀‖ / ‖θ₀‖`` over all parameters.
      kernels: ``(C, …)`` array or list, or None, ``ntk_fn(params, x_train)`` at each checkpoint.
      params: the parameters after the last step.
    """

    steps: np.ndarray
    times: np.ndarray | None
    train_outputs: np.ndarray
    test_outputs: np.ndarray | None
    loss: np.ndarray
    weight_change: np.ndarray
    kernels: Any
    params: Any


def mse_loss(outputs, targets):
    """``½ Σ (outputs − targets)²`` — the package's loss convention (sum, not mean)."""
    return 0.5 * jnp.sum((outputs - targets) ** 2)


# One default optimiser object for every call, with the learning rate in its state: the jitted step
# below is cached on the optimiser's identity, so a fresh optax.sgd(η) per call would recompile.
_DEFAULT_SGD = optax.inject_hyperparams(optax.sgd)(learning_rate=0.0)


def _network_outputs(apply_fn, params, inputs, n_outputs):
    out = apply_fn(params, inputs)
    if out.ndim != 2 or out.shape[1] != n_outputs:
        raise ValueError(
            f"apply_fn returned outputs of shape {out.shape}; expected (n, {n_outputs}) to match y_train."
        )
    return out


@functools.partial(jax.jit, static_argnames=("apply_fn", "optimizer", "with_ridge"))
def _step(params, state, x, y, idx, params0, scale, rho, *, apply_fn, optimizer, with_ridge):
    """One optimiser step on ``scale · ½Σ_batch‖f − y‖² (+ ½ρ‖θ − θ₀‖²)``; ``idx=None`` is the full batch."""
    xb, yb = (x, y) if idx is None else (x[idx], y[idx])

    def objective(p):
        fit = scale * mse_loss(_network_outputs(apply_fn, p, xb, yb.shape[1]), yb)
        if not with_ridge:
            return fit
        diff, _ = ravel_pytree(jax.tree_util.tree_map(jnp.subtract, p, params0))
        return fit + 0.5 * rho * jnp.sum(diff**2)

    updates, state = optimizer.update(jax.grad(objective)(params), state, params)
    return optax.apply_updates(params, updates), state


@functools.partial(jax.jit, static_argnames=("apply_fn",))
def _record(params, x, x_test, y, flat0, *, apply_fn):
    """Outputs on train (and test) inputs, full-batch loss and ‖θ − θ₀‖/‖θ₀‖."""
    f_train = _network_outputs(apply_fn, params, x, y.shape[1])
    f_test = None if x_test is None else _network_outputs(apply_fn, params, x_test, y.shape[1])
    flat, _ = ravel_pytree(params)
    return f_train, f_test, mse_loss(f_train, y), jnp.linalg.norm(flat - flat0) / jnp.linalg.norm(flat0)


def _checkpoints(checkpoints, steps):
    if checkpoints is None:
        return np.unique(np.linspace(0, steps, min(steps, 100) + 1).round().astype(int))
    arr = np.asarray(checkpoints)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"checkpoints must be a non-empty 1-D sequence of step numbers; received shape {arr.shape}.")
    if not np.all(arr == np.round(arr)) or arr.min() < 0 or arr.max() > steps:
        raise ValueError(
            f"checkpoints must be whole numbers in [0, steps = {steps}]; "
            f"received values from {arr.min()} to {arr.max()}."
        )
    return np.unique(arr.astype(int))


def train_network(
    apply_fn: Callable,
    params,
    x_train,
    y_train,
    *,
    steps: int,
    learning_rate: float | None = None,
    optimizer: optax.GradientTransformation | None = None,
    x_test=None,
    batch_size: int | None = None,
    key=None,
    checkpoints=None,
    ntk_fn: Callable | None = None,
    ridge: float = 0.0,
    float64: bool = False,
    progress: bool | None = None,
) -> TrainingResult:
    """Train ``apply_fn(params, x)`` on ``½Σᵢ‖f(xᵢ) − yᵢ‖² + ½ρ‖θ − θ₀‖²`` and record its trajectory.

    Update: ``θ ← optax.apply_updates(θ, optimizer.update(∇L(θ), state))``, with
    ``optimizer = optax.sgd(learning_rate)`` by default (plain gradient descent,
    ``θ ← θ − η∇L``); ``optax.sgd(η, momentum=μ)`` is the heavy-ball method of
    :func:`ntkcourse.dynamics.gradient_descent_predictor`. See the module
    docstring for the loss and mini-batch conventions (Lee et al. 2019 for the
    comparison with the kernel prediction).

    Args:
      apply_fn: a finite network, e.g. from ``stax.serial(...)``.
      params: its parameters (from its ``init_fn``).
      x_train: ``(n, …)``.
      y_train: ``(n,)`` or ``(n, k)`` (a network output ``(n, 1)`` matches y ``(n,)``).
      steps: number of optimiser steps (``≥ 0``).
      learning_rate: step size of the default ``optax.sgd``; with a custom
        ``optimizer`` it is optional and only sets ``TrainingResult.times``.
      x_test: optional test inputs, whose outputs are recorded too.
      batch_size: None for full batch, else ``1 ≤ b ≤ n`` (needs ``key``).
      key: ``jax.random`` key for the mini-batch order.
      checkpoints: step numbers to record (default: 101 evenly spaced, or every step if fewer).
      ntk_fn: optional ``ntk_fn(params, x_train)`` (e.g. an empirical NTK) evaluated at the checkpoints.
      ridge: ``ρ ≥ 0``, weight decay towards the initial parameters.
      float64: run in double precision (inside ``jax.enable_x64``), casting params and data.
      progress: a progress bar over the steps: ``None`` (default) shows it only on a terminal and
        for runs longer than 2 s, ``True`` always, ``False`` never (see ``ntkcourse._progress``).
    """
    n_steps = int(steps)
    if n_steps < 0 or n_steps != steps:
        raise ValueError(f"steps must be a non-negative integer; received {steps!r}.")
    if optimizer is None:
        if learning_rate is None:
            raise ValueError("learning_rate is required with the default optimizer optax.sgd; received None.")
    if learning_rate is not None:
        lr = float(learning_rate)
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"learning_rate must be a positive finite number; received {learning_rate!r}.")
    rho = float(ridge)
    if not (np.isfinite(rho) and rho >= 0):
        raise ValueError(f"ridge must be a non-negative finite number; received {ridge!r}.")
    marks = _checkpoints(checkpoints, n_steps)

    with jax.enable_x64(bool(float64)):
        dtype = jnp.float64 if float64 else jnp.float32
        cast = lambda a: jnp.asarray(a, dtype=dtype)  # noqa: E731
        x = cast(x_train)
        y = np.asarray(y_train)
        if y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"y_train must have shape (n,) or (n, k) with n = {x.shape[0]} (the number of x_train rows); "
                f"received shape {y.shape}."
            )
        y_was_1d = y.ndim == 1
        y2 = cast(y.reshape(y.shape[0], -1))
        n = x.shape[0]
        xt = None if x_test is None else cast(x_test)
        if batch_size is not None:
            b = int(batch_size)
            if not 1 <= b <= n or b != batch_size:
                raise ValueError(f"batch_size must be an integer in [1, n = {n}] or None; received {batch_size!r}.")
            if key is None and b < n:
                raise ValueError("key (a jax.random key) is required for mini-batches (batch_size < n); received None.")
        else:
            b = n
        params0 = jax.tree_util.tree_map(cast, params)
        flat0, _ = ravel_pytree(params0)
        norm0 = float(jnp.linalg.norm(flat0))
        if optimizer is None:
            opt = _DEFAULT_SGD
            state = opt.init(params0)
            state = state._replace(hyperparams={**state.hyperparams, "learning_rate": jnp.asarray(lr, dtype)})
        else:
            opt = optimizer
            state = opt.init(params0)
        step_kwargs = dict(apply_fn=apply_fn, optimizer=opt, with_ridge=rho > 0)
        scale = jnp.asarray(n / b, dtype)
        rho_arr = jnp.asarray(rho, dtype)

        def to_numpy_outputs(a):
            a = np.asarray(a, dtype=np.float64)
            return a[:, 0] if y_was_1d else a

        p = params0
        rec_train, rec_test, rec_loss, rec_change, rec_kernels = [], [], [], [], []
        perm, cursor = None, n
        bar = progress_bar(n_steps, "training", "step", progress)
        mark_iter = iter(marks)
        next_mark = next(mark_iter)
        try:
            for s in range(n_steps + 1):
                if s == next_mark:
                    f_train, f_test, loss, change = _record(p, x, xt, y2, flat0, apply_fn=apply_fn)
                    rec_train.append(to_numpy_outputs(f_train))
                    rec_test.append(None if f_test is None else to_numpy_outputs(f_test))
                    rec_loss.append(float(loss))
                    rec_change.append(float(change) if norm0 > 0 else np.nan)
                    if ntk_fn is not None:
                        rec_kernels.append(np.asarray(ntk_fn(p, x)))
                    next_mark = next(mark_iter, None)
                    bar.set_postfix(loss=f"{float(loss):.3g}", refresh=False)
                if s == n_steps:
                    break
                idx = None
                if b < n:
                    if cursor + b > n:
                        key, sub = jax.random.split(key)
                        perm, cursor = np.asarray(jax.random.permutation(sub, n)), 0
                    idx = perm[cursor:cursor + b]
                    cursor += b
                p, state = _step(p, state, x, y2, idx, params0, scale, rho_arr, **step_kwargs)
                bar.update(1)
        finally:
            bar.close()

    kernels = None
    if ntk_fn is not None:
        shapes = {k.shape for k in rec_kernels}
        kernels = np.stack(rec_kernels) if len(shapes) == 1 else rec_kernels
    return TrainingResult(
        steps=marks,
        times=None if learning_rate is None else float(learning_rate) * marks.astype(np.float64),
        train_outputs=np.stack(rec_train),
        test_outputs=None if xt is None else np.stack(rec_test),
        loss=np.asarray(rec_loss),
        weight_change=np.asarray(rec_change),
        kernels=kernels,
        params=p,
    )
