"""Binary (sigmoid) cross entropy: the public function and its driver."""

from __future__ import annotations

from . import _pipeline as pipeline
from ._docs import document
from ._hints import keyword_hints
from ._table import loss_info
from ._types import Array, Reduction, Scalar, Validate
from ._validation import pos_weight_array

__all__ = ["binary_cross_entropy", "loss_and_gradient"]

INFO = loss_info("binary_cross_entropy")


def loss_and_gradient(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool,
    pos_weight: float | Array | None,
    sample_weight: Array | None,
    label_smoothing: Scalar,
    where: Array | None,
    reduction: Reduction,
    eps: Scalar | None,
    validate: Validate,
    with_grad: bool,
) -> tuple[Array, Array | None]:
    """:func:`binary_cross_entropy` and, with ``with_grad``, its gradient in y_pred."""
    if pos_weight is None and pipeline.is_plain(
        -1, None, None, sample_weight, label_smoothing, where, reduction, eps, validate
    ):
        result = pipeline.plain_lane(
            INFO, y_true, y_pred, reduction=reduction, with_grad=with_grad,
            label_smoothing=label_smoothing, sample_weight=sample_weight, where=where,
            from_logits=from_logits,
        )  # fmt: skip
        if result is not None:
            return result
    inputs = pipeline.prepare_binary(
        y_true, y_pred, from_logits=from_logits, sample_weight=sample_weight, where=where,
        reduction=reduction, label_smoothing=label_smoothing, eps=eps, validate=validate,
        arrays={"pos_weight": pos_weight},
    )  # fmt: skip
    pw = pos_weight_array(inputs.xp, inputs.arrays["pos_weight"], y_pred, inputs.dtype)
    return pipeline.evaluate(
        INFO, inputs, options={"pos_weight": pw, "smoothing": inputs.smoothing},
        reduction=reduction, with_grad=with_grad,
    )  # fmt: skip


@keyword_hints
@document(INFO)
def binary_cross_entropy(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool = False,
    pos_weight: float | Array | None = None,
    sample_weight: Array | None = None,
    label_smoothing: Scalar = 0.0,
    where: Array | None = None,
    reduction: Reduction = "mean",
    eps: Scalar | None = None,
    validate: Validate = "auto",
) -> Array:
    """Binary (sigmoid) cross entropy, element-wise: binary and multi-label targets.

    With the smoothed target q = (1-ε)·y + ε/2 and positive-class weight a,

    .. math::

        ℓ = -a·q·\\log p - (1-q)·\\log(1-p)

    On logits (``from_logits=True``) p = σ(x) and the stable form
    ``(1-q)·softplus(x) + a·q·softplus(-x)``, softplus(x) = max(x, 0) + log1p(exp(-abs(x))),
    is used: it never overflows, and a term with a zero coefficient is 0 (x = +inf with
    y = 1 gives 0). On probabilities p is clipped to [eps, 1 - eps].

    Parameters
    ----------
    y_true : array, shape (...)
        Targets in [0, 1] (0/1, booleans or soft labels), the same shape as ``y_pred``.
    y_pred : array, shape (...)
        Probabilities, or logits with ``from_logits=True``. Real floating dtype.
    from_logits : bool, default False
        Whether ``y_pred`` holds logits.
    pos_weight : float or array, optional
        The weight a: a scalar or one weight per output along the last axis (``(K,)``), as in
        ``torch.nn.BCEWithLogitsLoss``. It does not enter the ``"mean"`` denominator.
    %COMMON%

    Raises
    ------
    TypeError
        Mixed array libraries, integer ``y_pred``, non-boolean ``where``.
    ValueError
        Shapes differ, a weight's shape breaks the prefix rule, unknown ``reduction``,
        ``label_smoothing`` outside [0, 1]; on checked data, ``y_true`` or probability
        ``y_pred`` outside [0, 1] (the message suggests ``from_logits=True``); unchecked,
        such entries are NaN.

    Examples
    --------
    >>> import numpy as np, xce
    >>> y = np.array([1.0, 0.0, 1.0])
    >>> x = np.array([2.0, -1.0, 0.0])
    >>> round(float(xce.binary_cross_entropy(y, x, from_logits=True)), 6)
    0.377779
    """
    return loss_and_gradient(
        y_true, y_pred, from_logits=from_logits, pos_weight=pos_weight,
        sample_weight=sample_weight, label_smoothing=label_smoothing, where=where,
        reduction=reduction, eps=eps, validate=validate, with_grad=False,
    )[0]  # fmt: skip
