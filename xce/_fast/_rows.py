"""The generic row runner: a per-row kernel over cache-sized blocks of rows, or whole-array.

A kernel written whole-array makes several (N, C) temporaries: for large inputs they spill out
of cache and multiply peak memory. On eager namespaces whose arrays can be written (NumPy,
torch, CuPy, array-api-strict) the same kernel runs here on blocks of about
``_config.ROW_BLOCK_BYTES`` of logits, and each block's loss and gradient are written into
output arrays allocated here, so the gradient is written to memory once and temporaries stay
bounded by the block. JAX (immutable; XLA fuses anyway) and Dask (lazy; chunks are its blocks)
run whole-array. This is the one place of the generic path that tells backends apart.
"""

from __future__ import annotations

from .._array_api import device, is_dask_namespace, is_jax_namespace, may_be_differentiated, size
from . import _config

__all__ = ["block_rows", "in_row_blocks", "serial"]


def _worth_blocking(xp, x):
    n = size(x)
    if is_jax_namespace(xp) or is_dask_namespace(xp) or x.ndim == 0 or n is None:
        return False
    if may_be_differentiated(x):  # writes into fresh buffers would detach autograd's graph
        return False
    return n * (xp.finfo(x.dtype).bits // 8) > _config.ROW_BLOCK_BYTES


def block_rows(xp, x, budget_bytes: int | None = None) -> int | None:
    """Rows of ``x`` (classes last) per block of about ``budget_bytes`` (default
    ``ROW_BLOCK_BYTES``) of logits, for kernels that walk row blocks themselves; ``None``:
    whole-array (JAX, Dask, arrays an autodiff system traces, small inputs)."""
    if not _worth_blocking(xp, x):
        return None
    budget = _config.ROW_BLOCK_BYTES if budget_bytes is None else budget_bytes
    return max(1, budget // (x.shape[-1] * (xp.finfo(x.dtype).bits // 8)))


def _as_rows(xp, a, x_shape):
    """``a`` reshaped so that its leading axis runs over the flattened rows of x."""
    if a is None or a.ndim == 0:
        return a
    if tuple(a.shape) == tuple(x_shape):
        return xp.reshape(a, (-1, x_shape[-1]))
    return xp.reshape(a, (-1,))  # one value per row (labels, per-row scales)


def _dask_whole(kernel, x, row_args, *, with_grad, grad_scale):
    """``kernel`` on Dask arrays whole, an empty batch (N = 0) in one chunk.

    Dask mis-shapes the blocks of an axis of length 0 split into several chunks once a kernel
    broadcasts or reshapes it (``(x - m).sum(axis=-1)`` fails at compute time; the flattening
    gather of the sparse kernel refuses to reshape). The kernel sees every empty axis in one
    chunk; its results get ``x``'s chunks back, so they meet the caller's weights and mask
    laid out as before.
    """
    if not any(n == 0 for n in x.shape):
        return kernel(x, *row_args, with_grad=with_grad, grad_scale=grad_scale)

    def one_chunk(a):
        if a is None or not any(n == 0 for n in a.shape):
            return a
        return a.rechunk({axis: -1 for axis, n in enumerate(a.shape) if n == 0})

    loss, grad = kernel(
        one_chunk(x), *(one_chunk(a) for a in row_args),
        with_grad=with_grad, grad_scale=one_chunk(grad_scale),
    )  # fmt: skip
    loss = loss.rechunk(x.chunks[: loss.ndim])
    return loss, None if grad is None else grad.rechunk(x.chunks)


def serial(n_rows, rows_per_block, n_elements, block):
    """Call ``block(lo, hi)`` for every row block, in order, on the calling thread."""
    for lo in range(0, n_rows, rows_per_block):
        block(lo, min(lo + rows_per_block, n_rows))


def in_row_blocks(xp, kernel, x, row_args, *, with_grad, grad_scale, spread=serial):
    """``kernel(x, *row_args, with_grad=, grad_scale=)`` over row blocks, or whole-array.

    ``row_args`` and ``grad_scale`` have one entry per row of ``x`` (shape ``x.shape[:-1]``)
    or per element (``x.shape``), or are 0-d / ``None``. ``spread(n_rows, rows_per_block,
    n_elements, block)`` calls ``block(lo, hi)`` for every block: in order (:func:`serial`),
    or shared among threads by a native fast path (the blocks write disjoint rows of the
    outputs).
    """
    if is_dask_namespace(xp):
        return _dask_whole(kernel, x, row_args, with_grad=with_grad, grad_scale=grad_scale)
    step = block_rows(xp, x)
    if step is None:
        return kernel(x, *row_args, with_grad=with_grad, grad_scale=grad_scale)
    n_cols = x.shape[-1]
    rows_x = xp.reshape(x, (-1, n_cols))
    rows_args = [_as_rows(xp, a, x.shape) for a in row_args]
    rows_scale = _as_rows(xp, grad_scale, x.shape)
    n_rows = rows_x.shape[0]

    def run(lo, hi):
        def cut(a):
            return a if a is None or a.ndim == 0 else a[lo:hi, ...]

        return kernel(
            rows_x[lo:hi, ...], *(cut(a) for a in rows_args),
            with_grad=with_grad, grad_scale=cut(rows_scale),
        )  # fmt: skip

    # The first block runs alone: its results tell the outputs' dtype and trailing shape.
    first_hi = min(step, n_rows)
    first_loss, first_grad = run(0, first_hi)
    loss = xp.empty((n_rows, *first_loss.shape[1:]), dtype=first_loss.dtype, device=device(x))
    grad = None
    if with_grad:
        grad = xp.empty(rows_x.shape, dtype=first_grad.dtype, device=device(x))

    def write(lo, hi, block_loss, block_grad):
        loss[lo:hi, ...] = block_loss
        if with_grad:
            grad[lo:hi, ...] = block_grad

    write(0, first_hi, first_loss, first_grad)
    rest = n_rows - first_hi
    if rest:
        spread(
            rest, step, rest * n_cols,
            lambda lo, hi: write(first_hi + lo, first_hi + hi, *run(first_hi + lo, first_hi + hi)),
        )  # fmt: skip
    loss_shape = x.shape if loss.ndim == 2 else x.shape[:-1]
    loss = xp.reshape(loss, loss_shape)
    return loss, None if grad is None else xp.reshape(grad, x.shape)
