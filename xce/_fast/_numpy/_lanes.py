"""The NumPy plain lanes: option-free calls on logits in a few calls; small inputs take the
short paths of :mod:`._small` instead of the blocked kernels, and small calls on probabilities
those of :mod:`._probabilities`."""

from __future__ import annotations

import numpy as np

from .. import _config
from .._plain import first_row_may_be_probabilities, run_plain
from ._dense_kernels import sigmoid_bce, softmax_ce_soft
from ._probabilities import probabilities_binary, probabilities_labels, probabilities_soft
from ._small import (
    checked_labels,
    count_of,
    mean_scale,
    plain_reduction,
    small_binary,
    small_labels,
    small_soft,
)
from ._sparse_kernel import softmax_ce_labels

__all__ = ["plain_binary", "plain_probabilities", "plain_soft", "plain_sparse"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# The binary short path's log1p is NumPy's scalar loop: at (64, 64) float32 the short path
# took 65 µs against the blocked kernel's 74, at (64, 128) 115 against 100.
_SMALL_BINARY_ENTRIES = 4096


def plain_sparse(labels, x, *, reduction, with_grad, smoothing=0.0, ignore_index=None,
                 class_weight=None):  # fmt: skip
    """The most common call, logits and integer labels with no option besides label
    smoothing, ``ignore_index`` and class weights, in few calls.

    Returns ``None`` unless every condition holds at a glance; the caller then takes the full
    path, which also raises the proper error for bad input. For a small batch the public
    layer's generic checks and reduction cost several times the loss itself. Ignored labels
    count for nothing: loss and gradient 0, and the mean is over the others (0 over none).
    With class weights (a float array of one weight per class) the mean divides by the
    counted labels' weights, ω = w[y], as the shared reduction does.
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
    checked = checked_labels(labels, x.shape[-1], ignore_index)
    if checked is None or first_row_may_be_probabilities(x):
        return None
    labels, valid = checked
    if class_weight is not None:
        if (
            type(class_weight) is not np.ndarray
            or class_weight.shape != (x.shape[-1],)
            or class_weight.dtype.kind != "f"
        ):
            return None  # the full path converts or refuses it
        class_weight = class_weight.astype(x.dtype, copy=False)
    if x.nbytes <= _config.SMALL_LANE_BYTES:
        result = small_labels(x, labels, reduction=reduction, with_grad=with_grad,
                              smoothing=smoothing, valid=valid,
                              class_weight=class_weight)  # fmt: skip
        if result is not None:
            return result
    omega = None if class_weight is None else class_weight[labels]
    count = count_of(valid, labels.size, x.dtype, omega)
    r = mean_scale(count) if reduction == "mean" else 1.0
    scale = r if valid is None else np.where(valid, x.dtype.type(r), x.dtype.type(0))
    loss, grad = softmax_ce_labels(x, labels, class_weight=class_weight, smoothing=smoothing,
                                   with_grad=with_grad, grad_scale=scale)  # fmt: skip
    if valid is not None:  # an ignored row's logits may be anything, NaN included
        np.copyto(loss, 0, where=~valid)
        if grad is not None:
            grad[~valid] = 0
    return plain_reduction(loss, reduction, count), grad


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


def plain_soft(y, x, *, reduction, with_grad, smoothing=0.0):
    """Soft targets on logits with no option besides label smoothing, in few calls (see
    :func:`plain_sparse`)."""
    if (
        x.ndim == 0
        or x.shape[-1] < 2
        or not _plain_targets(y, x)
        or first_row_may_be_probabilities(x)
    ):
        return None
    if x.nbytes <= _config.SMALL_LANE_BYTES:
        # its checks failed or a result is not finite: the blocked kernel then hands the
        # non-finite rows to the generic kernel, or declines too
        result = small_soft(x, y, reduction=reduction, with_grad=with_grad, smoothing=smoothing)
        if result is not None:
            return result
    r = x.shape[-1] / x.size if reduction == "mean" else 1.0
    return run_plain(softmax_ce_soft, x, y, reduction=reduction, with_grad=with_grad,
                     grad_scale=r, reduce=plain_reduction, smoothing=smoothing)  # fmt: skip


def plain_binary(y, x, *, reduction, with_grad, smoothing=0.0):
    """Binary targets on logits with no option besides label smoothing, in few calls (see
    :func:`plain_sparse`)."""
    if not _plain_targets(y, x):
        return None
    if x.nbytes <= _config.SMALL_LANE_BYTES and x.size <= _SMALL_BINARY_ENTRIES:
        result = small_binary(x, y, reduction=reduction, with_grad=with_grad,
                              smoothing=smoothing)  # fmt: skip
        if result is not None:
            return result
    r = 1.0 / x.size if reduction == "mean" else 1.0
    if reduction == "none":
        return run_plain(sigmoid_bce, x, y, reduction=reduction, with_grad=with_grad,
                         grad_scale=r, reduce=plain_reduction, smoothing=smoothing)  # fmt: skip

    def from_total(total, reduction):  # as the shared reduction: Σ ℓ, or Σ ℓ / (N·C)
        return np.asarray(total if reduction == "sum" else total / x.dtype.type(x.size))

    # A total needs no (N, C) array of entries: the kernel sums each block as it goes.
    return run_plain(sigmoid_bce, x, y, reduction=reduction, with_grad=with_grad,
                     grad_scale=r, reduce=from_total, smoothing=smoothing,
                     summed=True)  # fmt: skip


def plain_probabilities(lane, y, p, *, reduction, with_grad, smoothing=0.0, ignore_index=None):
    """Probabilities (``from_logits=False``) for the loss whose lane on logits is ``lane``
    (``"plain_sparse"``, ``"plain_soft"``, ``"plain_binary"``), with no option besides label
    smoothing and the sparse loss's ``ignore_index``: up to
    ``_config.PROBABILITIES_LANE_BYTES``, in the few whole-array calls of
    :mod:`._probabilities`; ``None`` otherwise, or where a check fails (see
    :func:`plain_sparse`)."""
    if (
        type(y) is not np.ndarray
        or p.dtype not in _FLOATS
        or p.ndim == 0
        or p.size == 0
        or p.nbytes > _config.PROBABILITIES_LANE_BYTES
    ):
        return None
    options = {"reduction": reduction, "with_grad": with_grad, "smoothing": smoothing}
    if lane == "plain_binary":
        same = y.dtype == p.dtype and y.shape == p.shape
        return probabilities_binary(p, y, **options) if same else None
    if p.shape[-1] < 2:
        return None
    if lane == "plain_soft":
        same = y.dtype == p.dtype and y.shape == p.shape
        return probabilities_soft(p, y, **options) if same else None
    if y.dtype.kind not in "iu" or y.shape != p.shape[:-1]:
        return None
    checked = checked_labels(y, p.shape[-1], ignore_index)
    if checked is None:
        return None
    return probabilities_labels(p, checked[0], valid=checked[1], **options)
