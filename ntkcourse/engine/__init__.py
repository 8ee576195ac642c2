"""How kernels are computed: the kernel engine.

The layers of :mod:`ntkcourse.stax` say what a network is (each a map
``Kernel -> Kernel`` with its formula); this package computes those maps on
actual inputs, and never imports the layers:

* :mod:`~ntkcourse.engine.kernel_fn` — the public ``kernel_fn`` built from a
  layer's map (arguments, input kernel, choice of the path below);
* :mod:`~ntkcourse.engine.plan` — the execution plan: memory budget, tiles,
  host BLAS, compiler options; an explicit value, defaulted;
* :mod:`~ntkcourse.engine.blocks` — image inputs in blocks within the budget,
  symmetric, with the spatial diagonal only when the readout needs no more;
* :mod:`~ntkcourse.engine.tiles` — ``K(x, x)`` of flat inputs from its upper tiles;
* :mod:`~ntkcourse.engine.host` — the input Gram by NumPy's BLAS on the CPU;
* :mod:`~ntkcourse.engine.inputs` — checking inputs, the input kernel;
* :mod:`~ntkcourse.engine.compile` — jit with wide vectors, one fused loop
  for the NNGP and NTK together; ``one_program``, the context in which the
  layers write convolutions for a network traced into the caller's program.
"""
from .blocks import KernelMemoryError
from .compile import fused_pair, in_one_program, linear_pair, one_program
from .kernel_fn import make_kernel_fn
from .plan import ExecutionPlan, default_plan, execution_plan, set_default_plan

__all__ = [
    "ExecutionPlan",
    "KernelMemoryError",
    "default_plan",
    "execution_plan",
    "fused_pair",
    "in_one_program",
    "linear_pair",
    "make_kernel_fn",
    "one_program",
    "set_default_plan",
]
