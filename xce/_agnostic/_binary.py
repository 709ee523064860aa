"""Element-wise binary cross entropy and its analytic gradient.

Notation: q = (1-ε)·y + ε/2 the smoothed target, a = pos_weight (1 when ``None``). The loss is
ℓ = (1-q)·(-log(1-p)) + a·q·(-log p); on logits -log p = softplus(-x), -log(1-p) = softplus(x).
A term whose coefficient is 0 is 0, whatever the logit: x = +inf with y = 1 gives 0, not NaN.
"""

from __future__ import annotations

import math

from ._blocks import (
    clip_probabilities,
    is_python_number,
    is_python_zero,
    log_argument,
    log_or_neg_inf,
    neg_abs,
    negative_part,
    positive_part,
    times_finite,
)

__all__ = [
    "probs_bce",
    "sigmoid_bce",
]


def _coefficients(xp, y, *, pos_weight, smoothing):
    q = y if is_python_zero(smoothing) else (1 - smoothing) * y + smoothing / 2
    positive = q if pos_weight is None else pos_weight * q
    return 1 - q, positive


def sigmoid_bce(xp, x, y, *, pos_weight, smoothing, with_grad, grad_scale=None):
    """ℓ = (1-q)·softplus(x) + a·q·softplus(-x), with softplus(±x) = max(±x, 0) + log1p(e^-|x|)."""
    negative, positive = _coefficients(xp, y, pos_weight=pos_weight, smoothing=smoothing)
    e = xp.exp(neg_abs(xp, x))
    tail = xp.log1p(e)
    softplus_pos = positive_part(xp, x) + tail
    softplus_neg = negative_part(xp, x) + tail
    loss = times_finite(xp, negative, softplus_pos) + times_finite(xp, positive, softplus_neg)
    if not with_grad:
        return loss, None
    # ∂ℓ/∂x = (1-q + a·q)·σ(x) - a·q; σ from the same e^-|x| as the loss.
    sig = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
    grad = (negative + positive) * sig - positive
    return loss, grad if grad_scale is None else grad_scale * grad


def probs_bce(xp, p, y, *, pos_weight, smoothing, eps, with_grad, grad_scale=None):
    """ℓ = -(a·q·log pc + (1-q)·log(1-pc)), pc = clip(p, eps, 1-eps)."""
    negative, positive = _coefficients(xp, y, pos_weight=pos_weight, smoothing=smoothing)
    pc, inside = clip_probabilities(xp, p, eps, 1 - eps)
    one = xp.ones_like(pc)
    if is_python_number(eps) and eps > 0:  # pc and 1 - pc are positive
        log_p, log_not_p = xp.log(pc), xp.log1p(-pc)
    else:  # maybe unclipped: log 0 = -inf is the right answer, formed without a warning
        # The log's argument is replaced where a zero coefficient meets log 0 (0·log 0 never
        # forms); elsewhere the coefficient's derivative keeps its log.
        p_pos = log_argument(xp, positive, pc)
        p_neg = log_argument(xp, negative, pc, singular=1)
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
    if inside is not None:
        grad = xp.where(inside, grad, xp.zeros_like(grad))
    return loss, grad if grad_scale is None else grad_scale * grad
