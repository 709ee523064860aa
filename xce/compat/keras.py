"""Keras's loss functions (``keras.losses.<name>``, Keras 3) on any array type.

Each function returns what the function of the same name in ``keras.losses`` returns: the
unreduced per-sample loss, with Keras's shapes and rules, computed by the xce core:

- ``epsilon()`` = 1e-7 (Keras's default; a value changed with ``keras.config.set_epsilon``
  is not read). Binary losses clip probabilities to [ε, 1 - ε]; categorical ones first
  renormalise ``y_pred`` along ``axis`` (``p / Σ p``), then clip to [ε, 1 - ε]; KL clips
  both arguments to [ε, 1]; Poisson uses ``log(ŷ + ε)``. Logits are never clipped.
- Label smoothing: binary y·(1 - s) + s/2, categorical y·(1 - s) + s/C.
- ``binary_crossentropy``, ``binary_focal_crossentropy`` and ``poisson`` average over
  ``axis`` (the last one by default): one value per sample, not per output.
- ``y_true`` may be integer or float, as Keras casts it; sparse labels may be whole floats
  (``1.0``) and may carry a trailing axis of length 1 (Keras squeezes it).

On JAX arrays every function works under ``jax.jit`` and ``jax.grad``; on torch tensors,
under autograd.

Deliberate divergences (where Keras returns a wrong number without a word):

- Labels outside [0, C) other than ``ignore_class`` (Keras on JAX: a silent loss of 0),
  fractional float labels (silently truncated), probabilities that are negative, NaN or
  infinite, a row of probabilities summing to 0 (NaN in Keras), ``y_true`` outside [0, 1]
  for the cross entropies and negative ``y_pred`` for Poisson: a ``ValueError`` on eager
  host data (NumPy, array-api-strict, CPU torch); elsewhere (JAX, Dask, GPU) the row is NaN.
  Unnormalised non-negative probabilities are accepted, since Keras renormalises them.
- ``y_true`` and ``y_pred`` must have the same shape (``kl_divergence`` and ``poisson`` do not
  broadcast; the sparse loss takes ``y_pred``'s shape without ``axis``, or with a 1 there).
- With ``label_smoothing`` and ``axis`` other than -1, Keras divides s by the size of the
  *last* axis; here C is the size of ``axis``.
- float16 / bfloat16 inputs are computed in float32 (Keras computes in the input dtype).
- ``ctc`` / ``CTC``: a label outside [0, C) or equal to 0 (the blank) within the counted
  length (Keras counts the non-zero entries, wherever they are) is an error or a NaN row;
  float64 logits are computed in float64 (Keras: float32).

As in Keras, NumPy arrays, numbers and lists may stand beside another library's arrays
(they are converted to it), and one class is accepted (with Keras's ``SyntaxWarning`` where
Keras warns).

The classes (``BinaryCrossentropy``, ``CategoricalCrossentropy``,
``SparseCategoricalCrossentropy``, ``BinaryFocalCrossentropy``,
``CategoricalFocalCrossentropy``, ``KLDivergence``, ``Poisson``) take Keras's constructor
arguments and reduce these functions' losses by Keras's rules (``sum_over_batch_size``,
``sum``, ``mean``, ``mean_with_sample_weight``, ``none``), with ``sample_weight``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence

import xce

from .._array_api import device, is_array_api_obj
from .._types import Array
from .._validation import normalise_axis
from ._common import checked, divide_or_nan, ensure, integral_labels, one_class_padded
from ._ctc_epsilon import CTC, ctc
from ._docstrings import with_parameters
from ._keras_classes import (  # the classes; they call the functions below when called
    KERAS_OPTIONS,
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    KLDivergence,
    Poisson,
    SparseCategoricalCrossentropy,
)
from ._keras_pointwise import EPSILON, keras_arrays, kl_divergence, poisson

# The functions' arguments: the classes' options, and the two arrays (see _docstrings).
_ARRAYS = {
    "y_true": ("array", "Targets, shaped like ``y_pred``."),
    "y_pred": ("array", "Probabilities, or logits with ``from_logits=True``."),
}
_OPTIONS = {**KERAS_OPTIONS, **_ARRAYS}
_LABELS = {
    **_OPTIONS,
    "y_true": ("int array", "Labels: ``y_pred.shape`` without ``axis``."),
    "ignore_class": ("int", "A label whose entries are 0."),
}

__all__ = [
    "CTC",
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "KLDivergence",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "ctc",
    "kl_divergence",
    "poisson",
    "sparse_categorical_crossentropy",
]


def _warn_one_class(y_pred, loss_name):
    """Keras's warning for a last axis of one class (it still computes the loss)."""
    if y_pred.ndim and y_pred.shape[-1] == 1:
        warnings.warn(
            f"In loss {loss_name}, expected y_pred.shape to be (batch_size, num_classes) with "
            f"num_classes > 1. Received: y_pred.shape={tuple(y_pred.shape)}. Consider using "
            "'binary_crossentropy' if you only have 2 classes.",
            SyntaxWarning,
            stacklevel=3,
        )


