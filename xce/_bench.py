"""Side-by-side benchmark: xce against its peers, in one run, on the same data.

``xce bench`` (or ``python benchmarks/bench.py``) runs every implementation on every operation
and size, once per glibc allocator setting, each setting in its own worker process (the
allocator reads its settings at start-up), and prints one table with the measured floors:

- time: the median per call over rounds in which every implementation runs once in turn (in
  balanced orders, after a warm-up; fast calls in batches of ~2 ms); "vs torch" is the
  median over the same rounds of torch's time over each implementation's, so a slow moment
  of a shared machine slows both sides of a ratio instead of whichever ran then;
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
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

SIZES = ((64, 10), (256, 1000), (4096, 32000), (1024, 128256), (256, 256000))
HEADLINE = (4096, 32000)
OPERATIONS = ("sparse", "sparse+grad", "soft", "binary")
ALLOCATORS = {
    "default": {},
    # Large thresholds keep big buffers on the heap and the heap from shrinking: the same
    # pages are reused call after call instead of being mmapped and faulted in each time.
    "tuned": {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296"},
}
_ALLOCATOR_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


# --------------------------------------------------------------------------- implementations
def _data(n, c, dtype, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c), dtype=np.float32).astype(dtype, copy=False) * 3
    labels = rng.integers(0, c, size=n)
    return logits, labels


def _soft_targets(logits):
    import numpy as np

    # A cheap, deterministic distribution per row: a softmax of the rolled logits.
    rolled = np.roll(logits, 1, axis=1)
    e = np.exp(rolled - rolled.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _binary_targets(logits):
    return (logits > 0.5).astype(logits.dtype)


def _xce(asarray):
    import xce

    grad_fn = xce.value_and_grad(xce.sparse_categorical_cross_entropy)

    def build(op, logits, labels):
        x, y = asarray(logits), asarray(labels)
        if op == "sparse":
            return lambda: xce.sparse_categorical_cross_entropy(y, x, from_logits=True)
        if op == "sparse+grad":
            return lambda: grad_fn(y, x, from_logits=True)
        if op == "soft":
            q = asarray(_soft_targets(logits))
            return lambda: xce.categorical_cross_entropy(q, x, from_logits=True)
        t = asarray(_binary_targets(logits))
        return lambda: xce.binary_cross_entropy(t, x, from_logits=True)

    return build


def _xce_numpy():
    import numpy as np

    return _xce(np.asarray)


def _xce_torch():
    import torch

    return _xce(torch.from_numpy)


def _torch_native():
    import torch
    import torch.nn.functional as F

    def build(op, logits, labels):
        x, y = torch.from_numpy(logits), torch.from_numpy(labels)
        if op == "sparse":
            return lambda: F.cross_entropy(x, y)
        if op == "sparse+grad":
            leaf = x.clone().requires_grad_(True)

            def forward_backward():
                leaf.grad = None
                loss = F.cross_entropy(leaf, y)
                loss.backward()
                return loss, leaf.grad

            return forward_backward
        if op == "soft":
            q = torch.from_numpy(_soft_targets(logits))
            return lambda: F.cross_entropy(x, q)
        t = torch.from_numpy(_binary_targets(logits))
        return lambda: F.binary_cross_entropy_with_logits(x, t)

    return build


def _numpy_plain():
    """The textbook NumPy version: log-softmax, gather, mean; softmax - one-hot for the grad."""
    import numpy as np

    def log_softmax(x):
        z = x - x.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def build(op, x, y):
        rows = np.arange(x.shape[0])
        if op == "sparse":
            return lambda: -log_softmax(x)[rows, y].mean()
        if op == "sparse+grad":

            def forward_backward():
                log_p = log_softmax(x)
                grad = np.exp(log_p)
                grad[rows, y] -= 1
                return -log_p[rows, y].mean(), grad / x.shape[0]

            return forward_backward
        if op == "soft":
            q = _soft_targets(x)
            return lambda: -(q * log_softmax(x)).sum(axis=1).mean()
        t = _binary_targets(x)
        return lambda: (
            np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
        ).mean()  # fmt: skip

    return build


def _jax_jit():
    import jax
    import jax.numpy as jnp

    try:
        import optax

        sparse = optax.softmax_cross_entropy_with_integer_labels
        soft = optax.softmax_cross_entropy
        binary = optax.sigmoid_binary_cross_entropy
    except ImportError:  # the same formulas with jax.nn

        def sparse(x, y):
            return -jnp.take_along_axis(jax.nn.log_softmax(x), y[:, None], axis=1)[:, 0]

        def soft(x, q):
            return -(q * jax.nn.log_softmax(x)).sum(axis=1)

        def binary(x, t):
            return jnp.maximum(x, 0) - x * t + jnp.log1p(jnp.exp(-jnp.abs(x)))

    def mean_of(fn):
        return jax.jit(lambda x, t: fn(x, t).mean())

    def build(op, logits, labels):
        x, y = jnp.asarray(logits), jnp.asarray(labels)
        if op == "sparse":
            fn, arg = mean_of(sparse), y
        elif op == "sparse+grad":
            fn, arg = jax.jit(jax.value_and_grad(lambda x, y: sparse(x, y).mean())), y
        elif op == "soft":
            fn, arg = mean_of(soft), jnp.asarray(_soft_targets(logits))
        else:
            fn, arg = mean_of(binary), jnp.asarray(_binary_targets(logits))
        return lambda: jax.block_until_ready(fn(x, arg))

    return build


REFERENCE = "torch F.cross_entropy"  # the "vs torch" column's reference
IMPLEMENTATIONS = {
    "xce numpy": _xce_numpy,
    "xce torch": _xce_torch,
    "torch F.cross_entropy": _torch_native,
    "numpy plain": _numpy_plain,
    "jax jit": _jax_jit,
}


def _available(names):
    found = {}
    for name in names:
        try:
            found[name] = IMPLEMENTATIONS[name]()
        except ImportError:
            pass
    return found


# --------------------------------------------------------------------------- measurements
def _median_seconds(fn, *, min_time=0.5, min_runs=5, max_runs=50):
    fn()  # warm-up: first-call costs (JIT, thread pools, page faults) stay out of the median
    times = []
    start = time.perf_counter()
    while len(times) < max_runs and (
        len(times) < min_runs or time.perf_counter() - start < min_time
    ):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _interleaved_times(fns, *, min_time=0.5, min_rounds=5, max_rounds=50, batch_time=0.002,
                       warmup_time=0.02, clock=time.perf_counter):  # fmt: skip
    """Per-call seconds of each function in ``fns`` (name → callable), round by round.

    Each round calls every function once in turn, in the orders of :func:`_round_orders`, so
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
    orders = _round_orders(len(names))
    times = {name: [] for name in names}
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


