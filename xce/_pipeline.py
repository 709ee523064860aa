"""The one pipeline every loss runs through: plain lane, prepare, evaluate.

A loss's driver (``loss_and_gradient`` in its module) offers an option-free call on logits
to the backend's plain lane (:func:`plain_lane`), which answers it or declines; otherwise it
checks and gathers the inputs into one :class:`Prepared` record (``prepare_binary``,
``prepare_soft``, ``prepare_labels``), and :func:`evaluate` picks the kernel once (native
where the table of losses names one and the backend takes the input, else generic, over row
blocks where that pays), reduces, and casts back. README.md, "Layout", draws the call path.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

from . import _agnostic as agnostic
from . import _fast
from ._array_api import device, index_dtype, may_be_differentiated
from ._table import LossInfo
from ._types import Array, Namespace
from ._validation import (
    FROM_LOGITS_HINT,
    batch_array,
    check_class_count,
    check_floating,
    check_ignore_index,
    check_label_dtype,
    check_label_shape,
    check_labels,
    check_options,
    check_same_shape,
    check_target_dtype,
    check_unit_interval,
    check_where,
    class_weight_array,
    namespace_of,
    normalise_axis,
    values_checked,
)

__all__ = [
    "Prepared",
    "class_problem",
    "classes_last",
    "evaluate",
    "is_plain",
    "plain_lane",
    "prepare_binary",
    "prepare_labels",
    "prepare_soft",
]


@dataclasses.dataclass
class Prepared:
    """Everything the kernels and the reduction need, checked and cast.

    ``x`` holds the predictions and ``target`` the targets (same shape, compute dtype) or the
    labels (index dtype, safe to index with), both with the classes on the last axis.
    ``weight`` and ``valid`` are the sample weights and the validity mask broadcast to
    ``batch_shape``; ``omega`` the per-entry normaliser of the mean (the class weight of the
    unsmoothed target) and ``bad`` the entries to poison with NaN (unchecked out-of-range
    labels); ``None`` means "none" for each. ``class_axis`` is the class axis of the
    caller's ``y_pred`` (``None`` for element-wise losses), ``class_weight`` the class weights
    as an array of the compute dtype.
    """

    xp: Namespace
    x: Array
    target: Array
    batch_shape: tuple[int, ...]
    dtype: Any
    out_dtype: Any
    on_device: Any
    from_logits: bool
    eps: float
    class_axis: int | None = None
    n_classes: int | None = None
    weight: Array | None = None
    valid: Array | None = None
    omega: Array | None = None
    bad: Array | None = None
    class_weight: Array | None = None


def class_problem(y_pred: Array, axis: int, loss_name: str) -> tuple[int, int, tuple[int, ...]]:
    """The normalised class axis, the class count and the per-sample batch shape."""
    if y_pred.ndim == 0:
        raise ValueError(f"y_pred is 0-d; {loss_name} needs a class axis")
    axis = normalise_axis(axis, y_pred.ndim)
    n_classes = y_pred.shape[axis]
    check_class_count(n_classes, loss_name)
    batch = tuple(y_pred.shape[:axis]) + tuple(y_pred.shape[axis + 1 :])
    return axis, n_classes, batch


def classes_last(xp: Namespace, a: Array, axis: int, dtype: Any) -> Array:
    """``a`` cast to ``dtype`` with its class axis moved last (no copy where it already is)."""
    a = xp.astype(a, dtype, copy=False)
    return a if axis == a.ndim - 1 else xp.moveaxis(a, axis, -1)


def _eps_for(xp: Namespace, dtype: Any, eps: float | None) -> float:
    return float(xp.finfo(dtype).eps) if eps is None else float(eps)


def _without_excluded(xp, arrays, valid, class_axis):
    """Zero the excluded entries of the inputs when an autodiff system traces them.

    Excluded entries (padding, ignored labels) may hold NaN or inf logits, e.g. from a fully
    masked attention row. Their loss is masked out, but reverse-mode autodiff still forms
    0 · NaN = NaN on the way back; replacing them before the math keeps the gradient 0.
    Eager NumPy/CuPy data skips this pass: value_and_grad masks its gradient itself.
    """
    if valid is None or not any(may_be_differentiated(a) for a in arrays):
        return arrays
    mask = valid[..., None] if class_axis else valid
    return [xp.where(mask, a, xp.zeros_like(a)) for a in arrays]


def _start(y_true, y_pred, arrays, *, reduction, label_smoothing, validate, eps, where):
    """The namespace of every array of the call, and the checks every loss starts with."""
    xp = namespace_of(y_pred=y_pred, y_true=y_true, **arrays, where=where)
    check_options(reduction=reduction, label_smoothing=label_smoothing, validate=validate, eps=eps)
    check_floating(xp, y_pred, "y_pred")
    check_where(xp, where)
    return xp


def prepare_binary(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool,
    sample_weight: Array | None,
    where: Array | None,
    reduction: str,
    label_smoothing: float,
    eps: float | None,
    validate: Any,
    arrays: Mapping[str, Array | None] | None = None,
) -> Prepared:
    """Check and prepare an element-wise (binary) loss's inputs; ``arrays`` are the call's
    other array options (named for the messages), checked to share ``y_pred``'s library and
    device."""
    arrays = {**(arrays or {}), "sample_weight": sample_weight}
    xp = _start(y_true, y_pred, arrays, reduction=reduction, where=where,
                label_smoothing=label_smoothing, validate=validate, eps=eps)  # fmt: skip
    check_target_dtype(xp, y_true, "y_true")
    check_same_shape(
        y_true, y_pred,
        hint="For one sigmoid output per sample give both the same shape, (N,) or (N, 1)",
    )  # fmt: skip
    dtype = agnostic.compute_dtype(xp, y_pred.dtype)
    shape = tuple(y_pred.shape)
    weight = batch_array(xp, sample_weight, "sample_weight", shape, dtype)
    valid = batch_array(xp, where, "where", shape)
    if values_checked(validate, y_true, y_pred):
        check_unit_interval(xp, y_true, "y_true", " (binary targets are 0/1 or in between)")
        if not from_logits:
            check_unit_interval(xp, y_pred, "y_pred", FROM_LOGITS_HINT)
    x = xp.astype(y_pred, dtype, copy=False)
    y = xp.astype(y_true, dtype, copy=False)
    x, y = _without_excluded(xp, [x, y], valid, class_axis=False)
    return Prepared(
        xp, x, y, shape, dtype, y_pred.dtype, device(y_pred), from_logits,
        _eps_for(xp, dtype, eps), weight=weight, valid=valid,
    )  # fmt: skip


def prepare_soft(
    y_true: Array,
    y_pred: Array,
    *,
    loss_name: str,
    from_logits: bool,
    axis: int,
    class_weight: Array | None,
    sample_weight: Array | None,
    where: Array | None,
    reduction: str,
    label_smoothing: float,
    eps: float | None,
    validate: Any,
    arrays: Mapping[str, Array | None] | None = None,
) -> Prepared:
    """Check and prepare a soft-target (categorical) loss's inputs. With ``class_weight``,
    the mean's normaliser ω is Σ_c w_c·y_c of each unsmoothed target."""
    arrays = {"class_weight": class_weight, **(arrays or {}), "sample_weight": sample_weight}
    xp = _start(y_true, y_pred, arrays, reduction=reduction, where=where,
                label_smoothing=label_smoothing, validate=validate, eps=eps)  # fmt: skip
    check_target_dtype(xp, y_true, "y_true")
    axis, n_classes, batch = class_problem(y_pred, axis, loss_name)
    labels_like = tuple(y_true.shape) == batch and xp.isdtype(y_true.dtype, "integral")
    check_same_shape(
        y_true, y_pred,
        hint="y_true looks like integer labels: use sparse_categorical_cross_entropy, or "
        "pass their one-hot" if labels_like else "",
    )  # fmt: skip
    dtype = agnostic.compute_dtype(xp, y_pred.dtype)
    weight = batch_array(xp, sample_weight, "sample_weight", batch, dtype)
    valid = batch_array(xp, where, "where", batch)
    if values_checked(validate, y_true, y_pred):
        check_unit_interval(xp, y_true, "y_true", " (soft or one-hot targets)")
        if not from_logits:
            check_unit_interval(xp, y_pred, "y_pred", FROM_LOGITS_HINT)
    x = classes_last(xp, y_pred, axis, dtype)
    y = classes_last(xp, y_true, axis, dtype)
    x, y = _without_excluded(xp, [x, y], valid, class_axis=True)
    cw = class_weight_array(xp, class_weight, n_classes, dtype)
    omega = None if cw is None else xp.sum(cw * y, axis=-1)
    return Prepared(
        xp, x, y, batch, dtype, y_pred.dtype, device(y_pred), from_logits,
        _eps_for(xp, dtype, eps), class_axis=axis, n_classes=n_classes, weight=weight,
        valid=valid, omega=omega, class_weight=cw,
    )  # fmt: skip


