"""Element-wise binary cross entropy and its analytic gradient.

Notation: q = (1-ε)·y + ε/2 the smoothed target, a = pos_weight (1 when ``None``). The loss is
ℓ = (1-q)·(-log(1-p)) + a·q·(-log p); on logits -log p = softplus(-x), -log(1-p) = softplus(x).
A term whose coefficient is 0 is 0, whatever the logit: x = +inf with y = 1 gives 0, not NaN.
"""

from __future__ import annotations

import math

from ._blocks import log_or_neg_inf, neg_abs, negative_part, positive_part

__all__ = [
    "probs_bce",
    "sigmoid_bce",
]


def _coefficients(xp, y, *, pos_weight, smoothing):
    q = y if smoothing == 0 else (1 - smoothing) * y + smoothing / 2
    positive = q if pos_weight is None else pos_weight * q
    return 1 - q, positive


def _times(xp, coefficient, value):
    """coefficient · value with 0 · inf = 0.

    The value is replaced before the product, so no 0 · inf is ever formed: no NaN in the
    discarded branch (which would poison autodiff gradients), no floating-point warning.
    """
    return coefficient * xp.where(coefficient == 0, xp.zeros_like(value), value)


def sigmoid_bce(xp, x, y, *, pos_weight, smoothing, with_grad, grad_scale=None):
    """ℓ = (1-q)·softplus(x) + a·q·softplus(-x), with softplus(±x) = max(±x, 0) + log1p(e^-|x|)."""
    negative, positive = _coefficients(xp, y, pos_weight=pos_weight, smoothing=smoothing)
    e = xp.exp(neg_abs(xp, x))
    tail = xp.log1p(e)
    softplus_pos = positive_part(xp, x) + tail
    softplus_neg = negative_part(xp, x) + tail
    loss = _times(xp, negative, softplus_pos) + _times(xp, positive, softplus_neg)
    if not with_grad:
        return loss, None
    # ∂ℓ/∂x = (1-q + a·q)·σ(x) - a·q; σ from the same e^-|x| as the loss.
    sig = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
    grad = (negative + positive) * sig - positive
    return loss, grad if grad_scale is None else grad_scale * grad


def probs_bce(xp, p, y, *, pos_weight, smoothing, eps, with_grad, grad_scale=None):
    """ℓ = -(a·q·log pc + (1-q)·log(1-pc)), pc = clip(p, eps, 1-eps)."""
    negative, positive = _coefficients(xp, y, pos_weight=pos_weight, smoothing=smoothing)
    pc = xp.clip(p, eps, 1.0 - eps) if eps else p
    one = xp.ones_like(pc)
    # Replace the log's argument where the coefficient is 0, so 0·log 0 never forms.
    p_pos = xp.where(positive == 0, one, pc)
    p_neg = xp.where(negative == 0, xp.zeros_like(pc), pc)
    if eps:  # pc and 1 - pc are positive
        log_p, log_not_p = xp.log(p_pos), xp.log1p(-p_neg)
    else:  # unclipped: log 0 = -inf is the right answer, formed without a warning
        certain = p_neg == 1
        log_p = log_or_neg_inf(xp, p_pos)
        log_not_p = xp.where(
            certain, xp.full_like(pc, -math.inf), xp.log1p(-xp.where(certain, 0 * pc, p_neg))
        )
    loss = -(positive * log_p + negative * log_not_p)
    if not with_grad:
        return loss, None
    grad = negative / xp.where(negative == 0, one, 1 - pc) - positive / xp.where(
        positive == 0, one, pc
    )
    if eps:
        grad = xp.where((p >= eps) & (p <= 1 - eps), grad, xp.zeros_like(grad))
    return loss, grad if grad_scale is None else grad_scale * grad
