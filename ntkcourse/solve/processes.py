"""Several JAX processes (and hosts): which rows each process owns, and gathering them.

The solvers of :mod:`ntkcourse.solve` run the same program in every process
(SPMD, as JAX's multi-host model does): the vectors of conjugate gradient are
small (``n`` numbers) and every process keeps all of them; the kernel, which
is ``n²`` numbers, is cut into blocks of rows, and process ``p`` of ``P``
computes and holds the blocks ``i`` with ``i mod P = p``. A matrix-vector
product is then each process's rows of ``K v`` followed by one all-gather
(:func:`jax.experimental.multihost_utils.process_allgather`, over Gloo on
CPUs, NCCL on GPUs).

Launching (the same script in every process)::

    from ntkcourse.solve import start_processes
    start_processes("10.0.0.1:12345", num_processes=4, process_id=RANK)

``start_processes()`` without arguments lets :func:`jax.distributed.initialize`
find them itself on SLURM, Open MPI, Kubernetes or Cloud TPU; elsewhere pass
the coordinator's ``host:port`` (or set ``JAX_COORDINATOR_ADDRESS``), the
number of processes and this process's id.
"""
from __future__ import annotations

from typing import Optional

import jax
import numpy as np

from .. import validation

__all__ = ["start_processes", "owned_blocks", "gather_blocks"]


def start_processes(
    coordinator_address: Optional[str] = None,
    num_processes: Optional[int] = None,
    process_id: Optional[int] = None,
    *,
    timeout_s: int = 300,
) -> None:
    """Join this process to a group of JAX processes (``jax.distributed.initialize``).

    Call it once, first thing, in every process, before any other JAX call.
    On CPUs the collectives go over Gloo (JAX's default for CPUs,
    ``jax_cpu_collectives_implementation='gloo'``, set here explicitly).

    Args:
      coordinator_address: ``"host:port"`` of process 0, reachable by all;
        ``None`` to read ``JAX_COORDINATOR_ADDRESS`` or detect a cluster.
      num_processes: how many processes in all (``None``: detected).
      process_id: this process's rank, ``0 ≤ process_id < num_processes``.
      timeout_s: seconds to wait for the other processes to join.
    """
    if num_processes is not None:
        num_processes = validation.positive_int("start_processes", "num_processes", num_processes)
    if process_id is not None and (
        not isinstance(process_id, (int, np.integer))
        or isinstance(process_id, bool)
        or not 0 <= process_id < (num_processes or np.inf)
    ):
        raise validation.fail("start_processes", "process_id", f"an integer in [0, num_processes = {num_processes})",
                              process_id)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               initialization_timeout=validation.positive_int("start_processes", "timeout_s",
                                                                              timeout_s))


def owned_blocks(n_blocks: int) -> list[int]:
    """The blocks of rows this process computes and holds: ``i`` with ``i mod P = p``."""
    return list(range(jax.process_index(), n_blocks, jax.process_count()))


def gather_blocks(local: list[np.ndarray], n_blocks: int, rows: list[tuple[int, int]]) -> np.ndarray:
    """Every process's row blocks assembled in order, in every process.

    ``local[j]`` is block ``owned_blocks(n_blocks)[j]`` (shape ``(rows, k)``);
    ``rows[i]`` the ``(start, stop)`` of block ``i``. With one process no
    communication happens. Blocks are padded to one shape for the all-gather.
    """
    width = local[0].shape[1] if local else 0
    n = rows[-1][1]
    if jax.process_count() == 1:
        return np.concatenate(local, axis=0) if len(local) > 1 else local[0]
    from jax.experimental import multihost_utils

    procs = jax.process_count()
    per = -(-n_blocks // procs)
    size = max(r1 - r0 for r0, r1 in rows)
    with jax.enable_x64(True):          # without it the all-gather would round float64 to float32
        width = int(np.asarray(multihost_utils.process_allgather(np.array([width])))[:, 0].max())
        buf = np.zeros((per, size, width), dtype=np.float64)
        for j, block in enumerate(local):
            buf[j, : block.shape[0]] = block
        everything = np.asarray(multihost_utils.process_allgather(buf))        # (P, per, size, width)
    assert everything.dtype == np.float64
    out = np.empty((n, width), dtype=np.float64)
    for i, (r0, r1) in enumerate(rows):
        out[r0:r1] = everything[i % procs, i // procs, : r1 - r0]
    return out
