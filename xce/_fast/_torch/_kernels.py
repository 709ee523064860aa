"""The torch kernels for the three losses on logits, over row chunks on the CPU.

Sparse (labels): ``F.cross_entropy(..., reduction="none")`` computes exactly xce's
per-sample loss ℓ = (1-ε)·w_y·(lse - x_y) + (ε/C)·Σ_c w_c·(lse - x_c) (the log-softmax
shifted by the max, class weights inside the sum, smoothing included), in one native kernel
with autograd intact, for every row whose logits are finite (the others: see
:func:`softmax_ce_labels`). For ``value_and_grad`` one log-softmax pass gives both the loss and,
exponentiated, the gradient, written once into the array returned; weighting, masks and the
reduction stay in the shared code, so xce's rules (a mean over nothing is 0, NaN rows for
unchecked labels) are unchanged. Labels arrive safe. On the CPU both run over row chunks of
``_config.TORCH_CHUNK_BYTES``: faster, and bounded extra memory.
Soft targets (:func:`softmax_ce_soft`) and binary (:func:`sigmoid_bce`) run over chunks on
the CPU too; their docstrings say where they hand over to the generic kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..._value_checks import ROW_SUM_FLOOR, ROW_SUM_ULPS
from .. import _config
from ._chunks import chunks, empty_like
from ._host import host_view, row_totals_fit

__all__ = [
    "in_unit_interval",
    "recording",
    "sigmoid_bce",
    "soft_targets_fit",
    "softmax_ce_labels",
    "softmax_ce_soft",
]


_NUMPY_FLOATS = (torch.float32, torch.float64)  # the dtypes whose row totals NumPy compares


def in_unit_interval(a):
    """Whether every entry of ``a`` lies in [0, 1] (NaN does not)."""
    view = host_view(a)
    if view is not None:
        return bool(view.min() >= 0) and bool(view.max() <= 1)  # NaN fails
    lowest, highest = torch.aminmax(a)
    # .item() and a Python comparison: a comparison tensor and its bool() cost more
    return lowest.item() >= 0 and highest.item() <= 1  # NaN fails


def soft_targets_fit(y):
    """Whether soft targets (classes last) lie in [0, 1] and each row sums to 1 within the
    shared tolerance, or to 0 (no target): a multi-hot row does not."""
    if not in_unit_interval(y):
        return False
    view = host_view(y)
    total = view.sum(axis=-1) if view is not None else y.sum(dim=-1)
    fit = row_totals_fit(total) if y.dtype in _NUMPY_FLOATS else None
    if fit is not None:
        return fit
    tolerance = max(ROW_SUM_FLOOR, ROW_SUM_ULPS * torch.finfo(y.dtype).eps)
    return bool((((total - 1).abs() <= tolerance) | (total == 0)).all())


def recording(*tensors):
    """Whether autograd is recording a graph through any of ``tensors``."""
    return torch.is_grad_enabled() and any(
        isinstance(t, torch.Tensor) and t.requires_grad for t in tensors
    )


def softmax_ce_labels(x, labels, *, class_weight, smoothing, with_grad=False, grad_scale=None,
                      generic=None):  # fmt: skip
    """ℓ from integer labels by ``F.cross_entropy`` (see the module docstring).

    On the CPU, rows whose loss is not finite (an infinite or NaN logit) are redone by
    ``generic``, the agnostic kernel: torch's log-softmax makes a whole row NaN when one of its
    logits is +inf, where xce's rule gives +inf (the label's logit finite), as on every other
    backend. GPU tensors are not checked (the check would wait for the device). Class weights
    that autograd records go to ``generic`` whole: torch's ``nll_loss`` is not differentiable
    with respect to its ``weight``.
    """
    if generic is not None and recording(class_weight):
        return generic(x, labels, with_grad=with_grad, grad_scale=grad_scale)
    n_classes = x.shape[-1]
    flat_x = x.reshape(-1, n_classes)
    flat_labels = labels.reshape(-1)
    row_chunks = chunks(flat_x)
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
        if len(row_chunks) == 1 or (torch.is_grad_enabled() and x.requires_grad):
            return rows(0, flat_x.shape[0]).reshape(labels.shape), None
        loss = torch.empty(flat_labels.shape, dtype=x.dtype, device=x.device)
        for lo, hi in row_chunks:
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
        grad = empty_like(flat_x)
        for lo, hi in row_chunks:
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

    One exponential per logit, made in place in ``grad``: z = x - m (the row max), the
    label's z_y and Σ w·z gathered from it, e = exp(z) over it, and the softmax e/s scaled in
    place. ℓ = (1-ε)·w_y·(log s - z_y) + (ε/C)·(Σw·log s - Σ w·z), the log-softmax's own
    arithmetic (lse - x_c = log s - z_c) without its second pass of exponentials. GPU
    tensors take the log-softmax, exponentiated, where this way is not yet measured.
    """
    if not x.is_cpu:
        return _loss_and_grad_log_softmax(x, labels, grad, r, class_weight=class_weight,
                                          smoothing=smoothing)  # fmt: skip
    n_classes = x.shape[-1]
    hard = 1.0 - smoothing
    w_y = None if class_weight is None else class_weight[labels]
    z = torch.sub(x, torch.amax(x, dim=-1, keepdim=True), out=grad)
    column = labels.unsqueeze(-1)
    nll = -z.gather(1, column).squeeze(-1)  # - z_y, then + log s
    weighted_z = None
    if smoothing:
        weighted_z = z.sum(dim=-1) if class_weight is None else torch.mv(z, class_weight)
    z.exp_()
    s = z.sum(dim=-1)
    log_s = torch.log(s)
    nll.add_(log_s)
    loss = nll if w_y is None else nll * w_y
    mass = hard if w_y is None else hard * w_y
    if smoothing:
        uniform = smoothing / n_classes
        total_weight = n_classes if class_weight is None else class_weight.sum()
        loss = hard * loss + uniform * (total_weight * log_s - weighted_z)
        mass = mass + uniform * total_weight
    z.mul_((mass * r / s).unsqueeze(-1))  # the softmax e/s times mass·r, in place
    if smoothing:
        r_col = r.unsqueeze(-1) if isinstance(r, torch.Tensor) and r.ndim else r
        z.sub_(uniform * r_col * (1.0 if class_weight is None else class_weight))
    label_share = hard * r if w_y is None else hard * w_y * r
    label_share = torch.as_tensor(label_share, dtype=z.dtype, device=z.device)
    z.scatter_add_(1, column, -label_share.expand(labels.shape).unsqueeze(-1))
    return loss


