"""The public ``kernel_fn`` of a network, from its ``Kernel -> Kernel`` map.

:func:`make_kernel_fn` is the one boundary between what a network is and how
its kernel is computed: a layer (:mod:`ntkcourse.stax`) hands over its kernel
map and the requirement it puts on its input kernel; this module checks the
arguments, builds the input kernel, and chooses how to run the map:

* flat inputs: one jitted call, or for ``K(x, x)`` of many inputs the
  symmetric tiles (:mod:`ntkcourse.engine.tiles`), with the input Gram by BLAS
  on the host for concrete inputs on the CPU (:mod:`ntkcourse.engine.host`);
* image inputs: blocks within the memory budget (:mod:`ntkcourse.engine.blocks`),
  with only the spatial diagonal carried through the network when the readout
  needs no more (``Flatten``);
* traced inputs (under ``jax.jit``, ``vmap``, ``grad``): one pure-XLA call.
"""
from __future__ import annotations

import functools
from collections import namedtuple
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import validation
from ..kernel import Kernel, spatial_diagonal
from .blocks import blocked_kernel
from .compile import WIDE_VECTOR_OPTIONS, kernel_jit, one_program
from .host import host_gram, host_inputs, to_device
from .inputs import check_input, input_kernel, kernel_from_gram
from .masks import masked_input_kernel, position_mask, with_mask_channel
from .patterns import pattern_pair, patterned_input_kernel, with_pattern_channels
from .outputs import caller_precision
from .plan import ExecutionPlan, default_plan
from .tiles import symmetric_tiles, symmetric_tiles_host

__all__ = ["make_kernel_fn", "GET_NAMES"]

# The names `get` may ask for: every field of neural-tangents' Kernel that this package's Kernel carries
# with the same meaning (not the masks: neural-tangents' are broadcast to the activations, True at padding;
# not is_input, which 0.6.5 never sets).
GET_NAMES = ("nngp", "ntk", "cov1", "cov2", "shape1", "shape2", "is_gaussian", "diagonal_spatial", "x1_is_x2",
             "is_reversed", "diagonal_batch", "batch_axis", "channel_axis")

_UNSUPPORTED = {
    "diagonal_batch": "only diagonal_batch=True (neural-tangents' default) is implemented; cov1 and cov2 hold the "
                      "covariance of each input with itself.",
}


def _packed(k):
    if isinstance(k, (list, tuple)):  # the branches of a FanOut
        return type(k)(_packed(one) for one in k)
    if isinstance(k, Kernel) and k.ntk is not None and k.ntk.shape == k.nngp.shape:
        # One output for the pair (see engine.compile.fused_pair); unpacked outside the jit.
        return k.replace(nngp=lax.complex(k.nngp, k.ntk), ntk=None)
    return k


def _stage_groups(stages):
    """Consecutive maps grouped into programs. A map that reads its input at
    several positions (a convolution) runs as a program of its own, so that
    both its input and its output are stored once in memory: XLA's CPU fusion
    would otherwise recompute the producer at every position it is read (an
    activation at every filter offset), and the window sum at every place the
    next map reads its result (an activation reads each entry several times).
    Measured on 16 x 16 pairs of 8 x 8 images: convolution and ReLU in one
    program 18-22 ns of CPU per entry, as two programs 9 ns; the whole
    3-layer CNN-GAP kernel of 96 digits 1.6-2.2x faster (benchmarks/bench_cnn.py).
    """
    groups = []
    previous_reads_neighbours = False
    for m, reads_neighbours in stages:
        if reads_neighbours or previous_reads_neighbours or not groups:
            groups.append([])
        groups[-1].append(m)
        previous_reads_neighbours = reads_neighbours
    return groups


def _compose(maps):
    def run(k):
        k = _unpacked(k)
        for m in maps:
            k = m(k)
        return _packed(k)

    return run


def _unpacked(k):
    if isinstance(k, (list, tuple)):
        return type(k)(_unpacked(one) for one in k)
    if _is_packed(k):
        return k.replace(nngp=jnp.real(k.nngp), ntk=jnp.imag(k.nngp))
    return k


def _is_packed(k) -> bool:
    return isinstance(k, Kernel) and k.ntk is None and jnp.iscomplexobj(k.nngp)


