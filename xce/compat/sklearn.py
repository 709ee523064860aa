"""scikit-learn's ``sklearn.metrics.log_loss`` on any array type.

``log_loss`` takes scikit-learn's arguments and returns its number, a Python float, computed
by the xce core:

- ``y_true`` holds labels of any kind (numbers, strings) encoded as scikit-learn's
  ``LabelBinarizer`` does: the sorted distinct values of ``labels`` (or of ``y_true``) are the
  columns of ``y_proba``; a 2-D ``y_true`` is a label-indicator matrix. A 1-D ``y_proba`` (or
  one column) is the probability of the positive (larger) class.
- ``y_proba`` is clipped to [eps, 1 - eps] with eps = ``finfo(y_proba.dtype).eps`` and not
  renormalised; rows that do not sum to 1 (within √eps) trigger scikit-learn's
  ``UserWarning``, and so do ``labels`` that are not in sorted order.
- The result is Σ wᵢ·ℓᵢ / Σ wᵢ (``normalize=True``) or Σ wᵢ·ℓᵢ.

Like scikit-learn it reads values (label encoding, the checks, the returned float), so it
cannot run under ``jax.jit``; the probabilities stay in their namespace and on their device,
only the labels are encoded on the host.

Errors as in scikit-learn: ``ValueError`` for probabilities outside [0, 1], a single class
without ``labels``, labels missing from ``labels``, a class count that does not match
``y_proba``'s columns and inconsistent lengths; ``ZeroDivisionError`` for weights that sum
to 0. As in scikit-learn 1.9, the probabilities are ``y_proba``; the old keyword ``y_pred``
still works with scikit-learn's ``FutureWarning`` (both at once: ``ValueError``).
Divergence: float16 probabilities are computed in float32 (with float16's eps).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import xce

from .._array_api import (
    array_namespace,
    device,
    is_array_api_obj,
    is_array_api_strict_namespace,
    is_numpy_namespace,
    to_device,
)
from .._types import Array, Reduction
from .._validation import read_flag

__all__ = ["log_loss"]


def _host(x):
    """Any array (or sequence) as a NumPy array on the host, for label encoding."""
    import numpy as np

    if not is_array_api_obj(x):
        return np.asarray(x)
    xp = array_namespace(x)
    if is_numpy_namespace(xp):
        return np.asarray(x)
    if is_array_api_strict_namespace(xp):
        return np.asarray(x.to_device(xp.Device("CPU_DEVICE")))
    if hasattr(x, "compute"):  # Dask
        return np.asarray(x.compute())
    if hasattr(x, "detach"):  # torch: no autograd history on labels or weights
        x = x.detach()
    try:
        return np.asarray(x)  # JAX, CPU torch
    except (TypeError, RuntimeError):  # device arrays (CuPy, CUDA torch)
        return np.asarray(to_device(x, "cpu"))


def _probabilities(y_pred):
    """``y_pred`` as a floating array of its own namespace (sequences become NumPy)."""
    if not is_array_api_obj(y_pred):
        import numpy as np

        y_pred = np.asarray(y_pred, dtype=np.float64)
    xp = array_namespace(y_pred)
    if not xp.isdtype(y_pred.dtype, "real floating"):
        y_pred = xp.astype(y_pred, xp.float64)  # scikit-learn converts to float64 too
    return xp, y_pred


def _encode(y_true, labels):
    """Class indices (or an indicator matrix) and the class list, as LabelBinarizer."""
    import numpy as np

    y = _host(y_true)
    if y.ndim == 2 and labels is None:  # a label-indicator matrix
        return y, np.arange(y.shape[1]), True
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D labels or a 2-D indicator matrix, got {y.shape}")
    if labels is not None:
        given = _host(labels)
        classes = np.unique(given)
        if not (len(classes) == len(given) and np.all(classes == given)):
            warnings.warn(
                f"Labels passed were {given}. But this function assumes labels are ordered "
                f"lexicographically. Pass the ordered labels={classes.tolist()} and ensure "
                "that the columns of y_prob correspond to this ordering.",
                UserWarning,
                stacklevel=3,
            )
        missing = set(np.unique(y).tolist()) - set(classes.tolist())
        if missing:
            raise ValueError(
                f"y_true contains values {missing} not belonging to the passed labels {given}."
            )
        if len(classes) < 2:
            raise ValueError(
                f"The labels array needs to contain at least two labels, got {classes}."
            )
    else:
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"y_true contains only one label ({classes[0] if len(classes) else None}). "
                "Please provide the list of all expected class labels explicitly through "
                "the labels argument."
            )
    return np.searchsorted(classes, y), classes, False


def log_loss(
    y_true: Array | Sequence[Any],
    y_proba: Array | Sequence[Any] | None = None,
    *,
    normalize: bool = True,
    sample_weight: Array | Sequence[float] | None = None,
    labels: Array | Sequence[Any] | None = None,
    y_pred: Array | Sequence[Any] | str = "deprecated",
) -> float:
    """Twin of ``sklearn.metrics.log_loss``: the mean cross entropy, as a Python float.

    Native: ``xce.sparse_categorical_cross_entropy(indices, y_proba, sample_weight=w)``, whose
    default eps is the same machine epsilon (but clips to [eps, 1], not [eps, 1 - eps]).

    Parameters
    ----------
    y_true : array or sequence
        Labels of any kind (numbers, strings), or a label-indicator matrix.
    y_proba : array or sequence
        Predicted probabilities, shape (N, C) with columns in the sorted order of the labels,
        or (N,) for the positive class of a binary problem.
    normalize : bool, default True
        Return the weighted mean; False: the weighted sum.
    sample_weight : array or sequence, optional
        Weight wᵢ of each sample.
    labels : array or sequence, optional
        All the labels, when ``y_true`` does not hold every class.
    y_pred : array or sequence, optional
        The old name of ``y_proba`` (deprecated, with scikit-learn's ``FutureWarning``).

    Returns
    -------
    float
        Σ wᵢ·ℓᵢ / Σ wᵢ (``normalize=True``) or Σ wᵢ·ℓᵢ.

    Raises
    ------
    ValueError
        Probabilities outside [0, 1], a single class without ``labels``, labels missing from
        ``labels``, a class count that does not match ``y_proba``, inconsistent lengths, or
        both ``y_proba`` and ``y_pred``.
    ZeroDivisionError
        Sample weights that sum to 0.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import sklearn
    >>> sklearn.log_loss(np.array(["spam", "ham", "ham", "spam"]),
    ...                  np.array([[.1, .9], [.9, .1], [.8, .2], [.35, .65]]))
    0.21616187468057912
    """
    xp, p = _probabilities(_renamed(y_proba, y_pred))
    if read_flag(xp.any(p > 1)):
        raise ValueError(f"y_prob contains values greater than 1: {float(_host(xp.max(p)))}")
    if read_flag(xp.any(p < 0)):
        raise ValueError(f"y_prob contains values lower than 0: {float(_host(xp.min(p)))}")
    targets, classes, indicator = _encode(y_true, labels)
    n_samples = p.shape[0] if p.ndim else None
    weight = None if sample_weight is None else _host(sample_weight)
    lengths = {len(targets), n_samples} | ({len(weight)} if weight is not None else set())
    if len(lengths) != 1:
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"{[len(targets), n_samples] + ([len(weight)] if weight is not None else [])}"
        )
    if p.ndim == 1:
        p = p[:, None]
    if p.shape[1] == 1:
        p = xp.concat([1 - p, p], axis=1)
    if indicator and targets.shape[1] == 1:
        targets = _host_concat_binary(targets)
        classes = [*classes[:1].tolist(), 1]
    eps = float(xp.finfo(p.dtype).eps)
    _warn_unless_normalised(xp, p, eps)
    n_classes = targets.shape[1] if indicator else len(classes)
    if n_classes != p.shape[1]:
        if labels is None:
            raise ValueError(
                f"y_true and y_prob contain different number of classes: {n_classes} vs "
                f"{p.shape[1]}. Please provide the true labels explicitly through the labels "
                f"argument. Classes found in y_true: {classes}"
            )
        raise ValueError(
            "The number of classes in labels is different from that in y_prob. Classes "
            f"found in labels: {classes}"
        )
    on = device(p)
    w = None
    if weight is not None:
        if float(weight.sum()) == 0 and normalize:
            raise ZeroDivisionError("Weights sum to zero, can't be normalized")
        w = xp.asarray(weight, dtype=p.dtype, device=on)
    clipped = xp.clip(p, eps, 1.0 - eps)
    reduction: Reduction = "mean" if normalize else "sum"
    if indicator:
        loss = xce.categorical_cross_entropy(
            xp.asarray(targets, dtype=p.dtype, device=on), clipped, eps=0.0,
            sample_weight=w, reduction=reduction, validate=False,  # checked above
        )  # fmt: skip
    else:
        loss = xce.sparse_categorical_cross_entropy(
            xp.asarray(targets, device=on), clipped, eps=0.0, sample_weight=w,
            reduction=reduction, validate=False,  # checked above
        )  # fmt: skip
    return float(_host(loss))


def _renamed(y_proba, y_pred):
    """scikit-learn 1.9 renamed ``y_pred`` to ``y_proba``; the old keyword still works."""
    if isinstance(y_pred, str) and y_pred == "deprecated":
        if y_proba is None:
            raise TypeError("log_loss() missing the probabilities: y_proba")
        return y_proba
    if y_proba is not None:
        raise ValueError(
            "Cannot use both `y_pred` and `y_proba`. `y_pred` is deprecated, use `y_proba` instead."
        )
    warnings.warn(
        "`y_pred` was renamed to `y_proba` in version 1.9 and will be removed in 1.11. Use "
        "`y_proba` instead.",
        FutureWarning,
        stacklevel=3,
    )
    return y_pred


def _host_concat_binary(targets):
    import numpy as np

    return np.concatenate([1 - targets, targets], axis=1)


def _warn_unless_normalised(xp, p, eps):
    import array_api_extra as xpx

    total = xp.sum(p, axis=1)
    one = xp.asarray(1, dtype=total.dtype, device=device(total))
    close = xpx.isclose(total, one, rtol=eps**0.5, xp=xp)
    if not bool(_host(xp.all(close))):
        warnings.warn(
            "The y_prob values do not sum to one. Make sure to pass probabilities.",
            UserWarning,
            stacklevel=3,
        )
