"""Optax's classification losses (``optax.losses``, Optax 0.2) on any array type.

Each function takes Optax's arguments (logits first, then labels) and returns Optax's
per-example losses, unreduced, computed by the xce core:

- ``axis`` may be an int, a tuple of ints (the class axes, flattened into one in order, so
  integer labels index the flattened slice) or ``None`` (every axis), where Optax allows it.
- ``where`` masks classes: an array of ``logits``' shape, or of the batch shape (then it
  masks whole examples). Masked classes leave the softmax and the sum; an example with no
  class left has loss 0.
- ``labels`` broadcast to the shape of ``logits``; the result has ``logits``' shape without
  the class axes (element-wise losses: ``logits``' shape).

On JAX arrays every function works under ``jax.jit`` and ``jax.grad`` (no value is read), and
``alpha``, ``gamma`` and ``epsilon`` may be traced (``jit``, ``vmap``, ``grad`` over them), as
in Optax; on torch tensors, under autograd.

Deliberate divergences (where Optax returns NaN or a silently wrong number):

- ``softmax_cross_entropy`` treats a zero label on a -inf logit as 0, like
  ``safe_softmax_cross_entropy`` (Optax: NaN). The KL divergences give 0 where the target is
  0 even if the log-prediction is -inf (Optax: NaN).
- An integer label outside [0, C): ``ValueError`` on eager host data (NumPy,
  array-api-strict, CPU torch); NaN in that example elsewhere (Optax: NaN, or -1 silently
  read as the last class). A label whose class is masked out by ``where`` gives +inf (Optax
  subtracts a logit that is not in the softmax).
- Binary labels outside [0, 1] and negative KL targets: ``ValueError`` on eager host data.
  Soft labels are taken as given, as Optax does (any real values, rows of any sum).
- ``labels`` must broadcast to ``logits``' shape: ``logits`` are never broadcast up to the
  labels' shape ((N, 1) logits with (N,) labels is an error, not an (N, N) result).
- float16 / bfloat16 inputs are computed in float32.
- ``ctc_loss``: a label outside [0, K) or equal to ``blank_id`` within its length, paddings
  other than 0.0 / 1.0 and label paddings that are not right-aligned: ``ValueError`` on
  eager host data, NaN for that sequence elsewhere (Optax computes a meaningless number).

As in Optax, NumPy arrays and lists may stand beside JAX (or any) arrays: they are
converted to that library; one class gives 0.
"""

from __future__ import annotations

import math

import xce

from .._types import Array
from .._validation import check_floating, check_where
from ._common import (
    broadcast_to,
    checked,
    flatten_axes,
    gather,
    normalise_axes,
    one_class_logits,
)
from ._ctc_epsilon import ctc_loss
from ._docstrings import with_parameters
from ._optax_divergence import kl_divergence, kl_divergence_with_log_targets

__all__ = [
    "ctc_loss",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "poly_loss_cross_entropy",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
]

# The functions' arguments, as their Parameters sections give them (see _docstrings).
_OPTIONS = {
    "logits": ("array", "Unnormalised scores (log-probabilities up to a constant)."),
    "labels": ("array", "Targets shaped like ``logits``: class probabilities, or 0/1."),
    "axis": ("int, tuple of ints or None", "The class axis or axes (None: all)."),
    "where": ("bool array", "The classes to include; the others take no part."),
    "alpha": ("float", "The positives' weight α in [0, 1]; None weighs both alike."),
    "gamma": ("float", "The focal exponent γ ≥ 0."),
    "epsilon": ("float", "The Poly-1 coefficient ε."),
}
_LABELS = {
    **_OPTIONS,
    "labels": ("int array", "Class indices: ``logits``'s shape without ``axis``."),
}


def _axes(axis, ndim):
    return tuple(range(ndim)) if axis is None else normalise_axes(axis, ndim)


def _class_mask(xp, where, logits, axes):
    """Optax's ``where`` as a boolean mask of ``logits``' shape (``None``: no mask)."""
    if where is None:
        return None
    check_where(xp, where)
    if where.ndim != logits.ndim:
        for a in sorted(axes):  # a batch-shaped mask: expand over the class axes, as Optax
            where = xp.expand_dims(where, axis=a)
    return broadcast_to(xp, where, logits.shape, "where", "logits")


