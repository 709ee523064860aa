"""The torch plain lanes: option-free calls on CPU logits in a few torch calls, the chunked
kernels for large inputs."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from ..._array_api import array_namespace
from .. import _config
from .._plain import first_row_may_be_probabilities, generic_kernel, run_plain
from ._host import checked_labels, generic_on_host, host_view, on_host, probabilities_on_host
from ._kernels import (
    in_unit_interval,
    recording,
    sigmoid_bce,
    soft_targets_fit,
    softmax_ce_labels,
    softmax_ce_soft,
)

__all__ = ["generic_small", "plain_binary", "plain_probabilities", "plain_soft", "plain_sparse"]

_FLOATS = (torch.float32, torch.float64)


def plain_sparse(labels, x, *, reduction, with_grad, smoothing=0.0, ignore_index=None,
                 class_weight=None):  # fmt: skip
    """The most common call, logits and int64 labels on the CPU with no option besides label
    smoothing, ``ignore_index`` and class weights.

    Returns ``None`` unless every condition holds at a glance; the caller then takes the full
    path, which also raises the proper error for bad input. After one read of the largest
    label, an input up to one chunk is one ``F.cross_entropy`` call (autograd intact), or one
    log-softmax for ``value_and_grad``, torch's own bounds check rejecting a negative label;
    larger ones read the smallest label too and run over the row chunks below.
    ``value_and_grad`` on a few thousand logits runs NumPy's short path on views instead
    (:mod:`._host`), class weights included. Ignored labels count for nothing (loss and
    gradient 0, the mean over the others, 0 over none). Class weights (a float CPU tensor of
    one weight per class, outside any graph) go to torch's own calls, the mean dividing by
    the counted labels' weights, ω = w[y]. The checks are ordered and spelled for a
    (64, 10) call, where each tensor attribute read is a visible share of torch's own call.
    """
    if type(labels) is not torch.Tensor or labels.dtype is not torch.int64:
        return None
    shape = x.shape
    if (
        x.dtype not in _FLOATS
        or not shape  # a 0-d x: no class axis
        or labels.shape != shape[:-1]
        or shape[-1] < 2
        or not (x.is_cpu and labels.is_cpu)
        or x.numel() == 0  # no labels to read; with C ≥ 2 the same as labels.numel() == 0
    ):
        return None
    n_classes = shape[-1]
    if class_weight is not None:
        if (
            type(class_weight) is not torch.Tensor
            or class_weight.shape != (n_classes,)
            or class_weight.dtype not in _FLOATS
            or not class_weight.is_cpu
            or recording(class_weight)  # nll_loss is not differentiable in its weight
        ):
            return None  # the full path converts, refuses or differentiates it
        class_weight = class_weight.to(x.dtype)
    # value_and_grad on a small input: a handful of NumPy calls on views instead of a dozen
    # torch calls. (The forward stays one F.cross_entropy call, fewer µs than NumPy's reads,
    # also with ignore_index or class weights: 59 and 76 µs at (64, 10) against 73 and 90.)
    small_host = with_grad and not x.requires_grad
    x_view = host_view(x) if small_host else None
    weight_view = None if class_weight is None or x_view is None else host_view(class_weight)
    if x_view is not None and (class_weight is None or weight_view is not None):
        checked = checked_labels(host_view(labels), n_classes, ignore_index)
        if checked is None or first_row_may_be_probabilities(x_view):
            return None
        return on_host("small_labels", x_view, checked[0], reduction=reduction,
                       with_grad=with_grad, smoothing=smoothing, valid=checked[1],
                       class_weight=weight_view)  # fmt: skip
    if first_row_may_be_probabilities(x):
        return None
    largest = labels.max().item()
    if largest >= n_classes and largest != ignore_index:
        return None
    small = x.nbytes <= _config.TORCH_CHUNK_BYTES
    one_call = (
        not with_grad
        and len(shape) <= 2
        and (small or (x.requires_grad and torch.is_grad_enabled()))
    )
    if one_call:
        return _one_call(x, labels, reduction, smoothing, ignore_index, class_weight)
    if ignore_index is not None:
        return None  # the full path's masks (a padded batch's ignored rows)
    r = 1.0 / labels.numel() if reduction == "mean" else 1.0  # the gradient's scale
    plain = not smoothing and class_weight is None
    if with_grad and len(shape) == 2 and small and not x.requires_grad and plain:
        # One chunk, and no graph to keep out of (torch.no_grad() itself costs a small
        # call's time): r·(softmax - onehot) from one log-softmax. The lower bound is
        # torch's own check (see _one_call).
        log_p = torch.log_softmax(x, dim=-1)
        try:
            value = F.nll_loss(log_p, labels, ignore_index=n_classes, reduction=reduction)
        except IndexError:  # a label below 0: the full path raises the proper error
            return None
        if not _finite(value):  # an infinite or NaN logit: the full path's rules decide
            return None
        grad = log_p.exp_()
        if r != 1.0:
            grad.mul_(r)
        n = labels.numel()
        grad.scatter_add_(1, labels.unsqueeze(1), torch.full((n, 1), -r, dtype=x.dtype))
        return value, grad
    if labels.min().item() < 0:
        return None
    omega = None
    if class_weight is not None and reduction == "mean":
        omega = class_weight[labels].sum().item()
        r = 1.0 / omega if omega else 0.0  # a mean over no weight is 0
    generic = generic_kernel("softmax_ce_labels", array_namespace(x), float(smoothing))
    if class_weight is not None:
        generic = functools.partial(generic, class_weight=class_weight)
    loss, grad = softmax_ce_labels(x, labels, class_weight=class_weight, smoothing=smoothing,
                                   with_grad=with_grad, grad_scale=r, generic=generic)  # fmt: skip
    if reduction == "none":
        return loss, grad
    total = loss.sum()
    if reduction == "sum":
        return total, grad
    if omega is None:
        return total / labels.numel(), grad
    return (total / omega if omega else _nothing(total)), grad


def _nothing(total):
    """A mean over no weight: 0, but a NaN total stays NaN (the shared rule); selected, so
    that autograd still reaches the logits (with a zero gradient)."""
    return torch.where(torch.isnan(total), total, torch.zeros_like(total))


def _one_call(x, labels, reduction, smoothing, ignore_index, class_weight):
    """(N, C) or one sample (C,) in one ``F.cross_entropy`` call, autograd intact, or
    ``None``. The labels' lower bound is torch's own check, which raises for a label below 0
    unless it is ignore_index: without one, C, which no label equals (the largest is below
    C). One reduction of the labels instead of two is a visible share of a (64, 10) call."""
    n_classes = x.shape[-1]
    ignore = n_classes if ignore_index is None else ignore_index
    # torch's mean over no label is NaN, xce's is 0; with class weights and smoothing torch
    # divides by another sum: a mean with either is Σ ℓ / Σ ω here
    by_count = reduction == "mean" and (ignore_index is not None or class_weight is not None)
    try:
        value = F.cross_entropy(x, labels, weight=class_weight, ignore_index=ignore,
                                label_smoothing=smoothing,
                                reduction="sum" if by_count else reduction)  # fmt: skip
    except IndexError:  # a label below 0 (or above C): the full path raises the error
        return None
    if by_count:
        valid = None if ignore_index is None else labels != ignore_index
        if class_weight is None:
            value = value / valid.sum().clamp_(min=1)
        else:
            omega = class_weight[labels if valid is None else labels.masked_fill(~valid, 0)]
            count = (omega.sum() if valid is None else omega[valid].sum()).item()
            value = value / count if count else _nothing(value)
    # An infinite or NaN logit: the full path's kernel applies xce's rule to its rows
    if not _finite(value):
        return None
    return value, None


def _plain_targets(y, x):
    """Whether float targets ``y`` for logits ``x`` fit a plain lane: CPU tensors of one dtype
    and shape, no graph to record. The kernel checks their values chunk by chunk while they are
    in cache; a chunk outside [0, 1] makes the lane return ``None`` (the full path raises)."""
    if (
        type(y) is not torch.Tensor
        or x.dtype not in _FLOATS
        or y.dtype != x.dtype
        or y.shape != x.shape
        or not x.is_cpu
        or not y.is_cpu
        or x.ndim == 0
        or x.numel() == 0
        or recording(x, y)
    ):
        return False
    return True


def _finite(value):
    """Whether a result is finite: one read of a scalar, else of its sum (a third of the
    time of ``isfinite().all()`` on a few hundred entries; a sum of finite values that
    overflows only sends the call to the full path)."""
    return math.isfinite((value if value.ndim == 0 else value.detach().sum()).item())


def _plain_reduction(loss, reduction):
    if reduction == "none":
        return loss
    total = loss.sum()
    return total / loss.numel() if reduction == "mean" else total


def plain_soft(y, x, *, reduction, with_grad, smoothing=0.0):
    """Soft targets on logits with no option besides label smoothing, in few calls (see
    :func:`plain_sparse`)."""
    if x.ndim == 0 or x.shape[-1] < 2 or not _plain_targets(y, x):
        return None

    x_view = host_view(x)
    if first_row_may_be_probabilities(x if x_view is None else x_view):
        return None
    if x_view is not None:
        result = on_host("small_soft", x_view, y.numpy(), reduction=reduction,
                         with_grad=with_grad, smoothing=smoothing)  # fmt: skip
        if result is not None:  # else bad targets (the full path raises) or a non-finite loss
            return result
    # Up to one chunk's size the chunked kernel would make the same one call, after more
    # bookkeeping than a (256, 1000) call's arithmetic (measured: 470 against 660 µs).
    if x.ndim == 2 and x.nbytes <= _config.TORCH_CHUNK_BYTES and not with_grad:
        if not soft_targets_fit(y):
            return None
        value = F.cross_entropy(x, y, reduction=reduction, label_smoothing=smoothing)
        # not finite: a -inf logit, where 0·log 0 is NaN there; the full path's rules decide
        return (value, None) if _finite(value) else None
    r = torch.tensor(x.shape[-1] / x.numel() if reduction == "mean" else 1.0, dtype=x.dtype)
    return run_plain(softmax_ce_soft, x, y, reduction=reduction, with_grad=with_grad,
                     grad_scale=r, reduce=_plain_reduction, smoothing=smoothing)  # fmt: skip


def plain_binary(y, x, *, reduction, with_grad, smoothing=0.0):
    """Binary targets on logits with no option besides label smoothing, in few calls (see
    :func:`plain_sparse`)."""
    if not _plain_targets(y, x):
        return None
    x_view = host_view(x)
    if x_view is not None:
        result = on_host("small_binary", x_view, y.numpy(), reduction=reduction,
                         with_grad=with_grad, smoothing=smoothing)  # fmt: skip
        if result is not None:
            return result
    if x.numel() <= _config.TORCH_SMALL_ELEMENTS:
        if not in_unit_interval(y):
            return None
        if smoothing:  # q = (1-ε)·y + ε/2, a new tensor
            y = y * (1.0 - smoothing) + smoothing / 2
        # (1-q)·softplus(x) + q·softplus(-x), softplus(x) = logaddexp(x, 0): both terms ≥ 0
        # and each softplus exact, as in the kernel; a NaN from 0·inf sends it to the full path.
        zero = torch.zeros((), dtype=x.dtype)
        loss = (1 - y) * torch.logaddexp(x, zero) + y * torch.logaddexp(-x, zero)
        value = _plain_reduction(loss, reduction)
        if not _finite(value):
            return None
        grad = None
        if with_grad:
            grad = torch.sigmoid(x) - y
            if reduction == "mean":
                grad /= x.numel()
        return value, grad
    r = torch.tensor(1.0 / x.numel() if reduction == "mean" else 1.0, dtype=x.dtype)
    if reduction == "none":
        return run_plain(sigmoid_bce, x, y, reduction=reduction, with_grad=with_grad,
                         grad_scale=r, reduce=_plain_reduction, smoothing=smoothing)  # fmt: skip

    def from_total(total, reduction):  # as the shared reduction: Σ ℓ, or Σ ℓ / (N·C)
        return total if reduction == "sum" else total / x.numel()

    # A total needs no (N, C) array of entries: the kernel sums each chunk as it goes.
    return run_plain(sigmoid_bce, x, y, reduction=reduction, with_grad=with_grad,
                     grad_scale=r, reduce=from_total, smoothing=smoothing,
                     summed=True)  # fmt: skip


def _views_outside_graph(y, x):
    """``(y_view, x_view)``, NumPy views of targets ``y`` and predictions ``x`` when both are
    small CPU tensors that autograd does not record (:func:`._host.host_view`), else
    ``None``."""
    if type(y) is not torch.Tensor or recording(x, y):
        return None
    x_view, y_view = host_view(x), host_view(y)
    return None if x_view is None or y_view is None else (y_view, x_view)


def plain_probabilities(lane, y, p, *, reduction, with_grad, smoothing=0.0, ignore_index=None):
    """Probabilities (``from_logits=False``) on small CPU tensors outside any graph: NumPy's
    lane on views of their memory (:mod:`._host`); ``None`` for every other call, which the
    full path serves (autograd included)."""
    views = _views_outside_graph(y, p)
    if views is None:
        return None
    return probabilities_on_host(lane, *views, reduction=reduction, with_grad=with_grad,
                                 smoothing=smoothing, ignore_index=ignore_index)  # fmt: skip


def generic_small(kernel, y, x, *, binary, from_logits, reduction, with_grad, **options):
    """A small call of a loss without a native kernel (focal, poly-1) on CPU tensors outside
    any graph: NumPy's :func:`xce._fast._numpy._generic_small.generic_small` on views of their
    memory; ``None`` for every other call, which the full path serves (autograd included)."""
    views = _views_outside_graph(y, x)
    if views is None:
        return None
    return generic_on_host(kernel, *views, binary=binary, from_logits=from_logits,
                           reduction=reduction, with_grad=with_grad, **options)  # fmt: skip
