"""Focal and poly-1 cross entropy and their analytic gradients (see the public docstrings).

They extend the kernels of :mod:`._binary` and :mod:`._categorical`: the cross-entropy part
(loss and gradient) comes from there unchanged, and only the extra factor or term is added
here. Inputs arrive validated, in the compute dtype, class axis last; weighting by samples and
reduction happen later, in :mod:`._reduce`.

Notation: q the smoothed target, p the probability, u = 1 - p_t the focal base (p_t the
probability given to the target), γ ≥ 0 the focusing exponent, α the balancing weights.
"""

from __future__ import annotations

from ._binary import probs_bce, sigmoid_bce
from ._blocks import (
    clip_probabilities,
    is_python_number,
    is_python_zero,
    log_argument,
    log_of_clipped,
    sigmoid,
    times_finite,
)
from ._categorical import (
    probs_ce_soft,
    row_scale,
    smoothed_weighted_target,
    softmax_ce_soft,
    softmax_stats,
)

__all__ = [
    "probs_binary_focal",
    "probs_focal_soft",
    "probs_poly1_soft",
    "sigmoid_binary_focal",
    "softmax_focal_soft",
    "softmax_poly1_soft",
]


def _scaled(xp, grad, grad_scale, *, class_axis):
    """The per-entry gradient times the reduction's scale (``None``: 1)."""
    if grad_scale is None:
        return grad
    return (row_scale(xp, grad_scale) if class_axis else grad_scale) * grad


def _zero_where(xp, condition, value):
    """``value`` with 0 where ``condition``: selected before any product, so no 0·inf forms."""
    return xp.where(condition, xp.zeros_like(value), value)


def _focal_factor(xp, u, gamma, with_grad):
    """u^γ and, for the gradient, d(u^γ)/du = γ·u^(γ-1), with 0^0 = 1.

    Where u = 0 the derivative is taken as 0 for γ ≠ 1 (for γ < 1 it is infinite, and every
    use here multiplies it by a cross entropy that vanishes at the same point), 1 for γ = 1.
    A Python γ of 0 or 1 is a shortcut. Otherwise (below 1, or an array γ, which may be
    traced or differentiated) the power is taken of u with its zeros replaced: neither
    d/dγ = u^γ·log u nor d/du = γ·u^(γ-1) ever meets log 0 or 0^(γ-1), so autodiff gives no
    NaN at u = 0, and d/dγ is exact wherever u > 0.
    """
    number = is_python_number(gamma)
    if number and gamma == 0:
        return xp.ones_like(u), (xp.zeros_like(u) if with_grad else None)
    if number and gamma == 1:
        return u, (xp.ones_like(u) if with_grad else None)
    plain = number and gamma > 1  # the plain power: its slope at u = 0 is finite (0)
    if plain:
        factor = xp.pow(u, float(gamma))
        if not with_grad:
            return factor, None
    zero = u == 0
    safe = xp.where(zero, xp.ones_like(u), u)
    if not plain:
        factor = xp.where(zero, _gamma_is(xp, gamma, 0, u), xp.pow(safe, gamma))
        if not with_grad:
            return factor, None
    slope = gamma * xp.pow(safe, gamma - 1)
    return factor, xp.where(zero, _gamma_is(xp, gamma, 1, u), slope)


def _gamma_is(xp, gamma, value, like):
    """1.0 where γ equals ``value``, else 0.0; a 0-d array of ``like``'s dtype for an array γ
    (which may be traced: its value is never read here)."""
    if is_python_number(gamma):
        return float(gamma == value)
    return xp.astype(gamma == value, like.dtype)


# ---------------------------------------------------------------------------------------------
# Binary focal: ℓ = α_t·u^γ·bce, u = q·(1-p) + (1-q)·p, α_t = α·q + (1-α)·(1-q)
# ---------------------------------------------------------------------------------------------


def _smoothed(y, smoothing):
    return y if is_python_zero(smoothing) else (1 - smoothing) * y + smoothing / 2


def _balance(q, alpha):
    return None if alpha is None else alpha * q + (1 - alpha) * (1 - q)


def _binary_focal(xp, bce, bce_grad, u, du, *, q, gamma, alpha, with_grad, grad_scale):
    factor, dfactor = _focal_factor(xp, u, gamma, with_grad)
    loss = factor * bce
    weight = _balance(q, alpha)
    if weight is not None:
        loss = weight * loss
    if not with_grad:
        return loss, None
    # The cross entropy is 0 wherever the factor's slope was replaced (u = 0), and a zero
    # cross entropy must not meet an infinite slope.
    slope = _zero_where(xp, bce == 0, dfactor * du) * bce
    grad = slope + factor * bce_grad
    grad = grad if weight is None else weight * grad
    return loss, _scaled(xp, grad, grad_scale, class_axis=False)


def sigmoid_binary_focal(xp, x, y, *, gamma, alpha, smoothing, with_grad, grad_scale=None):
    """Focal loss on logits; the cross entropy is the stable softplus form of ``sigmoid_bce``.

    u = q·σ(-x) + (1-q)·σ(x): both sigmoids are evaluated directly, so u keeps its relative
    accuracy when the prediction is confidently right (no 1 - p_t cancellation).
    """
    bce, bce_grad = sigmoid_bce(xp, x, y, pos_weight=None, smoothing=smoothing, with_grad=with_grad)
    q = _smoothed(y, smoothing)
    p, not_p = sigmoid(xp, x), sigmoid(xp, -x)
    u = q * not_p + (1 - q) * p
    du = (1 - 2 * q) * p * not_p if with_grad else None
    return _binary_focal(
        xp,
        bce,
        bce_grad,
        u,
        du,
        q=q,
        gamma=gamma,
        alpha=alpha,
        with_grad=with_grad,
        grad_scale=grad_scale,
    )


