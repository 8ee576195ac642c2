r"""Finite-width behaviour of networks as functions of the width: data the book plots.

The NTK regime rests on three facts about networks in the NTK
parameterisation, each measured here against the width ``n`` of a family of
``ntkcourse.stax`` networks ``make_network(n)``:

1. **The kernel is deterministic at initialisation**: the empirical NTK
   :math:`\hat\Theta` of one draw converges to the infinite-width
   :math:`\Theta` (Jacot et al. 2018), and deviates from it by
   :math:`O(n^{-1/2})`, the central-limit rate of an average over :math:`n`
   units (exact for one hidden layer) (:func:`ntk_fluctuation_vs_width`).
2. **The kernel and the weights barely move in training** (Jacot et al. 2018;
   Lee et al. 2019): after gradient descent with a width-independent
   learning rate, :math:`\lVert\hat\Theta_T - \hat\Theta_0\rVert / \lVert\hat\Theta_0\rVert`
   is at most :math:`O(n^{-1/2})` (the bound of Lee et al. 2019; ERRATA #4)
   (:func:`ntk_change_vs_width`). The bound is not always tight: for smooth
   activations the change is :math:`O(n^{-1})` (Dyer & Gur-Ari 2020; Huang &
   Yau 2020); ReLU units that cross the kink push it towards
   :math:`n^{-1/2}`. Measured with this module on 8 points: slope about
   −0.7 for a one-hidden-layer ReLU network, −1.0 for a two-hidden-layer erf
   network. The weights: an entry of the first or the last layer moves by
   :math:`O(n^{-1/2})` and one of a hidden-to-hidden matrix by
   :math:`O(n^{-1})`, so each layer's relative change is :math:`O(n^{-1/2})`
   (first and last, :math:`n` entries of size :math:`O(1)`) or
   :math:`O(n^{-1})` (hidden-to-hidden, :math:`n^2` entries), and the total
   follows the largest matrices.
3. **Slow learning: the output's Hessian vanishes** (Liu, Zhu & Belkin 2020):
   the spectral norm of :math:`\partial^2 f(\theta, x)/\partial\theta^2` is
   :math:`\tilde O(n^{-1/2})` while the gradient norm
   :math:`\lVert\partial f/\partial\theta\rVert = \hat\Theta(x, x)^{1/2}` stays
   :math:`O(1)`, so the network is linear over the distance training takes it
   (:func:`hessian_norm_vs_width`).

Each function returns a :class:`WidthSweep` (per-width, per-seed values, the
fitted log–log slope and the slope theory expects);
:mod:`ntkcourse.plotting.finite_width` draws them.
"""
from __future__ import annotations

import functools
import math
import numbers
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from . import stax as _stax
from .fitting import fit_loglog_slope, jackknife_loglog_slope
from .empirical import is_stax_layer, pure_kernel

__all__ = [
    "WidthSweep",
    "fit_loglog_slope",
    "ntk_fluctuation_vs_width",
    "TrainingChange",
    "ntk_change_vs_width",
    "HessianScaling",
    "hessian_norm_vs_width",
    "hessian_spectral_norm",
]


class WidthSweep(NamedTuple):
    """A quantity measured at several widths, over several random initialisations.

    Attributes:
      widths: (W,) the widths.
      values: (W, S) one value per width and seed.
      quantity: what was measured (the y-axis label of the plot).
      expected_slope: the log–log slope theory predicts (None when it depends
        on the architecture).
    """

    widths: np.ndarray
    values: np.ndarray
    quantity: str
    expected_slope: Optional[float]

    @property
    def mean(self) -> np.ndarray:
        """(W,) the mean over seeds."""
        return self.values.mean(axis=1)

    @property
    def stderr(self) -> np.ndarray:
        """(W,) the standard error of that mean (zeros with one seed)."""
        s = self.values.shape[1]
        return self.values.std(axis=1, ddof=1) / math.sqrt(s) if s > 1 else np.zeros(len(self.widths))

    @property
    def slope(self) -> float:
        """The fitted exponent of ``mean ∝ width^slope``."""
        return fit_loglog_slope(self.widths, self.mean)

    @property
    def slope_stderr(self) -> float:
        r"""Standard error of :attr:`slope`, by the delete-one jackknife over seeds
        (:func:`ntkcourse.fitting.jackknife_loglog_slope`).

        With :math:`S` seeds, :math:`p_{(j)}` is the slope fitted to the mean
        over all seeds but seed :math:`j`, and the error is
        :math:`\sqrt{\tfrac{S-1}{S}\sum_j (p_{(j)} - \bar p)^2}` (Efron & Stein
        1981). It measures the seed-to-seed scatter only, not a bias of the
        power law over the fitted range. NaN with one seed.
        """
        if self.values.shape[1] < 2:
            return float("nan")
        return jackknife_loglog_slope(self.widths, self.values)[1]


