"""Per-sample categorical cross entropy and its analytic gradient, class axis last.

Inputs arrive validated, in the compute dtype, with the class axis moved to the end. Labels
are already safe to index with (the public layer replaced out-of-range ones). Each kernel
returns ``(loss, grad)`` where ``loss`` has the batch shape and ``grad`` = ∂loss/∂input per
sample (or ``None`` when not asked for); weighting by samples and reduction happen later.

Notation: x logits, p probabilities, y targets, q = (1-ε)·y + ε/C the smoothed target,
w class weights (``None`` means all ones), ℓ = Σ_c w_c q_c (-log p_c).
"""

from __future__ import annotations

from .._array_api import device
from ._blocks import (
    clip_probabilities,
    finite_max,
    is_python_zero,
    log_argument,
    log_of_clipped,
    log_or_neg_inf,
    times_finite,
)
from ._softcap import soft_cap, with_z_loss

__all__ = [
    "class_weight_of",
    "labels_loss_and_grad",
    "probs_ce_labels",
    "probs_ce_soft",
    "row_scale",
    "smoothed_weighted_target",
    "soft_loss_and_grad",
    "softmax_ce_labels",
    "softmax_ce_soft",
    "softmax_stats",
    "take_along_last_axis",
]


def take_along_last_axis(xp, x, index):
    """``x[..., index[..., 0]]`` kept as a trailing axis of length 1.

    ``index`` must be in range. Namespaces without ``take_along_axis`` (Dask) select the entry
    with a one-hot mask and sum each row (exact: one term is not 0): chunk by chunk, so it
    needs no row count (unknown chunk sizes work) and holds no more than a chunk at a time.
    """
    if hasattr(xp, "take_along_axis"):
        return xp.take_along_axis(x, index, axis=-1)
    classes = xp.arange(x.shape[-1], dtype=index.dtype, device=device(x))
    return xp.sum(xp.where(index == classes, x, xp.zeros_like(x)), axis=-1, keepdims=True)


def class_weight_of(xp, class_weight, labels):
    """``class_weight[labels]``, of ``labels``' shape (labels in range).

    Dask selects with a one-hot mask instead of taking from the flattened labels: a reshape
    over rows needs their count, unknown after boolean indexing.
    """
    if hasattr(xp, "take_along_axis"):
        return xp.reshape(xp.take(class_weight, xp.reshape(labels, (-1,))), labels.shape)
    classes = xp.arange(class_weight.shape[0], dtype=labels.dtype, device=device(labels))
    picked = xp.where(labels[..., None] == classes, class_weight, xp.zeros_like(class_weight))
    return xp.sum(picked, axis=-1)


def _label_mask(xp, labels, n_classes, on_device):
    """Boolean (..., C) mask of the label positions, built only for the gradient's write."""
    classes = xp.arange(n_classes, dtype=labels.dtype, device=on_device)
    return labels[..., None] == classes


def softmax_stats(xp, x):
    """The row shift m (:func:`finite_max`), shifted logits z = x - m, e = exp(z) and
    log Σ e, all with keepdims."""
    m = finite_max(xp, x, -1)
    z = x - m
    e = xp.exp(z)
    s = xp.sum(e, axis=-1, keepdims=True)
    return m, z, e, s, log_or_neg_inf(xp, s)


def softmax_ce_labels(xp, x, labels, *, class_weight, smoothing, with_grad, grad_scale=None,
                      softcap=None, z_loss=0.0, parts=False):  # fmt: skip
    """ℓ = (1-ε)·w_y·(lse - x_y) + (ε/C)·Σ_c w_c·(lse - x_c), from integer labels.

    The target logit enters shifted (log Σ exp(x - m) - (x_y - m)), so that offsets of 1e8
    lose nothing in float32. It is gathered from x and shifted after: the same one rounding
    as gathering from z, but the gather does not make XLA hold z, an array the size of x.
    ``softcap``, ``z_loss`` (weighted by w_y) and ``parts`` as in :mod:`._softcap`; with
    ``parts`` the loss is the tuple (loss, cross entropy, z-loss term, log Z).
    """
    n_classes = x.shape[-1]
    x, slope = soft_cap(xp, x, softcap, with_grad)
    m, z, e, s, log_s = softmax_stats(xp, x)
    w_y = None if class_weight is None else class_weight_of(xp, class_weight, labels)[..., None]
    smoothing_sums = None
    if not is_python_zero(smoothing):
        if class_weight is None:
            smoothing_sums = (xp.sum(z, axis=-1, keepdims=True), n_classes)
        else:
            weighted_z = xp.sum(times_finite(xp, class_weight, z), axis=-1, keepdims=True)
            smoothing_sums = (weighted_z, xp.sum(class_weight))
    return labels_loss_and_grad(
        xp, m=m, e=e, s=s, log_s=log_s,
        z_y=take_along_last_axis(xp, x, labels[..., None]) - m, w_y=w_y,
        smoothing_sums=smoothing_sums, class_weight=class_weight, n_classes=n_classes,
        smoothing=smoothing, label_mask=lambda: _label_mask(xp, labels, n_classes, device(x)),
        slope=slope, with_grad=with_grad, grad_scale=grad_scale, z_loss=z_loss, parts=parts,
    )  # fmt: skip


