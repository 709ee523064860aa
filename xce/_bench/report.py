"""What a run writes: the progress bar (stderr), the Markdown table (stdout) and the CSV."""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

__all__ = [
    "CSV_FIELDS",
    "FLOOR_DRIFT",
    "LOAD_LIMIT",
    "SPREAD_LIMIT",
    "STEAL_LIMIT",
    "disturbances",
    "format_table",
    "progress",
    "write_csv",
]

CSV_FIELDS = (
    "allocator", "dtype", "n", "c", "operation", "implementation", "function", "seconds",
    "speed_up", "paired_speed_up", "spread", "floor_seconds", "times_floor", "peak_extra_bytes",
    "peak_extra_vs_logits", "cpu_steal",
)  # fmt: skip

# When a run is reported as disturbed: the exp floor moved by more than FLOOR_DRIFT (a share
# of its best) between its measurements; a case's per-round times spread by more than
# SPREAD_LIMIT (interquartile range over median); the hypervisor stole more than STEAL_LIMIT
# of the CPU time; or other processes were running before timing, more than LOAD_LIMIT per
# core (a test suite, a build).
FLOOR_DRIFT = 0.2
SPREAD_LIMIT = 0.25
STEAL_LIMIT = 0.05
LOAD_LIMIT = 0.5


def progress(done: int, total: int, label: str, stream: TextIO = sys.stderr) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:<48.48}")
    stream.flush()


def format_table(rows: Iterable[Mapping[str, Any]]) -> str:
    """A Markdown table: one line per (allocator, dtype, size, operation, implementation),
    with the function timed, its median time, its speed-up over torch (torch's median time
    over this one, so it agrees with the ms column), its distance from the floor and, at the
    headline size, its peak extra memory. A case whose rounds spread by more than
    :data:`SPREAD_LIMIT` is marked ⚠."""
    lines = ["| allocator | dtype | N × C | operation | implementation | function timed | ms "
             "| speed-up vs torch | × floor | peak extra / logits |",
             "|---|---|---|---|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        ratio = f"{r['speed_up']:.2f}×" if "speed_up" in r else "-"
        memory = f"{r['peak_extra_vs_logits']:.2f}" if "peak_extra_vs_logits" in r else ""
        mark = " ⚠" if r.get("spread", 0.0) > SPREAD_LIMIT else ""
        lines.append(f"| {r['allocator']} | {r['dtype']} | {r['n']} × {r['c']} | {r['operation']} "
                     f"| {r['implementation']} | {r.get('function', '')} "
                     f"| {r['seconds'] * 1e3:.3f}{mark} | {ratio} | {r['times_floor']:.2f} "
                     f"| {memory} |")  # fmt: skip
    return "\n".join(lines)


def disturbances(rows: Sequence[Mapping[str, Any]], floors: Mapping[str, Any]) -> list[str]:
    """Why this run's numbers may not be the machine's own (empty when it looks quiet): the
    floors moved, cases spread, CPU was stolen, or other processes were running."""
    found = []
    low, high = floors.get("exp_per_second_range", (1.0, 1.0))
    if high > 0 and (high - low) / high > FLOOR_DRIFT:
        found.append(f"the exp floor moved by {(high - low) / high:.0%} between its "
                     f"measurements (limit {FLOOR_DRIFT:.0%})")  # fmt: skip
    spread = [r for r in rows if r.get("spread", 0.0) > SPREAD_LIMIT]
    if spread:
        found.append(f"{len(spread)} of {len(rows)} cases spread by more than "
                     f"{SPREAD_LIMIT:.0%} between rounds (marked ⚠)")  # fmt: skip
    for allocator, share in floors.get("cpu_steal", {}).items():
        if share is not None and share > STEAL_LIMIT:
            found.append(f"the hypervisor stole {share:.1%} of the CPU time while timing "
                         f"({allocator} allocator)")  # fmt: skip
    for allocator, load in floors.get("load_per_core", {}).items():
        if load is not None and load > LOAD_LIMIT:
            found.append(f"{load:.2f} other processes per core were running before timing "
                         f"({allocator} allocator)")  # fmt: skip
    return found


def write_csv(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike[str]) -> None:
    """One line per row, in the columns of :data:`CSV_FIELDS` (empty where a row has none)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