def prepare_labels(
    y_true: Array,
    y_pred: Array,
    *,
    loss_name: str,
    from_logits: bool,
    axis: int,
    ignore_index: int | None,
    class_weight: Array | None,
    sample_weight: Array | None,
    where: Array | None,
    reduction: str,
    label_smoothing: float,
    eps: float | None,
    validate: Any,
) -> Prepared:
    """Check and prepare an integer-label loss's inputs.

    The labels come out safe to index with: ignored and excluded entries index class 0 (and
    are masked out through ``valid``), and on unchecked data an out-of-range label is
    replaced by 0 and its entry marked ``bad`` (NaN), never wrapped or clamped into a class.
    With ``class_weight``, the mean's normaliser ω is the weight of each entry's label.
    """
    arrays = {"class_weight": class_weight, "sample_weight": sample_weight}
    xp = _start(y_true, y_pred, arrays, reduction=reduction, where=where,
                label_smoothing=label_smoothing, validate=validate, eps=eps)  # fmt: skip
    check_label_dtype(xp, y_true, "y_true")
    check_ignore_index(ignore_index)
    axis, n_classes, batch = class_problem(y_pred, axis, loss_name)
    check_label_shape(y_true, y_pred, axis, batch)
    dtype = agnostic.compute_dtype(xp, y_pred.dtype)
    cw = class_weight_array(xp, class_weight, n_classes, dtype)
    weight = batch_array(xp, sample_weight, "sample_weight", batch, dtype)
    valid = batch_array(xp, where, "where", batch)
    labels = xp.astype(y_true, index_dtype(xp, device(y_true)), copy=False)
    checked = values_checked(validate, y_true, y_pred)
    if checked:
        check_labels(xp, labels, n_classes, ignore_index=ignore_index, where=valid)
        if not from_logits:
            check_unit_interval(xp, y_pred, "y_pred", FROM_LOGITS_HINT)
    if ignore_index is not None:
        kept = labels != ignore_index
        valid = kept if valid is None else valid & kept
    bad = None
    if not checked:
        # Unchecked data: an out-of-range label must poison its row, never wrap or clamp.
        in_range = (labels >= 0) & (labels < n_classes)
        bad = ~in_range if valid is None else ~in_range & valid
        labels = xp.where(in_range, labels, xp.zeros_like(labels))
    elif valid is not None:
        # Excluded entries may hold anything (padding); index them with class 0.
        labels = xp.where(valid, labels, xp.zeros_like(labels))
    omega = None
    if cw is not None:
        omega = xp.reshape(xp.take(cw, xp.reshape(labels, (-1,))), labels.shape)
    x = classes_last(xp, y_pred, axis, dtype)
    (x,) = _without_excluded(xp, [x], valid, class_axis=True)
    return Prepared(
        xp, x, labels, batch, dtype, y_pred.dtype, device(y_pred), from_logits,
        _eps_for(xp, dtype, eps), class_axis=axis, n_classes=n_classes, weight=weight,
        valid=valid, omega=omega, bad=bad, class_weight=cw,
    )  # fmt: skip


