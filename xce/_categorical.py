"""Categorical (softmax) cross entropy against soft or one-hot targets: the public function
and its driver."""

from __future__ import annotations

from . import _pipeline as pipeline
from ._docs import document
from ._hints import keyword_hints
from ._parts import document_logit_options
from ._sharded import check_class_shard, run_sharded
from ._table import loss_info
from ._types import Array, Reduction, Scalar, Validate
from .distributed._shard import ClassShard

__all__ = ["categorical_cross_entropy", "loss_and_gradient"]

INFO = loss_info("categorical_cross_entropy")


def loss_and_gradient(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool,
    axis: int,
    class_weight: Array | None,
    sample_weight: Array | None,
    label_smoothing: Scalar,
    where: Array | None,
    reduction: Reduction,
    eps: Scalar | None,
    validate: Validate,
    with_grad: bool,
    softcap: Scalar | None = None,
    z_loss: Scalar = 0.0,
    return_parts: bool = False,
    class_shard: ClassShard | None = None,
) -> tuple[Array, Array | None]:
    """:func:`categorical_cross_entropy` and, with ``with_grad``, its gradient in y_pred."""
    if class_shard is not None:
        check_class_shard(class_shard, from_logits=from_logits, loss_name=INFO.name)
    elif pipeline.is_plain(
        axis, None, class_weight, sample_weight, label_smoothing, where, reduction, eps,
        validate, softcap=softcap, z_loss=z_loss, return_parts=return_parts,
    ):  # fmt: skip
        result = pipeline.plain_lane(
            INFO, y_true, y_pred, reduction=reduction, with_grad=with_grad,
            label_smoothing=label_smoothing, class_weight=class_weight,
            sample_weight=sample_weight, where=where, from_logits=from_logits,
        )  # fmt: skip
        if result is not None:
            return result

    def compute(y_pred: Array, with_grad: bool) -> tuple[Array, Array | None]:
        inputs = pipeline.prepare_soft(
            y_true, y_pred, loss_name=INFO.name, from_logits=from_logits, axis=axis,
            class_weight=class_weight, sample_weight=sample_weight, where=where,
            reduction=reduction, label_smoothing=label_smoothing, eps=eps, validate=validate,
            class_shard=class_shard,
        )  # fmt: skip
        extras = pipeline.logit_options(
            inputs, softcap=softcap, z_loss=z_loss, return_parts=return_parts
        )
        options = {"class_weight": inputs.class_weight, "smoothing": inputs.smoothing, **extras}
        return pipeline.evaluate(
            INFO, inputs, options=options, reduction=reduction, with_grad=with_grad
        )

    if class_shard is None:
        return compute(y_pred, with_grad)
    constants = (y_true, class_weight, sample_weight, label_smoothing, softcap, z_loss)
    return run_sharded(
        compute, y_pred, class_shard=class_shard, axis=axis, with_grad=with_grad,
        constants=constants,
    )  # fmt: skip


@keyword_hints
@document(INFO)
@document_logit_options(omega="ωᵢ = Σ_c w_c·y_ic")
def categorical_cross_entropy(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool = False,
    axis: int = -1,
    class_weight: Array | None = None,
    sample_weight: Array | None = None,
    label_smoothing: Scalar = 0.0,
    softcap: Scalar | None = None,
    z_loss: Scalar = 0.0,
    where: Array | None = None,
    reduction: Reduction = "mean",
    eps: Scalar | None = None,
    validate: Validate = "auto",
    return_parts: bool = False,
    class_shard: ClassShard | None = None,
) -> Array:
    """Categorical (softmax) cross entropy against soft or one-hot targets.

    With the smoothed target q = (1-ε)·y + ε/C and class weights w,

    .. math::

        ℓᵢ = -\\sum_c w_c·q_{ic}·\\log p_{ic}

    On logits, -log p_ic = log Σ_k exp(x_ik - m_i) - (x_ic - m_i) with m_i the row max:
    exact at large offsets, and a class with no target mass adds 0 even at x = -inf (a
    masked class). On probabilities p is clipped to [eps, 1] and not renormalised.

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
    class_weight : array, shape (C,), optional
        Weights w, inside the sum over classes (PyTorch's definition, smoothing included).
    %LOGIT_OPTIONS%
    %COMMON%
        With ``return_parts=True``, a :class:`xce.LossParts` of such values.

    Raises
    ------
    TypeError
        Mixed array libraries, integer ``y_pred``, non-boolean ``where``.
    ValueError
        ``softcap`` not a finite number > 0, ``z_loss`` not a finite number ≥ 0 (as 0-d
        arrays on unchecked data: a NaN result), or either option or ``return_parts``
        with ``from_logits=False``; shapes differ, fewer than 2 classes, ``axis`` out of
        range, a weight's shape, unknown ``reduction``, ``label_smoothing`` outside [0, 1];
        on checked data, targets or probabilities outside [0, 1], or rows of either that do
        not sum to 1 (targets: or 0). Unchecked, such rows are NaN.

    Examples
    --------
    >>> import numpy as np, xce
    >>> y = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    >>> x = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    >>> round(float(xce.categorical_cross_entropy(y, x, from_logits=True)), 6)
    1.779646
    >>> parts = xce.categorical_cross_entropy(
    ...     y, x, from_logits=True, softcap=5.0, z_loss=0.01, return_parts=True)
    >>> [round(float(v), 6) for v in (parts.loss, parts.cross_entropy, parts.z_loss)]
    [1.724573, 1.656227, 0.068346]
    """
    return loss_and_gradient(
        y_true, y_pred, from_logits=from_logits, axis=axis, class_weight=class_weight,
        sample_weight=sample_weight, label_smoothing=label_smoothing, where=where,
        reduction=reduction, eps=eps, validate=validate, with_grad=False, softcap=softcap,
        z_loss=z_loss, return_parts=return_parts,
        class_shard=class_shard,
    )[0]  # fmt: skip
