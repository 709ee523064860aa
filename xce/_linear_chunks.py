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
from ._parts import LossParts
from ._types import Array, Namespace

__all__ = [
    "ACCUMULATE_ELEMENTS",
    "CHUNK_BYTES",
    "CHUNK_FRACTIONS",
    "Problem",
    "assemble",
    "chunk_rows",
    "map_value",
    "mean_of",
    "reduce_totals",
    "rows_to_batch",
    "sweep",
    "unpack",
]

# The default chunk: its logits take at most CHUNK_BYTES and at most 1/fraction of the full
# logits' bytes (in the accumulation dtype), the fraction set by how many arrays of a chunk's
# logits' size the sparse driver holds at once (measured with tracemalloc), so that the
# sweep's peak stays under 1/8 of the full logits: about four on its plain lane (logits,
# probabilities, gradient, a matmul's temporary): 1/32; up to eight with options (weights,
# mask, smoothing) in its native kernels: 1/64; up to sixteen in its generic kernels
# (soft-capping, z-loss, loss parts): 1/128. Larger chunks are faster (a matmul of a few
# rows runs far below the machine's peak).
CHUNK_BYTES = 64 * 2**20
CHUNK_FRACTIONS = {"plain": 32, "options": 64, "generic": 128}
# Below this many rows a chunk's matmuls lose more to per-call overhead than they save.
MIN_CHUNK_ROWS = 16


