"""Stable building blocks on the array API standard (see the public docstrings in ``xce``).

Every function takes the namespace ``xp`` first and uses nothing outside the standard.
"""

from __future__ import annotations

import math

from .._array_api import device

__all__ = [
    "clip_probabilities",
    "compute_dtype",
    "entropy",
    "finite_max",
    "is_python_number",
    "is_python_zero",
    "kl_divergence",
    "log1p_exp_neg_abs",
    "log_argument",
    "log_of_clipped",
    "log_or_neg_inf",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "neg_abs",
    "negative_part",
    "positive_part",
    "sigmoid",
    "softmax",
    "times_finite",
    "xlogy_zero",
]


def is_python_number(value) -> bool:
    """Whether a hyperparameter is a Python number (fixed when the kernel is built) rather than
    a 0-d array, which may be a tracer or require grad: never branch on an array's value."""
    return isinstance(value, (int, float))


def is_python_zero(value) -> bool:
    """A Python 0: the shortcut that skips a term. A 0-d array of value 0 takes the general
    formula, which gives the same numbers and keeps the derivative with respect to it."""
    return isinstance(value, (int, float)) and value == 0


def clip_probabilities(xp, p, eps, high):
    """``(clip(p, eps, high), inside)``, ``inside`` where the clip's slope is 1 (``None``:
    everywhere, no clip). ``eps = 0`` (a Python 0, or an array of value 0) does not clip.

    For a Python ``eps`` the clip is ``minimum(maximum(p, eps), high)``: the same values
    (NaN kept), and, unlike array-api-compat's ``clip`` on Dask, no broadcast of the bounds
    against a shape whose sizes are unknown. For an array ``eps`` the clip is written with
    selections, so that it is differentiable with respect to ``eps`` (and ``high``, e.g.
    ``1 - eps``) on every backend.
    """
    if is_python_number(eps):
        if eps == 0:
            return p, None
        return xp.minimum(xp.maximum(p, eps), high), (p >= eps) & (p <= high)
    below, above = p < eps, p > high
    clipped = xp.where(below, eps, xp.where(above, high, p))
    off = eps == 0
    return xp.where(off, p, clipped), off | ~(below | above)


def log_of_clipped(xp, clipped, eps):
    """log of probabilities clipped by :func:`clip_probabilities`: plain where a Python eps > 0
    keeps them positive, else with log 0 = -inf formed without a warning."""
    if is_python_number(eps) and eps > 0:
        return xp.log(clipped)
    return log_or_neg_inf(xp, clipped)


def compute_dtype(xp, dtype):
    """float16 / bfloat16 are computed in float32; other floating dtypes in themselves."""
    return xp.float32 if xp.finfo(dtype).bits < 32 else dtype


def finite_max(xp, x, axis, keepdims=True):
    """Row max with non-finite maxima replaced by 0.

    Shifting by the max keeps ``exp`` from overflowing; a row of all ``-inf`` (or one holding
    ``+inf``) must not be shifted by an infinity, which would turn it into NaN.
    """
    if x.size == 0:  # an empty batch: some reducers (Dask) refuse a max over nothing
        shape = _reduced_shape(x.shape, axis, keepdims)
        return xp.zeros(shape, dtype=x.dtype, device=device(x))
    m = xp.max(x, axis=axis, keepdims=keepdims)
    return xp.where(xp.isfinite(m), m, xp.zeros_like(m))


def _reduced_shape(shape, axis, keepdims):
    axes = {a % len(shape) for a in (axis if isinstance(axis, tuple) else (axis,))}
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def log_or_neg_inf(xp, a):
    """log(a) with log(0) = -inf formed by selection, not by the log.

    The result is the same, but NumPy (and Dask at compute time) would emit a
    divide-by-zero warning for a result that is correct: a slice of all -inf logits, an
    explicitly unclipped probability of 0. Used on row sums, so it costs O(rows).
    """
    zero = a == 0
    return xp.where(zero, xp.full_like(a, -math.inf), xp.log(xp.where(zero, xp.ones_like(a), a)))


