"""Binary focal cross entropy: the public function and its driver."""

from __future__ import annotations

from . import _pipeline as pipeline
from ._docs import document
from ._hints import keyword_hints
from ._table import loss_info
from ._types import Array, Reduction, Scalar, Validate

__all__ = ["binary_focal_cross_entropy", "loss_and_gradient"]

INFO = loss_info("binary_focal_cross_entropy")


def loss_and_gradient(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool,
    gamma: Scalar,
    alpha: Scalar | None,
    sample_weight: Array | None,
    label_smoothing: Scalar,
    where: Array | None,
    reduction: Reduction,
    eps: Scalar | None,
    validate: Validate,
    with_grad: bool,
) -> tuple[Array, Array | None]:
    """:func:`binary_focal_cross_entropy` and, with ``with_grad``, its gradient in y_pred."""
    result = pipeline.generic_lane(
        INFO, y_true, y_pred, from_logits=from_logits, axis=-1, sample_weight=sample_weight,
        label_smoothing=label_smoothing, where=where, reduction=reduction, eps=eps,
        validate=validate, with_grad=with_grad, gamma=gamma, alpha=alpha,
    )  # fmt: skip
    if result is not None:
        return result
    inputs = pipeline.prepare_binary(
        y_true, y_pred, from_logits=from_logits, sample_weight=sample_weight, where=where,
        reduction=reduction, label_smoothing=label_smoothing, eps=eps, validate=validate,
    )  # fmt: skip
    options = {
        "gamma": pipeline.option(inputs, gamma, "gamma"),
        "alpha": pipeline.option(inputs, alpha, "alpha"),
        "smoothing": inputs.smoothing,
    }
    return pipeline.evaluate(
        INFO, inputs, options=options, reduction=reduction, with_grad=with_grad
    )


@keyword_hints
@document(INFO)
def binary_focal_cross_entropy(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool = False,
    gamma: Scalar = 2.0,
    alpha: Scalar | None = None,
    sample_weight: Array | None = None,
    label_smoothing: Scalar = 0.0,
    where: Array | None = None,
    reduction: Reduction = "mean",
    eps: Scalar | None = None,
    validate: Validate = "auto",
) -> Array:
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
    gamma : float or 0-d array, default 2.0
        The focusing exponent γ ≥ 0.
    alpha : float or 0-d array, optional
        The weight α in [0, 1] of the positive outcome (1 - α for the negative one), as in
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
        ``y_true`` or probability ``y_pred`` outside [0, 1]; unchecked, such entries are NaN.

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
    return loss_and_gradient(
        y_true, y_pred, from_logits=from_logits, gamma=gamma, alpha=alpha,
        sample_weight=sample_weight, label_smoothing=label_smoothing, where=where,
        reduction=reduction, eps=eps, validate=validate, with_grad=False,
    )[0]  # fmt: skip
