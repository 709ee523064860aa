"""Focal and poly-1 cross entropy: the same conventions, validation and reductions as the
core losses of :mod:`xce._losses` (whose helpers they reuse), and ``value_and_grad`` support.

Each public function is a thin wrapper over a private driver that can also return the
analytic gradient; the drivers are registered in :data:`xce._losses.FUSED` at import.
"""

from __future__ import annotations

import functools
import math
import numbers

from ._agnostic import _focal as focal
from ._compat import device, is_array_api_obj
from ._losses import (
    FUSED,
    _binary_inputs,
    _eps_for,
    _finish,
    _reduced,
    _soft_inputs,
    _with_common_doc,
)
from ._validation import (
    check_options,
    class_weight_array,
    namespace_of,
)


def _check_gamma(gamma):
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real):
        raise TypeError(f"gamma must be a Python float ≥ 0, got {type(gamma).__name__}")
    if not (gamma >= 0 and math.isfinite(gamma)):
        raise ValueError(f"gamma={gamma!r} must be a finite number ≥ 0 (0 gives cross entropy)")


def _scalar_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(
            f"alpha must be None, a Python float in [0, 1] or an array, got {type(alpha).__name__}"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha!r} must lie in [0, 1]")
    return float(alpha)


def _check_epsilon(epsilon):
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise TypeError(f"epsilon must be a Python float, got {type(epsilon).__name__}")
    if not math.isfinite(epsilon):
        raise ValueError(f"epsilon={epsilon!r} must be finite")


def _binary_focal(
    y_true, y_pred, *, from_logits, gamma, alpha, sample_weight, label_smoothing, where,
    reduction, eps, validate, with_grad,
):  # fmt: skip
    xp = namespace_of(y_pred=y_pred, y_true=y_true, sample_weight=sample_weight, where=where)
    check_options(reduction=reduction, label_smoothing=label_smoothing, validate=validate, eps=eps)
    _check_gamma(gamma)
    alpha = None if alpha is None else _scalar_alpha(alpha)
    dtype, weight, valid, x, y = _binary_inputs(
        xp, y_true, y_pred, from_logits=from_logits, sample_weight=sample_weight, where=where,
        validate=validate,
    )  # fmt: skip
    if from_logits:
        kernel = functools.partial(
            focal.sigmoid_binary_focal, xp, x, y, gamma=gamma, alpha=alpha,
            smoothing=label_smoothing,
        )  # fmt: skip
    else:
        kernel = functools.partial(
            focal.probs_binary_focal, xp, x, y, gamma=gamma, alpha=alpha,
            smoothing=label_smoothing, eps=_eps_for(xp, dtype, eps),
        )  # fmt: skip
    value, grad = _reduced(
        xp, kernel, batch_shape=tuple(y_pred.shape), dtype=dtype, weight=weight, valid=valid,
        omega=None, bad=None, reduction=reduction, with_grad=with_grad, class_axis=False,
        on_device=device(y_pred),
    )  # fmt: skip
    return _finish(xp, value, grad, y_pred.dtype, None)