def _under_a_trace() -> bool:
    """Whether the call runs inside a JAX transformation (jit, grad, vmap) of the caller.

    JAX 0.10 has no public test for this, so the private one is used where it
    exists; on a JAX without it the answer is ``False`` and only traced
    *inputs* select the pure-XLA path (hyper-parameters given as tracers
    with concrete inputs then need the inputs traced too, e.g. under ``jit``).
    """
    try:
        from jax._src import core

        return not core.trace_state_clean()
    except (ImportError, AttributeError):  # pragma: no cover - other JAX versions
        return False


def _in_one_program(fn):
    """``fn`` traced inside :func:`ntkcourse.engine.compile.one_program`."""

    @functools.wraps(fn)  # keeps the signature, for jit's static_argnames
    def traced(*args, **kwargs):
        with one_program():
            return fn(*args, **kwargs)

    return traced


_real = jax.jit(jnp.real)
_imag = jax.jit(jnp.imag)


class _Programs:
    """The jitted programs of one network under one set of compiler options."""

    def __init__(self, kernel_map: Callable, compiler_options, stages):
        def jit(fn, *static):
            return kernel_jit(fn, compiler_options=compiler_options, static_argnames=static)

        groups = _stage_groups(stages)
        self.stages = [jit(_compose(group)) for group in groups]
        # The same programs, allowed to write their output over their input
        # (for the blocked path, whose intermediates are used once).
        self.donating_stages = [kernel_jit(_compose(group), compiler_options=compiler_options, donate_argnums=0)
                                for group in groups]

        def input_and_first(x1, x2, compute_ntk, dtype, diagonal_spatial=False):
            return _compose(groups[0])(input_kernel(x1, x2, compute_ntk, dtype, diagonal_spatial))

        # Sequences with padding: the mask rides as the last feature (see engine.masks).
        def masked_input_and_first(x1, x2, compute_ntk, dtype, diagonal_spatial=False):
            return _compose(groups[0])(masked_input_kernel(x1, x2, compute_ntk, dtype, diagonal_spatial))

        # The input kernel and the first group of maps as one program: the
        # input kernel is a product of the inputs (for images, x_h x'_h'
        # summed over channels), cheaper to form inside the first map's loop
        # (a convolution's window sum) than to store and read back, and its
        # NTK is zero, which XLA then drops from that loop. Measured on
        # 16 x 16 pairs of 8 x 8 digits: 6.1 ms as two programs, 2.7 ms as one.
        self.input_and_first = jit(input_and_first, "compute_ntk", "dtype", "diagonal_spatial")
        self.masked_input_and_first = jit(masked_input_and_first, "compute_ntk", "dtype", "diagonal_spatial")

        def from_inputs(x1, x2, compute_ntk, dtype, diagonal_spatial=False):
            return _packed(kernel_map(input_kernel(x1, x2, compute_ntk, dtype, diagonal_spatial)))

        def from_gram(gram, cov1, cov2, shape1, shape2, compute_ntk):
            return _packed(kernel_map(kernel_from_gram(gram, cov1, cov2, shape1, shape2, compute_ntk)))

        def from_gram_tile(gram, sq_norms, i0, j0, rows, cols, channels, compute_ntk):
            """The network's kernel on the tile ``[i0:i0+rows, j0:j0+cols]`` of the
            undivided input Gram ``x x^T`` (``sq_norms``: its diagonal, ``|x|^2``).
            The division by the number of features is fused into the recursion.
            """
            g = lax.dynamic_slice(gram, (i0, j0), (rows, cols)) / channels
            cov1 = lax.dynamic_slice_in_dim(sq_norms, i0, rows) / channels
            cov2 = lax.dynamic_slice_in_dim(sq_norms, j0, cols) / channels
            k = kernel_from_gram(g, cov1, cov2, (rows, channels), (cols, channels), compute_ntk)
            return _packed(kernel_map(k))

        def from_masked_inputs(x1, x2, compute_ntk, dtype, diagonal_spatial=False):
            return _packed(kernel_map(masked_input_kernel(x1, x2, compute_ntk, dtype, diagonal_spatial)))

        self.from_inputs = jit(from_inputs, "compute_ntk", "dtype", "diagonal_spatial")
        self.from_masked_inputs = jit(from_masked_inputs, "compute_ntk", "dtype", "diagonal_spatial")
        # The same, for the pure-XLA path inside the caller's trace (see engine.compile.one_program).
        self.traced_from_inputs = jit(_in_one_program(from_inputs), "compute_ntk", "dtype", "diagonal_spatial")
        self.traced_from_masked_inputs = jit(_in_one_program(from_masked_inputs), "compute_ntk", "dtype",
                                             "diagonal_spatial")
        self.from_gram = jit(from_gram, "shape1", "shape2", "compute_ntk")
        self.from_gram_tile = jit(from_gram_tile, "rows", "cols", "channels", "compute_ntk")
        self._jit = jit
        self._first = groups[0]
        self._kernel_map = kernel_map
        self._patterned = {}

    def patterned(self, layout1, layout2):
        """``(input_and_first, traced_from_inputs)`` for graph inputs whose patterns
        ride as extra channels with these layouts (see :mod:`ntkcourse.engine.patterns`);
        the second is for the pure-XLA path only.
        """
        key = (layout1, layout2)
        if key not in self._patterned:
            first, kernel_map = _compose(self._first), self._kernel_map

            def input_and_first(x1, x2, compute_ntk, dtype, diagonal_spatial=False):
                return first(patterned_input_kernel(x1, x2, compute_ntk, dtype, diagonal_spatial, layout1, layout2))

            def from_inputs(x1, x2, compute_ntk, dtype, diagonal_spatial=False):
                k = patterned_input_kernel(x1, x2, compute_ntk, dtype, diagonal_spatial, layout1, layout2)
                return _packed(kernel_map(k))

            statics = ("compute_ntk", "dtype", "diagonal_spatial")
            self._patterned[key] = (self._jit(input_and_first, *statics),
                                    self._jit(_in_one_program(from_inputs), *statics))
        return self._patterned[key]