def is_plain(
    axis: Any, ignore_index: Any, class_weight: Any, sample_weight: Any,
    label_smoothing: Any, where: Any, reduction: Any, eps: Any, validate: Any,
) -> bool:  # fmt: skip
    """Whether a call uses no option beyond the defaults (any reduction but
    ``"sum_and_count"``): the case a native plain lane may serve in a few calls. Exact
    type tests, not ``==``: an array option must never be compared element-wise here."""
    return (
        type(axis) is int
        and axis == -1
        and ignore_index is None
        and class_weight is None
        and sample_weight is None
        and where is None
        and type(label_smoothing) in (int, float)
        and label_smoothing == 0
        and eps is None
        and (validate is True or (type(validate) is str and validate == "auto"))
        and type(reduction) is str
        and reduction in ("mean", "sum", "none")
    )


def plain_lane(
    info: LossInfo, y_true: Array, y_pred: Array, *, reduction: str, with_grad: bool
) -> tuple[Array, Array | None] | None:
    """The backend's plain lane for an option-free call on logits: its ``(value, grad)``, or
    ``None`` (no lane for this array type, or its quick checks did not all pass)."""
    lanes = _fast.lanes(type(y_pred))
    if lanes is None or info.lane is None:
        return None
    return getattr(lanes, info.lane)(y_true, y_pred, reduction=reduction, with_grad=with_grad)


