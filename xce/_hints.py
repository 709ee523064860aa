"""Keyword hints: a call with another framework's argument names gets xce's names back.

``F.cross_entropy(input, target, weight=...)``, Keras's ``categorical_crossentropy(y_true,
y_pred, from_logits)`` with positional options, TensorFlow's ``labels=``/``logits=``: each is a
bare ``TypeError`` from Python. :func:`keyword_hints` turns it into one that names xce's
argument. It costs nothing on a valid call: the check runs only after Python has refused the
call.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["keyword_hints"]

F = TypeVar("F", bound=Callable[..., Any])

# Other frameworks' names for xce's arguments: torch, Keras, TensorFlow, Optax, scikit-learn.
ALIASES = {
    "input": "y_pred",
    "target": "y_true",
    "logits": "y_pred (with from_logits=True)",
    "labels": "y_true",
    "predictions": "y_pred",
    "preds": "y_pred",
    "weight": "class_weight (one weight per class; per-sample weights are sample_weight)",
    "weights": "sample_weight",
    "dim": "axis",
    "smoothing": "label_smoothing",
    "ignore_class": "ignore_index",
    "mask": "where",
    "size_average": 'reduction ("mean", "sum", "none" or "sum_and_count")',
    "reduce": 'reduction ("mean", "sum", "none" or "sum_and_count")',
    "apply_class_balancing": "alpha",
    "epsilon": "eps (the probability clip; poly-1's coefficient is epsilon)",
}


def _unknown_keyword_message(name: str, unknown: list[str], accepted: list[str]) -> str:
    hints = []
    for word in unknown:
        if word in ALIASES:
            hints.append(f"{word}= is {ALIASES[word]} in xce")
        else:
            close = difflib.get_close_matches(word, accepted, n=1)
            hints.append(f"{word}= is unknown" + (f"; did you mean {close[0]}=?" if close else ""))
    return (
        f"{name}() got unexpected keyword arguments: " + "; ".join(hints)
        + f". It takes {', '.join(accepted)}"
    )  # fmt: skip


def keyword_hints(function: F) -> F:
    """Wrap a public loss so that a wrong keyword or a positional option names the fix."""
    parameters = inspect.signature(function).parameters
    accepted = list(parameters)
    positional = sum(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters.values()
    )

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except TypeError:
            unknown = [k for k in kwargs if k not in parameters]
            if unknown:
                message = _unknown_keyword_message(function.__name__, unknown, accepted)
                raise TypeError(message) from None
            if len(args) > positional:
                raise TypeError(
                    f"{function.__name__}() takes y_true and y_pred positionally; every option "
                    f"is keyword-only, e.g. from_logits=True (got {len(args)} positional "
                    "arguments)"
                ) from None
            raise

    return wrapper  # type: ignore[return-value]
