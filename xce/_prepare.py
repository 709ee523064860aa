"""Step 2 of the pipeline: check a call's arguments and gather them into one record.

``prepare_binary``, ``prepare_soft`` and ``prepare_labels`` take a loss's arguments as the
caller gave them and return a :class:`Prepared` record: host data converted to ``y_pred``'s
library (:mod:`xce._arguments`), shapes and options checked (:mod:`xce._validation`), values
checked where they may be read, or their breaks marked for NaN where they may not
(:mod:`xce._value_checks`), predictions and targets cast to the compute dtype with the
classes last. :func:`option` adds a loss's own scalar hyperparameters (``gamma``…).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from . import _agnostic as agnostic
from ._arguments import gather_arrays, scalar_option
from ._array_api import (
    array_namespace,
    device,
    index_dtype,
    is_array_api_obj,
    may_be_differentiated,
)
from ._shard_prepare import shard_label_weight, shard_target_rows
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
    normalise_axis,
    values_checked,
)
from ._value_checks import (
    check_rows_sum_to_one,
    row_sum_tolerance,
    unchecked_bad,
    warn_if_probabilities,
)

__all__ = [
    "Prepared",
    "class_problem",
    "classes_last",
    "option",
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
    labels or values, an out-of-range array hyperparameter); ``None`` means "none" for each.
    ``class_axis`` is the class axis of the caller's ``y_pred`` (``None`` for element-wise
    losses), ``class_weight`` the class weights as an array of the compute dtype.
    ``smoothing`` and ``eps`` are Python floats, or 0-d arrays (then ``array_options`` is
    set: only the generic kernels take them). ``arrays`` holds the call's other array
    options, converted to ``y_pred``'s library. ``class_shard`` (a
    :class:`xce.distributed.ClassShard`, or ``None``) says that ``x`` holds this member's
    classes, from the global class ``shard_start`` on; ``n_classes`` is then the local count.
    """

    xp: Namespace
    x: Array
    target: Array
    batch_shape: tuple[int, ...]
    dtype: Any
    out_dtype: Any
    on_device: Any
    from_logits: bool
    eps: Any
    class_axis: int | None = None
    n_classes: int | None = None
    weight: Array | None = None
    valid: Array | None = None
    omega: Array | None = None
    bad: Array | None = None
    class_weight: Array | None = None
    smoothing: Any = 0.0
    array_options: bool = False
    arrays: dict[str, Any] = dataclasses.field(default_factory=dict)
    class_shard: Any = None
    shard_start: Any = 0


def option(inputs: Prepared, value: Any, name: str) -> Any:
    """A loss's scalar hyperparameter, checked (see :func:`xce._arguments.scalar_option`):
    a Python float, or a 0-d array whose out-of-range value poisons the whole result."""
    value, bad = scalar_option(inputs.xp, value, name, dtype=inputs.dtype)
    if bad is not None:
        inputs.array_options = True
        inputs.bad = bad if inputs.bad is None else inputs.bad | bad
    return value


def class_problem(
    y_pred: Array, axis: int, loss_name: str, *, sharded: bool = False
) -> tuple[int, int, tuple[int, ...]]:
    """The normalised class axis, the class count and the per-sample batch shape. A member
    of a class-sharded group (``sharded``) may hold a single class (its shard's count C ≥ 2
    was checked)."""
    if y_pred.ndim == 0:
        raise ValueError(f"y_pred is 0-d; {loss_name} needs a class axis")
    axis = normalise_axis(axis, y_pred.ndim)
    n_classes = y_pred.shape[axis]
    if not sharded:
        check_class_count(n_classes, loss_name)
    batch = tuple(y_pred.shape[:axis]) + tuple(y_pred.shape[axis + 1 :])
    return axis, n_classes, batch


def classes_last(xp: Namespace, a: Array, axis: int, dtype: Any) -> Array:
    """``a`` cast to ``dtype`` with its class axis moved last (no copy where it already is)."""
    a = xp.astype(a, dtype, copy=False)
    return a if axis == a.ndim - 1 else xp.moveaxis(a, axis, -1)


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


