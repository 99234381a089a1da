"""One XLA CPU device per core, so that a study's programs use every core.

XLA's CPU backend runs a program's operations one after another on one thread (its
intra-op pool helps only large operations), so the training programs of the lab (small
matmuls, many steps) use one core. With one CPU device per core, the seeds are spread
over the devices (``shard_map`` in :mod:`experiments.train`) and run side by side
(measured in docs/benchmarks.md).
"""

import contextlib
import os
from collections.abc import Sequence

import jax
import numpy as np

MAX_DEVICES = 8
# The studies' XLA options: at optimisation level 1 the CPU backend compiles their programs
# 2-3x faster than at its default and runs them as fast (docs/benchmarks.md). Given per
# program, so that the tests and every user compile the same code.
COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


def available_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _count_set_by_environment() -> bool:
    """Whether the user chose the CPU device count (``JAX_NUM_CPU_DEVICES``, or XLA's
    ``--xla_force_host_platform_device_count``)."""
    flags = os.environ.get("XLA_FLAGS", "")
    return "JAX_NUM_CPU_DEVICES" in os.environ or "xla_force_host_platform_device_count" in flags


def use_cpu_cores(count: int | None = None) -> int | None:
    """Asks JAX for ``count`` CPU devices (default: one per available core, at most
    :data:`MAX_DEVICES`, unless the environment sets the count: then that stands).

    Only takes effect before JAX's backends start (before any computation); afterwards (a
    test, an interactive session) the devices stay as they are.

    Args:
        count: devices wanted; None for one per core.

    Returns:
        The number asked for (what ``jax.device_count()`` will be on a CPU-only machine
        unless the backends were up already), or None where the environment decides.
    """
    if count is None and _count_set_by_environment():
        return None
    wanted = max(1, min(count or available_cores(), MAX_DEVICES))
    with contextlib.suppress(RuntimeError):  # the backends are up: nothing to change
        jax.config.update("jax_num_cpu_devices", wanted)
    return wanted


def padded(values: Sequence | np.ndarray, n_devices: int) -> np.ndarray:
    """``values`` with its last entry repeated up to a multiple of ``n_devices`` (the axis
    that ``shard_map`` splits over the devices; the caller drops the padding)."""
    values = np.asarray(values)
    return np.concatenate([values, np.repeat(values[-1:], -len(values) % n_devices)])
