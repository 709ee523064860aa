"""One weighting and reduction rule for every loss of the family.

Given the per-entry loss ℓ (the batch shape S) and optionally its per-entry gradient, apply

- sample weights s (``None``: 1), the validity mask v (``None``: all valid), the
  normaliser weights ω (``None``: 1) and the rows to poison with NaN (``None``: none);
- ``"none"`` → v·s·ℓ; ``"sum"`` → Σ v·s·ℓ; ``"mean"`` → Σ v·s·ℓ / Σ v·s·ω;
  ``"sum_and_count"`` → (Σ v·s·ℓ, Σ v·s·ω).

A mean over nothing (Σ v·s·ω = 0) is 0 with a zero gradient, not NaN: a batch that is all
padding must not poison an accumulated loss. NaN rows (unchecked out-of-range labels) still
propagate: 0·NaN is NaN.
"""

from __future__ import annotations

import math

from .._compat import device


def _masked(xp, values, valid):
    return values if valid is None else xp.where(valid, values, xp.zeros_like(values))


def _count(xp, like, *, weight, valid, omega):
    """Σ v·s·ω as a 0-d array of ``like``'s dtype and device."""
    if weight is None and omega is None and valid is None:
        return xp.asarray(float(math.prod(like.shape)), dtype=like.dtype, device=device(like))
    per_entry = xp.ones_like(like) if omega is None else omega
    if weight is not None:
        per_entry = per_entry * weight
    return xp.sum(_masked(xp, per_entry, valid))


def reduce(xp, loss, grad, *, weight, valid, omega, bad, reduction, class_axis):
    """Return ``(value, grad)``; ``value`` is a tuple for ``"sum_and_count"``.

    ``grad`` is the per-entry gradient with the class axis last when ``class_axis`` is true
    (categorical) or element-wise (binary); ``None`` skips the gradient.
    """
    weighted = loss if weight is None else weight * loss
    weighted = _masked(xp, weighted, valid)
    if bad is not None:
        weighted = xp.where(bad, xp.full_like(weighted, math.nan), weighted)
    if reduction == "none":
        return weighted, None

    total = xp.sum(weighted)
    count = _count(xp, loss, weight=weight, valid=valid, omega=omega)
    empty = count == 0
    safe_count = xp.where(empty, xp.ones_like(count), count)
    if reduction == "mean":
        # 0·total keeps a NaN total NaN while an empty mean becomes 0.
        value = xp.where(empty, 0 * total, total / safe_count)
    elif reduction == "sum":
        value = total
    else:
        value = (total, count)
    if grad is None:
        return value, None

    scale = weight
    if reduction == "mean":
        base = xp.ones_like(count) if weight is None else weight
        scale = xp.where(empty, xp.zeros_like(base), base / safe_count)
    if class_axis:
        scale = scale if scale is None or scale.ndim == 0 else scale[..., None]
        valid = None if valid is None else valid[..., None]
        bad = None if bad is None else bad[..., None]
    if scale is not None:
        grad = scale * grad
    grad = _masked(xp, grad, valid)
    if bad is not None:
        grad = xp.where(bad, xp.full_like(grad, math.nan), grad)
    return value, grad
