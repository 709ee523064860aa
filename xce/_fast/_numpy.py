"""NumPy fast path: cache-sized row blocks shared among threads.

The generic code makes several full passes over (N, C) temporaries that do not fit in cache.
Here each thread takes a contiguous share of the rows and walks it in blocks of about
``XCE_BLOCK_BYTES`` (default 2 MiB), so a block's exponentials and gradient stay in cache while
they are reused; the logits are read from memory once, and the gradient (``value_and_grad``) is
written once, directly into the array we return. NumPy releases the GIL inside ufuncs, so the
threads run in parallel. Only arrays allocated here are mutated; the per-thread scratch buffers
are reused across calls (no allocator traffic, which glibc's mmap threshold would otherwise
turn into page faults on every block).

What runs here:

- hand-fused kernels, in place on per-thread buffers, for the three losses on logits:
  :func:`softmax_ce_labels` (sparse), :func:`softmax_ce_soft` (soft targets) and
  :func:`sigmoid_bce` (binary); a block whose result is not finite (infinite or NaN logits)
  is redone by the generic kernel, whose rules decide such cases;
- :func:`spread`, which shares the row blocks of any kernel among the threads (the generic
  kernels of the losses on probabilities run through it too).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import run_plain

# Measured on the 2-core machine: 2-4 MiB blocks beat L2-sized 512 KiB ones by 1.3-1.5× with
# two threads. Every large ufunc hands the GIL over twice, and on small blocks those hand-offs,
# not the arithmetic, set the pace; L3 still holds a block's working set.
_BLOCK_BYTES = int(os.environ.get("XCE_BLOCK_BYTES", 2 * 1024 * 1024))
# The soft-target and binary kernels read two inputs and keep up to six block-sized buffers
# live: with 512 KiB blocks these stay in L2, where their passes run 1.5-3× faster than from L3.
_SMALL_BLOCK_BYTES = int(os.environ.get("XCE_SMALL_BLOCK_BYTES", 512 * 1024))
_GRAD_BLOCK_BYTES = int(os.environ.get("XCE_GRAD_BLOCK_BYTES", 1024 * 1024))
# Below this many logits a hand-off to the pool costs more than the second core saves.
_PARALLEL_MIN_ELEMENTS = 1 << 18
_THREADS = int(os.environ.get("XCE_NUM_THREADS", 0)) or len(os.sched_getaffinity(0))

# exp(x) itself, without subtracting the row max first, is used when every row's Σ exp(x)
# lies in [e^-20, e^64]: no term overflowed (every logit ≤ 64), and every row max is above
# -20 - log C, so a term that underflows (x < -87) is below e^-60 of its row's largest, far
# under float32's resolution of the sum. The check reads the N row sums, not the logits:
# exp reads each block straight from memory. Other blocks (offsets, infinities, NaN) are
# shifted by each row's max.
_UNSHIFTED_SUMS = (2e-9, 6.2e27)  # e^-20, e^64

# The per-row terms are formed this many rows at a time, after the blocks: few calls, yet
# temporaries of a few MB when N is large and C small.
_FINISH_ROWS = 1 << 16

# Plain sparse calls on logits up to this size take a short path (:func:`_small_labels`): the
# blocked kernel's bookkeeping (its per-row terms, scratch and error state) costs more than
# its arithmetic there. Measured side by side: 1.36x faster at (64, 10) float32, 1.12x at
# (64, 128), 0.82x at (128, 128).
_SMALL_LANE_BYTES = 32 * 1024

# A load that follows a store to the same low address bits waits for the store, as if they
# overlapped. exp(x, out=o) from memory, with o 16-128 bytes past x modulo 1 MiB, ran 3.5×
# slower on the project machine (1.6× at 192 bytes, none from 512): just where glibc's heap
# puts an array allocated after one of a whole number of MiB (a 16-byte header apart), as
# with the tuned allocator. Arrays that exp writes from x go 1 KiB further when they land
# within _ALIAS_WINDOW past x modulo 4 KiB (which covers the 1 MiB case and the classic 4 KiB
# aliasing of other CPUs).
_ALIAS_BYTES = 4096
_ALIAS_WINDOW = 512
_ALIAS_SHIFT = 1024
# Only data read from memory stalls; below this the check (an address lookup costs 2 µs) is
# skipped.
_ALIAS_MIN_BYTES = 1 << 20
_ROW_NUMBERS = np.arange(_FINISH_ROWS)

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


def spread(n_rows, rows_per_block, n_elements, block):
    """Call ``block(lo, hi)`` for every row block, sharing the blocks among the threads.

    Small inputs (fewer than ``_PARALLEL_MIN_ELEMENTS``) stay on the calling thread, and a
    single block is called directly (a small call's time is its Python calls). Each thread
    walks a contiguous share of the rows, so its blocks are neighbours in memory.
    """
    if n_rows <= rows_per_block:
        if n_rows:
            block(0, n_rows)
        return

    def walk(lo, hi):
        for start in range(lo, hi, rows_per_block):
            block(start, min(start + rows_per_block, hi))

    threads = min(_THREADS, -(-n_rows // rows_per_block))
    if threads <= 1 or n_elements < _PARALLEL_MIN_ELEMENTS:
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
    return max(1, (block_bytes or _BLOCK_BYTES) // (n_columns * itemsize))


def _scratch_for(rows, n_classes, dtype, slot=0, clear_of=None):
    """This thread's reusable (rows, C) buffer number ``slot``; with ``clear_of`` (the address
    of the block ``exp`` reads into it), placed clear of that block (see ``_ALIAS_BYTES``)."""
    name = f"buffer{slot}"
    size = rows * n_classes
    buffer, address = getattr(_scratch, name, (None, 0))
    if buffer is None or buffer.dtype != dtype or buffer.size < size + _ALIAS_SHIFT // 4:
        # room to start _ALIAS_SHIFT bytes in (4 bytes being the smallest itemsize here)
        buffer = np.empty(size + _ALIAS_SHIFT // 4, dtype=dtype)
        address = buffer.ctypes.data
        setattr(_scratch, name, (buffer, address))
    start = 0
    if clear_of is not None and _too_close(address, clear_of):
        start = _ALIAS_SHIFT // buffer.itemsize
    return buffer[start : start + size].reshape(rows, n_classes)


def _too_close(out_address, in_address):
    return 0 < (out_address - in_address) % _ALIAS_BYTES < _ALIAS_WINDOW


def _empty_clear_of(x):
    """``np.empty_like(x)`` (C-contiguous) for ``exp(x, out=...)``, placed clear of ``x``."""
    out = np.empty_like(x)
    if x.nbytes < _ALIAS_MIN_BYTES or not _too_close(out.ctypes.data, x.ctypes.data):
        return out
    del out
    pad = _ALIAS_SHIFT // x.itemsize
    raw = np.empty(x.size + pad, dtype=x.dtype)
    start = pad if _too_close(raw.ctypes.data, x.ctypes.data) else 0
    return raw[start : start + x.size].reshape(x.shape)


def _row_sums(a, out=None):
    # einsum's SIMD reduction is ~3× faster than add.reduce's scalar pairwise loop over a row;
    # its error (≈1e-6 relative at C = 256000 in float32) stays below torch's own logsumexp.
    return np.einsum("ij->i", a, out=out)


def _shifted_sums(a, class_weight, offset):
    """Σ_c w_c·(a_c - offset) per row: the smoothing term's Σ_c w_c·(x_c - m)."""
    if class_weight is None:
        return _row_sums(a) - a.shape[1] * offset
    # 0·(-inf) = 0 for a zero-weighted masked class.
    weighted = np.where(class_weight == 0, 0.0, a).astype(a.dtype, copy=False) @ class_weight
    return weighted - class_weight.sum() * offset


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def plain_sparse(labels, x, *, reduction, with_grad):
    """The most common call, logits and in-range integer labels with no option, in few calls.

    Returns ``None`` unless every condition holds at a glance; the caller then takes the full
    path, which also raises the proper error for bad input. For a small batch the public
    layer's generic checks and reduction cost several times the loss itself.
    """
    if (
        type(labels) is not np.ndarray
        or x.dtype not in _FLOATS
        or labels.dtype.kind not in "iu"
        or x.ndim == 0
        or labels.shape != x.shape[:-1]
        or labels.size == 0
        or x.shape[-1] < 2
        or not x.flags.c_contiguous
    ):
        return None
    if (
        np.minimum.reduce(labels, axis=None) < 0
        or np.maximum.reduce(labels, axis=None) >= x.shape[-1]
    ):
        return None
    r = 1.0 / labels.size if reduction == "mean" else 1.0
    result = _small_labels(x, labels, with_grad, r) if x.nbytes <= _SMALL_LANE_BYTES else None
    if result is None:
        result = softmax_ce_labels(x, labels, class_weight=None, smoothing=0.0,
                                   with_grad=with_grad, grad_scale=r)  # fmt: skip
    loss, grad = result
    return _plain_reduction(loss, reduction), grad


