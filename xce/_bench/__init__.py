"""Side-by-side benchmark: xce against its peers, in one run, on the same data.

``xce bench`` (or ``python benchmarks/bench.py``) runs every implementation on every operation
and size, once per glibc allocator setting, each setting in its own worker process (the
allocator reads its settings at start-up), and prints one table with the measured floors:

- time: the median per call over rounds in which every implementation runs once in turn (in
  balanced orders, after a warm-up; fast calls in batches of ~2 ms), so a slow moment of a
  shared machine slows every implementation alike instead of whichever ran then; each row
  names the function it timed;
- "speed-up vs torch": torch's median time over the row's (above 1: faster than torch), so
  it agrees with the times; the CSV also has the median of the per-round ratios
  (``paired_speed_up``) and each case's spread (interquartile range over median);
- disturbance: a run is reported as disturbed (a warning above and below the table) when the
  floors moved, cases spread, CPU time was stolen or other processes were running (the
  limits are in ``report``);
- peak extra memory: the high-water mark of the resident set during one call, over the
  inputs, measured in a fresh process per implementation at the headline size;
- CPU steal: the share of the machine's CPU time that the hypervisor gave to other virtual
  machines while each case was timed (Linux's /proc/stat), in the CSV, and per allocator
  setting in the machine line, so that a run timed during a slow spell shows it;
- floors, measured in the same run: the logits' bytes over the memory read bandwidth (every
  core reading) and the number of exponentials over the exp throughput of all cores on a
  cache-sized block of the row's dtype; "× floor" is each time over the larger of the two.
  The floors are measured before and after each worker, and the best of these is kept: a
  shared virtual machine only ever slows a measurement down, and a floor set by a slow moment
  would flatter every figure measured against it.

Results go to stdout, to a CSV file and, with ``--plot FILE.png`` (needs matplotlib), to a chart.

This package holds the command (its options, :func:`run` and :func:`main`); its modules hold
the cases (``cases``), the timing (``timing``), the floors (``floors``), the machine and its
allocator settings (``machine``), the worker processes (``workers``), the table and CSV
(``report``), the summary tables (``summary``) and the chart (``chart``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .cases import ALL_OPERATIONS, HEADLINE, IMPLEMENTATIONS, OPERATIONS, SIZES, available
from .floors import add_floors, best_floors_by_dtype, measure_floors
from .machine import (
    ALLOCATORS,
    allocator_settings,
    cpu_times,
    load_per_core,
    machine_description,
    steal_share,
)
from .report import disturbances, format_table, progress, write_csv
from .summary import summary_tables
from .workers import spawn

__all__ = ["main", "parser", "run"]


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Time every case of ``args`` in a worker per allocator setting, measure the floors
    around them and, at the headline size, each implementation's peak extra memory.
    Returns the rows (one per case and implementation) and the floors."""
    implementations = list(available(args.implementations))
    sizes = [tuple(s) for s in args.sizes]
    cases_per_setting = len(implementations) * len(sizes) * len(args.operations) * len(args.dtypes)
    # the default operations' memory: the option operations add nothing there worth a process
    memory_cases = [(i, op) for i in implementations for op in args.operations
                    if op in OPERATIONS] if (args.memory and HEADLINE in sizes) else []  # fmt: skip
    total = cases_per_setting * len(args.allocators) + len(memory_cases)
    done, rows, steal, load = 0, [], {}, {}
    measured = {dtype: [measure_floors(dtype)] for dtype in args.dtypes}
    for allocator in args.allocators:
        spec = {"implementations": implementations, "sizes": sizes,
                "operations": args.operations, "dtypes": args.dtypes}  # fmt: skip
        load[allocator] = load_per_core()
        before = cpu_times()
        worker = spawn("--worker", spec, ALLOCATORS[allocator])
        assert worker.stdout is not None  # spawned with stdout=PIPE
        for line in worker.stdout:
            row = json.loads(line)
            row["allocator"] = allocator
            rows.append(row)
            done += 1
            progress(done, total, f"{allocator}: {row['implementation']} {row['operation']} "
                     f"{row['n']}x{row['c']}")  # fmt: skip
        if worker.wait():
            raise RuntimeError(f"benchmark worker failed ({allocator} allocator)")
        steal[allocator] = steal_share(before, cpu_times())
        for dtype in args.dtypes:
            measured[dtype].append(measure_floors(dtype))
    best = best_floors_by_dtype(measured)
    floors = dict(best[args.dtypes[0]], cpu_steal=steal, load_per_core=load, dtype=args.dtypes[0])
    floors["exp_per_second_by_dtype"] = {d: b["exp_per_second"] for d, b in best.items()}
    memory = {}
    for name, op in memory_cases:
        spec = {"implementation": name, "operation": op, "size": HEADLINE, "dtype": "float32"}
        worker = spawn("--memory", spec, ALLOCATORS["tuned"])
        out, _ = worker.communicate()
        memory[(name, op)] = json.loads(out.strip().splitlines()[-1])["peak_extra_bytes"]
        done += 1
        progress(done, total, f"memory: {name} {op}")
    sys.stderr.write("\n")
    add_floors(rows, best)
    for row in rows:
        itemsize = 4 if row["dtype"] == "float32" else 8
        key = (row["implementation"], row["operation"])
        if (row["n"], row["c"]) == HEADLINE and row["dtype"] == "float32" and key in memory:
            row["peak_extra_bytes"] = memory[key]
            row["peak_extra_vs_logits"] = memory[key] / (row["n"] * row["c"] * itemsize)
    return rows, floors