@_with_common_doc("loss shape ``S = y_pred.shape``")
def binary_focal_cross_entropy(
    y_true,
    y_pred,
    *,
    from_logits=False,
    gamma=2.0,
    alpha=None,
    sample_weight=None,
    label_smoothing=0.0,
    where=None,
    reduction="mean",
    eps=None,
    validate="auto",
):
    """Binary focal cross entropy (Lin et al., 2017), element-wise: binary and multi-label.

    The binary cross entropy, scaled down where the prediction is already good. With the
    smoothed target q = (1-ε)·y + ε/2, the probability p (σ(x) on logits) and
    1 - p_t = q·(1-p) + (1-q)·p the probability given to the wrong outcome,

    .. math::

        ℓ = α_t·(1 - p_t)^γ·\\bigl(-q·\\log p - (1-q)·\\log(1-p)\\bigr),
        \\qquad α_t = α·q + (1-α)·(1-q)

    (α_t = 1 when ``alpha`` is None). γ = 0 without ``alpha`` is
    :func:`binary_cross_entropy`. On logits the cross entropy is the stable softplus form and
    1 - p_t = q·σ(-x) + (1-q)·σ(x), accurate even for confident predictions; on
    probabilities the log is clipped to [eps, 1 - eps] and the focal factor uses p itself.

    Parameters
    ----------
    y_true : array, shape (...)
        Targets in [0, 1] (0/1, booleans or soft labels), the same shape as ``y_pred``.
    y_pred : array, shape (...)
        Probabilities, or logits with ``from_logits=True``. Real floating dtype.
    from_logits : bool, default False
        Whether ``y_pred`` holds logits.
    gamma : float, default 2.0
        γ ≥ 0, the focusing exponent.
    alpha : float, optional
        α in [0, 1], the weight of the positive outcome (1 - α for the negative one), as in
        Keras's ``apply_class_balancing`` and Optax's ``alpha``. It does not enter the
        ``"mean"`` denominator.
    %COMMON%
    Raises
    ------
    TypeError
        Mixed array libraries, integer ``y_pred``, non-boolean ``where``, a non-number
        ``gamma`` or ``alpha``.
    ValueError
        Shapes differ, a weight's shape breaks the prefix rule, unknown ``reduction``,
        ``label_smoothing`` or ``alpha`` outside [0, 1], ``gamma`` < 0; on checked data,
        ``y_true`` or probability ``y_pred`` outside [0, 1].

    Examples
    --------
    >>> import numpy as np, xce
    >>> y = np.array([1.0, 0.0, 1.0])
    >>> x = np.array([2.0, -1.0, 0.0])
    >>> round(float(xce.binary_focal_cross_entropy(y, x, from_logits=True)), 6)
    0.065916
    >>> round(float(xce.binary_focal_cross_entropy(y, x, from_logits=True, gamma=0.0)), 6)
    0.377779
    """
    return _binary_focal(
        y_true, y_pred, from_logits=from_logits, gamma=gamma, alpha=alpha,
        sample_weight=sample_weight, label_smoothing=label_smoothing, where=where,
        reduction=reduction, eps=eps, validate=validate, with_grad=False,
    )[0]  # fmt: skip


def _alpha_array(xp, alpha, n_classes, dtype):
    if alpha is None:
        return None
    if not is_array_api_obj(alpha):
        return _scalar_alpha(alpha)
    if tuple(alpha.shape) not in ((), (n_classes,)):
        raise ValueError(
            f"alpha has shape {tuple(alpha.shape)}; give a scalar or one weight per class, "
            f"shape ({n_classes},)"
        )
    return xp.astype(alpha, dtype, copy=False)


def _categorical_focal(
    y_true, y_pred, *, from_logits, axis, gamma, alpha, sample_weight, label_smoothing,
    where, reduction, eps, validate, with_grad,
):  # fmt: skip
    array_alpha = alpha if is_array_api_obj(alpha) else None
    xp = namespace_of(
        y_pred=y_pred, y_true=y_true, alpha=array_alpha, sample_weight=sample_weight,
        where=where,
    )  # fmt: skip
    check_options(reduction=reduction, label_smoothing=label_smoothing, validate=validate, eps=eps)
    _check_gamma(gamma)
    axis, n_classes, batch, dtype, weight, valid, x, y = _soft_inputs(
        xp, y_true, y_pred, axis=axis, loss_name="categorical_focal_cross_entropy",
        from_logits=from_logits, sample_weight=sample_weight, where=where, validate=validate,
    )  # fmt: skip
    alpha = _alpha_array(xp, alpha, n_classes, dtype)
    if from_logits:
        kernel = functools.partial(
            focal.softmax_focal_soft, xp, x, y, gamma=gamma, alpha=alpha,
            smoothing=label_smoothing,
        )  # fmt: skip
    else:
        kernel = functools.partial(
            focal.probs_focal_soft, xp, x, y, gamma=gamma, alpha=alpha,
            smoothing=label_smoothing, eps=_eps_for(xp, dtype, eps),
        )  # fmt: skip
    value, grad = _reduced(
        xp, kernel, batch_shape=batch, dtype=dtype, weight=weight, valid=valid, omega=None,
        bad=None, reduction=reduction, with_grad=with_grad, class_axis=True,
        on_device=device(y_pred),
    )  # fmt: skip
    return _finish(xp, value, grad, y_pred.dtype, axis)


