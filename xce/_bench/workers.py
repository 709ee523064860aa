"""The worker processes: each allocator setting's timings run in a process of their own (glibc
reads its allocator settings at start-up), and each peak-memory measurement in a fresh one.

:func:`spawn` starts ``python -m xce._bench --worker|--memory SPEC`` (see ``__main__.py``),
which runs :func:`worker` or :func:`memory_worker`; they print their results as JSON lines.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from .cases import REFERENCE, TIMED, available, data
from .machine import ALLOCATOR_VARS, cpu_times, steal_share
from .timing import interleaved_times, paired_ratio, relative_spread

__all__ = ["memory_worker", "spawn", "worker"]


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(spec: Mapping[str, Any]) -> None:
    """Time every case of ``spec`` in this process and print one JSON line per case and
    implementation: the function timed, the median time per call, the speed-up over torch
    (torch's median over this median: it agrees with the times), the median of the per-round
    ratios (in the CSV, as a check: the two differ when the rounds disagree) and the spread
    of the per-call times (interquartile range over the median)."""
    import numpy as np

    builders = available(spec["implementations"])
    for dtype_name in spec["dtypes"]:
        for n, c in spec["sizes"]:
            logits, labels = data(n, c, getattr(np, dtype_name))
            for op in spec["operations"]:
                built = {name: builder(op, logits, labels) for name, builder in builders.items()}
                fns = {name: fn for name, fn in built.items() if fn is not None}
                before = cpu_times()
                times = interleaved_times(fns)
                steal = steal_share(before, cpu_times())
                del built, fns
                for name, seconds in times.items():
                    median = statistics.median(seconds)
                    row = {"implementation": name, "function": TIMED[name][op],
                           "operation": op, "n": n, "c": c, "dtype": dtype_name,
                           "seconds": median, "spread": relative_spread(seconds),
                           "cpu_steal": steal}  # fmt: skip
                    if REFERENCE in times:
                        row["speed_up"] = statistics.median(times[REFERENCE]) / median
                        row["paired_speed_up"] = paired_ratio(times[REFERENCE], seconds)
                    print(json.dumps(row), flush=True)


def memory_worker(spec: Mapping[str, Any]) -> None:
    """Peak extra resident memory of one call, in this fresh process."""
    import gc

    import numpy as np

    name, op = spec["implementation"], spec["operation"]
    n, c = spec["size"]
    builder = available([name])[name]
    logits, labels = data(n, c, getattr(np, spec["dtype"]))
    fn = builder(op, logits, labels)
    small = builder(op, logits[:2, :8].copy(), labels[:2] % 8)
    if fn is None or small is None:
        raise ValueError(f"{name} does not time {op}")
    small()  # import-time and first-call machinery, not the call's working memory
    gc.collect()
    before = _peak_rss_bytes()
    result = fn()
    after = _peak_rss_bytes()
    del result
    print(json.dumps({"peak_extra_bytes": max(0, after - before)}), flush=True)


def spawn(mode: str, spec: Mapping[str, Any], allocator_env: Mapping[str, str]) -> subprocess.Popen:
    """Start a worker (``mode`` is ``--worker`` or ``--memory``) with one allocator setting."""
    env = {k: v for k, v in os.environ.items() if k not in ALLOCATOR_VARS}
    env.update(allocator_env)
    return subprocess.Popen(
        [sys.executable, "-m", "xce._bench", mode, json.dumps(spec)],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
