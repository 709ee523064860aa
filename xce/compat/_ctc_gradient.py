"""The gradient PyTorch's and TensorFlow's CTC backward give, for the twins of
:mod:`xce.compat.torch` and :mod:`xce.compat.tf`, around the building block's loss."""

from __future__ import annotations

import math

from .._array_api import may_be_differentiated
from .._ctc_kernels import ctc_negative_log_likelihood
from .._types import Array, Namespace
from ._common import stop_gradient
from ._ctc_common import within

__all__ = ["framework_ctc"]


def framework_ctc(
    xp: Namespace,
    x: Array,
    log_probs: Array,
    labels: Array,
    input_lengths: Array,
    label_lengths: Array,
    blank: int,
    *,
    time_major: bool,
    infinite_rows: float | None,
) -> Array:
    """−log p per sequence (N,) from the building block, with the gradient that PyTorch's and
    TensorFlow's CTC backward give with respect to ``x``.

    ``log_probs`` (N, T, C) are computed from ``x`` held constant (``x`` itself, or its
    log_softmax), ``x`` being (T, N, C) with ``time_major``, else (N, T, C). Both frameworks
    return exp(log_probs) − γ at the frames of a sequence (γ the posterior occupancy, the
    building block's −gradient) and 0 past its length: for TensorFlow's logits that is the
    true gradient through the softmax; for PyTorch's log-probabilities it is the gradient
    with respect to the logits before a log_softmax, *not* ∂loss/∂log_probs (PyTorch's
    kernel assumes normalised inputs). An impossible sequence's frames get ``infinite_rows``
    (``None``: the formula, exp(log_probs)).

    Autodiff sees the value plus Σ (x − const x)·const(grad): 0 in value, that gradient to
    ``x`` (first order only; neither framework differentiates its CTC backward either).
    """
    differentiable = may_be_differentiated(x)
    nll, grad = ctc_negative_log_likelihood(
        log_probs, labels, input_lengths, label_lengths, blank=blank, with_grad=differentiable,
        validate=False,
    )  # fmt: skip
    if not differentiable or grad is None:
        return nll
    frames = within(xp, input_lengths, log_probs.shape[1])[:, :, None]
    grad = xp.where(frames, xp.exp(log_probs), xp.zeros_like(log_probs)) + grad
    infinite = nll == math.inf
    if infinite_rows is not None:
        rows = infinite[:, None, None] & frames  # past a sequence's length PyTorch gives 0
        grad = xp.where(rows, xp.full_like(grad, infinite_rows), grad)
    if time_major:
        grad = xp.permute_dims(grad, (1, 0, 2))
    constant = stop_gradient(x)
    delta = xp.where(xp.isfinite(constant), x - constant, xp.zeros_like(x))
    term = xp.sum(delta * xp.astype(grad, x.dtype), axis=(0, 2) if time_major else (1, 2))
    # The where keeps an impossible sequence's +inf; its zero cotangent times a NaN row of
    # ``grad`` still gives that row PyTorch's NaN gradient.
    return nll + xp.where(infinite, xp.zeros_like(term), xp.astype(term, nll.dtype))
