"""How a kernel is computed: the execution plan, an explicit value.

A plan says how :mod:`ntkcourse.engine` may spend the machine: how much
memory one call may take, how large the symmetric tiles of flat inputs are,
whether the input Gram of flat inputs is computed by NumPy's BLAS on the host,
and which compiler options the kernel recursions get. Pass one to a
``kernel_fn`` (``kernel_fn(x, None, 'ntk', plan=ExecutionPlan(memory_budget='2GB'))``),
or change the default for a block of code::

    from ntkcourse.engine import execution_plan
    with execution_plan(memory_budget="4GB"):
        k = kernel_fn(x, None, ("nngp", "ntk"))

The default memory budget is read when a kernel is computed: the value of
the environment variable ``NTKCOURSE_MEMORY_BUDGET`` (``"8GB"``, ``"512MB"``
or a number of bytes) if it is set, else half of the memory the operating
system reports as available.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from typing import Iterator, Optional, Union

from .. import validation

__all__ = ["ExecutionPlan", "default_plan", "set_default_plan", "execution_plan", "parse_bytes", "available_memory"]

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_bytes(value: Union[int, float, str], where: str = "ExecutionPlan", name: str = "memory_budget") -> int:
    """A number of bytes from ``1e9``, ``"8GB"``, ``"512 MiB"`` or ``"123456"``."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", value)
        if not match or match.group(2).upper() not in _UNITS:
            raise validation.fail(where, name, "a number of bytes such as 8e9, '8GB' or '512MiB'", value)
        return int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise validation.fail(where, name, "a positive number of bytes such as 8e9, '8GB' or '512MiB'", value)
    return int(value)


def available_memory() -> int:
    """Bytes of memory the operating system reports as available now
    (``MemAvailable`` of ``/proc/meminfo`` on Linux, else free pages).
    """
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 10**9


@dataclasses.dataclass(frozen=True)
class ExecutionPlan:
    """Settings of the kernel engine.

    Attributes:
      memory_budget: the most memory one ``kernel_fn`` call may use for its
        blocks and its outputs, in bytes or as a string (``"8GB"``);
        ``None`` (default): ``NTKCOURSE_MEMORY_BUDGET`` if set, else half of
        the available memory at call time.
      symmetric_tile: ``kernel_fn(x, None)`` on at least two tiles of this many
        flat inputs computes only the tiles on and above the diagonal.
      host_gram: compute the input Gram of concrete flat inputs on one CPU
        device with NumPy's BLAS (faster than XLA's dot there).
      wide_vectors: compile the kernel recursions for 512-bit vectors where
        the CPU has them (AVX-512), about twice as fast as XLA's default.
      block_size: for spatial (image) inputs, the number of inputs of x1 and
        of x2 per block; ``None`` (default) chooses it from ``cache_bytes``
        and the budget.
      cache_bytes: the size the largest kernel array of one block should
        have (default 8 MB, about a core's share of a CPU's caches): each layer
        streams through its input and output arrays, so blocks that stay in
        cache run several times faster than large ones (on the 2-core
        reference machine, 200 digits through three convolutions: 3.2 s in
        blocks of 16 images, 9.8 s in one block of 200).
    """

    memory_budget: Optional[Union[int, float, str]] = None
    symmetric_tile: int = 1024
    host_gram: bool = True
    wide_vectors: bool = True
    block_size: Optional[int] = None
    cache_bytes: Union[int, float, str] = 8 * 10**6

    def __post_init__(self):
        object.__setattr__(self, "cache_bytes", parse_bytes(self.cache_bytes, name="cache_bytes"))
        if self.memory_budget is not None:
            object.__setattr__(self, "memory_budget", parse_bytes(self.memory_budget))
        object.__setattr__(
            self, "symmetric_tile", validation.positive_int("ExecutionPlan", "symmetric_tile", self.symmetric_tile)
        )
        if self.block_size is not None:
            object.__setattr__(
                self, "block_size", validation.positive_int("ExecutionPlan", "block_size", self.block_size)
            )
        for name in ("host_gram", "wide_vectors"):
            if not isinstance(getattr(self, name), bool):
                raise validation.fail("ExecutionPlan", name, "True or False", getattr(self, name))

    def budget_bytes(self) -> int:
        """The memory budget in bytes, resolving the defaults now."""
        if self.memory_budget is not None:
            return int(self.memory_budget)
        env = os.environ.get("NTKCOURSE_MEMORY_BUDGET")
        if env:
            return parse_bytes(env, "NTKCOURSE_MEMORY_BUDGET", "value")
        return available_memory() // 2

    def replace(self, **changes) -> "ExecutionPlan":
        """A copy with the given settings changed."""
        return dataclasses.replace(self, **changes)


_DEFAULT = [ExecutionPlan()]


def default_plan() -> ExecutionPlan:
    """The plan used when a ``kernel_fn`` call names none."""
    return _DEFAULT[-1]


def set_default_plan(plan: ExecutionPlan) -> None:
    """Make ``plan`` the default for the rest of the process."""
    if not isinstance(plan, ExecutionPlan):
        raise validation.fail("set_default_plan", "plan", "an ExecutionPlan", plan)
    _DEFAULT[0] = plan
    del _DEFAULT[1:]


@contextlib.contextmanager
def execution_plan(plan: Optional[ExecutionPlan] = None, **changes) -> Iterator[ExecutionPlan]:
    """Use ``plan`` (or the default with ``changes``) as the default inside a block."""
    new = (plan or default_plan()).replace(**changes) if changes else (plan or default_plan())
    if not isinstance(new, ExecutionPlan):
        raise validation.fail("execution_plan", "plan", "an ExecutionPlan", plan)
    _DEFAULT.append(new)
    try:
        yield new
    finally:
        _DEFAULT.pop()
