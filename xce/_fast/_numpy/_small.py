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

__all__ = [
    "all_finite",
    "checked_labels",
    "count_of",
    "labels_reduction",
    "mean_scale",
    "plain_reduction",
    "quiet",
    "row_sums_by_matvec",
    "small_binary",
    "small_labels",
    "small_soft",
]


def plain_reduction(loss, reduction, count=None):
    """Σ ℓ, divided by ``count`` (default: the entry count) for the mean, as in the shared
    reduction (a mean over nothing is 0): a 0-d array (not a NumPy scalar), or ``loss``
    itself for ``"none"``."""
    if reduction == "sum":
        return np.asarray(np.add.reduce(loss, axis=None))
    if reduction == "mean":
        count = loss.dtype.type(loss.size) if count is None else count
        total = np.add.reduce(loss, axis=None)
        if count:
            return np.asarray(total / count)
        return np.asarray(total if np.isnan(total) else loss.dtype.type(0))
    return loss


@functools.cache
def _ones(n_classes, dtype):
    return np.ones(n_classes, dtype=dtype)


def row_sums_by_matvec(a):
    """Σ over each row of the 2-d ``a``: a BLAS matrix-vector product with ones, a third of
    the time of a reduction along a short row (1 against 3 µs at (64, 10)). A small call runs
    on the calling thread, so the BLAS's own threads cannot nest inside the kernels' pool."""
    return a @ _ones(a.shape[-1], a.dtype)


def quiet(kernel):
    """``kernel`` with NumPy's floating-point warnings off: an infinite or NaN logit (0·inf,
    inf - inf) makes the result non-finite, and the kernel declines; the full path then
    applies xce's rules to those rows."""

    @functools.wraps(kernel)
    def quiet(*args, **kwargs):
        with np.errstate(all="ignore"):
            return kernel(*args, **kwargs)

    return quiet


def all_finite(value):
    """Whether a reduced value (one read) or every entry (one reduction) is finite."""
    if value.ndim == 0:
        return math.isfinite(value)
    return bool(np.isfinite(value).all())


def checked_labels(labels, n_classes, ignore_index):
    """``(labels, valid)`` for integer labels: ``valid`` is ``None`` when every label counts,
    else where a label is not ``ignore_index`` (those labels then replaced by 0, safe to
    index); ``None`` when a counted label lies outside [0, C) (the full path raises)."""
    valid = None
    if ignore_index is not None:
        valid = labels != ignore_index
        if valid.all():
            valid = None
        else:
            labels = np.where(valid, labels, 0)
    if (
        np.minimum.reduce(labels, axis=None) < 0
        or np.maximum.reduce(labels, axis=None) >= n_classes
    ):
        return None
    return labels, valid


def labels_reduction(loss, labels, valid, reduction, omega=None):
    """The per-row ``loss`` of a call on ``labels`` reduced as the shared rule does, rows
    where ``valid`` is false counting for nothing (their loss written 0), the mean over the
    counted rows (Σ ω over them with class weights, ω = w_y per row): ``(value, r, flat
    valid)``, r the gradient's scale (1, or the mean's 1/count), ``value`` ``None`` if it is
    not finite (the kernel then declines)."""
    flat_valid = None if valid is None else valid.reshape(-1)
    if flat_valid is not None:
        np.copyto(loss, 0, where=~flat_valid)
    count = count_of(flat_valid, loss.size, loss.dtype, omega)
    value = plain_reduction(loss.reshape(labels.shape), reduction, count)
    r = mean_scale(count) if reduction == "mean" else 1.0
    return (value if all_finite(value) else None), r, flat_valid


def mean_scale(count):
    """The mean's gradient scale 1/count; 0 for a mean over nothing, as in the shared rule."""
    return 1.0 / count if count else 0.0


def count_of(valid, size, dtype, omega=None):
    """What a mean divides by: the entries, all ``size`` or the ``valid`` ones; with class
    weights, Σ ω over them (ω = w_y, one per entry)."""
    if omega is not None:
        return np.add.reduce(omega if valid is None else omega[valid], axis=None)
    return dtype.type(size if valid is None else np.count_nonzero(valid))


