"""The fused sweep of linear cross entropy over chunks of rows.

For each chunk of r rows of the flattened hidden states h (M, D): the chunk's logits
z = h_r·Wᵀ (+ b), in the accumulation dtype; the sparse loss's driver on them (its loss and
its logits gradient g, with the chunk's labels, weights and mask, reduction
``"sum_and_count"``); then ∂/∂h_r = g·W, ∂/∂W += gᵀ·h_r and ∂/∂b += Σ g. Only the chunk's
logits and gradient ever exist: the (M, V) logits are never built.

The ``"mean"`` denominator is *accumulated* (the chunks' counts), and the totals and the
gradients are divided once at the end, instead of being computed up front: the sparse
driver stays the one owner of the counting rule (ignore_index, where, class weights, the
z-loss term's weighting), so the result is exactly its ``total / count``, and the division
costs one pass over (M + V)·D numbers against the sweep's three (M, V, D) matmuls.

Everything here is array-API code; in-place accumulation (``accumulate``) may be given by a
backend that has one (torch's ``addmm_``), else ``out += a @ b``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import _sparse as sparse
from ._array_api import device
from ._types import Array, Namespace

__all__ = [
    "CHUNK_BYTES",
    "CHUNK_FRACTION",
    "Problem",
    "chunk_rows",
    "mean_of",
    "reduce_totals",
    "sweep",
]

# The default chunk: its logits take at most CHUNK_BYTES and at most 1/CHUNK_FRACTION of the
# full logits' bytes (in the accumulation dtype). A chunk holds about four arrays of its
# logits' size at once (logits, probabilities, gradient, a matmul's temporary), so 1/32 keeps
# the sweep's peak under 1/8 of the full logits.
CHUNK_BYTES = 64 * 2**20
CHUNK_FRACTION = 32
# Below this many rows a chunk's matmuls lose more to per-call overhead than they save.
MIN_CHUNK_ROWS = 16


def chunk_rows(n_rows: int, n_classes: int, itemsize: int, chunk_size: int | None) -> int:
    """Rows per chunk: ``chunk_size`` if given, else the byte budget's (at least
    ``MIN_CHUNK_ROWS``, at most all rows)."""
    if chunk_size is not None:
        return max(1, min(chunk_size, n_rows))
    row_bytes = max(1, n_classes * itemsize)
    budget = min(CHUNK_BYTES, n_rows * row_bytes // CHUNK_FRACTION)
    return max(1, min(n_rows, max(MIN_CHUNK_ROWS, budget // row_bytes)))


@dataclass
class Problem:
    """A checked call, flattened: labels (M,), hidden (M, D), weight (V, D), bias (V,) or
    None, per-row sample weights and mask (M,) or None; ``options`` go to the sparse
    driver for every chunk (ignore_index, class_weight, label_smoothing, softcap, z_loss)."""

    xp: Namespace
    labels: Array
    hidden: Array
    weight: Array
    bias: Array | None
    sample_weight: Array | None
    where: Array | None
    options: Mapping[str, Any]
    acc_dtype: Any
    validate: Any


def _plus_matmul(out: Array, a: Array, b: Array) -> Array:
    out += a @ b
    return out


def mean_of(xp: Namespace, total: Array, count: Array) -> tuple[Array, Array]:
    """``(total / count, 1 / count)``; a mean over nothing is 0 with a zero gradient (a NaN
    total, from unchecked bad labels, stays NaN)."""
    empty = count == 0
    safe = xp.where(empty, xp.ones_like(count), count)
    nothing = xp.where(xp.isnan(total), total, xp.zeros_like(total))
    return xp.where(empty, nothing, total / safe), xp.where(empty, xp.zeros_like(count), 1 / safe)


def reduce_totals(xp: Namespace, reduction: str, total: Array, count: Array) -> tuple[Any, Any]:
    """The reduced loss from the chunks' summed totals and counts, and the scale of the
    gradients (``None``: 1)."""
    if reduction == "sum_and_count":
        return (total, count), None
    if reduction == "sum":
        return total, None
    return mean_of(xp, total, count)


def _chunk(p: Problem, start: int, stop: int, w_acc, b_acc, reduction, with_grad):
    xp = p.xp
    h = xp.astype(p.hidden[start:stop, ...], p.acc_dtype, copy=False)
    logits = h @ xp.matrix_transpose(w_acc)
    if b_acc is not None:
        logits = logits + b_acc
    value, grad = sparse.loss_and_gradient(
        p.labels[start:stop], logits, from_logits=True, axis=-1,
        sample_weight=None if p.sample_weight is None else p.sample_weight[start:stop],
        where=None if p.where is None else p.where[start:stop],
        reduction=reduction, eps=None, validate=p.validate, with_grad=with_grad, **p.options,
    )  # fmt: skip
    return h, value, grad


def sweep(
    p: Problem,
    *,
    rows: int,
    reduction: str,
    with_grad: bool,
    accumulate: Callable[[Array, Array, Array], Array] = _plus_matmul,
) -> tuple[Any, tuple[Array, ...] | None]:
    """The loss (reduced as asked, in the accumulation dtype) and, with ``with_grad``, the
    gradients ``(d_hidden (M, D), d_weight (V, D)[, d_bias (V,)])`` in the accumulation
    dtype, over chunks of ``rows`` rows."""
    xp = p.xp
    n_rows, dim = p.hidden.shape
    n_classes = p.weight.shape[0]
    on = device(p.hidden)
    w_acc = xp.astype(p.weight, p.acc_dtype, copy=False)
    b_acc = None if p.bias is None else xp.astype(p.bias, p.acc_dtype, copy=False)
    chunk_reduction = "none" if reduction == "none" else "sum_and_count"
    zero = xp.zeros((), dtype=p.acc_dtype, device=on)
    total, count, pieces = zero, zero, []
    d_hidden: Any = None
    d_weight: Any = None
    d_bias: Any = None
    if with_grad:
        d_hidden = xp.empty((n_rows, dim), dtype=p.acc_dtype, device=on)
        d_weight = xp.zeros((n_classes, dim), dtype=p.acc_dtype, device=on)
        d_bias = None if p.bias is None else xp.zeros((n_classes,), dtype=p.acc_dtype, device=on)
    for start in range(0, n_rows, rows):
        stop = min(start + rows, n_rows)
        h, value, grad = _chunk(p, start, stop, w_acc, b_acc, chunk_reduction, with_grad)
        if chunk_reduction == "none":
            pieces.append(value)
        else:
            total, count = total + value[0], count + value[1]
        if grad is not None:
            d_hidden[start:stop, ...] = grad @ w_acc
            d_weight = accumulate(d_weight, xp.matrix_transpose(grad), h)
            if d_bias is not None:
                d_bias += xp.sum(grad, axis=0)
        del h, value, grad  # the chunk's arrays go before the next chunk's are made
    if reduction == "none":
        if not pieces:
            return xp.zeros((0,), dtype=p.acc_dtype, device=on), None
        return xp.concat(pieces), None
    result, scale = reduce_totals(xp, reduction, total, count)
    if with_grad and scale is not None:
        d_hidden *= scale
        d_weight *= scale
        if d_bias is not None:
            d_bias *= scale
    if not with_grad:
        return result, None
    grads = (d_hidden, d_weight) if d_bias is None else (d_hidden, d_weight, d_bias)
    return result, grads
