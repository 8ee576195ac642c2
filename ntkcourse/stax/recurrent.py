r"""The recurrent layer (Elman RNN) and its kernels over the time grid (RNTK).

Finite network (NTK parameterisation; ``W`` (n×n), ``U`` (n×m), ``b`` (n)
standard normal, shared by all time steps), for an input sequence
:math:`x_1, \dots, x_T \in \mathbb{R}^m`:

.. math::
    g_t = \frac{\sigma_w}{\sqrt n} W \phi(g_{t-1}) + \frac{\sigma_u}{\sqrt m} U x_t + \sigma_b b,
    \qquad \phi(g_0) = 0,

output :math:`\phi(g_T)` (or the whole sequence :math:`\phi(g_1), \dots, \phi(g_T)`).

Kernels in the limit :math:`n \to \infty` (Alemohammad, Wang, Balestriero &
Baraniuk 2021, "The Recurrent Neural Tangent Kernel"; Yang 2019, "Tensor
Programs I", for why weight sharing across time still gives Gaussian
pre-activations and the gradient-independence used for the NTK). For two
sequences x, x' and steps t, t', with :math:`\Sigma^{in}_{t,t'} = x_t\cdot x'_{t'}/m`
and :math:`\Theta^{in}` the NTK of the inputs (zero for raw data):

.. math::
    \Sigma_{t,t'} &= \sigma_w^2\, \check\phi(\Sigma)_{t-1,t'-1} + \sigma_u^2 \Sigma^{in}_{t,t'} + \sigma_b^2, \\
    \Theta_{t,t'} &= \Sigma_{t,t'} + \sigma_u^2 \Theta^{in}_{t,t'}
        + \sigma_w^2\, \check{\phi'}(\Sigma)_{t-1,t'-1}\, \Theta_{t-1,t'-1},

where the terms with index ``t-1`` or ``t'-1`` are zero when t = 1 or t' = 1
(:math:`\phi(g_0) = 0`), and :math:`\check\phi(\Sigma)_{s,s'} = \mathbb{E}[\phi(u)\phi(v)]`,
:math:`\check{\phi'}(\Sigma)_{s,s'} = \mathbb{E}[\phi'(u)\phi'(v)]` for
:math:`(u, v)` centred Gaussian with variances :math:`\Sigma_{s,s}(x,x)`,
:math:`\Sigma_{s',s'}(x',x')` and covariance :math:`\Sigma_{s,s'}(x,x')` (the
dual of the activation layer, :mod:`ntkcourse.dual`). The first NTK term is the
gradient with respect to the parameters used at step t (W, U and b); the
last carries the gradients of all earlier steps, which pair up across the two
sequences because the same W, U, b serve every step. The layer's output
kernels are those of :math:`\phi(g)`: :math:`\check\phi(\Sigma)_{T,T'}` and
:math:`\Theta_{T,T'} \check{\phi'}(\Sigma)_{T,T'}`, as after any activation.

Standard parameterisation (:math:`W \sim N(0, \sigma_w^2/n)`,
:math:`U \sim N(0, \sigma_u^2/m)`, :math:`b \sim N(0, \sigma_b^2)`): the same
:math:`\Sigma`; the direct gradients enter unscaled,
:math:`\Theta_{t,t'} = n\,\check\phi(\Sigma)_{t-1,t'-1} + m\,\Sigma^{in}_{t,t'} + 1
+ \sigma_u^2\Theta^{in}_{t,t'} + \sigma_w^2 \check{\phi'}(\Sigma)_{t-1,t'-1}\Theta_{t-1,t'-1}`
(the 1 only with a bias), as for :func:`~ntkcourse.stax.Dense`.

How much of the grid is computed: for sequences of one length read out at
their last step only the equal-time pairs :math:`(t, t)` are needed (the
recursion moves along diagonals of the grid), so the engine passes only the
diagonal of the input kernel: O(T) per pair of sequences. Padded sequences
(``mask_constant``) read out at their last real step take the same O(T)
recursion after reordering each sequence padding first (the engine still
forms the input kernel of every pair of steps); ``return_sequences=True``
reads every pair :math:`(t, t')`: O(T T') per pair.

Padding (``mask_constant`` of ``kernel_fn`` and ``apply_fn``, see
:mod:`ntkcourse.engine.masks`): a padded step leaves the state unchanged, so
each sequence starts at its first real step with :math:`\phi(g_0) = 0` and the
output reads its own last real step; the kernel runs the recursion on each
sequence's real steps, in order. A sequence made only of padding keeps
:math:`\phi(g_0) = 0` and is padding after the readout too (its kernel
entries zero, as neural-tangents' global pools treat such an input). With ``return_sequences=True`` the outputs at
padded steps are zero, as their kernel entries, and the masks pass on to the
next layer beside the outputs (:mod:`ntkcourse.stax.masked`; the outermost
``apply_fn`` returns ``mask_constant`` there).
"""
from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp
from jax import lax

