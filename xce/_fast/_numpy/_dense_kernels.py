"""The NumPy soft-target and binary kernels: targets shaped like the logits, in row blocks of
``_config.SMALL_BLOCK_BYTES`` shared among the threads. Each block is read from memory once and
its gradient rows written once; the passes in between run in cache, each the cheapest NumPy
call that does its step (one exp and, for binary, one log per entry: the only transcendental
calls). A block whose result is not finite is redone by the generic kernel, whose rules decide
such cases."""

from __future__ import annotations

import numpy as np

from ..._value_checks import ROW_SUM_FLOOR, ROW_SUM_ULPS
from .. import _config
from ._row_ops import flat_scale, row_sums, rows_of, scale_rows
from ._threads import empty_clear_of, rows_per_block, scratch_for, spread

__all__ = [
    "LOG1P_MAX_ENTRIES",
    "in_unit_interval",
    "sigmoid_bce",
    "softmax_ce_soft",
    "sums_are_one",
]


def in_unit_interval(a):
    """Whether every entry of ``a`` lies in [0, 1] (NaN does not)."""
    return np.minimum.reduce(a, axis=None) >= 0 and np.maximum.reduce(a, axis=None) <= 1


# The shared row-sum tolerance per dtype, formed once: finfo and max() on every block would cost
# a small call more than the check itself.
_ROW_SUM_TOLERANCE = {
    np.dtype(t): max(ROW_SUM_FLOOR, ROW_SUM_ULPS * float(np.finfo(t).eps))
    for t in (np.float32, np.float64)
}


def sums_are_one(total, zero_allowed=True):
    """Every row total is 1 within the shared tolerance, or 0 (a row without target, where
    ``zero_allowed``: targets, not predictions)."""
    tolerance = _ROW_SUM_TOLERANCE[total.dtype]
    deviation = np.abs(total - 1)
    if np.maximum.reduce(deviation) <= tolerance:  # every row near 1 (False for NaN)
        return True
    return zero_allowed and bool(((deviation <= tolerance) | (total == 0)).all())


def _generic_block(generic, x, y, loss, grad, scale, lo, hi):
    """Rows lo:hi by the generic kernel. The fast kernels hand it every block whose result is
    not finite (infinite or NaN inputs), where its rules decide the answer, e.g. 0·inf = 0
    for a term with a zero coefficient."""
    r = rows_of(scale, lo, hi)
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


def _run_blocks(fast_block, n_rows, n_columns, step):
    """Run ``fast_block(lo, hi)`` over row blocks of ``step`` rows on every thread, warnings
    off (a block with a non-finite result is redone by the generic kernel). A block returns
    ``False`` when its targets fail the check; returns whether none did."""
    outside = []

    def block(lo, hi):
        with np.errstate(all="ignore"):
            if fast_block(lo, hi) is False:
                outside.append(lo)

    spread(n_rows, step, n_rows * n_columns, block)
    return not outside


