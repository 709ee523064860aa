"""PyTorch fast paths for the three cross entropies on logits.

Sparse (labels): ``F.cross_entropy(..., reduction="none")`` computes exactly xce's
per-sample loss ℓ = (1-ε)·w_y·(lse - x_y) + (ε/C)·Σ_c w_c·(lse - x_c) (the log-softmax
shifted by the max, class weights inside the sum, smoothing included), in one native kernel
with autograd intact, for every row whose logits are finite (the others: see
:func:`softmax_ce_labels`). For ``value_and_grad`` one log-softmax pass gives both the loss and,
exponentiated, the gradient, written once into the array returned; weighting, masks and the
reduction stay in the shared code, so xce's rules (a mean over nothing is 0, NaN rows for
unchecked labels) are unchanged. Labels arrive safe. On the CPU both run over row chunks of
~8 MiB (below): faster, and bounded extra memory.
Soft targets (:func:`softmax_ce_soft`) and binary (:func:`sigmoid_bce`) run over chunks on
the CPU too; their docstrings say where they hand over to the generic kernel.
"""

from __future__ import annotations

import math

# This module is imported only once a torch tensor has been seen (see ``xce._fast``), so torch
# is loaded by then; an import inside each function costs ~1 µs of a 20 µs small call.
import torch
import torch.nn.functional as F

from .._compat import array_namespace
from . import _generic, run_plain

_FLOATS = (torch.float32, torch.float64)


def handles(x) -> bool:
    return x.ndim >= 1


