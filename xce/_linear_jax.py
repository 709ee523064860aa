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

from . import _sparse as sparse
from ._linear_chunks import Problem, assemble, unpack
from ._parts import LossParts

__all__ = ["run"]


def _split_options(options):
    """Array options travel as operands, the others (hashable) as the static part."""
    import jax

    static = tuple(sorted((k, v) for k, v in options.items() if not isinstance(v, jax.Array)))
    dynamic = {k: v for k, v in options.items() if isinstance(v, jax.Array)}
    return static, dynamic


def _scan(static, hidden, weight, bias, dynamic, with_grad):
    import jax
    import jax.numpy as jnp

    rows, reduction, parts, acc, static_options = static
    labels, sample_weight, where, array_options = dynamic
    options = {**dict(static_options), **array_options}
    if parts:
        options["return_parts"] = True
    n_rows, dim = hidden.shape
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
    per_row = reduction == "none"

    def step(carry, x):
        h, lab, ok, s = x
        h = h.astype(acc)
        logits = h @ w_acc.T
        if b_acc is not None:
            logits = logits + b_acc
        value, g = sparse.loss_and_gradient(
            lab, logits, from_logits=True, axis=-1, sample_weight=s, where=ok,
            reduction="none" if per_row else "sum_and_count", eps=None, validate=False,
            with_grad=with_grad, **options,
        )  # fmt: skip
        fields, count, log_z = unpack(value, parts=parts, per_row=per_row)
        totals, total_count, d_w, d_b = carry
        if not per_row:
            totals = tuple(t + f for t, f in zip(totals, fields, strict=True))
            total_count = total_count + count
        d_h = None
        if with_grad:
            d_w = d_w + g.T @ h
            d_b = None if d_b is None else d_b + jnp.sum(g, axis=0)
            d_h = g @ w_acc
        return (totals, total_count, d_w, d_b), (fields if per_row else None, log_z, d_h)

    zero = jnp.zeros((), dtype=acc)
    # zeros_like, not zeros: inside shard_map the weight (a class shard) varies over the
    # mesh axis, and the scan's carry must vary as its updates do.
    d_w0 = jnp.zeros_like(w_acc) if with_grad else None
    d_b0 = jnp.zeros_like(b_acc) if with_grad and bias is not None else None
    carry = ((zero,) * (3 if parts else 1), zero, d_w0, d_b0)
    (totals, count, d_w, d_b), (rows_out, log_z, d_h) = jax.lax.scan(step, carry, xs)

    def flat(a, *tail):
        return jnp.reshape(a, (-1, *tail))[:n_rows]

    fields = [flat(f) for f in rows_out] if per_row else list(totals)
    value, scale = assemble(jnp, reduction, fields, count, flat(log_z) if parts else None)
    if not with_grad:
        return value, None
    d_h = flat(d_h, dim)
    shard = dict(static_options).get("class_shard")
    if shard is not None:
        # Each member's d_hidden holds its classes' share g·W: their sum is the gradient.
        d_h = shard.all_sum(d_h)
    grads = [d_h, d_w] + ([] if d_b is None else [d_b])
    if scale is not None:
        grads = [g * scale for g in grads]
    return value, tuple(grads)


@functools.cache
def _compiled():
    """``(scan, loss)``: the sweep compiled by ``jax.jit``, and the loss as a
    ``jax.custom_vjp`` over it. Made on first use, so that importing this module needs no
    JAX (the docstrings' test session imports every module)."""
    import jax
    import jax.numpy as jnp

    scan = jax.jit(_scan, static_argnums=(0, 5))

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
    def loss(static, hidden, weight, bias, dynamic):
        return scan(static, hidden, weight, bias, dynamic, False)[0]

    def loss_fwd(static, hidden, weight, bias, dynamic):
        if static[1] == "none":
            value = scan(static, hidden, weight, bias, dynamic, False)[0]
            return value, (hidden, weight, bias, dynamic)
        value, grads = scan(static, hidden, weight, bias, dynamic, True)
        return value, (grads, dynamic)

    def zero_cotangents(dynamic):
        def zero(a):
            if jnp.issubdtype(a.dtype, jnp.inexact):
                return jnp.zeros_like(a)
            return jnp.zeros(a.shape, dtype=jax.dtypes.float0)

        return jax.tree_util.tree_map(zero, dynamic)

    def loss_bwd(static, residuals, g):
        g = g.loss if isinstance(g, LossParts) else g
        if static[1] == "none":
            hidden, weight, bias, dynamic = residuals
            labels, s, where, options = dynamic
            s = g if s is None else s * g
            summed = (static[0], "sum", False, *static[3:])
            _, grads = scan(summed, hidden, weight, bias, (labels, s, where, options), True)
        else:
            grads, dynamic = residuals
            g = g[0] if isinstance(g, tuple) else g
            grads = tuple(d * g for d in grads)
        d_bias = grads[2] if len(grads) == 3 else None
        return grads[0], grads[1], d_bias, zero_cotangents(dynamic)

    loss.defvjp(loss_fwd, loss_bwd)
    return scan, loss


def run(
    problem: Problem, *, rows: int, reduction: str, with_grad: bool, parts: bool
) -> tuple[Any, tuple[Any, ...] | None]:
    """The loss (and with ``with_grad`` the gradients) of a JAX call: compiled, and
    differentiable by ``jax.grad`` through the custom VJP."""
    static_options, array_options = _split_options(problem.options)
    static = (rows, reduction, parts, problem.acc_dtype, static_options)
    dynamic = (problem.labels, problem.sample_weight, problem.where, array_options)
    hidden, weight, bias = problem.hidden, problem.weight, problem.bias
    scan, loss = _compiled()
    if with_grad:
        return scan(static, hidden, weight, bias, dynamic, True)
    return loss(static, hidden, weight, bias, dynamic), None