def _round_orders(count):
    """The orders in which ``count`` implementations run, round after round: a Williams
    design. Each implementation runs in each position, and right after each other one, equally
    often (over ``count`` rounds, ``2·count`` when odd), so what one leaves behind (threads
    still spinning, evicted caches) slows each of the others alike. A plain rotation gave each
    implementation the same successor in all rounds but one in ``count``, and at (64, 10) the
    call right after JAX's ran up to 1.2× slower than after torch's."""
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


def _paired_ratio(reference, times):
    """The median over rounds of reference time / time: how many times faster than the
    reference, each round compared with itself."""
    return statistics.median(r / t for r, t in zip(reference, times, strict=True))


def _peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _cpu_times():
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


def _steal_share(before, after):
    """The share of the machine's CPU time between two :func:`_cpu_times` readings that the
    hypervisor gave to other virtual machines ("steal"), or ``None``. On a shared virtual
    machine it is one cause of slow spells: timings taken while it is high are not the
    machine's own."""
    if before is None or after is None:
        return None
    total = sum(after) - sum(before)
    return (after[7] - before[7]) / total if total > 0 else None


def measure_floors(dtype_name="float32"):
    """Memory read bandwidth over a large array and exp throughput on cache-sized blocks of
    ``dtype_name``, both with every core busy, as in the threaded kernels. The array read is
    float32 whatever the dtype: float32, float64, uint8 and int64 maxima all read at 19-22
    GB/s here."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    threads = len(os.sched_getaffinity(0))
    big = np.random.default_rng(1).standard_normal(HEADLINE, dtype=np.float32)
    shares = np.array_split(big, threads)
    with ThreadPoolExecutor(threads) as pool:
        read = _median_seconds(lambda: list(pool.map(np.max, shares)), min_runs=5)
        blocks = [np.random.default_rng(i).standard_normal(65536).astype(dtype_name) for i in
                  range(threads)]  # fmt: skip
        outs = [np.empty_like(b) for b in blocks]
        repeats = 200

        def exp_many(i):
            for _ in range(repeats):
                np.exp(blocks[i], out=outs[i])

        exp_time = _median_seconds(lambda: list(pool.map(exp_many, range(threads))), min_runs=3)
    return {
        "threads": threads,
        "read_bandwidth": big.nbytes / read,
        "exp_per_second": threads * repeats * blocks[0].size / exp_time,
    }


def _best_floors(measured):
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


def _best_floors_by_dtype(measured):
    """:func:`_best_floors` for each dtype's measurements, with one read bandwidth for all:
    the best of every measurement, since each dtype's reads the same float32 array."""
    best = {dtype: _best_floors(m) for dtype, m in measured.items()}
    bandwidth = max(b["read_bandwidth"] for b in best.values())
    return {dtype: dict(b, read_bandwidth=bandwidth) for dtype, b in best.items()}


