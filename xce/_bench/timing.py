"""How a call is timed: the median of repeated calls, and interleaved rounds in balanced orders.

In the rounds, every implementation runs once per round, so a slow moment of a shared machine
falls on both sides of a ratio (see :func:`interleaved_times`, :func:`paired_ratio`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "interleaved_times",
    "median_seconds",
    "paired_ratio",
    "relative_spread",
    "round_orders",
]


def median_seconds(
    fn: Callable[[], Any], *, min_time: float = 0.5, min_runs: int = 5, max_runs: int = 50
) -> float:
    """The median seconds of a call of ``fn``, over at least ``min_runs`` calls and
    ``min_time`` seconds (``max_runs`` calls at most), after one call to warm up."""
    fn()  # warm-up: first-call costs (JIT, thread pools, page faults) stay out of the median
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_runs and (
        len(times) < min_runs or time.perf_counter() - start < min_time
    ):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved_times(
    fns: Mapping[str, Callable[[], Any]],
    *,
    min_time: float = 0.5,
    min_rounds: int = 5,
    max_rounds: int = 50,
    batch_time: float = 0.002,
    warmup_time: float = 0.02,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Per-call seconds of each function in ``fns`` (name → callable), round by round.

    Each round calls every function once in turn, in the orders of :func:`round_orders`, so
    a slow moment of a shared machine (they last seconds) falls on every implementation of a
    round alike instead of on whichever was being timed then, and what one implementation
    leaves behind falls on each of the others alike. Each function is first called once, then
    warmed up for ``warmup_time`` seconds (at least one call), which also sets its batch: a
    function faster than ``batch_time`` is called in batches of about that length, its time
    per call being the batch's over its size. Rounds go on until each function has had about
    ``min_time`` seconds and there are ``min_rounds`` of them, or ``max_rounds``.
    """
    names = list(fns)
    batch = {}
    for name in names:
        fn = fns[name]
        fn()  # first-call costs (JIT, thread pools, page faults) stay out
        # A small call's first few hundred run slower (interpreter specialisation, caches).
        calls, t0 = 0, clock()
        while True:
            fn()
            calls += 1
            elapsed = clock() - t0
            if elapsed >= warmup_time:
                break
        batch[name] = max(1, min(10_000, round(batch_time * calls / max(elapsed, 1e-9))))
    orders = round_orders(len(names))
    times: dict[str, list[float]] = {name: [] for name in names}
    start = clock()
    for round_number in range(max_rounds):
        for index in orders[round_number % len(orders)]:
            name = names[index]
            fn, calls = fns[name], batch[name]
            t0 = clock()
            for _ in range(calls):
                fn()
            times[name].append((clock() - t0) / calls)
        if round_number + 1 >= min_rounds and clock() - start >= min_time * len(names):
            break
    return times


def round_orders(count: int) -> list[list[int]]:
    """The orders in which ``count`` implementations run, round after round: a Williams
    design. Each implementation runs in each position, and right after each other one, equally
    often (over ``count`` rounds, ``2·count`` when odd), so what one leaves behind (threads
    still spinning, evicted caches) slows each of the others alike."""
    steps, low, high = [0], 1, count - 1  # 0, 1, count-1, 2, count-2, ...
    while low <= high:
        steps.append(low)
        low += 1
        if low <= high:
            steps.append(high)
            high -= 1
    orders = [[(first + step) % count for step in steps] for first in range(count)]
    if count % 2:
        orders += [order[::-1] for order in orders]
    return orders


def paired_ratio(reference: Sequence[float], times: Sequence[float]) -> float:
    """The median over rounds of reference time / time: how many times faster than the
    reference, each round compared with itself."""
    return statistics.median(r / t for r, t in zip(reference, times, strict=True))


def relative_spread(times: Sequence[float]) -> float:
    """The interquartile range of ``times`` over their median: how much the rounds of one
    case disagree. On a quiet machine it is a few percent; a large spread means the case was
    disturbed (another process, a slow spell) and its median is not the machine's own."""
    if len(times) < 4:
        return 0.0
    q1, _, q3 = statistics.quantiles(times, n=4)
    return (q3 - q1) / statistics.median(times)
