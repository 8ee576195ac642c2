r"""Structured derivatives of any JAX function, read from its jaxpr.

The empirical NTK is a sum over parameter tensors,
:math:`\hat\Theta = \sum_W J_W(x) J_W(x')^\top`. When a tensor :math:`W`
enters the function once, linearly, through a primitive with a known
structure, its Jacobian block has a product form and the Gram matrix of the
block can be contracted without forming it (Novak, Sohl-Dickstein &
Schoenholz 2022, *Fast finite width neural tangent kernel*, "structured
derivatives"). For a *site* :math:`z = \mathrm{op}(a, U)` with
:math:`U = T(W)` and :math:`\delta = \partial f / \partial z`:

* ``dot_general`` (Dense layers, attention projections, any contraction):
  :math:`\partial f/\partial U = \mathrm{op}^\top(a, \delta)`, e.g.
  :math:`\sum_p a_p \otimes \delta_p` for a Dense layer over positions
  :math:`p`, so the block's Gram matrix is
  :math:`\sum_{p,q} (a_p\cdot a'_q)(\delta_p\cdot\delta'_q)`;
* ``conv_general_dilated`` with :math:`U` the kernel: the same with the
  input's patches in place of :math:`a` (any dimension numbers, strides,
  padding, dilations and feature groups);
* ``add``/``sub`` (biases): :math:`\partial f/\partial U = \pm\delta`, summed
  over the axes along which :math:`U` is broadcast;
* ``mul`` (scales): :math:`\partial f/\partial U = a \odot \delta`, summed
  likewise.

:math:`T` is a chain of shape-only operations on the leaf
(``convert_element_type``, ``reshape``, ``squeeze``, ``transpose``,
``broadcast_in_dim``, a copy) and of multiplications by a scalar that does
not depend on the parameters (:math:`c\,W`, :math:`W/c`, :math:`-W`): on
the axes that are not broadcast it is a bijection of the entries up to the
scalar, so :math:`\sum_W J_W J'_W = c\,c' \sum_U (R\,\partial_U f)(R\,\partial_U f')`
with :math:`R` the sum over broadcast axes.

Every :math:`\delta` comes from one backward pass per output direction: the
function is re-evaluated from its jaxpr with a zero "probe" added to every
site's output, and differentiated with respect to the probes. A leaf used in
any other way (in two places, nonlinearly, inside a primitive with a
sub-program such as ``custom_jvp_call``, or returned as is) keeps its own
Jacobian block, taken in the same backward pass: every leaf is counted once,
whatever the function. Nested ``jit`` calls (``jnp`` functions, flax) are
inlined first.

This module reads the program and builds the factors; the NTK's layout
(traced and diagonal axes, per-input or whole-batch Jacobians) is chosen by
:mod:`ntkcourse.empirical`, which passes the einsum letters.
"""
from __future__ import annotations

import math
import string
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend import core as jcore

__all__ = ["Site", "Plan", "structure_plan", "matching_plans", "factors", "site_gram",
           "site_jacobian_gram", "leaf_gram"]

#: Primitives that only move, copy or re-type entries.
SHAPE_ONLY = frozenset({"convert_element_type", "reshape", "squeeze", "transpose", "broadcast_in_dim", "copy",
                        "copy_p"})
#: Call primitives whose body is inlined before the program is read.
CALLS = frozenset({"pjit", "jit", "closed_call", "core_call", "remat", "checkpoint"})


class Site(NamedTuple):
    """A parameter leaf entering the program once, linearly, at equation ``eqn``.

    ``operand`` is the position of the leaf's chain among the equation's
    inputs; ``mask[d]`` says whether axis ``d`` of that operand (``U``) is a
    broadcast of the leaf (summed); ``scales`` the equations multiplying the
    chain by a scalar, as ``(eqn, operand of the scalar, kind)`` with kind
    ``'mul'``, ``'div'`` or ``'neg'``.
    """

    leaf: int
    eqn: int
    kind: str
    operand: int
    mask: tuple
    scales: tuple