def _small_labels(x, labels, with_grad, r):
    """ℓ = log Σ_c e^(x_c - m) - (x_y - m), m the row max, and r·(softmax - onehot), for a
    few KiB of logits in a handful of calls. ``None`` if a row max is not finite (an
    infinity or NaN in the row): the kernel's rules decide those rows."""
    n_classes = x.shape[-1]
    flat_x = x.reshape(-1, n_classes)
    flat_labels = labels.reshape(-1)
    m = np.maximum.reduce(flat_x, axis=1)
    if not np.isfinite(m).all():
        return None
    z = flat_x - m[:, None]  # ≤ 0: exp cannot overflow, Σ e ≥ 1; the gradient's own array
    rows = _ROW_NUMBERS[: flat_x.shape[0]]
    z_y = z[rows, flat_labels]  # x_y - m exactly, -inf for a label on a -inf logit
    np.exp(z, out=z)
    s = _row_sums(z)
    loss = np.log(s)
    loss -= z_y
    if not with_grad:
        return loss.reshape(labels.shape), None
    z *= (r / s)[:, None]
    z[rows, flat_labels] -= r
    return loss.reshape(labels.shape), z.reshape(x.shape)


def _plain_reduction(loss, reduction):
    """Σ ℓ, divided by the entry count for the mean, as in the shared reduction."""
    if reduction == "sum":  # a 0-d array, as from every other path (not a NumPy scalar)
        return np.asarray(np.add.reduce(loss, axis=None))
    if reduction == "mean":
        return np.asarray(np.add.reduce(loss, axis=None) / loss.dtype.type(loss.size))
    return loss