def _one_class(xp, y_true, y_pred, axis, label_smoothing, *, fill):
    """One class (Keras computes it; the core refuses it): smoothing applied here with C = 1,
    then a second class of ``fill`` (-inf logit, zero probability) with a zero target."""
    if y_pred.ndim == 0 or y_pred.shape[axis] != 1:
        return y_true, y_pred, label_smoothing
    if y_true is not None:
        y_true = xp.astype(y_true, y_pred.dtype)
        if not isinstance(label_smoothing, numbers.Real) or label_smoothing:
            y_true = y_true * (1 - label_smoothing) + label_smoothing
        y_true = one_class_padded(xp, y_true, axis, 0.0)
    return y_true, one_class_padded(xp, y_pred, axis, fill), 0.0


def _renormalised(xp, y_pred, axis, *, check_values):
    """Keras's probability preprocessing: p / Σ p along ``axis``, then clip to [ε, 1 - ε]."""
    if check_values:
        ensure(
            xp, ~(xp.isfinite(y_pred) & (y_pred >= 0)),
            "y_pred holds negative, NaN or infinite values but must hold probabilities "
            "(Keras renormalises them); did you mean from_logits=True?",
        )  # fmt: skip
    total = xp.sum(y_pred, axis=axis, keepdims=True)
    if check_values:
        ensure(
            xp, total == 0,
            "y_pred has a row of zeros along the class axis: Keras would divide it by its "
            "sum, 0, and return NaN",
        )  # fmt: skip
    return xp.clip(divide_or_nan(xp, y_pred, total), EPSILON, 1.0 - EPSILON)


