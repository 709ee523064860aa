"""Benchmark of CTC: ``python -m xce._bench.ctc [--quick]``.

For each size (N sequences, T frames, C classes, S labels), forward and forward + gradient,
on float32 logits: xce on NumPy, on torch tensors and on JAX (``jax.jit``) against torch's
``F.ctc_loss`` (after ``F.log_softmax``, time-major as it wants; the gradient by its
backward) and optax's ``ctc_loss`` (``jax.jit``). Every implementation takes the same
logits and gives the summed loss; xce's gradient is ``xce.value_and_grad`` (analytic; no
autodiff). Calls are timed in interleaved rounds (``timing.interleaved_times``) so that a
slow moment of a shared machine falls on every implementation alike. The accuracy check
compares float32 results at T = 2000 with torch's float64 ``F.ctc_loss``. The output is a
Markdown table with the milliseconds and the ratio to torch's time.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .timing import interleaved_times

__all__ = ["IMPLEMENTATIONS", "accuracy", "main", "markdown_table", "run"]

FULL_SIZES = [(32, 200, 30, 50), (8, 1000, 100, 200)]
QUICK_SIZES = [(4, 30, 6, 8)]
IMPLEMENTATIONS = ("xce-numpy", "xce-torch", "xce-jax", "torch", "optax")
MODES = ("forward", "forward+gradient")


def _data(n, t, c, s, seed=0):
    """float32 logits (N, T, C) and labels (N, S) in [1, C): the blank is 0."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, t, c), dtype=np.float32) * 2
    return logits, rng.integers(1, c, size=(n, s))


def _available(library: str) -> bool:
    return importlib.util.find_spec(library) is not None


def _numpy_calls(logits, labels):
    import xce

    vg = xce.value_and_grad(xce.ctc_loss)
    return {
        "forward": lambda: xce.ctc_loss(labels, logits, from_logits=True, reduction="sum"),
        "forward+gradient": lambda: vg(labels, logits, from_logits=True, reduction="sum"),
    }


def _torch_calls(logits, labels):
    import torch
    import torch.nn.functional as F

    import xce

    x, y = torch.as_tensor(logits), torch.as_tensor(labels)
    n, t, _ = logits.shape
    input_lengths = torch.full((n,), t, dtype=torch.int64)
    target_lengths = torch.full((n,), labels.shape[1], dtype=torch.int64)
    leaf = x.clone().requires_grad_(True)
    vg = xce.value_and_grad(xce.ctc_loss)

    def theirs(a):
        log_probs = F.log_softmax(a, dim=-1).transpose(0, 1)
        return F.ctc_loss(log_probs, y, input_lengths, target_lengths, reduction="sum")

    def theirs_backward():
        leaf.grad = None
        loss = theirs(leaf)
        loss.backward()
        return loss

    return {
        ("xce-torch", "forward"): lambda: xce.ctc_loss(y, x, from_logits=True, reduction="sum"),
        ("xce-torch", "forward+gradient"): lambda: vg(y, x, from_logits=True, reduction="sum"),
        ("torch", "forward"): lambda: theirs(x),
        ("torch", "forward+gradient"): theirs_backward,
    }


def _jax_calls(logits, labels, implementations) -> dict[tuple[str, str], Callable[[], Any]]:
    import jax
    import jax.numpy as jnp

    import xce

    x, y = jnp.asarray(logits), jnp.asarray(labels)
    calls: dict[tuple[str, str], Callable[[], Any]] = {}

    def timed(fn):
        compiled = jax.jit(fn)
        return lambda: jax.block_until_ready(compiled(x))

    if "xce-jax" in implementations:

        def ours(a):
            return xce.ctc_loss(y, a, from_logits=True, reduction="sum")

        calls["xce-jax", "forward"] = timed(ours)
        calls["xce-jax", "forward+gradient"] = timed(jax.value_and_grad(ours))
    if "optax" in implementations and _available("optax"):
        import optax

        no_padding = jnp.zeros(logits.shape[:2], dtype=x.dtype)
        label_padding = jnp.zeros(labels.shape, dtype=x.dtype)

        def theirs(a):
            return jnp.sum(optax.ctc_loss(a, no_padding, y, label_padding))

        calls["optax", "forward"] = timed(theirs)
        calls["optax", "forward+gradient"] = timed(jax.value_and_grad(theirs))
    return calls


def _calls(size, implementations) -> dict[tuple[str, str], Callable[[], Any]]:
    logits, labels = _data(*size)
    calls: dict[tuple[str, str], Callable[[], Any]] = {}
    if "xce-numpy" in implementations:
        calls.update({("xce-numpy", m): f for m, f in _numpy_calls(logits, labels).items()})
    if {"xce-torch", "torch"} & set(implementations) and _available("torch"):
        calls.update(_torch_calls(logits, labels))
    if {"xce-jax", "optax"} & set(implementations) and _available("jax"):
        calls.update(_jax_calls(logits, labels, implementations))
    return {key: fn for key, fn in calls.items() if key[0] in implementations}