from .. import validation
from ..kernel import Kernel
from .layer import layer, layer_spec, remask
from .masked import MaskedActivations, masked_output, read_out_masks

__all__ = ["Recurrent"]

_PARAMETERIZATIONS = ("ntk", "standard")


def _check_sequences(where: str, what: str, shape):
    if len(shape) != 3:
        raise ValueError(
            f"Recurrent: `{what}` must be sequences of shape (batch, T, features) in {where}; got shape "
            f"{tuple(shape)}."
        )


def _dual_of(activation):
    try:
        spec = layer_spec(activation)
    except TypeError:
        spec = None
    act = None if spec is None else spec.config.get("activation")
    if act is None:
        raise ValueError(
            "Recurrent: `activation` must be an activation layer of ntkcourse.stax (e.g. stax.Relu(), stax.Erf()), "
            f"whose dual it uses; got {activation!r}."
        )
    return act


def _shift(x):
    """``y[..., t'] = x[..., t'-1]``, zero at t' = 0 (the state before step 1)."""
    return jnp.concatenate([jnp.zeros_like(x[..., :1]), x[..., :-1]], axis=-1)


def _self_pairs(same, batch_shape):
    """The diagonal of K(x, x) when x2 is None: each sequence with itself (see :func:`_equal_pairs`)."""
    return jnp.eye(batch_shape[0], batch_shape[1], dtype=bool) if same else None


def _equal_pairs(x_eq, c1, c2, same, real1=None, real2=None):
    """Pairs (i, j) of batch entries that are one sequence twice, shape (n1, n2).

    A pair is one sequence twice when, at every step, the equal-time input
    covariance equals both self-variances, ``x_eq[i, j, t] = c1[i, t] =
    c2[j, t]`` (equality in Cauchy-Schwarz: the two steps are one vector), to
    16 units of round-off (the einsums of the input kernel round the cross
    and self products differently), and the two sequences have the same real
    steps (``real1``, ``real2`` (n, T), the same order for both). Two inputs
    that pass are equal or so close that their correlation deficit
    1 - rho at each step is below the round-off of the covariances,
    which the cross recursion could not resolve either. With x2 None the
    diagonal always counts.

    Their equal-time covariance *is* the self-variance; computing it through
    the cross recursion instead gives it up to rounding, and in the chaotic
    phase (gain chi_1 > 1) the recursion amplifies that rounding step after
    step until the computed self-correlation falls to the chaotic fixed
    point rho* < 1 (erf, sigma_w = 3: after ~40 steps). Pinning these entries
    to the variance keeps K(x, x) exact whether it is called as
    ``kernel_fn(x, None)``, ``kernel_fn(x, x)`` or with one sequence at two
    batch positions. Sequences equal only up to rounding are not detected and
    keep the cross recursion's rounding.
    """
    tol = 16 * jnp.finfo(x_eq.dtype).eps
    a, b = c1[:, None, :], c2[None, :, :]
    hit = (jnp.abs(x_eq - a) <= tol * jnp.abs(a)) & (jnp.abs(x_eq - b) <= tol * jnp.abs(b))
    if real1 is not None:
        hit = jnp.where(real1[:, None, :], hit, True) & (real1[:, None, :] == real2[None, :, :])
    eq = jnp.all(hit, axis=-1)
    if same:
        eq = eq | jnp.eye(eq.shape[0], dtype=bool)
        eq = eq & eq.T
    return eq


