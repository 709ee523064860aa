"""Categorical (softmax) cross entropy against integer class labels: the public function
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

__all__ = ["loss_and_gradient", "sparse_categorical_cross_entropy"]

INFO = loss_info("sparse_categorical_cross_entropy")


def loss_and_gradient(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool,
    axis: int,
    ignore_index: int | None,
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
    """:func:`sparse_categorical_cross_entropy` and, with ``with_grad``, its gradient."""
    if class_shard is not None:
        check_class_shard(class_shard, from_logits=from_logits, loss_name=INFO.name)
    elif pipeline.is_plain(
        axis, ignore_index, class_weight, sample_weight, label_smoothing, where, reduction,
        eps, validate, softcap=softcap, z_loss=z_loss, return_parts=return_parts,
    ):  # fmt: skip
        result = pipeline.plain_lane(
            INFO, y_true, y_pred, reduction=reduction, with_grad=with_grad,
            label_smoothing=label_smoothing,
            ignore_index=ignore_index, class_weight=class_weight,
            sample_weight=sample_weight, where=where, from_logits=from_logits,
        )  # fmt: skip
        if result is not None:
            return result

    def compute(y_pred: Array, with_grad: bool) -> tuple[Array, Array | None]:
        inputs = pipeline.prepare_labels(
            y_true, y_pred, loss_name=INFO.name, from_logits=from_logits, axis=axis,
            ignore_index=ignore_index, class_weight=class_weight, sample_weight=sample_weight,
            where=where, reduction=reduction, label_smoothing=label_smoothing, eps=eps,
            validate=validate, class_shard=class_shard,
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
@document_logit_options(omega="ωᵢ = w[yᵢ]")
def sparse_categorical_cross_entropy(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool = False,
    axis: int = -1,
    ignore_index: int | None = None,
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
    """Categorical (softmax) cross entropy against integer class labels.

    The same loss as :func:`categorical_cross_entropy` on the one-hot of the labels, with
    the smoothed target q = (1-ε)·onehot(y) + ε/C, but the one-hot matrix and the full
    log-probabilities are never built: the target logit is gathered by index,

    .. math::

        ℓᵢ = (1-ε)·w_{y_i}·(\\mathrm{lse}_i - x_{i y_i})
             + \\frac{ε}{C} \\sum_c w_c·(\\mathrm{lse}_i - x_{ic}),
        \\qquad \\mathrm{lse}_i - x_{ic} = \\log\\sum_k e^{x_{ik} - m_i} - (x_{ic} - m_i).

    Parameters
    ----------
    y_true : int array, shape S
        Class labels in [0, C): ``y_pred``'s shape without ``axis`` (not with a trailing 1).
    y_pred : array, shape (..., C, ...)
        Probabilities, or logits with ``from_logits=True``; C ≥ 2 classes along ``axis``.
    from_logits : bool, default False
        Whether ``y_pred`` holds logits.
    axis : int, default -1
        The class axis: -1 for (N, C) or (N, T, C), 1 for (N, C, d1, ..., dk).
    ignore_index : int, optional
        A label value (e.g. -100 or a padding id) whose entries are excluded, as with ``where``.
    class_weight : array, shape (C,), optional
        Weights w, inside the sum; the ``"mean"`` denominator is Σ sᵢ·w[yᵢ], as in PyTorch.
    %LOGIT_OPTIONS%
    %COMMON%
        With ``return_parts=True``, a :class:`xce.LossParts` of such values.

    Raises
    ------
    TypeError
        Mixed array libraries, float or boolean labels, integer ``y_pred``.
    ValueError
        ``softcap`` not a finite number > 0, ``z_loss`` not a finite number ≥ 0 (as 0-d
        arrays on unchecked data: a NaN result), or either option or ``return_parts``
        with ``from_logits=False``; ``y_true``'s shape is not ``y_pred``'s without
        ``axis``, fewer than 2 classes, a weight's shape, unknown ``reduction``; on checked
        data, labels outside [0, C) (other than ``ignore_index``), probabilities outside
        [0, 1] or rows of them that do not sum to 1. On unchecked data (JAX, Dask, GPU)
        such an entry is NaN, and with ``validate=False`` an out-of-range label still is:
        never a wrapped index.

    Examples
    --------
    >>> import numpy as np, xce
    >>> x = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    >>> y = np.array([1, 2])
    >>> round(float(xce.sparse_categorical_cross_entropy(y, x, from_logits=True)), 6)
    0.279646

    Soft-capped logits with a z-loss, and its parts for logging:

    >>> parts = xce.sparse_categorical_cross_entropy(
    ...     y, x, from_logits=True, softcap=5.0, z_loss=0.01, return_parts=True)
    >>> [round(float(v), 6) for v in (parts.loss, parts.cross_entropy, parts.z_loss)]
    [0.381949, 0.313603, 0.068346]
    >>> parts.log_z.round(6)
    array([2.399078, 2.813121])
    """
    return loss_and_gradient(
        y_true, y_pred, from_logits=from_logits, axis=axis, ignore_index=ignore_index,
        class_weight=class_weight, sample_weight=sample_weight,
        label_smoothing=label_smoothing, where=where, reduction=reduction, eps=eps,
        validate=validate, with_grad=False, softcap=softcap, z_loss=z_loss,
        return_parts=return_parts,
        class_shard=class_shard,
    )[0]  # fmt: skip