def labels_loss_and_grad(xp, *, m, e, s, log_s, z_y, w_y, smoothing_sums, class_weight,
                         n_classes, smoothing, label_mask, slope, with_grad, grad_scale,
                         z_loss, parts, write=None):  # fmt: skip
    """The label kernels' loss and gradient from the row statistics, whether a row's classes
    are all here (:func:`softmax_ce_labels`) or split over a group (``._sharded``).

    ``m`` the row shift, ``e`` = exp(x - m) of the classes here, ``s`` = Σ e and ``log_s``
    over all C classes, ``z_y`` the label's shifted logit, ``w_y`` its class weight (``None``:
    1), ``smoothing_sums`` ``(Σ_c w_c·z_c, Σ_c w_c)`` over all classes (``None`` without
    smoothing), ``class_weight`` the weights of the classes here, ``label_mask()`` the
    (..., classes here) mask of the label's position, ``slope`` the cap's derivative.

    The gradient is e·a - shift, less ``hard`` at the label, times the slope; ``write(a,
    shift, hard)``, where given, makes it instead (a backend's in-place writer, which makes
    e itself: ``e`` is then unused).
    """
    nll = log_s - z_y
    if w_y is not None:
        nll = w_y * nll
    smoothed = smoothing_sums is not None
    ce = (1 - smoothing) * nll if smoothed else nll
    if smoothed:
        weighted_z, total_weight = smoothing_sums
        ce = ce + (smoothing / n_classes) * (total_weight * log_s - weighted_z)
    loss, z_coefficient, terms = with_z_loss(
        xp, ce, m, log_s, z_loss=z_loss, weight=w_y, parts=parts
    )
    loss = loss if terms is None else terms
    if not with_grad:
        return loss, None
    # ∂ℓ/∂x = (Σ_c w_c q_c + 2λ·w_y·log Z)·softmax(x) - w ⊙ q, times the row's scale r:
    # e·(A·r/s) - r·w ⊙ q, with the label's share written through a mask.
    r = row_scale(xp, grad_scale)
    hard = (1 - smoothing) * r if w_y is None else (1 - smoothing) * w_y * r
    extra = None if z_coefficient is None else z_coefficient * r
    shift = None
    if smoothed:
        uniform = smoothing / n_classes
        if class_weight is None:
            mass = r
            shift = uniform * r
        else:
            mass = ((1 - smoothing) * w_y + uniform * smoothing_sums[1]) * r
            shift = (uniform * r) * class_weight
        coefficient = (mass if extra is None else mass + extra) / s
    else:
        coefficient = (hard if extra is None else hard + extra) / s
    if write is not None:
        return loss, write(coefficient, shift, hard)
    grad = e * coefficient if shift is None else e * coefficient - shift
    grad = xp.where(label_mask(), grad - hard, grad)
    return loss, grad if slope is None else grad * slope


def row_scale(xp, grad_scale):
    """The per-row gradient scale shaped to broadcast over the class axis (1 when None)."""
    if grad_scale is None:
        return 1.0
    return grad_scale if grad_scale.ndim == 0 else grad_scale[..., None]


def smoothed_weighted_target(xp, y, *, class_weight, smoothing):
    n_classes = y.shape[-1]
    q = y if is_python_zero(smoothing) else (1 - smoothing) * y + smoothing / n_classes
    return q if class_weight is None else class_weight * q


def softmax_ce_soft(xp, x, y, *, class_weight, smoothing, with_grad, grad_scale=None,
                    softcap=None, z_loss=0.0, parts=False):  # fmt: skip
    """ℓ = Σ_c w_c q_c (lse - x_c) from soft (or one-hot) targets y; ``softcap``, ``z_loss``
    (weighted by ω = Σ_c w_c y_c, the mean's normaliser) and ``parts`` as in
    :func:`softmax_ce_labels`."""
    wq = smoothed_weighted_target(xp, y, class_weight=class_weight, smoothing=smoothing)
    x, slope = soft_cap(xp, x, softcap, with_grad)
    m, z, e, s, log_s = softmax_stats(xp, x)
    omega = None
    if class_weight is not None and not is_python_zero(z_loss):
        omega = xp.sum(class_weight * y, axis=-1, keepdims=True)
    return soft_loss_and_grad(
        xp, m=m, e=e, s=s, log_s=log_s, wq=wq, mass=xp.sum(wq, axis=-1, keepdims=True),
        wqz=xp.sum(times_finite(xp, wq, z), axis=-1, keepdims=True), omega=omega,
        slope=slope, with_grad=with_grad, grad_scale=grad_scale, z_loss=z_loss, parts=parts,
    )  # fmt: skip


