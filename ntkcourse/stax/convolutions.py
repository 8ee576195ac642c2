r"""Transposed and locally connected convolutions (neural-tangents' ``ConvTranspose``, ``ConvLocal``).

Both are affine layers like :func:`~ntkcourse.stax.Conv`, with the same
arguments, parameterisations and fan-in :math:`C_{in} \prod f`; they differ
in which input positions reach an output position and in which weights are
shared, and so in how the covariance between positions propagates.

``ConvTranspose`` (the adjoint of a strided convolution, ``lax.conv_transpose``):
the input is dilated by the strides (``s - 1`` zeros between entries),
padded, and read by a stride-1 window; one filter is shared by all
positions, so, as for ``Conv``, an output pair (o, o') averages the dilated
input covariance over the offsets d applied to both positions:

.. math:: \Sigma'(o, o') = \frac{\sigma_w^2}{\prod f} \sum_d \tilde\Sigma(o + d - a, o' + d - a) + \sigma_b^2,

with :math:`\tilde\Sigma(j, j') = \Sigma(j/s, j'/s)` where both are
multiples of s and 0 elsewhere, and ``a`` the low padding of
``lax.conv_transpose``. ``'CIRCULAR'`` (neural-tangents' definition): the
``'VALID'`` output of length :math:`L = ns + \max(f - s, 0)` is folded onto
:math:`N = ns` positions, each output summing the positions congruent to it
modulo N (centred), :math:`\Sigma'' = F \Sigma' F^\top` on each spatial
pair. Two positions folded together lie N apart, too far apart to share an
input position through the same offset, so their covariance is zero and the
diagonal of :math:`\Sigma''` is F applied to the diagonal of :math:`\Sigma'`.

``ConvLocal`` (locally connected, unshared weights, Novak et al. 2019): every
output position has its own filter and bias, so two different output
positions share no weight and their covariance is zero; at equal positions
it is that of ``Conv``:

.. math::
   \Sigma'(o, o') = \delta_{o o'} \Big(\frac{\sigma_w^2}{\prod f} \sum_d \Sigma(o s + d - a, o s + d - a)
   + \sigma_b^2\Big).

It reads only the spatial diagonal of its input. This is neural-tangents'
way to get kernels of CNNs without weight sharing: with a ``Flatten``
readout, a ``Conv`` network and its ``ConvLocal`` twin have the same kernel
(Novak et al. 2019, "Bayesian deep CNNs with many channels are GPs"); with
global average pooling they differ, as pooling reads the off-diagonal
covariances that weight sharing creates. The NTK follows the same rules
(Arora et al. 2019).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import validation
from ..kernel import Kernel, spatial_diagonal
from .conv_specs import (bias_shape_param, check_layout, conv_dimension_numbers, conv_layouts, filter_shape_param,
                         kernel_geometry, layout_value, spatial_permutation, width_scalings)
from .layer import layer
from .layers import affine_covariance, affine_ntk, check_spatial_rank
from .spatial import (circular_pad, circular_window_average, conv_relayout, pad_amounts, pool_pair_axes,
                      window_average, window_step_mask)

__all__ = ["ConvTranspose", "ConvLocal", "transpose_pads", "fold_matrix", "embed_spatial_diagonal"]

_PARAMETERIZATIONS = ("ntk", "standard")
_PADDINGS = ("SAME", "VALID", "CIRCULAR")
_LETTERS = "DHWXYZUVST"  # spatial letters of lax dimension numbers for the masks (any distinct ones)


def transpose_pads(window: int, stride: int, padding: str):
    """(low, high) padding of the dilated input in ``lax.conv_transpose`` for one spatial axis.

    Output size: ``n * stride`` for ``'SAME'``, ``n * stride + max(window - stride, 0)``
    for ``'VALID'``.
    """
    if padding == "SAME":
        total = window + stride - 2
        low = window - 1 if stride > window - 1 else -(-total // 2)
    else:
        total = window + stride - 2 + max(window - stride, 0)
        low = window - 1
    return low, total - low


def fold_matrix(length: int, size: int) -> np.ndarray:
    """The (size x length) 0/1 matrix of neural-tangents' circular fold of a
    transposed convolution: output t sums the inputs p with
    ``(p - (length - size) // 2) mod size == t``.
    """
    low = (length - size) // 2
    f = np.zeros((size, length))
    f[(np.arange(length) - low) % size, np.arange(length)] = 1.0
    return f


def embed_spatial_diagonal(x, batch_ndim: int, spatial_ndim: int):
    """``(b..., S1, S2, ...) -> (b..., S1, S1', S2, S2', ...)``, zero off the spatial diagonal."""
    for i in range(spatial_ndim):
        axis = batch_ndim + 2 * i
        size = x.shape[axis]
        eye = jnp.eye(size, dtype=x.dtype).reshape((1,) * axis + (size, size) + (1,) * (x.ndim - axis - 1))
        x = jnp.expand_dims(x, axis + 1) * eye
    return x


def _apply_along(x, matrices_by_axis):
    for axis, m in matrices_by_axis:
        x = jnp.moveaxis(jnp.tensordot(jnp.asarray(m, x.dtype), x, axes=([1], [axis])), 0, axis)
    return x


class _Config:
    """Arguments shared by the three convolutions, validated once."""

    def __init__(self, where, out_chan, filter_shape, strides, padding, W_std, b_std, dimension_numbers,
                 parameterization, s, widen_output=True):
        self.where = where
        self.out_chan = validation.positive_int(where, "out_chan", out_chan)
        self.filter_shape = validation.int_tuple(where, "filter_shape", filter_shape)
        self.nd = len(self.filter_shape)
        self.strides = ((1,) * self.nd if strides is None
                        else validation.int_tuple(where, "strides", strides, self.nd))
        self.padding = validation.one_of(where, "padding", padding, _PADDINGS, upper=True)
        self.W_std = validation.nonnegative(where, "W_std", W_std)
        self.b_std = validation.nonnegative(where, "b_std", b_std, allow_none=True)
        self.dimension_numbers = conv_dimension_numbers(where, dimension_numbers, self.nd)
        self.parameterization = validation.one_of(where, "parameterization", parameterization, _PARAMETERIZATIONS)
        self.s = width_scalings(where, s, self.parameterization, stacklevel=4)
        # Output channels: s_out * out_chan in the standard parameterisation
        # (neural-tangents' ConvLocal keeps out_chan: widen_output=False).
        standard = self.parameterization == "standard"
        self.width = self.out_chan * self.s[1] if standard and widen_output else self.out_chan
        self.filter_size = math.prod(self.filter_shape)
        self.w_var = self.W_std**2
        self.b_var = None if self.b_std is None else self.b_std**2

    def as_dict(self):
        return dict(out_chan=self.out_chan, filter_shape=self.filter_shape, strides=self.strides,
                    padding=self.padding, W_std=self.W_std, b_std=self.b_std,
                    dimension_numbers=self.dimension_numbers, parameterization=self.parameterization, s=self.s)

    def check_rank(self, shape, what):
        check_spatial_rank(self.where, what, shape, "a filter", self.filter_shape)

    def check_kernel(self, k: Kernel):
        """The kernel's rank and layout, for ``kernel_fn``."""
        self.check_rank(k.shape1, "x1")
        check_layout(self.where, k, *conv_layouts(self.dimension_numbers)[0])

    def layer(self, init_fn, apply_fn, kernel_map, mask_fn):
        """The layer triple; the output kernel in the output spec's layout.

        ``mask_fn(mask, filters, strides)``: the real output positions (input's
        spatial order, filter and strides in that order); the result is put
        in the output spec's spatial order here.
        """
        def output_mask(mask):
            filters, strides = kernel_geometry(self.where, self.dimension_numbers, self.filter_shape, self.strides)
            out = mask_fn(mask, filters, strides)
            return jnp.transpose(out, (0,) + tuple(1 + p for p in spatial_permutation(self.dimension_numbers)))

        def finite_layouts(ndim):
            (b_in, c_in), (b_out, c_out) = conv_layouts(self.dimension_numbers)
            return layout_value(b_in, c_in, ndim), layout_value(b_out, c_out, ndim)

        return layer(init_fn, apply_fn, lambda k: conv_relayout(kernel_map(k), self.dimension_numbers), self.where,
                     self.as_dict(), has_params=True, reads_neighbours=True,
                     input_layout=conv_layouts(self.dimension_numbers)[0], mask_fn=output_mask,
                     finite_layouts=finite_layouts)

    def c_in(self, shape):
        return shape[self.dimension_numbers[0].index("C")]

    def spatial_axes(self, spec):
        """Axes of ``spec`` holding the spatial letters, in the filter's (rhs) order."""
        return [spec.index(c) for c in self.dimension_numbers[1] if c not in "IO"]

    def scale_output(self, params, out, c_in):
        W, b = params
        if self.parameterization == "ntk":
            out = (self.W_std / math.sqrt(c_in * self.filter_size)) * out
            return out if b is None else out + self.b_std * b
        out = out if self.s[0] == 1 else out / math.sqrt(self.s[0])
        return out if b is None else out + b

    def scale_params(self, W, b, c_in):
        """neural-tangents' standard parameterisation stores scaled parameters."""
        if self.parameterization == "standard":
            W = W * (self.W_std / math.sqrt(c_in * self.filter_size / self.s[0]))
            b = None if b is None else b * self.b_std
        return W, b

    def affine_kernel(self, k: Kernel, window, out_shape1, out_shape2) -> Kernel:
        """The kernel after the layer, given ``window(x, batch_ndim)``, the unscaled
        linear map of the weights' part on each covariance.
        """
        nngp_u = window(k.nngp, 2)
        nngp = affine_covariance(nngp_u, self.w_var, self.b_var)
        ntk = k.ntk
        if ntk is not None:
            ntk = affine_ntk(self.parameterization, nngp_u, window(ntk, 2), nngp, self.w_var,
                             k.shape1[-1] * self.filter_size / self.s[0], self.b_std is not None)
        return k.after_affine(
            nngp=nngp,
            ntk=ntk,
            cov1=affine_covariance(window(k.cov1, 1), self.w_var, self.b_var),
            cov2=None if k.cov2 is None else affine_covariance(window(k.cov2, 1), self.w_var, self.b_var),
            shape1=out_shape1,
            shape2=out_shape2,
        )


def ConvTranspose(
    out_chan: int,
    filter_shape: Sequence[int],
    strides: Optional[Sequence[int]] = None,
    padding: str = "VALID",
    W_std: float = 1.0,
    b_std: Optional[float] = None,
    dimension_numbers=None,
    parameterization: str = "ntk",
    s: Tuple[int, int] = (1, 1),
):
    r"""Transposed convolution (``lax.conv_transpose``), neural-tangents' ``ConvTranspose``.

    NTK parameterisation: :math:`z = \frac{\sigma_w}{\sqrt{C_{in}\prod f}}\, W \star x + \sigma_b b`
    with standard normal ``W`` (HWIO by default) and ``b`` (shape ``(1, ..., 1, out_chan)``);
    the standard parameterisation as in :func:`~ntkcourse.stax.Conv`. Output
    size per spatial axis: ``n * stride`` for ``'SAME'`` and ``'CIRCULAR'``,
    ``n * stride + max(f - stride, 0)`` for ``'VALID'``. The kernel formula
    and the circular fold are in the module docstring. The diagonal of the
    output kernel needs only the diagonal of the input kernel.

    ``dimension_numbers`` as in :func:`~ntkcourse.stax.Conv` (any layout for
    the finite layer and ``kernel_fn``, see :mod:`ntkcourse.stax.conv_specs`).
    ``s``: neural-tangents' width scalings of the standard parameterisation,
    as in :func:`~ntkcourse.stax.Conv`.

    Example:
      >>> import numpy as np
      >>> from ntkcourse import stax
      >>> _, _, kernel_fn = stax.ConvTranspose(1, (2,), strides=(2,))
      >>> x = np.ones((1, 2, 1))
      >>> # each output position gets one filter tap: half of the filter's average
      >>> np.asarray(kernel_fn(x, None, "nngp", diagonal_spatial=True))[0, 0]
      array([0.5, 0.5, 0.5, 0.5])
    """
    cfg = _Config("ConvTranspose", out_chan, filter_shape, strides, padding, W_std, b_std, dimension_numbers,
                  parameterization, s)
    lhs_spec, rhs_spec, out_spec = cfg.dimension_numbers
    op_padding = "VALID" if cfg.padding == "CIRCULAR" else cfg.padding

    def conv(x, W, padding):
        return lax.conv_transpose(x, W, cfg.strides, padding, dimension_numbers=cfg.dimension_numbers)

    def init_fn(key, input_shape):
        cfg.check_rank(input_shape, "input_shape")
        c_in = cfg.c_in(input_shape)
        k1, k2 = jax.random.split(key)
        W = jax.random.normal(k1, filter_shape_param(rhs_spec, cfg.filter_shape, c_in, cfg.width))
        b = None if cfg.b_std is None else jax.random.normal(k2, bias_shape_param(out_spec, cfg.width))
        out = jax.eval_shape(lambda x, w: conv(x, w, "SAME" if cfg.padding == "CIRCULAR" else cfg.padding),
                             jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32),
                             jax.ShapeDtypeStruct(W.shape, jnp.float32))
        return tuple(out.shape), cfg.scale_params(W, b, c_in)

    def apply_fn(params, inputs, **kwargs):
        cfg.check_rank(inputs.shape, "inputs")
        W, _ = params
        out = conv(inputs, W, op_padding)
        if cfg.padding == "CIRCULAR":
            folds = []
            for i, axis in enumerate(cfg.spatial_axes(out_spec)):
                size = inputs.shape[cfg.spatial_axes(lhs_spec)[i]] * cfg.strides[i]
                folds.append((axis, fold_matrix(out.shape[axis], size)))
            out = _apply_along(out, folds)
        return cfg.scale_output(params, out, cfg.c_in(inputs.shape))

    def _out_spatial(shape, filters, strides):
        extra = [max(f - s, 0) if cfg.padding == "VALID" else 0 for f, s in zip(filters, strides)]
        return tuple(n * s + e for n, s, e in zip(shape[1:-1], strides, extra))

    def kernel_map(k: Kernel) -> Kernel:
        cfg.check_kernel(k)
        filters, strides = kernel_geometry("ConvTranspose", cfg.dimension_numbers, cfg.filter_shape, cfg.strides)
        nd = cfg.nd

        def window(x, batch_ndim):
            axes = ([(batch_ndim + i,) for i in range(nd)] if k.diagonal_spatial
                    else [(batch_ndim + 2 * i, batch_ndim + 2 * i + 1) for i in range(nd)])
            config = [(0, 0, 0)] * x.ndim
            for ax, f, s in zip(axes, filters, strides):
                low, high = transpose_pads(f, s, op_padding)
                for a in ax:
                    config[a] = (low, high, s - 1)
            x = lax.pad(x, jnp.zeros((), x.dtype), config)
            x = window_average(x, [(ax, f, 1) for ax, f in zip(axes, filters)], "VALID")
            if cfg.padding != "CIRCULAR":
                return x
            for ax, n, s in zip(axes, k.shape1[1:-1], strides):
                m = fold_matrix(x.shape[ax[0]], n * s)
                x = pool_pair_axes(x, ax[0], m) if len(ax) == 2 else _apply_along(x, [(ax[0], m)])
            return x

        shape1 = (k.shape1[0],) + _out_spatial(k.shape1, filters, strides) + (cfg.width,)
        shape2 = (k.shape2[0],) + _out_spatial(k.shape2, filters, strides) + (cfg.width,)
        return cfg.affine_kernel(k, window, shape1, shape2)

    def mask_fn(mask, filters, strides):
        # An output position is padding when any input position that reaches it is padding (neural-tangents'
        # rule: its mask, True at padding, through lax.conv_transpose with a filter of ones; 'CIRCULAR' with
        # the geometry of 'SAME', before the fold).
        nd = len(filters)
        spec = "N" + _LETTERS[:nd] + "C"
        padded = (~mask).astype(jnp.float32)[..., None]
        reached = lax.conv_transpose(padded, jnp.ones(tuple(filters) + (1, 1), jnp.float32), strides,
                                     "SAME" if cfg.padding == "CIRCULAR" else cfg.padding,
                                     dimension_numbers=(spec, _LETTERS[:nd] + "IO", spec))
        return reached[..., 0] == 0

    return cfg.layer(init_fn, apply_fn, kernel_map, mask_fn)