def floor_seconds(op, n, c, itemsize, floors):
    """The lower bound for one operation: memory traffic or exponentials, whichever is slower."""
    reads = {"sparse": 1, "sparse+grad": 1, "soft": 2, "binary": 2}[op]
    writes = 1 if op == "sparse+grad" else 0
    memory = (reads + writes) * n * c * itemsize / floors["read_bandwidth"]
    return max(memory, n * c / floors["exp_per_second"])


def add_floors(rows, floors_by_dtype):
    """Set each row's floor and its time over it, at the floors measured in the row's dtype
    (float64's exp runs at 0.45-0.7× float32's rate on the project machine)."""
    for row in rows:
        itemsize = 4 if row["dtype"] == "float32" else 8
        floor = floor_seconds(row["operation"], row["n"], row["c"], itemsize,
                              floors_by_dtype[row["dtype"]])  # fmt: skip
        row["floor_seconds"] = floor
        row["times_floor"] = row["seconds"] / floor


def _worker(spec):
    """Time every case of ``spec`` in this process and print one JSON line per case and
    implementation: the median time per call, and the ratio to torch's F.cross_entropy from
    the same rounds."""
    import numpy as np

    builders = _available(spec["implementations"])
    for dtype_name in spec["dtypes"]:
        for n, c in spec["sizes"]:
            logits, labels = _data(n, c, getattr(np, dtype_name))
            for op in spec["operations"]:
                fns = {name: builder(op, logits, labels) for name, builder in builders.items()}
                before = _cpu_times()
                times = _interleaved_times(fns)
                steal = _steal_share(before, _cpu_times())
                del fns
                for name, seconds in times.items():
                    row = {"implementation": name, "operation": op, "n": n, "c": c,
                           "dtype": dtype_name, "seconds": statistics.median(seconds),
                           "cpu_steal": steal}  # fmt: skip
                    if REFERENCE in times:
                        row["vs_torch"] = _paired_ratio(times[REFERENCE], seconds)
                    print(json.dumps(row), flush=True)


def _memory_worker(spec):
    """Peak extra resident memory of one call, in this fresh process."""
    import gc

    import numpy as np

    name, op = spec["implementation"], spec["operation"]
    n, c = spec["size"]
    builder = _available([name])[name]
    logits, labels = _data(n, c, getattr(np, spec["dtype"]))
    fn = builder(op, logits, labels)
    small = builder(op, logits[:2, :8].copy(), labels[:2] % 8)
    small()  # import-time and first-call machinery, not the call's working memory
    gc.collect()
    before = _peak_rss_bytes()
    result = fn()
    after = _peak_rss_bytes()
    del result
    print(json.dumps({"peak_extra_bytes": max(0, after - before)}), flush=True)


# --------------------------------------------------------------------------- driver
def _spawn(mode, spec, allocator_env):
    env = {k: v for k, v in os.environ.items() if k not in _ALLOCATOR_VARS}
    env.update(allocator_env)
    return subprocess.Popen(
        [sys.executable, "-m", "xce._bench", mode, json.dumps(spec)],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _progress(done, total, label, stream=sys.stderr):
    width = 30
    filled = int(width * done / max(total, 1))
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:<48.48}")
    stream.flush()


