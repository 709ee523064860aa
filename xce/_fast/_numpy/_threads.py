"""Threads and buffers of the NumPy fast path: the pool that shares row blocks among the CPUs,
each thread's reusable scratch buffers, and where an array that ``exp`` writes is placed.

Only arrays allocated here are mutated. The scratch buffers are reused across calls: no
allocator traffic, which glibc's mmap threshold would otherwise turn into page faults on every
block.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import _config

__all__ = ["empty_clear_of", "rows_per_block", "scratch_for", "spread"]

_pool = None
_pool_lock = threading.Lock()
_scratch = threading.local()


def _forget_pool():
    # A forked child inherits the pool object but none of its threads: work submitted to it
    # would wait forever (DataLoader workers, multiprocessing's "fork"). The child starts a
    # pool of its own on first use; the lock may have been held by another thread at the fork.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_pool)


def _executor():
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_config.NUM_THREADS, thread_name_prefix="xce")
        return _pool


def spread(n_rows, rows_per_block, n_elements, block):
    """Call ``block(lo, hi)`` for every row block, sharing the blocks among the threads.

    Small inputs (fewer than ``_config.PARALLEL_MIN_ELEMENTS``) stay on the calling thread,
    and a single block is called directly (a small call's time is its Python calls). Each
    thread walks a contiguous share of the rows, so its blocks are neighbours in memory.
    """
    if n_rows <= rows_per_block:
        if n_rows:
            block(0, n_rows)
        return

    def walk(lo, hi):
        for start in range(lo, hi, rows_per_block):
            block(start, min(start + rows_per_block, hi))

    threads = min(_config.NUM_THREADS, -(-n_rows // rows_per_block))
    if threads <= 1 or n_elements < _config.PARALLEL_MIN_ELEMENTS:
        walk(0, n_rows)
        return
    share = -(-n_rows // threads)
    share = -(-share // rows_per_block) * rows_per_block  # whole blocks per thread
    futures = [
        _executor().submit(walk, lo, min(lo + share, n_rows)) for lo in range(0, n_rows, share)
    ]
    for future in futures:
        future.result()


def rows_per_block(n_columns, itemsize, block_bytes=None):
    """Rows in a block of about ``block_bytes`` (default ``_config.BLOCK_BYTES``); at least 1."""
    return max(1, (block_bytes or _config.BLOCK_BYTES) // (n_columns * itemsize))


def scratch_for(rows, n_classes, dtype, slot=0, clear_of=None):
    """This thread's reusable (rows, C) buffer number ``slot``; with ``clear_of`` (the address
    of the block ``exp`` reads into it), placed clear of that block (see ``_too_close``)."""
    name = f"buffer{slot}"
    size = rows * n_classes
    shift = _config.ALIAS_SHIFT
    buffer, address = getattr(_scratch, name, (None, 0))
    if buffer is None or buffer.dtype != dtype or buffer.size < size + shift // 4:
        # room to start ALIAS_SHIFT bytes in (4 bytes being the smallest itemsize here)
        buffer = np.empty(size + shift // 4, dtype=dtype)
        address = buffer.ctypes.data
        setattr(_scratch, name, (buffer, address))
    start = 0
    if clear_of is not None and _too_close(address, clear_of):
        start = shift // buffer.itemsize
    return buffer[start : start + size].reshape(rows, n_classes)


def _too_close(out_address, in_address):
    """Whether a store at ``out_address`` would stall loads from ``in_address``: the output
    starts less than ``ALIAS_WINDOW`` bytes past the input modulo ``ALIAS_BYTES``."""
    return 0 < (out_address - in_address) % _config.ALIAS_BYTES < _config.ALIAS_WINDOW


def empty_clear_of(x):
    """``np.empty_like(x)`` (C-contiguous) for ``exp(x, out=...)``, placed clear of ``x``."""
    out = np.empty_like(x)
    if x.nbytes < _config.ALIAS_MIN_BYTES or not _too_close(out.ctypes.data, x.ctypes.data):
        return out
    del out
    pad = _config.ALIAS_SHIFT // x.itemsize
    raw = np.empty(x.size + pad, dtype=x.dtype)
    start = pad if _too_close(raw.ctypes.data, x.ctypes.data) else 0
    return raw[start : start + x.size].reshape(x.shape)