def make_kernel_fn(kernel_map: Callable, input_diagonal: Callable[[bool], bool], stages=None,
                   reads_patterns: bool = False, reads_identity: bool = False):
    """Wrap a ``Kernel -> Kernel`` map into the public ``kernel_fn``.

    Args:
      kernel_map: the network's map from the input kernel to the output kernel.
      input_diagonal: ``input_diagonal(output_diagonal) -> bool``: whether the
        network needs only the spatial diagonal of its input kernel when only
        the diagonal of its output is asked for (``True`` for a network read
        out by ``Flatten``, whatever is asked).
      stages: ``kernel_map`` as a sequence of ``(map, reads_neighbours)``
        whose composition it is (``None``: the map alone). Kernels over
        images are computed in programs that each start at a map reading its
        input at several positions (a convolution): XLA then stores that
        input once, instead of fusing the activation before it into every
        read (it would recompute the activation at every filter offset).
      reads_patterns: whether the network has a layer that reads graph
        patterns (:func:`ntkcourse.stax.Aggregate`); only then does
        ``kernel_fn`` accept ``pattern=``.
      reads_identity: whether a layer's map reads whether its kernel is of
        x1 with itself (``cov2`` is ``None``; ``Dropout(mode='train')``).
        Then ``kernel_fn(x1, x2)`` with ``x2`` the same array object as
        ``x1``, or concrete and equal to it (same
        shape, ``|x1 - x2| < 1e-12`` in every entry, NaN matching NaN:
        neural-tangents' ``x1_is_x2``), computes the kernel of x1 with itself
        (and returns ``cov2`` equal to ``cov1``); with traced inputs of equal
        shapes (under ``jax.jit``) the same test is made in the program
        (``lax.cond`` between the two kernels). Graph inputs (``pattern=``)
        with ``x2`` given are taken as different inputs. The symmetric tiles of flat
        inputs are then computed by XLA from the inputs, not from the host
        Gram (whose tiles all carry ``cov2``), so that diagonal tiles are
        told apart.
    """
    stages = ((kernel_map, False),) if stages is None else tuple(stages)
    programs = {}

    def programs_for(plan: ExecutionPlan) -> _Programs:
        key = plan.wide_vectors
        if key not in programs:
            programs[key] = _Programs(kernel_map, WIDE_VECTOR_OPTIONS if plan.wide_vectors else None, stages)
        return programs[key]

    def run(x1, x2, compute_ntk, dtype, originals, plan, diagonal_spatial, masked=False, layouts=None):
        n = np.shape(x1)[0]
        # Traced inputs, or traced hyper-parameters (W_std under jax.grad) inside the caller's trace.
        traced = isinstance(x1, jax.core.Tracer) or isinstance(x2, jax.core.Tracer) or _under_a_trace()
        # Compiler options are only allowed on a top-level jit: inside the
        # caller's trace the recursion becomes part of the caller's program.
        progs = programs_for(plan.replace(wide_vectors=False) if traced else plan)
        if masked:
            if traced:
                return progs.traced_from_masked_inputs(x1, x2, compute_ntk, dtype, False)
            return blocked_kernel(progs.masked_input_and_first, progs.stages[1:], x1, x2, compute_ntk, dtype, False,
                                  plan, donating_stages=progs.donating_stages[1:])
        if layouts is not None:
            input_and_first, from_inputs = progs.patterned(*layouts)
            diag = bool(input_diagonal(diagonal_spatial))
            if traced:
                return from_inputs(x1, x2, compute_ntk, dtype, diag)
            return blocked_kernel(input_and_first, progs.stages[1:], x1, x2, compute_ntk, dtype, diag, plan,
                                  donating_stages=progs.donating_stages[1:])
        if x1.ndim > 2:
            diag = bool(input_diagonal(diagonal_spatial))
            if traced:
                return progs.traced_from_inputs(x1, x2, compute_ntk, dtype, diag)
            return blocked_kernel(progs.input_and_first, progs.stages[1:], x1, x2, compute_ntk, dtype, diag, plan,
                                  donating_stages=progs.donating_stages[1:])
        host = None if (traced or not plan.host_gram) else host_inputs(x1, x2, originals)
        if x2 is None and n >= 2 * plan.symmetric_tile and not traced:
            if host is None or reads_identity:  # every host tile carries cov2 (see make_kernel_fn's doc)
                return symmetric_tiles(progs.from_inputs, x1, plan.symmetric_tile, compute_ntk, dtype)
            return symmetric_tiles_host(progs.from_gram_tile, x1, host[0], plan.symmetric_tile, compute_ntk)
        if host is None:
            return progs.from_inputs(x1, x2, compute_ntk, dtype)
        device = next(iter(x1.devices()))
        gram, cov1, cov2 = [None if a is None else to_device(a, device) for a in host_gram(*host)]
        shape2 = x1.shape if x2 is None else x2.shape
        return progs.from_gram(gram, cov1, cov2, tuple(x1.shape), tuple(shape2), compute_ntk)

    def kernel_fn(x1, x2=None, get=None, *, dtype=jnp.float64, diagonal_spatial: bool = False,
                  plan: Optional[ExecutionPlan] = None, mask_constant=None, pattern=None, **kwargs):
        """Infinite-width kernels of the network for inputs x1 and x2.

        Args:
          x1: inputs, shape ``(n1, features)`` or NHWC ``(n1, H, W, C)``;
            or a :class:`~ntkcourse.kernel.Kernel` (to continue a computation).
          x2: second inputs with the same trailing shape, or ``None`` for x1.
          get: ``'nngp'``, ``'ntk'``, a tuple of them, or ``None`` for the full
            :class:`~ntkcourse.kernel.Kernel`; the other names of
            neural-tangents' ``Kernel`` with the same meaning here
            (``'cov1'``, ``'cov2'``, ``'shape1'``, ``'shape2'``,
            ``'is_gaussian'``, ``'diagonal_spatial'``, ``'x1_is_x2'``,
            ``'is_reversed'``, ``'diagonal_batch'``, ``'batch_axis'``,
            ``'channel_axis'``) may be asked for too.
          dtype: ``jnp.float64`` (default, whatever the global JAX setting) or
            ``jnp.float32``.
          diagonal_spatial: for outputs that keep spatial axes, return only
            the covariance of equal positions, ``(n1, n2, H, W)`` instead of
            ``(n1, n2, H, H, W, W)`` (neural-tangents' option of that name).
          plan: an :class:`~ntkcourse.engine.ExecutionPlan` (memory budget,
            tiles, ...); ``None`` for the default plan.
          mask_constant: for sequences ``(batch, T, features)`` of different
            lengths padded to one ``T``, or images ``(batch, H, W, C)``
            padded to one size: the value of the padding (entries equal to
            it are zero; a position whose channels all equal it is padding;
            ``NaN`` allowed).
            ``None`` (default): nothing is masked. See
            :mod:`ntkcourse.engine.masks`.
          pattern: for networks with :func:`ntkcourse.stax.Aggregate` layers
            (only there): ``(pattern1, pattern2)``, the graph of each input of
            x1 and of x2 (batch axis first, in the form the ``Aggregate``
            layers take); with ``x2=None`` the pattern of x1 alone may be
            given. ``None`` (default): no aggregation. See
            :mod:`ntkcourse.engine.patterns`.

        Returns:
          an array for a single name; a named tuple with fields in the order of
          ``get`` for a tuple; the :class:`~ntkcourse.kernel.Kernel` for ``None``.
          Float64 JAX arrays in JAX's 64-bit mode; with that mode off, NumPy
          float64 arrays (float32 under the caller's ``jit``/``grad``/``vmap``),
          see :mod:`ntkcourse.engine.outputs`.

        Raises:
          TypeError: for a keyword argument this function does not implement
            (none is silently ignored).
          ntkcourse.engine.KernelMemoryError: when even one block of the
            computation does not fit the plan's memory budget.
        """
        validation.no_unknown_kwargs("kernel_fn", kwargs, _UNSUPPORTED)
        if pattern is not None and not reads_patterns:
            raise TypeError(
                "kernel_fn: the keyword argument `pattern` is read only by stax.Aggregate layers, and this network "
                "has none; it would be ignored, so it is refused."
            )
        names = validation.get_names("kernel_fn", get, GET_NAMES)
        if not isinstance(diagonal_spatial, (bool, np.bool_)):
            raise validation.fail("kernel_fn", "diagonal_spatial", "True or False", diagonal_spatial)
        plan = default_plan() if plan is None else plan
        if not isinstance(plan, ExecutionPlan):
            raise validation.fail("kernel_fn", "plan", "an ntkcourse.engine.ExecutionPlan or None", plan)
        if isinstance(x1, Kernel):
            if mask_constant is not None:
                raise ValueError("kernel_fn: `mask_constant` applies to input arrays, not to a Kernel.")
            if pattern is not None:
                if x2 is not None:
                    raise ValueError("kernel_fn: given a Kernel, `x2` must be None.")
                p1, p2 = pattern if isinstance(pattern, (tuple, list)) and len(pattern) == 2 else (pattern, None)
                x1 = x1.replace(pattern1=p1, pattern2=None if x1.cov2 is None else p2)
            with jax.enable_x64(True):
                out = kernel_map(x1)
        else:
            # Whether x2, given, is x1 (neural-tangents' x1_is_x2; Kernel.same_inputs): True, False or a traced
            # boolean. Graph inputs with x2 given are taken as different: equal features may come with other
            # patterns. A network that reads it (Dropout in training mode) computes the kernel of x1 with itself.
            given = x2 is not None
            equal = _same_inputs(x1, x2) if given and pattern is None else False
            same = equal if reads_identity and given else None
            if same is True:
                x2 = None
            elif same is False:
                same = None
            masked = mask_constant is not None
            p1, p2 = (None, None) if pattern is None else pattern_pair(pattern, x1, x2)
            layouts = None
            if p1 is not None:
                if masked:
                    raise ValueError(
                        "kernel_fn: `pattern` (graph inputs) and `mask_constant` (padded sequences) together are "
                        "not implemented; pad graphs with isolated nodes of zero features instead."
                    )
                if np.ndim(x1) < 3:
                    raise ValueError(
                        f"kernel_fn: `pattern` connects the nodes of graph inputs (batch, nodes, ..., features); "
                        f"x1 has shape {np.shape(x1)}, with no node axis."
                    )
            if masked:
                if x2 is not None and np.shape(x1)[1:] != np.shape(x2)[1:]:
                    raise ValueError(
                        f"kernel_fn: `x2` must have the same shape as `x1` apart from the batch axis (pad both to "
                        f"one length); got x1 {np.shape(x1)} and x2 {np.shape(x2)}."
                    )
                x1 = with_mask_channel(x1, position_mask(x1, mask_constant, "x1"), mask_constant)
                if x2 is not None:
                    x2 = with_mask_channel(x2, position_mask(x2, mask_constant, "x2"), mask_constant)
            check_input(x1, "x1")
            if x2 is not None:
                check_input(x2, "x2")
                s1, s2 = np.shape(x1), np.shape(x2)
                if s1[1:] != s2[1:]:
                    raise ValueError(
                        f"kernel_fn: `x2` must have the same shape as `x1` apart from the batch axis; "
                        f"got x1 {s1} and x2 {s2}."
                    )
            if dtype not in (jnp.float64, jnp.float32, np.float64, np.float32):
                raise validation.fail("kernel_fn", "dtype", "jnp.float64 or jnp.float32", dtype)
            compute_ntk = names is None or "ntk" in names
            if p1 is not None:
                with jax.enable_x64(True):
                    x1, layout1 = with_pattern_channels(x1, p1, jnp.dtype(dtype))
                    layout2 = layout1
                    if x2 is not None:
                        x2, layout2 = with_pattern_channels(x2, p2, jnp.dtype(dtype))
                layouts = (layout1, layout2)
            with jax.enable_x64(True):
                # Convert here, under x64: an array JAX has seen before outside
                # x64 (e.g. captured as a float32 constant by another jit) must
                # not reach the jitted computation in its old type.
                originals = (x1, x2)
                x1 = jnp.asarray(x1, dtype)
                x2 = None if x2 is None else jnp.asarray(x2, dtype)
                args = (compute_ntk, jnp.dtype(dtype), originals, plan, bool(diagonal_spatial), masked, layouts)
                if same is None or same is True:
                    out = run(x1, x2, *args)
                else:
                    out = lax.cond(same, lambda a, b: _with_cov2(run(a, None, *args)),
                                   lambda a, b: _with_cov2(run(a, b, *args)), x1, x2)
                if _is_packed(out):
                    z = out.nngp
                    out = out.replace(nngp=_real(z), ntk=_imag(z))
                if same is True and isinstance(out, Kernel):
                    out = _with_cov2(out)  # x2 was given: its covariance too, as for any other network
            if given and isinstance(out, Kernel):
                out = out.replace(same_inputs=equal)
        if isinstance(out, (list, tuple)):
            raise ValueError(
                "kernel_fn: the network ends with several branches (FanOut/parallel without FanInSum); "
                "combine them before asking for a kernel."
            )
        if isinstance(out, Kernel) and out.pattern1 is not None:
            out = out.replace(pattern1=None, pattern2=None)
        if diagonal_spatial and out.spatial_ndim and not out.diagonal_spatial:
            # The last layers needed every pair of positions (e.g. AvgPool): keep the diagonal now.
            s = out.spatial_ndim
            out = out.replace(
                nngp=spatial_diagonal(out.nngp, 2, s),
                ntk=None if out.ntk is None else spatial_diagonal(out.ntk, 2, s),
                cov1=spatial_diagonal(out.cov1, 1, s),
                cov2=None if out.cov2 is None else spatial_diagonal(out.cov2, 1, s),
                diagonal_spatial=True,
            )
        out = caller_precision(out)
        if names is None:
            return out
        if len(names) == 1:
            return getattr(out, names[0])
        return namedtuple("Kernel", names)(*(getattr(out, n) for n in names))

    kernel_fn.kernel_layer = kernel_map
    kernel_fn.input_diagonal = input_diagonal
    kernel_fn.stages = stages
    kernel_fn.reads_patterns = bool(reads_patterns)
    kernel_fn.reads_identity = bool(reads_identity)
    return kernel_fn