def _kernel_call(
    info: LossInfo, inputs: Prepared, options: Mapping[str, Any]
) -> Callable[..., tuple[Array, Array | None]]:
    """The dispatch, once per call: ``kernel(with_grad=, grad_scale=) -> (loss, grad)`` from
    the backend's native kernel where the row names one and the backend handles ``x``, else
    from the generic kernel, run over row blocks where the row allows it."""
    xp, x, target = inputs.xp, inputs.x, inputs.target
    if inputs.from_logits:
        generic = functools.partial(info.logits_kernel, xp, **options)
    else:
        generic = functools.partial(info.probabilities_kernel, xp, **options, eps=inputs.eps)
    backend = _fast.backend(xp)
    if inputs.from_logits and info.native is not None:
        native = backend.native_kernel(info.native, x)
        if native is not None:
            # Native kernels walk the rows their own way: they run whole-array.
            return functools.partial(native, x, target, **options, generic=generic)
    if info.row_blocked:
        return functools.partial(backend.run_rows, xp, generic, x, (target,))
    return functools.partial(generic, x, target)


def _finish(inputs: Prepared, value, grad):
    """Cast back to the caller's dtype and put the class axis of the gradient back."""
    xp, out_dtype = inputs.xp, inputs.out_dtype

    def cast(a):
        return xp.astype(a, out_dtype, copy=False)

    value = tuple(cast(v) for v in value) if isinstance(value, tuple) else cast(value)
    if grad is None:
        return value, None
    axis = inputs.class_axis
    if axis is not None and axis != grad.ndim - 1:
        grad = xp.moveaxis(grad, -1, axis)
    return value, cast(grad)


def evaluate(
    info: LossInfo,
    inputs: Prepared,
    *,
    options: Mapping[str, Any],
    reduction: str,
    with_grad: bool,
) -> tuple[Array | tuple[Array, Array], Array | None]:
    """Run the loss's kernel on prepared inputs and apply the shared reduction rule.

    ``options`` go to the kernel as keywords (``class_weight``, ``smoothing``, ``gamma``…;
    ``eps`` is added for probabilities). The count and the gradient scale depend on targets
    and weights only, so they are computed first and the kernel folds the scale into its
    single write of the gradient. Returns ``(value, grad)`` in the caller's dtype, the
    gradient laid out as ``y_pred`` (``None`` without ``with_grad``).
    """
    xp = inputs.xp
    class_axis = inputs.class_axis is not None
    total_count = None
    if reduction in ("mean", "sum_and_count"):
        total_count = agnostic.count(
            xp, inputs.batch_shape, inputs.dtype, inputs.on_device, weight=inputs.weight,
            valid=inputs.valid, omega=inputs.omega,
        )  # fmt: skip
    scale = None
    if with_grad:
        scale = agnostic.gradient_scale(xp, total_count, weight=inputs.weight, reduction=reduction)
    loss, grad = _kernel_call(info, inputs, options)(with_grad=with_grad, grad_scale=scale)
    value = agnostic.reduce_loss(
        xp, loss, weight=inputs.weight, valid=inputs.valid, bad=inputs.bad,
        reduction=reduction, total_count=total_count,
    )  # fmt: skip
    if grad is not None:
        grad = agnostic.mask_gradient(
            xp, grad, valid=inputs.valid, bad=inputs.bad, class_axis=class_axis
        )
    return _finish(inputs, value, grad)
