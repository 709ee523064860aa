"""What a run writes: the progress bar (stderr), the Markdown table (stdout) and the CSV."""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

__all__ = ["CSV_FIELDS", "format_table", "progress", "write_csv"]

CSV_FIELDS = (
    "allocator", "dtype", "n", "c", "operation", "implementation", "seconds", "vs_torch",
    "floor_seconds", "times_floor", "peak_extra_bytes", "peak_extra_vs_logits", "cpu_steal",
)  # fmt: skip


def progress(done: int, total: int, label: str, stream: TextIO = sys.stderr) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:<48.48}")
    stream.flush()


def format_table(rows: Iterable[Mapping[str, Any]]) -> str:
    """A Markdown table: one line per (allocator, dtype, size, operation, implementation),
    with its speed relative to torch's F.cross_entropy (paired by round) and its distance from
    the floor."""
    lines = ["| allocator | dtype | N × C | operation | implementation | ms | vs torch | × floor "
             "| peak extra / logits |", "|---|---|---|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        ratio = f"{r['vs_torch']:.2f}×" if "vs_torch" in r else "-"
        memory = f"{r['peak_extra_vs_logits']:.2f}" if "peak_extra_vs_logits" in r else ""
        lines.append(f"| {r['allocator']} | {r['dtype']} | {r['n']} × {r['c']} | {r['operation']} "
                     f"| {r['implementation']} | {r['seconds'] * 1e3:.3f} | {ratio} "
                     f"| {r['times_floor']:.2f} | {memory} |")  # fmt: skip
    return "\n".join(lines)


def write_csv(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike[str]) -> None:
    """One line per row, in the columns of :data:`CSV_FIELDS` (empty where a row has none)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
