"""Plain float64 NumPy reference implementations of the xce contract.

Written from the mathematics of the API contract only (no ``xce`` import): every function takes
NumPy (or nested-list) data, computes in float64 and returns float64 NumPy values. Tests feed it
the *same* numbers the library sees (inputs already rounded to the dtype under test, then widened
to float64), so the only difference left is the library's own rounding.

Conventions shared by the three losses:

* the class axis is moved last; ``S`` is the per-sample loss shape (``y_pred.shape`` without the
  class axis; for binary, ``y_pred.shape``);
* ``sample_weight`` / ``where`` are 0-d or have a shape that is a leading prefix of ``S`` and are
  broadcast over the trailing dimensions of ``S``;
* invalid entries (``where`` false, or a sparse label equal to ``ignore_index``) contribute 0 to
  the loss and to the count, whatever their inputs hold;
* ``eps=None`` means ``finfo(compute_dtype).eps``; ``eps=0.0`` disables clipping;
* reductions: ``"none"`` → sᵢℓᵢ (0 where invalid), ``"sum"`` → Σ sᵢℓᵢ, ``"mean"`` →
  Σ sᵢℓᵢ / Σ sᵢωᵢ (0.0 when the denominator is 0), ``"sum_and_count"`` → (Σ sᵢℓᵢ, Σ sᵢωᵢ).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "entropy",
    "kl_divergence",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "softmax",
    "softplus",
    "sparse_categorical_cross_entropy",
]


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _resolve_eps(eps, compute_dtype) -> float:
    if eps is None:
        return float(np.finfo(np.dtype(compute_dtype)).eps)
    return float(eps)


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def logsumexp(x, axis=-1, keepdims=False) -> np.ndarray:
    """log Σ exp(x) over ``axis`` (int or tuple); rows of all −inf give −inf."""
    x = _f64(x)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = np.squeeze(out, axis=axis)
    return out


def log_softmax(x, axis=-1) -> np.ndarray:
    x = _f64(x)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    shifted = x - m
    with np.errstate(divide="ignore", invalid="ignore"):
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax(x, axis=-1) -> np.ndarray:
    x = _f64(x)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def softplus(x) -> np.ndarray:
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(−|x|))."""
    x = _f64(x)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def log_sigmoid(x) -> np.ndarray:
    return -softplus(-_f64(x))


