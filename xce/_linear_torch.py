"""Linear cross entropy under torch.autograd, with the sweep's bounded memory.

For the scalar reductions the forward runs the fused sweep *with* the gradients and saves
them, and the backward only scales them by the incoming gradient: training calls forward
then backward once, so one sweep (three matmuls per chunk) is the least work, and what is
saved is the size of the inputs, never of the logits. ``reduction="none"`` cannot know the
per-token incoming gradients in the forward, so its backward sweeps again with the sample
weights multiplied by them (reduction ``"sum"``): the same bounded memory, one more sweep.
Imported only when a torch tensor is seen.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from ._linear_chunks import Problem, sweep
from ._parts import LossParts

__all__ = ["accumulate", "needs_autograd", "run"]


def accumulate(out: Any, a: Any, b: Any) -> Any:
    """out += a @ b without a temporary of out's size (d_weight is (V, D))."""
    return out.addmm_(a, b)


def needs_autograd(problem: Problem) -> bool:
    """Whether autograd records this call: grad mode on and an input requiring grad."""
    import torch

    if not torch.is_grad_enabled():
        return False
    return any(
        t is not None and t.requires_grad for t in (problem.hidden, problem.weight, problem.bias)
    )


def _cast(grad: Any, like: Any) -> Any:
    if grad is None or like is None or not like.requires_grad:
        return None
    return grad.to(like.dtype)


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, LossParts):
        return [t for field in value for t in _flatten(field)]
    return list(value) if isinstance(value, tuple) else [value]


def _unflatten(outs: tuple[Any, ...], *, reduction: str, parts: bool) -> Any:
    width = 2 if reduction == "sum_and_count" else 1

    def field(i):
        return tuple(outs[i * width : (i + 1) * width]) if width == 2 else outs[i]

    if not parts:
        return field(0)
    return LossParts(field(0), field(1), field(2), outs[3 * width])


@functools.cache
def _function() -> Any:
    """The ``torch.autograd.Function``, made on first use (importing this module needs no
    torch: the docstrings' test session imports every module)."""
    import torch

    class _LinearCrossEntropy(torch.autograd.Function):
        """The outputs are the result's tensors, flattened; only the loss (the first) has a
        gradient, the count and the parts (for logging) are constants."""

        @staticmethod
        def forward(ctx, hidden, weight, bias, problem, rows, reduction, parts):
            problem = dataclasses.replace(problem, hidden=hidden, weight=weight, bias=bias)
            ctx.reduction = reduction
            ctx.likes = (hidden, weight, bias)
            per_row = reduction == "none"
            value, grads = sweep(problem, rows=rows, reduction=reduction, with_grad=not per_row,
                                 parts=parts, accumulate=accumulate)  # fmt: skip
            if per_row:
                ctx.problem, ctx.rows = problem, rows
            ctx.grads = grads
            outs = _flatten(value)
            ctx.mark_non_differentiable(*outs[1:])
            return tuple(outs)

        @staticmethod
        def backward(ctx, *grad_outputs):
            if ctx.reduction == "none":
                problem = ctx.problem
                g = grad_outputs[0].to(problem.acc_dtype)
                s = g if problem.sample_weight is None else problem.sample_weight * g
                problem = dataclasses.replace(problem, sample_weight=s)
                _, grads = sweep(problem, rows=ctx.rows, reduction="sum", with_grad=True,
                                 accumulate=accumulate)  # fmt: skip
            else:
                g = grad_outputs[0]
                # ctx.grads stay for a second backward (retain_graph=True); they go with the graph.
                grads = tuple(grad * g for grad in ctx.grads)
            hidden, weight, bias = ctx.likes
            out = [_cast(grads[0], hidden), _cast(grads[1], weight)]
            out.append(_cast(grads[2], bias) if bias is not None else None)
            return (*out, None, None, None, None)

    return _LinearCrossEntropy


def run(
    problem: Problem, *, rows: int, reduction: str, with_grad: bool, parts: bool
) -> tuple[Any, tuple[Any, ...] | None]:
    """The sweep on torch tensors: as a node of the autograd graph (whose backward gives
    d_hidden, d_weight and d_bias) when autograd records the call, else plain, with
    ``addmm_`` accumulating d_weight in place."""
    if with_grad or not needs_autograd(problem):
        return sweep(problem, rows=rows, reduction=reduction, with_grad=with_grad, parts=parts,
                     accumulate=accumulate)  # fmt: skip
    outs = _function().apply(
        problem.hidden, problem.weight, problem.bias, problem, rows, reduction, parts
    )
    return _unflatten(outs, reduction=reduction, parts=parts), None
