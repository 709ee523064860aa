"""The NumPy plain lanes: option-free calls on logits in a few calls, and the short path that
small sparse inputs take instead of the blocked kernel."""

from __future__ import annotations

import numpy as np

from .. import _config
from .._plain import run_plain
from ._dense_kernels import sigmoid_bce, softmax_ce_soft
from ._row_ops import row_numbers, row_sums
from ._sparse_kernel import softmax_ce_labels

__all__ = ["plain_binary", "plain_soft", "plain_sparse"]

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
    small = x.nbytes <= _config.SMALL_LANE_BYTES
    result = _small_labels(x, labels, with_grad, r) if small else None
    if result is None:
        result = softmax_ce_labels(x, labels, class_weight=None, smoothing=0.0,
                                   with_grad=with_grad, grad_scale=r)  # fmt: skip
    loss, grad = result
    return _plain_reduction(loss, reduction), grad


def _small_labels(x, labels, with_grad, r):
    """ℓ = log Σ_c e^(x_c - m) - (x_y - m), m the row max, and r·(softmax - onehot), for a
    few KiB of logits in a handful of calls, where the blocked kernel's bookkeeping (its
    per-row terms, scratch and error state) costs more than its arithmetic. ``None`` if a row
    max is not finite (an infinity or NaN in the row): the kernel's rules decide those rows."""
    n_classes = x.shape[-1]
    flat_x = x.reshape(-1, n_classes)
    flat_labels = labels.reshape(-1)
    m = np.maximum.reduce(flat_x, axis=1)
    if not np.isfinite(m).all():
        return None
    z = flat_x - m[:, None]  # ≤ 0: exp cannot overflow, Σ e ≥ 1; the gradient's own array
    rows = row_numbers(flat_x.shape[0])
    z_y = z[rows, flat_labels]  # x_y - m exactly, -inf for a label on a -inf logit
    np.exp(z, out=z)
    s = row_sums(z)
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
    (a separate pass would read a large ``y`` from memory twice): a block outside [0, 1]
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
