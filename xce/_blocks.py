"""Public stable building blocks: logsumexp, (log-)softmax, (log-)sigmoid, entropy, KL.

Each takes any array type, computes float16/bfloat16 in float32, and returns the caller's
namespace, device and dtype.
"""

from __future__ import annotations

import numbers

from . import _agnostic as agnostic
from ._types import Array
from ._validation import check_floating, namespace_of, normalise_axis


def _prepared(x, name="x", **others):
    xp = namespace_of(**{name: x}, **others)
    check_floating(xp, x, name)
    for other_name, other in others.items():
        check_floating(xp, other, other_name)
    return xp, agnostic.compute_dtype(xp, x.dtype)


def _axes(axis, ndim):
    if isinstance(axis, tuple):
        axes = tuple(normalise_axis(a, ndim) for a in axis)
        if len(set(axes)) != len(axes):
            raise ValueError(f"axis={axis} names an axis twice")
        return axes
    if ndim == 0:
        raise ValueError("a reduction axis needs an array with at least one dimension")
    return normalise_axis(axis, ndim)


def _apply(xp, fn, dtype, out_dtype, *arrays, **kwargs):
    cast = [xp.astype(a, dtype, copy=False) for a in arrays]
    out = fn(xp, *cast, **kwargs)
    if isinstance(out, numbers.Number):  # NumPy's sum over every axis gives a scalar
        out = xp.asarray(out)
    return xp.astype(out, out_dtype, copy=False)


def logsumexp(x: Array, *, axis: int | tuple[int, ...] = -1, keepdims: bool = False) -> Array:
    """Log-sum-exp, log Σ exp(x) along ``axis``, without overflow.

    .. math:: \\mathrm{lse}(x) = m + \\log\\sum_i e^{x_i - m}, \\quad m = \\max_i x_i

    Parameters
    ----------
    x : array
        Real floating array.
    axis : int or tuple of int, default -1
        Axis or axes to reduce.
    keepdims : bool, default False
        Keep the reduced axes with length 1.

    Returns
    -------
    array
        ``x``'s shape without ``axis`` (or with length-1 axes), namespace, device and dtype.
        A slice of all ``-inf`` gives ``-inf``; one holding ``+inf`` gives ``+inf``.

    Raises
    ------
    TypeError
        ``x`` is not a real floating array.
    ValueError
        ``axis`` out of range or repeated.

    Examples
    --------
    >>> import numpy as np, xce
    >>> float(xce.logsumexp(np.array([1000.0, 1000.0])))  # doctest: +ELLIPSIS
    1000.693147...
    """
    xp, dtype = _prepared(x)
    axes = _axes(axis, x.ndim)
    return _apply(xp, agnostic.logsumexp, dtype, x.dtype, x, axis=axes, keepdims=keepdims)


def log_softmax(x: Array, *, axis: int = -1) -> Array:
    """Log-softmax along ``axis``: (x - m) - log Σ exp(x - m), exact at large offsets.

    Parameters
    ----------
    x : array
        Real floating logits.
    axis : int, default -1
        The class axis.

    Returns
    -------
    array
        Same shape, namespace, device and dtype as ``x``; ``-inf`` logits give ``-inf``.

    Raises
    ------
    TypeError
        ``x`` is not a real floating array.
    ValueError
        ``axis`` out of range.

    Examples
    --------
    >>> import numpy as np, xce
    >>> xce.log_softmax(np.array([1e8, 1e8]))
    array([-0.69314718, -0.69314718])
    """
    xp, dtype = _prepared(x)
    return _apply(xp, agnostic.log_softmax, dtype, x.dtype, x, axis=_axes(axis, x.ndim))


def softmax(x: Array, *, axis: int = -1) -> Array:
    """Softmax along ``axis``: exp(x - m) / Σ exp(x - m).

    Parameters
    ----------
    x : array
        Real floating logits.
    axis : int, default -1
        The class axis.

    Returns
    -------
    array
        Same shape, namespace, device and dtype as ``x``; slices sum to 1.

    Raises
    ------
    TypeError
        ``x`` is not a real floating array.
    ValueError
        ``axis`` out of range.

    Examples
    --------
    >>> import numpy as np, xce
    >>> xce.softmax(np.array([0.0, np.log(3.0)]))
    array([0.25, 0.75])
    """
    xp, dtype = _prepared(x)
    return _apply(xp, agnostic.softmax, dtype, x.dtype, x, axis=_axes(axis, x.ndim))


