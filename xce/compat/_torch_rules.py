"""The rules PyTorch's ``torch.nn.functional`` losses share, for the twins in
:mod:`xce.compat.torch` and its helper modules: the reductions it accepts, where its class
dimension is, its no-broadcast shape rule, and its mean over elements."""

from __future__ import annotations

import math

from .._array_api import device
from ._common import as_array, broadcast_to, divide_or_nan

__all__ = [
    "REDUCTIONS",
    "check_reduction",
    "class_axis",
    "elementwise_reduction",
    "mean_over",
    "same_shape",
    "weight_like",
]

REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction, allowed=REDUCTIONS):
    if reduction not in allowed:
        raise ValueError(
            f"reduction={reduction!r} is not a valid value; use one of {', '.join(allowed)}"
        )


def class_axis(input):
    if input.ndim == 0:
        raise ValueError("input is 0-d; it needs a class dimension: (C,), (N, C) or (N, C, ...)")
    return 1 if input.ndim >= 2 else 0


def same_shape(input, target):
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(
            f"target has shape {tuple(target.shape)} but input has shape {tuple(input.shape)}; "
            "they must match (xce never broadcasts targets)"
        )


def mean_over(xp, total, n):
    return divide_or_nan(xp, total, xp.asarray(float(n), dtype=total.dtype, device=device(total)))


def elementwise_reduction(xp, loss, reduction):
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    return total if reduction == "sum" else mean_over(xp, total, math.prod(loss.shape))


def weight_like(xp, weight, input, name="weight"):
    if weight is None:
        return None
    return broadcast_to(xp, as_array(xp, weight, input, name), input.shape, name, "input")
