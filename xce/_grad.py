"""``value_and_grad``: the loss and its analytic gradient in one fused evaluation."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from ._table import ALL_LOSSES

__all__ = ["value_and_grad"]


def value_and_grad(loss_fn: Callable[..., Any]) -> Callable[..., tuple[Any, Any]]:
    """Turn an xce loss into a function returning ``(loss, ∂loss/∂y_pred)``.

    The gradient is analytic and computed in the same pass as the loss, sharing the softmax
    (or sigmoid): per sample it is ``(Σ_c w_c q_c)·softmax(x) - w ⊙ q`` on logits (``σ(x) -
    y`` for unweighted binary logits), ``-w q / p`` inside the clip range on probabilities,
    then scaled by the sample weights and by the ``"mean"`` denominator Σ sᵢ·ωᵢ. It works on
    every backend, including NumPy and CuPy, which have no autodiff.

    Parameters
    ----------
    loss_fn : callable
        A loss of the family whose row in the table of losses (``xce._table``) has an
        analytic gradient: :func:`xce.binary_cross_entropy`,
        :func:`xce.categorical_cross_entropy`, :func:`xce.sparse_categorical_cross_entropy`,
        :func:`xce.binary_focal_cross_entropy`, :func:`xce.categorical_focal_cross_entropy`
        and :func:`xce.poly1_cross_entropy`; and the structured losses
        :func:`xce.linear_cross_entropy` (whose gradient is ``(d_hidden, d_weight[,
        d_bias])``, a tuple over its arrays) and :func:`xce.ctc_loss` (the gradient with
        respect to ``y_pred`` from the forward–backward sweep).

    Returns
    -------
    callable
        Same signature as ``loss_fn``. It returns ``(loss, grad)`` with ``grad`` of
        ``y_pred``'s shape, dtype, namespace and device. For ``reduction="sum_and_count"`` it
        returns ``((total, count), ∂total/∂y_pred)``: divide the accumulated gradient by the
        accumulated count for an exact mean across micro-batches. Excluded entries (``where``,
        ``ignore_index``) get a zero gradient; clipped probabilities get 0 (the clip's slope).

    Raises
    ------
    TypeError
        ``loss_fn`` is not one of the xce losses.
    ValueError
        When called with ``reduction="none"`` (the loss is not a scalar), or on any error the
        loss itself raises.

    Examples
    --------
    >>> import numpy as np, xce
    >>> loss, grad = xce.value_and_grad(xce.sparse_categorical_cross_entropy)(
    ...     np.array([0]), np.array([[0.0, 0.0]]), from_logits=True)
    >>> grad
    array([[-0.5,  0.5]])
    """
    fused = next(
        (info.driver for info in ALL_LOSSES if info.analytic_gradient and info.public is loss_fn),
        None,
    )
    if fused is None:
        names = ", ".join(f"xce.{info.name}" for info in ALL_LOSSES if info.analytic_gradient)
        raise TypeError(f"value_and_grad supports {names}; got {loss_fn!r}")
    # Every loss is (*arrays, *, options): (y_true, y_pred) for most, (y_true, hidden, weight)
    # for linear cross entropy. Bind by hand, as inspect's bind costs more than a small loss.
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(loss_fn).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }

    positional = [
        name
        for name, parameter in inspect.signature(loss_fn).parameters.items()
        if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]

    @functools.wraps(loss_fn)
    def loss_and_grad(*arrays: Any, **options: Any) -> tuple[Any, Any]:
        if len(arrays) < len(positional):  # arrays given by name (y_true=..., y_pred=...)
            missing = positional[len(arrays) :]
            if not all(name in options for name in missing):
                raise TypeError(f"{loss_fn.__name__}() missing argument(s) {missing}")
            arrays = (*arrays, *(options.pop(name) for name in missing))
        unknown = options.keys() - defaults.keys()
        if unknown:
            raise TypeError(
                f"{loss_fn.__name__}() got unexpected keyword argument(s) {sorted(unknown)}"
            )
        options = {**defaults, **options}
        if options["reduction"] == "none":
            raise ValueError(
                "value_and_grad needs a scalar loss: use reduction='mean', 'sum' or "
                "'sum_and_count', not 'none'"
            )
        return fused(*arrays, **options, with_grad=True)

    loss_and_grad.__doc__ = (
        f"{loss_fn.__name__} and its gradient with respect to y_pred; returns (loss, grad).\n\n"
        + (loss_fn.__doc__ or "")
    )
    return loss_and_grad