def _loss_and_grad_log_softmax(x, labels, grad, r, *, class_weight, smoothing):
    """:func:`_loss_and_grad_rows` from one log-softmax, exponentiated into ``grad``."""
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
    chunks otherwise, and ``value_and_grad`` makes one exponential per logit per chunk, in
    the array returned, for both the loss and the gradient Σwq·softmax - wq. Where its
    result is not finite (0·log 0 on a -inf logit with no target mass is NaN there, 0 here)
    the generic kernel redoes the rows. GPU tensors take the generic kernel (no host sync).
    With ``check_targets`` (CPU chunks only) the result is ``None`` if a chunk's targets leave
    [0, 1] or a row of them sums to neither 1 nor 0, checked while the chunk is in cache.
    """
    if check_targets and (not x.is_cpu or recording(x, y, class_weight)):
        if not soft_targets_fit(y):  # the chunks below check their own targets
            return None
    if not x.is_cpu:
        return generic(x, y, with_grad=with_grad, grad_scale=grad_scale)
    n_classes = x.shape[-1]
    options = {"weight": class_weight, "label_smoothing": float(smoothing), "reduction": "none"}
    if recording(x, y, class_weight) and not with_grad:
        loss = F.cross_entropy(x.reshape(-1, n_classes), y.reshape(-1, n_classes), **options)
        if not torch.isfinite(loss).all():
            return generic(x, y, with_grad=False, grad_scale=grad_scale)
        return loss.reshape(x.shape[:-1]), None
    flat_x, flat_y = x.reshape(-1, n_classes), y.reshape(-1, n_classes)
    loss = torch.empty(flat_x.shape[:1], dtype=x.dtype)
    grad = empty_like(flat_x) if with_grad else None
    scale = _flat_scale(grad_scale, x.shape[:-1], flat_x.shape[:1])
    with torch.no_grad():
        for lo, hi in chunks(flat_x):
            xb, yb = flat_x[lo:hi], flat_y[lo:hi]
            if check_targets and not soft_targets_fit(yb):
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
                chunk_loss, gb = _soft_loss_and_softmax(xb, wq, grad[lo:hi])
            if not torch.isfinite(chunk_loss).all():
                _generic_rows(generic, flat_x, flat_y, loss, grad, scale, lo, hi)
                continue
            loss[lo:hi] = chunk_loss
            if with_grad:  # Σwq·softmax - wq
                gb.sub_(wq)
                _scale_rows(gb, _rows_of(scale, lo, hi))
    return loss.reshape(x.shape[:-1]), None if grad is None else grad.reshape(x.shape)


def _soft_loss_and_softmax(x, wq, out):
    """ℓ = Σwq·lse - Σ wq·x of rows ``x``, and Σwq·softmax(x) written into ``out``.

    One exponential per logit, in place in ``out`` (z = x - m, Σ wq·z read from it, exp,
    scaled by Σwq/s), the NumPy kernel's arithmetic: ℓ = Σwq·log s - Σ wq·z, nothing
    cancelling. (The pipeline hands the kernels float32 or float64: half precision is
    computed in float32.)
    """
    mass = wq.sum(dim=-1, keepdim=True)
    z = torch.sub(x, torch.amax(x, dim=-1, keepdim=True), out=out)
    dot = torch.linalg.vecdot(wq, z)
    z.exp_()
    s = z.sum(dim=-1, keepdim=True)
    loss = torch.log(s).mul_(mass).squeeze(-1).sub_(dot)
    return loss, z.mul_(mass / s)


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
    if x.numel() == 0 or not x.is_cpu or recording(x, y, pos_weight):
        if check_targets and x.numel() and not in_unit_interval(y):
            return None
        loss, grad = generic(x, y, with_grad=with_grad, grad_scale=grad_scale)
        return (loss.sum() if summed else loss), grad
    n_cols = x.shape[-1]
    flat_x, flat_y = x.reshape(-1, n_cols), y.reshape(-1, n_cols)
    loss = None if summed else empty_like(flat_x)
    chunk_sums = []  # with summed: Σ ℓ per chunk, in row order
    grad = empty_like(flat_x) if with_grad else None
    scale = _flat_scale(grad_scale, x.shape, flat_x.shape)
    a = pos_weight
    row_chunks = chunks(flat_x, _config.TORCH_ELEMENTWISE_CHUNK_BYTES)
    rows = row_chunks[0][1] - row_chunks[0][0]
    buffers = [torch.empty((rows, n_cols), dtype=x.dtype) for _ in range(7 if summed else 6)]
    with torch.no_grad():
        for lo, hi in row_chunks:
            xb, yb = flat_x[lo:hi], flat_y[lo:hi]
            lb = buffers[6][: hi - lo] if summed else loss[lo:hi]
            if check_targets and not in_unit_interval(yb):
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