def logsumexp(xp, x, *, axis=-1, keepdims=False):
    m = finite_max(xp, x, axis)
    out = log_or_neg_inf(xp, xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else xp.squeeze(out, axis=axis)


def log_softmax(xp, x, *, axis=-1):
    # (x - m) - log Σ exp(x - m), not x - logsumexp(x): at offsets of 1e8 the second form
    # subtracts two huge, nearly equal numbers and keeps nothing of the difference.
    z = x - finite_max(xp, x, axis)
    return z - log_or_neg_inf(xp, xp.sum(xp.exp(z), axis=axis, keepdims=True))


def softmax(xp, x, *, axis=-1):
    e = xp.exp(x - finite_max(xp, x, axis))
    return e / xp.sum(e, axis=axis, keepdims=True)


def neg_abs(xp, x):
    """-|x| chosen by the sign test ``x >= 0``, like every other branch here.

    Autodiff must see one consistent branch at x = 0: JAX takes |x|' = 1 there but splits
    max(x, 0)' = 1/2, which would make the gradient of softplus at 0 wrong (0 + ... ≠ σ(0)).
    """
    return xp.where(x >= 0, -x, x)


def positive_part(xp, x):
    """max(x, 0) with the same branch choice as :func:`neg_abs`."""
    return xp.where(x >= 0, x, xp.zeros_like(x))


def negative_part(xp, x):
    """max(-x, 0), also chosen by the sign of x (not of -x) for the same reason."""
    return xp.where(x >= 0, xp.zeros_like(x), -x)


def log1p_exp_neg_abs(xp, x):
    """log1p(exp(-|x|)), the bounded part shared by softplus, log-sigmoid and sigmoid."""
    return xp.log1p(xp.exp(neg_abs(xp, x)))


def log_sigmoid(xp, x):
    # log σ(x) = -softplus(-x) = min(x, 0) - log1p(exp(-|x|)): exp never overflows.
    return -negative_part(xp, x) - log1p_exp_neg_abs(xp, x)


def sigmoid(xp, x):
    # Evaluate exp only at -|x| and pick the branch by sign: no overflow, no 1 - tiny.
    e = xp.exp(neg_abs(xp, x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def times_finite(xp, coefficient, value):
    """coefficient · value with 0 · (±inf or NaN) = 0.

    Only a non-finite value meeting a zero coefficient is replaced, and before the product: no
    NaN forms (in the value, or in an autodiff gradient), and the derivative with respect to
    the coefficient stays the value wherever it is finite. Replacing the value wherever the
    coefficient is 0 would also zero that derivative (a target's gradient at an exact 0).
    """
    return coefficient * xp.where(
        (coefficient == 0) & ~xp.isfinite(value), xp.zeros_like(value), value
    )


def log_argument(xp, coefficient, value, singular=0):
    """``value`` with ``1 - singular`` where the coefficient is 0 and the value is ``singular``.

    The argument of a log (``singular=0``; ``1`` for a ``log1p(-value)``) whose term the
    coefficient multiplies: 0 · log 0 never forms (no -inf, no infinite slope for autodiff),
    while elsewhere d(coefficient · log value)/d coefficient stays log value.
    """
    if is_python_number(coefficient):
        if coefficient != 0:
            return value
        dead = value == singular
    else:
        dead = (coefficient == 0) & (value == singular)
    return xp.where(dead, xp.full_like(value, 1 - singular), value)


def xlogy_zero(xp, coefficient, value):
    """coefficient · log(value) with 0 · log 0 = 0 (and no NaN in the unused branch).

    The log's argument is replaced *before* the log where both are 0, so neither the forward
    value nor an autodiff gradient sees 0 · (-inf); elsewhere the derivative with respect to
    the coefficient is log(value), also where the coefficient is 0.
    """
    return coefficient * log_or_neg_inf(xp, log_argument(xp, coefficient, value))


def entropy(xp, p, *, axis=-1):
    return -xp.sum(xlogy_zero(xp, p, p), axis=axis)


def kl_divergence(xp, p, q, *, axis=-1):
    # Σ p (log p - log q); rows where p = 0 contribute 0 even where q = 0.
    return xp.sum(xlogy_zero(xp, p, p) - xlogy_zero(xp, p, q), axis=axis)