@_with_common_doc("per-sample loss shape ``S`` (``y_pred.shape`` without ``axis``)")
def categorical_focal_cross_entropy(
    y_true,
    y_pred,
    *,
    from_logits=False,
    axis=-1,
    gamma=2.0,
    alpha=None,
    sample_weight=None,
    label_smoothing=0.0,
    where=None,
    reduction="mean",
    eps=None,
    validate="auto",
):
    """Categorical focal cross entropy against soft or one-hot targets.

    Each class's cross-entropy term is scaled down by how well that class is predicted.
    With the smoothed target q = (1-ε)·y + ε/C and per-class balancing weights α,

    .. math::

        ℓᵢ = -\\sum_c α_c·(1 - p_{ic})^γ·q_{ic}·\\log p_{ic}

    γ = 0 without ``alpha`` is :func:`categorical_cross_entropy`. On logits
    -log p_ic = log Σ_k exp(x_ik - m_i) - (x_ic - m_i) (exact at large offsets; a class with
    no target mass adds 0 even at x = -inf) and 1 - p_ic = Σ_{k≠c} exp(x_ik - m_i) / Σ_k
    exp(x_ik - m_i). On probabilities the log is clipped to [eps, 1] and the focal factor
    uses p itself; nothing is renormalised.

    Parameters
    ----------
    y_true : array, shape like ``y_pred``
        Target distributions (one-hot or soft) along ``axis``, values in [0, 1].
    y_pred : array, shape (..., C, ...)
        Probabilities, or logits with ``from_logits=True``; C ≥ 2 classes along ``axis``.
    from_logits : bool, default False
        Whether ``y_pred`` holds logits.
    axis : int, default -1
        The class axis: -1 for (N, C) or (N, T, C), 1 for (N, C, d1, ..., dk).
    gamma : float, default 2.0
        γ ≥ 0, the focusing exponent.
    alpha : float or array of shape (C,), optional
        α_c, a balancing weight per class (one float for all), as Keras's ``alpha``. Unlike
        ``class_weight`` of :func:`categorical_cross_entropy` it does not enter the
        ``"mean"`` denominator: the mean is Σ sᵢ·ℓᵢ / Σ sᵢ.
    %COMMON%
    Raises
    ------
    TypeError
        Mixed array libraries, integer ``y_pred``, non-boolean ``where``, a non-number
        ``gamma``.
    ValueError
        Shapes differ, fewer than 2 classes, ``axis`` out of range, an ``alpha`` or weight
        shape, unknown ``reduction``, ``label_smoothing`` outside [0, 1], ``gamma`` < 0; on
        checked data, targets or probabilities outside [0, 1].

    Examples
    --------
    >>> import numpy as np, xce
    >>> y = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> p = np.array([[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]])
    >>> xce.categorical_focal_cross_entropy(y, p, alpha=0.25, reduction="none")
    array([2.63401289e-04, 6.75912094e-01])
    """
    return _categorical_focal(
        y_true, y_pred, from_logits=from_logits, axis=axis, gamma=gamma, alpha=alpha,
        sample_weight=sample_weight, label_smoothing=label_smoothing, where=where,
        reduction=reduction, eps=eps, validate=validate, with_grad=False,
    )[0]  # fmt: skip


def _poly1(
    y_true, y_pred, *, from_logits, axis, epsilon, class_weight, sample_weight,
    label_smoothing, where, reduction, eps, validate, with_grad,
):  # fmt: skip
    xp = namespace_of(
        y_pred=y_pred, y_true=y_true, class_weight=class_weight,
        sample_weight=sample_weight, where=where,
    )  # fmt: skip
    check_options(reduction=reduction, label_smoothing=label_smoothing, validate=validate, eps=eps)
    _check_epsilon(epsilon)
    axis, n_classes, batch, dtype, weight, valid, x, y = _soft_inputs(
        xp, y_true, y_pred, axis=axis, loss_name="poly1_cross_entropy", from_logits=from_logits,
        sample_weight=sample_weight, where=where, validate=validate,
    )  # fmt: skip
    cw = class_weight_array(xp, class_weight, n_classes, dtype)
    omega = None if cw is None else xp.sum(cw * y, axis=-1)
    if from_logits:
        kernel = functools.partial(
            focal.softmax_poly1_soft, xp, x, y, epsilon=float(epsilon), class_weight=cw,
            smoothing=label_smoothing,
        )  # fmt: skip
    else:
        kernel = functools.partial(
            focal.probs_poly1_soft, xp, x, y, epsilon=float(epsilon), class_weight=cw,
            smoothing=label_smoothing, eps=_eps_for(xp, dtype, eps),
        )  # fmt: skip
    value, grad = _reduced(
        xp, kernel, batch_shape=batch, dtype=dtype, weight=weight, valid=valid, omega=omega,
        bad=None, reduction=reduction, with_grad=with_grad, class_axis=True,
        on_device=device(y_pred),
    )  # fmt: skip
    return _finish(xp, value, grad, y_pred.dtype, axis)


