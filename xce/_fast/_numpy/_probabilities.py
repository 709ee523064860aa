"""Small calls on probabilities (``from_logits=False``, Keras's default) in a handful of NumPy
calls: the three losses for a few KiB of input, where the full path's Python layers (about
200 µs a call) cost many times the arithmetic. CPU torch tensors outside any graph take these
too, on NumPy views (``xce._fast._torch._host``).

The rules are the generic kernels' (``xce._agnostic``) with the default ``eps``, the dtype's
machine epsilon: predictions are clipped to [eps, 1] (binary: [eps, 1 - eps]), the loss is
-Σ q·log of the clipped values, and the gradient -q/p is 0 where the clip cut (its slope).
Each function first checks what the full path would refuse: predictions in [0, 1] whose rows
sum to 1 (binary: entries in [0, 1]), targets as the logits' short paths check them; it
returns ``None`` where one fails, and the full path then raises the proper error. Inputs are
never written.
"""

from __future__ import annotations

import numpy as np

from ._dense_kernels import LOG1P_MAX_ENTRIES, in_unit_interval, sums_are_one
from ._row_ops import row_numbers
from ._small import all_finite, labels_reduction, plain_reduction, quiet, row_sums_by_matvec

__all__ = [
    "default_eps",
    "probabilities_binary",
    "probabilities_labels",
    "probabilities_soft",
    "rows_are_probabilities",
]

# The full path's default clip, per dtype: its machine epsilon.
_EPS = {np.dtype(t): float(np.finfo(t).eps) for t in (np.float32, np.float64)}


def default_eps(dtype):
    """The full path's default clip for probabilities of ``dtype`` (float32 or float64)."""
    return _EPS[dtype]


def _log1p_of_negative(c):
    """log1p(-c) for c in (0, 1): a confident prediction's small loss -log(1 - c) ≈ c is kept
    (log(1 - c) in floating point would round it away). With u = 1 - c rounded,
    log1p(-c) = log u + (-c - (u - 1))/u, the second term the rounding error of u over u
    (u - 1 is exact): NumPy's vectorised log instead of its scalar log1p loop."""
    if c.size <= LOG1P_MAX_ENTRIES:  # the binary kernel's bound: log1p's scalar loop
        return np.log1p(-c)
    u = np.subtract(1, c)
    correction = np.subtract(u, 1)
    np.add(correction, c, out=correction)  # (u - 1) + c, minus the term above
    correction /= u
    np.log(u, out=u)  # each fresh array of a large call costs its page faults: few of them
    u -= correction
    return u


def rows_are_probabilities(p):
    """Whether the rows of the 2-d ``p`` are probabilities: in [0, 1], each summing to 1
    within the shared tolerance (NaN is not)."""
    return in_unit_interval(p) and sums_are_one(row_sums_by_matvec(p), zero_allowed=False)


@quiet
def probabilities_labels(p, labels, *, reduction, with_grad, smoothing=0.0, valid=None):
    """ℓ = -(1-ε)·log p̂_y - (ε/C)·Σ_c log p̂_c, p̂ = max(p, eps), and r·(-q/p̂ where p ≥ eps,
    else 0), q = (1-ε)·onehot + ε/C.

    ``labels`` must lie within [0, C) (:func:`xce._fast._numpy._small.checked_labels`); rows
    where ``valid`` is false count for nothing, as in
    :func:`xce._fast._numpy._small.small_labels`.
    """
    n_classes = p.shape[-1]
    flat_p, flat_labels = p.reshape(-1, n_classes), labels.reshape(-1)
    if not rows_are_probabilities(flat_p):
        return None
    clipped = np.maximum(flat_p, _EPS[p.dtype])
    rows = row_numbers(flat_p.shape[0])
    loss = np.log(clipped[rows, flat_labels])
    loss *= -(1.0 - smoothing)
    if smoothing:
        loss -= (smoothing / n_classes) * row_sums_by_matvec(np.log(clipped))
    value, r, flat_valid = labels_reduction(loss, labels, valid, reduction)
    if value is None:
        return None
    if not with_grad:
        return value, None
    if smoothing:
        grad = np.divide(-r * smoothing / n_classes, clipped)
    else:
        grad = np.zeros_like(flat_p)
    grad[rows, flat_labels] -= (r * (1.0 - smoothing)) / clipped[rows, flat_labels]
    grad *= flat_p >= _EPS[p.dtype]  # the clip's slope
    if flat_valid is not None:
        grad[~flat_valid] = 0
    return value, grad.reshape(p.shape)


@quiet
def probabilities_soft(p, y, *, reduction, with_grad, smoothing=0.0):
    """ℓ = -Σ_c q_c·log p̂_c, p̂ = max(p, eps), q = (1-ε)·y + ε/C, and r·(-q/p̂ where p ≥ eps,
    else 0). ``y`` (shaped like ``p``) must lie in [0, 1] with every row summing to 1 or 0."""
    n_classes = p.shape[-1]
    flat_p, flat_y = p.reshape(-1, n_classes), y.reshape(-1, n_classes)
    targets_fit = in_unit_interval(flat_y) and sums_are_one(row_sums_by_matvec(flat_y))
    if not (targets_fit and rows_are_probabilities(flat_p)):
        return None
    if smoothing:
        flat_y = flat_y * (1.0 - smoothing)  # a new array: the caller's y is never written
        flat_y += smoothing / n_classes
    clipped = np.maximum(flat_p, _EPS[p.dtype])
    terms = np.log(clipped)
    terms *= flat_y
    loss = row_sums_by_matvec(terms)
    np.negative(loss, out=loss)
    value = plain_reduction(loss.reshape(p.shape[:-1]), reduction)
    if not all_finite(value):
        return None
    if not with_grad:
        return value, None
    grad = np.divide(flat_y, clipped)
    r = 1.0 / flat_p.shape[0] if reduction == "mean" else 1.0
    grad *= -r
    grad *= flat_p >= _EPS[p.dtype]
    return value, grad.reshape(p.shape)


@quiet
def probabilities_binary(p, y, *, reduction, with_grad, smoothing=0.0):
    """ℓ = -(q·log p̂ + (1-q)·log(1 - p̂)), p̂ = clip(p, eps, 1 - eps), q = (1-ε)·y + ε/2, and
    r·((1-q)/(1 - p̂) - q/p̂) where eps ≤ p ≤ 1 - eps, else 0, entry by entry. ``y`` and ``p``
    must lie in [0, 1]."""
    if not (in_unit_interval(y) and in_unit_interval(p)):
        return None
    if smoothing:
        y = y * (1.0 - smoothing)  # a new array: the caller's y is never written
        y += smoothing / 2
    eps = _EPS[p.dtype]
    clipped = np.maximum(p, eps)
    np.minimum(clipped, 1 - eps, out=clipped)
    not_y = np.subtract(1, y)
    loss = np.log(clipped)
    loss *= y
    tail = _log1p_of_negative(clipped)
    tail *= not_y
    loss += tail
    np.negative(loss, out=loss)
    value = plain_reduction(loss, reduction)
    if not all_finite(value):
        return None
    if not with_grad:
        return value, None
    grad = not_y / (1 - clipped)
    grad -= y / clipped
    if reduction == "mean":
        grad *= 1.0 / p.size
    grad *= (p >= eps) & (p <= 1 - eps)
    return value, grad