def softmax_ce_soft(x, y, *, class_weight, smoothing, generic, with_grad=False, grad_scale=None,
                    check_targets=False):  # fmt: skip
    """ℓ = Σ_c w_c q_c (lse - x_c), q = (1-ε)·y + ε/C, in row blocks shared among the threads.

    Per block: the row max m, z = x - m, Σ w·q·z, exp and Σ e, in place in one buffer (the
    gradient's own rows with ``value_and_grad``), so ℓ = log Σe·Σ wq - Σ wq·z with nothing
    cancelling. Unlike the labels kernel every row is shifted: an unshifted Σ wq·x would lose
    a confident row's small loss to rounding. ``generic`` (the agnostic kernel) takes the
    blocks whose loss is not finite. With ``check_targets`` each block first checks that its
    targets lie in [0, 1] and each row sums to 1 (or 0), the row sums being those the loss
    uses; if one does not, the result is ``None``.
    """
    n_classes = x.shape[-1]
    flat_x, flat_y = x.reshape(-1, n_classes), y.reshape(-1, n_classes)
    n_rows = flat_x.shape[0]
    loss = np.empty(n_rows, dtype=x.dtype)
    grad = np.empty_like(flat_x) if with_grad else None
    scale = flat_scale(grad_scale, x.shape[:-1], (n_rows,), x.dtype)
    weighted = bool(smoothing) or class_weight is not None
    x_address = flat_x.ctypes.data if flat_x.nbytes >= _config.ALIAS_MIN_BYTES else None
    row_bytes = n_classes * x.itemsize

    def fast_block(lo, hi):
        xb, yb = flat_x[lo:hi], flat_y[lo:hi]
        if check_targets:
            y_sums = row_sums(yb)
            if not (in_unit_interval(yb) and sums_are_one(y_sums)):
                return False
        m = np.maximum.reduce(xb, axis=1)  # a row max that is not finite makes ℓ NaN below
        wq = yb  # w ⊙ q, in a scratch buffer when it differs from y (y is the caller's)
        if weighted:
            wq = scratch_for(hi - lo, n_classes, x.dtype, slot=1)
            np.multiply(yb, 1.0 - smoothing, out=wq)
            if smoothing:
                wq += smoothing / n_classes
            if class_weight is not None:
                wq *= class_weight
        mass = y_sums if check_targets and not weighted else row_sums(wq)
        if with_grad:
            z = grad[lo:hi]
        else:
            clear_of = None if x_address is None else x_address + lo * row_bytes
            z = scratch_for(hi - lo, n_classes, x.dtype, clear_of=clear_of)
        np.subtract(xb, m[:, None], out=z)
        # not vecdot: its BLAS dot may start threads of its own inside each of ours
        dot = np.einsum("ij,ij->i", wq, z)
        np.exp(z, out=z)
        s = row_sums(z)
        nll = np.log(s) * mass - dot
        # an infinite or NaN logit, or target mass on a -inf one: the generic rules decide
        if not np.isfinite(nll).all():
            return _generic_block(generic, flat_x, flat_y, loss, grad, scale, lo, hi)
        loss[lo:hi] = nll
        if with_grad:  # r·(Σwq·softmax - wq)
            z *= (mass / s)[:, None]
            z -= wq
            scale_rows(z, rows_of(scale, lo, hi))
        return True

    step = rows_per_block(n_classes, x.itemsize, _config.SMALL_BLOCK_BYTES)
    if not _run_blocks(fast_block, n_rows, n_classes, step):
        return None
    return loss.reshape(x.shape[:-1]), None if grad is None else grad.reshape(x.shape)


# Up to this many entries in a block (a small call's whole input), NumPy's log1p costs less
# than the five calls that replace it in larger blocks.
LOG1P_MAX_ENTRIES = 1024