def _swapped_hint(y_true: Any, y_pred: Any) -> str:
    """A hint for (predictions, targets) given in the other order, as torch's functions take
    them: ``y_true`` holds floats while ``y_pred`` does not (integers, or not an array)."""

    def floats(a):
        return is_array_api_obj(a) and array_namespace(a).isdtype(a.dtype, "real floating")

    if not floats(y_true) or floats(y_pred):
        return ""
    return (
        ". Are the arguments swapped? xce takes (y_true, y_pred): the targets first, the "
        "predictions second (torch's F.cross_entropy takes (input, target))"
    )


def _start(y_true, y_pred, arrays, *, reduction, label_smoothing, validate, eps, where):
    """The namespace, the call's arrays in it, and the checks every loss starts with."""
    hint = _swapped_hint(y_true, y_pred)
    xp, converted = gather_arrays(y_pred, hint, y_true=y_true, **arrays, where=where)
    check_options(reduction=reduction, validate=validate)
    check_floating(xp, y_pred, "y_pred", hint)
    check_where(xp, converted["where"])
    dtype = agnostic.compute_dtype(xp, y_pred.dtype)
    smoothing, bad_smoothing = scalar_option(xp, label_smoothing, "label_smoothing", dtype=dtype)
    eps, bad_eps = scalar_option(xp, eps, "eps", dtype=dtype)
    if eps is None:
        eps = float(xp.finfo(dtype).eps)
    bad = [b for b in (bad_smoothing, bad_eps) if b is not None]
    start = {
        "smoothing": smoothing,
        "eps": eps,
        "bad": (bad[0] | bad[-1]) if bad else None,
        "array_options": bool(bad),
    }
    return xp, dtype, converted, start


def _with_bad(bad, more):
    return more if bad is None else (bad if more is None else bad | more)


def _included(bad, valid):
    """Value breaks count only where the entry is included: padding may hold anything."""
    return bad if bad is None or valid is None else bad & valid


def _unchecked(validate, checked):
    """Whether values are unread under ``validate="auto"``: their breaks become NaN."""
    return not checked and type(validate) is str


def prepare_binary(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool,
    sample_weight: Array | None,
    where: Array | None,
    reduction: str,
    label_smoothing: Any,
    eps: Any,
    validate: Any,
    arrays: Mapping[str, Any] | None = None,
) -> Prepared:
    """Check and prepare an element-wise (binary) loss's inputs; ``arrays`` are the call's
    other array options (named for the messages), converted to ``y_pred``'s library."""
    arrays = {**(arrays or {}), "sample_weight": sample_weight}
    xp, dtype, a, start = _start(
        y_true, y_pred, arrays, reduction=reduction, where=where,
        label_smoothing=label_smoothing, validate=validate, eps=eps,
    )  # fmt: skip
    y_true = a.pop("y_true")
    check_target_dtype(xp, y_true, "y_true")
    check_same_shape(
        y_true, y_pred,
        hint="For one sigmoid output per sample give both the same shape, (N,) or (N, 1)",
    )  # fmt: skip
    shape = tuple(y_pred.shape)
    weight = batch_array(xp, a.pop("sample_weight"), "sample_weight", shape, dtype)
    valid = batch_array(xp, a.pop("where"), "where", shape)
    checked = values_checked(validate, y_true, y_pred)
    if checked:
        check_unit_interval(xp, y_true, "y_true", " (binary targets are 0/1 or in between)")
        if not from_logits:
            check_unit_interval(xp, y_pred, "y_pred", FROM_LOGITS_HINT)
    x = xp.astype(y_pred, dtype, copy=False)
    y = xp.astype(y_true, dtype, copy=False)
    bad = start["bad"]
    if _unchecked(validate, checked):
        broken = unchecked_bad(xp, y, tolerance=None, target=True, rows=False)
        if not from_logits:
            broken = broken | unchecked_bad(xp, x, tolerance=None, target=False, rows=False)
        bad = _with_bad(bad, _included(broken, valid))
    x, y = _without_excluded(xp, [x, y], valid, class_axis=False)
    return Prepared(
        xp, x, y, shape, dtype, y_pred.dtype, device(y_pred), from_logits, start["eps"],
        weight=weight, valid=valid, bad=bad, smoothing=start["smoothing"],
        array_options=start["array_options"], arrays=a,
    )  # fmt: skip