class Plan(NamedTuple):
    """The program of ``f`` with nested calls inlined, its sites and the leaves kept as Jacobian blocks."""

    jaxpr: object
    consts: tuple
    sites: tuple
    fallback: tuple
    n_leaves: int


# --------------------------------------------------------------------------- #
# Reading the program
# --------------------------------------------------------------------------- #


def _read(env, v):
    return v.val if isinstance(v, jcore.Literal) else env[v]


def _bind(eqn, invals):
    with eqn.ctx.manager:
        out = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(eqn.params))
    return out if eqn.primitive.multiple_results else [out]


def _inlined(jaxpr, consts, args):
    """Evaluate ``jaxpr``, descending into nested call primitives (so that a trace of this sees no calls)."""
    env = dict(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))
    for eqn in jaxpr.eqns:
        invals = [_read(env, v) for v in eqn.invars]
        sub = eqn.params.get("jaxpr") if eqn.primitive.name in CALLS else None
        if sub is not None:
            body, body_consts = (sub.jaxpr, sub.consts) if hasattr(sub, "consts") else (sub, ())
            outs = _inlined(body, body_consts, invals)
        else:
            outs = _bind(eqn, invals)
        env.update(zip(eqn.outvars, outs))
    return [_read(env, v) for v in jaxpr.outvars]


def _flat_jaxpr(fn, args):
    """The closed jaxpr of ``fn(*args)`` (a list of arrays in, one array out) with nested calls inlined."""
    first = jax.make_jaxpr(fn)(*args)
    return jax.make_jaxpr(lambda *a: _inlined(first.jaxpr, first.consts, a)[0])(*args)


def _broadcast_mask(eqn, mask):
    """The mask of ``broadcast_in_dim``'s output: new axes and stretched size-1 axes are broadcast."""
    in_shape = eqn.invars[0].aval.shape
    out_shape = eqn.params["shape"]
    dims = eqn.params["broadcast_dimensions"]
    new = [out_shape[d] > 1 for d in range(len(out_shape))]
    for j, d in enumerate(dims):
        new[d] = mask[j] or (in_shape[j] == 1 and out_shape[d] > 1)
    return tuple(new)


def _reshape_mask(in_shape, out_shape, mask):
    """A reshape keeps the chain's structure when nothing is broadcast yet, or when it only adds or drops 1s."""
    if not any(mask):
        return (False,) * len(out_shape)
    kept_in = [(n, m) for n, m in zip(in_shape, mask) if n != 1]
    if [n for n, _ in kept_in] != [n for n in out_shape if n != 1]:
        return None
    flags = iter(m for _, m in kept_in)
    return tuple(next(flags) if n != 1 else False for n in out_shape)


def _is_scalar(v) -> bool:
    return math.prod(v.aval.shape) == 1


def _site_of(eqn, pos, mask) -> Optional[str]:
    """The kind of site that operand ``pos`` of ``eqn`` makes, or None."""
    name = eqn.primitive.name
    if name == "dot_general" and not any(mask):
        return "dot_general"
    if (name == "conv_general_dilated" and pos == 1 and not any(mask)
            and eqn.params["batch_group_count"] == 1):
        return "conv"
    if name in ("add", "sub", "mul") and eqn.invars[pos].aval.ndim in (0, eqn.outvars[0].aval.ndim):
        return "add" if name in ("add", "sub") else "mul"
    return None