def sigmoid(x) -> np.ndarray:
    """1 / (1 + e^{−x}), evaluated without overflow on either side."""
    x = _f64(x)
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-np.abs(x))  # in (0, 1]
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def entropy(p, axis=-1) -> np.ndarray:
    """−Σ p log p with 0·log 0 = 0."""
    p = _f64(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -np.sum(terms, axis=axis)


def kl_divergence(p, q, axis=-1) -> np.ndarray:
    """Σ p (log p − log q); 0 where p = 0; +inf where q = 0 < p."""
    p, q = np.broadcast_arrays(_f64(p), _f64(q))
    pos = p > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(
            pos,
            np.where(
                q > 0, p * (np.log(np.where(pos, p, 1.0)) - np.log(np.where(q > 0, q, 1.0))), np.inf
            ),
            0.0,
        )
    return np.sum(terms, axis=axis)


# --------------------------------------------------------------------------------------------
# Shared loss machinery
# --------------------------------------------------------------------------------------------


def _prefix_broadcast(arr, shape, name, dtype=None) -> np.ndarray:
    """Broadcast ``arr`` (0-d or a leading prefix of ``shape``) over ``shape``."""
    arr = np.asarray(arr) if dtype is None else np.asarray(arr, dtype=dtype)
    shape = tuple(shape)
    if arr.ndim > len(shape) or tuple(arr.shape) != shape[: arr.ndim]:
        raise ValueError(f"{name} shape {arr.shape} is not a leading prefix of {shape}")
    arr = arr.reshape(arr.shape + (1,) * (len(shape) - arr.ndim))
    return np.broadcast_to(arr, shape)


def _reduce(per_sample, omega, valid, sample_weight, reduction):
    """Apply the validity mask, sample weights and the reduction."""
    S = per_sample.shape
    s = (
        np.ones(S)
        if sample_weight is None
        else _prefix_broadcast(sample_weight, S, "sample_weight", np.float64)
    )
    with np.errstate(invalid="ignore", over="ignore"):
        weighted = np.where(valid, s * per_sample, 0.0)
        count_terms = np.where(valid, s * omega, 0.0)
    if reduction == "none":
        return weighted
    total = np.sum(weighted)
    count = np.sum(count_terms)
    if reduction == "sum":
        return np.float64(total)
    if reduction == "sum_and_count":
        return np.float64(total), np.float64(count)
    if reduction == "mean":
        if count == 0:
            return np.float64(0.0)
        return np.float64(total / count)
    raise ValueError(f"unknown reduction {reduction!r}")


def _valid_mask(where, S) -> np.ndarray:
    if where is None:
        return np.ones(S, dtype=bool)
    return _prefix_broadcast(np.asarray(where, dtype=bool), S, "where")


def _categorical_core(y, x, *, from_logits, class_weight, label_smoothing, eps, compute_dtype):
    """Per-sample loss ℓ (shape S) and ω for class-last float64 arrays ``y`` (targets), ``x``."""
    C = x.shape[-1]
    q = (1.0 - label_smoothing) * y + label_smoothing / C
    w = np.ones(C) if class_weight is None else _f64(class_weight)
    coeff = w * q
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if from_logits:
            lse = logsumexp(x, axis=-1, keepdims=True)
            neg_log_p = lse - x
        else:
            e = _resolve_eps(eps, compute_dtype)
            neg_log_p = -np.log(np.clip(x, e, 1.0))
        terms = np.where(coeff == 0, 0.0, coeff * neg_log_p)
    loss = np.sum(terms, axis=-1)
    omega = np.ones(loss.shape) if class_weight is None else np.sum(w * y, axis=-1)
    return loss, omega


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------


def categorical_cross_entropy(
    y_true,
    y_pred,
    *,
    from_logits=False,
    axis=-1,
    class_weight=None,
    sample_weight=None,
    label_smoothing=0.0,
    where=None,
    reduction="mean",
    eps=None,
    compute_dtype="float64",
):
    """Categorical cross-entropy on soft/one-hot targets (same shape as ``y_pred``)."""
    y = np.moveaxis(_f64(y_true), axis, -1)
    x = np.moveaxis(_f64(y_pred), axis, -1)
    loss, omega = _categorical_core(
        y,
        x,
        from_logits=from_logits,
        class_weight=class_weight,
        label_smoothing=label_smoothing,
        eps=eps,
        compute_dtype=compute_dtype,
    )
    valid = _valid_mask(where, loss.shape)
    return _reduce(loss, omega, valid, sample_weight, reduction)


def sparse_categorical_cross_entropy(
    y_true,
    y_pred,
    *,
    from_logits=False,
    axis=-1,
    ignore_index=None,
    class_weight=None,
    sample_weight=None,
    label_smoothing=0.0,
    where=None,
    reduction="mean",
    eps=None,
    compute_dtype="float64",
):
    """Sparse categorical cross-entropy on integer labels of shape S."""
    labels = np.asarray(y_true)
    x = np.moveaxis(_f64(y_pred), axis, -1)
    C = x.shape[-1]
    S = x.shape[:-1]
    assert labels.shape == S, (labels.shape, S)
    valid = _valid_mask(where, S)
    if ignore_index is not None:
        valid = valid & (labels != ignore_index)
    in_range = (labels >= 0) & (labels < C)
    assert np.all(in_range | ~valid), "reference: out-of-range label on a valid entry"
    safe = np.where(valid & in_range, labels, 0)
    y = np.zeros((*S, C))
    if y.size:
        np.put_along_axis(y, safe[..., None], 1.0, axis=-1)
    y = np.where(valid[..., None], y, 0.0)
    loss, omega = _categorical_core(
        y,
        x,
        from_logits=from_logits,
        class_weight=class_weight,
        label_smoothing=label_smoothing,
        eps=eps,
        compute_dtype=compute_dtype,
    )
    return _reduce(loss, omega, valid, sample_weight, reduction)


def binary_cross_entropy(
    y_true,
    y_pred,
    *,
    from_logits=False,
    pos_weight=None,
    sample_weight=None,
    label_smoothing=0.0,
    where=None,
    reduction="mean",
    eps=None,
    compute_dtype="float64",
):
    """Element-wise binary cross-entropy; S = y_pred.shape."""
    y = _f64(y_true)
    x = _f64(y_pred)
    S = x.shape
    q = (1.0 - label_smoothing) * y + label_smoothing / 2.0
    pw = 1.0 if pos_weight is None else _f64(pos_weight)  # 0-d or (K,): broadcasts on the last axis
    pos_coeff = pw * q
    neg_coeff = 1.0 - q
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if from_logits:
            pos_term = softplus(-x)  # −log σ(x)
            neg_term = softplus(x)  # −log(1 − σ(x))
        else:
            e = _resolve_eps(eps, compute_dtype)
            pc = np.clip(x, e, 1.0 - e)
            pos_term = -np.log(pc)
            neg_term = -np.log1p(-pc)
        loss = np.where(pos_coeff == 0, 0.0, pos_coeff * pos_term) + np.where(
            neg_coeff == 0, 0.0, neg_coeff * neg_term
        )
    loss = np.broadcast_to(loss, S)
    valid = _valid_mask(where, S)
    return _reduce(loss, np.ones(S), valid, sample_weight, reduction)


# ============================================================================================
# Focal and poly-1 losses (issue 3): appended section, built on the helpers above.
#
# binary focal:      ℓ = α_t·(1 − p_t)^γ·bce(q, p),  1 − p_t = q(1 − p) + (1 − q)p,
#                    α_t = αq + (1 − α)(1 − q) (1 without α); on probabilities bce clips p to
#                    [eps, 1 − eps] but the focal factor uses p itself.
# categorical focal: ℓᵢ = −Σ_c α_c (1 − p_ic)^γ q_ic log p_ic; on probabilities only the log
#                    is clipped, to [eps, 1]; "mean" divides by Σ sᵢ (α is not a class weight).
# poly-1:            ℓᵢ = Σ_c w_c q_ic (−log p_ic + ε₁(1 − p_ic)); ω as categorical CE.
# ============================================================================================


def binary_focal_cross_entropy(
    y_true,
    y_pred,
    *,
    from_logits=False,
    gamma=2.0,
    alpha=None,
    sample_weight=None,
    label_smoothing=0.0,
    where=None,
    reduction="mean",
    eps=None,
    compute_dtype="float64",
):
    """Element-wise binary focal cross-entropy; S = y_pred.shape."""
    y = _f64(y_true)
    x = _f64(y_pred)
    q = (1.0 - label_smoothing) * y + label_smoothing / 2.0
    bce = binary_cross_entropy(
        y, x, from_logits=from_logits, label_smoothing=label_smoothing, reduction="none",
        eps=eps, compute_dtype=compute_dtype,
    )  # fmt: skip
    p = sigmoid(x) if from_logits else x
    u = q * (1.0 - p) + (1.0 - q) * p
    with np.errstate(invalid="ignore", over="ignore"):
        loss = np.where(bce == 0, 0.0, np.power(u, gamma) * bce)
    if alpha is not None:
        loss = (alpha * q + (1.0 - alpha) * (1.0 - q)) * loss
    valid = _valid_mask(where, x.shape)
    return _reduce(loss, np.ones(x.shape), valid, sample_weight, reduction)


def categorical_focal_cross_entropy(
    y_true,
    y_pred,
    *,
    from_logits=False,
    axis=-1,
    gamma=2.0,
    alpha=None,
    sample_weight=None,
    label_smoothing=0.0,
    where=None,
    reduction="mean",
    eps=None,
    compute_dtype="float64",
):
    """Categorical focal cross-entropy on soft/one-hot targets (same shape as ``y_pred``)."""
    y = np.moveaxis(_f64(y_true), axis, -1)
    x = np.moveaxis(_f64(y_pred), axis, -1)
    C = x.shape[-1]
    q = (1.0 - label_smoothing) * y + label_smoothing / C
    a = q if alpha is None else _f64(alpha) * q
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if from_logits:
            p = softmax(x, axis=-1)
            neg_log_p = logsumexp(x, axis=-1, keepdims=True) - x
        else:
            p = x
            e = _resolve_eps(eps, compute_dtype)
            neg_log_p = -np.log(np.clip(x, e, 1.0))
        coeff = a * np.power(1.0 - p, gamma)
        terms = np.where(coeff == 0, 0.0, coeff * neg_log_p)
    loss = np.sum(terms, axis=-1)
    valid = _valid_mask(where, loss.shape)
    return _reduce(loss, np.ones(loss.shape), valid, sample_weight, reduction)


def poly1_cross_entropy(
    y_true,
    y_pred,
    *,
    from_logits=False,
    axis=-1,
    epsilon=2.0,
    class_weight=None,
    sample_weight=None,
    label_smoothing=0.0,
    where=None,
    reduction="mean",
    eps=None,
    compute_dtype="float64",
):
    """Poly-1 cross-entropy on soft/one-hot targets: CE + ε₁·Σ_c w_c q_c (1 − p_c)."""
    y = np.moveaxis(_f64(y_true), axis, -1)
    x = np.moveaxis(_f64(y_pred), axis, -1)
    C = x.shape[-1]
    loss, omega = _categorical_core(
        y, x, from_logits=from_logits, class_weight=class_weight,
        label_smoothing=label_smoothing, eps=eps, compute_dtype=compute_dtype,
    )  # fmt: skip
    q = (1.0 - label_smoothing) * y + label_smoothing / C
    w = np.ones(C) if class_weight is None else _f64(class_weight)
    p = softmax(x, axis=-1) if from_logits else x
    loss = loss + epsilon * np.sum(w * q * (1.0 - p), axis=-1)
    valid = _valid_mask(where, loss.shape)
    return _reduce(loss, omega, valid, sample_weight, reduction)