def _check_widths(widths, where):
    try:
        ws = [int(w) for w in widths]
    except TypeError:
        raise ValueError(f"{where}: `widths` must be a sequence of positive integers, got {widths!r}.") from None
    if len(ws) < 2 or any(w < 1 for w in ws) or any(w != v for w, v in zip(ws, widths)):
        raise ValueError(f"{where}: `widths` must be at least two positive integers, got {widths!r}.")
    return np.asarray(ws)


def _check_seeds(n, name, where):
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{where}: `{name}` must be a positive integer, got {n!r}.")
    return int(n)


def _network(make_network, width, where):
    net = make_network(int(width))
    if not is_stax_layer(net):
        raise TypeError(
            f"{where}: make_network({width}) must return a ntkcourse.stax layer triple (init_fn, apply_fn, kernel_fn); "
            f"got {type(net).__name__}."
        )
    return net


def _inputs(x, where, name="x"):
    arr = np.asarray(x)
    if arr.ndim < 2 or arr.shape[0] == 0:
        raise ValueError(f"{where}: `{name}` must be a non-empty batch of inputs, shape (n, ...), got {arr.shape}.")
    return jnp.asarray(arr)


def _all_ntk_parameterised(spec) -> bool:
    """Whether every Dense/Conv layer uses the NTK parameterisation (then the analytic kernel ignores the width)."""
    if spec.name in ("Dense", "Conv"):
        return spec.config.get("parameterization") == "ntk"
    return all(_all_ntk_parameterised(_stax.layer_spec(c)) for c in spec.children)


def _seed_keys(key, i, n):
    """Keys of the ``n`` seeds at width index ``i``: ``fold_in(fold_in(key, i), s)``."""
    kw = jax.random.fold_in(key, i)
    return jax.vmap(lambda s: jax.random.fold_in(kw, s))(jnp.arange(n))


def ntk_fluctuation_vs_width(
    make_network: Callable[[int], tuple],
    widths: Sequence[int],
    x,
    key,
    n_seeds: int = 4,
    reference: str = "analytic",
    implementation: str = "auto",
) -> WidthSweep:
    r"""Relative deviation of the empirical NTK at initialisation from a reference kernel.

    :math:`\lVert\hat\Theta - \Theta\rVert_F / \lVert\Theta\rVert_F`, one value per width and seed.

    ``reference='analytic'``: :math:`\Theta` is the infinite-width NTK of the
    same definition (``kernel_fn``, float64); the deviation mixes the
    fluctuation, :math:`O(n^{-1/2})`, with the bias of the mean, :math:`O(n^{-1})`.
    ``reference='mean'``: :math:`\Theta` is the average of the ``n_seeds``
    draws at that width (the fluctuation alone, needs ``n_seeds >= 2``; its
    size is underestimated by :math:`\sqrt{1 - 1/S}`, the same at every width).
    Expected slope: −1/2.

    Args:
      make_network: ``width -> stax triple`` (NTK parameterisation for the
        n^{-1/2} law).
      widths: at least two widths.
      x: inputs ``(n, ...)``.
      key: PRNG key; seed ``s`` at width index ``i`` uses
        ``fold_in(fold_in(key, i), s)``.

    Cost: one compilation per width (initialisation and kernel together),
    then ``n_seeds`` draws.
    """
    where = "ntk_fluctuation_vs_width"
    ws = _check_widths(widths, where)
    n_seeds = _check_seeds(n_seeds, "n_seeds", where)
    if reference not in ("analytic", "mean"):
        raise ValueError(f"{where}: `reference` must be 'analytic' or 'mean', got {reference!r}.")
    if reference == "mean" and n_seeds < 2:
        raise ValueError(f"{where}: reference='mean' needs n_seeds >= 2, got {n_seeds}.")
    x = _inputs(x, where)
    values = np.zeros((len(ws), n_seeds))
    analytic = None
    for i, w in enumerate(ws):
        net = _network(make_network, w, where)
        init_fn = net[0]
        ntk = pure_kernel(net, x, ("ntk",), implementation, where)
        shape = tuple(x.shape)
        draw = jax.jit(lambda ks: jax.lax.map(lambda k: ntk(init_fn(k, shape)[1])["ntk"], ks))
        draws = np.asarray(draw(_seed_keys(key, i, n_seeds)), dtype=np.float64)
        if reference == "analytic":
            if analytic is None or not _all_ntk_parameterised(_stax.layer_spec(net)):
                analytic = np.asarray(net[2](np.asarray(x), None, "ntk"))
            ref = analytic
        else:
            ref = draws.mean(axis=0)
        values[i] = np.linalg.norm((draws - ref).reshape(n_seeds, -1), axis=1) / np.linalg.norm(ref)
    # Matplotlib's text renderer does not compose a combining hat (Θ̂): mathtext does.
    label = (r"$\|\hat\Theta - \Theta\|_F\,/\,\|\Theta\|_F$" if reference == "analytic"
             else r"$\|\hat\Theta - \mathrm{mean}\,\hat\Theta\|_F\,/\,\|\mathrm{mean}\,\hat\Theta\|_F$")
    return WidthSweep(ws, values, label, -0.5)


