"""What ``kernel_fn`` hands back, in both of JAX's precision modes.

Kernels are computed in float64 whatever ``jax_enable_x64`` says (they enter
linear solves, where float32 loses digits). What is returned must then work
in the caller's code:

* 64-bit mode on: JAX float64 arrays, as computed;
* 64-bit mode off, concrete values: NumPy float64 arrays. NumPy code keeps
  every digit, and ``jnp`` functions take them as any NumPy input (converted
  to float32 like every other float64 NumPy array in that mode), where a JAX
  float64 array would make ``jnp.diag`` fail with mixed dtypes and other
  ``jnp`` arithmetic warn and truncate (``ntkcourse.batching.batch`` already
  returns NumPy arrays);
* 64-bit mode off, traced values (under the caller's ``jit``, ``grad``,
  ``vmap``): the default float dtype of that program, float32, so that the
  kernel mixes with the caller's other arrays; the recursion itself still
  ran in float64.

NumPy arrays are handed back as :class:`HostArray`, an ``ndarray`` with
JAX's ``block_until_ready()`` (it returns the array itself: a host array is
always ready), because neural-tangents users time kernels with
``kernel_fn(...).block_until_ready()``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["HostArray", "host_array", "caller_precision"]


class HostArray(np.ndarray):
    """A NumPy array that also answers JAX's ``block_until_ready()``.

    Kernels handed back as NumPy arrays (64-bit mode off, and
    :func:`ntkcourse.batch` in either mode) are of this type, so that code
    written for neural-tangents' JAX outputs, ``k.block_until_ready()``, runs
    as it is. Everything else is ``numpy.ndarray``'s (``np.asarray`` gives a
    plain ``ndarray`` without a copy).
    """

    def block_until_ready(self):
        """The array itself: a NumPy array is computed when it exists."""
        return self


def host_array(a) -> HostArray:
    """``a`` as a :class:`HostArray` (a view: no copy of a NumPy array)."""
    return np.asarray(a).view(HostArray)


def caller_precision(out):
    """``out`` (an array, a :class:`~ntkcourse.kernel.Kernel` or a tuple of
    arrays) in the form described in the module docstring.
    """
    if jax.config.jax_enable_x64:
        return out

    def convert(a):
        if a is None or jnp.result_type(a) != jnp.float64:
            return a
        if isinstance(a, jax.core.Tracer):
            return a.astype(jnp.float32)
        return host_array(a)

    return jax.tree_util.tree_map(convert, out)
