"""The benchmark (``xce bench``): what it times is right, its floors, and a run end to end.

A benchmark that times a wrong implementation compares nothing, so every implementation the
environment has is checked against the float64 reference on each operation it times.
"""

from __future__ import annotations

import collections
import csv
import importlib.util
import itertools
import statistics
import subprocess
import sys

import numpy as np
import pytest

from tests import reference
from xce._bench.cases import (
    ALL_OPERATIONS,
    IMPLEMENTATIONS,
    OPERATIONS,
    OPTION_OPERATIONS,
    REFERENCE,
    TIMED,
    available,
    binary_targets,
    data,
    soft_targets,
)
from xce._bench.chart import chart_series, plot
from xce._bench.floors import add_floors, best_floors, best_floors_by_dtype, floor_seconds
from xce._bench.machine import cpu_times, machine_description, steal_share
from xce._bench.options import option_inputs
from xce._bench.report import disturbances, format_table
from xce._bench.timing import interleaved_times, paired_ratio, relative_spread, round_orders


def _as_float64(value):
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu()
    return np.asarray(value, dtype=np.float64)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_available_implementation_computes_the_reference_loss(operation):
    # float32, the benchmark's main dtype (JAX computes in it by default); the oracle is the
    # float64 reference on the same float32 values.
    logits, labels = data(16, 7, "float32", seed=3)
    onehot = np.eye(7)[labels]
    expected = {
        "sparse": reference.sparse_categorical_cross_entropy(labels, logits, from_logits=True),
        "sparse+grad": reference.sparse_categorical_cross_entropy(labels, logits, from_logits=True),
        "soft": reference.categorical_cross_entropy(soft_targets(logits), logits, from_logits=True),
        "binary": reference.binary_cross_entropy(binary_targets(logits), logits, from_logits=True),
    }[operation]
    implementations = available(IMPLEMENTATIONS)
    assert "xce numpy" in implementations and "numpy plain" in implementations
    for name, build in implementations.items():
        result = build(operation, logits, labels)()
        loss = result[0] if operation == "sparse+grad" else result
        np.testing.assert_allclose(_as_float64(loss), expected, rtol=2e-6, err_msg=name)
        if operation == "sparse+grad":
            grad = (reference.softmax(logits) - onehot) / len(labels)
            np.testing.assert_allclose(_as_float64(result[1]), grad, rtol=1e-5, atol=1e-9,
                                       err_msg=name)  # fmt: skip


@pytest.mark.parametrize("operation", OPTION_OPERATIONS)
def test_every_implementation_of_an_option_operation_computes_the_reference_loss(operation):
    """The same number from each peer's own option (torch's F.cross_entropy arguments,
    Optax's arithmetic in jax.numpy), against the float64 reference with that option."""
    logits, labels = data(16, 7, "float32", seed=5)
    y, options = option_inputs(operation, logits, labels)
    assert (y == -100).sum() == (4 if operation == "sparse+ignore_index" else 0)
    expected = reference.sparse_categorical_cross_entropy(y, logits, from_logits=True, **options)
    implementations = available(IMPLEMENTATIONS)
    assert implementations["numpy plain"](operation, logits, labels) is None
    timed = [name for name in implementations if name != "numpy plain"]
    assert "xce numpy" in timed
    for name in timed:
        loss = implementations[name](operation, logits, labels)()
        np.testing.assert_allclose(_as_float64(loss), expected, rtol=3e-6, err_msg=name)


def test_floor_is_the_slower_of_memory_traffic_and_exponentials():
    floors = {"read_bandwidth": 20e9, "exp_per_second": 3e9}
    # 4096·32000 float32 logits: 524.288 MB read at 20 GB/s = 26.2 ms; 131.072 M exp at 3·10⁹/s
    # = 43.7 ms, so exp sets the forward's floor. With the gradient's 524 MB write, memory
    # traffic sets it: 2·524.288 MB / 20 GB/s = 52.4 ms.
    assert floor_seconds("sparse", 4096, 32000, 4, floors) == pytest.approx(0.043690667)
    assert floor_seconds("sparse+grad", 4096, 32000, 4, floors) == pytest.approx(0.0524288)
    # Soft targets read two float64 arrays: 2·1.048576 GB / 20 GB/s = 104.9 ms > 43.7 ms.
    assert floor_seconds("soft", 4096, 32000, 8, floors) == pytest.approx(0.1048576)


