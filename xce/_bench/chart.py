"""The chart (``--plot FILE.png``, needs matplotlib): "× floor" against size, one panel per
operation. matplotlib is imported only when a chart is drawn."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .cases import ALL_OPERATIONS

__all__ = ["chart_series", "plot"]

Series = dict[str, dict[str, list[float | None]]]


def chart_series(rows: Sequence[Mapping[str, Any]]) -> tuple[str, str, list[str], Series]:
    """What the chart shows: one allocator setting and dtype (tuned and float32 where the run
    has them, else the first of each), its sizes in order of N·C (then N), and for each
    operation and implementation its "× floor" at each size (``None`` where not timed).
    Returns ``(allocator, dtype, size labels, {operation: {implementation: values}})``."""
    allocators = list(dict.fromkeys(r["allocator"] for r in rows))
    dtypes = list(dict.fromkeys(r["dtype"] for r in rows))
    allocator = "tuned" if "tuned" in allocators else allocators[0]
    dtype = "float32" if "float32" in dtypes else dtypes[0]
    shown = [r for r in rows if r["allocator"] == allocator and r["dtype"] == dtype]
    sizes = sorted({(r["n"], r["c"]) for r in shown}, key=lambda s: (s[0] * s[1], s[0]))
    series: Series = {}
    for r in shown:
        values = series.setdefault(r["operation"], {}).setdefault(
            r["implementation"], [None] * len(sizes)
        )
        values[sizes.index((r["n"], r["c"]))] = r["times_floor"]
    ordered = {op: series[op] for op in ALL_OPERATIONS if op in series}
    return allocator, dtype, [f"{n}×{c}" for n, c in sizes], ordered


def plot(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> None:
    """The chart: "× floor" against size, one panel per operation (see :func:`chart_series`).
    Sizes are evenly spaced and named: on an axis of N·C, (4096, 32000) and (1024, 128256)
    would fall on one spot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    allocator, dtype, labels, series = chart_series(rows)
    fig, axes = plt.subplots(1, len(series), figsize=(5 * len(series), 4), squeeze=False)
    positions = range(len(labels))
    for ax, (op, by_implementation) in zip(axes[0], series.items(), strict=True):
        for name in sorted(by_implementation):
            ax.plot(positions, by_implementation[name], marker="o", label=name)
        ax.set(yscale="log", title=f"{op} ({allocator} allocator, {dtype})", xlabel="N × C",
               ylabel="time / floor")  # fmt: skip
        ax.set_xticks(list(positions), labels, rotation=30, fontsize=8)
        ax.axhline(1.0, color="gray", lw=0.8)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