def structure_plan(fn, args, n_leaves, force_fallback=frozenset()) -> Plan:
    """Read ``fn(*args)`` (the first ``n_leaves`` arguments are the parameter leaves) and find its sites.

    Leaves in ``force_fallback`` keep their Jacobian block whatever their use.
    """
    closed = _flat_jaxpr(fn, args)
    jaxpr = closed.jaxpr
    consumers = {}
    for i, eqn in enumerate(jaxpr.eqns):
        for pos, v in enumerate(eqn.invars):
            if isinstance(v, jcore.Var):
                consumers.setdefault(v, []).append((i, pos))
    returned = {v for v in jaxpr.outvars if isinstance(v, jcore.Var)}
    # Which values depend on a parameter leaf: a scale must not (it would hide a product of two leaves).
    depends = set(jaxpr.invars[:n_leaves])
    for eqn in jaxpr.eqns:
        if any(isinstance(v, jcore.Var) and v in depends for v in eqn.invars):
            depends.update(eqn.outvars)

    sites, fallback = [], []
    for leaf in range(n_leaves):
        v = jaxpr.invars[leaf]
        if v not in consumers and v not in returned:
            continue  # unused: no contribution
        site = None if leaf in force_fallback else _follow_chain(jaxpr, v, consumers, returned, depends, leaf)
        if site is None:
            fallback.append(leaf)
        else:
            sites.append(site)
    return Plan(jaxpr, tuple(closed.consts), tuple(sites), tuple(fallback), n_leaves)


def _follow_chain(jaxpr, v, consumers, returned, depends, leaf) -> Optional[Site]:
    mask = (False,) * v.aval.ndim
    scales = []
    while True:
        uses = consumers.get(v, [])
        if len(uses) != 1 or v in returned:
            return None
        i, pos = uses[0]
        eqn = jaxpr.eqns[i]
        if sum(1 for u in eqn.invars if u is v) != 1:
            return None  # the same value twice in one equation (e.g. W * W)
        name = eqn.primitive.name
        if name in SHAPE_ONLY:
            if name == "transpose":
                mask = tuple(mask[p] for p in eqn.params["permutation"])
            elif name == "broadcast_in_dim":
                mask = _broadcast_mask(eqn, mask)
            elif name in ("reshape", "squeeze"):
                mask = _reshape_mask(eqn.invars[0].aval.shape, eqn.outvars[0].aval.shape, mask)
                if mask is None:
                    return None
            v = eqn.outvars[0]
            continue
        other = eqn.invars[1 - pos] if len(eqn.invars) == 2 else None
        scalar_other = (other is not None and _is_scalar(other)
                        and not (isinstance(other, jcore.Var) and other in depends))
        if name == "neg" or (name in ("mul", "div") and scalar_other and (name == "mul" or pos == 0)):
            if eqn.outvars[0].aval.shape == v.aval.shape:
                scales.append((i, 1 - pos, name))
                v = eqn.outvars[0]
                continue
        kind = _site_of(eqn, pos, mask)
        if kind is None:
            return None
        return Site(leaf, i, kind, pos, mask, tuple(scales))


def matching_plans(make_plan, shapes):
    """Plans for several input shapes whose sites agree: a leaf structured for one shape but not for another,
    or at equations of different form, keeps its Jacobian block in all of them.

    ``make_plan(shape, force_fallback)`` builds one plan.
    """
    force = frozenset()
    while True:
        plans = [make_plan(s, force) for s in shapes]
        keys = [{s.leaf: _site_signature(p, s) for s in p.sites} for p in plans]
        common = set.intersection(*(set(k) for k in keys))
        bad = {leaf for k in keys for leaf in k if leaf not in common}
        bad |= {leaf for leaf in common if len({k[leaf] for k in keys}) > 1}
        if not bad:
            return plans
        force = force | bad


def _site_signature(plan, site):
    eqn = plan.jaxpr.eqns[site.eqn]
    params = {k: eqn.params[k] for k in ("dimension_numbers", "feature_group_count") if k in eqn.params}
    return (site.kind, site.operand, site.mask, tuple(eqn.invars[site.operand].aval.shape), repr(params))


# --------------------------------------------------------------------------- #
# The factors: forward pass with probes, one backward pass per output direction
# --------------------------------------------------------------------------- #