def run(args):
    implementations = list(_available(args.implementations))
    sizes = [tuple(s) for s in args.sizes]
    cases_per_setting = len(implementations) * len(sizes) * len(args.operations) * len(args.dtypes)
    memory_cases = [(i, op) for i in implementations for op in args.operations] if (
        args.memory and HEADLINE in sizes) else []  # fmt: skip
    total = cases_per_setting * len(args.allocators) + len(memory_cases)
    done, rows, steal = 0, [], {}
    measured = {dtype: [measure_floors(dtype)] for dtype in args.dtypes}
    for allocator in args.allocators:
        spec = {"implementations": implementations, "sizes": sizes,
                "operations": args.operations, "dtypes": args.dtypes}  # fmt: skip
        before = _cpu_times()
        worker = _spawn("--worker", spec, ALLOCATORS[allocator])
        for line in worker.stdout:
            row = json.loads(line)
            row["allocator"] = allocator
            rows.append(row)
            done += 1
            _progress(done, total, f"{allocator}: {row['implementation']} {row['operation']} "
                      f"{row['n']}x{row['c']}")  # fmt: skip
        if worker.wait():
            raise RuntimeError(f"benchmark worker failed ({allocator} allocator)")
        steal[allocator] = _steal_share(before, _cpu_times())
        for dtype in args.dtypes:
            measured[dtype].append(measure_floors(dtype))
    best = _best_floors_by_dtype(measured)
    floors = dict(best[args.dtypes[0]], cpu_steal=steal, dtype=args.dtypes[0])
    floors["exp_per_second_by_dtype"] = {d: b["exp_per_second"] for d, b in best.items()}
    memory = {}
    for name, op in memory_cases:
        spec = {"implementation": name, "operation": op, "size": HEADLINE, "dtype": "float32"}
        worker = _spawn("--memory", spec, ALLOCATORS["tuned"])
        out, _ = worker.communicate()
        memory[(name, op)] = json.loads(out.strip().splitlines()[-1])["peak_extra_bytes"]
        done += 1
        _progress(done, total, f"memory: {name} {op}")
    sys.stderr.write("\n")
    add_floors(rows, best)
    for row in rows:
        itemsize = 4 if row["dtype"] == "float32" else 8
        key = (row["implementation"], row["operation"])
        if (row["n"], row["c"]) == HEADLINE and row["dtype"] == "float32" and key in memory:
            row["peak_extra_bytes"] = memory[key]
            row["peak_extra_vs_logits"] = memory[key] / (row["n"] * row["c"] * itemsize)
    return rows, floors


def machine_description(floors):
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


def format_table(rows):
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


def write_csv(rows, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fields = [
        "allocator", "dtype", "n", "c", "operation", "implementation", "seconds", "vs_torch",
        "floor_seconds", "times_floor", "peak_extra_bytes", "peak_extra_vs_logits", "cpu_steal",
    ]  # fmt: skip
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def chart_series(rows):
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
    series = {}
    for r in shown:
        values = series.setdefault(r["operation"], {}).setdefault(
            r["implementation"], [None] * len(sizes)
        )
        values[sizes.index((r["n"], r["c"]))] = r["times_floor"]
    ordered = {op: series[op] for op in OPERATIONS if op in series}
    return allocator, dtype, [f"{n}×{c}" for n, c in sizes], ordered


def plot(rows, path):
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


def parser(prog="xce bench"):
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=lambda s: tuple(int(v) for v in s.lower().split("x")),
                   nargs="+", default=list(SIZES), metavar="NxC")  # fmt: skip
    p.add_argument("--dtypes", nargs="+", default=["float32"], choices=["float32", "float64"])
    p.add_argument("--operations", nargs="+", default=list(OPERATIONS), choices=OPERATIONS)
    p.add_argument("--implementations", nargs="+", default=list(IMPLEMENTATIONS),
                   choices=list(IMPLEMENTATIONS))  # fmt: skip
    p.add_argument("--allocators", nargs="+", default=list(ALLOCATORS), choices=list(ALLOCATORS))
    p.add_argument("--no-memory", dest="memory", action="store_false",
                   help="skip the peak-memory processes")  # fmt: skip
    p.add_argument("--csv", default="benchmarks/results/bench.csv")
    p.add_argument("--plot", metavar="FILE.png")
    return p


def main(argv=None, prog="xce bench"):
    args = parser(prog).parse_args(argv)
    rows, floors = run(args)
    print(f"Machine: {machine_description(floors)}")
    print("Allocator settings: " + "; ".join(
        f"{name}: {' '.join(f'{k}={v}' for k, v in env.items()) or 'glibc defaults'}"
        for name, env in ALLOCATORS.items() if name in args.allocators))  # fmt: skip
    print(format_table(rows))
    write_csv(rows, args.csv)
    print(f"\nCSV written to {args.csv}")
    if args.plot:
        plot(rows, args.plot)
        print(f"Chart written to {args.plot}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in ("--worker", "--memory"):
        (_worker if sys.argv[1] == "--worker" else _memory_worker)(json.loads(sys.argv[2]))
    else:
        sys.exit(main())
