"""The machine a run is timed on: glibc allocator settings, the CPU time the hypervisor
steals (Linux's /proc/stat), and the "Machine:" and "Allocator settings:" lines."""

from __future__ import annotations

import os
import platform
from collections.abc import Collection, Mapping, Sequence
from typing import Any

__all__ = [
    "ALLOCATORS",
    "ALLOCATOR_VARS",
    "allocator_settings",
    "cpu_times",
    "load_per_core",
    "machine_description",
    "steal_share",
]

ALLOCATORS: dict[str, dict[str, str]] = {
    "default": {},
    # Large thresholds keep big buffers on the heap and the heap from shrinking: the same
    # pages are reused call after call instead of being mmapped and faulted in each time.
    "tuned": {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296"},
}
# cleared from a worker's environment before its setting is applied
ALLOCATOR_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def cpu_times() -> list[int] | None:
    """The machine's CPU time counters, the first line of Linux's /proc/stat (user, nice,
    system, idle, iowait, irq, softirq, steal, ...), or ``None`` elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    return [int(v) for v in fields[1:9]]


def steal_share(before: Sequence[int] | None, after: Sequence[int] | None) -> float | None:
    """The share of the machine's CPU time between two :func:`cpu_times` readings that the
    hypervisor gave to other virtual machines ("steal"), or ``None``. On a shared virtual
    machine it is one cause of slow spells: timings taken while it is high are not the
    machine's own."""
    if before is None or after is None:
        return None
    total = sum(after) - sum(before)
    return (after[7] - before[7]) / total if total > 0 else None


def machine_description(floors: Mapping[str, Any]) -> str:
    """The CPU, its cores, the floors (with their range over the run) and the CPU steal."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    rates = floors.get("exp_per_second_by_dtype") or {"": floors["exp_per_second"]}
    exp = ", ".join(f"{rate / 1e9:.2f}·10⁹/s{' ' + dtype if dtype else ''}"
                    for dtype, rate in rates.items())  # fmt: skip
    description = (f"{model}, {floors['threads']} cores available; memory read bandwidth "
                   f"{floors['read_bandwidth'] / 1e9:.1f} GB/s, exp throughput {exp} "
                   "(all cores)")  # fmt: skip
    if "exp_per_second_range" in floors:
        low, high = floors["exp_per_second_range"]
        which = f" in {floors['dtype']}" if "dtype" in floors else ""
        description += (f"; best of {floors['measurements']} measurements (exp "
                        f"{low / 1e9:.2f}-{high / 1e9:.2f}·10⁹/s{which})")  # fmt: skip
    steal = {k: v for k, v in floors.get("cpu_steal", {}).items() if v is not None}
    if steal:
        description += "; CPU time stolen by the hypervisor while timing: " + ", ".join(
            f"{allocator} {share:.1%}" for allocator, share in steal.items()
        )
    return description


def allocator_settings(names: Collection[str]) -> str:
    """The environment of each allocator setting in ``names``, in :data:`ALLOCATORS`' order."""
    return "; ".join(
        f"{name}: {' '.join(f'{k}={v}' for k, v in env.items()) or 'glibc defaults'}"
        for name, env in ALLOCATORS.items()
        if name in names
    )


def load_per_core(samples: int = 10, interval: float = 0.05) -> float | None:
    """Other runnable processes per core, just before a worker starts: the mean over
    ``samples`` readings of Linux's ``procs_running`` (/proc/stat) less this process, over the
    cores this process may use; ``None`` elsewhere. Read then, it counts what would compete
    with the timing (a test suite, a build); a quiet machine reads near 0. (The load average
    would not do: a minute after the previous worker it still counts that worker's threads.)"""
    import time

    counts = []
    for _ in range(samples):
        try:
            with open("/proc/stat") as f:
                line = next(line for line in f if line.startswith("procs_running"))
        except (OSError, StopIteration):
            return None
        counts.append(max(0, int(line.split()[1]) - 1))
        time.sleep(interval)
    return sum(counts) / len(counts) / len(os.sched_getaffinity(0))