def _ordered(a, b):
    """The two variances as (smaller, larger): E[phi(u) phi(v)] is symmetric in
    them, and with them in one order the entries (x, x') and (x', x) of K(x, x)
    are computed from identical arguments, so that the kernel is exactly
    symmetric (swapped, the duals' products round differently).
    """
    return jnp.minimum(a, b), jnp.maximum(a, b)


def _gather_steps(x, idx1, idx2):
    """``out[i, j, a, b] = x[i, j, idx1[i, a], idx2[j, b]]`` for ``x`` of shape (n1, n2, T, T')."""
    n1, n2 = x.shape[:2]
    i = jnp.arange(n1)[:, None, None, None]
    j = jnp.arange(n2)[None, :, None, None]
    return x[i, j, idx1[:, None, :, None], idx2[None, :, None, :]]


def _gather_self(x, idx):
    """``out[i, a, b] = x[i, idx[i, a], idx[i, b]]`` for ``x`` of shape (n, T, T)."""
    i = jnp.arange(x.shape[0])[:, None, None]
    return x[i, idx[:, :, None], idx[:, None, :]]


def Recurrent(
    out_dim: int,
    activation,
    W_std: float = 1.0,
    U_std: float = 1.0,
    b_std: Optional[float] = None,
    parameterization: str = "ntk",
    return_sequences: bool = False,
):
    r"""An Elman recurrent layer, finite and infinitely wide (see the module docstring).

    Args:
      out_dim: the width n of the hidden state.
      activation: an activation layer of :mod:`ntkcourse.stax` (``stax.Relu()``,
        ``stax.Erf()``, ...); its dual gives the kernels.
      W_std, U_std, b_std: :math:`\sigma_w, \sigma_u, \sigma_b`; ``b_std=None``
        means no bias.
      parameterization: ``'ntk'`` or ``'standard'``, as for ``Dense``.
      return_sequences: output the state at every step, ``(batch, T, n)``
        (kernels over every pair of steps), rather than at the last step,
        ``(batch, n)``. A ``Dense`` after it acts on each step, so that its
        kernel acts on each pair of steps.

    Inputs are sequences ``(batch, T, m)``; ``apply_fn(params, x, mask_constant=None)``.

    Example:
      >>> import numpy as np
      >>> from ntkcourse import stax
      >>> _, _, kernel_fn = stax.Recurrent(1, stax.Relu(), W_std=1.0, U_std=1.0)
      >>> x = np.ones((1, 2, 1))  # Sigma_1 = 1, Sigma_2 = E[relu(u)^2] + 1 = 1.5
      >>> float(kernel_fn(x, None, "nngp")[0, 0])  # E[relu(u)^2] at Var u = 1.5
      0.75
    """
    out_dim = validation.positive_int("Recurrent", "out_dim", out_dim)
    act = _dual_of(activation)
    W_std = validation.nonnegative("Recurrent", "W_std", W_std)
    U_std = validation.nonnegative("Recurrent", "U_std", U_std)
    b_std = validation.nonnegative("Recurrent", "b_std", b_std, allow_none=True)
    parameterization = validation.one_of("Recurrent", "parameterization", parameterization, _PARAMETERIZATIONS)
    if not isinstance(return_sequences, bool):
        raise validation.fail("Recurrent", "return_sequences", "True or False", return_sequences)
    w_var, u_var = W_std**2, U_std**2
    b_var = 0.0 if b_std is None else b_std**2
    ntk_param = parameterization == "ntk"

    def init_fn(key, input_shape):
        _check_sequences("init_fn", "input_shape", input_shape)
        m = input_shape[-1]
        kw, ku, kb = jax.random.split(key, 3)
        W = jax.random.normal(kw, (out_dim, out_dim))
        U = jax.random.normal(ku, (out_dim, m))
        b = None if b_std is None else jax.random.normal(kb, (out_dim,))
        if not ntk_param:
            W, U = W * (W_std / math.sqrt(out_dim)), U * (U_std / math.sqrt(m))
            b = None if b is None else b * b_std
        out_shape = tuple(input_shape[:2]) + (out_dim,) if return_sequences else (input_shape[0], out_dim)
        return out_shape, (W, U, b)

    def apply_fn(params, inputs, **kwargs):
        W, U, b = params
        padded = isinstance(inputs, MaskedActivations)
        # Padded inputs: values zero at padded steps (and at input entries equal to mask_constant), the
        # masks of the real steps beside them (ntkcourse.stax.masked).
        if padded and inputs.layout is not None:
            raise ValueError("Recurrent: apply_fn(..., mask_constant=...) takes sequences (batch, T, features); "
                             f"the activations reaching it keep their batch and channel axes at {inputs.layout}.")
        mask, inputs = (inputs.real, inputs.values) if padded else (None, inputs)
        _check_sequences("apply_fn", "inputs", inputs.shape)
        m = inputs.shape[-1]
        if m != U.shape[1]:
            raise ValueError(f"Recurrent: input has {m} features but the layer's `params` expect {U.shape[1]}.")
        if mask is None:
            mask = jnp.ones(inputs.shape[:2], bool)
        cw = W_std / math.sqrt(out_dim) if ntk_param else 1.0
        cu = U_std / math.sqrt(m) if ntk_param else 1.0
        drive = cu * jnp.einsum("btm,nm->tbn", inputs, U)
        if b is not None:
            drive = drive + (b_std * b if ntk_param else b)

        def step(h, inp):
            u_t, real = inp
            h_new = act.fn(cw * h @ W.T + u_t)
            h = jnp.where(real[:, None], h_new, h)
            return h, h

        h0 = jnp.zeros((inputs.shape[0], out_dim), drive.dtype)
        h_last, hs = lax.scan(step, h0, (drive, mask.T))
        if not return_sequences:
            return masked_output(h_last, read_out_masks(mask)) if padded else h_last
        hs = jnp.moveaxis(hs, 0, 1)
        return masked_output(hs, mask) if padded else hs

    def variances(c, real=None):
        r"""Self-variances :math:`\Sigma_{t,t}(x, x)`, shape (n, T), from the input's ``c`` (n, T).
        ``real`` (n, T): whether each step is real; after a padded step the
        state is zero (padding first, see ``masked_last_step``).
        """
        real = jnp.ones(c.shape, bool) if real is None else real

        def step(v_prev, inp):
            c_t, real_prev = inp
            v = u_var * c_t + b_var + w_var * jnp.where(real_prev, act.nngp_diag(v_prev), 0.0)
            return v, v

        v1 = u_var * c[:, 0] + b_var
        xs = (jnp.moveaxis(c[:, 1:], 1, 0), jnp.moveaxis(real[:, :-1], 1, 0))
        _, rest = lax.scan(step, v1, xs)
        return jnp.concatenate([v1[:, None], jnp.moveaxis(rest, 0, 1)], axis=1)

    def direct_ntk(S, K_prev, X, m):
        """The NTK term of the parameters as used at the current step (W, U, b)."""
        if ntk_param:
            return S
        return out_dim * K_prev + m * X + (0.0 if b_std is None else 1.0)

    def grid(X, Xn, va, vb, m, self_pairs=None):
        r""":math:`\Sigma` and :math:`\Theta` on the grid: ``X``, ``Xn`` (..., T, T')
        input NNGP and NTK (``Xn`` may be None); ``va`` (..., T), ``vb`` (..., T')
        self-variances. Rows t run in a scan, columns t' vectorised.
        ``self_pairs`` (bool, broadcastable to ``X.shape[:-2]``): pairs that are
        one sequence with itself; their equal-time entries are set to the
        self-variance (see :func:`_pin_self`).
        """
        rows = jnp.moveaxis(X, -2, 0)
        rows_n = None if Xn is None else jnp.moveaxis(Xn, -2, 0)
        va_rows = jnp.moveaxis(va, -1, 0)
        cols = jnp.arange(X.shape[-1])

        def pin(S, t, va_t):
            if self_pairs is None:
                return S
            return jnp.where(self_pairs[..., None] & (cols == t), va_t[..., None], S)

        def row(S_prev, T_prev, va_prev, x_row, xn_row, t, va_t):
            if S_prev is None:
                K_sh = jnp.zeros_like(x_row)
                DT_sh = K_sh
            else:
                a, b = _ordered(va_prev[..., None], vb)
                K_sh = _shift(act.nngp(a, b, S_prev))
                DT_sh = None if T_prev is None else _shift(act.dnngp(a, b, S_prev) * T_prev)
            S = pin(w_var * K_sh + u_var * x_row + b_var, t, va_t)
            if xn_row is None:
                return S, None
            Th = direct_ntk(S, K_sh, x_row, m) + u_var * xn_row + w_var * DT_sh
            return S, Th

        S1, T1 = row(None, None, None, rows[0], None if rows_n is None else rows_n[0], 0, va_rows[0])

        def step(carry, inp):
            S_prev, T_prev = carry
            va_prev, x_row, xn_row, t, va_t = inp
            S, Th = row(S_prev, T_prev, va_prev, x_row, xn_row, t, va_t)
            return (S, Th), (S, Th)

        xs = (va_rows[:-1], rows[1:], None if rows_n is None else rows_n[1:], jnp.arange(1, X.shape[-2]),
              va_rows[1:])
        _, (S_rest, T_rest) = lax.scan(step, (S1, T1), xs)
        S = jnp.moveaxis(jnp.concatenate([S1[None], S_rest]), 0, -2)
        Th = None if T1 is None else jnp.moveaxis(jnp.concatenate([T1[None], T_rest]), 0, -2)
        return S, Th

    def diagonal(X, Xn, va, vb, m, both=None, self_pairs=None):
        """The same recursion on the equal-time pairs only: ``X`` (..., T).
        ``both`` (..., T): whether step t is real in both sequences; where it
        is not, the next step sees zero states (padding first). ``self_pairs``
        as for ``grid``.
        """
        cols = jnp.moveaxis(X, -1, 0)
        cols_n = None if Xn is None else jnp.moveaxis(Xn, -1, 0)
        va_c, vb_c = jnp.moveaxis(va, -1, 0), jnp.moveaxis(vb, -1, 0)
        both_c = jnp.ones(cols.shape, bool) if both is None else jnp.moveaxis(both, -1, 0)

        def pin(S, va_t):
            return S if self_pairs is None else jnp.where(self_pairs, va_t, S)

        def at(S_prev, T_prev, a, b, x, xn, va_t, real_prev=None):
            if S_prev is None:
                K_prev = jnp.zeros_like(x)
                DT = K_prev
            else:
                a, b = _ordered(a, b)
                K_prev = jnp.where(real_prev, act.nngp(a, b, S_prev), 0.0)
                DT = None if T_prev is None else jnp.where(real_prev, act.dnngp(a, b, S_prev) * T_prev, 0.0)
            S = pin(w_var * K_prev + u_var * x + b_var, va_t)
            if xn is None:
                return S, None
            return S, direct_ntk(S, K_prev, x, m) + u_var * xn + w_var * DT

        S1, T1 = at(None, None, None, None, cols[0], None if cols_n is None else cols_n[0], va_c[0])

        def step(carry, inp):
            a, b, x, xn, va_t, real_prev = inp
            S, Th = at(*carry, a, b, x, xn, va_t, real_prev)
            return (S, Th), (S, Th)

        xs = (va_c[:-1], vb_c[:-1], cols[1:], None if cols_n is None else cols_n[1:], va_c[1:], both_c[:-1])
        _, (S_rest, T_rest) = lax.scan(step, (S1, T1), xs)
        S = jnp.moveaxis(jnp.concatenate([S1[None], S_rest]), 0, -1)
        Th = None if T1 is None else jnp.moveaxis(jnp.concatenate([T1[None], T_rest]), 0, -1)
        return S, Th

    def post(va, vb, S, Th):
        va, vb = _ordered(va, vb)
        nngp = act.nngp(va, vb, S)
        ntk = None if Th is None else Th * act.dnngp(va, vb, S)
        return nngp, ntk

    def last_step_output(k, v1, v2, S_l, T_l, same):
        nngp, ntk = post(v1[:, None], v2[None, :], S_l, T_l)
        return k.replace(
            nngp=nngp, ntk=ntk, cov1=act.nngp_diag(v1), cov2=None if same else act.nngp_diag(v2),
            shape1=(k.shape1[0], out_dim), shape2=(k.shape2[0], out_dim), is_gaussian=False, is_input=False,
            diagonal_spatial=False, mask1=None, mask2=None,
        )

    def masked_last_step(k: Kernel, m: int) -> Kernel:
        """Padded sequences read out at their last real step, in O(T) per pair:
        each sequence's steps reordered padding first, real steps last in
        order (a zero state before the first real step is what h_0 = 0 gives),
        so every sequence ends at step T and the recursion runs along the
        diagonal t = t' with zero states after padded steps.
        """
        same = k.cov2 is None
        mask1 = k.mask1
        mask2 = mask1 if same else k.mask2
        perm1 = jnp.argsort(mask1, axis=1, stable=True)
        perm2 = perm1 if same else jnp.argsort(mask2, axis=1, stable=True)
        real1 = jnp.take_along_axis(mask1, perm1, axis=1)
        real2 = real1 if same else jnp.take_along_axis(mask2, perm2, axis=1)
        i = jnp.arange(mask1.shape[0])[:, None, None]
        j = jnp.arange(mask2.shape[0])[None, :, None]
        p1, p2 = perm1[:, None, :], perm2[None, :, :]
        X = k.nngp[i, j, p1, p2]
        Xn = None if k.ntk is None else k.ntk[i, j, p1, p2]
        c1 = jnp.take_along_axis(jnp.diagonal(k.cov1, axis1=1, axis2=2), perm1, axis=1)
        V1 = variances(c1, real1)
        if same:
            V2 = V1
        else:
            c2 = jnp.take_along_axis(jnp.diagonal(k.cov2, axis1=1, axis2=2), perm2, axis=1)
            V2 = variances(c2, real2)
        both = real1[:, None, :] & real2[None, :, :]
        pairs = _equal_pairs(X, c1, c1 if same else c2, same, real1, real2)
        S, Th = diagonal(X, Xn, V1[:, None, :], V2[None, :, :], m, both, pairs)
        out = last_step_output(k, V1[:, -1], V2[:, -1], S[..., -1], None if Th is None else Th[..., -1], same)
        # A sequence made only of padding never leaves its initial state phi(g_0) = 0, and stays padding
        # after the readout (ntkcourse.stax.masked.read_out_masks): its kernel entries are zero.
        return remask(out, read_out_masks(mask1), None if same else read_out_masks(mask2))

    def kernel_map(k: Kernel) -> Kernel:
        if k.spatial_ndim != 1:
            _check_sequences("kernel_fn", "x1", k.shape1)
        m = k.shape1[-1]
        masked = k.is_masked
        if masked and k.diagonal_spatial:
            raise ValueError("Recurrent: masked sequences need every pair of time steps, not only the diagonal.")
        if masked and not return_sequences:
            return masked_last_step(k, m)
        diag = k.diagonal_spatial
        c1 = k.cov1 if diag else jnp.diagonal(k.cov1, axis1=1, axis2=2)
        same = k.cov2 is None
        X, Xn, C1, C2 = k.nngp, k.ntk, k.cov1, k.cov2
        if masked:
            mask1 = k.mask1
            mask2 = mask1 if same else k.mask2
            # Each sequence's real steps first, in order (stable sort).
            perm1 = jnp.argsort(~mask1, axis=1, stable=True)
            perm2 = perm1 if same else jnp.argsort(~mask2, axis=1, stable=True)
            X = _gather_steps(X, perm1, perm2)
            Xn = None if Xn is None else _gather_steps(Xn, perm1, perm2)
            C1 = _gather_self(C1, perm1)
            C2 = None if same else _gather_self(C2, perm2)
            c1 = jnp.diagonal(C1, axis1=1, axis2=2)
        c2 = c1 if same else (k.cov2 if diag else jnp.diagonal(C2, axis1=1, axis2=2))
        V1 = variances(c1)
        V2 = V1 if same else variances(c2)
        va, vb = V1[:, None, :], V2[None, :, :]
        if diag:
            pairs = _equal_pairs(X, c1, c2, same)
        elif X.shape[-2] == X.shape[-1]:
            real = None
            if masked:  # real steps first after the reordering above
                real = (jnp.take_along_axis(mask1, perm1, axis=1), jnp.take_along_axis(mask2, perm2, axis=1))
            pairs = _equal_pairs(jnp.diagonal(X, axis1=-2, axis2=-1), c1, c2, same, *(real or (None, None)))
        else:
            pairs = _self_pairs(same, X.shape[:2])
        if diag:
            S, Th = diagonal(X, Xn, va, vb, m, self_pairs=pairs)
        else:
            S, Th = grid(X, Xn, va, vb, m, pairs)
        n1, n2 = X.shape[:2]
        if not return_sequences:
            if diag:
                S_l = S[..., -1]
                T_l = None if Th is None else Th[..., -1]
            else:
                S_l = S[..., -1, -1]
                T_l = None if Th is None else Th[..., -1, -1]
            return last_step_output(k, V1[:, -1], V2[:, -1], S_l, T_l, same)
        if diag:
            nngp, ntk = post(va, vb, S, Th)
            cov1 = act.nngp_diag(V1)
            cov2 = None if same else act.nngp_diag(V2)
        else:
            nngp, ntk = post(va[..., :, None], vb[..., None, :], S, Th)
            S11, _ = grid(C1, None, V1, V1, m, jnp.ones(C1.shape[:1], bool))
            cov1, _ = post(V1[:, :, None], V1[:, None, :], S11, None)
            cov2 = None
            if not same:
                S22, _ = grid(C2, None, V2, V2, m, jnp.ones(C2.shape[:1], bool))
                cov2, _ = post(V2[:, :, None], V2[:, None, :], S22, None)
        if masked:
            # Back to the original positions: step t holds the state after the
            # sequence's c(t)-th real step; padded steps get zero.
            idx1 = jnp.maximum(jnp.cumsum(mask1, axis=1) - 1, 0)
            idx2 = idx1 if same else jnp.maximum(jnp.cumsum(mask2, axis=1) - 1, 0)
            both = mask1[:, None, :, None] & mask2[None, :, None, :]
            nngp = jnp.where(both, _gather_steps(nngp, idx1, idx2), 0.0)
            ntk = None if ntk is None else jnp.where(both, _gather_steps(ntk, idx1, idx2), 0.0)
            cov1 = jnp.where(mask1[:, :, None] & mask1[:, None, :], _gather_self(cov1, idx1), 0.0)
            if not same:
                cov2 = jnp.where(mask2[:, :, None] & mask2[:, None, :], _gather_self(cov2, idx2), 0.0)
        return k.replace(
            nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2,
            shape1=k.shape1[:2] + (out_dim,), shape2=k.shape2[:2] + (out_dim,), is_gaussian=False, is_input=False,
        )

    def input_diagonal(output_diagonal):
        # Read out at the last step, the recursion needs only equal-time pairs;
        # a sequence output needs what its readout needs.
        return True if not return_sequences else output_diagonal

    return layer(
        init_fn,
        apply_fn,
        kernel_map,
        "Recurrent",
        dict(out_dim=out_dim, activation=act, W_std=W_std, U_std=U_std, b_std=b_std,
             parameterization=parameterization, return_sequences=return_sequences),
        has_params=True,
        input_diagonal=input_diagonal,
        reads_neighbours=True,
        handles_masks=True,
    )