def soft_loss_and_grad(xp, *, m, e, s, log_s, wq, mass, wqz, omega, slope, with_grad,
                       grad_scale, z_loss, parts):  # fmt: skip
    """The soft-target kernels' loss and gradient from the row statistics (all classes in
    :func:`softmax_ce_soft`, split over a group in ``._sharded``): ``mass`` = Σ w·q and
    ``wqz`` = Σ w·q·(x - m) over all classes, ``omega`` the z-loss's weight (``None``: 1),
    ``wq`` and ``e`` of the classes here; the rest as in :func:`labels_loss_and_grad`.

    Σ wq·(log s - z) = log s·Σ wq - Σ wq·z: both terms are ≥ 0, so no cancellation, and a
    class with zero target mass adds 0 even where its logit is -inf.
    """
    ce = log_s * mass - wqz
    loss, z_coefficient, terms = with_z_loss(
        xp, ce, m, log_s, z_loss=z_loss, weight=omega, parts=parts
    )
    loss = loss if terms is None else terms
    if not with_grad:
        return loss, None
    r = row_scale(xp, grad_scale)
    scaled = mass * r if z_coefficient is None else (mass + z_coefficient) * r
    grad = e * (scaled / s) - r * wq
    return loss, grad if slope is None else grad * slope


def _neg_log_grad(xp, coefficient, clipped, inside):
    """∂/∂p of -coefficient·log(clip(p)): -coefficient/p inside the clip range, else 0."""
    safe = xp.where(coefficient == 0, xp.ones_like(clipped), clipped)
    grad = -coefficient / safe
    return grad if inside is None else xp.where(inside, grad, xp.zeros_like(grad))


def probs_ce_labels(xp, p, labels, *, class_weight, smoothing, eps, with_grad, grad_scale=None):
    """ℓ = -(1-ε)·w_y·log p_y - (ε/C)·Σ_c w_c·log p_c, with p clipped to [eps, 1]."""
    n_classes = p.shape[-1]
    index = labels[..., None]
    p_y = take_along_last_axis(xp, p, index)
    clipped_y, inside_y = clip_probabilities(xp, p_y, eps, 1.0)
    hard = (1 - smoothing) * xp.ones_like(p_y)
    if class_weight is not None:
        hard = hard * class_weight_of(xp, class_weight, labels)[..., None]
    loss = -hard * log_of_clipped(xp, log_argument(xp, hard, clipped_y), eps)
    clipped = inside = None
    smoothed = not is_python_zero(smoothing)
    if smoothed:
        uniform = smoothing / n_classes
        soft = uniform if class_weight is None else uniform * class_weight
        clipped, inside = clip_probabilities(xp, p, eps, 1.0)
        safe = log_argument(xp, soft, clipped)
        loss = loss - xp.sum(soft * log_of_clipped(xp, safe, eps), axis=-1, keepdims=True)
    loss = loss[..., 0]
    if not with_grad:
        return loss, None
    label_grad = _neg_log_grad(xp, hard, clipped_y, inside_y)
    if smoothed:
        grad = _neg_log_grad(xp, soft * xp.ones_like(p), clipped, inside)
        grad = grad + xp.where(
            _label_mask(xp, labels, n_classes, device(p)), label_grad, xp.zeros_like(grad)
        )
    else:
        grad = xp.where(_label_mask(xp, labels, n_classes, device(p)), label_grad, xp.zeros_like(p))
    return loss, grad if grad_scale is None else row_scale(xp, grad_scale) * grad


def probs_ce_soft(xp, p, y, *, class_weight, smoothing, eps, with_grad, grad_scale=None):
    """ℓ = -Σ_c w_c q_c log(clip(p_c, eps, 1)); classes with no target mass add 0."""
    wq = smoothed_weighted_target(xp, y, class_weight=class_weight, smoothing=smoothing)
    clipped, inside = clip_probabilities(xp, p, eps, 1.0)
    loss = -xp.sum(wq * log_of_clipped(xp, log_argument(xp, wq, clipped), eps), axis=-1)
    if not with_grad:
        return loss, None
    grad = _neg_log_grad(xp, wq, clipped, inside)
    return loss, grad if grad_scale is None else row_scale(xp, grad_scale) * grad
