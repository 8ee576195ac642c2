"""Combinators: ``serial``, ``parallel``, ``FanOut``, ``FanInSum``, ``Identity``."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import validation
from .layer import kernel_map_of, layer, layer_spec, stages_of
from .masked import combined_branches, combined_kernel_masks

__all__ = ["serial", "parallel", "repeat", "FanOut", "FanInSum", "Identity", "close_fork"]


def _requirement_list(req, n: int):
    return list(req) if isinstance(req, (list, tuple)) else [req] * n


def _split_rng(kwargs, n: int):
    """One ``apply_fn`` keyword set per sub-layer: a given ``rng`` split into
    ``n`` keys (``jax.example_libraries.stax``'s ``serial``/``parallel``, as
    neural-tangents), so that each ``Dropout`` draws its own mask; without
    ``rng`` the same keywords for all.
    """
    rng = kwargs.get("rng")
    if rng is None:
        return [kwargs] * n
    return [{**kwargs, "rng": key} for key in jax.random.split(rng, n)]


def serial(*layers):
    """Compose layers in sequence: ``serial(Dense(512), Relu(), Dense(1))``."""
    if not layers:
        raise ValueError("serial: needs at least one layer.")
    maps = [kernel_map_of(t) for t in layers]
    specs = [layer_spec(t) for t in layers]
    inits = [t[0] for t in layers]
    applies = [t[1] for t in layers]

    def init_fn(key, input_shape):
        params = []
        for init in inits:
            key, sub = jax.random.split(key)
            input_shape, p = init(sub, input_shape)
            params.append(p)
        # A list, as neural-tangents' (jax.example_libraries') serial returns.
        return input_shape, params

    def apply_fn(params, inputs, **kwargs):
        if len(params) != len(applies):
            raise ValueError(f"serial: `params` has {len(params)} entries for a network of {len(applies)} layers.")
        for fn, p, kw in zip(applies, params, _split_rng(kwargs, len(applies))):
            inputs = fn(p, inputs, **kw)
        return inputs

    def kernel_map(k):
        for m in maps:
            k = m(k)
        return k

    def input_diagonal(req):
        for spec in reversed(specs):
            req = spec.input_diagonal(req)
        return req

    stages = tuple(stage for t in layers for stage in stages_of(t))
    return layer(init_fn, apply_fn, kernel_map, "serial", children=layers, input_diagonal=input_diagonal,
                 layout_free=True,
                 stages=stages, handles_masks=True)


def parallel(*layers):
    """Apply layer i to input i of a list (for use after ``FanOut``)."""
    if not layers:
        raise ValueError("parallel: needs at least one layer.")
    maps = [kernel_map_of(t) for t in layers]
    specs = [layer_spec(t) for t in layers]
    inits = [t[0] for t in layers]
    applies = [t[1] for t in layers]

    def _check_len(obj, what):
        if not isinstance(obj, (list, tuple)) or len(obj) != len(layers):
            n = len(obj) if isinstance(obj, (list, tuple)) else 1
            raise ValueError(f"parallel: expected {len(layers)} {what} (one per branch), got {n}.")

    def init_fn(key, input_shape):
        if isinstance(input_shape, (list, tuple)) and any(isinstance(s, (int, np.integer)) for s in input_shape):
            # One shape, e.g. (3, 4), whose entries would be taken for the branches' shapes.
            raise ValueError(f"parallel: expected {len(layers)} input shapes (one per branch, a list such as "
                             f"FanOut's init_fn returns), got the single shape {tuple(input_shape)}.")
        _check_len(input_shape, "input shapes")
        keys = jax.random.split(key, len(layers))
        outs = [init(k, s) for init, k, s in zip(inits, keys, input_shape)]
        return [o[0] for o in outs], tuple(o[1] for o in outs)

    def apply_fn(params, inputs, **kwargs):
        _check_len(inputs, "inputs")
        return [fn(p, x, **kw) for fn, p, x, kw in zip(applies, params, inputs, _split_rng(kwargs, len(applies)))]

    def kernel_map(ks):
        _check_len(ks, "kernels")
        return [m(k) for m, k in zip(maps, ks)]

    def input_diagonal(req):
        return [s.input_diagonal(r) for s, r in zip(specs, _requirement_list(req, len(specs)))]

    # The branches' stages in lockstep (step t applies each branch's t-th
    # map, or nothing to a branch that has fewer), so that the engine runs a
    # residual block as several programs split at its convolutions, as it
    # runs a serial network, rather than as one program.
    branch_stages = [stages_of(t) for t in layers]

    def lockstep(t):
        def step(ks):
            _check_len(ks, "kernels")
            return [s[t][0](k) if t < len(s) else k for s, k in zip(branch_stages, ks)]

        return step, any(t < len(s) and s[t][1] for s in branch_stages)

    stages = tuple(lockstep(t) for t in range(max(len(s) for s in branch_stages)))
    return layer(init_fn, apply_fn, kernel_map, "parallel", children=layers, input_diagonal=input_diagonal,
                 layout_free=True,
                 stages=stages, handles_masks=True)


def FanOut(num: int):
    """Copy the input into ``num`` branches."""
    num = validation.positive_int("FanOut", "num", num)

    def init_fn(key, input_shape):
        return [input_shape] * num, ()

    def apply_fn(params, inputs, **kwargs):
        return [inputs] * num

    def input_diagonal(req):
        # The input serves every branch: only the diagonal if all need no more.
        return all(_requirement_list(req, num))

    def kernel_map(k):
        # Each copy opens a fork level: no branch is yet independent of the others.
        return [k.replace(fork_independent=k.fork_independent + (False,))] * num

    return layer(init_fn, apply_fn, kernel_map, "FanOut", {"num": num}, input_diagonal=input_diagonal, layout_free=True,
                 handles_masks=True)


def close_fork(where: str, ks):
    """Check that the branches ``ks`` of one ``FanOut`` may be combined as if
    uncorrelated, and return the fork levels of the combination.

    Two branches of a fork are uncorrelated when one of them has passed an
    affine layer with its own zero-mean weights since the fork
    (``Kernel.fork_independent``): ``Cov(W h, g) = E[W] E[h g] = 0``. So a sum
    (or product) of branches has the sum (product) of their kernels when at
    most one branch is not independent. Otherwise the cross-covariances, e.g.
    ``E[relu(z) z] = Var(z) / 2`` in ``relu(z) + z``, are missing and the
    kernel would be wrong: refuse. (neural-tangents checks only that every
    branch is Gaussian, and returns ``2 K`` for ``z + z``, whose kernel is ``4 K``.)
    """
    levels = {len(k.fork_independent) for k in ks}
    if len(levels) != 1:
        raise ValueError(f"{where}: the branches come from different FanOut levels ({sorted(levels)}).")
    if levels == {0}:
        return ()
    dependent = [i for i, k in enumerate(ks) if not k.fork_independent[-1]]
    if len(dependent) > 1:
        raise NotImplementedError(
            f"{where}: branches {dependent} are correlated (none of them has an affine layer with its own weights "
            "(Dense, Conv) after the FanOut), and this package does not compute the covariance between "
            "branches: combining them as if independent would give a wrong kernel. Keep at most one branch "
            "without such a layer, e.g. parallel(Identity(), serial(Relu(), Dense(n))) for a residual block."
        )
    outer = [k.fork_independent[:-1] for k in ks]
    return tuple(all(level) for level in zip(*outer))


def FanInSum():
    """Sum the branches. The kernel of the sum is the sum of the kernels, exact
    when the branches are uncorrelated: when at most one branch has no affine
    layer with its own weights after the ``FanOut`` (e.g. a residual
    ``x + f(x)`` with ``f`` ending in ``Dense``). Other networks are refused
    with an error (see :func:`close_fork`), never computed wrongly.
    """

    def init_fn(key, input_shape):
        shapes = list(input_shape)
        if any(tuple(s) != tuple(shapes[0]) for s in shapes):
            raise ValueError(f"FanInSum: all branches must have the same shape, got {shapes}.")
        return shapes[0], ()

    def apply_fn(params, inputs, **kwargs):
        return combined_branches("FanInSum", inputs, lambda values: functools.reduce(jnp.add, values))

    def kernel_map(ks):
        if not isinstance(ks, (list, tuple)) or not ks:
            raise ValueError("FanInSum: expects a list of branches (use FanOut/parallel before it).")
        first = ks[0]
        for k in ks[1:]:
            if k.nngp.shape != first.nngp.shape or k.shape1[1:] != first.shape1[1:]:
                raise ValueError(f"FanInSum: branch outputs differ in shape: {first.shape1} and {k.shape1}.")

        def total(attr):
            vals = [getattr(k, attr) for k in ks]
            if any(v is None for v in vals):
                return None
            return functools.reduce(jnp.add, vals)

        return first.replace(
            nngp=total("nngp"),
            ntk=total("ntk"),
            cov1=total("cov1"),
            cov2=total("cov2"),
            is_gaussian=all(k.is_gaussian for k in ks),
            fork_independent=close_fork("FanInSum", ks),
            **combined_kernel_masks("FanInSum", ks),
        )

    return layer(init_fn, apply_fn, kernel_map, "FanInSum", layout_free=True, handles_masks=True)


def Identity():
    """The identity layer."""
    return layer(lambda key, s: (s, ()), lambda params, x, **kw: x, lambda k: k, "Identity", handles_masks=True,
                 layout_free=True)


def repeat(layer_triple, n: int):
    """``layer_triple`` composed ``n`` times, as neural-tangents' ``repeat``.

    The same network and kernels as ``serial(*[layer_triple] * n)``
    (independent parameters for each repetition), with neural-tangents'
    parameter structure: ``init_fn`` returns the ``n`` parameter sets stacked
    along a new leading axis, and ``apply_fn`` runs the layer in a
    ``jax.lax.scan`` over them (one compiled copy of the layer). The layer
    must keep the shape of its input. ``n = 0`` is the identity.
    """
    kernel_map_of(layer_triple)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise validation.fail("repeat", "n", "an integer >= 0", n)
    n = int(n)
    init_one, apply_one, _ = layer_triple
    unrolled = serial(*([layer_triple] * n)) if n > 0 else Identity()

    def init_fn(key, input_shape):
        keys = jax.random.split(key, max(n, 1))
        sets = []
        for sub in keys[:n]:
            out_shape, params = init_one(sub, input_shape)
            if tuple(out_shape) != tuple(input_shape):
                raise ValueError(f"repeat: the layer changes the shape {tuple(input_shape)} into "
                                 f"{tuple(out_shape)}; use serial(*[layer] * n) for such a layer.")
            sets.append(params)
        if n == 0:
            return input_shape, ()
        return input_shape, jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *sets)

    def apply_fn(params, inputs, **kwargs):
        if n == 0:
            return inputs

        def step(x, p):
            return apply_one(p, x, **kwargs), None

        out, _ = jax.lax.scan(step, inputs, params, length=n)
        return out

    spec = layer_spec(unrolled)
    return layer(init_fn, apply_fn, kernel_map_of(unrolled), "repeat", {"n": n}, (layer_triple,), layout_free=True,
                 has_params=True, input_diagonal=spec.input_diagonal, stages=stages_of(unrolled),
                 handles_masks=True)
