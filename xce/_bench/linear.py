"""Benchmark of the fused linear cross entropy: ``python -m xce._bench.linear [--quick]``.

For each size (N tokens, D features, V classes) and dtype, forward and forward + backward:
xce on NumPy, on torch tensors and on JAX (``jax.jit``) against torch's
``F.linear_cross_entropy`` chunked (``options=LinearCrossEntropyOptions()``) and unchunked
(``options=None``) and the naive ``F.cross_entropy(F.linear(h, W), y)``. The floor is the
time of the plain matmuls of the same shapes, measured in the same run with the same library
and dtype: h·Wᵀ for the forward, and h·Wᵀ, G·W, Gᵀ·h for forward + backward (NumPy's for the
NumPy row, torch's for the others). Peak memory: on NumPy tracemalloc's peak during one
call; for torch and JAX on the CPU, the growth of the process's peak resident set size
(``ru_maxrss``) over one call in a fresh subprocess, after its inputs are made (so it is
the call's extra memory, within the allocator's page granularity). The output is a Markdown
table with the ratios xce / floor and time / torch chunked.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .timing import median_seconds

__all__ = ["IMPLEMENTATIONS", "main", "markdown_table", "run"]

FULL_SIZES = [(4096, d, v) for v in (32000, 128256) for d in (256, 512, 1024)]
QUICK_SIZES = [(512, 128, 4096), (1024, 256, 8192)]
IMPLEMENTATIONS = ("xce-numpy", "xce-torch", "xce-jax", "torch-chunked", "torch-unchunked",
                   "torch-naive")  # fmt: skip
MODES = ("forward", "forward+backward")


def _data(n, d, v, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, v, size=n), rng.standard_normal((n, d), dtype=np.float32),
            (rng.standard_normal((v, d), dtype=np.float32) * d**-0.5))  # fmt: skip


def _numpy_calls(y, h, w, dtype):
    import xce

    if dtype != "float32":
        return None
    vg = xce.value_and_grad(xce.linear_cross_entropy)
    g = np.zeros((h.shape[0], w.shape[0]), dtype=np.float32)
    return {
        ("xce-numpy", "forward"): lambda: xce.linear_cross_entropy(y, h, w),
        ("xce-numpy", "forward+backward"): lambda: vg(y, h, w),
        ("floor-numpy", "forward"): lambda: h @ w.T,
        ("floor-numpy", "forward+backward"): lambda: (h @ w.T, g @ w, g.T @ h),
    }


def _torch_calls(y, h, w, dtype):
    import torch
    import torch.nn.functional as F

    import xce

    dt = getattr(torch, dtype)
    yt, ht, wt = torch.as_tensor(y), torch.as_tensor(h).to(dt), torch.as_tensor(w).to(dt)
    leaves = [ht.clone().requires_grad_(True), wt.clone().requires_grad_(True)]
    g = torch.zeros((h.shape[0], w.shape[0]), dtype=dt)
    chunked = torch.nn.LinearCrossEntropyOptions()
    losses: dict[str, Callable[..., Any]] = {
        "xce-torch": lambda a, b: xce.linear_cross_entropy(yt, a, b),
        "torch-chunked": lambda a, b: F.linear_cross_entropy(a, b, yt, options=chunked),
        "torch-unchunked": lambda a, b: F.linear_cross_entropy(a, b, yt, options=None),
        "torch-naive": lambda a, b: F.cross_entropy(F.linear(a, b), yt),
    }

    def backward(loss_fn):
        def call():
            for leaf in leaves:
                leaf.grad = None
            loss_fn(*leaves).backward()

        return call

    calls: dict[tuple[str, str], Callable[[], Any]] = {}
    for name, loss_fn in losses.items():
        calls[(name, "forward")] = lambda f=loss_fn: f(ht, wt)
        calls[(name, "forward+backward")] = backward(loss_fn)
    calls[("floor-torch", "forward")] = lambda: ht @ wt.T
    calls[("floor-torch", "forward+backward")] = lambda: (ht @ wt.T, g @ wt, g.T @ ht)
    return calls


def _jax_calls(y, h, w, dtype):
    import jax
    import jax.numpy as jnp

    import xce

    dt = getattr(jnp, dtype)
    yj, hj, wj = jnp.asarray(y), jnp.asarray(h).astype(dt), jnp.asarray(w).astype(dt)

    def loss(a, b):
        return xce.linear_cross_entropy(yj, a, b)

    forward = jax.jit(loss)
    both = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    return {
        ("xce-jax", "forward"): lambda: forward(hj, wj).block_until_ready(),
        ("xce-jax", "forward+backward"): lambda: jax.block_until_ready(both(hj, wj)),
    }


_LIBRARIES = {"numpy": _numpy_calls, "torch": _torch_calls, "jax": _jax_calls}


def _available(library: str) -> bool:
    return library == "numpy" or importlib.util.find_spec(library) is not None


def _library(name: str) -> str:
    return "numpy" if name.endswith("numpy") else ("jax" if name == "xce-jax" else "torch")


def _numpy_peak(call: Callable[[], Any]) -> float:
    call()
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _child_peak(spec: dict[str, Any]) -> float | None:
    """ru_maxrss growth over one call, in a fresh interpreter (bytes), or None."""
    command = [sys.executable, "-m", "xce._bench.linear", "--child-memory", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None
    return float(done.stdout.strip().splitlines()[-1])


def _child_memory(spec: dict[str, Any]) -> None:
    y, h, w = _data(spec["n"], spec["d"], spec["v"])
    calls = _LIBRARIES[_library(spec["name"])](y, h, w, spec["dtype"])
    call = calls[(spec["name"], spec["mode"])]
    del h, w  # the NumPy copies: only the library's inputs stay
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    call()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) * 1024)  # KiB on Linux


def run(
    sizes: Sequence[tuple[int, int, int]], dtypes: Sequence[str], implementations: Sequence[str],
    *, min_time: float, memory: str,
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per (size, dtype, mode, implementation): its median seconds, its floor's and
    torch chunked's, and its peak extra bytes (None where not measured)."""
    rows = []
    for n, d, v in sizes:
        y, h, w = _data(n, d, v)
        for dtype in dtypes:
            calls: dict[tuple[str, str], Callable[[], Any]] = {}
            for library, make in _LIBRARIES.items():
                wanted = any(_library(i) == library for i in implementations)
                if wanted and _available(library):
                    calls.update(make(y, h, w, dtype) or {})
            seconds = {key: median_seconds(call, min_time=min_time, min_runs=3, max_runs=20)
                       for key, call in calls.items()}  # fmt: skip
            for mode in MODES:
                for name in implementations:
                    if (name, mode) not in calls:
                        continue
                    library = _library(name)
                    floor = seconds.get(("floor-numpy" if library == "numpy" else
                                         "floor-torch", mode))  # fmt: skip
                    peak = None
                    if memory == "all" or (memory == "numpy" and library == "numpy"):
                        peak = (_numpy_peak(calls[(name, mode)]) if library == "numpy" else
                                _child_peak({"name": name, "mode": mode, "dtype": dtype,
                                             "n": n, "d": d, "v": v}))  # fmt: skip
                    rows.append({
                        "n": n, "d": d, "v": v, "dtype": dtype, "mode": mode, "name": name,
                        "seconds": seconds[(name, mode)], "floor": floor,
                        "torch_chunked": seconds.get(("torch-chunked", mode)),
                        "peak_bytes": peak, "logits_bytes": n * v * 4,
                    })  # fmt: skip
    return rows


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e3:.4g}"


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or b <= 0 else f"{a / b:.2f}"


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table: times in ms, ratios, peak extra memory in MiB and as a
    share of the float32 logits (N·V·4 bytes)."""
    lines = [
        "| N | D | V | dtype | mode | implementation | ms | floor ms | × floor "
        "| / torch chunked | peak extra MiB | peak / logits |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        peak = r["peak_bytes"]
        lines.append(
            f"| {r['n']} | {r['d']} | {r['v']} | {r['dtype']} | {r['mode']} | {r['name']} "
            f"| {_ms(r['seconds'])} | {_ms(r['floor'])} "
            f"| {_ratio(r['seconds'], r['floor'])} | {_ratio(r['seconds'], r['torch_chunked'])} "
            f"| {'—' if peak is None else f'{peak / 2**20:.1f}'} "
            f"| {_ratio(peak, r['logits_bytes'])} |"
        )
    return "\n".join(lines)


def _size(text: str) -> tuple[int, int, int]:
    n, d, v = (int(part) for part in text.split(","))
    return n, d, v


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print (or write) its Markdown table."""
    parser = argparse.ArgumentParser(
        prog="python -m xce._bench.linear",
        description="Time xce.linear_cross_entropy against torch's linear cross entropy and "
        "the matmul floor, forward and forward + backward, with peak memory.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (N=512, 1024; V=4096, 8192): seconds")  # fmt: skip
    parser.add_argument("--size", action="append", type=_size, metavar="N,D,V",
                        help="a size to run (repeatable); overrides the default sizes")  # fmt: skip
    parser.add_argument("--dtype", action="append", choices=("float32", "bfloat16"),
                        help="dtypes (repeatable; default float32 and bfloat16)")  # fmt: skip
    parser.add_argument("--impl", action="append", choices=IMPLEMENTATIONS,
                        help="implementations to run (repeatable; default all)")  # fmt: skip
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="seconds of calls per measurement (median of at least 3)")  # fmt: skip
    parser.add_argument("--memory", choices=("all", "numpy", "off"), default="all",
                        help="peak memory: every row (torch and JAX in subprocesses), NumPy "
                        "rows only (tracemalloc), or none")  # fmt: skip
    parser.add_argument("--output", help="write the Markdown table to this file as well")
    parser.add_argument("--child-memory", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_memory:
        _child_memory(json.loads(args.child_memory))
        return 0
    sizes = args.size or (QUICK_SIZES if args.quick else FULL_SIZES)
    dtypes = args.dtype or ["float32", "bfloat16"]
    rows = run(sizes, dtypes, args.impl or IMPLEMENTATIONS, min_time=args.min_time,
               memory=args.memory)  # fmt: skip
    table = markdown_table(rows)
    print(table)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
