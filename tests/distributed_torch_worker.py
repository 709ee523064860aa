"""The gloo process groups of ``test_distributed_torch.py``: each rank runs every class-sharded
case in one go, compares on its own, and writes one JSON report to a file.

Usage: ``python distributed_torch_worker.py FOLDER WORLD=PORT [WORLD=PORT ...]``. This process
imports torch and xce once, then forks every rank of every group (so that the imports are
not paid once per rank) and waits for them; rank r of group W writes ``FOLDER/W-r.json``
and the exit status is the number of ranks that failed to. Every rank builds the
same full problems from fixed seeds, computes the unsharded losses and gradients with one
process's xce call on the whole arrays, then the sharded ones on its slice of the classes,
and checks that they agree: the loss on every rank, the gradient's slice of this rank (for
linear cross entropy, the whole ``d_hidden`` and this rank's ``d_weight`` / ``d_bias``
rows), by ``value_and_grad`` and by ``torch.autograd``. A few float64 cases are also checked
against the NumPy oracles (``reference_softcap.py``, ``reference_linear.py``). The report
holds the failures (empty when all pass), the number of cases, the collectives counted per
call and the errors that bad input raised.
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import pathlib
import sys
import time
import traceback

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import distributed_torch_cases as cases
import torch
import torch.distributed as dist

# Every all_reduce / all_gather, recorded while `cases.COUNTER` is on: (name, shape, dtype).
_all_reduce, _all_gather = dist.all_reduce, dist.all_gather


def _counted(name, collective):
    def wrapper(tensor, *args, **kwargs):
        if cases.COUNTER is not None:
            shape = tuple(tensor.shape) if name == "all_reduce" else tuple(args[0].shape)
            dtype = str(tensor.dtype if name == "all_reduce" else args[0].dtype)
            cases.COUNTER.append((name, shape, dtype))
        return collective(tensor, *args, **kwargs)

    return wrapper


def run_rank(rank: int, world: int, port: int, report: pathlib.Path) -> None:
    """One rank: join the group, run every case, write the report."""
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
        timeout=datetime.timedelta(seconds=30),
    )  # fmt: skip
    dist.all_reduce = _counted("all_reduce", _all_reduce)
    dist.all_gather = _counted("all_gather", _all_gather)
    torch.manual_seed(0)
    failures, planned = [], list(cases.all_cases(rank, world))
    count, began = 0, time.perf_counter()
    for name, check in planned:
        count += 1
        try:
            check()
        except AssertionError:  # a wrong number: the other cases still run
            failures.append(f"rank {rank}, {name}:\n{traceback.format_exc(limit=4)}")
        except Exception:
            # An error that this rank alone may have raised, before a collective the others
            # wait in: stop here, so that they fail at once on the closed connection.
            failures.append(f"rank {rank}, {name} (stopped):\n{traceback.format_exc(limit=6)}")
            break
    result = {
        "rank": rank,
        "world": world,
        "cases": count,
        "planned": len(planned),
        "seconds": time.perf_counter() - began,
        "failures": failures,
        "collectives": cases.COLLECTIVES,
        "errors": cases.ERRORS,
    }
    report.write_text(json.dumps(result))
    dist.destroy_process_group()


def main() -> int:
    folder = pathlib.Path(sys.argv[1])
    groups = [tuple(int(n) for n in arg.split("=")) for arg in sys.argv[2:]]
    # Fork, not spawn: the children inherit the imported modules. Nothing here has run a
    # torch operation yet, so no thread pool is copied half-started.
    context = multiprocessing.get_context("fork")
    ranks = [
        context.Process(target=run_rank, args=(rank, world, port, folder / f"{world}-{rank}.json"))
        for world, port in groups
        for rank in range(world)
    ]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join()
    return sum(process.exitcode != 0 for process in ranks)


if __name__ == "__main__":
    sys.exit(main())