class TrainingChange(NamedTuple):
    """How much gradient descent changes a network, against width.

    Attributes:
      kernel: relative change of the empirical NTK on the training inputs,
        ``‖Θ̂_T − Θ̂_0‖_F / ‖Θ̂_0‖_F``; ``expected_slope`` is −1/2, the bound
        of Lee et al. (2019): smooth activations fall faster, like 1/width.
      weights: relative change of all parameters, ``‖θ_T − θ_0‖ / ‖θ_0‖``
        (slope −1/2 for one hidden layer; tends to −1 when hidden-to-hidden
        matrices dominate the parameter count).
      layers: per parameter array (keyed by its path in ``params``), the
        relative change ``‖w_T − w_0‖ / ‖w_0‖``.
      loss: (W, S) training loss ``½ Σ ‖f − y‖²`` after the last step.
      learning_rate: the learning rate used at every width.
    """

    kernel: WidthSweep
    weights: WidthSweep
    layers: dict
    loss: np.ndarray
    learning_rate: float


def ntk_change_vs_width(
    make_network: Callable[[int], tuple],
    widths: Sequence[int],
    x_train,
    y_train,
    key,
    steps: int = 100,
    learning_rate: Optional[float] = None,
    n_seeds: int = 2,
    implementation: str = "auto",
) -> TrainingChange:
    r"""Relative change of the empirical NTK and of the weights after ``steps`` of gradient descent.

    Full-batch gradient descent on :math:`\tfrac12\sum_i (f(x_i) - y_i)^2` with
    the same learning rate at every width (default: :math:`1/\lambda_{\max}`
    of the infinite-width NTK on ``x_train``, half the stability limit). The
    NTK parameterisation makes that learning rate width-independent; then
    the change of the kernel is at most :math:`O(n^{-1/2})` (Lee et al. 2019),
    and :math:`O(n^{-1})` for smooth activations (see the module docstring).
    ``y_train`` has the shape of the network's outputs, or ``(n,)`` for one
    output. Cost: ``n_seeds × steps`` full-batch gradients per width.
    """
    where = "ntk_change_vs_width"
    ws = _check_widths(widths, where)
    n_seeds = _check_seeds(n_seeds, "n_seeds", where)
    steps = _check_seeds(steps, "steps", where)
    x = _inputs(x_train, where, "x_train")
    y = jnp.asarray(y_train)
    if y.ndim == 1:
        y = y[:, None]
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"{where}: `y_train` has {y.shape[0]} rows for {x.shape[0]} inputs.")
    if learning_rate is None:
        theta = np.asarray(_network(make_network, ws[0], where)[2](np.asarray(x), None, "ntk"))
        learning_rate = 1.0 / float(np.linalg.eigvalsh(theta).max())
    elif not isinstance(learning_rate, numbers.Real) or not (learning_rate > 0) or not math.isfinite(learning_rate):
        raise ValueError(f"{where}: `learning_rate` must be a finite number > 0, got {learning_rate!r}.")
    eta = float(learning_rate)
    kern = np.zeros((len(ws), n_seeds))
    weights = np.zeros((len(ws), n_seeds))
    loss = np.zeros((len(ws), n_seeds))
    layers = {}
    shape = tuple(x.shape)
    for i, w in enumerate(ws):
        net = _network(make_network, w, where)
        init_fn, apply_fn, _ = net
        ntk = pure_kernel(net, x, ("ntk",), implementation, where)

        def loss_fn(p):
            out = apply_fn(p, x)
            return 0.5 * jnp.sum((out - y.astype(out.dtype).reshape(out.shape)) ** 2)

        grad = jax.grad(loss_fn)

        def one_seed(k):
            # Initialise, train, and measure, all in one compiled function per width.
            p0 = init_fn(k, shape)[1]
            step = lambda _, q: jax.tree_util.tree_map(lambda a, b: a - eta * b, q, grad(q))  # noqa: E731
            pt = jax.lax.fori_loop(0, steps, step, p0)
            k0, kt = ntk(p0)["ntk"], ntk(pt)["ntk"]
            sq = lambda t: [jnp.sum(jnp.square(a)) for a in jax.tree_util.tree_leaves(t)]  # noqa: E731
            diff = jax.tree_util.tree_map(jnp.subtract, pt, p0)
            return dict(
                kernel=jnp.linalg.norm(kt - k0) / jnp.linalg.norm(k0),
                diff=jnp.stack(sq(diff)),
                base=jnp.stack(sq(p0)),
                loss=loss_fn(pt),
            )

        res = jax.jit(lambda ks: jax.lax.map(one_seed, ks))(_seed_keys(key, i, n_seeds))
        res = {k: np.asarray(v, dtype=np.float64) for k, v in res.items()}
        kern[i] = res["kernel"]
        weights[i] = np.sqrt(res["diff"].sum(axis=1) / res["base"].sum(axis=1))
        loss[i] = res["loss"]
        names = ["params" + jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(
            jax.eval_shape(lambda k: init_fn(k, shape)[1], jax.random.PRNGKey(0)))[0]]
        for j, name in enumerate(names):
            layers.setdefault(name, np.zeros((len(ws), n_seeds)))[i] = np.sqrt(
                res["diff"][:, j] / np.maximum(res["base"][:, j], 1e-300))
    return TrainingChange(
        kernel=WidthSweep(ws, kern, r"$\|\hat\Theta_T - \hat\Theta_0\|_F\,/\,\|\hat\Theta_0\|_F$", -0.5),
        weights=WidthSweep(ws, weights, r"$\|\theta_T - \theta_0\|\,/\,\|\theta_0\|$", None),
        layers={name: WidthSweep(ws, v, f"relative change of {name}", None) for name, v in layers.items()},
        loss=loss,
        learning_rate=eta,
    )


