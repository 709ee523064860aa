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

import numpy as np

from . import _linear_chunks as chunks
from ._array_api import array_namespace
from ._linear_chunks import Problem

__all__ = ["run"]


def _block(problem, labels, hidden, weight, bias, sample_weight, where, options, rows,
           reduction, with_grad, parts):  # fmt: skip
    """The sweep on one block of materialised arrays: ``(fields, count, log_z, grads)``."""
    xp = array_namespace(hidden)
    block = dataclasses.replace(
        problem, xp=xp, labels=labels, hidden=hidden, weight=weight, bias=bias,
        sample_weight=sample_weight, where=where, options=options, validate=False,
    )  # fmt: skip
    value, grads = chunks.sweep(block, rows=rows, reduction=reduction, with_grad=with_grad,
                                parts=parts)  # fmt: skip
    return (*chunks.unpack(value, parts=parts, per_row=reduction == "none"), grads)


def run(
    problem: Problem, *, rows: int, reduction: str, with_grad: bool, parts: bool
) -> tuple[Any, tuple[Any, ...] | None]:
    """The lazy loss (and gradients) of a Dask call, flat and in the accumulation dtype."""
    import dask
    import dask.array as da

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

    def whole(a):
        return a.rechunk(-1).to_delayed().ravel()[0] if isinstance(a, da.Array) else a

    labels, sample_weight, where = map(
        blocks, (problem.labels, problem.sample_weight, problem.where)
    )
    options = {k: whole(v) for k, v in problem.options.items()}
    # The arrays go as the blocks' own arguments: a dataclass holding Dask arrays would be
    # unpacked by dask.delayed, computing them whole.
    template = dataclasses.replace(
        problem, xp=None, labels=None, hidden=None, weight=None, bias=None,
        sample_weight=None, where=None, options={},
    )  # fmt: skip
    block_reduction = "none" if reduction == "none" else "sum_and_count"
    task = dask.delayed(_block, nout=4)
    weight, bias = whole(problem.weight), whole(problem.bias)
    results = [
        task(
            template, lab, h, weight, bias, s, ok, options, rows, block_reduction, with_grad, parts
        )
        for lab, h, s, ok in zip(
            labels, hidden.to_delayed().ravel().tolist(), sample_weight, where, strict=True
        )
    ]
    meta = np.empty((0,), dtype=acc)

    def lazy(delayed, shape):
        return da.from_delayed(delayed, shape=shape, dtype=acc, meta=meta)

    def joined(pieces):
        return xp.concat(pieces) if pieces else xp.zeros((0,), dtype=acc)

    n_fields = 3 if parts else 1
    zero = xp.zeros((), dtype=acc)
    if reduction == "none":
        fields = [
            joined([lazy(r[0][i], (n,)) for r, n in zip(results, row_chunks, strict=True)])
            for i in range(n_fields)
        ]
        count = None
    else:
        fields = [sum((lazy(r[0][i], ()) for r in results), zero) for i in range(n_fields)]
        count = sum((lazy(r[1], ()) for r in results), zero)
    log_z = None
    if parts:
        log_z = joined([lazy(r[2], (n,)) for r, n in zip(results, row_chunks, strict=True)])
    value, scale = chunks.assemble(xp, reduction, fields, count, log_z)
    if not with_grad:
        return value, None
    d_hidden = joined([lazy(r[3][0], (n, dim)) for r, n in zip(results, row_chunks, strict=True)])
    shapes = [(n_classes, dim)] + ([] if problem.bias is None else [(n_classes,)])
    grads = [d_hidden] + [
        sum((lazy(r[3][i + 1], shape) for r in results), xp.zeros(shape, dtype=acc))
        for i, shape in enumerate(shapes)
    ]
    if scale is not None:
        grads = [g * scale for g in grads]
    return value, tuple(grads)
