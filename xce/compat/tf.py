"""TensorFlow's ``tf.nn`` cross entropies with logits on any array type.

Each function returns what its ``tf.nn`` namesake returns (labels first, unreduced, the shape
of ``logits`` without the class axis for the softmax losses), computed by the xce core:

- ``sigmoid_cross_entropy_with_logits``: max(x, 0) - x·z + log1p(exp(-abs(x))), element-wise
  (evaluated in the equivalent form (1-z)·softplus(x) + z·softplus(-x)).
- ``weighted_cross_entropy_with_logits``: (1-z)·x + (1 + (q-1)·z)·(log1p(exp(-abs(x))) +
  max(-x, 0)), ``pos_weight`` q a number or an array broadcasting to ``logits``.
- ``softmax_cross_entropy_with_logits``: -Σ labels·log_softmax(logits) along ``axis``, as
  log Σ exp(x - m) - (x - m) with m the row max.
- ``sparse_softmax_cross_entropy_with_logits``: the same with integer labels, class axis
  last.

On JAX arrays the functions run under ``jax.jit`` and ``jax.grad``, on torch tensors under
autograd. Like ``tf.nn`` they take ``labels`` and ``logits`` positionally or by keyword;
``name`` is not accepted.

Deliberate divergences:

- A label outside [0, C) in the sparse loss: ``ValueError`` on eager host data (TF raises on
  CPU and returns NaN on GPU); NaN in that entry on unchecked data (JAX, Dask, GPU).
- Labels outside [0, 1] (soft or binary): ``ValueError`` on eager host data (TF computes a
  number that is not a cross entropy).
- A zero label on a -inf logit adds 0 (TF: NaN).
- Soft labels are taken as given (any values, rows of any sum), as TF does, and broadcast
  to ``logits``' shape as in TF (never the other way); the gradient with respect to the
  logits is TF's softmax(logits) - labels also for rows that do not sum to 1 (under
  ``jax.grad`` and torch autograd). One class gives 0, as in TF.
- NumPy arrays, numbers and lists beside another library's arrays are converted to it (TF
  converts them to tensors).
- float16 / bfloat16 inputs are computed in float32.
- ``ctc_loss``: dense labels only (a ``SparseTensor`` is a ``TypeError``); a sequence with no
  alignment gives +inf (TF: a large finite number from its log(1e-307) stand-in for log 0);
  a label outside [0, C) or equal to the blank within its length, and lengths outside
  [0, S] / [0, T], are errors or NaN rows (TF computes a number); float64 works (TF fails).
"""

from __future__ import annotations

import numbers

import xce

from .._array_api import may_be_differentiated
from .._types import Array
from .._validation import check_same_shape, normalise_axis
from ._common import as_array, broadcast_to, checked, gather, one_class_logits, stop_gradient
from ._ctc_tf import ctc_loss

__all__ = [
    "ctc_loss",
    "sigmoid_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits",
    "sparse_softmax_cross_entropy_with_logits",
    "weighted_cross_entropy_with_logits",
]


def sigmoid_cross_entropy_with_logits(labels: Array, logits: Array) -> Array:
    """Twin of ``tf.nn.sigmoid_cross_entropy_with_logits``: element-wise, ``logits``' shape.

    Native: ``xce.binary_cross_entropy(labels, logits, from_logits=True, reduction="none")``.

    Parameters
    ----------
    labels : array
        Targets in [0, 1], broadcast to ``logits``' shape.
    logits : array
        Logits.

    Returns
    -------
    array
        The element-wise loss, ``logits``' shape.

    Raises
    ------
    ValueError
        ``labels`` outside [0, 1] on eager host data.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import tf
    >>> tf.sigmoid_cross_entropy_with_logits(np.array([1.0, 0.0]), np.array([2.0, -1.0]))
    array([0.12692801, 0.31326169])
    """
    _, arrays = gather(logits=logits, labels=labels)
    logits, labels = arrays["logits"], arrays["labels"]
    return xce.binary_cross_entropy(
        labels, logits, from_logits=True, reduction="none", validate=checked(labels, logits)
    )


