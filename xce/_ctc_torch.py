"""The CTC kernel on torch tensors, as an ``autograd.Function``.

Autograd over the time loop would record T steps of (N, 2S+1) operations and keep every
intermediate; the forward–backward algorithm gives the exact gradient in one more sweep, so
the Function computes it with the loss and its backward only scales it. CPU tensors run the
NumPy kernel on views of their memory (no copy); other devices run the generic kernel.
"""

from __future__ import annotations

from typing import Any

import torch

from ._agnostic._ctc import ctc_generic
from ._array_api import array_namespace

__all__ = ["ctc_torch"]


def _run(log_probs, ext, skip, t_len, l_len, *, with_grad, fast):
    """(nll, grad) without autograd."""
    if fast and log_probs.device.type == "cpu":
        from ._ctc_numpy import ctc_numpy

        log_p, grad = ctc_numpy(
            log_probs.numpy(), ext.numpy(), skip.numpy(), t_len.numpy(), l_len.numpy(),
            with_grad=with_grad,
        )  # fmt: skip
        return -torch.from_numpy(log_p), None if grad is None else torch.from_numpy(grad)
    xp = array_namespace(log_probs)
    log_p, grad = ctc_generic(xp, log_probs, ext, skip, t_len, l_len, with_grad=with_grad)
    return -log_p, grad


class _NegativeLogLikelihood(torch.autograd.Function):
    """nll (differentiable, with the gradient saved) and the gradient itself (not)."""

    @staticmethod
    def forward(ctx: Any, log_probs, ext, skip, t_len, l_len, fast):
        nll, grad = _run(log_probs.detach(), ext, skip, t_len, l_len, with_grad=True, fast=fast)
        ctx.save_for_backward(grad)
        ctx.mark_non_differentiable(grad)
        return nll, grad

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_nll, _grad_of_grad):
        (grad,) = ctx.saved_tensors
        return grad_nll[:, None, None] * grad, None, None, None, None, None


def ctc_torch(log_probs, ext, skip, t_len, l_len, *, with_grad, fast):
    """(nll, grad or None); differentiable in ``log_probs`` when it requires grad."""
    if log_probs.requires_grad and torch.is_grad_enabled():
        nll, grad = _NegativeLogLikelihood.apply(log_probs, ext, skip, t_len, l_len, fast)
        return nll, grad if with_grad else None
    return _run(log_probs.detach(), ext, skip, t_len, l_len, with_grad=with_grad, fast=fast)