def probs_binary_focal(xp, p, y, *, gamma, alpha, smoothing, eps, with_grad, grad_scale=None):
    """Focal loss on probabilities: the log is clipped (``probs_bce``), the focal base is not."""
    bce, bce_grad = probs_bce(
        xp, p, y, pos_weight=None, smoothing=smoothing, eps=eps, with_grad=with_grad
    )
    q = _smoothed(y, smoothing)
    u = q * (1 - p) + (1 - q) * p
    du = 1 - 2 * q if with_grad else None
    return _binary_focal(
        xp,
        bce,
        bce_grad,
        u,
        du,
        q=q,
        gamma=gamma,
        alpha=alpha,
        with_grad=with_grad,
        grad_scale=grad_scale,
    )


# ---------------------------------------------------------------------------------------------
# Categorical focal: ℓ = Σ_c a_c·u_c^γ·(-log p_c), a_c = α_c·q_c, u_c = 1 - p_c
# ---------------------------------------------------------------------------------------------


def softmax_focal_soft(xp, x, y, *, gamma, alpha, smoothing, with_grad, grad_scale=None):
    """Per class -log p_c = log Σ exp(x - m) - (x_c - m); u_c = (s - e_c)/s = 1 - p_c.

    The gradient, with A_c = a_c·γ·u_c^(γ-1)·p_c·(-log p_c) and B_c = a_c·u_c^γ, is
    ∂ℓ/∂x_k = p_k·Σ_c (A_c + B_c) - (A_k + B_k) (for γ = 0 it is the cross entropy's).
    """
    a = smoothed_weighted_target(xp, y, class_weight=None, smoothing=smoothing)
    if alpha is not None:
        a = alpha * a
    _, z, e, s, log_s = softmax_stats(xp, x)
    neg_log_p = log_s - z
    u = (s - e) / s
    factor, dfactor = _focal_factor(xp, u, gamma, with_grad)
    terms = times_finite(xp, a * factor, neg_log_p)
    loss = xp.sum(terms, axis=-1)
    if not with_grad:
        return loss, None
    p = e / s
    shrink = times_finite(xp, a * dfactor * p, neg_log_p)  # A_c
    push = a * factor  # B_c
    both = shrink + push
    grad = p * xp.sum(both, axis=-1, keepdims=True) - both
    return loss, _scaled(xp, grad, grad_scale, class_axis=True)


def probs_focal_soft(xp, p, y, *, gamma, alpha, smoothing, eps, with_grad, grad_scale=None):
    """ℓ = -Σ_c a_c·(1 - p_c)^γ·log(clip(p_c, eps, 1)): the clip guards the log only."""
    a = smoothed_weighted_target(xp, y, class_weight=None, smoothing=smoothing)
    if alpha is not None:
        a = alpha * a
    clipped, inside = clip_probabilities(xp, p, eps, 1.0)
    u = 1 - p
    factor, dfactor = _focal_factor(xp, u, gamma, with_grad)
    coefficient = a * factor
    safe = log_argument(xp, coefficient, clipped)
    neg_log_p = -log_of_clipped(xp, safe, eps)
    loss = xp.sum(coefficient * neg_log_p, axis=-1)
    if not with_grad:
        return loss, None
    # d/dp_c = -a_c·γ·u_c^(γ-1)·(-log pc_c) ... with the sign of du/dp = -1, plus the
    # clipped log's slope -a_c·u_c^γ / p_c (0 outside the clip range).
    log_slope = -coefficient / safe
    if inside is not None:
        log_slope = _zero_where(xp, ~inside, log_slope)
    focal_slope = -times_finite(xp, a * dfactor, neg_log_p)
    return loss, _scaled(xp, focal_slope + log_slope, grad_scale, class_axis=True)


# ---------------------------------------------------------------------------------------------
# Poly-1: ℓ = Σ_c w_c·q_c·(-log p_c + ε₁·(1 - p_c))
# ---------------------------------------------------------------------------------------------


def softmax_poly1_soft(xp, x, y, *, epsilon, class_weight, smoothing, with_grad, grad_scale=None):
    """Cross entropy from ``softmax_ce_soft`` plus ε₁·Σ_c w_c q_c (1 - p_c).

    Gradient of the extra term: ε₁·p_k·(Σ_c w_c q_c p_c - w_k q_k).
    """
    loss, grad = softmax_ce_soft(
        xp, x, y, class_weight=class_weight, smoothing=smoothing, with_grad=with_grad
    )
    wq = smoothed_weighted_target(xp, y, class_weight=class_weight, smoothing=smoothing)
    _, _, e, s, _ = softmax_stats(xp, x)
    p = e / s
    loss = loss + epsilon * xp.sum(wq * (1 - p), axis=-1)
    if not with_grad:
        return loss, None
    expected = xp.sum(wq * p, axis=-1, keepdims=True)
    grad = grad + epsilon * p * (expected - wq)
    return loss, _scaled(xp, grad, grad_scale, class_axis=True)


def probs_poly1_soft(
    xp, p, y, *, epsilon, class_weight, smoothing, eps, with_grad, grad_scale=None
):
    """Cross entropy from ``probs_ce_soft`` (log clipped) plus ε₁·Σ_c w_c q_c (1 - p_c)."""
    loss, grad = probs_ce_soft(
        xp, p, y, class_weight=class_weight, smoothing=smoothing, eps=eps, with_grad=with_grad
    )
    wq = smoothed_weighted_target(xp, y, class_weight=class_weight, smoothing=smoothing)
    loss = loss + epsilon * xp.sum(wq * (1 - p), axis=-1)
    if not with_grad:
        return loss, None
    return loss, _scaled(xp, grad - epsilon * wq, grad_scale, class_axis=True)