def _probability_rows(xp, y_pred, x, axis, *, from_logits, checked, unchecked, valid):
    """The row rules of categorical ``y_pred``: probabilities in [0, 1] summing to 1 (raised
    on checked data, NaN rows where unchecked), a warning for logits that are probabilities."""
    tolerance = row_sum_tolerance(xp, y_pred.dtype)
    if checked and from_logits:
        warn_if_probabilities(xp, x, tolerance)
    elif checked:
        check_unit_interval(xp, y_pred, "y_pred", FROM_LOGITS_HINT)
        check_rows_sum_to_one(xp, x, "y_pred", tolerance=tolerance, valid=valid,
                              caller_axis=axis, caller_array=y_pred, target=False)  # fmt: skip
    elif unchecked and not from_logits:
        return unchecked_bad(xp, x, tolerance=tolerance, target=False, rows=True)
    return None


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
    label_smoothing: Any,
    eps: Any,
    validate: Any,
    arrays: Mapping[str, Any] | None = None,
    class_shard: Any = None,
) -> Prepared:
    """Check and prepare a soft-target (categorical) loss's inputs. With ``class_weight``,
    the mean's normaliser ω is Σ_c w_c·y_c of each unsmoothed target. With ``class_shard``
    the targets' row rules and ω span every member's classes (one collective)."""
    arrays = {"class_weight": class_weight, **(arrays or {}), "sample_weight": sample_weight}
    xp, dtype, a, start = _start(
        y_true, y_pred, arrays, reduction=reduction, where=where,
        label_smoothing=label_smoothing, validate=validate, eps=eps,
    )  # fmt: skip
    y_true = a.pop("y_true")
    check_target_dtype(xp, y_true, "y_true")
    axis, n_classes, batch = class_problem(y_pred, axis, loss_name, sharded=class_shard is not None)
    labels_like = tuple(y_true.shape) == batch and xp.isdtype(y_true.dtype, "integral")
    check_same_shape(
        y_true, y_pred,
        hint="y_true looks like integer labels: use sparse_categorical_cross_entropy, or "
        "pass their one-hot" if labels_like else "",
    )  # fmt: skip
    weight = batch_array(xp, a.pop("sample_weight"), "sample_weight", batch, dtype)
    valid = batch_array(xp, a.pop("where"), "where", batch)
    checked = values_checked(validate, y_true, y_pred)
    unchecked = _unchecked(validate, checked)
    x = classes_last(xp, y_pred, axis, dtype)
    y = classes_last(xp, y_true, axis, dtype)
    target_tolerance = row_sum_tolerance(xp, y_true.dtype)
    bad = start["bad"]
    cw = class_weight_array(xp, a.pop("class_weight"), n_classes, dtype)
    omega = shard_start = None
    if class_shard is not None:
        shard_start = class_shard.start(n_classes)
        broken, omega = shard_target_rows(
            xp, y, class_shard, class_weight=cw, tolerance=target_tolerance, valid=valid,
            check="raise" if checked else "nan" if unchecked else None,
            caller_axis=axis, caller_array=y_true,
        )  # fmt: skip
        bad = _with_bad(bad, _included(broken, valid))
    elif checked:
        check_unit_interval(xp, y_true, "y_true", " (soft or one-hot targets)")
        check_rows_sum_to_one(xp, y, "y_true", tolerance=target_tolerance, valid=valid,
                              caller_axis=axis, caller_array=y_true, target=True)  # fmt: skip
    elif unchecked:
        broken = unchecked_bad(xp, y, tolerance=target_tolerance, target=True, rows=True)
        bad = _with_bad(bad, _included(broken, valid))
    broken = _probability_rows(xp, y_pred, x, axis, from_logits=from_logits, checked=checked,
                               unchecked=unchecked, valid=valid)  # fmt: skip
    bad = _with_bad(bad, _included(broken, valid))
    x, y = _without_excluded(xp, [x, y], valid, class_axis=True)
    if cw is not None and class_shard is None:
        omega = xp.sum(cw * y, axis=-1)
    return Prepared(
        xp, x, y, batch, dtype, y_pred.dtype, device(y_pred), from_logits, start["eps"],
        class_axis=axis, n_classes=n_classes, weight=weight, valid=valid, omega=omega,
        bad=bad, class_weight=cw, smoothing=start["smoothing"],
        array_options=start["array_options"], arrays=a, class_shard=class_shard,
        shard_start=shard_start,
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
    label_smoothing: Any,
    eps: Any,
    validate: Any,
    class_shard: Any = None,
) -> Prepared:
    """Check and prepare an integer-label loss's inputs.

    The labels come out safe to index with: ignored and excluded entries index class 0 (and
    are masked out through ``valid``), and on unchecked data an out-of-range label is
    replaced by 0 and its entry marked ``bad`` (NaN), never wrapped or clamped into a class.
    With ``class_weight``, the mean's normaliser ω is the weight of each entry's label.
    With ``class_shard`` the labels are global classes (checked against its
    ``num_classes``), and ω comes from the member holding each label (one collective).
    """
    arrays = {"class_weight": class_weight, "sample_weight": sample_weight}
    xp, dtype, a, start = _start(
        y_true, y_pred, arrays, reduction=reduction, where=where,
        label_smoothing=label_smoothing, validate=validate, eps=eps,
    )  # fmt: skip
    y_true = a.pop("y_true")
    check_label_dtype(xp, y_true, "y_true")
    check_ignore_index(ignore_index)
    axis, n_classes, batch = class_problem(y_pred, axis, loss_name, sharded=class_shard is not None)
    check_label_shape(y_true, y_pred, axis, batch)
    shard_start = None if class_shard is None else class_shard.start(n_classes)
    label_classes = n_classes if class_shard is None else class_shard.num_classes
    cw = class_weight_array(xp, a.pop("class_weight"), n_classes, dtype)
    weight = batch_array(xp, a.pop("sample_weight"), "sample_weight", batch, dtype)
    valid = batch_array(xp, a.pop("where"), "where", batch)
    labels = xp.astype(y_true, index_dtype(xp, device(y_true)), copy=False)
    checked = values_checked(validate, y_true, y_pred)
    if checked:
        check_labels(xp, labels, label_classes, ignore_index=ignore_index, where=valid)
    if ignore_index is not None:
        kept = labels != ignore_index
        valid = kept if valid is None else valid & kept
    x = classes_last(xp, y_pred, axis, dtype)
    bad = _probability_rows(xp, y_pred, x, axis, from_logits=from_logits, checked=checked,
                            unchecked=_unchecked(validate, checked), valid=valid)  # fmt: skip
    bad = _included(bad, valid)
    if not checked:
        # Unchecked data: an out-of-range label must poison its row, never wrap or clamp.
        in_range = (labels >= 0) & (labels < label_classes)
        out_of_range = ~in_range if valid is None else ~in_range & valid
        bad = _with_bad(out_of_range, bad)
        labels = xp.where(in_range, labels, xp.zeros_like(labels))
    elif valid is not None:
        # Excluded entries may hold anything (padding); index them with class 0.
        labels = xp.where(valid, labels, xp.zeros_like(labels))
    bad = _with_bad(bad, start["bad"])
    omega = None
    if cw is not None and class_shard is not None:
        omega = shard_label_weight(xp, cw, labels, class_shard, shard_start)
    elif cw is not None:
        omega = agnostic.class_weight_of(xp, cw, labels)
    (x,) = _without_excluded(xp, [x], valid, class_axis=True)
    return Prepared(
        xp, x, labels, batch, dtype, y_pred.dtype, device(y_pred), from_logits, start["eps"],
        class_axis=axis, n_classes=n_classes, weight=weight, valid=valid, omega=omega,
        bad=bad, class_weight=cw, smoothing=start["smoothing"],
        array_options=start["array_options"], arrays=a, class_shard=class_shard,
        shard_start=shard_start,
    )  # fmt: skip
