"""NumPy fast path for the softmax cross entropy from labels: cache-sized row blocks, threads.

The generic code makes several full passes over (N, C) temporaries that do not fit in cache.
Here each thread takes a contiguous share of the rows and walks it in blocks of about
``XCE_BLOCK_BYTES`` (default 512 KiB), so a block's shifted logits, their exponentials and the
gradient stay in L2 while the block is reused; the logits are read from memory once, and the
gradient (``value_and_grad``) is written once, directly into the array we return. NumPy
releases the GIL inside ufuncs, so the threads run in parallel. Only arrays allocated here are
mutated; the per-thread scratch buffers are reused across calls (no allocator traffic, which
glibc's mmap threshold would otherwise turn into page faults on every block).

Same formula as the generic code: ℓ = (1-ε)·w_y·(log s - z_y) + (ε/C)·(W·log s - Σ_c w_c z_c)
with z = x - max(x) and s = Σ exp(z).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_BLOCK_BYTES = int(os.environ.get("XCE_BLOCK_BYTES", 512 * 1024))
# Below this many logits a hand-off to the pool costs more than the second core saves.
_PARALLEL_MIN_ELEMENTS = 1 << 18
_THREADS = int(os.environ.get("XCE_NUM_THREADS", 0)) or len(os.sched_getaffinity(0))

_pool = None
_pool_lock = threading.Lock()
_scratch = threading.local()


def handles(x) -> bool:
    return (
        x.dtype in (np.float32, np.float64)
        and x.ndim >= 1
        and x.shape[-1] > 0
        and x.flags.c_contiguous
    )


def _executor():
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="xce")
        return _pool


def _scratch_for(rows, n_classes, dtype):
    """This thread's reusable (rows, C) buffer."""
    buffer = getattr(_scratch, "buffer", None)
    if buffer is None or buffer.dtype != dtype or buffer.size < rows * n_classes:
        buffer = np.empty(rows * n_classes, dtype=dtype)
        _scratch.buffer = buffer
    return buffer[: rows * n_classes].reshape(rows, n_classes)


def _block(x, labels, loss, grad, scale, lo, hi, *, class_weight, smoothing):
    n_classes = x.shape[1]
    rows = np.arange(hi - lo)
    xb, lb = x[lo:hi], labels[lo:hi]
    z = grad[lo:hi] if grad is not None else _scratch_for(hi - lo, n_classes, x.dtype)
    m = xb.max(axis=1, keepdims=True)
    m[~np.isfinite(m)] = 0  # an all -inf (or +inf) row is not shifted by an infinity
    np.subtract(xb, m, out=z)
    z_y = z[rows, lb]
    if smoothing:
        z_sum = z.sum(axis=1) if class_weight is None else _weighted_sum(z, class_weight)
    np.exp(z, out=z)
    s = z.sum(axis=1)
    with np.errstate(divide="ignore"):  # log 0 = -inf for an all -inf row, as in the generic code
        log_s = np.log(s)
    hard = 1.0 - smoothing
    w_y = None if class_weight is None else class_weight[lb]
    nll = log_s - z_y
    loss_b = hard * (nll if w_y is None else w_y * nll)
    label_share = hard if w_y is None else hard * w_y  # (1-ε)·w_y, the one-hot's weight
    mass = label_share  # Σ_c w_c q_c
    if smoothing:
        uniform = smoothing / n_classes
        total_weight = n_classes if class_weight is None else class_weight.sum()
        loss_b += uniform * (total_weight * log_s - z_sum)
        mass = mass + uniform * total_weight
    loss[lo:hi] = loss_b
    if grad is None:
        return
    r = 1.0 if scale is None else scale[lo:hi]
    z *= (mass * r / s)[:, None]
    if smoothing:
        r_col = r if scale is None else r[:, None]
        z -= uniform * r_col * (1.0 if class_weight is None else class_weight)
    z[rows, lb] -= label_share * r


def _weighted_sum(z, class_weight):
    # Σ_c w_c z_c with 0·(-inf) = 0 for a zero-weighted masked class.
    return np.where(class_weight == 0, 0.0, z).astype(z.dtype, copy=False) @ class_weight


def softmax_ce_labels(x, labels, *, class_weight, smoothing, with_grad=False, grad_scale=None):
    n_classes = x.shape[-1]
    flat_x = x.reshape(-1, n_classes)
    flat_labels = labels.reshape(-1)
    n_rows = flat_x.shape[0]
    loss = np.empty(n_rows, dtype=x.dtype)
    grad = np.empty_like(flat_x) if with_grad else None
    scale = None
    if grad_scale is not None:
        scale = np.broadcast_to(np.asarray(grad_scale, dtype=x.dtype), labels.shape).reshape(-1)
    rows_per_block = max(1, _BLOCK_BYTES // (n_classes * x.itemsize))
    options = {"class_weight": class_weight, "smoothing": smoothing}

    def run(lo, hi):
        for start in range(lo, hi, rows_per_block):
            _block(flat_x, flat_labels, loss, grad, scale, start, min(start + rows_per_block, hi),
                   **options)  # fmt: skip

    threads = min(_THREADS, -(-n_rows // rows_per_block))
    if threads <= 1 or flat_x.size < _PARALLEL_MIN_ELEMENTS:
        run(0, n_rows)
    else:
        share = -(-n_rows // threads)
        futures = [
            _executor().submit(run, lo, min(lo + share, n_rows)) for lo in range(0, n_rows, share)
        ]
        for future in futures:
            future.result()
    loss = loss.reshape(labels.shape)
    return loss, None if grad is None else grad.reshape(x.shape)
