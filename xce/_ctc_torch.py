"""The CTC kernel on torch tensors, as an ``autograd.Function``.

Autograd over the time loop would record T steps of (N, 2S+1) operations and keep every
intermediate; the forward–backward algorithm gives the exact gradient in one more sweep, so
the Function computes it with the loss and its backward only scales it. CPU tensors run the
NumPy kernel on views of their memory (no copy); other devices run the generic kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._agnostic._ctc import ctc_generic
from ._array_api import array_namespace

__all__ = ["ctc_torch", "log_softmax", "on_numpy_views"]


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


def log_softmax(x):
    """``log_softmax`` over the classes (last axis), differentiable by autograd."""
    return torch.log_softmax(x, dim=-1)


def on_numpy_views(driver, arrays, options):
    """``driver(*arrays, **options)`` run on NumPy views of CPU tensors (float32 / float64
    predictions that do not require grad), its results as tensors again: the NumPy driver
    is one pass of NumPy calls where the tensor one pays torch's per-operation cost several
    times over. ``None`` where the call does not qualify."""
    y_pred = arrays[1]
    if y_pred.requires_grad or y_pred.dtype not in (torch.float32, torch.float64):
        return None
    values = list(arrays) + list(options.values())
    for a in values:
        if isinstance(a, torch.Tensor) and (a.device.type != "cpu" or a.requires_grad):
            return None

    def view(a):
        return a.numpy() if isinstance(a, torch.Tensor) else a

    value, grad = driver(*(view(a) for a in arrays), **{k: view(v) for k, v in options.items()})

    def tensor(a):
        return torch.from_numpy(np.asarray(a))

    value = tuple(tensor(v) for v in value) if isinstance(value, tuple) else tensor(value)
    return value, None if grad is None else tensor(grad)
