"""The floors: memory read bandwidth and exp throughput, measured on this machine, and the
lower bound they set on each operation's time ("× floor" is a time over that bound).

A shared virtual machine only ever slows a measurement down, so of several measurements the
best is kept: a floor set by a slow moment would flatter every figure measured against it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .cases import HEADLINE
from .timing import median_seconds

__all__ = ["add_floors", "best_floors", "best_floors_by_dtype", "floor_seconds", "measure_floors"]


def measure_floors(dtype_name: str = "float32") -> dict[str, Any]:
    """Memory read bandwidth over a large array and exp throughput on cache-sized blocks of
    ``dtype_name``, both with every core busy, as in the threaded kernels. The array read is
    float32 whatever the dtype: the read bandwidth does not depend on it (BENCHMARKS.md)."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    threads = len(os.sched_getaffinity(0))
    big = np.random.default_rng(1).standard_normal(HEADLINE, dtype=np.float32)
    shares = np.array_split(big, threads)
    with ThreadPoolExecutor(threads) as pool:
        read = median_seconds(lambda: list(pool.map(np.max, shares)), min_runs=5)
        blocks = [np.random.default_rng(i).standard_normal(65536).astype(dtype_name) for i in
                  range(threads)]  # fmt: skip
        outs = [np.empty_like(b) for b in blocks]
        repeats = 200

        def exp_many(i: int) -> None:
            for _ in range(repeats):
                np.exp(blocks[i], out=outs[i])

        exp_time = median_seconds(lambda: list(pool.map(exp_many, range(threads))), min_runs=3)
    return {
        "threads": threads,
        "read_bandwidth": big.nbytes / read,
        "exp_per_second": threads * repeats * blocks[0].size / exp_time,
    }


def best_floors(measured: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The highest bandwidth and exp throughput of several floor measurements, with the
    exp throughputs' range (how much this machine moved during the run)."""
    exp_rates = [m["exp_per_second"] for m in measured]
    return {
        "threads": measured[0]["threads"],
        "read_bandwidth": max(m["read_bandwidth"] for m in measured),
        "exp_per_second": max(exp_rates),
        "exp_per_second_range": (min(exp_rates), max(exp_rates)),
        "measurements": len(measured),
    }


def best_floors_by_dtype(
    measured: Mapping[str, Sequence[Mapping[str, Any]]],
) -> dict[str, dict[str, Any]]:
    """:func:`best_floors` for each dtype's measurements, with one read bandwidth for all:
    the best of every measurement, since each dtype's reads the same float32 array."""
    best = {dtype: best_floors(m) for dtype, m in measured.items()}
    bandwidth = max(b["read_bandwidth"] for b in best.values())
    return {dtype: dict(b, read_bandwidth=bandwidth) for dtype, b in best.items()}


def floor_seconds(op: str, n: int, c: int, itemsize: int, floors: Mapping[str, Any]) -> float:
    """The lower bound for one operation: memory traffic or exponentials, whichever is slower."""
    reads = {"soft": 2, "binary": 2}.get(op, 1)  # the sparse operations read the logits
    writes = 1 if op == "sparse+grad" else 0
    memory = (reads + writes) * n * c * itemsize / floors["read_bandwidth"]
    return max(memory, n * c / floors["exp_per_second"])


def add_floors(
    rows: Iterable[dict[str, Any]], floors_by_dtype: Mapping[str, Mapping[str, Any]]
) -> None:
    """Set each row's floor and its time over it, at the floors measured in the row's dtype
    (float64's exp is slower than float32's)."""
    for row in rows:
        itemsize = 4 if row["dtype"] == "float32" else 8
        floor = floor_seconds(row["operation"], row["n"], row["c"], itemsize,
                              floors_by_dtype[row["dtype"]])  # fmt: skip
        row["floor_seconds"] = floor
        row["times_floor"] = row["seconds"] / floor
