"""The softmax cross entropy over logits whose classes are split across a group.

Each member holds the logits of its classes ``[start, start + C_l)`` of C, and the same
labels or the matching slice of the soft targets. The loss of a row needs three quantities
that span every class, and nothing else:

- the row maximum m (the shift that keeps exp from overflowing): one ``all_max``;
- the sum of exp(x - m), the label's shifted logit (or Σ w·q·z for soft targets), and for
  label smoothing Σ_c w_c·z_c: one ``all_sum`` of these per-row partial sums, stacked, so
  the sums travel together;
- the class weight of the label, ω (the mean's denominator), gathered in the prepare step.

Every member then holds the global row statistics and computes the same per-row loss, and
the gradient of its own logits from them: nothing more is communicated, in the forward or
in the backward. The formulas are those of :mod:`._categorical` with each sum over the
classes split into the members' shares; ``shard`` is a :class:`xce.distributed.ClassShard`.
"""

from __future__ import annotations

from .._array_api import device
from ._blocks import is_python_zero, log_or_neg_inf, times_finite
from ._categorical import (
    class_weight_of,
    labels_loss_and_grad,
    soft_loss_and_grad,
    take_along_last_axis,
)
from ._softcap import soft_cap

__all__ = [
    "global_row_max",
    "owned_labels",
    "sharded_softmax_ce_labels",
    "sharded_softmax_ce_soft",
]


def global_row_max(xp, x, shard):
    """The row maximum over every member's classes (trailing axis kept), with a non-finite
    maximum replaced by 0 as in :func:`._blocks.finite_max`. Each member's raw maximum is
    combined first: a member whose classes are all -inf must not offer 0 as its maximum."""
    if x.shape[-1] == 0:
        local = xp.full((*x.shape[:-1], 1), -float("inf"), dtype=x.dtype, device=device(x))
    else:
        local = xp.max(x, axis=-1, keepdims=True)
    m = shard.all_max(local)
    return xp.where(xp.isfinite(m), m, xp.zeros_like(m))


def owned_labels(xp, labels, start, local_classes):
    """``(owned, local)``: whether each label is one of this member's classes, and its
    local index (0 where it is not: safe to index with, masked by ``owned``)."""
    local = labels - start
    owned = (local >= 0) & (local < local_classes)
    return owned, xp.where(owned, local, xp.zeros_like(local))


def _split_sums(xp, shard, columns):
    """One ``all_sum`` of the per-row partial sums (each with a trailing axis of 1)."""
    summed = shard.all_sum(xp.concat(columns, axis=-1))
    return [summed[..., i : i + 1] for i in range(len(columns))]


def sharded_softmax_ce_labels(xp, x, labels, *, shard, start, class_weight, smoothing,
                              with_grad, grad_scale=None, softcap=None, z_loss=0.0,
                              parts=False):  # fmt: skip
    """:func:`._categorical.softmax_ce_labels` over this member's classes of x.

    ``labels`` are global class indices (in range); ``class_weight`` is this member's slice;
    the smoothing's uniform share is ε/C with C = ``shard.num_classes``.
    """
    local_classes = x.shape[-1]
    x, slope = soft_cap(xp, x, softcap, with_grad)
    m = global_row_max(xp, x, shard)
    z = x - m
    e = xp.exp(z)
    owned, local = owned_labels(xp, labels, start, local_classes)
    owned = owned[..., None]
    zero = xp.zeros_like(m)
    # The label's logit, gathered where this member holds it; the shift m is applied only
    # there, so the other members add an exact 0.
    x_y = take_along_last_axis(xp, x, local[..., None])
    columns = [xp.sum(e, axis=-1, keepdims=True), xp.where(owned, x_y - m, zero)]
    if class_weight is not None:
        w_y = class_weight_of(xp, class_weight, local)[..., None]
        columns.append(xp.where(owned, w_y, zero))
    smoothed = not is_python_zero(smoothing)
    if smoothed and class_weight is None:
        columns.append(xp.sum(z, axis=-1, keepdims=True))
    elif smoothed:
        columns.append(xp.sum(times_finite(xp, class_weight, z), axis=-1, keepdims=True))
        # The total class weight, per row so that it travels in the same stack.
        columns.append(xp.sum(class_weight) + zero)
    sums = _split_sums(xp, shard, columns)
    w_y = None if class_weight is None else sums[2]
    smoothing_sums = None
    if smoothed:
        smoothing_sums = (sums[-1], shard.num_classes) if class_weight is None else sums[-2:]

    def label_mask():
        classes = xp.arange(local_classes, dtype=local.dtype, device=device(x))
        return owned & (local[..., None] == classes)

    return labels_loss_and_grad(
        xp, m=m, e=e, s=sums[0], log_s=log_or_neg_inf(xp, sums[0]), z_y=sums[1], w_y=w_y,
        smoothing_sums=smoothing_sums, class_weight=class_weight, n_classes=shard.num_classes,
        smoothing=smoothing, label_mask=label_mask, slope=slope, with_grad=with_grad,
        grad_scale=grad_scale, z_loss=z_loss, parts=parts,
    )  # fmt: skip


def sharded_softmax_ce_soft(xp, x, y, *, shard, start, class_weight, smoothing, with_grad,
                            grad_scale=None, softcap=None, z_loss=0.0, parts=False):  # fmt: skip
    """:func:`._categorical.softmax_ce_soft` over this member's classes of x and y (the
    target's matching slice); ``class_weight`` is this member's slice, the smoothing's
    uniform share ε/C with C = ``shard.num_classes``. ``start`` is not needed (the target
    slice says which classes are here) but is taken for the kernels' common signature."""
    n_classes = shard.num_classes
    q = y if is_python_zero(smoothing) else (1 - smoothing) * y + smoothing / n_classes
    wq = q if class_weight is None else class_weight * q
    x, slope = soft_cap(xp, x, softcap, with_grad)
    m = global_row_max(xp, x, shard)
    z = x - m
    e = xp.exp(z)
    columns = [
        xp.sum(e, axis=-1, keepdims=True),
        xp.sum(wq, axis=-1, keepdims=True),
        xp.sum(times_finite(xp, wq, z), axis=-1, keepdims=True),
    ]
    weighted_z_loss = class_weight is not None and not is_python_zero(z_loss)
    if weighted_z_loss:
        columns.append(xp.sum(class_weight * y, axis=-1, keepdims=True))
    sums = _split_sums(xp, shard, columns)
    return soft_loss_and_grad(
        xp, m=m, e=e, s=sums[0], log_s=log_or_neg_inf(xp, sums[0]), wq=wq, mass=sums[1],
        wqz=sums[2], omega=sums[3] if weighted_z_loss else None, slope=slope,
        with_grad=with_grad, grad_scale=grad_scale, z_loss=z_loss, parts=parts,
    )  # fmt: skip