def _plain_targets(y, x):
    """Whether float targets ``y`` for logits ``x`` fit a plain lane: same type, dtype and
    shape. Their values are checked by the kernel, block by block while they are in cache
    (a separate pass over a large ``y`` costs a third of the loss): a block outside [0, 1]
    makes the lane return ``None``, and the full path then raises the proper error."""
    return (
        type(y) is np.ndarray
        and x.dtype in _FLOATS
        and y.dtype == x.dtype
        and y.shape == x.shape
        and x.ndim > 0
        and x.size > 0
        and x.flags.c_contiguous
    )


def _in_unit_interval(a):
    return np.minimum.reduce(a, axis=None) >= 0 and np.maximum.reduce(a, axis=None) <= 1


def plain_soft(y, x, *, reduction, with_grad):
    """Soft targets on logits with no option, in few calls (see :func:`plain_sparse`)."""
    if x.ndim == 0 or x.shape[-1] < 2 or not _plain_targets(y, x):
        return None
    r = x.shape[-1] / x.size if reduction == "mean" else 1.0
    return run_plain(softmax_ce_soft, x, y, reduction=reduction, with_grad=with_grad,
                     grad_scale=r, reduce=_plain_reduction)  # fmt: skip


def plain_binary(y, x, *, reduction, with_grad):
    """Binary targets on logits with no option, in few calls (see :func:`plain_sparse`)."""
    if not _plain_targets(y, x):
        return None
    r = 1.0 / x.size if reduction == "mean" else 1.0
    if reduction == "none":
        return run_plain(sigmoid_bce, x, y, reduction=reduction, with_grad=with_grad,
                         grad_scale=r, reduce=_plain_reduction)  # fmt: skip

    def from_total(total, reduction):  # as the shared reduction: Σ ℓ, or Σ ℓ / (N·C)
        return np.asarray(total if reduction == "sum" else total / x.dtype.type(x.size))

    # A total needs no (N, C) array of entries: the kernel sums each block as it goes.
    return run_plain(sigmoid_bce, x, y, reduction=reduction, with_grad=with_grad,
                     grad_scale=r, reduce=from_total, summed=True)  # fmt: skip


