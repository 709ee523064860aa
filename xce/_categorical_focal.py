"""Categorical focal cross entropy: the public function and its driver."""

from __future__ import annotations

from . import _pipeline as pipeline
from ._array_api import is_array_api_obj
from ._docs import document
from ._hints import keyword_hints
from ._table import loss_info
from ._types import Array, Reduction, Scalar, Validate
from ._validation import class_alpha_array

__all__ = ["categorical_focal_cross_entropy", "loss_and_gradient"]

INFO = loss_info("categorical_focal_cross_entropy")


def _scalar(alpha: object) -> bool:
    """``None``, a number or a 0-d array: a hyperparameter, not one weight per class."""
    if is_array_api_obj(alpha):
        return getattr(alpha, "ndim", None) == 0
    return not isinstance(alpha, (list, tuple))


def loss_and_gradient(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool,
    axis: int,
    gamma: Scalar,
    alpha: float | Array | None,
    sample_weight: Array | None,
    label_smoothing: Scalar,
    where: Array | None,
    reduction: Reduction,
    eps: Scalar | None,
    validate: Validate,
    with_grad: bool,
) -> tuple[Array, Array | None]:
    """:func:`categorical_focal_cross_entropy` and, with ``with_grad``, its gradient."""
    result = pipeline.generic_lane(
        INFO, y_true, y_pred, from_logits=from_logits, axis=axis, sample_weight=sample_weight,
        label_smoothing=label_smoothing, where=where, reduction=reduction, eps=eps,
        validate=validate, with_grad=with_grad, gamma=gamma, alpha=alpha,
    )  # fmt: skip
    if result is not None:
        return result
    inputs = pipeline.prepare_soft(
        y_true, y_pred, loss_name=INFO.name, from_logits=from_logits, axis=axis,
        class_weight=None, sample_weight=sample_weight, where=where, reduction=reduction,
        label_smoothing=label_smoothing, eps=eps, validate=validate,
        arrays={"alpha": None if _scalar(alpha) else alpha},
    )  # fmt: skip
    per_class = inputs.arrays["alpha"]
    options = {
        "gamma": pipeline.option(inputs, gamma, "gamma"),
        "alpha": pipeline.option(inputs, alpha, "alpha")
        if per_class is None
        else class_alpha_array(inputs.xp, per_class, inputs.n_classes, inputs.dtype),
        "smoothing": inputs.smoothing,
    }
    return pipeline.evaluate(
        INFO, inputs, options=options, reduction=reduction, with_grad=with_grad
    )


@keyword_hints
@document(INFO)
def categorical_focal_cross_entropy(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool = False,
    axis: int = -1,
    gamma: Scalar = 2.0,
    alpha: float | Array | None = None,
    sample_weight: Array | None = None,
    label_smoothing: Scalar = 0.0,
    where: Array | None = None,
    reduction: Reduction = "mean",
    eps: Scalar | None = None,
    validate: Validate = "auto",
) -> Array:
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
    gamma : float or 0-d array, default 2.0
        The focusing exponent γ ≥ 0.
    alpha : float or array of shape (C,), optional
        A balancing weight α_c per class (one float for all), as Keras's ``alpha``. Unlike
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
        checked data, targets or probabilities outside [0, 1], or rows of either that do not
        sum to 1 (targets: or 0). Unchecked, such rows are NaN.

    Examples
    --------
    >>> import numpy as np, xce
    >>> y = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> p = np.array([[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]])
    >>> xce.categorical_focal_cross_entropy(y, p, alpha=0.25, reduction="none")
    array([2.63401289e-04, 6.75912094e-01])
    """
    return loss_and_gradient(
        y_true, y_pred, from_logits=from_logits, axis=axis, gamma=gamma, alpha=alpha,
        sample_weight=sample_weight, label_smoothing=label_smoothing, where=where,
        reduction=reduction, eps=eps, validate=validate, with_grad=False,
    )[0]  # fmt: skip