def test_each_row_is_measured_against_the_floors_of_its_dtype():
    # float64's exp runs at half float32's rate here: 131.072 M exponentials take 43.7 ms in
    # float32 and 87.4 ms in float64, more than float64's 1.048576 GB read at 20 GB/s (52.4 ms).
    floors = {"float32": {"read_bandwidth": 20e9, "exp_per_second": 3e9},
              "float64": {"read_bandwidth": 20e9, "exp_per_second": 1.5e9}}  # fmt: skip
    rows = [{"dtype": dtype, "operation": "sparse", "n": 4096, "c": 32000, "seconds": 0.1}
            for dtype in ("float32", "float64")]  # fmt: skip
    add_floors(rows, floors)
    assert [r["floor_seconds"] for r in rows] == pytest.approx([0.043690667, 0.087381333])
    assert [r["times_floor"] for r in rows] == pytest.approx([2.2888184, 1.1444092])
    rates = {"float32": 3e9, "float64": 1.5e9}
    description = machine_description(
        dict(floors["float32"], threads=2, exp_per_second_by_dtype=rates)
    )
    assert "exp throughput 3.00·10⁹/s float32, 1.50·10⁹/s float64 (all cores)" in description


def test_best_floors_keep_the_fastest_measurement_and_the_range():
    measured = [
        {"threads": 2, "read_bandwidth": 18e9, "exp_per_second": 1.7e9},
        {"threads": 2, "read_bandwidth": 21e9, "exp_per_second": 2.9e9},
        {"threads": 2, "read_bandwidth": 19e9, "exp_per_second": 2.4e9},
    ]
    best = best_floors(measured)
    assert best["read_bandwidth"] == 21e9
    assert best["exp_per_second"] == 2.9e9
    assert best["exp_per_second_range"] == (1.7e9, 2.9e9)
    assert "best of 3 measurements (exp 1.70-2.90" in machine_description(best)


def test_best_floors_per_dtype_share_the_best_read_bandwidth():
    # Every measurement reads the same float32 array: float64's 22 GB/s is the machine's too.
    measured = {
        "float32": [{"threads": 2, "read_bandwidth": 18e9, "exp_per_second": 3.0e9},
                    {"threads": 2, "read_bandwidth": 21e9, "exp_per_second": 2.5e9}],
        "float64": [{"threads": 2, "read_bandwidth": 22e9, "exp_per_second": 1.4e9}],
    }  # fmt: skip
    best = best_floors_by_dtype(measured)
    assert {d: b["read_bandwidth"] for d, b in best.items()} == {"float32": 22e9, "float64": 22e9}
    assert {d: b["exp_per_second"] for d, b in best.items()} == {"float32": 3e9, "float64": 1.4e9}
    assert best["float32"]["exp_per_second_range"] == (2.5e9, 3e9)


def test_steal_share_is_the_stolen_part_of_all_cpu_time():
    # user nice system idle iowait irq softirq steal: 442 ticks passed, 70 of them stolen
    before = [100, 5, 50, 800, 3, 1, 2, 50]
    after = [200, 15, 100, 1000, 9, 3, 6, 120]
    assert steal_share(before, after) == pytest.approx(70 / 442)
    assert steal_share(before, before) is None  # no time passed
    assert steal_share(None, after) is None  # no /proc/stat
    floors = {"threads": 2, "read_bandwidth": 20e9, "exp_per_second": 2.5e9,
              "cpu_steal": {"default": 70 / 442, "tuned": None}}  # fmt: skip
    description = machine_description(floors)
    assert description.endswith("CPU time stolen by the hypervisor while timing: default 15.8%")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux's")
