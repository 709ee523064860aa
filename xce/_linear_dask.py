"""Linear cross entropy on Dask: lazily, by blocks of rows of ``hidden``.

Each row block (with its labels, weights and mask; ``weight`` and ``bias`` whole) is one
task that runs the chunked sweep on the block's own arrays (NumPy, CuPy…) with reduction
``"sum_and_count"``; the totals and counts are summed, the block gradients of ``hidden``
concatenated and those of ``weight`` and ``bias`` summed, and the ``"mean"`` division comes
last. The call builds the graph and computes nothing; an out-of-range label is a NaN row, as
everywhere values are not read. Imported only when a Dask array is seen.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import dask
import dask.array as da
import numpy as np

from . import _linear_chunks as chunks
from ._array_api import array_namespace
from ._linear_chunks import Problem

__all__ = ["run"]


def _block(problem, labels, hidden, weight, bias, sample_weight, where, options, rows,
           reduction, with_grad):  # fmt: skip
    """The sweep on one block of materialised arrays."""
    xp = array_namespace(hidden)
    block = dataclasses.replace(
        problem, xp=xp, labels=labels, hidden=hidden, weight=weight, bias=bias,
        sample_weight=sample_weight, where=where, options=options, validate=False,
    )  # fmt: skip
    return chunks.sweep(block, rows=rows, reduction=reduction, with_grad=with_grad)


def run(
    problem: Problem, batch: tuple[int, ...], out_dtype: Any, *, rows: int, reduction: str,
    with_grad: bool,
) -> tuple[Any, tuple[Any, ...] | None]:  # fmt: skip
    """The lazy loss (and gradients) of a Dask call."""
    xp = problem.xp
    hidden = problem.hidden.rechunk({1: -1})
    dim = hidden.shape[1]
    n_classes = problem.weight.shape[0]
    acc = problem.acc_dtype
    row_chunks = hidden.chunks[0]

    def blocks(a):
        if a is None:
            return [None] * len(row_chunks)
        return a.rechunk((row_chunks,)).to_delayed().ravel().tolist()

    labels, sample_weight, where = map(
        blocks, (problem.labels, problem.sample_weight, problem.where)
    )
    weight = problem.weight.rechunk(-1).to_delayed().ravel()[0]
    bias = None if problem.bias is None else problem.bias.rechunk(-1).to_delayed().ravel()[0]
    options = {
        k: (v.rechunk(-1).to_delayed().ravel()[0] if isinstance(v, da.Array) else v)
        for k, v in problem.options.items()
    }
    # The arrays go as the blocks' own arguments: a dataclass holding Dask arrays would be
    # unpacked by dask.delayed, computing them whole.
    template = dataclasses.replace(
        problem, xp=None, labels=None, hidden=None, weight=None, bias=None,
        sample_weight=None, where=None, options={},
    )  # fmt: skip
    block_reduction = "none" if reduction == "none" else "sum_and_count"
    task = dask.delayed(_block, nout=2)
    results = [
        task(template, lab, h, weight, bias, s, ok, options, rows, block_reduction, with_grad)
        for lab, h, s, ok in zip(
            labels, hidden.to_delayed().ravel().tolist(), sample_weight, where, strict=True
        )
    ]
    meta = np.empty((0,), dtype=acc)
    if reduction == "none":
        pieces = [
            da.from_delayed(value, shape=(n,), dtype=acc, meta=meta)
            for (value, _), n in zip(results, row_chunks, strict=True)
        ]
        value = xp.reshape(xp.concat(pieces) if pieces else xp.zeros((0,), dtype=acc), batch)
        return xp.astype(value, out_dtype), None

    def scalar(delayed_pair, i):
        return da.from_delayed(delayed_pair[i], shape=(), dtype=acc, meta=meta)

    totals = [scalar(value, 0) for value, _ in results]
    counts = [scalar(value, 1) for value, _ in results]
    zero = xp.zeros((), dtype=acc)
    total = sum(totals, zero)
    count = sum(counts, zero)
    result, scale = chunks.reduce_totals(xp, reduction, total, count)
    result = (
        tuple(xp.astype(v, out_dtype) for v in result)
        if isinstance(result, tuple)
        else (xp.astype(result, out_dtype))
    )
    if not with_grad:
        return result, None
    d_hidden = xp.concat([
        da.from_delayed(grads[0], shape=(n, dim), dtype=acc, meta=meta)
        for (_, grads), n in zip(results, row_chunks, strict=True)
    ])  # fmt: skip
    d_weight = sum(
        (da.from_delayed(grads[1], shape=(n_classes, dim), dtype=acc, meta=meta)
         for _, grads in results),
        xp.zeros((n_classes, dim), dtype=acc),
    )  # fmt: skip
    grads = [d_hidden, d_weight]
    if problem.bias is not None:
        grads.append(sum(
            (da.from_delayed(g[2], shape=(n_classes,), dtype=acc, meta=meta) for _, g in results),
            xp.zeros((n_classes,), dtype=acc),
        ))  # fmt: skip
    if scale is not None:
        grads = [g * scale for g in grads]
    likes = (problem.hidden, problem.weight, problem.bias)
    grads[0] = xp.reshape(grads[0], (*batch, dim))
    return result, tuple(xp.astype(g, like.dtype) for g, like in zip(grads, likes, strict=False))