def _evaluate(plan, args, probes, leaves_override=None):
    """Run the plan's program with ``probes[eqn]`` added to the sites' outputs; returns the output and the
    inputs of the site and scale equations (``{eqn: invals}``).
    """
    jaxpr = plan.jaxpr
    env = dict(zip(jaxpr.constvars, plan.consts))
    args = list(args)
    if leaves_override:
        for leaf, value in leaves_override.items():
            args[leaf] = value
    env.update(zip(jaxpr.invars, args))
    wanted = {s.eqn for s in plan.sites} | {e for s in plan.sites for e, _, _ in s.scales}
    seen = {}
    for i, eqn in enumerate(jaxpr.eqns):
        invals = [_read(env, v) for v in eqn.invars]
        outs = _bind(eqn, invals)
        if i in wanted:
            seen[i] = invals
        if probes is not None and i in probes:
            outs = [outs[0] + probes[i]] + list(outs[1:])
        env.update(zip(eqn.outvars, outs))
    return _read(env, jaxpr.outvars[0]), seen


def factors(plan, args):
    """The output of one evaluation and, per site and per fallback leaf, what its Gram matrix needs.

    Returns ``(out, site_factors, leaf_grads)``: ``site_factors[j] = (a, delta, scale)`` for
    ``plan.sites[j]`` with ``delta`` of shape ``(K, *z)`` (``K`` = size of the output, one backward pass
    per output entry, ``z`` the site output's shape), ``a`` the other operand (None for a bias) and
    ``scale`` the product of the chain's scalars; ``leaf_grads[j]`` is ``(K, *leaf)`` for
    ``plan.fallback[j]``.
    """
    probe_eqns = sorted({s.eqn for s in plan.sites})
    zeros = {i: jnp.zeros(plan.jaxpr.eqns[i].outvars[0].aval.shape, plan.jaxpr.eqns[i].outvars[0].aval.dtype)
             for i in probe_eqns}
    fb = {leaf: args[leaf] for leaf in plan.fallback}

    def forward(probes, fb_leaves):
        out, seen = _evaluate(plan, args, probes, fb_leaves)
        return out, seen

    out, vjp_fn, seen = jax.vjp(forward, zeros, fb, has_aux=True)
    k = int(math.prod(out.shape))
    basis = jnp.eye(k, dtype=out.dtype).reshape((k,) + out.shape)
    d_probes, d_leaves = jax.vmap(vjp_fn)(basis)
    site_factors = []
    for s in plan.sites:
        invals = seen[s.eqn]
        a = None if s.kind == "add" else invals[1 - s.operand]
        scale = jnp.ones((), out.dtype)
        for e, pos, kind in s.scales:
            if kind == "neg":
                scale = -scale
            else:
                c = jnp.reshape(seen[e][pos], ())
                scale = scale * c if kind == "mul" else scale / c
        delta = d_probes[s.eqn]
        if s.kind == "add" and plan.jaxpr.eqns[s.eqn].primitive.name == "sub" and s.operand == 1:
            scale = -scale
        site_factors.append((a, delta, scale))
    return out, site_factors, [d_leaves[leaf] for leaf in plan.fallback]


# --------------------------------------------------------------------------- #
# Gram matrices of one site's Jacobian block
# --------------------------------------------------------------------------- #


def _pool(used):
    return iter(c for c in string.ascii_letters if c not in used)


