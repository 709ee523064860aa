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
from typing import Any

import torch

from ._linear_chunks import Problem, sweep

__all__ = ["accumulate", "needs_autograd", "run_autograd"]


def accumulate(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """out += a @ b without a temporary of out's size (d_weight is (V, D))."""
    return out.addmm_(a, b)


def needs_autograd(problem: Problem) -> bool:
    """Whether autograd records this call: grad mode on and an input requiring grad."""
    if not torch.is_grad_enabled():
        return False
    return any(
        t is not None and t.requires_grad for t in (problem.hidden, problem.weight, problem.bias)
    )


def _cast(grad: torch.Tensor | None, like: torch.Tensor | None) -> torch.Tensor | None:
    if grad is None or like is None or not like.requires_grad:
        return None
    return grad.to(like.dtype)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, problem, rows, reduction):
        problem = dataclasses.replace(problem, hidden=hidden, weight=weight, bias=bias)
        ctx.reduction = reduction
        ctx.likes = (hidden, weight, bias)
        if reduction == "none":
            value, _ = sweep(problem, rows=rows, reduction="none", with_grad=False,
                             accumulate=accumulate)  # fmt: skip
            ctx.problem, ctx.rows = problem, rows
            return value
        value, grads = sweep(problem, rows=rows, reduction=reduction, with_grad=True,
                             accumulate=accumulate)  # fmt: skip
        ctx.grads = grads
        if reduction == "sum_and_count":
            ctx.mark_non_differentiable(value[1])
            return value
        return value

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
            grads = tuple(grad * g for grad in ctx.grads)
            ctx.grads = None  # free the saved gradients once they are used
        hidden, weight, bias = ctx.likes
        out = [_cast(grads[0], hidden), _cast(grads[1], weight)]
        out.append(_cast(grads[2], bias) if bias is not None else None)
        return (*out, None, None, None)


def run_autograd(problem: Problem, *, rows: int, reduction: str) -> Any:
    """The loss (accumulation dtype; a pair for ``"sum_and_count"``) as a node of the
    autograd graph whose backward gives d_hidden, d_weight and d_bias."""
    value = _LinearCrossEntropy.apply(
        problem.hidden, problem.weight, problem.bias, problem, rows, reduction
    )
    return tuple(value) if reduction == "sum_and_count" else value