def hessian_spectral_norm(apply_fn: Callable, params, x, key, n_iter: int = 30):
    r"""Spectral norm of the Hessian of the scalar output :math:`f(\theta, x)` (one input) in :math:`\theta`.

    Power iteration with Hessian–vector products
    (:math:`Hv = \partial_\epsilon \nabla f(\theta + \epsilon v)`, forward over
    reverse mode), never forming :math:`H`. Iterating :math:`v \leftarrow Hv/\lVert Hv\rVert`
    and reading :math:`\lVert Hv\rVert` converges to the largest
    :math:`|\lambda|` also when :math:`\pm\lambda` are both eigenvalues, as in
    networks whose Hessian couples two layers. Returns ``(‖H‖₂, ‖∇f‖)``.

    The whole iteration is one compiled function, compiled once per
    ``apply_fn`` and shapes of ``params`` and ``x`` (``n_iter`` is an argument
    of it, not a constant): later calls with new parameters, inputs, keys or
    numbers of iterations reuse it.
    """
    x = jnp.asarray(x)
    if x.shape[0] != 1:
        raise ValueError(f"hessian_spectral_norm: `x` must hold one input, shape (1, ...), got {tuple(x.shape)}.")
    out = jax.eval_shape(lambda p: apply_fn(p, x), params)
    if math.prod(out.shape) != 1:
        raise ValueError(
            f"hessian_spectral_norm: `f` must have one output per input, got output shape {tuple(out.shape)}."
        )
    n_iter = jnp.asarray(int(n_iter), jnp.int32)
    try:
        hash(apply_fn)
    except TypeError:  # an unhashable function cannot be a static argument: compiled for this call only
        return jax.jit(functools.partial(_hessian_power_iteration, apply_fn))(params, x, key, n_iter)
    return _hessian_jitted(params, x, key, n_iter, apply_fn=apply_fn)