def _classes_last(xp, logits, labels, where, axis, *, labels_like_logits):
    """Logits, labels and the class mask with the class axes merged into one last axis.

    Masked classes become -inf logits with zero labels (the core's masked class: finite,
    zero gradient); an example with no class left gets finite stand-ins and is excluded
    through the core's ``where``.
    """
    axes = _axes(axis, logits.ndim)
    mask = _class_mask(xp, where, logits, axes)
    logits = flatten_axes(xp, logits, axes)
    if labels_like_logits:
        labels = flatten_axes(xp, labels, axes)
    if mask is None:
        return logits, labels, None
    mask = flatten_axes(xp, mask, axes)
    rows = xp.any(mask, axis=-1)
    masked_value = xp.where(rows[..., None], xp.full_like(logits, -math.inf), xp.zeros_like(logits))
    logits = xp.where(mask, logits, masked_value)
    if labels_like_logits:
        labels = xp.where(mask, labels, xp.zeros_like(labels))
    return logits, labels, rows


def _prepared(logits, labels, where=None):
    """The namespace and the arrays in it: NumPy arrays and lists beside JAX arrays are
    converted, as ``jnp`` does."""
    xp, arrays = gather(logits=logits, labels=labels, where=where)
    check_floating(xp, arrays["logits"], "logits")
    return xp, arrays["logits"], arrays["labels"], arrays["where"]


def _one_class(xp, x, y):
    """One class (Optax returns 0): see ``one_class_logits``."""
    return one_class_logits(xp, x, y, -1)


@with_parameters(_OPTIONS)
def softmax_cross_entropy(
    logits: Array,
    labels: Array,
    axis: int | tuple[int, ...] | None = -1,
    where: Array | None = None,
) -> Array:
    """Twin of ``optax.losses.softmax_cross_entropy``: -Σ labels·log_softmax(logits) over ``axis``.

    Native: ``xce.categorical_cross_entropy(labels, logits, from_logits=True, axis=axis,
    reduction="none")``.

    Returns
    -------
    array
        The unreduced loss, ``logits``'s shape without ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import optax
    >>> optax.softmax_cross_entropy(np.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]]),
    ...                             np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    array([0.27612971, 2.9517988 ])
    """
    xp, logits, labels, where = _prepared(logits, labels, where)
    labels = broadcast_to(xp, labels, logits.shape, "labels", "logits")
    x, y, rows = _classes_last(xp, logits, labels, where, axis, labels_like_logits=True)
    x, y = _one_class(xp, x, y)
    return xce.categorical_cross_entropy(
        y, x, from_logits=True, where=rows, reduction="none", validate=False
    )


@with_parameters(_LABELS)
def softmax_cross_entropy_with_integer_labels(
    logits: Array,
    labels: Array,
    axis: int | tuple[int, ...] | None = -1,
    where: Array | None = None,
) -> Array:
    """Twin of ``optax.losses.softmax_cross_entropy_with_integer_labels``.

    logsumexp(logits) minus the label's logit; with a tuple ``axis`` a label is a flat index
    into those axes.

    Native: ``xce.sparse_categorical_cross_entropy(labels, logits, from_logits=True,
    axis=axis, reduction="none")``.

    Returns
    -------
    array
        The unreduced loss, ``logits``'s shape without ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import optax
    >>> optax.softmax_cross_entropy_with_integer_labels(
    ...     np.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]]), np.array([0, 1]))
    array([0.27612971, 2.9517988 ])
    """
    xp, logits, labels, where = _prepared(logits, labels, where)
    x, _, rows = _classes_last(xp, logits, None, where, axis, labels_like_logits=False)
    x, labels = _one_class(xp, x, labels)
    return xce.sparse_categorical_cross_entropy(
        labels, x, from_logits=True, where=rows, reduction="none"
    )