def weighted_cross_entropy_with_logits(
    labels: Array, logits: Array, pos_weight: float | Array
) -> Array:
    """Twin of ``tf.nn.weighted_cross_entropy_with_logits``: positives weighted, element-wise.

    Native: ``xce.binary_cross_entropy(labels, logits, from_logits=True,
    pos_weight=pos_weight, reduction="none")`` (``pos_weight`` scalar or per last-axis entry).

    Parameters
    ----------
    labels : array
        Targets in [0, 1], broadcast to ``logits``' shape.
    logits : array
        Logits.
    pos_weight : float or array
        Weight q of the positive term: a number or an array broadcasting to ``logits``.

    Returns
    -------
    array
        The element-wise loss, ``logits``' shape.

    Raises
    ------
    ValueError
        ``labels`` outside [0, 1] on eager host data.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import tf
    >>> tf.weighted_cross_entropy_with_logits(np.array([1.0, 0.0]), np.array([2.0, -1.0]), 3.0)
    array([0.38078403, 0.31326169])
    """
    xp, arrays = gather(
        logits=logits, labels=labels, pos_weight=None if _is_number(pos_weight) else pos_weight
    )
    logits, labels = arrays["logits"], arrays["labels"]
    if not _is_number(pos_weight):
        pos_weight = arrays["pos_weight"]
    check_same_shape(labels, logits)
    q = broadcast_to(
        xp, as_array(xp, pos_weight, logits, "pos_weight"), logits.shape, "pos_weight", "logits"
    )
    shape, flat = tuple(logits.shape), (-1,)
    # Element-wise: flattened, every broadcast shape of pos_weight is one weight per element.
    loss = xce.binary_cross_entropy(
        xp.reshape(labels, flat), xp.reshape(logits, flat), from_logits=True,
        pos_weight=xp.reshape(q, flat), reduction="none", validate=checked(labels, logits),
    )  # fmt: skip
    return xp.reshape(loss, shape)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def softmax_cross_entropy_with_logits(labels: Array, logits: Array, axis: int = -1) -> Array:
    """Twin of ``tf.nn.softmax_cross_entropy_with_logits``: -Σ labels·log_softmax(logits).

    Native: ``xce.categorical_cross_entropy(labels, logits, from_logits=True, axis=axis,
    reduction="none")``.

    Parameters
    ----------
    labels : array
        Soft labels, taken as given (any values, rows of any sum), broadcast to ``logits``'
        shape.
    logits : array
        Unnormalised scores.
    axis : int, default -1
        The class axis.

    Returns
    -------
    array
        The per-example loss, ``logits``' shape without ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import tf
    >>> tf.softmax_cross_entropy_with_logits(np.array([[0.0, 1.0, 0.0]]),
    ...                                      np.array([[1.0, 2.0, 0.5]]))
    array([0.46436878])
    """
    xp, arrays = gather(logits=logits, labels=labels)
    logits, labels = arrays["logits"], arrays["labels"]
    axis = normalise_axis(axis, logits.ndim) if logits.ndim else axis
    labels = broadcast_to(xp, labels, logits.shape, "labels", "logits")
    if logits.ndim and xp.isdtype(labels.dtype, "real floating"):  # one class: 0, as in TF
        logits, labels = one_class_logits(xp, logits, labels, axis)
    loss = xce.categorical_cross_entropy(
        labels, logits, from_logits=True, axis=axis, reduction="none", validate=False
    )
    if may_be_differentiated(logits) or may_be_differentiated(labels):
        # TF's gradient is softmax - labels whatever the labels sum to; autodiff of the loss
        # gives softmax·Σ labels - labels. The term (1 - Σ labels)·(lse - lse), 0 in value,
        # adds the difference (and nothing to the gradient with respect to the labels).
        lse = xce.logsumexp(logits, axis=axis)
        total = xp.sum(xp.astype(labels, loss.dtype), axis=axis)
        zero = xp.where(xp.isfinite(lse), lse - stop_gradient(lse), xp.zeros_like(lse))
        loss = loss + (1 - total) * xp.astype(zero, loss.dtype)
    return loss


def sparse_softmax_cross_entropy_with_logits(labels: Array, logits: Array) -> Array:
    """Twin of ``tf.nn.sparse_softmax_cross_entropy_with_logits``: integer labels.

    Native: ``xce.sparse_categorical_cross_entropy(labels, logits, from_logits=True,
    reduction="none")``.

    Parameters
    ----------
    labels : array of int
        Class indices in [0, C), ``logits``' shape without its last axis.
    logits : array
        Unnormalised scores, classes along the last axis.

    Returns
    -------
    array
        The per-example loss, ``labels``' shape.

    Raises
    ------
    ValueError
        A label outside [0, C) on eager host data (elsewhere: NaN in that entry).

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import tf
    >>> tf.sparse_softmax_cross_entropy_with_logits(np.array([1]), np.array([[1.0, 2.0, 0.5]]))
    array([0.46436878])
    """
    xp, arrays = gather(logits=logits, labels=labels)
    logits, labels = arrays["logits"], arrays["labels"]
    if logits.ndim and xp.isdtype(labels.dtype, "integral"):  # one class: 0, as in TF
        logits, labels = one_class_logits(xp, logits, labels, -1)
    return xce.sparse_categorical_cross_entropy(labels, logits, from_logits=True, reduction="none")
