"""One weighting and reduction rule for every loss of the family.

For the per-entry loss ℓ (the batch shape S), sample weights s (``None``: 1), the validity
mask v (``None``: all valid), the normaliser weights ω (``None``: 1) and the rows to poison
with NaN (``None``: none):

- ``"none"`` → v·s·ℓ; ``"sum"`` → Σ v·s·ℓ; ``"mean"`` → Σ v·s·ℓ / Σ v·s·ω;
  ``"sum_and_count"`` → (Σ v·s·ℓ, Σ v·s·ω).

A mean over nothing (Σ v·s·ω = 0) is 0 with a zero gradient, not NaN: a batch that is all
padding must not poison an accumulated loss. NaN rows (unchecked out-of-range labels) still
propagate: 0·NaN is NaN.

The count and the gradient's per-entry scale depend on targets and weights only, so they are
known *before* the kernels run: a kernel folds the scale into the one write of its gradient.
"""

from __future__ import annotations

import math

__all__ = [
    "count",
    "gradient_scale",
    "mask_gradient",
    "reduce_loss",
]


def _masked(xp, values, valid):
    return values if valid is None else xp.where(valid, values, xp.zeros_like(values))


def count(xp, like, dtype, on_device, *, weight, valid, omega):
    """Σ v·s·ω over the batch shape, as a 0-d array on ``on_device``.

    ``like`` is an array of the batch shape. Its shape gives the count without reading data,
    unless a size is not known before computing (Dask after boolean indexing: ``nan``), where
    the count is a sum over an array of ones like it.
    """
    known = all(isinstance(n, int) for n in like.shape)
    if weight is None and omega is None and valid is None and known:
        return xp.asarray(float(math.prod(like.shape)), dtype=dtype, device=on_device)
    per_entry = omega if omega is not None else weight
    if per_entry is None:
        per_entry = xp.ones_like(like, dtype=dtype)
    elif omega is not None and weight is not None:
        per_entry = omega * weight
    per_entry = _masked(xp, per_entry, valid)
    return _as_array(xp, xp.sum(per_entry), like=per_entry)


def _as_array(xp, value, *, like):
    """A reduction's result as the 0-d array the standard asks for, which NumPy's sum is not
    (it returns a scalar, where a mean returns a 0-d array). Arrays pass through untouched:
    ``torch.asarray`` would warn on a tensor that requires grad."""
    return value if type(value) is type(like) else xp.asarray(value)


def gradient_scale(xp, total_count, *, weight, reduction):
    """∂(reduced loss)/∂ℓᵢ per entry: sᵢ (sum) or sᵢ / Σ v·s·ω (mean); ``None`` means 1."""
    if reduction != "mean":
        return weight
    empty = total_count == 0
    base = xp.ones_like(total_count) if weight is None else weight
    return xp.where(empty, xp.zeros_like(base), base / xp.where(empty, 1, total_count))


def reduce_loss(xp, loss, *, weight, valid, bad, reduction, total_count):
    """The reduced loss (a tuple for ``"sum_and_count"``)."""
    weighted = loss if weight is None else weight * loss
    weighted = _masked(xp, weighted, valid)
    if bad is not None:
        weighted = xp.where(bad, xp.full_like(weighted, math.nan), weighted)
    if reduction == "none":
        return weighted
    total = _as_array(xp, xp.sum(weighted), like=weighted)
    if reduction == "sum":
        return total
    if reduction == "sum_and_count":
        return total, total_count
    empty = total_count == 0
    # An empty mean is 0, but a NaN total (unchecked bad labels) stays NaN. Selected, not
    # computed as 0·total, which would warn (and turn an infinite total into NaN).
    nothing = xp.where(xp.isnan(total), total, xp.zeros_like(total))
    return xp.where(empty, nothing, total / xp.where(empty, 1, total_count))


def mask_gradient(xp, grad, *, valid, bad, class_axis):
    """Zero the gradient of excluded entries (even NaN ones) and poison the bad rows."""
    if class_axis:
        valid = None if valid is None else valid[..., None]
        bad = None if bad is None else bad[..., None]
    grad = _masked(xp, grad, valid)
    if bad is not None:
        grad = xp.where(bad, xp.full_like(grad, math.nan), grad)
    return grad