def plain_sparse(labels, x, *, reduction, with_grad):
    """The most common call, logits and in-range int64 labels on the CPU with no option.

    Returns ``None`` unless every condition holds at a glance; the caller then takes the full
    path, which also raises the proper error for bad input. After one read of the largest
    label, a small input is one ``F.cross_entropy`` call (autograd intact), or one
    log-softmax for ``value_and_grad``, torch's own bounds check rejecting a negative label;
    larger ones read the smallest label too and run over the row chunks below. The checks are
    ordered and spelled for a (64, 10) call, where each tensor attribute read is ~0.1-1 µs of
    torch's own ~20 µs.
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
    if labels.max().item() >= n_classes:
        return None
    r = 1.0 / labels.numel() if reduction == "mean" else 1.0  # the gradient's scale
    small = x.nbytes <= _CHUNK_BYTES
    one_call = (
        not with_grad
        and len(shape) <= 2
        and (small or (x.requires_grad and torch.is_grad_enabled()))
    )
    if one_call or (with_grad and len(shape) == 2 and small and not x.requires_grad):
        # The lower bound is torch's own check, which raises for a label below 0 unless it is
        # ignore_index: here C, which no label equals (the largest is below C). One reduction
        # of the labels instead of two is a fifth of a (64, 10) call.
        try:
            if one_call:  # (N, C) or one sample (C,), in one call: no reshape
                value = F.cross_entropy(x, labels, ignore_index=n_classes, reduction=reduction)
            else:
                # One chunk, and no graph to keep out of (torch.no_grad() itself costs a small
                # call's time): r·(softmax - onehot) from one log-softmax.
                log_p = torch.log_softmax(x, dim=-1)
                value = F.nll_loss(log_p, labels, ignore_index=n_classes, reduction=reduction)
        except IndexError:  # a label below 0: the full path raises the proper error
            return None
        # An infinite or NaN logit: the full path's kernel applies xce's rule to its rows
        if not (math.isfinite(value.item()) if value.ndim == 0 else torch.isfinite(value).all()):
            return None
        if one_call:
            return value, None
        grad = log_p.exp_()
        if r != 1.0:
            grad.mul_(r)
        n = labels.numel()
        grad.scatter_add_(1, labels.unsqueeze(1), torch.full((n, 1), -r, dtype=x.dtype))
        return value, grad
    if labels.min().item() < 0:
        return None
    generic = _generic("softmax_ce_labels", array_namespace(x))
    loss, grad = softmax_ce_labels(x, labels, class_weight=None, smoothing=0.0,
                                   with_grad=with_grad, grad_scale=r, generic=generic)  # fmt: skip
    if reduction == "none":
        return loss, grad
    total = loss.sum()
    return (total / labels.numel() if reduction == "mean" else total), grad


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
        or _recording(x, y)
    ):
        return False
    return True


def _in_unit_interval(a):
    lowest, highest = torch.aminmax(a)
    return bool(lowest >= 0) and bool(highest <= 1)  # NaN fails


def _plain_reduction(loss, reduction):
    if reduction == "none":
        return loss
    total = loss.sum()
    return total / loss.numel() if reduction == "mean" else total


# Below this many elements a call's time is its torch calls (a few µs each), not arithmetic:
# the plain lanes then take a short sequence of whole-array calls instead of the chunked kernels.
_SMALL_ELEMENTS = 1 << 16


def plain_soft(y, x, *, reduction, with_grad):
    """Soft targets on logits with no option, in few calls (see :func:`plain_sparse`)."""
    if x.ndim == 0 or x.shape[-1] < 2 or not _plain_targets(y, x):
        return None

    if x.ndim == 2 and x.numel() <= _SMALL_ELEMENTS and not with_grad:
        if not _in_unit_interval(y):
            return None
        value = F.cross_entropy(x, y, reduction=reduction)
        # not finite: a -inf logit, where 0·log 0 is NaN there; the full path's rules decide
        return (value, None) if bool(torch.isfinite(value).all()) else None
    r = torch.tensor(x.shape[-1] / x.numel() if reduction == "mean" else 1.0, dtype=x.dtype)
    return run_plain(softmax_ce_soft, x, y, reduction=reduction, with_grad=with_grad,
                     grad_scale=r, reduce=_plain_reduction)  # fmt: skip


def plain_binary(y, x, *, reduction, with_grad):
    """Binary targets on logits with no option, in few calls (see :func:`plain_sparse`)."""
    if not _plain_targets(y, x):
        return None

    if x.numel() <= _SMALL_ELEMENTS:
        if not _in_unit_interval(y):
            return None
        # (1-y)·softplus(x) + y·softplus(-x), softplus(x) = logaddexp(x, 0): both terms ≥ 0
        # and each softplus exact, as in the kernel; a NaN from 0·inf sends it to the full path.
        zero = torch.zeros((), dtype=x.dtype)
        loss = (1 - y) * torch.logaddexp(x, zero) + y * torch.logaddexp(-x, zero)
        value = _plain_reduction(loss, reduction)
        if not bool(torch.isfinite(value).all()):
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
                         grad_scale=r, reduce=_plain_reduction)  # fmt: skip

    def from_total(total, reduction):  # as the shared reduction: Σ ℓ, or Σ ℓ / (N·C)
        return total if reduction == "sum" else total / x.numel()

    # A total needs no (N, C) array of entries: the kernel sums each chunk as it goes.
    return run_plain(sigmoid_bce, x, y, reduction=reduction, with_grad=with_grad,
                     grad_scale=r, reduce=from_total, summed=True)  # fmt: skip


# Rows per chunk on the CPU: ~8 MiB of logits, so each chunk's log-softmax temporary stays in
# cache and is reused by the allocator, instead of one fresh (N, C) buffer (page-faulted in with
# glibc's default mmap threshold) per call. Measured at (4096, 32000) float32: 2x faster than one
# whole-array call with the default allocator, and peak extra memory ~1.5% of the logits.
_CHUNK_BYTES = 8 * 1024 * 1024


# The binary kernel keeps six chunk-sized buffers live: ~1 MiB chunks keep them in L2.
_ELEMENTWISE_CHUNK_BYTES = 1024 * 1024

# NumPy advises transparent huge pages for each of its buffers of 4 MiB or more; torch's CPU
# allocator does not (unless THP_MEM_ALLOC_ENABLE is set), so a fresh buffer is faulted in and
# zeroed by the kernel 4 KiB at a time. Measured on the project machine (THP in "madvise" mode),
# torch.empty + exp into it at (4096, 32000) float32: 222 ms, 103 ms with the advice.
_HUGE_PAGE_MIN_BYTES = 4 * 1024 * 1024
_madvise = None  # libc's madvise, found on first use; False where there is none


def _empty_like(x):
    """``torch.empty_like(x)``; on the CPU, from 4 MiB, with huge pages advised as NumPy
    does: for the full-size arrays these kernels return (gradients, entries)."""
    out = torch.empty_like(x)
    if out.is_cpu:
        storage = out.untyped_storage()
        if storage.nbytes() >= _HUGE_PAGE_MIN_BYTES:
            _advise_huge_pages(storage.data_ptr(), storage.nbytes())
    return out


def _advise_huge_pages(address, size):
    """madvise(MADV_HUGEPAGE) over the whole pages of [address, address + size); a hint: any
    failure leaves the memory as it was."""
    global _madvise
    import mmap

    if _madvise is None:
        _madvise = False
        if hasattr(mmap, "MADV_HUGEPAGE"):  # Linux
            import ctypes

            try:
                madvise = ctypes.CDLL(None, use_errno=True).madvise
            except (OSError, AttributeError):
                pass
            else:
                madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
                madvise.restype = ctypes.c_int
                _madvise = madvise
    page = mmap.PAGESIZE
    start = -(-address // page) * page
    end = (address + size) // page * page
    if _madvise and end > start:
        _madvise(start, end - start, mmap.MADV_HUGEPAGE)


def _chunks(x, chunk_bytes=None):
    """Row ranges to evaluate ``x`` (rows, C) in: one range on GPUs (each launch costs more
    than the cache saves) or for small inputs."""
    n_rows = x.shape[0]
    chunk_bytes = chunk_bytes or _CHUNK_BYTES
    step = n_rows if not x.is_cpu else chunk_bytes // (x.shape[1] * x.element_size())
    step = max(1, step)  # an empty batch on a GPU must not make a zero step
    return [(lo, min(lo + step, n_rows)) for lo in range(0, n_rows, step)] or [(0, 0)]


def softmax_ce_labels(x, labels, *, class_weight, smoothing, with_grad=False, grad_scale=None,
                      generic=None):  # fmt: skip
    """ℓ from integer labels by ``F.cross_entropy`` (see the module docstring).

    On the CPU, rows whose loss is not finite (an infinite or NaN logit) are redone by
    ``generic``, the agnostic kernel: torch's log-softmax makes a whole row NaN when one of its
    logits is +inf, where xce's rule gives +inf (the label's logit finite), as on every other
    backend. GPU tensors are not checked (the check would wait for the device).
    """
    n_classes = x.shape[-1]
    flat_x = x.reshape(-1, n_classes)
    flat_labels = labels.reshape(-1)
    chunks = _chunks(flat_x)
    check = generic is not None and x.is_cpu

    def redo(lo, hi, chunk_loss, scale=None):  # the generic rows where the loss is not finite
        if not check or torch.isfinite(chunk_loss).all():
            return chunk_loss, None
        if scale is not None and not isinstance(scale, torch.Tensor):
            scale = torch.as_tensor(scale, dtype=x.dtype)
        return generic(flat_x[lo:hi], flat_labels[lo:hi], with_grad=with_grad, grad_scale=scale)

    if not with_grad:

        def rows(lo, hi):
            loss = F.cross_entropy(
                flat_x[lo:hi], flat_labels[lo:hi], weight=class_weight, reduction="none",
                label_smoothing=float(smoothing),
            )  # fmt: skip
            return redo(lo, hi, loss)[0]

        # Under autograd one call: a graph through row slices would allocate a full-size
        # gradient per slice on the way back.
        if len(chunks) == 1 or (torch.is_grad_enabled() and x.requires_grad):
            return rows(0, flat_x.shape[0]).reshape(labels.shape), None
        loss = torch.empty(flat_labels.shape, dtype=x.dtype, device=x.device)
        for lo, hi in chunks:
            loss[lo:hi] = rows(lo, hi)
        return loss.reshape(labels.shape), None

    r = (
        grad_scale
        if grad_scale is None or isinstance(grad_scale, float)
        else grad_scale.reshape(-1)
    )
    r = 1.0 if r is None else r
    with torch.no_grad():  # the gradient is analytic: no graph to record
        loss = torch.empty(flat_labels.shape, dtype=x.dtype, device=x.device)
        grad = _empty_like(flat_x)
        for lo, hi in chunks:
            r_rows = r[lo:hi] if isinstance(r, torch.Tensor) and r.numel() > 1 else r
            chunk_loss = _loss_and_grad_rows(
                flat_x[lo:hi], flat_labels[lo:hi], grad[lo:hi], r_rows,
                class_weight=class_weight, smoothing=smoothing,
            )  # fmt: skip
            chunk_loss, chunk_grad = redo(lo, hi, chunk_loss, r_rows)
            loss[lo:hi] = chunk_loss
            if chunk_grad is not None:
                grad[lo:hi] = chunk_grad
    return loss.reshape(labels.shape), grad.reshape(x.shape)


def _loss_and_grad_rows(x, labels, grad, r, *, class_weight, smoothing):
    """The loss of rows ``x`` (rows, C); their gradient, scaled by ``r``, written into ``grad``.

    One log-softmax gives the loss and, exponentiated straight into ``grad``, the softmax.
    """
    n_classes = x.shape[-1]
    log_p = torch.log_softmax(x, dim=-1)
    loss = F.nll_loss(log_p, labels, weight=class_weight, reduction="none")
    hard = 1.0 - smoothing
    w_y = None if class_weight is None else class_weight[labels]
    mass = hard if w_y is None else hard * w_y
    if smoothing:
        uniform = smoothing / n_classes
        weighted = log_p if class_weight is None else log_p * class_weight
        loss = hard * loss - uniform * weighted.sum(dim=-1)
        mass = mass + uniform * (n_classes if class_weight is None else class_weight.sum())
    torch.exp(log_p, out=grad)  # the softmax, written once into the buffer we return
    row = mass * r
    grad.mul_(row.unsqueeze(-1) if isinstance(row, torch.Tensor) and row.ndim else row)
    if smoothing:
        r_col = r.unsqueeze(-1) if isinstance(r, torch.Tensor) and r.ndim else r
        grad.sub_(uniform * r_col * (1.0 if class_weight is None else class_weight))
    label_share = hard * r if w_y is None else hard * w_y * r
    label_share = torch.as_tensor(label_share, dtype=grad.dtype, device=grad.device)
    grad.scatter_add_(1, labels.unsqueeze(-1), -label_share.expand(labels.shape).unsqueeze(-1))
    return loss


def _recording(*tensors):
    return torch.is_grad_enabled() and any(
        isinstance(t, torch.Tensor) and t.requires_grad for t in tensors
    )


def _rows_of(scale, lo, hi):
    return scale if scale is None or scale.ndim == 0 else scale[lo:hi]


def _flat_scale(grad_scale, shape, flat_shape):
    """The gradient's scale as ``None``, a 0-d tensor, or ``shape``'s values in ``flat_shape``."""
    if grad_scale is None or grad_scale.ndim == 0:
        return grad_scale
    return grad_scale.expand(shape).reshape(flat_shape)


def _scale_rows(a, r):
    if r is not None:
        a.mul_(r.unsqueeze(-1) if r.ndim and r.ndim < a.ndim else r)


def _generic_rows(generic, x, y, loss, grad, scale, lo, hi):
    """Rows lo:hi by the generic kernel: the chunks whose fast result is not finite (infinite
    or NaN inputs), where its rules decide, e.g. 0·inf = 0 for a zero coefficient."""
    block_loss, block_grad = generic(
        x[lo:hi], y[lo:hi], with_grad=grad is not None, grad_scale=_rows_of(scale, lo, hi)
    )
    if loss is not None:
        loss[lo:hi] = block_loss
    if grad is not None:
        grad[lo:hi] = block_grad
    return block_loss


def softmax_ce_soft(x, y, *, class_weight, smoothing, generic, with_grad=False, grad_scale=None,
                    check_targets=False):  # fmt: skip
    """ℓ = Σ_c w_c q_c (lse - x_c) from soft targets, on CPU tensors.

    ``F.cross_entropy`` with probability targets computes exactly this (-Σ w_c q_c log p_c,
    q = (1-ε)·y + ε/C) in one native kernel; it is run whole-array under autograd and over row
    chunks otherwise, and ``value_and_grad`` takes one log-softmax per chunk for both the
    loss and, exponentiated into the array returned, the gradient Σwq·softmax - wq. Where its
    result is not finite (0·log 0 on a -inf logit with no target mass is NaN there, 0 here)
    the generic kernel redoes the rows. GPU tensors take the generic kernel (no host sync).
    With ``check_targets`` (CPU chunks only) the result is ``None`` if a chunk's targets leave
    [0, 1], checked while the chunk is in cache.
    """
    if check_targets and (not x.is_cpu or _recording(x, y, class_weight)):
        if not _in_unit_interval(y):  # the chunks below check their own targets
            return None
    if not x.is_cpu:
        return generic(x, y, with_grad=with_grad, grad_scale=grad_scale)
    n_classes = x.shape[-1]
    options = {"weight": class_weight, "label_smoothing": float(smoothing), "reduction": "none"}
    if _recording(x, y, class_weight) and not with_grad:
        loss = F.cross_entropy(x.reshape(-1, n_classes), y.reshape(-1, n_classes), **options)
        if not torch.isfinite(loss).all():
            return generic(x, y, with_grad=False, grad_scale=grad_scale)
        return loss.reshape(x.shape[:-1]), None
    flat_x, flat_y = x.reshape(-1, n_classes), y.reshape(-1, n_classes)
    loss = torch.empty(flat_x.shape[:1], dtype=x.dtype)
    grad = _empty_like(flat_x) if with_grad else None
    scale = _flat_scale(grad_scale, x.shape[:-1], flat_x.shape[:1])
    with torch.no_grad():
        for lo, hi in _chunks(flat_x):
            xb, yb = flat_x[lo:hi], flat_y[lo:hi]
            if check_targets and not _in_unit_interval(yb):
                return None
            if not with_grad:
                chunk_loss = F.cross_entropy(xb, yb, **options)
            else:
                wq = yb
                if smoothing or class_weight is not None:
                    wq = yb * (1.0 - smoothing)
                    if smoothing:
                        wq += smoothing / n_classes
                    if class_weight is not None:
                        wq *= class_weight
                log_p = torch.log_softmax(xb, dim=-1)
                chunk_loss = -torch.linalg.vecdot(wq, log_p)
            if not torch.isfinite(chunk_loss).all():
                _generic_rows(generic, flat_x, flat_y, loss, grad, scale, lo, hi)
                continue
            loss[lo:hi] = chunk_loss
            if with_grad:
                gb = torch.exp(log_p, out=grad[lo:hi])
                gb.mul_(wq.sum(dim=-1, keepdim=True))
                gb.sub_(wq)
                _scale_rows(gb, _rows_of(scale, lo, hi))
    return loss.reshape(x.shape[:-1]), None if grad is None else grad.reshape(x.shape)


def sigmoid_bce(x, y, *, pos_weight, smoothing, generic, with_grad=False, grad_scale=None,
                check_targets=False, summed=False):  # fmt: skip
    """ℓ = (1-q)·max(x, 0) + a·q·max(-x, 0) + (1-q+a·q)·log1p(e^-|x|) on CPU tensors.

    The NumPy kernel's arithmetic, in place on chunk-sized buffers: three terms ≥ 0, so a
    confident right answer keeps its tiny loss (torch's own ``binary_cross_entropy_with_logits``,
    (1-q)·x - log σ(x), rounds it to 0). Under autograd, on GPUs, and for chunks whose result
    is not finite (infinite logits) the generic kernel runs instead. ``check_targets`` as in
    :func:`softmax_ce_soft`; ``summed`` returns Σ ℓ, summed chunk by chunk, with no array of
    entries.
    """
    if x.numel() == 0 or not x.is_cpu or _recording(x, y, pos_weight):
        if check_targets and x.numel() and not _in_unit_interval(y):
            return None
        loss, grad = generic(x, y, with_grad=with_grad, grad_scale=grad_scale)
        return (loss.sum() if summed else loss), grad
    n_cols = x.shape[-1]
    flat_x, flat_y = x.reshape(-1, n_cols), y.reshape(-1, n_cols)
    loss = None if summed else _empty_like(flat_x)
    chunk_sums = []  # with summed: Σ ℓ per chunk, in row order
    grad = _empty_like(flat_x) if with_grad else None
    scale = _flat_scale(grad_scale, x.shape, flat_x.shape)
    a = pos_weight
    chunks = _chunks(flat_x, _ELEMENTWISE_CHUNK_BYTES)
    rows = chunks[0][1] - chunks[0][0]
    buffers = [torch.empty((rows, n_cols), dtype=x.dtype) for _ in range(7 if summed else 6)]
    with torch.no_grad():
        for lo, hi in chunks:
            xb, yb = flat_x[lo:hi], flat_y[lo:hi]
            lb = buffers[6][: hi - lo] if summed else loss[lo:hi]
            if check_targets and not _in_unit_interval(yb):
                return None
            pos, neg, term, q, aq, coefficient = (b[: hi - lo] for b in buffers[:6])
            if smoothing:
                torch.mul(yb, 1.0 - smoothing, out=q).add_(smoothing / 2)
            else:
                q = yb  # the caller's y is never written
            if a is None:
                aq = q
            else:
                torch.mul(q, a, out=aq)
            if a is None:
                torch.neg(xb, out=lb)
                torch.minimum(xb, lb, out=lb)  # -|x|, exactly
                # (1-q)·max(x, 0) + q·max(-x, 0) = ([x > 0] - q)·x, as the NumPy kernel
                torch.gt(xb, 0, out=term).sub_(q).mul_(xb)  # [x > 0] written as 1.0 or 0.0
                if with_grad:
                    torch.clamp(xb, max=0, out=neg)
            else:
                torch.clamp(xb, min=0, out=pos)
                torch.clamp(xb, max=0, out=neg)
                torch.sub(neg, pos, out=lb)  # -|x|
                torch.mul(q, -1, out=term).add_(1).mul_(pos)  # (1-q)·max(x, 0), 1-q exact
            lb.exp_()  # e^-|x|
            if with_grad:  # σ(x) = e^min(x, 0) / (1 + e^-|x|)
                gb = torch.add(lb, 1, out=grad[lo:hi])
                torch.div(torch.exp(neg, out=pos), gb, out=gb)
            if a is not None:
                term.sub_(neg.mul_(aq))  # + a·q·max(-x, 0)
            lb.log1p_()
            if a is not None:
                torch.sub(aq, q, out=coefficient).add_(1)  # 1 - q + a·q
                lb.mul_(coefficient)
            lb.add_(term)
            chunk_sum = lb.sum()
            if not torch.isfinite(chunk_sum):
                block_loss = _generic_rows(generic, flat_x, flat_y, loss, grad, scale, lo, hi)
                chunk_sums.append(block_loss.sum())
                continue
            chunk_sums.append(chunk_sum)
            if with_grad:
                if a is not None:
                    gb.mul_(coefficient)
                gb.sub_(aq)
                _scale_rows(gb, _rows_of(scale, lo, hi))
    grad = None if grad is None else grad.reshape(x.shape)
    if summed:
        return torch.stack(chunk_sums).sum(), grad
    return loss.reshape(x.shape), grad