def softmax_ce_labels(x, labels, *, class_weight, smoothing, with_grad=False, grad_scale=None,
                      generic=None):  # fmt: skip
    """ℓ = (1-ε)·w_y·(lse - x_y) + (ε/C)·Σ_c w_c·(lse - x_c), and its gradient, in two stages.

    The threaded stage reads each row block once and makes two or three NumPy calls on it:
    e = exp(x) (into the gradient's own rows with ``value_and_grad``), its row sums s, Σ w·x
    for smoothing, and the gradient scaled in place while the block is in cache. Everything
    per row (the label's logit, the logs, the weights, the label's share of the gradient) is
    then formed for up to ``_FINISH_ROWS`` rows at once. Per-block calls on short vectors,
    and the GIL hand-offs around them, cost 8-20% of the time when each block made them.

    Every quantity is formed relative to a per-row reference c, as lse - c = log(Σ e^(x - c))
    and x_c - c, which keeps float32 exact at offsets of 1e8 (the generic code's
    shifted-logit rule). Unshifted, c = max(x_y, log s - 60) makes lse - x_y =
    log(s·e^-c) - (x_y - c) exact for the label while s·e^-c stays finite. That is right for
    every row whose s lies in ``_UNSHIFTED_SUMS``; a block holding any other row (offsets,
    infinities, NaN) is redone shifted by each row's max (:func:`_shifted_block`), which
    follows the generic kernel's rules there, so ``generic`` (the torch kernel's fallback) is
    not needed.
    """
    n_classes = x.shape[-1]
    flat_x = x.reshape(-1, n_classes)
    flat_labels = labels.reshape(-1)
    n_rows = flat_x.shape[0]
    loss = np.empty(n_rows, dtype=x.dtype)
    grad = _empty_clear_of(flat_x) if with_grad else None
    terms = _LabelTerms(flat_labels, class_weight, smoothing, n_classes,
                        _flat_scale(grad_scale, labels.shape, (n_rows,), x.dtype))  # fmt: skip
    s = np.empty(n_rows, dtype=x.dtype)
    x_sum = np.empty(n_rows, dtype=x.dtype) if smoothing else None  # Σ_c w_c·x_c

    x_address = flat_x.ctypes.data if flat_x.nbytes >= _ALIAS_MIN_BYTES else None
    row_bytes = n_classes * x.itemsize

    def block(lo, hi):
        xb = flat_x[lo:hi]
        if with_grad:
            e = grad[lo:hi]
        else:
            clear_of = None if x_address is None else x_address + lo * row_bytes
            e = _scratch_for(hi - lo, n_classes, x.dtype, clear_of=clear_of)
        np.exp(xb, out=e)
        _row_sums(e, out=s[lo:hi])
        if smoothing:
            x_sum[lo:hi] = _shifted_sums(xb, class_weight, 0)
        if with_grad:
            terms.scale_softmax(e, s[lo:hi], lo, hi)

    def quiet_block(lo, hi):  # errstate is per thread
        with np.errstate(all="ignore"):
            block(lo, hi)

    def finish(lo, hi):  # the per-row terms of rows lo:hi
        rows, lb = _ROW_NUMBERS[: hi - lo], flat_labels[lo:hi]
        x_y = flat_x[lo:hi][rows, lb]
        s_rows = s[lo:hi]
        c = np.maximum(x_y, np.log(s_rows) - 60)
        log_s = np.log(s_rows * np.exp(-c))  # lse - c: no rounding of a large lse to subtract
        z_sum = x_sum[lo:hi] - terms.total_weight * c if smoothing else None
        loss[lo:hi] = terms.losses(log_s, x_y - c, z_sum, lo, hi)
        if with_grad:
            grad[lo:hi][rows, lb] -= terms.label_gradient(lo, hi)

    step = rows_per_block(n_classes, x.itemsize, _GRAD_BLOCK_BYTES if with_grad else None)
    # No warnings: rows that overflow or underflow are redone shifted, and whatever their
    # first results were is overwritten. A single block runs here, under this errstate.
    with np.errstate(all="ignore"):
        spread(n_rows, step, flat_x.size, block if n_rows <= step else quiet_block)
        for lo in range(0, n_rows, _FINISH_ROWS):  # bounded temporaries when N is huge
            finish(lo, min(lo + _FINISH_ROWS, n_rows))

    smallest, largest = _UNSHIFTED_SUMS
    # False for NaN and infinite sums too
    if n_rows and not (smallest <= np.minimum.reduce(s) and np.maximum.reduce(s) <= largest):
        unshifted = (s >= smallest) & (s <= largest)
        starts = np.unique(np.flatnonzero(~unshifted) // step) * step

        def redo(first, last):
            with np.errstate(all="ignore"):  # per thread; inf - inf = NaN is the answer here
                for lo in starts[first:last]:
                    _shifted_block(flat_x, flat_labels, loss, grad, terms, lo,
                                   min(lo + step, n_rows))  # fmt: skip

        spread(len(starts), 1, len(starts) * step * n_classes, redo)
    return loss.reshape(labels.shape), None if grad is None else grad.reshape(x.shape)


class _LabelTerms:
    """The per-row constants of the labels loss, known before any logit is read.

    label_share = (1-ε)·w_y, the label's coefficient; mass = Σ_c w_c q_c = label_share +
    (ε/C)·Σ_c w_c, the softmax's coefficient in the gradient; r, the gradient's scale
    (``None``, one float, or one value per row). Each is one float or one value per row.
    """

    def __init__(self, labels, class_weight, smoothing, n_classes, scale):
        self.class_weight, self.smoothing, self.scale = class_weight, smoothing, scale
        w_y = None if class_weight is None else class_weight[labels]
        self.label_share = 1.0 - smoothing if w_y is None else (1.0 - smoothing) * w_y
        self.uniform = smoothing / n_classes
        self.total_weight = n_classes if class_weight is None else class_weight.sum()
        mass = self.label_share
        if smoothing:
            mass = mass + self.uniform * self.total_weight
        self.mass_r = mass if scale is None else mass * scale

    def losses(self, log_s, x_y_c, z_sum, lo, hi):
        """ℓ of rows lo:hi from lse - c, x_y - c and Σ_c w_c·(x_c - c)."""
        nll = log_s - x_y_c
        share = _rows_of(self.label_share, lo, hi)
        if not (isinstance(share, float) and share == 1.0):
            nll *= share
        if self.smoothing:
            nll += self.uniform * (self.total_weight * log_s - z_sum)
        return nll

    def scale_softmax(self, e, s, lo, hi):
        """e ← r·(mass·e/s - (ε/C)·w): the gradient but for the label's share."""
        e *= (_rows_of(self.mass_r, lo, hi) / s)[:, None]  # softmax = e / s, whatever the shift
        if self.smoothing:
            r = _rows_of(self.scale, lo, hi)
            r = 1.0 if r is None else r if isinstance(r, float) else r[:, None]
            e -= self.uniform * r * (1.0 if self.class_weight is None else self.class_weight)

    def label_gradient(self, lo, hi):
        """r·(1-ε)·w_y, subtracted at each row's label."""
        r = _rows_of(self.scale, lo, hi)
        share = _rows_of(self.label_share, lo, hi)
        return share if r is None else share * r


def _shifted_block(x, labels, loss, grad, terms, lo, hi):
    """Rows lo:hi of :func:`softmax_ce_labels`, each shifted by its max first (c = m)."""
    xb, lb = x[lo:hi], labels[lo:hi]
    rows = np.arange(hi - lo)
    e = grad[lo:hi] if grad is not None else _scratch_for(hi - lo, x.shape[1], x.dtype)
    c = xb.max(axis=1)
    c[~np.isfinite(c)] = 0  # an all -inf (or +inf) row is not shifted by an infinity
    np.subtract(xb, c[:, None], out=e)
    x_y_c = e[rows, lb]
    z_sum = _shifted_sums(e, terms.class_weight, 0) if terms.smoothing else None
    np.exp(e, out=e)
    s = _row_sums(e)
    with np.errstate(divide="ignore"):  # log 0 = -inf for an all -inf row, as generically
        log_s = np.log(s)
    loss[lo:hi] = terms.losses(log_s, x_y_c, z_sum, lo, hi)
    if grad is not None:
        terms.scale_softmax(e, s, lo, hi)
        e[rows, lb] -= terms.label_gradient(lo, hi)


def _flat_scale(grad_scale, shape, flat_shape, dtype):
    """The gradient's scale as ``None``, one float, or ``shape``'s values in ``flat_shape``."""
    if grad_scale is None or isinstance(grad_scale, float):
        return grad_scale
    grad_scale = np.asarray(grad_scale, dtype=dtype)
    if grad_scale.ndim == 0:
        return float(grad_scale)
    return np.broadcast_to(grad_scale, shape).reshape(flat_shape)


def _rows_of(scale, lo, hi):
    return scale if scale is None or isinstance(scale, float) else scale[lo:hi]


def _scale_rows(a, r):
    """a ·= r, where r is ``None`` (1), one float, or one value per row or per entry of ``a``."""
    if r is None or (isinstance(r, float) and r == 1.0):
        return
    a *= r if isinstance(r, float) or r.ndim == a.ndim else r[:, None]


def _generic_block(generic, x, y, loss, grad, scale, lo, hi):
    """Rows lo:hi by the generic kernel. The fast kernels hand it every block whose result is
    not finite (infinite or NaN inputs), where its rules decide the answer, e.g. 0·inf = 0
    for a term with a zero coefficient."""
    r = _rows_of(scale, lo, hi)
    block_loss, block_grad = generic(
        x[lo:hi],
        y[lo:hi],
        with_grad=grad is not None,
        grad_scale=None if r is None else np.asarray(r),
    )
    if loss is not None:
        loss[lo:hi] = block_loss
    if grad is not None:
        grad[lo:hi] = block_grad
    return block_loss


def _run_guarded(fast_block, flat_y, check_targets, step):
    """Run ``fast_block(lo, hi)`` over row blocks of ``step`` rows on every thread, warnings
    off (a block with a non-finite result is redone by the generic kernel). With
    ``check_targets`` a block whose targets leave [0, 1] (or hold NaN) is skipped; returns
    whether every block ran."""
    outside = []

    def block(lo, hi):
        if check_targets and not _in_unit_interval(flat_y[lo:hi]):
            outside.append(lo)
            return
        with np.errstate(all="ignore"):
            fast_block(lo, hi)

    spread(flat_y.shape[0], step, flat_y.size, block)
    return not outside


def softmax_ce_soft(x, y, *, class_weight, smoothing, generic, with_grad=False, grad_scale=None,
                    check_targets=False):  # fmt: skip
    """ℓ = Σ_c w_c q_c (lse - x_c), q = (1-ε)·y + ε/C, in row blocks shared among the threads.

    Per block: the row max m, z = x - m, Σ w·q·z, exp and Σ e, in place in one buffer (the
    gradient's own rows with ``value_and_grad``), so ℓ = log Σe·Σ wq - Σ wq·z with nothing
    cancelling. Unlike the labels kernel every row is shifted: an unshifted Σ wq·x would lose
    a confident row's small loss to rounding. ``generic`` (the agnostic kernel) takes the
    blocks whose loss is not finite. With ``check_targets`` each block first checks that its
    targets lie in [0, 1]; if one does not, the result is ``None``.
    """
    n_classes = x.shape[-1]
    flat_x, flat_y = x.reshape(-1, n_classes), y.reshape(-1, n_classes)
    n_rows = flat_x.shape[0]
    loss = np.empty(n_rows, dtype=x.dtype)
    grad = np.empty_like(flat_x) if with_grad else None
    scale = _flat_scale(grad_scale, x.shape[:-1], (n_rows,), x.dtype)

    def fast_block(lo, hi):
        xb, yb = flat_x[lo:hi], flat_y[lo:hi]
        m = np.maximum.reduce(xb, axis=1)
        if not np.isfinite(m).all():  # an infinite or NaN row: the generic rules decide
            return _generic_block(generic, flat_x, flat_y, loss, grad, scale, lo, hi)
        wq = yb  # w ⊙ q, in a scratch buffer when it differs from y (y is the caller's)
        if smoothing or class_weight is not None:
            wq = _scratch_for(hi - lo, n_classes, x.dtype, slot=1)
            np.multiply(yb, 1.0 - smoothing, out=wq)
            if smoothing:
                wq += smoothing / n_classes
            if class_weight is not None:
                wq *= class_weight
        z = grad[lo:hi] if with_grad else _scratch_for(hi - lo, n_classes, x.dtype)
        np.subtract(xb, m[:, None], out=z)
        mass = _row_sums(wq)
        dot = np.einsum("ij,ij->i", wq, z)
        np.exp(z, out=z)
        s = _row_sums(z)
        nll = np.log(s) * mass - dot
        if not np.isfinite(nll).all():  # e.g. target mass on a -inf logit
            return _generic_block(generic, flat_x, flat_y, loss, grad, scale, lo, hi)
        loss[lo:hi] = nll
        if with_grad:  # r·(Σwq·softmax - wq)
            z *= (mass / s)[:, None]
            z -= wq
            _scale_rows(z, _rows_of(scale, lo, hi))

    if not _run_guarded(
        fast_block, flat_y, check_targets, rows_per_block(n_classes, x.itemsize, _SMALL_BLOCK_BYTES)
    ):
        return None
    return loss.reshape(x.shape[:-1]), None if grad is None else grad.reshape(x.shape)


def sigmoid_bce(x, y, *, pos_weight, smoothing, generic, with_grad=False, grad_scale=None,
                check_targets=False, summed=False):  # fmt: skip
    """ℓ = (1-q)·max(x, 0) + a·q·max(-x, 0) + (1-q+a·q)·log1p(e^-|x|), element-wise.

    q = (1-ε)·y + ε/2, a = ``pos_weight``. All three terms are ≥ 0, so nothing cancels: a
    confident right answer keeps its tiny loss (x = 30, y = 1 gives 9.4e-14, not 0). The
    gradient (1-q+a·q)·σ(x) - a·q takes σ = e^min(x,0) / (1 + e^-|x|), exact on both sides
    of 0, without ``np.where`` (whose branchy loop costs more than exp on random signs).
    Blocks with an infinite or NaN loss (infinite logits) go to ``generic``; ``check_targets``
    as in :func:`softmax_ce_soft`. With ``summed`` the loss returned is the total Σ ℓ: each
    block adds its own sum, and no (N, C) array of entries is allocated or written.
    """
    n_cols = x.shape[-1]
    flat_x, flat_y = x.reshape(-1, n_cols), y.reshape(-1, n_cols)
    loss = None if summed else _empty_clear_of(flat_x)
    block_sums = {}  # with summed: Σ ℓ per block, by its first row
    grad = np.empty_like(flat_x) if with_grad else None
    scale = _flat_scale(grad_scale, x.shape, flat_x.shape, x.dtype)
    a = pos_weight
    if a is not None and np.ndim(a) == 0:
        a = float(a)

    x_address = flat_x.ctypes.data if flat_x.nbytes >= _ALIAS_MIN_BYTES else None
    row_bytes = n_cols * x.itemsize

    def fast_block(lo, hi):
        xb, yb = flat_x[lo:hi], flat_y[lo:hi]
        shape = xb.shape

        def scratch(slot, clear_of_x=False, dtype=x.dtype):
            clear_of = x_address + lo * row_bytes if clear_of_x and x_address else None
            return _scratch_for(shape[0], n_cols, dtype, slot=slot, clear_of=clear_of)

        lb = scratch(6, clear_of_x=True) if summed else loss[lo:hi]  # written from x first

        q = yb  # the caller's y is never written
        if smoothing:
            q = np.multiply(yb, 1.0 - smoothing, out=scratch(3))
            q += smoothing / 2
        aq = q if a is None else np.multiply(q, a, out=scratch(4))
        term = scratch(2)
        if a is None:
            np.negative(xb, out=lb)
            np.minimum(xb, lb, out=lb)  # -|x|, exactly
            # (1-q)·max(x, 0) + q·max(-x, 0) = ([x > 0] - q)·x: 1 - q (exact for q near 1,
            # where p - q·p would not be) or -q, times x: two passes fewer than below
            np.subtract(np.greater(xb, 0, out=scratch(7, dtype=np.bool_)), q, out=term)
            term *= xb
            neg = np.minimum(xb, 0, out=scratch(1)) if with_grad else None
        else:
            pos = np.maximum(xb, 0, out=scratch(0, clear_of_x=True))
            neg = np.minimum(xb, 0, out=scratch(1, clear_of_x=True))
            np.subtract(neg, pos, out=lb)  # -|x|
            np.subtract(1, q, out=term)
            term *= pos  # (1-q)·max(x, 0)
        np.exp(lb, out=lb)  # e^-|x|
        if with_grad:  # σ(x) = e^min(x, 0) / (1 + e^-|x|), before neg is consumed below
            gb = grad[lo:hi]
            np.add(lb, 1, out=gb)
            numerator = np.exp(neg, out=scratch(0))
            np.divide(numerator, gb, out=gb)
        if a is not None:
            np.multiply(aq, neg, out=neg)
            term -= neg  # + a·q·max(-x, 0)
        np.log1p(lb, out=lb)
        if a is not None:
            coefficient = np.subtract(aq, q, out=scratch(5))
            coefficient += 1  # 1 - q + a·q
            lb *= coefficient
        lb += term
        block_sum = np.add.reduce(lb, axis=None)
        if not np.isfinite(block_sum):
            block_loss = _generic_block(generic, flat_x, flat_y, loss, grad, scale, lo, hi)
            block_sums[lo] = np.add.reduce(block_loss, axis=None)
            return
        block_sums[lo] = block_sum
        if with_grad:
            if a is not None:
                gb *= coefficient
            gb -= aq
            _scale_rows(gb, _rows_of(scale, lo, hi))

    if not _run_guarded(
        fast_block, flat_y, check_targets, rows_per_block(n_cols, x.itemsize, _SMALL_BLOCK_BYTES)
    ):
        return None
    grad = None if grad is None else grad.reshape(x.shape)
    if summed:  # the blocks' sums in row order, whatever order the threads finished in
        return np.add.reduce(np.array([block_sums[lo] for lo in sorted(block_sums)])), grad
    return loss.reshape(x.shape), grad
