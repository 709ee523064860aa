"""Float64 NumPy oracle of the softmax cross entropies with soft-capping and the z-loss.

Independent of xce (it imports nothing from it): every quantity from its formula, the
gradient too. For logits x (classes last), the cap c (``None``: none), targets y (soft, or the
one-hot of the labels), class weights w, smoothing ε, the z-loss λ:

    x̃ = c·tanh(x / c),  log Z = logsumexp(x̃),  q = (1-ε)·y + ε/C,
    CE = Σ_c w_c q_c (log Z - x̃_c),  ω = Σ_c w_c y_c (1 without class weights),
    ℓ = CE + λ·ω·(log Z)²,
    ∂ℓ/∂x = [(Σ_c w_c q_c + 2λ·ω·log Z)·softmax(x̃) - w ⊙ q] ⊙ (1 - tanh²(x / c)).

Reductions over the included entries (mask v, sample weights s): "none" v·s·ℓ, "sum" Σ v·s·ℓ,
"mean" Σ v·s·ℓ / Σ v·s·ω (0 over nothing), "sum_and_count" the pair.
"""

from __future__ import annotations

import numpy as np

__all__ = ["categorical", "sparse"]


def _logsumexp(x):
    m = np.max(x, axis=-1, keepdims=True)
    return (m + np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True)))[..., 0]


def _reduce(per_sample, scale, count, reduction):
    weighted = scale * per_sample
    if reduction == "none":
        return weighted
    total = float(np.sum(weighted))
    if reduction == "sum":
        return total
    if reduction == "sum_and_count":
        return total, count
    return total / count if count else 0.0


def categorical(y, x, *, class_weight=None, sample_weight=None, valid=None,
                label_smoothing=0.0, softcap=None, z_loss=0.0, reduction="mean"):  # fmt: skip
    """Everything of one call: a dict with ``loss``, ``cross_entropy``, ``z_loss`` (each
    reduced), ``log_z`` (per sample) and ``grad`` (∂loss/∂x; for "sum_and_count" of the
    total)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n_classes = x.shape[-1]
    batch = x.shape[:-1]
    t = np.tanh(x / softcap) if softcap is not None else None
    xc = x if softcap is None else softcap * t
    log_z = _logsumexp(xc)
    w = np.ones(n_classes) if class_weight is None else np.asarray(class_weight, np.float64)
    q = (1 - label_smoothing) * y + label_smoothing / n_classes
    wq = w * q
    ce = np.sum(wq * (log_z[..., None] - xc), axis=-1)
    omega = np.ones(batch) if class_weight is None else np.sum(w * y, axis=-1)
    z_term = z_loss * omega * log_z**2
    v = np.ones(batch) if valid is None else np.broadcast_to(valid, batch).astype(np.float64)
    s = np.ones(batch) if sample_weight is None else np.broadcast_to(sample_weight, batch)
    count = float(np.sum(v * s * omega))
    scale = v * s
    if reduction == "mean":
        grad_scale = scale / count if count else np.zeros(batch)
    else:
        grad_scale = scale
    softmax = np.exp(xc - log_z[..., None])
    coefficient = np.sum(wq, axis=-1) + 2 * z_loss * omega * log_z
    grad = (coefficient[..., None] * softmax - wq) * grad_scale[..., None]
    if softcap is not None:
        grad = grad * (1 - t * t)
    return {
        "loss": _reduce(ce + z_term, scale, count, reduction),
        "cross_entropy": _reduce(ce, scale, count, reduction),
        "z_loss": _reduce(z_term, scale, count, reduction),
        "log_z": log_z,
        "grad": grad,
    }


def sparse(labels, x, *, ignore_index=None, valid=None, **options):
    """:func:`categorical` on the one-hot of integer labels; ``ignore_index`` entries and
    those outside ``valid`` are excluded."""
    labels = np.asarray(labels)
    n_classes = np.shape(x)[-1]
    keep = np.ones(labels.shape, bool) if valid is None else np.broadcast_to(valid, labels.shape)
    if ignore_index is not None:
        keep = keep & (labels != ignore_index)
    safe = np.where(keep, labels, 0)
    one_hot = (safe[..., None] == np.arange(n_classes)).astype(np.float64)
    return categorical(one_hot, x, valid=keep, **options)