@quiet
def small_labels(x, labels, *, reduction, with_grad, smoothing=0.0, valid=None,
                 class_weight=None):  # fmt: skip
    """ℓ = Σ_c w_c q_c·(lse - x_c) = log Σ_c e^(x_c - m)·Σ wq - Σ_c w_c q_c (x_c - m), m the row
    max, q = (1-ε)·onehot + ε/C, and r·(Σ wq·softmax - w ⊙ q); w = 1 without class weights.

    ``labels`` must be integers within [0, C) (see :func:`checked_labels`); rows where
    ``valid`` is false (ignored labels) count for nothing: loss and gradient 0, and the mean
    divides by the valid rows' ω = w_y (a mean over none is 0). ``None`` if the loss is not
    finite (an infinity or NaN in a counted row makes its max or its z NaN): the blocked
    kernel's rules decide those rows.
    """
    n_classes = x.shape[-1]
    flat_x = x.reshape(-1, n_classes)
    flat_labels = labels.reshape(-1)
    z = flat_x - np.maximum.reduce(flat_x, axis=1)[:, None]  # ≤ 0: no overflow, Σ e ≥ 1
    rows = row_numbers(flat_x.shape[0])
    z_y = z[rows, flat_labels]  # x_y - m exactly
    omega = mass = None  # w_y, and Σ wq per row (1 without class weights)
    if class_weight is not None:
        omega = class_weight[flat_labels]
        z_y *= omega
        mass = (1.0 - smoothing) * omega
        if smoothing:
            mass += (smoothing / n_classes) * np.add.reduce(class_weight)
    if smoothing:
        z_y *= 1.0 - smoothing
        uniform = z if class_weight is None else z * class_weight
        z_y += (smoothing / n_classes) * row_sums_by_matvec(uniform)
    np.exp(z, out=z)  # the gradient's own array
    s = row_sums_by_matvec(z)
    loss = np.log(s)
    if mass is not None:
        loss *= mass
    loss -= z_y
    value, r, flat_valid = labels_reduction(loss, labels, valid, reduction, omega)
    if value is None:
        return None
    if not with_grad:
        return value, None
    z *= ((r if mass is None else r * mass) / s)[:, None]
    hard = r * (1.0 - smoothing)
    z[rows, flat_labels] -= hard if omega is None else hard * omega
    if smoothing:
        z -= (r * smoothing / n_classes) * (1.0 if class_weight is None else class_weight)
    if flat_valid is not None:
        z[~flat_valid] = 0
    return value, z.reshape(x.shape)


@quiet
def small_soft(x, y, *, reduction, with_grad, smoothing=0.0):
    """ℓ = Σ_c q_c·(lse - x_c) = log Σe·Σq - Σ q·z (z = x - m), q = (1-ε)·y + ε/C, and
    r·(Σq·softmax - q).

    ``y`` (shaped like ``x``) must lie in [0, 1] with every row summing to 1 or 0; ``None``
    where it does not, or where the loss is not finite.
    """
    n_classes = x.shape[-1]
    flat_x, flat_y = x.reshape(-1, n_classes), y.reshape(-1, n_classes)
    mass = row_sums_by_matvec(flat_y)
    if not (in_unit_interval(flat_y) and sums_are_one(mass)):
        return None
    if smoothing:
        flat_y = flat_y * (1.0 - smoothing)  # a new array: the caller's y is never written
        flat_y += smoothing / n_classes
        mass = row_sums_by_matvec(flat_y)
    z = flat_x - np.maximum.reduce(flat_x, axis=1)[:, None]
    dot = row_sums_by_matvec(flat_y * z)  # (np.vecdot: NumPy 2 only)
    np.exp(z, out=z)
    s = row_sums_by_matvec(z)
    loss = np.log(s)
    loss *= mass
    loss -= dot
    value = plain_reduction(loss.reshape(x.shape[:-1]), reduction)
    # an infinite or NaN logit, or target mass on a -inf one: the generic rules decide
    if not all_finite(value):
        return None
    if not with_grad:
        return value, None
    z *= (mass / s)[:, None]
    z -= flat_y
    if reduction == "mean":
        z *= 1.0 / flat_x.shape[0]
    return value, z.reshape(x.shape)


@quiet
def small_binary(x, y, *, reduction, with_grad, smoothing=0.0):
    """ℓ = ([x > 0] - q)·x + log1p(e^-|x|), q = (1-ε)·y + ε/2, and r·(σ(x) - q), entry by
    entry.

    ([x > 0] - q)·x is (1-q)·x for x > 0 and q·|x| otherwise: both terms are ≥ 0, so nothing
    cancels (as in the blocked kernel). ``y`` must lie in [0, 1]; ``None`` where it does not,
    or where the loss is not finite.
    """
    if not in_unit_interval(y):
        return None
    if smoothing:
        y = y * (1.0 - smoothing)  # a new array: the caller's y is never written
        y += smoothing / 2
    positive = x > 0
    loss = np.subtract(positive, y, dtype=x.dtype)
    loss *= x
    t = np.abs(x)
    np.negative(t, out=t)
    np.exp(t, out=t)  # e^-|x|, kept for the gradient
    loss += np.log1p(t)
    value = plain_reduction(loss, reduction)
    if not all_finite(value):
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