def chunk_rows(
    n_rows: int, n_classes: int, itemsize: int, chunk_size: int | None, *, kind: str
) -> int:
    """Rows per chunk: ``chunk_size`` if given, else the byte budget's (at least
    ``MIN_CHUNK_ROWS``, at most all rows); ``kind``, a key of ``CHUNK_FRACTIONS``, says
    which of the sparse driver's kernels the chunks run."""
    if chunk_size is not None:
        return max(1, min(chunk_size, n_rows))
    row_bytes = max(1, n_classes * itemsize)
    fraction = CHUNK_FRACTIONS[kind]
    budget = min(CHUNK_BYTES, n_rows * row_bytes // fraction)
    return max(1, min(n_rows, max(MIN_CHUNK_ROWS, budget // row_bytes)))


@dataclass
class Problem:
    """A checked call, flattened: labels (M,), hidden (M, D), weight (V, D), bias (V,) or
    None, per-row sample weights and mask (M,) or None; ``options`` go to the sparse
    driver for every chunk (ignore_index, class_weight, label_smoothing, softcap, z_loss,
    class_shard)."""

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


# Rows of d_weight updated per matmul: the product's temporary stays near 4 MiB (float32).
ACCUMULATE_ELEMENTS = 1 << 20


def _plus_matmul(out: Array, a: Array, b: Array) -> Array:
    """``out += a @ b`` in blocks of ``out``'s rows: whole, ``a @ b`` would be a temporary as
    large as d_weight (V, D) on every chunk, more than the chunk's logits when D exceeds the
    chunk's rows, and the peak memory would grow with V·D instead of staying bounded."""
    n_rows = out.shape[0]
    step = max(1, ACCUMULATE_ELEMENTS // max(1, out.shape[1]))
    for lo in range(0, n_rows, step):
        hi = min(lo + step, n_rows)  # array-api-strict refuses slices past the end
        out[lo:hi, ...] += a[lo:hi, ...] @ b
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


def map_value(fn: Callable[[Array], Array], value: Any) -> Any:
    """``fn`` on every array of a result: an array, a ``(total, count)`` pair or a
    :class:`~xce.LossParts` of those."""
    if isinstance(value, LossParts):
        return LossParts._make(map_value(fn, v) for v in value)
    if isinstance(value, tuple):
        return tuple(fn(v) for v in value)
    return fn(value)


def rows_to_batch(xp: Namespace, value: Any, reduction: str, batch: tuple[int, ...]) -> Any:
    """The per-row arrays of a result (all with ``"none"``, else ``log_z``) in shape S."""

    def shaped(a):
        return xp.reshape(a, batch)

    if isinstance(value, LossParts):
        fields = [shaped(v) if reduction == "none" else v for v in value[:3]]
        return LossParts._make([*fields, shaped(value.log_z)])
    return shaped(value) if reduction == "none" else value


def unpack(value: Any, *, parts: bool, per_row: bool) -> tuple[tuple[Any, ...], Any, Any]:
    """A chunk's result from the sparse driver as ``(fields, count, log_z)``: the loss (and
    with ``parts`` its two terms), totals or per-row values, their count and log Z."""
    if not parts:
        return ((value,), None, None) if per_row else ((value[0],), value[1], None)
    fields = (value.loss, value.cross_entropy, value.z_loss)
    if per_row:
        return fields, None, value.log_z
    return tuple(f[0] for f in fields), value.loss[1], value.log_z


def assemble(xp: Namespace, reduction: str, fields: Any, count: Any, log_z: Any) -> tuple[Any, Any]:
    """The result from the summed fields (or the per-row ones with ``"none"``) and their
    count, and the scale of the gradients (``None``: 1). With ``log_z`` (parts asked) a
    :class:`~xce.LossParts`, every term divided by the same count."""
    scale = None
    if reduction != "none":
        reduced = [reduce_totals(xp, reduction, total, count) for total in fields]
        fields, scale = [r[0] for r in reduced], reduced[0][1]
    if log_z is None:
        return fields[0], scale
    return LossParts._make([*fields, log_z]), scale


def _chunk(p: Problem, start: int, stop: int, w_acc, b_acc, reduction, with_grad, parts):
    xp = p.xp
    h = xp.astype(p.hidden[start:stop, ...], p.acc_dtype, copy=False)
    logits = h @ xp.matrix_transpose(w_acc)
    if b_acc is not None:
        logits += b_acc  # in place: one chunk-sized array fewer
    extra: dict[str, Any] = {"return_parts": True} if parts else {}
    value, grad = sparse.loss_and_gradient(
        p.labels[start:stop], logits, from_logits=True, axis=-1,
        sample_weight=None if p.sample_weight is None else p.sample_weight[start:stop],
        where=None if p.where is None else p.where[start:stop],
        reduction=reduction, eps=None, validate=p.validate, with_grad=with_grad,
        **p.options, **extra,
    )  # fmt: skip
    return h, value, grad


def sweep(
    p: Problem,
    *,
    rows: int,
    reduction: str,
    with_grad: bool,
    parts: bool = False,
    accumulate: Callable[[Array, Array, Array], Array] = _plus_matmul,
) -> tuple[Any, tuple[Array, ...] | None]:
    """The loss (reduced as asked, in the accumulation dtype; with ``parts`` a
    :class:`~xce.LossParts`) and, with ``with_grad``, the gradients ``(d_hidden (M, D),
    d_weight (V, D)[, d_bias (V,)])`` in the accumulation dtype, over chunks of ``rows``
    rows."""
    xp = p.xp
    n_rows, dim = p.hidden.shape
    n_classes = p.weight.shape[0]
    on = device(p.hidden)
    w_acc = xp.astype(p.weight, p.acc_dtype, copy=False)
    b_acc = None if p.bias is None else xp.astype(p.bias, p.acc_dtype, copy=False)
    per_row = reduction == "none"
    chunk_reduction = "none" if per_row else "sum_and_count"
    n_fields = 3 if parts else 1
    zero = xp.zeros((), dtype=p.acc_dtype, device=on)
    totals, count = [zero] * n_fields, zero
    pieces: list[list[Array]] = [[] for _ in range(n_fields)]
    log_z: list[Array] = []
    d_hidden: Any = None
    d_weight: Any = None
    d_bias: Any = None
    if with_grad:
        d_hidden = xp.empty((n_rows, dim), dtype=p.acc_dtype, device=on)
        d_weight = xp.zeros((n_classes, dim), dtype=p.acc_dtype, device=on)
        d_bias = None if p.bias is None else xp.zeros((n_classes,), dtype=p.acc_dtype, device=on)
    for start in range(0, n_rows, rows):
        stop = min(start + rows, n_rows)
        h, value, grad = _chunk(p, start, stop, w_acc, b_acc, chunk_reduction, with_grad, parts)
        fields, chunk_count, chunk_log_z = unpack(value, parts=parts, per_row=per_row)
        if per_row:
            for piece, field in zip(pieces, fields, strict=True):
                piece.append(field)
        else:
            totals = [t + f for t, f in zip(totals, fields, strict=True)]
            count = count + chunk_count
        if parts:
            log_z.append(chunk_log_z)
        if grad is not None:
            d_hidden[start:stop, ...] = grad @ w_acc
            d_weight = accumulate(d_weight, xp.matrix_transpose(grad), h)
            if d_bias is not None:
                d_bias += xp.sum(grad, axis=0)
        del h, value, grad  # the chunk's arrays go before the next chunk's are made

    def joined(arrays):
        return xp.concat(arrays) if arrays else xp.zeros((0,), dtype=p.acc_dtype, device=on)

    summed = [joined(piece) for piece in pieces] if per_row else totals
    result, scale = assemble(xp, reduction, summed, count, joined(log_z) if parts else None)
    shard = p.options.get("class_shard")
    if with_grad and shard is not None:
        # Each member's d_hidden holds its classes' share g·W: the sum over the group is the
        # gradient, the one (M, D) array a class-sharded sweep communicates.
        d_hidden = shard.all_sum(d_hidden)
    if with_grad and scale is not None:
        d_hidden *= scale
        d_weight *= scale
        if d_bias is not None:
            d_bias *= scale
    if not with_grad:
        return result, None
    grads = (d_hidden, d_weight) if d_bias is None else (d_hidden, d_weight, d_bias)
    return result, grads
