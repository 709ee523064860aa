"""Class-sharded sparse cross entropy over a gloo group against the unsharded call.

python benchmarks/sharded_torch.py [--rows 4096] [--classes 32000] [--world 4] [--rounds 7]

The unsharded call runs first, alone, in this process on the whole (rows, classes) float32
logits (torch's default threads); then ``--world`` processes, one rank each, join a gloo group
on 127.0.0.1 and each computes the loss on its (rows, classes / world) slice with
``class_shard=``. Each round times the forward (no autograd) and the forward + backward
(``loss.backward()`` on logits that require grad); the ranks start every timed call together
(a barrier) and a round's time is its slowest rank's. Last, one rank's share alone (its
classes in a group of one: the sharded kernels without peers) tells the kernels' cost from
the group's. The table gives the medians over the rounds, and is written to
``benchmarks/results/sharded.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

import xce

HERE = pathlib.Path(__file__).parent


def _problem(rows, classes):
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.standard_normal((rows, classes), dtype=np.float32) * 4)
    labels = torch.from_numpy(rng.integers(0, classes, size=rows))
    return labels, logits


def _time(call, barrier=None):
    if barrier is not None:
        barrier()
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _calls(labels, logits, shard):
    kwargs = {"from_logits": True, "class_shard": shard} if shard else {"from_logits": True}

    def forward():
        with torch.no_grad():
            xce.sparse_categorical_cross_entropy(labels, logits, **kwargs)

    def forward_backward():
        leaf = logits.detach().requires_grad_(True)
        xce.sparse_categorical_cross_entropy(labels, leaf, **kwargs).backward()

    return {"forward": forward, "forward+backward": forward_backward}


def _rounds(calls, rounds, barrier=None):
    """Seconds per round and mode, after one warm-up call of each."""
    for call in calls.values():
        call()
    return {mode: [_time(call, barrier) for _ in range(rounds)] for mode, call in calls.items()}


def rank_main(args) -> None:
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=args.rank,
        world_size=args.world, timeout=datetime.timedelta(seconds=300),
    )  # fmt: skip
    torch.set_num_threads(args.threads)
    labels, logits = _problem(args.rows, args.classes)
    local = args.classes // args.world
    mine = logits[:, args.rank * local : (args.rank + 1) * local].contiguous()
    del logits
    shard = xce.distributed.torch_class_shard(args.classes)
    times = _rounds(_calls(labels, mine, shard), args.rounds, barrier=dist.barrier)
    pathlib.Path(args.report).write_text(json.dumps(times))
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _group(args, world, classes):
    """Each rank's seconds per mode and round, from a gloo group of ``world`` processes that
    share ``classes`` classes."""
    with tempfile.TemporaryDirectory() as folder:
        port, reports = _free_port(), [f"{folder}/{rank}.json" for rank in range(world)]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "GLOO_SOCKET_IFNAME": "lo"}
        sizes = {"--rows": args.rows, "--classes": classes, "--world": world,
                 "--rounds": args.rounds, "--threads": args.threads}  # fmt: skip
        ranks = []
        for rank in range(world):
            argv = [sys.executable, __file__, "--rank", rank, "--port", port, "--report",
                    reports[rank], *(x for pair in sizes.items() for x in pair)]  # fmt: skip
            ranks.append(subprocess.Popen([str(x) for x in argv], env=env))
        for process in ranks:
            if process.wait() != 0:
                raise SystemExit("a rank failed")
        return [json.loads(pathlib.Path(r).read_text()) for r in reports]


def _median_ms(per_rank, mode, rounds):
    """The median over the rounds of the slowest rank's time."""
    return statistics.median(max(r[mode][i] for r in per_rank) for i in range(rounds)) * 1e3


def main(args) -> None:
    if args.classes % args.world:
        raise SystemExit("--classes must be a multiple of --world (equal shards)")
    load_before = os.getloadavg()
    labels, logits = _problem(args.rows, args.classes)
    unsharded = _rounds(_calls(labels, logits, None), args.rounds)
    del labels, logits
    local = args.classes // args.world
    sharded = _group(args, args.world, args.classes)
    # One rank's work alone: its classes in a group of one (the sharded kernels, no peers).
    alone = _group(args, 1, local)
    lines = [
        f"Sparse cross entropy, ({args.rows}, {args.classes}) float32 logits, torch "
        f"{torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores. Sharded: {args.world} gloo processes on 127.0.0.1 "
        f"({args.threads} torch thread(s) each, {args.world} processes on {os.cpu_count()} "
        f"cores), {local} classes each; unsharded: one process, {torch.get_num_threads()} "
        f"torch threads; one rank alone: the sharded call on {local} classes in a group of "
        f"one ({args.threads} thread(s)). Median of {args.rounds} rounds (a round of the "
        "sharded call: its slowest rank). Load average (1, 5, 15 min) before: "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after (the run's own processes included): "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        + ".",
        "",
        "| mode | unsharded ms | sharded ms | sharded / unsharded | one rank alone ms |",
        "|---|---|---|---|---|",
    ]
    for mode, seconds in unsharded.items():
        one = statistics.median(seconds) * 1e3
        many = _median_ms(sharded, mode, args.rounds)
        single = _median_ms(alone, mode, args.rounds)
        lines.append(f"| {mode} | {one:.0f} | {many:.0f} | {many / one:.2f} | {single:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    pathlib.Path(args.out).write_text(text)


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=32000)
    parser.add_argument("--world", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    parser.add_argument("--out", default=str(HERE / "results" / "sharded.md"))
    parser.add_argument("--rank", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    if arguments.rank is None:
        main(arguments)
    else:
        rank_main(arguments)