def test_cpu_times_are_the_first_eight_counters_of_proc_stat():
    with open("/proc/stat") as f:
        expected = [int(v) for v in f.readline().split()[1:9]]
    assert len(expected) == 8, "a kernel older than 2.6.11 has no steal counter"
    times = cpu_times()
    assert len(times) == 8
    assert all(now >= then for now, then in zip(times, expected, strict=True))  # counters grow
    assert sum(times) - sum(expected) < 1000  # the same counters, read moments apart


class _SharedMachine:
    """A fake clock whose calls cost a fixed time each, three times as much during a slow
    spell, as on a shared virtual machine."""

    def __init__(self, slow_from, slow_until):
        self.now, self.slow = 0.0, (slow_from, slow_until)
        self.calls = []

    def clock(self):
        return self.now

    def function(self, name, seconds):
        def call():
            self.calls.append(name)
            slow = self.slow[0] <= self.now < self.slow[1]
            self.now += seconds * (3 if slow else 1)

        return call


def test_interleaved_rounds_warm_up_batch_fast_calls_and_pair_the_ratios():
    # Warm-up takes ~0.066 s of the fake clock, and a round 8 ms (24 ms in the slow spell): the
    # spell covers about rounds 7 to 10 of 20.
    machine = _SharedMachine(slow_from=0.12, slow_until=0.2)
    costs = {"reference": 4e-3, "half": 2e-3, "tiny": 1e-5}
    names = list(costs)
    fns = {name: machine.function(name, cost) for name, cost in costs.items()}
    times = interleaved_times(fns, min_time=0.0, min_rounds=20, max_rounds=20, batch_time=2e-3,
                              warmup_time=0.0195, clock=machine.clock)  # fmt: skip
    assert {name: len(t) for name, t in times.items()} == {name: 20 for name in costs}
    # Warm-up: one call, then calls until 0.0195 s have passed (5 of 4 ms, 10 of 2 ms, ~1950
    # of 10 µs), in turn.
    calls, position = machine.calls, 0
    for name in names:
        run = 0
        while calls[position + run] == name:
            run += 1
        assert run >= 2
        position += run
    assert calls[:17] == ["reference"] * 6 + ["half"] * 11
    # Then 20 rounds in the balanced orders, calls under 2 ms in batches of ~2 ms (200 × 10 µs).
    batch = {"reference": 1, "half": 1, "tiny": 200}
    orders = round_orders(3)
    expected = [names[i] for r in range(20) for i in orders[r % 6] for _ in range(batch[names[i]])]
    assert calls[position:] == expected
    # Outside the slow spell each call is timed at its cost (the tiny one per call of a batch).
    for name, cost in costs.items():
        assert statistics.median(times[name]) == pytest.approx(cost)
        assert min(times[name]) == pytest.approx(cost)
        assert max(times[name]) == pytest.approx(3 * cost)  # some rounds fell in the spell
    # Paired by round, the ratio is exact although the spell slowed whole rounds.
    assert paired_ratio(times["reference"], times["half"]) == pytest.approx(2.0)
    assert paired_ratio(times["reference"], times["tiny"]) == pytest.approx(400.0)


@pytest.mark.parametrize("count", range(1, 8))
def test_round_orders_balance_positions_and_successors(count):
    """Each implementation runs in each position, and right after each other one, equally
    often: so what one leaves behind slows each of the others alike."""
    orders = round_orders(count)
    assert len(orders) == (2 * count if count % 2 else count)
    assert all(sorted(order) == list(range(count)) for order in orders)
    per_cycle = len(orders) // count
    for position in range(count):
        firsts = [order[position] for order in orders]
        assert all(firsts.count(i) == per_cycle for i in range(count))
    successions = collections.Counter(p for order in orders for p in itertools.pairwise(order))
    assert successions == {(a, b): per_cycle for a in range(count) for b in range(count) if a != b}


def _row(allocator, dtype, n, c, op, name, times_floor):
    return {"allocator": allocator, "dtype": dtype, "n": n, "c": c, "operation": op,
            "implementation": name, "times_floor": times_floor}  # fmt: skip