def sigmoid_bce(x, y, *, pos_weight, smoothing, generic, with_grad=False, grad_scale=None,
                check_targets=False, summed=False):  # fmt: skip
    """ℓ = (1-q)·max(x, 0) + a·q·max(-x, 0) + (1-q+a·q)·log1p(e^-|x|), element-wise.

    q = (1-ε)·y + ε/2, a = ``pos_weight``. All three terms are ≥ 0, so nothing cancels: a
    confident right answer keeps its tiny loss (x = 30, y = 1 gives 9.4e-14, not 0). With
    t = e^-|x| and u = 1 + t, log1p(t) = log u + (t - (u - 1))/u: u - 1 is exact and t - (u - 1)
    is the rounding error of 1 + t, so this is log1p to within log's own error, from NumPy's
    vectorised log (its log1p loop is scalar and costs several exps; a small call's block
    takes log1p itself, where the calls would cost more). The gradient
    (1-q+a·q)·σ(x) - a·q takes σ = max(t, [x > 0]) / u (t = e^x for x < 0), exact on both
    sides of 0, with no second exp and no ``np.where`` (whose branchy loop costs more than exp
    on random signs). Blocks with an infinite or NaN loss (infinite logits) go to ``generic``;
    ``check_targets`` as in :func:`softmax_ce_soft`. With ``summed`` the loss returned is the
    total Σ ℓ: each block adds its own sum, and no (N, C) array of entries is allocated or
    written.
    """
    n_cols = x.shape[-1]
    flat_x, flat_y = x.reshape(-1, n_cols), y.reshape(-1, n_cols)
    loss = None if summed else empty_clear_of(flat_x)
    block_sums = {}  # with summed: Σ ℓ per block, by its first row
    grad = np.empty_like(flat_x) if with_grad else None
    scale = flat_scale(grad_scale, x.shape, flat_x.shape, x.dtype)
    a = pos_weight
    if a is not None and np.ndim(a) == 0:
        a = float(a)

    x_address = flat_x.ctypes.data if flat_x.nbytes >= _config.ALIAS_MIN_BYTES else None
    row_bytes = n_cols * x.itemsize

    def fast_block(lo, hi):
        xb, yb = flat_x[lo:hi], flat_y[lo:hi]
        if check_targets and not in_unit_interval(yb):
            return False
        shape = xb.shape

        def scratch(slot, clear_of_x=False, dtype=x.dtype):
            clear_of = x_address + lo * row_bytes if clear_of_x and x_address else None
            return scratch_for(shape[0], n_cols, dtype, slot=slot, clear_of=clear_of)

        lb = scratch(6, clear_of_x=True) if summed else loss[lo:hi]  # written from x first

        q = yb  # the caller's y is never written
        if smoothing:
            q = np.multiply(yb, 1.0 - smoothing, out=scratch(3))
            q += smoothing / 2
        aq = q if a is None else np.multiply(q, a, out=scratch(4))
        positive = np.greater(xb, 0, out=scratch(7, dtype=np.bool_))
        term = scratch(2)
        if a is None:
            np.negative(xb, out=lb)
            np.minimum(xb, lb, out=lb)  # -|x|, exactly
            # (1-q)·max(x, 0) + q·max(-x, 0) = ([x > 0] - q)·x: 1 - q (exact for q near 1,
            # where p - q·p would not be) or -q, times x: two passes fewer than below
            np.subtract(positive, q, out=term)
            term *= xb
        else:
            pos = np.maximum(xb, 0, out=scratch(0, clear_of_x=True))
            neg = np.minimum(xb, 0, out=scratch(1, clear_of_x=True))
            np.subtract(neg, pos, out=lb)  # -|x|
            np.subtract(1, q, out=term)
            term *= pos  # (1-q)·max(x, 0)
            np.multiply(aq, neg, out=neg)
            term -= neg  # + a·q·max(-x, 0)
        np.exp(lb, out=lb)  # t = e^-|x|
        small = lb.size <= LOG1P_MAX_ENTRIES
        u = None  # 1 + t, for the gradient and the log
        if with_grad or not small:
            u = np.add(lb, 1, out=grad[lo:hi] if with_grad else scratch(0))
        numerator = np.maximum(lb, positive, out=scratch(5)) if with_grad else None
        if small:
            np.log1p(lb, out=lb)
        else:
            correction = np.subtract(u, 1, out=scratch(1))
            np.subtract(lb, correction, out=correction)
            correction /= u
            np.log(u, out=lb)
            lb += correction  # log1p(t)
        if with_grad:
            np.divide(numerator, u, out=u)  # σ(x), in the gradient's rows
        if a is not None:
            coefficient = np.subtract(aq, q, out=scratch(5))
            coefficient += 1  # 1 - q + a·q
            lb *= coefficient
        lb += term
        block_sum = np.add.reduce(lb, axis=None)
        if not np.isfinite(block_sum):
            block_loss = _generic_block(generic, flat_x, flat_y, loss, grad, scale, lo, hi)
            block_sums[lo] = np.add.reduce(block_loss, axis=None)
            return True
        block_sums[lo] = block_sum
        if with_grad:
            if a is not None:
                u *= coefficient
            u -= aq
            scale_rows(u, rows_of(scale, lo, hi))
        return True

    step = rows_per_block(n_cols, x.itemsize, _config.SMALL_BLOCK_BYTES)
    if not _run_blocks(fast_block, flat_x.shape[0], n_cols, step):
        return None
    grad = None if grad is None else grad.reshape(x.shape)
    if summed:  # the blocks' sums in row order, whatever order the threads finished in
        return np.add.reduce(np.array([block_sums[lo] for lo in sorted(block_sums)])), grad
    return loss.reshape(x.shape), grad
