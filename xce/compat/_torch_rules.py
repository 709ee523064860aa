"""The rules PyTorch's ``torch.nn.functional`` losses share, for the twins in
:mod:`xce.compat.torch` and its helper modules: the reductions it accepts, where its class
dimension is, its no-broadcast shape rule, its mean over elements, and its argument names in
the errors (``torch_names``)."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

from .._array_api import device
from ._common import as_array, broadcast_to, divide_or_nan

__all__ = [
    "REDUCTIONS",
    "check_reduction",
    "class_axis",
    "elementwise_reduction",
    "mean_over",
    "same_shape",
    "torch_message",
    "torch_names",
    "weight_like",
]

REDUCTIONS = ("none", "mean", "sum")

# The core's hints that name its own options, in torch's terms (torch has no axis=, where=,
# from_logits=, and takes its arguments in the other order).
_HINTS = (
    (r"did you mean axis=-?\d+\? With y_pred of shape \(N, C, d1, \.\.\.\), as torch lays it "
     r"out, the classes are axis 1", "the classes are dim 1 of input (N, C, d1, ...), and "
     "target holds one class index per sample (N, d1, ...)"),
    (r"one-hot or soft targets go to categorical_cross_entropy",
     "class probabilities must be a floating target"),
    (r" or mask it with where=\.\.\.", ""),
    (r"; did you mean from_logits=True\? \(y_pred looks like raw scores, not probabilities\)",
     "; for raw scores (logits) use binary_cross_entropy_with_logits"),
    (r"xce takes \(y_true, y_pred\): the targets first, the predictions second \(torch's "
     r"F\.cross_entropy takes \(input, target\)\)",
     "these functions take (input, target), as torch's do: the predictions first"),
    (r"\by_true\b", "target"),
    (r"\by_pred\b", "input"),
    (r"\b(class|sample)_weight\b", "weight"),
)  # fmt: skip
_F = TypeVar("_F", bound=Callable[..., Any])


def torch_message(message: str) -> str:
    """A message of the xce core with torch's argument names (``input``, ``target``,
    ``weight``) and hints."""
    for pattern, replacement in _HINTS:
        message = re.sub(pattern, replacement, message)
    return message


def torch_names(function: _F) -> _F:
    """``function`` with the core's errors re-raised in torch's names (the twins call the
    core with ``y_true=target, y_pred=input, class_weight=weight``; its messages are kept)."""

    @functools.wraps(function)
    def twin(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (ValueError, TypeError) as exc:
            message = str(exc)
            renamed = torch_message(message)
            if renamed == message or len(exc.args) != 1:
                raise
            raise type(exc)(renamed) from None

    return twin  # type: ignore[return-value]


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