def _flat_site(plan, site, a, delta, lead: int):
    """Canonical factors of one site, leading axes ``lead`` (samples, outputs) kept:

    * ``('dot', A, D)``: ``A (*lead_a, B, P, F)`` and ``D (*lead, B, P, G)`` with
      ``∂f/∂U[B, F, G] = Σ_P A ⊗ D`` over the free axes ``P`` of ``a`` (``lead_a`` the sample axes only);
    * ``('conv', A, D)``: patches ``A (*lead_a, P, G, F)`` and ``D (*lead, P, G, O)`` with
      ``∂f/∂U[G, F, O] = Σ_P A ⊗ D`` over the batch and output positions ``P``, ``G`` feature groups;
    * ``('grad', J)``: ``J (*lead, M)`` the block ``R ∂f/∂U`` itself (add, mul: small after summing the
      broadcast axes).
    """
    eqn = plan.jaxpr.eqns[site.eqn]
    z_shape = eqn.outvars[0].aval.shape
    lead_shape = delta.shape[:lead]
    if site.kind in ("add", "mul"):
        u_shape = eqn.invars[site.operand].aval.shape
        g = delta
        if site.kind == "mul":
            a_nd = eqn.invars[1 - site.operand].aval.ndim
            n_s = a.ndim - a_nd
            tail = a.shape[n_s:] if a_nd else (1,) * len(z_shape)
            g = g * a.reshape(a.shape[:n_s] + (1,) * (lead - n_s) + tail)
        nd = len(z_shape)
        if len(u_shape) == 0:
            summed = tuple(range(nd))
        else:
            summed = tuple(d for d in range(nd)
                           if site.mask[d] or (u_shape[d] == 1 and z_shape[d] > 1))
        g = jnp.sum(g, axis=tuple(lead + d for d in summed)) if summed else g
        return ("grad", g.reshape(lead_shape + (-1,)))
    if site.kind == "dot_general":
        (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
        a_contract, a_batch = (rc, rb) if site.operand == 0 else (lc, lb)
        u_contract, u_batch = (lc, lb) if site.operand == 0 else (rc, rb)
        return _dot_general_factors(eqn, site, a, delta, lead, lead_shape, a_contract, a_batch, u_contract,
                                    u_batch)
    return _conv_factors(eqn, a, delta, lead, lead_shape)


def _dot_general_factors(eqn, site, a, delta, lead, lead_shape, a_contract, a_batch, u_contract, u_batch):
    """``z = dot_general(lhs, rhs)``: axes of z are (batch, lhs free, rhs free). With ``U`` one operand and
    ``a`` the other: ``∂f/∂U[b, c, g] = Σ_f a[b, f, c] δ[b, f, g]``; the batch axes of the contraction are
    axes of ``U``, so they go with ``c`` (the Gram sums over them jointly on both sides).
    """
    a_nd = eqn.invars[1 - site.operand].aval.ndim
    a_lead = a.ndim - a_nd
    u_nd = eqn.invars[site.operand].aval.ndim
    a_free = [d for d in range(a_nd) if d not in a_contract and d not in a_batch]
    u_free = [d for d in range(u_nd) if d not in u_contract and d not in u_batch]
    nb = len(a_batch)
    # Axes of z: batch (in order), then lhs free, then rhs free.
    z_batch = list(range(nb))
    if site.operand == 1:
        z_afree = list(range(nb, nb + len(a_free)))
        z_ufree = list(range(nb + len(a_free), nb + len(a_free) + len(u_free)))
    else:
        z_ufree = list(range(nb, nb + len(u_free)))
        z_afree = list(range(nb + len(u_free), nb + len(u_free) + len(a_free)))
    # a -> (*lead_a, B, Fa, C) ; delta -> (*lead, B, Fa, Gu)
    perm_a = list(range(a_lead)) + [a_lead + d for d in list(a_batch) + a_free + list(a_contract)]
    a_t = jnp.transpose(a, perm_a)
    shp = a.shape
    size = lambda dims, s, off: int(math.prod(s[off + d] for d in dims))  # noqa: E731
    a_t = a_t.reshape(shp[:a_lead] + (size(a_batch, shp, a_lead), size(a_free, shp, a_lead),
                                      size(a_contract, shp, a_lead)))
    perm_d = list(range(lead)) + [lead + d for d in z_batch + z_afree + z_ufree]
    d_t = jnp.transpose(delta, perm_d)
    ds = delta.shape
    d_t = d_t.reshape(lead_shape + (size(z_batch, ds, lead), size(z_afree, ds, lead), size(z_ufree, ds, lead)))
    return ("dot", a_t, d_t)


def _conv_factors(eqn, lhs, delta, lead, lead_shape):
    """``z = conv(lhs, W)``: ``∂f/∂W[g, o, c·w] = Σ_{n,p} P[n, p, g, c·w] δ[n, p, g, o]`` with ``P`` the
    patches of lhs (channel-major, as ``lax.conv_general_dilated_patches`` lays them out) and the output
    channels split in ``G`` feature groups.
    """
    dn = eqn.params["dimension_numbers"]
    groups = eqn.params["feature_group_count"]
    rhs_shape = eqn.invars[1].aval.shape
    lhs_spec, rhs_spec, out_spec = dn.lhs_spec, dn.rhs_spec, dn.out_spec
    a_lead = lhs.ndim - len(lhs_spec)
    lhs_t = jnp.transpose(lhs, list(range(a_lead)) + [a_lead + d for d in lhs_spec])
    filt = tuple(rhs_shape[d] for d in rhs_spec[2:])
    sample_shape = lhs_t.shape[:a_lead]
    lhs_t = lhs_t.reshape((-1,) + lhs_t.shape[a_lead + 1:])
    patches = lax.conv_general_dilated_patches(
        lhs_t, filt, eqn.params["window_strides"], eqn.params["padding"],
        lhs_dilation=eqn.params["lhs_dilation"], rhs_dilation=eqn.params["rhs_dilation"],
    )  # (N, C*w, *spatial_out)
    nfeat = patches.shape[1]
    patches = jnp.moveaxis(patches, 1, -1).reshape(sample_shape + (-1, groups, nfeat // groups))
    d_t = jnp.transpose(delta, list(range(lead)) + [lead + d for d in out_spec])  # (..., N, O, *spatial)
    d_t = jnp.moveaxis(d_t, lead + 1, -1)
    n_out = d_t.shape[-1]
    d_t = d_t.reshape(lead_shape + (-1, groups, n_out // groups))
    return ("conv", patches, d_t)


def site_gram(plan1, plan2, j, f1, f2, samp, lead, result):
    """The Gram matrix ``Σ_W J_W(x1) J_W(x2)`` of site ``j`` (same leaf in both plans), in einsum letters:
    ``samp = (s1, s2)`` the sample letters of ``a`` ('' when the whole batch is one sample), ``lead =
    (l1, l2)`` the letters of ``delta``'s leading axes, ``result`` the kernel's letters.
    """
    (a1, d1, c1), (a2, d2, c2) = f1, f2
    s1, s2 = samp
    l1, l2 = lead
    n_lead = len(l1)
    k1 = _flat_site(plan1, plan1.sites[j], a1, d1 * _expand(c1, d1.ndim, len(s1)), n_lead)
    k2 = _flat_site(plan2, plan2.sites[j], a2, d2 * _expand(c2, d2.ndim, len(s2)), n_lead)
    pool = _pool(set(s1 + s2 + l1 + l2 + result))
    if k1[0] == "grad":
        m = next(pool)
        return jnp.einsum(f"{l1}{m},{l2}{m}->{result}", k1[1], k2[1])
    if k1[0] == "dot":
        b, f, g, c, h = (next(pool) for _ in range(5))
        # a: (*samp, B, F, C); delta: (*lead, B, F, G); the other side's F is its own (h).
        spec = f"{s1}{b}{f}{c},{l1}{b}{f}{g},{s2}{b}{h}{c},{l2}{b}{h}{g}->{result}"
        return jnp.einsum(spec, k1[1], k1[2], k2[1], k2[2], optimize="optimal")
    p, q, g, f, o = (next(pool) for _ in range(5))
    spec = f"{s1}{p}{g}{f},{l1}{p}{g}{o},{s2}{q}{g}{f},{l2}{q}{g}{o}->{result}"
    return jnp.einsum(spec, k1[1], k1[2], k2[1], k2[2], optimize="optimal")


#: Bytes of one side's Jacobian block that :func:`site_jacobian_gram` forms at a time: small enough to stay in
#: the processor's cache between its formation and its contraction (a block formed whole is written to and read
#: back from memory, and a large buffer is a fresh allocation at every call).
JACOBIAN_CHUNK_BYTES = 2**20


def _block(kind, a, d, samp, lead):
    """``Σ_P A ⊗ D`` of canonical factors (:func:`_flat_site`), flattened to ``(*lead, M)``."""
    pool = _pool(set(samp + lead))
    p, g, x, y = (next(pool) for _ in range(4))
    if kind == "dot":  # A (*samp, B, F, C), D (*lead, B, F, G) -> (*lead, B, C, G)
        block = jnp.einsum(f"{samp}{g}{p}{x},{lead}{g}{p}{y}->{lead}{g}{x}{y}", a, d)
    else:  # P (*samp, P, G, F), D (*lead, P, G, O) -> (*lead, G, F, O)
        block = jnp.einsum(f"{samp}{p}{g}{x},{lead}{p}{g}{y}->{lead}{g}{x}{y}", a, d)
    return block.reshape(block.shape[:len(lead)] + (-1,))


def site_jacobian_gram(plan1, plan2, j, f1, f2, samp, lead, result, same=False, chunk_bytes=None):
    """``J_W(x1) J_W(x2)ᵀ`` of site ``j`` by forming its Jacobian blocks ``R ∂f/∂U`` (``Σ_P A ⊗ D`` of the factors
    of :func:`_flat_site`, without differentiating with respect to the parameter) and contracting
    them, a slice of the parameter's entries at a time: the slices of the recorded input ``A`` along its last axis
    (a convolution's patch features, a product's contracted axis) give slices of the block of about
    ``chunk_bytes`` per side (default :data:`JACOBIAN_CHUNK_BYTES`), formed and contracted in a loop; their Gram
    matrices add up to the block's. ``same``: ``x2`` is ``x1`` (each slice formed once). Letters as in
    :func:`site_gram`.
    """
    chunk_bytes = JACOBIAN_CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    s1, s2 = samp
    l1, l2 = lead
    n_lead = len(l1)
    (a1, d1, c1), (a2, d2, c2) = f1, f2
    k1 = _flat_site(plan1, plan1.sites[j], a1, d1 * _expand(c1, d1.ndim, len(s1)), n_lead)
    k2 = k1 if same else _flat_site(plan2, plan2.sites[j], a2, d2 * _expand(c2, d2.ndim, len(s2)), n_lead)
    if k1[0] == "grad":
        return leaf_gram(k1[1], k2[1], lead, result)
    kind, (_, a1, d1), (_, a2, d2) = k1[0], k1, k2

    def gram(x1, x2):
        j1 = _block(kind, x1, d1, s1, l1)
        j2 = j1 if same else _block(kind, x2, d2, s2, l2)
        return leaf_gram(j1, j2, lead, result)

    width = a1.shape[-1]
    rows = max(math.prod(d1.shape[:n_lead]), math.prod(d2.shape[:n_lead]))
    entries = math.prod(jax.eval_shape(lambda a: _block(kind, a, d1, s1, l1), a1).shape[n_lead:])
    per_column = rows * (entries // width) * jnp.dtype(d1.dtype).itemsize
    step = max(1, chunk_bytes // max(1, per_column))
    if step >= width:
        return gram(a1, a2)
    n_steps = -(-width // step)
    # Zero columns of A give zero columns of the block: padding to whole slices changes nothing.
    pad = [(0, 0)] * (a1.ndim - 1) + [(0, n_steps * step - width)]
    a1 = jnp.pad(a1, pad)
    a2 = a1 if same else jnp.pad(a2, pad)

    def piece(i):
        x1 = lax.dynamic_slice_in_dim(a1, i * step, step, axis=-1)
        return gram(x1, x1 if same else lax.dynamic_slice_in_dim(a2, i * step, step, axis=-1))

    return lax.fori_loop(1, n_steps, lambda i, acc: acc + piece(i), piece(0))


def _expand(c, ndim, n_samp):
    """A scale of shape ``(*samples,)`` (or scalar) broadcast against a delta of ``ndim`` axes."""
    c = jnp.asarray(c)
    return c.reshape(c.shape + (1,) * (ndim - c.ndim)) if n_samp else c


def leaf_gram(g1, g2, lead, result):
    """The Gram matrix of a fallback leaf's Jacobian blocks ``(*lead, *leaf)``."""
    l1, l2 = lead
    n = len(l1)
    m1 = g1.reshape(g1.shape[:n] + (-1,))
    m2 = g2.reshape(g2.shape[:n] + (-1,))
    m = next(_pool(set(l1 + l2 + result)))
    return jnp.einsum(f"{l1}{m},{l2}{m}->{result}", m1, m2)
