"""PyTorch fast path for the softmax cross entropy from labels.

``F.cross_entropy(..., reduction="none")`` computes exactly xce's per-sample loss
ℓ = (1-ε)·w_y·(lse - x_y) + (ε/C)·Σ_c w_c·(lse - x_c) (the log-softmax shifted by the max,
class weights inside the sum, smoothing included), in one native kernel with autograd intact.
For ``value_and_grad`` one log-softmax pass gives both the loss and, exponentiated in place,
the gradient buffer; weighting, masks and the reduction stay in the shared code, so xce's rules
(a mean over nothing is 0, NaN rows for unchecked labels) are unchanged. Labels arrive safe.
"""

from __future__ import annotations


def handles(x) -> bool:
    return x.ndim >= 1


def plain_sparse(labels, x, *, reduction, with_grad):
    """The most common call, logits and in-range int64 labels on the CPU with no option.

    Returns ``None`` unless every condition holds at a glance; the caller then takes the full
    path, which also raises the proper error for bad input. Here the loss is one
    ``F.cross_entropy`` call (autograd intact) after one read of the labels' range.
    """
    import torch

    if (
        type(labels) is not torch.Tensor
        or x.dtype not in (torch.float32, torch.float64)
        or labels.dtype != torch.int64
        or not x.is_cpu
        or not labels.is_cpu
        or x.ndim == 0
        or labels.shape != x.shape[:-1]
        or labels.numel() == 0
        or x.shape[-1] < 2
    ):
        return None
    lowest, highest = torch.aminmax(labels)
    if lowest.item() < 0 or highest.item() >= x.shape[-1]:
        return None
    if not with_grad:
        import torch.nn.functional as F

        if x.ndim <= 2:  # (N, C) or one sample (C,): no reshape, which costs as much as a check
            return F.cross_entropy(x, labels, reduction=reduction), None
        flat = F.cross_entropy(x.reshape(-1, x.shape[-1]), labels.reshape(-1), reduction=reduction)
        return (flat.reshape(labels.shape) if reduction == "none" else flat), None
    r = 1.0 / labels.numel() if reduction == "mean" else 1.0
    loss, grad = softmax_ce_labels(x, labels, class_weight=None, smoothing=0.0, with_grad=True,
                                   grad_scale=r)  # fmt: skip
    total = loss.sum()
    return (total / labels.numel() if reduction == "mean" else total), grad


def softmax_ce_labels(x, labels, *, class_weight, smoothing, with_grad=False, grad_scale=None):
    import torch
    import torch.nn.functional as F

    n_classes = x.shape[-1]
    flat_x = x.reshape(-1, n_classes)
    flat_labels = labels.reshape(-1)
    if not with_grad:
        loss = F.cross_entropy(
            flat_x, flat_labels, weight=class_weight, reduction="none",
            label_smoothing=float(smoothing),
        )  # fmt: skip
        return loss.reshape(labels.shape), None

    with torch.no_grad():  # the gradient is analytic: no graph to record
        log_p = torch.log_softmax(flat_x, dim=-1)
        loss = F.nll_loss(log_p, flat_labels, weight=class_weight, reduction="none")
        hard = 1.0 - smoothing
        w_y = None if class_weight is None else class_weight[flat_labels]
        mass = hard if w_y is None else hard * w_y
        if smoothing:
            uniform = smoothing / n_classes
            weighted = log_p if class_weight is None else log_p * class_weight
            loss = hard * loss - uniform * weighted.sum(dim=-1)
            mass = mass + uniform * (n_classes if class_weight is None else class_weight.sum())
        r = (
            grad_scale
            if grad_scale is None or isinstance(grad_scale, float)
            else grad_scale.reshape(-1)
        )
        r = 1.0 if r is None else r
        grad = log_p.exp_()  # softmax, written into the buffer we own
        row = mass * r
        grad.mul_(row.unsqueeze(-1) if isinstance(row, torch.Tensor) and row.ndim else row)
        if smoothing:
            r_col = r.unsqueeze(-1) if isinstance(r, torch.Tensor) and r.ndim else r
            grad.sub_(uniform * r_col * (1.0 if class_weight is None else class_weight))
        label_share = hard * r if w_y is None else hard * w_y * r
        label_share = torch.as_tensor(label_share, dtype=grad.dtype, device=grad.device)
        grad.scatter_add_(
            1, flat_labels.unsqueeze(-1), -label_share.expand(flat_labels.shape).unsqueeze(-1)
        )
    return loss.reshape(labels.shape), grad.reshape(x.shape)
