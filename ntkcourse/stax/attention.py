r"""Global self-attention and its infinite-width kernels (Hron et al. 2020).

One head of the finite layer, on an input ``x`` of shape ``(n, positions...,
C)`` whose positions are flattened to ``P`` rows:

.. math::
    G = \mathrm{mech}\Big(\frac{\sigma_{QK}}{C\, d_k^{\alpha}} (x W_Q)(x W_K)^\top\Big),
    \qquad h = G\, (x W_V),

and the layer's output concatenates the heads and applies
:math:`\sigma_{OV} W_O / \sqrt{d_v\, n_{heads}\, C}` and a bias
:math:`\sigma_b b`, with standard normal weights,
:math:`\sigma_{QK} = \sigma_Q \sigma_K`, :math:`\sigma_{OV} = \sigma_O \sigma_V`,
and ``mech`` the softmax over the key positions, the identity, ``abs`` or
``relu``. With ``linear_scaling=True`` (:math:`\alpha = 1`) the query and
key weights are tied (:math:`W_Q = W_K`), so the logits converge to the
constant :math:`\sigma_{QK}\,\Sigma(s, s')` and, as the widths grow,

.. math::
    \Sigma'(x, x')_{st} = \sigma_{OV}^2 \sum_{s', t'} G_x[s, s']\, \Sigma(x, x')_{s't'}\, G_{x'}[t, t'] + \sigma_b^2,
    \qquad G_x = \mathrm{mech}(\sigma_{QK}\, \Sigma(x, x)),

:math:`\Theta' = \sigma_{OV}^2\, G_x \Theta G_{x'}^\top + \sigma_b^2 + 2(\Sigma' - \sigma_b^2)`
(the output and value weights each add one copy of the attended NNGP).
With ``linear_scaling=False`` (:math:`\alpha = 1/2`, independent ``W_Q``,
``W_K``) the logits stay Gaussian; only the identity mechanism then has a
closed form, :math:`\Sigma'_{st} = (\sigma_{QK}\sigma_{OV})^2\, \Sigma_{st} \sum_{s't'} \Sigma_{s't'}^2 + \sigma_b^2`
(Hron, Bahri, Sohl-Dickstein & Novak 2020, "Infinite attention: NNGP and
NTK for deep attention networks", ICML).

Positional embeddings (``pos_emb_type='SUM'`` or ``'CONCAT'``): a random
embedding ``E`` with covariance :math:`\sigma_E^2 R` between positions
(``R = I``, or ``R = decay(\|s - s'\|_p^p)`` with ``pos_emb_decay_fn``) is
added to, or concatenated with, the inputs of the keys and queries (and of the
values with ``val_pos_emb=True``); in the kernel :math:`\Sigma` becomes
:math:`w_x \Sigma + w_E \sigma_E^2 R` (``w = 1`` for ``'SUM'``, the channel
fractions for ``'CONCAT'``).

Arguments, defaults, parameters and values are those of neural-tangents 0.6.5's
``stax.GlobalSelfAttention``.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from .. import validation
from ..kernel import Kernel
from .layer import layer, remask
from .masked import MaskedActivations, masked_output

__all__ = ["GlobalSelfAttention", "positional_covariance"]

_MECHANISMS = ("SOFTMAX", "IDENTITY", "ABS", "RELU")
_POS_EMB = ("NONE", "SUM", "CONCAT")
_WHERE = "GlobalSelfAttention"


def positional_covariance(spatial_shape, p_norm: float = 2.0, decay_fn: Optional[Callable] = None) -> np.ndarray:
    r"""The covariance ``R`` of positional embeddings between every pair of
    positions, as a ``(P, P)`` matrix over the flattened positions (row-major).

    :math:`R_{ss'} = \mathrm{decay}(\sum_i |s_i - s'_i|^p)`, or the identity
    when ``decay_fn`` is ``None`` (independent embeddings per position).
    """
    grids = np.meshgrid(*[np.arange(n) for n in spatial_shape], indexing="ij")
    pos = np.stack([g.ravel() for g in grids], axis=-1).astype(np.float64)
    if decay_fn is None:
        return np.eye(pos.shape[0])
    dist = np.sum(np.abs(pos[:, None, :] - pos[None, :, :]) ** p_norm, axis=-1)
    return np.asarray(decay_fn(dist), dtype=np.float64)


def _pairs_to_matrix(x, batch_ndim: int, spatial_ndim: int):
    """``(b..., S1, S1', S2, S2', ...) -> (b..., P, P')`` with P the flattened positions."""
    b = tuple(range(batch_ndim))
    first = tuple(batch_ndim + 2 * i for i in range(spatial_ndim))
    second = tuple(batch_ndim + 2 * i + 1 for i in range(spatial_ndim))
    x = jnp.transpose(x, b + first + second)
    size = math.prod(x.shape[batch_ndim:batch_ndim + spatial_ndim])
    return x.reshape(x.shape[:batch_ndim] + (size, size))


def _matrix_to_pairs(m, batch_ndim: int, spatial_shape):
    """The inverse of :func:`_pairs_to_matrix`."""
    s = len(spatial_shape)
    m = m.reshape(m.shape[:batch_ndim] + tuple(spatial_shape) * 2)
    order = list(range(batch_ndim))
    for i in range(s):
        order += [batch_ndim + i, batch_ndim + s + i]
    return jnp.transpose(m, order)


def _mechanism(name: str, logits):
    if name == "SOFTMAX":
        return jax.nn.softmax(logits, axis=-1)
    if name == "IDENTITY":
        return logits
    if name == "ABS":
        return jnp.abs(logits)
    return jnp.maximum(logits, 0.0)


# neural-tangents' stand-in for -inf in a masked softmax (so that a row of only masked keys stays finite).
_NEG_INF = -1e20


def _masked_logits(name: str, logits, padded):
    """``logits`` with the columns of padded keys (``padded`` broadcast on the
    last axis, ``True`` at padding) excluded: ``-1e20`` before a softmax, 0
    for the other mechanisms (neural-tangents' masking of attention).
    """
    fill = _NEG_INF if name == "SOFTMAX" else 0.0
    return jnp.where(padded, jnp.asarray(fill, logits.dtype), logits)


def _check_axes(batch_axis, channel_axis, ndim: int, what: str):
    if ndim < 3:
        raise ValueError(f"{_WHERE}: attends over spatial positions, so {what} must have shape (batch, "
                         f"positions..., channels) with at least one position axis; got {ndim} axes.")
    if batch_axis % ndim != 0 or channel_axis % ndim != ndim - 1:
        raise NotImplementedError(
            f"{_WHERE}: only batch_axis=0 and channel_axis=-1 (NHWC, this package's layout) are implemented; "
            f"got batch_axis={batch_axis}, channel_axis={channel_axis} for {what} with {ndim} axes. "
            "Move the axes with jnp.moveaxis before the network."
        )


def GlobalSelfAttention(
    n_chan_out: int,
    n_chan_key: int,
    n_chan_val: int,
    n_heads: int,
    linear_scaling: bool = True,
    W_key_std: float = 1.0,
    W_value_std: float = 1.0,
    W_query_std: float = 1.0,
    W_out_std: float = 1.0,
    b_std: Optional[float] = None,
    attention_mechanism: str = "SOFTMAX",
    pos_emb_type: str = "NONE",
    pos_emb_p_norm: float = 2,
    pos_emb_decay_fn: Optional[Callable[[float], float]] = None,
    n_chan_pos_emb: Optional[int] = None,
    W_pos_emb_std: float = 1.0,
    val_pos_emb: bool = False,
    batch_axis: int = 0,
    channel_axis: int = -1,
):
    r"""Global scaled dot-product self-attention over all positions (see the
    module docstring for the finite layer and its kernels).

    Parameters (``init_fn``), as neural-tangents: ``(W_Q, W_K, W_V, W_O, b, E)``
    with ``W_Q`` ``None`` under ``linear_scaling`` (tied to ``W_K``), ``W_K``
    ``(n_heads, C_k, n_chan_key)``, ``W_V`` ``(n_heads, C_v, n_chan_val)``,
    ``W_O`` ``(n_heads n_chan_val, n_chan_out)``, ``b`` ``(1, ..., 1,
    n_chan_out)`` or ``None``, ``E`` ``(1, positions..., C_E)`` or ``None``.

    ``kernel_fn`` with ``linear_scaling=False`` is implemented for
    ``attention_mechanism='IDENTITY'`` only (no closed form is known for the
    others) and raises ``NotImplementedError`` otherwise; ``apply_fn`` works
    for every combination. Only ``batch_axis=0``, ``channel_axis=-1`` are
    implemented (others raise).

    Example:
      >>> import numpy as np
      >>> from ntkcourse import stax
      >>> _, _, kernel_fn = stax.serial(stax.Conv(4, (1,)), stax.GlobalSelfAttention(4, 4, 4, 1))
      >>> kernel_fn(np.ones((2, 3, 1)), None, "nngp").shape
      (2, 2, 3, 3)
    """
    n_chan_out = validation.positive_int(_WHERE, "n_chan_out", n_chan_out)
    n_chan_key = validation.positive_int(_WHERE, "n_chan_key", n_chan_key)
    n_chan_val = validation.positive_int(_WHERE, "n_chan_val", n_chan_val)
    n_heads = validation.positive_int(_WHERE, "n_heads", n_heads)
    if not isinstance(linear_scaling, bool):
        raise validation.fail(_WHERE, "linear_scaling", "True or False", linear_scaling)
    if not isinstance(val_pos_emb, bool):
        raise validation.fail(_WHERE, "val_pos_emb", "True or False", val_pos_emb)
    stds = {name: validation.nonnegative(_WHERE, name, value) for name, value in
            dict(W_key_std=W_key_std, W_value_std=W_value_std, W_query_std=W_query_std,
                 W_out_std=W_out_std, W_pos_emb_std=W_pos_emb_std).items()}
    b_std = validation.nonnegative(_WHERE, "b_std", b_std, allow_none=True)
    mechanism = validation.one_of(_WHERE, "attention_mechanism", attention_mechanism, _MECHANISMS, upper=True)
    pos_emb_type = validation.one_of(_WHERE, "pos_emb_type", pos_emb_type, _POS_EMB, upper=True)
    pos_emb_p_norm = validation.positive(_WHERE, "pos_emb_p_norm", pos_emb_p_norm)
    if pos_emb_decay_fn is not None:
        pos_emb_decay_fn = validation.callable_arg(_WHERE, "pos_emb_decay_fn", pos_emb_decay_fn)
    if n_chan_pos_emb is not None:
        n_chan_pos_emb = validation.positive_int(_WHERE, "n_chan_pos_emb", n_chan_pos_emb)
    for name, value in (("batch_axis", batch_axis), ("channel_axis", channel_axis)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise validation.fail(_WHERE, name, "an int", value)
    qk_std = stds["W_query_std"] * stds["W_key_std"]
    ov_std = stds["W_out_std"] * stds["W_value_std"]
    pe_std = stds["W_pos_emb_std"]

    def pos_channels(n_in):
        if pos_emb_type == "SUM" and n_chan_pos_emb not in (None, n_in):
            raise ValueError(
                f"{_WHERE}: with pos_emb_type='SUM' the embeddings are added to the inputs, so `n_chan_pos_emb` "
                f"must be None or the inputs' {n_in} channels; got {n_chan_pos_emb}."
            )
        return n_in if n_chan_pos_emb is None else n_chan_pos_emb

    def init_fn(key, input_shape):
        input_shape = tuple(input_shape)
        _check_axes(batch_axis, channel_axis, len(input_shape), "input_shape")
        k_q, k_k, k_v, k_o, k_b, k_e = jax.random.split(key, 6)
        n_keys = n_vals = input_shape[-1]
        emb = None
        if pos_emb_type != "NONE":
            n_e = pos_channels(input_shape[-1])
            emb = jax.random.normal(k_e, (1,) + input_shape[1:-1] + (n_e,))
            if pos_emb_type == "CONCAT":
                n_keys += n_e
                n_vals += n_e if val_pos_emb else 0
        W_k = jax.random.normal(k_k, (n_heads, n_keys, n_chan_key))
        W_v = jax.random.normal(k_v, (n_heads, n_vals, n_chan_val))
        W_o = jax.random.normal(k_o, (n_chan_val * n_heads, n_chan_out))
        b = None if b_std is None else jax.random.normal(k_b, (1,) * (len(input_shape) - 1) + (n_chan_out,))
        W_q = None if linear_scaling else jax.random.normal(k_q, (n_heads, n_keys, n_chan_key))
        return input_shape[:-1] + (n_chan_out,), (W_q, W_k, W_v, W_o, b, emb)

    def embedded_inputs(params, x, padded=None):
        """The inputs of the keys/queries and of the values, ``(n, P, C)`` each
        (``padded``: ``(n, P)``, ``True`` where the embeddings are zeroed).
        """
        emb = params[5]
        n, spatial = x.shape[0], x.shape[1:-1]
        flat = x.reshape(n, -1, x.shape[-1])
        if pos_emb_type == "NONE":
            return flat, flat
        if emb is None:
            raise ValueError(f"{_WHERE}: pos_emb_type={pos_emb_type!r} needs the embeddings in `params` (got None).")
        emb = emb.reshape(-1, emb.shape[-1])
        if pos_emb_decay_fn is not None:
            chol = np.linalg.cholesky(positional_covariance(spatial, pos_emb_p_norm, pos_emb_decay_fn))
            emb = jnp.asarray(chol, emb.dtype) @ emb
        emb = jnp.broadcast_to(pe_std * emb[None], (n,) + emb.shape)
        if padded is not None:
            emb = jnp.where(padded[..., None], jnp.zeros((), emb.dtype), emb)
        if pos_emb_type == "SUM":
            pos_channels(x.shape[-1])
            keys_in = flat + emb
        else:
            keys_in = jnp.concatenate([flat, emb], axis=-1)
        return keys_in, (keys_in if val_pos_emb else flat)

    def apply_fn(params, inputs, *, mask=None, **kwargs):
        if isinstance(inputs, MaskedActivations):
            # Padded inputs of the network (apply_fn(..., mask_constant=...)): the masks come with the values.
            if mask is not None:
                raise ValueError(f"{_WHERE}: apply_fn received both `mask` and the masks of padded inputs "
                                 "(mask_constant); pass one of them.")
            if inputs.values.ndim != 3 or inputs.layout is not None:
                raise ValueError(f"{_WHERE}: padded inputs (mask_constant) are implemented for sequences only, "
                                 f"batch first and channels last; got activations of shape {inputs.values.shape} "
                                 f"with (batch_axis, channel_axis) at {inputs.layout or 'the default'}.")
            return masked_output(apply_fn(params, inputs.values, mask=~inputs.real, **kwargs), inputs.real)
        _check_axes(batch_axis, channel_axis, inputs.ndim, "inputs")
        W_q, W_k, W_v, W_o, b, _ = params
        padded = None
        if mask is not None:
            mask = jnp.asarray(mask, bool)
            if mask.shape != inputs.shape[:-1]:
                raise ValueError(f"{_WHERE}: `mask` must have the inputs' shape without channels, "
                                 f"{inputs.shape[:-1]}; got {mask.shape}.")
            padded = mask.reshape(mask.shape[0], -1)
        keys_in, vals_in = embedded_inputs(params, inputs, padded)
        keys = jnp.einsum("npc,hck->hnpk", keys_in, W_k)
        queries = keys if linear_scaling else jnp.einsum("npc,hck->hnpk", keys_in, W_q)
        scale = qk_std / (keys_in.shape[-1] * n_chan_key ** (1.0 if linear_scaling else 0.5))
        logits = scale * jnp.einsum("hnpk,hnqk->hnpq", queries, keys)
        if padded is not None:
            logits = _masked_logits(mechanism, logits, padded[None, :, None, :])
        weights = _mechanism(mechanism, logits)
        # Heads concatenated value-channel-major (index v * n_heads + h), as neural-tangents.
        heads = jnp.einsum("hnpq,nqc,hcv->npvh", weights, vals_in, W_v)
        heads = heads.reshape(heads.shape[:2] + (-1,))
        out = (ov_std / math.sqrt(n_chan_val * n_heads * vals_in.shape[-1])) * (heads @ W_o)
        out = out.reshape(inputs.shape[:-1] + (n_chan_out,))
        return out if b is None else out + b_std * b

    def kernel_map(k: Kernel) -> Kernel:
        _check_axes(batch_axis, channel_axis, len(k.shape1), "x1")
        s = k.spatial_ndim
        if k.diagonal_spatial:
            raise ValueError(f"{_WHERE}: needs the covariance of every pair of positions, but the kernel holds "
                             "only the spatial diagonal (diagonal_spatial=True).")
        spatial = k.shape1[1:-1]
        n_in = k.shape1[-1]
        if pos_emb_type == "NONE":
            w_x, w_e, R = 1.0, 0.0, 0.0
        else:
            n_e = pos_channels(n_in)
            w_x, w_e = (1.0, pe_std**2) if pos_emb_type == "SUM" else (
                n_in / (n_in + n_e), pe_std**2 * n_e / (n_in + n_e))
            R = jnp.asarray(positional_covariance(spatial, pos_emb_p_norm, pos_emb_decay_fn))
        masked = k.is_masked
        if masked:
            if s != 1:
                raise ValueError(f"{_WHERE}: padded inputs (mask_constant) are implemented for sequences only.")
            m1 = k.mask1
            m2 = m1 if k.mask2 is None else k.mask2
            if pos_emb_type != "NONE":
                # Embeddings are zero at padded positions (neural-tangents masks them too).
                R = {"cov1": R * (m1[:, :, None] & m1[:, None, :]),
                     "cov2": R * (m2[:, :, None] & m2[:, None, :]),
                     "nngp": R * (m1[:, None, :, None] & m2[None, :, None, :]),
                     "ntk": R * (m1[:, None, :, None] & m2[None, :, None, :])}
        if not isinstance(R, dict):
            R = dict.fromkeys(("nngp", "ntk", "cov1", "cov2"), R)
        mat = {name: None if getattr(k, name) is None else
               _pairs_to_matrix(getattr(k, name), 1 if name.startswith("cov") else 2, s)
               for name in ("nngp", "ntk", "cov1", "cov2")}
        interp = {name: None if m is None else w_x * m + w_e * R[name] for name, m in mat.items()}
        values = interp if val_pos_emb else mat
        b_var = 0.0 if b_std is None else b_std**2

        if linear_scaling:
            def weights(cov, mask):
                logits = qk_std * cov
                if masked:
                    logits = _masked_logits(mechanism, logits, ~mask[:, None, :])
                return _mechanism(mechanism, logits)

            g1 = weights(interp["cov1"], m1 if masked else None)
            g2 = g1 if interp["cov2"] is None else weights(interp["cov2"], m2 if masked else None)
            attended = {
                "nngp": jnp.einsum("isa,ijab,jtb->ijst", g1, values["nngp"], g2),
                "cov1": jnp.einsum("isa,iab,itb->ist", g1, values["cov1"], g1),
                "cov2": None if mat["cov2"] is None else jnp.einsum("isa,iab,itb->ist", g2, values["cov2"], g2),
                "ntk": None if mat["ntk"] is None else jnp.einsum("isa,ijab,jtb->ijst", g1, values["ntk"], g2),
            }
            out = {name: None if a is None else ov_std**2 * a + b_var for name, a in attended.items()}
            if out["ntk"] is not None:
                out["ntk"] = out["ntk"] + 2.0 * ov_std**2 * attended["nngp"]
        elif mechanism == "IDENTITY":
            var = (qk_std * ov_std) ** 2

            def total(a, c):
                return jnp.sum(a * c, axis=(-2, -1), keepdims=True)

            out = {name: None if interp[name] is None else
                   var * total(interp[name], values[name]) * interp[name] + b_var
                   for name in ("nngp", "cov1", "cov2")}
            out["ntk"] = None
            if mat["ntk"] is not None:
                if val_pos_emb or pos_emb_type == "NONE":
                    ntk_sum = 2.0 * total(interp["nngp"], interp["ntk"])
                else:
                    ntk_sum = total(interp["nngp"], mat["ntk"]) + total(mat["nngp"], interp["ntk"])
                out["ntk"] = var * (ntk_sum * interp["nngp"] + total(interp["nngp"], values["nngp"])
                                    * (interp["ntk"] + 4.0 * interp["nngp"])) + b_var
        else:
            raise NotImplementedError(
                f"{_WHERE}: no closed form is known for the kernel of attention_mechanism={mechanism!r} with "
                "linear_scaling=False (the logits stay Gaussian and the mechanism's expectation has no formula); "
                "use linear_scaling=True, or attention_mechanism='IDENTITY' (apply_fn works for every choice)."
            )
        pairs = {name: None if m is None else _matrix_to_pairs(m, 1 if name.startswith("cov") else 2, spatial)
                 for name, m in out.items()}
        out = k.after_affine(
            nngp=pairs["nngp"], ntk=pairs["ntk"], cov1=pairs["cov1"], cov2=pairs["cov2"],
            shape1=k.shape1[:-1] + (n_chan_out,), shape2=k.shape2[:-1] + (n_chan_out,),
        )
        # Outputs at padded positions are zeroed again, as the input of the next layer.
        return remask(out, k.mask1, k.mask2) if masked else out

    config = dict(n_chan_out=n_chan_out, n_chan_key=n_chan_key, n_chan_val=n_chan_val, n_heads=n_heads,
                  linear_scaling=linear_scaling, b_std=b_std, attention_mechanism=mechanism,
                  pos_emb_type=pos_emb_type, pos_emb_p_norm=pos_emb_p_norm, pos_emb_decay_fn=pos_emb_decay_fn,
                  n_chan_pos_emb=n_chan_pos_emb, val_pos_emb=val_pos_emb, **stds)
    return layer(init_fn, apply_fn, kernel_map, _WHERE, config, has_params=True,
                 input_diagonal=_every_pair, reads_neighbours=True, handles_masks=True)


def _every_pair(output_diagonal):
    """Attention mixes every position with every other: it needs all pairs."""
    return False