@_with_common_doc("per-sample loss shape ``S`` (``y_pred.shape`` without ``axis``)")
def poly1_cross_entropy(
    y_true,
    y_pred,
    *,
    from_logits=False,
    axis=-1,
    epsilon=2.0,
    class_weight=None,
    sample_weight=None,
    label_smoothing=0.0,
    where=None,
    reduction="mean",
    eps=None,
    validate="auto",
):
    """Poly-1 cross entropy (Leng et al., 2022): cross entropy plus ε₁·(1 - p_t).

    The first term of the cross entropy's Taylor series in 1 - p_t, re-weighted. With the
    smoothed target q = (1-ε)·y + ε/C and class weights w,

    .. math::

        ℓᵢ = \\sum_c w_c·q_{ic}·\\bigl(-\\log p_{ic} + ε_1·(1 - p_{ic})\\bigr)

    which for one-hot targets is -log p_t + ε₁·(1 - p_t); ε₁ = 0 is
    :func:`categorical_cross_entropy`. As in Optax's ``poly_loss_cross_entropy`` the extra
    term is Σ_c q_c·(1 - p_c) for soft targets. On logits -log p uses the same stable form as
    :func:`categorical_cross_entropy`; on probabilities only the log is clipped to [eps, 1].

    Parameters
    ----------
    y_true : array, shape like ``y_pred``
        Target distributions (one-hot or soft) along ``axis``, values in [0, 1]. For integer
        labels pass their one-hot.
    y_pred : array, shape (..., C, ...)
        Probabilities, or logits with ``from_logits=True``; C ≥ 2 classes along ``axis``.
    from_logits : bool, default False
        Whether ``y_pred`` holds logits.
    axis : int, default -1
        The class axis: -1 for (N, C) or (N, T, C), 1 for (N, C, d1, ..., dk).
    epsilon : float, default 2.0
        ε₁, the coefficient of the polynomial term (the paper: 2 for ImageNet
        classification, -1 for detection); not the clipping ``eps``.
    class_weight : array, shape (C,), optional
        w, inside the sum; the ``"mean"`` denominator is Σ sᵢ·Σ_c w_c·y_ic, as for
        :func:`categorical_cross_entropy`.
    %COMMON%
    Raises
    ------
    TypeError
        Mixed array libraries, integer ``y_pred``, non-boolean ``where``, a non-number
        ``epsilon``.
    ValueError
        Shapes differ, fewer than 2 classes, ``axis`` out of range, a weight's shape,
        unknown ``reduction``, ``label_smoothing`` outside [0, 1], a non-finite ``epsilon``;
        on checked data, targets or probabilities outside [0, 1].

    Examples
    --------
    >>> import numpy as np, xce
    >>> y = np.array([[0.0, 1.0, 0.0]])
    >>> x = np.array([[1.0, 2.0, 0.5]])
    >>> round(float(xce.poly1_cross_entropy(y, x, from_logits=True, epsilon=1.0)), 6)
    0.835837
    """
    return _poly1(
        y_true, y_pred, from_logits=from_logits, axis=axis, epsilon=epsilon,
        class_weight=class_weight, sample_weight=sample_weight,
        label_smoothing=label_smoothing, where=where, reduction=reduction, eps=eps,
        validate=validate, with_grad=False,
    )[0]  # fmt: skip


# The analytic twins, for xce.value_and_grad.
FUSED[binary_focal_cross_entropy] = _binary_focal
FUSED[categorical_focal_cross_entropy] = _categorical_focal
FUSED[poly1_cross_entropy] = _poly1
