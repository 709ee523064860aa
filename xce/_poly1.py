"""Poly-1 cross entropy: the public function and its driver."""

from __future__ import annotations

from . import _pipeline as pipeline
from ._docs import document
from ._hints import keyword_hints
from ._table import loss_info
from ._types import Array, Reduction, Scalar, Validate

__all__ = ["loss_and_gradient", "poly1_cross_entropy"]

INFO = loss_info("poly1_cross_entropy")


def loss_and_gradient(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool,
    axis: int,
    epsilon: Scalar,
    class_weight: Array | None,
    sample_weight: Array | None,
    label_smoothing: Scalar,
    where: Array | None,
    reduction: Reduction,
    eps: Scalar | None,
    validate: Validate,
    with_grad: bool,
) -> tuple[Array, Array | None]:
    """:func:`poly1_cross_entropy` and, with ``with_grad``, its gradient in y_pred."""
    if class_weight is None:  # else checked and converted by the full path
        result = pipeline.generic_lane(
            INFO, y_true, y_pred, from_logits=from_logits, axis=axis,
            sample_weight=sample_weight, label_smoothing=label_smoothing, where=where,
            reduction=reduction, eps=eps, validate=validate, with_grad=with_grad,
            epsilon=epsilon, kernel_options={"class_weight": None},
        )  # fmt: skip
        if result is not None:
            return result
    inputs = pipeline.prepare_soft(
        y_true, y_pred, loss_name=INFO.name, from_logits=from_logits, axis=axis,
        class_weight=class_weight, sample_weight=sample_weight, where=where,
        reduction=reduction, label_smoothing=label_smoothing, eps=eps, validate=validate,
    )  # fmt: skip
    options = {
        "epsilon": pipeline.option(inputs, epsilon, "epsilon"),
        "class_weight": inputs.class_weight,
        "smoothing": inputs.smoothing,
    }
    return pipeline.evaluate(
        INFO, inputs, options=options, reduction=reduction, with_grad=with_grad
    )


@keyword_hints
@document(INFO)
def poly1_cross_entropy(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool = False,
    axis: int = -1,
    epsilon: Scalar = 2.0,
    class_weight: Array | None = None,
    sample_weight: Array | None = None,
    label_smoothing: Scalar = 0.0,
    where: Array | None = None,
    reduction: Reduction = "mean",
    eps: Scalar | None = None,
    validate: Validate = "auto",
) -> Array:
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
    epsilon : float or 0-d array, default 2.0
        The coefficient ε₁ of the polynomial term (the paper: 2 for ImageNet
        classification, -1 for detection); not the clipping ``eps``.
    class_weight : array, shape (C,), optional
        Weights w, inside the sum; the ``"mean"`` denominator is Σ sᵢ·Σ_c w_c·y_ic, as for
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
        on checked data, targets or probabilities outside [0, 1], or rows of either that do
        not sum to 1 (targets: or 0). Unchecked, such rows are NaN.

    Examples
    --------
    >>> import numpy as np, xce
    >>> y = np.array([[0.0, 1.0, 0.0]])
    >>> x = np.array([[1.0, 2.0, 0.5]])
    >>> round(float(xce.poly1_cross_entropy(y, x, from_logits=True, epsilon=1.0)), 6)
    0.835837
    """
    return loss_and_gradient(
        y_true, y_pred, from_logits=from_logits, axis=axis, epsilon=epsilon,
        class_weight=class_weight, sample_weight=sample_weight,
        label_smoothing=label_smoothing, where=where, reduction=reduction, eps=eps,
        validate=validate, with_grad=False,
    )[0]  # fmt: skip