def test_chart_shows_tuned_float32_with_sizes_in_order_and_gaps_left_empty():
    rows = [
        _row("default", "float32", 64, 10, "sparse", "a", 9.0),
        _row("tuned", "float64", 64, 10, "sparse", "a", 8.0),
        _row("tuned", "float32", 1024, 128256, "sparse", "a", 3.0),
        _row("tuned", "float32", 2048, 64000, "sparse", "a", 4.0),
        _row("tuned", "float32", 4096, 32000, "binary", "a", 7.0),
        _row("tuned", "float32", 4096, 32000, "sparse", "b", 2.5),
        _row("tuned", "float32", 4096, 32000, "sparse", "a", 2.0),
        _row("tuned", "float32", 64, 10, "sparse", "a", 100.0),
    ]
    allocator, dtype, labels, series = chart_series(rows)
    assert (allocator, dtype) == ("tuned", "float32")
    # 2048·64000 = 4096·32000 = 131072000 (N breaks the tie) < 1024·128256 = 131334144
    assert labels == ["64×10", "2048×64000", "4096×32000", "1024×128256"]
    assert list(series) == ["sparse", "binary"]  # in the benchmark's order of operations
    assert series["sparse"] == {"a": [100.0, 4.0, 2.0, 3.0], "b": [None, None, 2.5, None]}
    assert series["binary"] == {"a": [None, None, 7.0, None]}
    # A run without the tuned allocator or float32 shows what it has.
    only = chart_series([_row("default", "float64", 8, 10, "soft", "a", 5.0)])
    assert only == ("default", "float64", ["8×10"], {"soft": {"a": [5.0]}})


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="the chart needs the bench extra (matplotlib)")
    rows = [_row("tuned", "float32", n, c, op, name, t) for (n, c), t in
            (((64, 10), 90.0), ((4096, 32000), 2.0)) for op in ("sparse", "soft")
            for name in ("a", "b")]  # fmt: skip
    del rows[0]  # a size an implementation was not timed at: a gap in its line
    path = tmp_path / "chart.png"
    plot(rows, path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000  # two panels with axes, lines and labels, not an empty canvas


def test_bench_runs_end_to_end_and_writes_its_csv(tmp_path):
    out = tmp_path / "bench.csv"
    names = ["xce numpy", "numpy plain"]
    with_torch = importlib.util.find_spec("torch") is not None
    if with_torch:  # the reference of the "vs torch" column
        names.append(REFERENCE)
    done = subprocess.run(
        [sys.executable, "-m", "xce", "bench", "--sizes", "8x10", "--operations", "sparse",
         "sparse+grad", "sparse+sample_weight", "--implementations", *names, "--allocators",
         "default", "--no-memory", "--csv", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Machine: ")
    assert "| default | float32 | 8 × 10 | sparse+grad | xce numpy |" in done.stdout
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    # the textbook NumPy version has no option operation: no row for it
    assert {(r["operation"], r["implementation"]) for r in rows} == {
        (op, name) for op in ("sparse", "sparse+grad") for name in names
    } | {("sparse+sample_weight", name) for name in names if name != "numpy plain"}
    assert "| 8 × 10 | sparse+sample_weight |" in done.stdout  # in the summary table
    for row in rows:
        seconds, floor = float(row["seconds"]), float(row["floor_seconds"])
        assert 0 < floor < seconds < 1
        assert float(row["times_floor"]) == pytest.approx(seconds / floor)
        if cpu_times() is not None:  # Linux
            assert 0 <= float(row["cpu_steal"]) <= 1
        assert row["function"] == TIMED[row["implementation"]][row["operation"]]
        assert float(row["spread"]) >= 0
        if not with_torch:
            assert row["speed_up"] == ""
            continue
        # The speed-up is torch's median time over the row's: it agrees with the times.
        torch_row = next(r for r in rows if r["implementation"] == REFERENCE
                         and r["operation"] == row["operation"])  # fmt: skip
        expected = float(torch_row["seconds"]) / seconds
        assert float(row["speed_up"]) == pytest.approx(expected, rel=1e-9)
        if row["implementation"] == REFERENCE:
            assert float(row["paired_speed_up"]) == 1.0  # each round against itself


def test_every_implementation_names_the_function_it_times_for_every_operation():
    assert set(TIMED) == set(IMPLEMENTATIONS)
    for name, functions in TIMED.items():
        # the textbook NumPy version has no option operations (its builder gives None)
        operations = OPERATIONS if name == "numpy plain" else ALL_OPERATIONS
        assert set(functions) == set(operations), name
    assert TIMED[REFERENCE]["binary"] == "F.binary_cross_entropy_with_logits"
    assert TIMED[REFERENCE]["sparse+class_weight"] == "F.cross_entropy(weight=w)"


def test_relative_spread_is_the_interquartile_range_over_the_median():
    # quartiles of 1..8 (exclusive method): 2.25 and 6.75; median 4.5
    assert relative_spread([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5 / 4.5)
    assert relative_spread([2.0] * 10) == 0.0
    assert relative_spread([1.0, 9.0]) == 0.0  # too few rounds to say


def _timed_row(name, seconds, spread=0.01, speed_up=None):
    row = {"allocator": "tuned", "dtype": "float32", "n": 64, "c": 10, "operation": "sparse",
           "implementation": name, "function": TIMED[name]["sparse"], "seconds": seconds,
           "spread": spread, "times_floor": seconds / 1e-6}  # fmt: skip
    if speed_up is not None:
        row["speed_up"] = speed_up
    return row


def test_a_quiet_run_has_no_warning_and_a_disturbed_one_says_why():
    quiet = {"exp_per_second_range": (2.9e9, 3.0e9), "cpu_steal": {"tuned": 0.01},
             "load_per_core": {"tuned": 0.1}}  # fmt: skip
    rows = [_timed_row("torch", 2e-5, speed_up=1.0), _timed_row("xce numpy", 1e-5, speed_up=2.0)]
    assert disturbances(rows, quiet) == []
    noisy = {"exp_per_second_range": (1.5e9, 3.0e9), "cpu_steal": {"tuned": 0.2},
             "load_per_core": {"tuned": 1.5}}  # fmt: skip
    rows[0]["spread"] = 0.9  # e.g. torch at 7-18 ms for (64, 10) under contention
    found = disturbances(rows, noisy)
    assert len(found) == 4
    assert "exp floor moved by 50%" in found[0]
    assert "1 of 2 cases spread" in found[1]
    assert "stole 20.0%" in found[2]
    assert "1.50 other processes per core were running" in found[3]
    table = format_table(rows)
    assert "| torch | F.cross_entropy | 0.020 ⚠ | 1.00× |" in table
    assert "| xce numpy | xce.sparse_categorical_cross_entropy | 0.010 | 2.00× |" in table


@pytest.mark.parametrize("suite", ["linear", "ctc"])
def test_bench_hands_the_structured_losses_to_their_own_runs(suite, capsys):
    from xce._bench import main

    with pytest.raises(SystemExit) as done:
        main([suite, "--help"])
    assert done.value.code == 0
    assert f"xce._bench.{suite}" in capsys.readouterr().out


def test_summary_has_a_table_per_dtype_and_allocator_with_speed_up_and_floor():
    from xce._bench.summary import summary_tables

    rows = [
        dict(_timed_row("torch", 2e-5, speed_up=1.0), times_floor=20.0),
        dict(_timed_row("xce numpy", 1e-5, speed_up=2.0), times_floor=10.0),
        dict(_timed_row("xce numpy", 4e-5, speed_up=0.5), times_floor=40.0, dtype="float64"),
    ]
    text = summary_tables(rows)
    assert "float32, tuned allocator: speed-up over torch (time / floor)" in text
    assert "| 64 × 10 | sparse | 0.020 (20.0) | 2.00× (10.0) |" in text
    assert "float64, tuned allocator" in text
    assert "| 64 × 10 | sparse | - | 0.50× (40.0) |" in text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux's")
def test_load_per_core_counts_other_runnable_processes():
    from xce._bench.machine import load_per_core

    load = load_per_core(samples=3, interval=0.01)
    assert load is not None and 0 <= load < 1000
