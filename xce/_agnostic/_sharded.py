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

On eager backends the class loop runs over blocks of rows (``block_rows``, from the row
runner's budget): the collectives need every row's share before any row can finish, so the
logits are read in passes (the row maximum, the per-row sums, and with a gradient its
write), each over cache-sized blocks, instead of holding several temporaries of the
logits' size.
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


def global_row_max(xp, x, shard, softcap=None):
    """The row maximum of the (capped) logits over every member's classes (trailing axis
    kept), a non-finite maximum replaced by 0 as in :func:`._blocks.finite_max`. Each
    member's raw maximum is combined first: a member whose classes are all -inf must not
    offer 0 as its maximum. The cap c·tanh(x/c) is increasing: it is applied to the maximum
    of x, not to x."""
    if x.shape[-1] == 0:
        local = xp.full((*x.shape[:-1], 1), -float("inf"), dtype=x.dtype, device=device(x))
    else:
        local = soft_cap(xp, xp.max(x, axis=-1, keepdims=True), softcap, False)[0]
    m = shard.all_max(local)
    return xp.where(xp.isfinite(m), m, xp.zeros_like(m))


def owned_labels(xp, labels, start, local_classes):
    """``(owned, local)``: whether each label is one of this member's classes, and its
    local index (0 where it is not: safe to index with, masked by ``owned``)."""
    local = labels - start
    owned = (local >= 0) & (local < local_classes)
    return owned, xp.where(owned, local, xp.zeros_like(local))


def _over_row_blocks(xp, x, target, grad_scale, *, block_rows, shard, softcap, with_grad,
                     columns, finish, in_place=None, needs_z=True):  # fmt: skip
    """The sharded kernels' passes over row blocks of x (classes last, any batch shape).

    ``columns(lo, hi, capped, z, e, m)`` gives the per-row partial sums of rows [lo, hi)
    (trailing axis: the stack) from the block's capped logits, z = x̃ - m and e = exp(z);
    ``finish(lo, hi, sums, m, e, slope, grad_scale, with_grad)`` the loss of those rows from
    the summed stack, and with ``with_grad`` their gradient. One ``all_max`` and one
    ``all_sum`` in all, whatever the blocks. ``target`` is only reshaped to rows here.

    ``in_place`` is a backend's in-place passes (``xce._fast._torch._sharded``), or ``None``:
    with it, a block's exponentials overwrite its shifted logits where ``columns`` does not
    need them (``needs_z`` false: it is then given ``z=None``), and a block's gradient is
    written into its rows of the output by ``finish(..., out=rows)`` instead of being made
    and copied there.
    """
    batch, local_classes = x.shape[:-1], x.shape[-1]
    x = xp.reshape(x, (-1, local_classes))
    scale = grad_scale
    if grad_scale is not None and grad_scale.ndim > 0:
        scale = xp.reshape(grad_scale, (-1,))
    n_rows = x.shape[0]
    step = n_rows if block_rows is None else max(1, block_rows)
    blocks = [(lo, min(lo + step, n_rows)) for lo in range(0, n_rows, step)] or [(0, 0)]
    m = global_row_max(xp, x, shard, softcap)

    def exps(lo, hi, with_slope, keep_z=True):
        capped, slope = soft_cap(xp, x[lo:hi, ...], softcap, with_slope)
        z = capped - m[lo:hi, ...]
        if in_place is not None and not keep_z:
            return capped, slope, None, in_place.exp_(z)
        return capped, slope, z, xp.exp(z)

    # One block (whole-array): its exponentials and the cap's slope serve the gradient too.
    whole = len(blocks) == 1
    stacks = []
    for lo, hi in blocks:
        capped, slope, z, e = exps(lo, hi, with_grad and whole, keep_z=needs_z)
        stacks.append(columns(lo, hi, capped, z, e, m[lo:hi, ...]))
    sums = shard.all_sum(stacks[0] if whole else xp.concat(stacks, axis=0))
    if not with_grad or whole:
        if not with_grad:
            e = slope = None
        loss, grad = finish(0, n_rows, sums, m, e, slope, scale, with_grad)
    else:
        loss, _ = finish(0, n_rows, sums, m, None, None, None, False)
        grad = xp.empty(x.shape, dtype=x.dtype, device=device(x))
        for lo, hi in blocks:
            block_scale = scale if scale is None or scale.ndim == 0 else scale[lo:hi, ...]
            if in_place is not None:
                finish(lo, hi, sums[lo:hi, ...], m[lo:hi, ...], None, None, block_scale, True,
                       out=grad[lo:hi, ...])  # fmt: skip
                continue
            _, slope, _, e = exps(lo, hi, True)
            grad[lo:hi, ...] = finish(lo, hi, sums[lo:hi, ...], m[lo:hi, ...], e, slope,
                                      block_scale, True)[1]  # fmt: skip
    if isinstance(loss, tuple):
        loss = tuple(xp.reshape(a, batch) for a in loss)
    else:
        loss = xp.reshape(loss, batch)
    return loss, None if grad is None else xp.reshape(grad, (*batch, local_classes))


def sharded_softmax_ce_labels(xp, x, labels, *, shard, start, class_weight, smoothing,
                              with_grad, grad_scale=None, softcap=None, z_loss=0.0,
                              parts=False, block_rows=None,
                              in_place=None):  # fmt: skip
    """:func:`._categorical.softmax_ce_labels` over this member's classes of x.

    ``labels`` are global class indices (in range); ``class_weight`` is this member's slice;
    the smoothing's uniform share is ε/C with C = ``shard.num_classes``.
    ``in_place`` is a backend's in-place passes over row blocks
    (``xce._fast._torch._sharded``), or ``None``.
    """
    local_classes = x.shape[-1]
    rows_x = xp.reshape(x, (-1, local_classes))
    smoothed = not is_python_zero(smoothing)
    owned, local = owned_labels(xp, xp.reshape(labels, (-1,)), start, local_classes)
    # For the gradient's mask: -1, no class here, where another member holds the label.
    column = xp.where(owned, local, xp.full_like(local, -1))[..., None]
    owned, local = owned[..., None], local[..., None]

    def columns(lo, hi, capped, z, e, m):
        here, index = owned[lo:hi, ...], local[lo:hi, ...]
        zero = xp.zeros_like(m)
        # The label's logit where this member holds it, shifted only there, so that the
        # other members add an exact 0.
        x_y = take_along_last_axis(xp, capped, index)
        stack = [xp.sum(e, axis=-1, keepdims=True), xp.where(here, x_y - m, zero)]
        if class_weight is not None:
            w_y = class_weight_of(xp, class_weight, index[..., 0])[..., None]
            stack.append(xp.where(here, w_y, zero))
        if smoothed and class_weight is None:
            stack.append(xp.sum(z, axis=-1, keepdims=True))
        elif smoothed:
            stack.append(xp.sum(times_finite(xp, class_weight, z), axis=-1, keepdims=True))
            # The total class weight, per row so that it travels in the same stack.
            stack.append(xp.sum(class_weight) + zero)
        return xp.concat(stack, axis=-1)

    def finish(lo, hi, sums, m, e, slope, scale, with_grad, out=None):
        s = sums[..., 0:1]
        w_y = None if class_weight is None else sums[..., 2:3]
        write = None
        if out is not None:

            def write(coefficient, shift, hard):
                return in_place.labels_gradient(
                    out, rows_x[lo:hi, ...], m, softcap=softcap, coefficient=coefficient,
                    shift=shift, hard=hard, owned=owned[lo:hi, ...], local=local[lo:hi, ...],
                )  # fmt: skip

        smoothing_sums = None
        if smoothed and class_weight is None:
            smoothing_sums = (sums[..., -1:], shard.num_classes)
        elif smoothed:
            smoothing_sums = (sums[..., -2:-1], sums[..., -1:])

        def label_mask():
            classes = xp.arange(local_classes, dtype=local.dtype, device=device(x))
            return column[lo:hi, ...] == classes

        return labels_loss_and_grad(
            xp, m=m, e=e, s=s, log_s=log_or_neg_inf(xp, s), z_y=sums[..., 1:2], w_y=w_y,
            smoothing_sums=smoothing_sums, class_weight=class_weight,
            n_classes=shard.num_classes, smoothing=smoothing, label_mask=label_mask,
            slope=slope, with_grad=with_grad, grad_scale=scale, z_loss=z_loss, parts=parts,
            write=write,
        )  # fmt: skip

    return _over_row_blocks(
        xp, x, labels, grad_scale, block_rows=block_rows, shard=shard, softcap=softcap,
        with_grad=with_grad, columns=columns, finish=finish,
        in_place=in_place, needs_z=smoothed,
    )  # fmt: skip


def sharded_softmax_ce_soft(xp, x, y, *, shard, start, class_weight, smoothing, with_grad,
                            grad_scale=None, softcap=None, z_loss=0.0, parts=False,
                            block_rows=None, in_place=None):  # fmt: skip
    """:func:`._categorical.softmax_ce_soft` over this member's classes of x and y (the
    target's matching slice); ``class_weight`` is this member's slice, the smoothing's
    uniform share ε/C with C = ``shard.num_classes``. ``start`` is not needed (the target
    slice says which classes are here), nor ``in_place`` (its passes are the generic
    ones), but both are taken for the kernels' common signature."""
    n_classes, local_classes = shard.num_classes, x.shape[-1]
    rows_y = xp.reshape(y, (-1, local_classes))
    weighted_z_loss = class_weight is not None and not is_python_zero(z_loss)

    def weighted_target(lo, hi):
        q = rows_y[lo:hi, ...]
        if not is_python_zero(smoothing):
            q = (1 - smoothing) * q + smoothing / n_classes
        return q if class_weight is None else class_weight * q

    def columns(lo, hi, capped, z, e, m):
        wq = weighted_target(lo, hi)
        stack = [
            xp.sum(e, axis=-1, keepdims=True),
            xp.sum(wq, axis=-1, keepdims=True),
            xp.sum(times_finite(xp, wq, z), axis=-1, keepdims=True),
        ]
        if weighted_z_loss:
            stack.append(xp.sum(class_weight * rows_y[lo:hi, ...], axis=-1, keepdims=True))
        return xp.concat(stack, axis=-1)

    def finish(lo, hi, sums, m, e, slope, scale, with_grad):
        s = sums[..., 0:1]
        return soft_loss_and_grad(
            xp, m=m, e=e, s=s, log_s=log_or_neg_inf(xp, s),
            wq=weighted_target(lo, hi) if with_grad else None, mass=sums[..., 1:2],
            wqz=sums[..., 2:3], omega=sums[..., 3:4] if weighted_z_loss else None,
            slope=slope, with_grad=with_grad, grad_scale=scale, z_loss=z_loss, parts=parts,
        )  # fmt: skip

    return _over_row_blocks(
        xp, x, y, grad_scale, block_rows=block_rows, shard=shard, softcap=softcap,
        with_grad=with_grad, columns=columns, finish=finish,
    )  # fmt: skip