def ConvLocal(
    out_chan: int,
    filter_shape: Sequence[int],
    strides: Optional[Sequence[int]] = None,
    padding: str = "VALID",
    W_std: float = 1.0,
    b_std: Optional[float] = None,
    dimension_numbers=None,
    parameterization: str = "ntk",
    s: Tuple[int, int] = (1, 1),
):
    r"""Locally connected layer: a convolution whose filter and bias differ at
    every output position (``lax.conv_general_dilated_local``), neural-tangents' ``ConvLocal``.

    Parameters as in neural-tangents: ``W`` of shape
    ``(H_out, W_out, f_h f_w C_in, out_chan)`` (the ``rhs`` layout, its
    spatial axes being output positions and ``I`` the receptive field and
    input channels fused), ``b`` of shape ``(1, H_out, W_out, out_chan)``;
    NTK parameterisation :math:`z = \frac{\sigma_w}{\sqrt{C_{in}\prod f}} (W \star x) + \sigma_b b`;
    padding ``'VALID'``, ``'SAME'``, ``'CIRCULAR'`` and output size as in
    :func:`~ntkcourse.stax.Conv`.

    Kernel (module docstring): zero between different output positions, and
    ``Conv``'s at equal positions; it reads only the spatial diagonal of its
    input. Where the rest of the network needs every pair of positions
    (pooling after it), the input kernel is computed in full and its
    diagonal taken.

    ``s`` (standard parameterisation): as in :func:`~ntkcourse.stax.Conv`,
    except that the layer keeps ``out_chan`` output channels whatever
    ``s[1]``, as neural-tangents 0.6.5's ``ConvLocal`` does (its parameter
    shapes, and so the fan-in ``out_chan / s_in`` of a next layer, are
    neural-tangents'; its docstring promises ``s[1] * out_chan``).
    """
    cfg = _Config("ConvLocal", out_chan, filter_shape, strides, padding, W_std, b_std, dimension_numbers,
                  parameterization, s, widen_output=False)
    lhs_spec, rhs_spec, out_spec = cfg.dimension_numbers
    op_padding = "VALID" if cfg.padding == "CIRCULAR" else cfg.padding

    def wrap(x):
        if cfg.padding != "CIRCULAR":
            return x
        dims = [((axis,), f, s) for axis, f, s in zip(cfg.spatial_axes(lhs_spec), cfg.filter_shape, cfg.strides)]
        return circular_pad(x, dims)

    def out_shape(input_shape):
        """The finite output's shape, with one output channel per filter of ``Conv``'s shape."""
        padding = "SAME" if cfg.padding == "CIRCULAR" else cfg.padding
        w = filter_shape_param(rhs_spec, cfg.filter_shape, cfg.c_in(input_shape), cfg.out_chan)
        out = jax.eval_shape(
            lambda x, w: lax.conv_general_dilated(x, w, cfg.strides, padding, dimension_numbers=cfg.dimension_numbers),
            jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32), jax.ShapeDtypeStruct(w, jnp.float32))
        return tuple(out.shape)

    def init_fn(key, input_shape):
        cfg.check_rank(input_shape, "input_shape")
        c_in = cfg.c_in(input_shape)
        shape = out_shape(input_shape)
        w_shape = tuple(cfg.out_chan if c == "O" else c_in * cfg.filter_size if c == "I"
                        else shape[out_spec.index(c)] for c in rhs_spec)
        b_shape = tuple(1 if c == "N" else (cfg.out_chan if c == "C" else shape[i]) for i, c in enumerate(out_spec))
        k1, k2 = jax.random.split(key)
        W = jax.random.normal(k1, w_shape)
        b = None if cfg.b_std is None else jax.random.normal(k2, b_shape)
        return shape, cfg.scale_params(W, b, c_in)

    def apply_fn(params, inputs, **kwargs):
        cfg.check_rank(inputs.shape, "inputs")
        W, _ = params
        out = lax.conv_general_dilated_local(wrap(inputs), W, cfg.strides, op_padding, cfg.filter_shape,
                                             dimension_numbers=cfg.dimension_numbers)
        return cfg.scale_output(params, out, cfg.c_in(inputs.shape))

    def kernel_map(k: Kernel) -> Kernel:
        cfg.check_kernel(k)
        filters, strides = kernel_geometry("ConvLocal", cfg.dimension_numbers, cfg.filter_shape, cfg.strides)
        nd = cfg.nd
        dims = [((i,), f, s) for i, f, s in zip(range(nd), filters, strides)]

        def diagonal_window(d, batch_ndim):
            shifted = [((batch_ndim + ax[0],), f, s) for ax, f, s in dims]
            if cfg.padding == "CIRCULAR":
                return circular_window_average(d, shifted)
            return window_average(d, shifted, cfg.padding)

        diagonal = k.diagonal_spatial
        if not diagonal:
            k = k.replace(nngp=spatial_diagonal(k.nngp, 2, nd),
                          ntk=None if k.ntk is None else spatial_diagonal(k.ntk, 2, nd),
                          cov1=spatial_diagonal(k.cov1, 1, nd),
                          cov2=None if k.cov2 is None else spatial_diagonal(k.cov2, 1, nd),
                          diagonal_spatial=True)

        def out_spatial(shape):
            return tuple(pad_amounts(shape[1 + i], filters[i], strides[i], op_padding if cfg.padding != "CIRCULAR"
                                     else "SAME")[0] for i in range(nd))

        out = cfg.affine_kernel(k, diagonal_window, (k.shape1[0],) + out_spatial(k.shape1) + (cfg.out_chan,),
                                (k.shape2[0],) + out_spatial(k.shape2) + (cfg.out_chan,))
        if diagonal:
            return out
        return out.replace(nngp=embed_spatial_diagonal(out.nngp, 2, nd),
                           ntk=None if out.ntk is None else embed_spatial_diagonal(out.ntk, 2, nd),
                           cov1=embed_spatial_diagonal(out.cov1, 1, nd),
                           cov2=None if out.cov2 is None else embed_spatial_diagonal(out.cov2, 1, nd),
                           diagonal_spatial=False)

    def mask_fn(mask, filters, strides):
        # As Conv: an output position is padding when its window is centred on a padded position.
        return window_step_mask("ConvLocal", mask, filters, strides, cfg.padding)

    return cfg.layer(init_fn, apply_fn, kernel_map, mask_fn)
