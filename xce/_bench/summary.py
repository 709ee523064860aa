"""The run's summary: one table per dtype and allocator setting, every operation × size, each
implementation's speed-up over torch and its distance from the floor in one cell."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .cases import ALL_OPERATIONS, IMPLEMENTATIONS, REFERENCE

__all__ = ["summary_tables"]


def _cell(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return "-"
    ratio = f"{row['speed_up']:.2f}×" if "speed_up" in row else "-"
    return f"{ratio} ({row['times_floor']:.1f})"


def summary_tables(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: for each (dtype, allocator) of the run, a table with a line per size and
    operation, torch's time in ms, and for every other implementation "speed-up over torch
    (time over the floor)": 2.00× (1.5) is twice as fast as torch and 1.5 times the floor."""
    names = [n for n in IMPLEMENTATIONS if n != REFERENCE and any(
        r["implementation"] == n for r in rows)]  # fmt: skip
    by_key = {(r["dtype"], r["allocator"], r["n"], r["c"], r["operation"], r["implementation"]):
              r for r in rows}  # fmt: skip
    out = []
    for dtype in dict.fromkeys(r["dtype"] for r in rows):
        for allocator in dict.fromkeys(r["allocator"] for r in rows):
            shown = [r for r in rows if r["dtype"] == dtype and r["allocator"] == allocator]
            sizes = sorted({(r["n"], r["c"]) for r in shown}, key=lambda s: (s[0] * s[1], s[0]))
            if not sizes:
                continue
            out.append(f"{dtype}, {allocator} allocator: speed-up over torch (time / floor)\n")
            out.append("| N × C | operation | torch ms (× floor) | " + " | ".join(names) + " |")
            out.append("|---|---|---:|" + "---:|" * len(names))
            for n, c in sizes:
                for op in ALL_OPERATIONS:
                    key = (dtype, allocator, n, c, op)
                    reference = by_key.get((*key, REFERENCE))
                    if reference is None and not any((*key, name) in by_key for name in names):
                        continue
                    torch_cell = "-"
                    if reference is not None:
                        ms, floor = reference["seconds"] * 1e3, reference["times_floor"]
                        torch_cell = f"{ms:.3f} ({floor:.1f})"
                    cells = [_cell(by_key.get((*key, name))) for name in names]
                    out.append(f"| {n} × {c} | {op} | {torch_cell} | " + " | ".join(cells) + " |")
            out.append("")
    return "\n".join(out)
