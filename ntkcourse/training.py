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

from .progress import progress_bar
from .validation import fail, nonnegative, positive

_WHERE = "train_network"

__all__ = ["TrainingResult", "train_network", "mse_loss", "gradient_descent", "optimizer_update", "optimizer_steps"]


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


def gradient_descent(params, learning_rate, dtype=jnp.float32):
    """Plain gradient descent ``θ ← θ − η∇L`` as an optax optimiser and its initial state.

    The optimiser is ``optax.sgd`` with the learning rate held in its state
    (``optax.inject_hyperparams``), and it is the same object at every call: the
    compiled steps of :func:`train_network` and :func:`optimizer_steps`, cached
    on the optimiser, are reused for any learning rate.

    Args:
      params: the parameters to be trained (any pytree).
      learning_rate: η > 0.
      dtype: dtype of the learning rate in the state (that of the parameters).

    Returns:
      ``(optimizer, state)``.

    Example:
      >>> import jax.numpy as jnp
      >>> opt, state = gradient_descent({"w": jnp.ones(2)}, 0.5)
      >>> params, state = optimizer_update(lambda p: jnp.sum(p["w"] ** 2), opt, {"w": jnp.ones(2)}, state)
      >>> params["w"]  # 1 − 0.5 · 2
      Array([0., 0.], dtype=float32)
    """
    state = _DEFAULT_SGD.init(params)
    state = state._replace(hyperparams={**state.hyperparams, "learning_rate": jnp.asarray(learning_rate, dtype)})
    return _DEFAULT_SGD, state


def optimizer_update(objective: Callable, optimizer: optax.GradientTransformation, params, state, *args):
    """One optimiser step on ``objective(params, *args)``: the package's one update rule.

    ``θ ← optax.apply_updates(θ, u)`` with ``(u, state) = optimizer.update(∇_θ objective, state, θ)``.
    :func:`train_network` and the linearised training of
    :func:`ntkcourse.linearize.train_network_and_linearization` both step
    through this function.

    Returns:
      ``(params, state)`` after the step.
    """
    updates, state = optimizer.update(jax.grad(objective)(params, *args), state, params)
    return optax.apply_updates(params, updates), state


@functools.partial(jax.jit, static_argnames=("objective", "optimizer"))
def optimizer_steps(params, state, n, *args, objective: Callable, optimizer: optax.GradientTransformation):
    """``n`` steps of :func:`optimizer_update` in one compiled loop (``jax.lax.fori_loop``).

    ``objective`` and ``optimizer`` are static (hashable, e.g. a frozen
    dataclass and the optimiser of :func:`gradient_descent`): the compilation
    is reused by every call with the same pair and shapes; ``n`` and ``args``
    are traced, so new data, starts or step counts do not recompile.

    Returns:
      ``(params, state)`` after ``n`` steps.
    """

    def body(_, carry):
        return optimizer_update(objective, optimizer, carry[0], carry[1], *args)

    return jax.lax.fori_loop(0, n, body, (params, state))


def _network_outputs(apply_fn, params, inputs, n_outputs):
    out = apply_fn(params, inputs)
    if out.ndim != 2 or out.shape[1] != n_outputs:
        raise ValueError(
            f"{_WHERE}: `apply_fn` must return outputs of shape (n, {n_outputs}) to match y_train, "
            f"got shape {out.shape}."
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

    return optimizer_update(objective, optimizer, params, state)


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
        raise fail(_WHERE, "checkpoints", "a non-empty 1-D sequence of step numbers", checkpoints)
    if not np.all(arr == np.round(arr)) or arr.min() < 0 or arr.max() > steps:
        raise ValueError(
            f"{_WHERE}: `checkpoints` must be whole numbers in [0, steps = {steps}], "
            f"got values from {arr.min()} to {arr.max()}."
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
        for runs longer than 2 s, ``True`` always, ``False`` never (see ``ntkcourse.progress``).
    """
    n_steps = int(steps)
    if n_steps < 0 or n_steps != steps:
        raise fail(_WHERE, "steps", "an integer >= 0", steps)
    if optimizer is None:
        if learning_rate is None:
            raise fail(_WHERE, "learning_rate", "a finite number > 0 (required by the default optimizer optax.sgd)",
                       None)
    if learning_rate is not None:
        lr = positive(_WHERE, "learning_rate", learning_rate)
    rho = nonnegative(_WHERE, "ridge", ridge)
    marks = _checkpoints(checkpoints, n_steps)

    with jax.enable_x64(bool(float64)):
        dtype = jnp.float64 if float64 else jnp.float32
        cast = lambda a: jnp.asarray(a, dtype=dtype)  # noqa: E731
        x = cast(x_train)
        y = np.asarray(y_train)
        if y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"{_WHERE}: `y_train` must have shape (n,) or (n, k) with n = {x.shape[0]} (the number of x_train "
                f"rows), got shape {y.shape}."
            )
        y_was_1d = y.ndim == 1
        y2 = cast(y.reshape(y.shape[0], -1))
        n = x.shape[0]
        xt = None if x_test is None else cast(x_test)
        if batch_size is not None:
            b = int(batch_size)
            if not 1 <= b <= n or b != batch_size:
                raise fail(_WHERE, "batch_size", f"an integer in [1, n = {n}] or None", batch_size)
            if key is None and b < n:
                raise fail(_WHERE, "key", "a jax.random key (required for mini-batches, batch_size < n)", None)
        else:
            b = n
        params0 = jax.tree_util.tree_map(cast, params)
        flat0, _ = ravel_pytree(params0)
        norm0 = float(jnp.linalg.norm(flat0))
        if optimizer is None:
            opt, state = gradient_descent(params0, lr, dtype)
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
