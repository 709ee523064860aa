"""The NumPy sparse kernel: softmax cross entropy from integer labels, in row blocks shared
among the threads, with its gradient written once into the array returned."""

from __future__ import annotations

import numpy as np

from .. import _config
from ._row_ops import flat_scale, row_numbers, row_sums, rows_of
from ._threads import empty_clear_of, rows_per_block, scratch_for, spread

__all__ = ["softmax_ce_labels"]

# exp(x) itself, without subtracting the row max first, is used when every row's Σ exp(x)
# lies in [e^-20, e^64]: no term overflowed (every logit ≤ 64), and every row max is above
# -20 - log C, so a term that underflows (x < -87) is below e^-60 of its row's largest, far
# under float32's resolution of the sum. The check reads the N row sums, not the logits:
# exp reads each block straight from memory. Other blocks (offsets, infinities, NaN) are
# shifted by each row's max.
_UNSHIFTED_SUMS = (2e-9, 6.2e27)  # e^-20, e^64


def softmax_ce_labels(x, labels, *, class_weight, smoothing, with_grad=False, grad_scale=None,
                      generic=None):  # fmt: skip
    """ℓ = (1-ε)·w_y·(lse - x_y) + (ε/C)·Σ_c w_c·(lse - x_c), and its gradient, in two stages.

    The threaded stage reads each row block once and makes two or three NumPy calls on it:
    e = exp(x) (into the gradient's own rows with ``value_and_grad``), its row sums s, Σ w·x
    for smoothing, and the gradient scaled in place while the block is in cache. Everything
    per row (the label's logit, the logs, the weights, the label's share of the gradient) is
    then formed for up to ``_config.FINISH_ROWS`` rows at once: per-block calls on short
    vectors, and the GIL hand-offs around them, cost a share of the time when each block
    made them.

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
    grad = empty_clear_of(flat_x) if with_grad else None
    terms = _LabelTerms(flat_labels, class_weight, smoothing, n_classes,
                        flat_scale(grad_scale, labels.shape, (n_rows,), x.dtype))  # fmt: skip
    s = np.empty(n_rows, dtype=x.dtype)
    x_sum = np.empty(n_rows, dtype=x.dtype) if smoothing else None  # Σ_c w_c·x_c

    x_address = flat_x.ctypes.data if flat_x.nbytes >= _config.ALIAS_MIN_BYTES else None
    row_bytes = n_classes * x.itemsize

    def block(lo, hi):
        xb = flat_x[lo:hi]
        if with_grad:
            e = grad[lo:hi]
        else:
            clear_of = None if x_address is None else x_address + lo * row_bytes
            e = scratch_for(hi - lo, n_classes, x.dtype, clear_of=clear_of)
        np.exp(xb, out=e)
        row_sums(e, out=s[lo:hi])
        if smoothing:
            x_sum[lo:hi] = _shifted_sums(xb, class_weight, 0)
        if with_grad:
            terms.scale_softmax(e, s[lo:hi], lo, hi)

    def quiet_block(lo, hi):  # errstate is per thread
        with np.errstate(all="ignore"):
            block(lo, hi)

    def finish(lo, hi):  # the per-row terms of rows lo:hi
        rows, lb = row_numbers(hi - lo), flat_labels[lo:hi]
        x_y = flat_x[lo:hi][rows, lb]
        s_rows = s[lo:hi]
        c = np.maximum(x_y, np.log(s_rows) - 60)
        log_s = np.log(s_rows * np.exp(-c))  # lse - c: no rounding of a large lse to subtract
        z_sum = x_sum[lo:hi] - terms.total_weight * c if smoothing else None
        loss[lo:hi] = terms.losses(log_s, x_y - c, z_sum, lo, hi)
        if with_grad:
            grad[lo:hi][rows, lb] -= terms.label_gradient(lo, hi)

    step = rows_per_block(n_classes, x.itemsize, _config.GRAD_BLOCK_BYTES if with_grad else None)
    # No warnings: rows that overflow or underflow are redone shifted, and whatever their
    # first results were is overwritten. A single block runs here, under this errstate.
    with np.errstate(all="ignore"):
        spread(n_rows, step, flat_x.size, block if n_rows <= step else quiet_block)
        finish_rows = _config.FINISH_ROWS
        for lo in range(0, n_rows, finish_rows):  # bounded temporaries when N is huge
            finish(lo, min(lo + finish_rows, n_rows))

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


def _shifted_sums(a, class_weight, offset):
    """Σ_c w_c·(a_c - offset) per row: the smoothing term's Σ_c w_c·(x_c - m)."""
    if class_weight is None:
        return row_sums(a) - a.shape[1] * offset
    # 0·(-inf) = 0 for a zero-weighted masked class.
    weighted = np.where(class_weight == 0, 0.0, a).astype(a.dtype, copy=False) @ class_weight
    return weighted - class_weight.sum() * offset


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
        share = rows_of(self.label_share, lo, hi)
        if not (isinstance(share, float) and share == 1.0):
            nll *= share
        if self.smoothing:
            nll += self.uniform * (self.total_weight * log_s - z_sum)
        return nll

    def scale_softmax(self, e, s, lo, hi):
        """e ← r·(mass·e/s - (ε/C)·w): the gradient but for the label's share."""
        e *= (rows_of(self.mass_r, lo, hi) / s)[:, None]  # softmax = e / s, whatever the shift
        if self.smoothing:
            r = rows_of(self.scale, lo, hi)
            r = 1.0 if r is None else r if isinstance(r, float) else r[:, None]
            e -= self.uniform * r * (1.0 if self.class_weight is None else self.class_weight)

    def label_gradient(self, lo, hi):
        """r·(1-ε)·w_y, subtracted at each row's label."""
        r = rows_of(self.scale, lo, hi)
        share = rows_of(self.label_share, lo, hi)
        return share if r is None else share * r


def _shifted_block(x, labels, loss, grad, terms, lo, hi):
    """Rows lo:hi of :func:`softmax_ce_labels`, each shifted by its max first (c = m)."""
    xb, lb = x[lo:hi], labels[lo:hi]
    rows = np.arange(hi - lo)
    e = grad[lo:hi] if grad is not None else scratch_for(hi - lo, x.shape[1], x.dtype)
    c = xb.max(axis=1)
    c[~np.isfinite(c)] = 0  # an all -inf (or +inf) row is not shifted by an infinity
    np.subtract(xb, c[:, None], out=e)
    x_y_c = e[rows, lb]
    z_sum = _shifted_sums(e, terms.class_weight, 0) if terms.smoothing else None
    np.exp(e, out=e)
    s = row_sums(e)
    with np.errstate(divide="ignore"):  # log 0 = -inf for an all -inf row, as generically
        log_s = np.log(s)
    loss[lo:hi] = terms.losses(log_s, x_y_c, z_sum, lo, hi)
    if grad is not None:
        terms.scale_softmax(e, s, lo, hi)
        e[rows, lb] -= terms.label_gradient(lo, hi)
