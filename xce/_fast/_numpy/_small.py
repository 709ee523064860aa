"""Small calls in a handful of NumPy calls: the three losses on logits, option-free, for a few
KiB of input (a classifier's batch), where the blocked kernels' bookkeeping (scratch buffers,
error state, per-block checks) and the public layer's generic steps cost more than the
arithmetic. Each NumPy call on such an input costs about a microsecond, a torch call several:
CPU torch tensors outside any graph take these too, on NumPy views of their memory.

Each function checks the targets it reads, computes the loss with the blocked kernels'
formulas (nothing cancelling, every row shifted by its max) and its reduction, and returns
``(value, grad)``; or ``None`` when a target is out of range or a result is not finite (an
infinite or NaN logit), so that the caller's full path raises the proper error or applies
xce's rules for such rows. The inputs are never written.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ._dense_kernels import in_unit_interval, sums_are_one
from ._row_ops import row_numbers

__all__ = ["plain_reduction", "small_binary", "small_labels", "small_soft"]


def plain_reduction(loss, reduction):
    """Σ ℓ, divided by the entry count for the mean, as in the shared reduction: a 0-d array
    (not a NumPy scalar), or ``loss`` itself for ``"none"``."""
    if reduction == "sum":
        return np.asarray(np.add.reduce(loss, axis=None))
    if reduction == "mean":
        return np.asarray(np.add.reduce(loss, axis=None) / loss.dtype.type(loss.size))
    return loss


@functools.cache
def _ones(n_classes, dtype):
    return np.ones(n_classes, dtype=dtype)


def _row_sums(a):
    """Σ over each row of the 2-d ``a``: a BLAS matrix-vector product with ones, a third of
    the time of a reduction along a short row (1 against 3 µs at (64, 10)). A small call runs
    on the calling thread, so the BLAS's own threads cannot nest inside the kernels' pool."""
    return a @ _ones(a.shape[-1], a.dtype)


def _quiet(kernel):
    """``kernel`` with NumPy's floating-point warnings off: an infinite or NaN logit (0·inf,
    inf - inf) makes the result non-finite, and the kernel declines; the full path then
    applies xce's rules to those rows."""

    @functools.wraps(kernel)
    def quiet(*args, **kwargs):
        with np.errstate(all="ignore"):
            return kernel(*args, **kwargs)

    return quiet


def _finite(value):
    """Whether a reduced value (one read) or every entry (one reduction) is finite."""
    if value.ndim == 0:
        return math.isfinite(value)
    return bool(np.isfinite(value).all())


@_quiet
def small_labels(x, labels, *, reduction, with_grad):
    """ℓ = log Σ_c e^(x_c - m) - (x_y - m), m the row max, and r·(softmax - onehot).

    ``labels`` must be integers within [0, C) (checked by the caller, whose check also
    serves its larger inputs). ``None`` if the loss is not finite (an infinity or NaN in a
    row makes its max or its z NaN): the blocked kernel's rules decide those rows.
    """
    n_classes = x.shape[-1]
    flat_x = x.reshape(-1, n_classes)
    flat_labels = labels.reshape(-1)
    z = flat_x - np.maximum.reduce(flat_x, axis=1)[:, None]  # ≤ 0: no overflow, Σ e ≥ 1
    rows = row_numbers(flat_x.shape[0])
    z_y = z[rows, flat_labels]  # x_y - m exactly
    np.exp(z, out=z)  # the gradient's own array
    s = _row_sums(z)
    loss = np.log(s)
    loss -= z_y
    value = plain_reduction(loss.reshape(labels.shape), reduction)
    if not _finite(value):
        return None
    if not with_grad:
        return value, None
    r = 1.0 / flat_labels.size if reduction == "mean" else 1.0
    z *= (r / s)[:, None]
    z[rows, flat_labels] -= r
    return value, z.reshape(x.shape)


@_quiet
def small_soft(x, y, *, reduction, with_grad):
    """ℓ = Σ_c q_c·(lse - x_c) = log Σe·Σq - Σ q·z (z = x - m), and r·(Σq·softmax - q).

    ``y`` (shaped like ``x``) must lie in [0, 1] with every row summing to 1 or 0; ``None``
    where it does not, or where the loss is not finite.
    """
    n_classes = x.shape[-1]
    flat_x, flat_y = x.reshape(-1, n_classes), y.reshape(-1, n_classes)
    mass = _row_sums(flat_y)
    if not (in_unit_interval(flat_y) and sums_are_one(mass)):
        return None
    z = flat_x - np.maximum.reduce(flat_x, axis=1)[:, None]
    dot = _row_sums(flat_y * z)  # (np.vecdot: NumPy 2 only)
    np.exp(z, out=z)
    s = _row_sums(z)
    loss = np.log(s)
    loss *= mass
    loss -= dot
    value = plain_reduction(loss.reshape(x.shape[:-1]), reduction)
    # an infinite or NaN logit, or target mass on a -inf one: the generic rules decide
    if not _finite(value):
        return None
    if not with_grad:
        return value, None
    z *= (mass / s)[:, None]
    z -= flat_y
    if reduction == "mean":
        z *= 1.0 / flat_x.shape[0]
    return value, z.reshape(x.shape)


@_quiet
def small_binary(x, y, *, reduction, with_grad):
    """ℓ = ([x > 0] - y)·x + log1p(e^-|x|), and r·(σ(x) - y), entry by entry.

    ([x > 0] - y)·x is (1-y)·x for x > 0 and y·|x| otherwise: both terms are ≥ 0, so nothing
    cancels (as in the blocked kernel). ``y`` must lie in [0, 1]; ``None`` where it does not,
    or where the loss is not finite.
    """
    if not in_unit_interval(y):
        return None
    positive = x > 0
    loss = np.subtract(positive, y, dtype=x.dtype)
    loss *= x
    t = np.abs(x)
    np.negative(t, out=t)
    np.exp(t, out=t)  # e^-|x|, kept for the gradient
    loss += np.log1p(t)
    value = plain_reduction(loss, reduction)
    if not _finite(value):
        return None
    if not with_grad:
        return value, None
    grad = np.maximum(t, positive, dtype=x.dtype)  # σ(x)·(1 + t): e^x below 0, 1 above
    t += 1
    grad /= t
    grad -= y
    if reduction == "mean":
        grad *= 1.0 / x.size
    return value, grad
