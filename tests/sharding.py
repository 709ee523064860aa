"""An in-process class shard for the conformance suite: the members of a group are threads
of this process, and the collectives combine their arrays through a barrier.

It runs the sharded kernels on every backend, eager or lazy, without a process group: each
thread calls the loss on its slice of the classes, and every collective waits for all of
them, then combines the members' arrays in member order (so that every member computes the
same bits). Autodiff is not hooked (``differentiable`` returns the plain value): the torch
and JAX shards' own tests cover it.
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor

from array_api_compat import array_namespace

from xce.distributed import ClassShard

__all__ = ["ThreadClassShard", "run_members"]


class _Group:
    def __init__(self, size: int) -> None:
        self.size = size
        self.barrier = threading.Barrier(size, timeout=60)
        self.slots: list = [None] * size
        self.calls: list[tuple[str, tuple[int, ...]]] = []

    def combine(self, index: int, a, how: str):
        self.slots[index] = a
        self.barrier.wait()
        xp = array_namespace(a)
        op = xp.maximum if how == "max" else (lambda u, v: u + v)
        result = functools.reduce(op, self.slots)
        if index == 0:
            self.calls.append((how, tuple(a.shape)))
        self.barrier.wait()  # nobody overwrites a slot before every member has read them
        return result


class ThreadClassShard(ClassShard):
    """Member ``index`` of a thread group; ``calls`` (shared by the group) records each
    collective's kind and shape."""

    def __init__(self, num_classes, group, index, *, start=None):
        super().__init__(num_classes, start=start)
        self._group, self._index = group, index

    @property
    def group_size(self):
        return self._group.size

    @property
    def index(self):
        return self._index

    @property
    def calls(self):
        return self._group.calls

    def all_max(self, a):
        return self._group.combine(self._index, a, "max")

    def all_sum(self, a):
        return self._group.combine(self._index, a, "sum")

    def differentiable(self, compute, y_pred, *, class_axis):
        return compute(y_pred, False)[0]


def run_members(num_classes, bounds, call, *, explicit_start=True):
    """``call(shard, lo, hi)`` on one thread per member holding classes [lo, hi) of each
    ``(lo, hi)`` in ``bounds``; returns the members' results and the collectives' log."""
    group = _Group(len(bounds))
    shards = [
        ThreadClassShard(num_classes, group, i, start=lo if explicit_start else None)
        for i, (lo, _) in enumerate(bounds)
    ]

    def member(shard, lo, hi):
        try:
            return call(shard, lo, hi)
        except BaseException:
            group.barrier.abort()  # the others stop waiting for this member
            raise

    with ThreadPoolExecutor(len(bounds)) as pool:
        futures = [
            pool.submit(member, shard, lo, hi)
            for shard, (lo, hi) in zip(shards, bounds, strict=True)
        ]
        errors = [f.exception(timeout=120) for f in futures]
    # The member that failed first, not the others' broken barrier.
    first = next((e for e in errors if e and not isinstance(e, threading.BrokenBarrierError)), None)
    if first is not None or any(errors):
        raise first or next(e for e in errors if e)
    return [f.result() for f in futures], group.calls
