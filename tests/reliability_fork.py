"""Run by ``test_reliability.py`` in a fresh interpreter: a forked child computes a loss after
its parent has used the NumPy fast path's thread pool.

Prints one JSON line: the parent's and the child's loss (``null`` for a child that did not
answer within the timeout). A fresh interpreter keeps the fork clear of the test process's
other libraries (JAX and torch threads, which fork does not carry either).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys

os.environ["XCE_NUM_THREADS"] = "2"  # threads even on a one-CPU machine
# The pool under test is the fast path's: on also in the suite's generic-path runs.
os.environ.pop("XCE_DISABLE_FAST_PATHS", None)
os.environ["XCE_PARALLEL_MIN_ELEMENTS"] = "1"

import numpy as np

import xce
from xce._fast._numpy import _threads

N_ROWS, N_CLASSES = 512, 1024  # 512 k logits: many blocks of the sparse kernel


def loss():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_ROWS, N_CLASSES))
    y = rng.integers(0, N_CLASSES, size=N_ROWS)
    return float(xce.sparse_categorical_cross_entropy(y, x, from_logits=True, reduction="sum"))


def child(queue):
    queue.put(loss())


def main(timeout):
    parent = loss()
    assert _threads._pool is not None, "the parent's call did not use the thread pool"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=child, args=(queue,))
    process.start()
    process.join(timeout)
    answered = not process.is_alive()
    if not answered:
        process.kill()
        process.join()
    print(json.dumps({"parent": parent, "child": queue.get() if answered else None}))


if __name__ == "__main__":
    main(float(sys.argv[1]))