@functools.partial(jax.jit, static_argnames=("apply_fn",))
def _hessian_jitted(params, x, key, n_iter, *, apply_fn):
    return _hessian_power_iteration(apply_fn, params, x, key, n_iter)


def _hessian_power_iteration(apply_fn, params, x, key, n_iter):
    """Traceable ``(‖H‖₂, ‖∇f‖)`` of ``f(θ, x)`` for one input x of shape (1, ...).

    The parameters are flattened into one vector, and ``jax.linearize`` of the
    gradient computes ∇f and the residuals of the forward and backward passes
    once; each iteration then runs only the linear map ``v ↦ Hv``. (XLA compiles
    this in about a third of the time it took for ``jax.jvp(grad)`` on the
    parameter tree inside the loop: 2.5 s against 7 s for two hidden layers of
    width 256 on a 2-core CPU.)
    The start vector is the one of earlier versions: a normal draw per
    parameter array, from ``jax.random.split(key, number of arrays)``.
    """
    flat, unravel = ravel_pytree(params)
    gradient, hvp = jax.linearize(jax.grad(lambda q: jnp.sum(apply_fn(unravel(q), x))), flat)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    start = [jax.random.normal(k, a.shape, a.dtype) for k, a in zip(keys, leaves)]
    v0, _ = ravel_pytree(jax.tree_util.tree_unflatten(treedef, start))

    def body(_, carry):
        v, _ = carry
        hv = hvp(v / jnp.linalg.norm(v))
        return hv, jnp.linalg.norm(hv)

    _, lam = jax.lax.fori_loop(0, n_iter, body, (v0, jnp.zeros((), flat.dtype)))
    return lam, jnp.linalg.norm(gradient)


class HessianScaling(NamedTuple):
    """Spectral norm of the output's Hessian and norm of its gradient, against width."""

    hessian: WidthSweep
    gradient: WidthSweep


def hessian_norm_vs_width(
    make_network: Callable[[int], tuple],
    widths: Sequence[int],
    x,
    key,
    n_seeds: int = 2,
    n_iter: int = 30,
) -> HessianScaling:
    r"""The "slow learning" argument, measured: :math:`\lVert H\rVert_2` and :math:`\lVert\nabla f\rVert` against width.

    For each width, seed and input :math:`x_i` (one output), the spectral norm of
    :math:`\partial^2 f(\theta_0, x_i) / \partial\theta^2` (:func:`hessian_spectral_norm`),
    averaged over the inputs. Liu, Zhu & Belkin (2020) show
    :math:`\lVert H\rVert_2 = \tilde O(n^{-1/2})` while
    :math:`\lVert\nabla f\rVert^2 = \hat\Theta(x, x) = O(1)`: over a ball of
    radius :math:`R` in parameter space the kernel changes by
    :math:`O(R\,\lVert H\rVert)`, so it stays constant as the width grows
    (expected slopes −1/2 and 0).
    """
    where = "hessian_norm_vs_width"
    ws = _check_widths(widths, where)
    n_seeds = _check_seeds(n_seeds, "n_seeds", where)
    n_iter = _check_seeds(n_iter, "n_iter", where)
    x = _inputs(x, where)
    hess = np.zeros((len(ws), n_seeds))
    grad = np.zeros((len(ws), n_seeds))
    shape = tuple(x.shape)
    for i, w in enumerate(ws):
        init_fn, apply_fn, _ = _network(make_network, w, where)
        core = functools.partial(_hessian_power_iteration, apply_fn, n_iter=n_iter)

        def one_seed(k):
            params = init_fn(k, shape)[1]
            ks = jax.vmap(lambda j: jax.random.fold_in(k, 10_000 + j))(jnp.arange(shape[0]))
            return jax.lax.map(lambda args: core(params, args[0][None], args[1]), (x, ks))

        lam, gnorm = jax.jit(lambda ks: jax.lax.map(one_seed, ks))(_seed_keys(key, i, n_seeds))
        hess[i] = np.asarray(lam, dtype=np.float64).mean(axis=1)
        grad[i] = np.asarray(gnorm, dtype=np.float64).mean(axis=1)
    return HessianScaling(
        hessian=WidthSweep(ws, hess, "‖∂²f/∂θ²‖₂", -0.5),
        gradient=WidthSweep(ws, grad, "‖∂f/∂θ‖", 0.0),
    )
