"""Optax's KL divergences (``optax.losses.kl_divergence`` and its log-target form), which
are no cross entropy; re-exported by :mod:`xce.compat.optax`, whose docstring lists the
departures from Optax."""

from __future__ import annotations

from .._agnostic import log_or_neg_inf
from .._types import Array
from .._validation import check_floating, check_where
from ._common import broadcast_to, checked, ensure, gather, normalise_axes
from ._docstrings import with_parameters

__all__ = ["kl_divergence", "kl_divergence_with_log_targets"]

_OPTIONS = {
    "log_predictions": ("array", "Predicted log-probabilities."),
    "targets": ("array", "Target probabilities, broadcast to ``log_predictions``."),
    "log_targets": ("array", "Target log-probabilities, broadcast to ``log_predictions``."),
    "axis": ("int, tuple of ints or None", "The axes summed over (None: all)."),
    "where": ("bool array", "The elements to include in the sum."),
}


def _summed(xp, terms, axis, where):
    """Optax's ``sum(terms, axis, where=where)``: ``where`` masks elements."""
    if where is not None:
        check_where(xp, where)
        mask = broadcast_to(xp, where, terms.shape, "where", "the loss terms")
        terms = xp.where(mask, terms, xp.zeros_like(terms))
    axes = tuple(range(terms.ndim)) if axis is None else normalise_axes(axis, terms.ndim)
    return xp.sum(terms, axis=axes)


@with_parameters(_OPTIONS)
def kl_divergence(
    log_predictions: Array,
    targets: Array,
    axis: int | tuple[int, ...] | None = -1,
    where: Array | None = None,
) -> Array:
    """Twin of ``optax.losses.kl_divergence``: Σ targets·(log targets - log_predictions).

    Summed over ``axis``, a zero target adding 0.

    Native, for probabilities: ``xce.kl_divergence(targets, predictions, axis=axis)``.

    Returns
    -------
    array
        ``log_predictions``'s shape without ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import optax
    >>> optax.kl_divergence(np.log(np.array([[0.9, 0.1]])), np.array([[0.5, 0.5]]))
    array([0.51082562])
    """
    xp, arrays = gather(log_predictions=log_predictions, targets=targets, where=where)
    log_predictions, targets, where = (arrays[k] for k in ("log_predictions", "targets", "where"))
    check_floating(xp, log_predictions, "log_predictions")
    t = broadcast_to(
        xp, xp.astype(targets, log_predictions.dtype), log_predictions.shape, "targets",
        "log_predictions",
    )  # fmt: skip
    if checked(log_predictions, targets):
        ensure(xp, ~(t >= 0), "targets holds negative or NaN probabilities")
    zero = t == 0
    log_t = log_or_neg_inf(xp, xp.where(zero, xp.ones_like(t), t))
    terms = xp.where(zero, xp.zeros_like(t), t * (log_t - log_predictions))
    return _summed(xp, terms, axis, where)


@with_parameters(_OPTIONS)
def kl_divergence_with_log_targets(
    log_predictions: Array,
    log_targets: Array,
    axis: int | tuple[int, ...] | None = -1,
    where: Array | None = None,
) -> Array:
    """Twin of ``optax.losses.kl_divergence_with_log_targets``.

    Σ exp(log_targets)·(log_targets - log_predictions) over ``axis``, a target of
    probability 0 adding 0.

    Returns
    -------
    array
        ``log_predictions``'s shape without ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import optax
    >>> optax.kl_divergence_with_log_targets(np.log(np.array([[0.9, 0.1]])),
    ...                                      np.log(np.array([[0.5, 0.5]])))
    array([0.51082562])
    """
    xp, arrays = gather(log_predictions=log_predictions, log_targets=log_targets, where=where)
    log_predictions, log_targets, where = (
        arrays[k] for k in ("log_predictions", "log_targets", "where")
    )
    check_floating(xp, log_predictions, "log_predictions")
    lt = broadcast_to(
        xp, xp.astype(log_targets, log_predictions.dtype), log_predictions.shape, "log_targets",
        "log_predictions",
    )  # fmt: skip
    weight = xp.exp(lt)
    diff = xp.where(weight == 0, xp.zeros_like(lt), lt - log_predictions)
    return _summed(xp, weight * diff, axis, where)