def parser(prog: str = "xce bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Time xce against torch's F.cross_entropy, a plain NumPy version and "
        "JAX/Optax under jax.jit, side by side in one run on the same data, with the machine's "
        "floors (memory bandwidth, exp throughput) and peak memory. Prints a table and writes "
        "a CSV file. The other losses have their own runs: 'xce bench linear --help' (fused "
        "linear cross entropy against torch's F.linear_cross_entropy and the matmul floor) and "
        "'xce bench ctc --help' (CTC against torch's F.ctc_loss and Optax).",
    )
    p.add_argument("--sizes", type=lambda s: tuple(int(v) for v in s.lower().split("x")),
                   nargs="+", default=list(SIZES), metavar="NxC",
                   help="problem sizes as rows x classes, e.g. 4096x32000 (default: "
                   + " ".join(f"{n}x{c}" for n, c in SIZES) + ")")  # fmt: skip
    p.add_argument("--dtypes", nargs="+", default=["float32"], choices=["float32", "float64"],
                   help="floating dtypes to time (default: float32)")  # fmt: skip
    p.add_argument("--operations", nargs="+", default=list(OPERATIONS), choices=ALL_OPERATIONS,
                   help="sparse: integer labels; sparse+grad: the same with the gradient; "
                   "soft: soft targets; binary: sigmoid cross entropy; and, only when named, "
                   "the sparse forward with one option: sparse+smoothing (label smoothing 0.1), "
                   "sparse+ignore_index (every fourth label ignored), sparse+class_weight, "
                   "sparse+sample_weight (default: " + " ".join(OPERATIONS) + ")")  # fmt: skip
    p.add_argument("--implementations", nargs="+", default=list(IMPLEMENTATIONS),
                   choices=list(IMPLEMENTATIONS),
                   help="what to time; those whose library is not installed are left out "
                   "(default: all)")  # fmt: skip
    p.add_argument("--allocators", nargs="+", default=list(ALLOCATORS), choices=list(ALLOCATORS),
                   help="glibc allocator settings, each in its own worker process: default, "
                   "or tuned (MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ raised) "
                   "(default: both)")  # fmt: skip
    p.add_argument("--no-memory", dest="memory", action="store_false",
                   help="skip measuring peak extra memory "
                   "(one process per implementation)")  # fmt: skip
    p.add_argument("--csv", default="benchmarks/results/bench.csv",
                   help="where to write every row as CSV (default: %(default)s)")  # fmt: skip
    p.add_argument("--plot", metavar="FILE.png",
                   help="also draw a chart into FILE.png "
                   "(needs matplotlib: the bench extra)")  # fmt: skip
    return p


# The structured losses' benchmarks, each a module with its own cases, options and table:
# ``xce bench linear ...`` runs ``xce._bench.linear.main``.
SUITES = ("linear", "ctc")


def main(argv: Sequence[str] | None = None, prog: str = "xce bench") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in SUITES:
        import importlib

        return importlib.import_module(f"{__name__}.{argv[0]}").main(argv[1:])
    args = parser(prog).parse_args(argv)
    rows, floors = run(args)
    warnings = disturbances(rows, floors)
    print(f"Machine: {machine_description(floors)}")
    print("Allocator settings: " + allocator_settings(args.allocators))
    for warning in warnings:
        print(f"WARNING: this run was disturbed: {warning}")
    print("\n" + summary_tables(rows))
    print(format_table(rows))
    if warnings:
        print(
            "\nWARNING: the run was disturbed (see above): rerun on a quiet machine before "
            "quoting these numbers"
        )
    write_csv(rows, args.csv)
    print(f"\nCSV written to {args.csv}")
    if args.plot:
        from .chart import plot

        plot(rows, args.plot)
        print(f"Chart written to {args.plot}")
    return 0
