"""Keras's two losses that are no cross entropy, ``kl_divergence`` and ``poisson``, with the
input handling that every Keras function twin shares; re-exported by
:mod:`xce.compat.keras`, whose docstring lists the departures from Keras."""

from __future__ import annotations

import xce

from .._types import Array, Namespace
from .._validation import check_floating, shapes_match
from ._common import checked, ensure, gather
from ._docstrings import with_parameters

__all__ = ["EPSILON", "keras_arrays", "kl_divergence", "poisson"]

EPSILON = 1e-7  # keras.config.epsilon()

_ARRAYS = {
    "y_true": ("array", "Targets (probabilities, or counts for ``poisson``)."),
    "y_pred": ("array, shape like ``y_true``", "Predictions (probabilities, or rates)."),
}


def keras_arrays(
    y_true: Array, y_pred: Array, *, same_shape: bool = True
) -> tuple[Namespace, Array, Array]:
    """The namespace and both arrays in it (host data converted, as Keras converts it)."""
    xp, arrays = gather(y_pred=y_pred, y_true=y_true)
    y_true, y_pred = arrays["y_true"], arrays["y_pred"]
    check_floating(xp, y_pred, "y_pred")
    if same_shape and not shapes_match(y_true.shape, y_pred.shape):
        raise ValueError(
            "y_true and y_pred must have the same shape, got y_true.shape="
            f"{tuple(y_true.shape)} and y_pred.shape={tuple(y_pred.shape)}"
        )
    return xp, y_true, y_pred


@with_parameters(_ARRAYS)
def kl_divergence(y_true: Array, y_pred: Array) -> Array:
    """Twin of ``keras.losses.kl_divergence``: Σ y·log(y / ŷ) over the last axis.

    Both are clipped to [1e-7, 1] (Keras's documented clipping, not an error). Native:
    ``xce.kl_divergence``.

    Returns
    -------
    array
        The unreduced loss, shape ``y_pred.shape`` without the last axis.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import keras
    >>> keras.kl_divergence(np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]]))
    array([0.51082562])
    """
    xp, y_true, y_pred = keras_arrays(y_true, y_pred)
    y_true = xp.clip(xp.astype(y_true, y_pred.dtype), EPSILON, 1.0)
    y_pred = xp.clip(y_pred, EPSILON, 1.0)
    return xce.kl_divergence(y_true, y_pred, axis=-1)


@with_parameters(_ARRAYS)
def poisson(y_true: Array, y_pred: Array) -> Array:
    """Twin of ``keras.losses.poisson``: mean over the last axis of ŷ - y·log(ŷ + 1e-7).

    Poisson is not a cross entropy and has no native xce loss; this is its one-line formula.

    Returns
    -------
    array
        The unreduced loss, shape ``y_pred.shape`` without the last axis.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import keras
    >>> keras.poisson(np.array([[1.0, 0.0]]), np.array([[1.0, 0.5]]))
    array([0.74999995])
    """
    xp, y_true, y_pred = keras_arrays(y_true, y_pred)
    if checked(y_true, y_pred):
        ensure(xp, ~(y_pred >= 0), "y_pred holds negative or NaN rates; Poisson needs ŷ ≥ 0")
    y_true = xp.astype(y_true, y_pred.dtype)
    return xp.mean(y_pred - y_true * xp.log(y_pred + EPSILON), axis=-1)
