"""Linear cross entropy on JAX: the sweep as one ``lax.scan`` over equal chunks (the rows
padded with excluded ones), compiled once whatever the number of rows, and a
``jax.custom_vjp`` so that ``jax.grad`` (under ``jax.jit`` or not) differentiates it with
the same bounded memory.

The forward of the scalar reductions computes the gradients in its sweep and keeps them as
residuals (the inputs' size, never the logits'); the backward scales them by the incoming
cotangent. ``reduction="none"`` keeps the inputs instead and sweeps again in the backward,
the per-token cotangents folded into the sample weights. Imported only when a JAX array is
seen.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from . import _sparse as sparse
from ._linear_chunks import Problem, reduce_totals

__all__ = ["run"]


def _split_options(options):
    """Array options travel as operands, the others (hashable) as the static part."""
    static = tuple(sorted((k, v) for k, v in options.items() if not isinstance(v, jax.Array)))
    dynamic = {k: v for k, v in options.items() if isinstance(v, jax.Array)}
    return static, dynamic


def _scan(static, hidden, weight, bias, dynamic, with_grad):
    rows, reduction, acc, static_options = static
    labels, sample_weight, where, array_options = dynamic
    options = {**dict(static_options), **array_options}
    n_rows, dim = hidden.shape
    n_classes = weight.shape[0]
    n_chunks = -(-n_rows // rows)
    pad = n_chunks * rows - n_rows

    def chunked(a, fill):
        a = jnp.concatenate([a, jnp.full((pad, *a.shape[1:]), fill, dtype=a.dtype)])
        return jnp.reshape(a, (n_chunks, rows, *a.shape[1:]))

    valid = jnp.ones((n_rows,), dtype=bool) if where is None else where
    # Padding rows are excluded through `where`: no loss, no count, no gradient.
    xs = (chunked(hidden, 0), chunked(labels, 0), chunked(valid, False),
          None if sample_weight is None else chunked(sample_weight, 0))  # fmt: skip
    w_acc = weight.astype(acc)
    b_acc = None if bias is None else bias.astype(acc)
    chunk_reduction = "none" if reduction == "none" else "sum_and_count"

    def step(carry, x):
        h, lab, ok, s = x
        h = h.astype(acc)
        logits = h @ w_acc.T
        if b_acc is not None:
            logits = logits + b_acc
        value, g = sparse.loss_and_gradient(
            lab, logits, from_logits=True, axis=-1, sample_weight=s, where=ok,
            reduction=chunk_reduction, eps=None, validate=False, with_grad=with_grad,
            **options,
        )  # fmt: skip
        total, count, d_w, d_b = carry
        if chunk_reduction == "none":
            return carry, (value, None)
        total, count = total + value[0], count + value[1]
        if not with_grad:
            return (total, count, d_w, d_b), (None, None)
        d_w = d_w + g.T @ h
        d_b = None if d_b is None else d_b + jnp.sum(g, axis=0)
        return (total, count, d_w, d_b), (None, g @ w_acc)

    zero = jnp.zeros((), dtype=acc)
    d_w0 = jnp.zeros((n_classes, dim), dtype=acc) if with_grad else None
    d_b0 = jnp.zeros((n_classes,), dtype=acc) if with_grad and bias is not None else None
    (total, count, d_w, d_b), (per_row, d_h) = jax.lax.scan(step, (zero, zero, d_w0, d_b0), xs)
    if reduction == "none":
        return jnp.reshape(per_row, (-1,))[:n_rows], None
    value, scale = reduce_totals(jnp, reduction, total, count)
    if not with_grad:
        return value, None
    grads = [jnp.reshape(d_h, (-1, dim))[:n_rows], d_w] + ([] if d_b is None else [d_b])
    if scale is not None:
        grads = [g * scale for g in grads]
    return value, tuple(grads)


_scan_jit = jax.jit(_scan, static_argnums=(0, 5))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _loss(static, hidden, weight, bias, dynamic):
    return _scan_jit(static, hidden, weight, bias, dynamic, False)[0]


def _loss_fwd(static, hidden, weight, bias, dynamic):
    if static[1] == "none":
        value = _scan_jit(static, hidden, weight, bias, dynamic, False)[0]
        return value, (hidden, weight, bias, dynamic)
    value, grads = _scan_jit(static, hidden, weight, bias, dynamic, True)
    return value, (grads, dynamic)


def _zero_cotangents(dynamic):
    def zero(a):
        if jnp.issubdtype(a.dtype, jnp.inexact):
            return jnp.zeros_like(a)
        return jnp.zeros(a.shape, dtype=jax.dtypes.float0)

    return jax.tree_util.tree_map(zero, dynamic)


def _loss_bwd(static, residuals, g):
    if static[1] == "none":
        hidden, weight, bias, dynamic = residuals
        labels, s, where, options = dynamic
        s = g if s is None else s * g
        summed = (static[0], "sum", *static[2:])
        _, grads = _scan_jit(summed, hidden, weight, bias, (labels, s, where, options), True)
        zero = _zero_cotangents(dynamic)
    else:
        grads, dynamic = residuals
        g = g[0] if isinstance(g, tuple) else g
        grads = tuple(d * g for d in grads)
        zero = _zero_cotangents(dynamic)
    d_bias = grads[2] if len(grads) == 3 else None
    return grads[0], grads[1], d_bias, zero


_loss.defvjp(_loss_fwd, _loss_bwd)


def run(
    problem: Problem, batch: tuple[int, ...], out_dtype: Any, *, rows: int, reduction: str,
    with_grad: bool,
) -> tuple[Any, tuple[Any, ...] | None]:  # fmt: skip
    """The loss (and with ``with_grad`` the gradients) of a JAX call, laid out and cast as
    the caller's arrays."""
    static_options, array_options = _split_options(problem.options)
    static = (rows, reduction, problem.acc_dtype, static_options)
    dynamic = (problem.labels, problem.sample_weight, problem.where, array_options)
    hidden, weight, bias = problem.hidden, problem.weight, problem.bias
    if with_grad:
        value, grads = _scan_jit(static, hidden, weight, bias, dynamic, True)
    else:
        value, grads = _loss(static, hidden, weight, bias, dynamic), None
    if reduction == "none":
        value = jnp.reshape(value, batch)
    value = (
        tuple(v.astype(out_dtype) for v in value)
        if isinstance(value, tuple)
        else (value.astype(out_dtype))
    )
    if grads is None:
        return value, None
    d_hidden = jnp.reshape(grads[0], (*batch, hidden.shape[-1])).astype(hidden.dtype)
    rest = tuple(g.astype(a.dtype) for g, a in zip(grads[1:], (weight, bias), strict=False))
    return value, (d_hidden, *rest)