def log_sigmoid(x: Array) -> Array:
    """Log-sigmoid, min(x, 0) - log1p(exp(-abs(x))), element-wise; never overflows.

    Parameters
    ----------
    x : array
        Real floating logits, any shape.

    Returns
    -------
    array
        Same shape, namespace, device and dtype as ``x``.

    Raises
    ------
    TypeError
        ``x`` is not a real floating array.

    Examples
    --------
    >>> import numpy as np, xce
    >>> xce.log_sigmoid(np.array([-1000.0, 0.0])).tolist()  # doctest: +ELLIPSIS
    [-1000.0, -0.693147...]
    """
    xp, dtype = _prepared(x)
    return _apply(xp, agnostic.log_sigmoid, dtype, x.dtype, x)


def sigmoid(x: Array) -> Array:
    """Sigmoid σ(x) = 1 / (1 + exp(-x)), element-wise, without overflow on either side.

    Parameters
    ----------
    x : array
        Real floating logits, any shape.

    Returns
    -------
    array
        Same shape, namespace, device and dtype as ``x``, in [0, 1].

    Raises
    ------
    TypeError
        ``x`` is not a real floating array.

    Examples
    --------
    >>> import numpy as np, xce
    >>> xce.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    xp, dtype = _prepared(x)
    return _apply(xp, agnostic.sigmoid, dtype, x.dtype, x)


def entropy(p: Array, *, axis: int = -1) -> Array:
    """Shannon entropy H(p) = -Σ p log p along ``axis`` (natural log), with 0·log 0 = 0.

    Parameters
    ----------
    p : array
        Probabilities along ``axis``.
    axis : int, default -1
        The distribution axis.

    Returns
    -------
    array
        ``p``'s shape without ``axis``; namespace, device and dtype of ``p``.

    Raises
    ------
    TypeError
        ``p`` is not a real floating array.
    ValueError
        ``axis`` out of range.

    Examples
    --------
    >>> import numpy as np, xce
    >>> float(xce.entropy(np.array([0.5, 0.5, 0.0])))  # doctest: +ELLIPSIS
    0.693147...
    """
    xp, dtype = _prepared(p, "p")
    return _apply(xp, agnostic.entropy, dtype, p.dtype, p, axis=_axes(axis, p.ndim))


def kl_divergence(p: Array, q: Array, *, axis: int = -1) -> Array:
    """Kullback-Leibler divergence KL(p ‖ q) = Σ p (log p - log q) along ``axis``.

    Terms with p = 0 are 0 (even where q = 0); q = 0 < p gives ``+inf``. Cross entropy
    splits as H(p, q) = H(p) + KL(p ‖ q).

    Parameters
    ----------
    p, q : array
        Probabilities of the same shape, namespace and device.
    axis : int, default -1
        The distribution axis.

    Returns
    -------
    array
        The shape without ``axis``; namespace, device and dtype of ``p``.

    Raises
    ------
    TypeError
        Not real floating arrays, or arrays from different libraries.
    ValueError
        Shapes differ, devices differ, ``axis`` out of range.

    Examples
    --------
    >>> import numpy as np, xce
    >>> float(xce.kl_divergence(np.array([0.5, 0.5]), np.array([0.25, 0.75])))  # doctest: +ELLIPSIS
    0.143841...
    """
    xp, dtype = _prepared(p, "p", q=q)
    if tuple(p.shape) != tuple(q.shape):
        raise ValueError(
            f"p has shape {tuple(p.shape)} but q has {tuple(q.shape)}; they must match"
        )
    return _apply(xp, agnostic.kl_divergence, dtype, p.dtype, p, q, axis=_axes(axis, p.ndim))


__all__ = [
    "entropy",
    "kl_divergence",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "softmax",
]
