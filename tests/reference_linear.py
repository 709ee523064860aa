"""Float64 NumPy oracle of linear cross entropy: the whole logits, then the reference sparse
cross entropy (tests/reference.py), with soft-capping and the z-loss written out here; and
the gradients by their formula. Imports nothing from xce."""

from __future__ import annotations

import numpy as np
import reference

__all__ = ["gradients", "linear_cross_entropy", "logits"]


def _prefix(arr, shape) -> np.ndarray:
    """``arr`` (0-d or a leading prefix of ``shape``) repeated over ``shape``'s trailing axes."""
    arr = np.asarray(arr)
    return np.broadcast_to(arr.reshape(arr.shape + (1,) * (len(shape) - arr.ndim)), shape)


def logits(hidden, weight, bias=None, softcap=None) -> np.ndarray:
    """z = h·Wᵀ + b in float64, then c·tanh(z / c) with a cap."""
    z = np.asarray(hidden, np.float64) @ np.asarray(weight, np.float64).T
    if bias is not None:
        z = z + np.asarray(bias, np.float64)
    return z if softcap is None else softcap * np.tanh(z / softcap)


def _per_sample(y, hidden, weight, bias, *, ignore_index, class_weight, label_smoothing,
                where, softcap, z_loss):  # fmt: skip
    """Per-sample loss ℓ (CE + λ·ω·log²Z, unweighted), ω, the validity mask and log Z."""
    x = logits(hidden, weight, bias, softcap)
    y = np.asarray(y)
    valid = np.ones(y.shape, bool) if where is None else _prefix(np.asarray(where, bool), y.shape)
    if ignore_index is not None:
        valid = valid & (y != ignore_index)
    ce = reference.sparse_categorical_cross_entropy(
        y, x, from_logits=True, class_weight=class_weight, label_smoothing=label_smoothing,
        where=valid, reduction="none", ignore_index=None,
    )  # fmt: skip
    safe = np.where(valid, y, 0)
    omega = np.ones(y.shape) if class_weight is None else np.asarray(class_weight, float)[safe]
    log_z = reference.logsumexp(x, axis=-1)
    loss = ce + np.where(valid, z_loss * omega * log_z**2, 0.0)
    return loss, omega, valid, log_z


def linear_cross_entropy(
    y, hidden, weight, *, bias=None, ignore_index=None, class_weight=None,
    sample_weight=None, label_smoothing=0.0, where=None, softcap=None, z_loss=0.0,
    reduction="mean",
):  # fmt: skip
    """The loss: "mean" is Σ sᵢ·ℓᵢ / Σ sᵢ·ωᵢ over the included entries (0 over nothing)."""
    loss, omega, valid, _ = _per_sample(
        y, hidden, weight, bias, ignore_index=ignore_index, class_weight=class_weight,
        label_smoothing=label_smoothing, where=where, softcap=softcap, z_loss=z_loss,
    )  # fmt: skip
    s = (
        np.ones(loss.shape)
        if sample_weight is None
        else _prefix(np.asarray(sample_weight, float), loss.shape)
    )
    weighted = np.where(valid, s * loss, 0.0)
    count = np.sum(np.where(valid, s * omega, 0.0))
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return np.sum(weighted)
    if reduction == "sum_and_count":
        return np.sum(weighted), count
    return 0.0 if count == 0 else np.sum(weighted) / count


def gradients(
    y, hidden, weight, *, bias=None, ignore_index=None, class_weight=None,
    sample_weight=None, label_smoothing=0.0, where=None, softcap=None, z_loss=0.0,
    reduction="mean",
):  # fmt: skip
    """(d_hidden, d_weight[, d_bias]) of the reduced loss, by the formula: per entry
    G = s·[(Σ_c w_c q_c)·p - w⊙q + 2λ·ω·log Z·p]·(1 - tanh²(z/c)) (divided by Σ s·ω for
    "mean"), then G·W, Gᵀ·h and Σ G."""
    h = np.asarray(hidden, np.float64)
    w_mat = np.asarray(weight, np.float64)
    n_classes = w_mat.shape[0]
    _, omega, valid, log_z = _per_sample(
        y, hidden, weight, bias, ignore_index=ignore_index, class_weight=class_weight,
        label_smoothing=label_smoothing, where=where, softcap=softcap, z_loss=z_loss,
    )  # fmt: skip
    x = logits(hidden, weight, bias, softcap)
    p = reference.softmax(x, axis=-1)
    onehot = np.eye(n_classes)[np.where(valid, np.asarray(y), 0)]
    q = (1 - label_smoothing) * onehot + label_smoothing / n_classes
    w = np.ones(n_classes) if class_weight is None else np.asarray(class_weight, float)
    wq = w * q
    g = wq.sum(-1, keepdims=True) * p - wq + (2 * z_loss * omega * log_z)[..., None] * p
    if softcap is not None:
        g = g * (1 - np.tanh(logits(hidden, weight, bias) / softcap) ** 2)
    s = (
        np.ones(valid.shape)
        if sample_weight is None
        else _prefix(np.asarray(sample_weight, float), valid.shape)
    )
    g = np.where(valid[..., None], s[..., None] * g, 0.0)
    if reduction == "mean":
        count = np.sum(np.where(valid, s * omega, 0.0))
        g = g / count if count else np.zeros_like(g)
    flat_g = g.reshape(-1, n_classes)
    grads = [g @ w_mat, flat_g.T @ h.reshape(-1, h.shape[-1])]
    if bias is not None:
        grads.append(flat_g.sum(0))
    return tuple(grads)
