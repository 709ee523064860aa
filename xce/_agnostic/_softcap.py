"""Logit soft-capping and the z-loss: what the softmax cross-entropy kernels add on request.

With a cap c the kernels see x̃ = c·tanh(x / c) instead of x (Gemma 2), and every term,
label smoothing and class weights included, is computed from x̃; the gradient goes back
through the cap by the chain rule, ∂x̃/∂x = 1 - tanh²(x / c). The z-loss (PaLM) adds
λ·w·(log Z)² per sample, log Z = logsumexp(x̃) over the classes and w the sample's class
weight (the ω of the mean's denominator: 1 without class weights); its gradient in x̃ is
2λ·w·log Z·softmax(x̃), a multiple of the softmax the cross entropy's gradient already holds,
so it costs one more coefficient per row, not another pass.
"""

from __future__ import annotations

from ._blocks import is_python_zero

__all__ = ["soft_cap", "with_z_loss"]


def soft_cap(xp, x, softcap, with_grad):
    """``(x̃, slope)``: c·tanh(x / c) and, with ``with_grad``, ∂x̃/∂x = 1 - tanh²(x / c)
    (``None`` without it). Without a cap (``softcap`` ``None``): ``(x, None)``."""
    if softcap is None:
        return x, None
    t = xp.tanh(x / softcap)
    return softcap * t, (1 - t * t) if with_grad else None


def with_z_loss(xp, ce, m, log_s, *, z_loss, weight, parts):
    """The per-sample loss with the z-loss term, from the cross entropy ``ce`` and the
    softmax statistics (row shift ``m``, log Σ exp(x̃ - m)), all with a trailing axis of 1.

    Returns ``(loss, coefficient, parts)``: the loss of the batch shape, the z-loss's
    coefficient 2λ·w·log Z of softmax(x̃) in the gradient (trailing axis kept; ``None``
    without a z-loss), and with ``parts`` the tuple (loss, cross entropy, z-loss term, log Z)
    per sample (else ``None``). ``weight`` is w (``None``: 1).
    """
    active = not is_python_zero(z_loss)
    if not active and not parts:
        return ce[..., 0], None, None
    log_z = m + log_s
    if active:
        scale = z_loss if weight is None else z_loss * weight
        term = scale * (log_z * log_z)
        coefficient = (2 * scale) * log_z
        loss = ce + term
    else:
        term, coefficient, loss = xp.zeros_like(ce), None, ce
    if not parts:
        return loss[..., 0], coefficient, None
    return loss[..., 0], coefficient, (loss[..., 0], ce[..., 0], term[..., 0], log_z[..., 0])