def _same_inputs(x1, x2):
    """neural-tangents' ``x1_is_x2`` for ``x2`` given: ``True`` for the same
    object or equal concrete arrays (same shape, every entry within
    ``1e-12``, NaN matching NaN: padding marked by ``mask_constant=nan``),
    ``False`` for different ones, a traced boolean for traced arrays of
    equal shapes.
    """
    if x2 is x1:
        return True
    if np.shape(x1) != np.shape(x2):
        return False
    tracer = jax.core.Tracer
    xp = jnp if isinstance(x1, tracer) or isinstance(x2, tracer) else np
    a = x1 if xp is jnp else np.asarray(x1)
    b = x2 if xp is jnp else np.asarray(x2)
    if not (xp.issubdtype(a.dtype, xp.number) and xp.issubdtype(b.dtype, xp.number)):
        return False  # check_input names the bad argument
    with np.errstate(invalid="ignore"):
        equal = xp.all((xp.abs(a - b) < 1e-12) | (xp.isnan(a) & xp.isnan(b)))
    return bool(equal) if xp is np else equal


def _with_cov2(k):
    """The kernel of x1 with itself as the kernel of x1 and x2 equal to it:
    ``cov2`` (and ``mask2``) those of x1; other outputs unchanged (one
    structure for both branches of ``lax.cond``).
    """
    if not isinstance(k, Kernel):
        return k
    mask2 = k.mask1 if k.mask2 is None else k.mask2
    return k.replace(cov2=k.cov1 if k.cov2 is None else k.cov2, mask2=mask2)