@with_parameters(_OPTIONS)
def safe_softmax_cross_entropy(logits: Array, labels: Array) -> Array:
    """Twin of ``optax.losses.safe_softmax_cross_entropy``, over the last axis.

    Softmax cross entropy where a zero label on a -inf logit adds 0.

    Native: ``xce.categorical_cross_entropy(labels, logits, from_logits=True,
    reduction="none")``.

    Returns
    -------
    array
        The unreduced loss, ``logits``'s shape without the last axis.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import optax
    >>> optax.safe_softmax_cross_entropy(np.array([[0.0, -np.inf]]), np.array([[1.0, 0.0]]))
    array([0.])
    """
    xp, logits, labels, _ = _prepared(logits, labels)
    labels = broadcast_to(xp, labels, logits.shape, "labels", "logits")
    if logits.ndim:
        logits, labels = _one_class(xp, logits, labels)
    return xce.categorical_cross_entropy(
        labels, logits, from_logits=True, reduction="none", validate=False
    )


@with_parameters(_OPTIONS)
def sigmoid_binary_cross_entropy(logits: Array, labels: Array) -> Array:
    """Twin of ``optax.losses.sigmoid_binary_cross_entropy``, element-wise.

    Native: ``xce.binary_cross_entropy(labels, logits, from_logits=True, reduction="none")``.

    Returns
    -------
    array
        The element-wise loss, ``logits``'s shape.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import optax
    >>> optax.sigmoid_binary_cross_entropy(np.array([2.0, -1.0]), np.array([1.0, 0.0]))
    array([0.12692801, 0.31326169])
    """
    xp, logits, labels, _ = _prepared(logits, labels)
    labels = broadcast_to(xp, labels, logits.shape, "labels", "logits")
    return xce.binary_cross_entropy(
        labels, logits, from_logits=True, reduction="none", validate=checked(labels, logits)
    )


@with_parameters(_OPTIONS)
def sigmoid_focal_loss(
    logits: Array, labels: Array, alpha: float | None = None, gamma: float = 2.0
) -> Array:
    """Twin of ``optax.losses.sigmoid_focal_loss``, element-wise.

    α_t·(1 - p_t)^γ·sigmoid cross entropy (α_t = α·y + (1-α)·(1-y), 1 without ``alpha``).

    Native: ``xce.binary_focal_cross_entropy(labels, logits, from_logits=True, gamma=gamma,
    alpha=alpha, reduction="none")``.

    Returns
    -------
    array
        The element-wise loss, ``logits``'s shape.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import optax
    >>> optax.sigmoid_focal_loss(np.array([2.0, -1.0]), np.array([1.0, 0.0]), alpha=0.25)
    array([0.00045089, 0.01699354])
    """
    xp, logits, labels, _ = _prepared(logits, labels)
    labels = broadcast_to(xp, labels, logits.shape, "labels", "logits")
    return xce.binary_focal_cross_entropy(
        labels, logits, from_logits=True, gamma=gamma, alpha=alpha, reduction="none",
        validate=checked(labels, logits),
    )  # fmt: skip


@with_parameters(_OPTIONS)
def poly_loss_cross_entropy(
    logits: Array,
    labels: Array,
    epsilon: float = 2.0,
    axis: int | tuple[int, ...] | None = -1,
    where: Array | None = None,
) -> Array:
    """Twin of ``optax.losses.poly_loss_cross_entropy``: the Poly-1 loss over ``axis``.

    Softmax cross entropy plus ε·Σ labels·(1 - softmax(logits)) over ``axis``.

    Native: ``xce.poly1_cross_entropy(labels, logits, from_logits=True, epsilon=epsilon,
    axis=axis, reduction="none")``.

    Returns
    -------
    array
        The unreduced loss, ``logits``'s shape without ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import optax
    >>> optax.poly_loss_cross_entropy(np.array([[1.0, 2.0, 0.5]]), np.array([[0.0, 1.0, 0.0]]))
    array([1.20730535])
    """
    xp, logits, labels, where = _prepared(logits, labels, where)
    labels = broadcast_to(xp, labels, logits.shape, "labels", "logits")
    x, y, rows = _classes_last(xp, logits, labels, where, axis, labels_like_logits=True)
    x, y = _one_class(xp, x, y)
    return xce.poly1_cross_entropy(
        y, x, from_logits=True, epsilon=epsilon, where=rows, reduction="none", validate=False,
    )  # fmt: skip