@with_parameters(_OPTIONS)
def binary_crossentropy(
    y_true: Array,
    y_pred: Array,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Array:
    """Twin of ``keras.losses.binary_crossentropy``: averaged over ``axis``.

    The element-wise binary cross entropy, averaged over ``axis``; shape ``y_pred.shape``
    without ``axis``.

    Native: ``xce.binary_cross_entropy(y_true, y_pred, eps=1e-7, reduction="none")``, then
    the mean over ``axis``.

    Returns
    -------
    array
        The unreduced loss, shape ``y_pred.shape`` without ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import keras
    >>> keras.binary_crossentropy(np.array([[0, 1], [0, 0]]), np.array([[0.6, 0.4], [0.4, 0.6]]))
    array([0.91629073, 0.71355818])
    """
    xp, y_true, y_pred = keras_arrays(y_true, y_pred)
    per_output = xce.binary_cross_entropy(
        y_true, y_pred, from_logits=from_logits, label_smoothing=label_smoothing,
        eps=EPSILON, reduction="none", validate=checked(y_true, y_pred),
    )  # fmt: skip
    return xp.mean(per_output, axis=axis)


@with_parameters(_OPTIONS)
def categorical_crossentropy(
    y_true: Array,
    y_pred: Array,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Array:
    """Twin of ``keras.losses.categorical_crossentropy``: one value per sample.

    Probabilities are renormalised along ``axis`` and clipped to [1e-7, 1 - 1e-7] first.
    Native: ``xce.categorical_cross_entropy(y_true, y_pred, axis=axis, reduction="none")``.

    Returns
    -------
    array
        The unreduced loss, shape ``y_pred.shape`` without ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import keras
    >>> keras.categorical_crossentropy(np.array([[0, 1, 0], [0, 0, 1]]),
    ...                                np.array([[0.05, 0.95, 0], [0.1, 0.8, 0.1]]))
    array([0.05129329, 2.30258509])
    """
    xp, y_true, y_pred = keras_arrays(y_true, y_pred)
    _warn_one_class(y_pred, "categorical_crossentropy")
    eps = None
    axis = normalise_axis(axis, y_pred.ndim) if y_pred.ndim else axis
    if not from_logits:
        y_pred = _renormalised(xp, y_pred, axis, check_values=checked(y_true, y_pred))
        eps = 0.0  # clipped above, to Keras's bounds
    fill = -math.inf if from_logits else 0.0
    y_true, y_pred, label_smoothing = _one_class(xp, y_true, y_pred, axis, label_smoothing,
                                                 fill=fill)  # fmt: skip
    return xce.categorical_cross_entropy(
        y_true, y_pred, from_logits=from_logits, axis=axis, label_smoothing=label_smoothing,
        eps=eps, reduction="none", validate=False,  # Keras takes any targets; y_pred: above
    )  # fmt: skip


def _ignore_class(ignore_class):
    if ignore_class is None:
        return None
    if isinstance(ignore_class, bool) or not isinstance(ignore_class, numbers.Integral):
        raise TypeError(f"ignore_class must be an int or None, got {type(ignore_class).__name__}")
    return int(ignore_class)


@with_parameters(_LABELS)
def sparse_categorical_crossentropy(
    y_true: Array,
    y_pred: Array,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
) -> Array:
    """Twin of ``keras.losses.sparse_categorical_crossentropy``.

    Shape ``y_pred.shape`` without ``axis``; entries whose label is ``ignore_class`` are 0.

    ``y_true`` may have a trailing 1 along ``axis`` and may hold whole floats. Native:
    ``xce.sparse_categorical_cross_entropy(labels, y_pred, axis=axis,
    ignore_index=ignore_class, reduction="none")``.

    Returns
    -------
    array
        The unreduced loss, shape ``y_pred.shape`` without ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import keras
    >>> keras.sparse_categorical_crossentropy(np.array([1, 2]),
    ...                                       np.array([[0.05, 0.95, 0], [0.1, 0.8, 0.1]]))
    array([0.05129329, 2.30258509])
    """
    xp, y_true, y_pred = keras_arrays(y_true, y_pred, same_shape=False)
    ignore_class = _ignore_class(ignore_class)
    if y_pred.ndim == 0:
        raise ValueError("y_pred is 0-d; sparse_categorical_crossentropy needs a class axis")
    axis = normalise_axis(axis, y_pred.ndim)
    if y_true.ndim == y_pred.ndim and y_true.shape[axis] == 1:
        y_true = xp.squeeze(y_true, axis=axis)
    labels = integral_labels(xp, y_true, y_pred.shape[axis], ignore=ignore_class)
    eps = None
    if not from_logits:
        if ignore_class is not None and tuple(labels.shape) == (
            tuple(y_pred.shape[:axis]) + tuple(y_pred.shape[axis + 1 :])
        ):
            # Keras zeroes the predictions of ignored entries; whatever they hold is unused.
            kept = xp.expand_dims(labels != ignore_class, axis=axis)
            y_pred = xp.where(kept, y_pred, xp.ones_like(y_pred))
        y_pred = _renormalised(xp, y_pred, axis, check_values=checked(y_true, y_pred))
        eps = 0.0
    if y_pred.shape[axis] == 1:  # label 1, out of range, stays so with the pad class
        poison = 3 if ignore_class == 2 else 2
        labels = xp.where(labels == 1, xp.full_like(labels, poison), labels)
    _, y_pred, _ = _one_class(xp, None, y_pred, axis, 0.0, fill=-math.inf if from_logits else 0.0)
    return xce.sparse_categorical_cross_entropy(
        labels, y_pred, from_logits=from_logits, axis=axis, ignore_index=ignore_class,
        eps=eps, reduction="none",
    )  # fmt: skip


@with_parameters(_OPTIONS)
def binary_focal_crossentropy(
    y_true: Array,
    y_pred: Array,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Array:
    """Twin of ``keras.losses.binary_focal_crossentropy``: averaged over ``axis``.

    Keras applies the sigmoid to logits and then clips like probabilities, so logits go
    through ``xce.sigmoid`` here too. Native: ``xce.binary_focal_cross_entropy(y_true,
    y_pred, gamma=gamma, alpha=alpha if apply_class_balancing else None, eps=1e-7,
    reduction="none")``, then the mean over ``axis``.

    Returns
    -------
    array
        The unreduced loss, shape ``y_pred.shape`` without ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import keras
    >>> keras.binary_focal_crossentropy(np.array([[0, 1], [0, 0]]),
    ...                                 np.array([[0.6, 0.4], [0.4, 0.6]]), gamma=2.0)
    array([0.32986466, 0.20579838])
    """
    xp, y_true, y_pred = keras_arrays(y_true, y_pred)
    if from_logits:
        y_pred = xce.sigmoid(y_pred)
    per_output = xce.binary_focal_cross_entropy(
        y_true, y_pred, gamma=gamma, alpha=alpha if apply_class_balancing else None,
        label_smoothing=label_smoothing, eps=EPSILON, reduction="none",
        validate=checked(y_true, y_pred),
    )  # fmt: skip
    return xp.mean(per_output, axis=axis)


@with_parameters(_OPTIONS)
def categorical_focal_crossentropy(
    y_true: Array,
    y_pred: Array,
    alpha: float | Sequence[float] | Array = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Array:
    """Twin of ``keras.losses.categorical_focal_crossentropy``: one value per sample.

    ``alpha`` is a float or one weight per class (a list or an array). Logits go through the
    softmax, then, like probabilities, are renormalised and clipped to [1e-7, 1 - 1e-7].
    Native: ``xce.categorical_focal_cross_entropy(y_true, y_pred, gamma=gamma, alpha=alpha,
    axis=axis, reduction="none")``.

    Returns
    -------
    array
        The unreduced loss, shape ``y_pred.shape`` without ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import keras
    >>> keras.categorical_focal_crossentropy(np.array([[0, 1, 0], [0, 0, 1]]),
    ...                                      np.array([[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]]))
    array([2.63401289e-04, 6.75912094e-01])
    """
    xp, y_true, y_pred = keras_arrays(y_true, y_pred)
    if y_pred.ndim == 0:
        raise ValueError("y_pred is 0-d; categorical_focal_crossentropy needs a class axis")
    _warn_one_class(y_pred, "categorical_focal_crossentropy")
    axis = normalise_axis(axis, y_pred.ndim)
    if from_logits:
        y_pred = xce.softmax(y_pred, axis=axis)
    y_pred = _renormalised(
        xp, y_pred, axis, check_values=not from_logits and checked(y_true, y_pred)
    )
    if isinstance(alpha, (list, tuple)):
        alpha = xp.asarray(alpha, dtype=y_pred.dtype, device=device(y_pred))
    elif is_array_api_obj(alpha):
        alpha = xp.astype(alpha, y_pred.dtype, copy=False)
    if y_pred.shape[axis] == 1 and getattr(alpha, "ndim", 0):
        alpha = one_class_padded(xp, xp.reshape(alpha, (-1,)), 0, 1.0)
    y_true, y_pred, label_smoothing = _one_class(xp, y_true, y_pred, axis, label_smoothing,
                                                 fill=0.0)  # fmt: skip
    return xce.categorical_focal_cross_entropy(
        y_true, y_pred, axis=axis, gamma=gamma, alpha=alpha, label_smoothing=label_smoothing,
        eps=0.0, reduction="none", validate=False,  # Keras takes any targets; y_pred: above
    )  # fmt: skip