def run(
    sizes: Sequence[tuple[int, int, int, int]], implementations: Sequence[str], *,
    min_time: float = 1.0,
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per size, mode and implementation: the median seconds per call and torch's."""
    rows = []
    for size in sizes:
        calls = _calls(size, implementations)
        for mode in MODES:
            fns = {name: fn for (name, m), fn in calls.items() if m == mode}
            times = interleaved_times(fns, min_time=min_time, min_rounds=3)
            medians = {name: statistics.median(ts) for name, ts in times.items()}
            for name in implementations:
                if name in medians:
                    row = {"size": size, "mode": mode, "name": name}
                    rows.append({**row, "seconds": medians[name], "torch": medians.get("torch")})
    return rows


def accuracy(n_times: int = 2000, n_classes: int = 30, n_labels: int = 100) -> dict[str, float]:
    """Largest relative difference of float32 −log p at T = ``n_times`` to torch's float64
    ``F.ctc_loss`` on the same logits: for xce (NumPy) and for torch's own float32."""
    import torch
    import torch.nn.functional as F

    import xce

    logits, labels = _data(4, n_times, n_classes, n_labels, seed=1)
    n = logits.shape[0]
    lengths = (torch.full((n,), n_times), torch.full((n,), n_labels))

    def torch_nll(dtype):
        x = torch.as_tensor(logits).to(dtype)
        log_probs = F.log_softmax(x, dim=-1).transpose(0, 1)
        return F.ctc_loss(log_probs, torch.as_tensor(labels), *lengths, reduction="none")

    exact = torch_nll(torch.float64).numpy()
    ours = xce.ctc_loss(labels, logits, from_logits=True, reduction="none").astype(np.float64)
    theirs = torch_nll(torch.float32).double().numpy()
    return {
        "xce-numpy float32": float(np.max(np.abs(ours - exact) / np.abs(exact))),
        "torch float32": float(np.max(np.abs(theirs - exact) / np.abs(exact))),
    }


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table: milliseconds and torch's time over each row's (above 1:
    faster than torch)."""
    lines = [
        "| N | T | C | S | mode | implementation | ms | speed-up vs torch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        n, t, c, s = r["size"]
        ratio = "—" if r["torch"] is None else f"{r['torch'] / r['seconds']:.2f}"
        lines.append(
            f"| {n} | {t} | {c} | {s} | {r['mode']} | {r['name']} "
            f"| {r['seconds'] * 1e3:.2f} | {ratio} |"
        )
    return "\n".join(lines)


def _size(text: str) -> tuple[int, int, int, int]:
    n, t, c, s = (int(part) for part in text.split(","))
    return n, t, c, s


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print (or write) its Markdown table and the accuracy check."""
    parser = argparse.ArgumentParser(
        prog="python -m xce._bench.ctc",
        description="Time xce.ctc_loss (NumPy, torch tensors, JAX jit) against torch's "
        "F.ctc_loss and optax's ctc_loss, forward and forward + gradient, on float32 logits.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="one tiny size (4, 30, 6, 8) that runs in seconds")  # fmt: skip
    parser.add_argument("--size", action="append", type=_size, metavar="N,T,C,S",
                        help="a size to run (repeatable); overrides the default sizes "
                        "(32,200,30,50 and 8,1000,100,200)")  # fmt: skip
    parser.add_argument("--impl", action="append", choices=IMPLEMENTATIONS,
                        help="implementations to run (repeatable; default: all)")  # fmt: skip
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="seconds of calls per implementation and measurement")  # fmt: skip
    parser.add_argument("--accuracy", choices=("on", "off"), default="on",
                        help="the float32 accuracy check at T = 2000 against torch's float64 "
                        "(needs torch; T = 200 with --quick)")  # fmt: skip
    parser.add_argument("--output", help="write the Markdown output to this file as well")
    args = parser.parse_args(argv)
    sizes = args.size or (QUICK_SIZES if args.quick else FULL_SIZES)
    rows = run(sizes, args.impl or IMPLEMENTATIONS, min_time=args.min_time)
    text = markdown_table(rows)
    if args.accuracy == "on" and _available("torch"):
        n_times = 200 if args.quick else 2000
        diffs = accuracy(n_times=n_times)
        text += f"\n\nRelative difference to torch float64 at T = {n_times}: " + ", ".join(
            f"{name} {value:.1e}" for name, value in diffs.items()
        )
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
