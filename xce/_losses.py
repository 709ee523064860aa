"""The public cross-entropy losses: namespace → validate → native fast path → generic code.

Each public function is a thin wrapper over a private driver that can also return the
analytic gradient; :func:`xce.value_and_grad` calls the same driver with ``with_grad=True``.
"""

from __future__ import annotations

import functools
import inspect
import numbers

from . import _agnostic as agnostic
from . import _fast
from ._compat import device, may_be_differentiated
from ._validation import (
    FROM_LOGITS_HINT,
    batch_array,
    check_class_count,
    check_floating,
    check_label_dtype,
    check_labels,
    check_options,
    check_same_shape,
    check_target_dtype,
    check_unit_interval,
    check_where,
    class_weight_array,
    namespace_of,
    normalise_axis,
    pos_weight_array,
    values_checked,
)

_COMMON_DOC = """
    sample_weight : array, optional
        Weight sᵢ of each entry of the per-sample loss. Shape ``()`` or a *leading prefix* of
        the per-sample loss shape ``S``, repeated over the trailing dimensions: with ``S =
        (N, T)`` a shape ``(N,)`` weights whole sequences and ``(N, T)`` single tokens. Shapes
        are matched from the left, never broadcast from the right: ``(N, 1)`` against
        ``S = (N,)`` is an error, not an ``(N, N)`` matrix.
    label_smoothing : float, default 0.0
        ε in [0, 1].
    where : boolean array, optional
        Entries to include, same shape rule as ``sample_weight``. Excluded entries contribute
        nothing (loss 0 under ``"none"``, zero gradient), whatever their values.
    reduction : {"mean", "sum", "none", "sum_and_count"}, default "mean"
        ``"none"``: sᵢ·ℓᵢ per entry (0 where excluded). ``"sum"``: Σ sᵢ·ℓᵢ. ``"mean"``:
        Σ sᵢ·ℓᵢ / Σ sᵢ·ωᵢ over the included entries, where ωᵢ is the class weight of the
        *unsmoothed* target (1 without class weights); a mean over nothing is 0.
        ``"sum_and_count"``: the pair (Σ sᵢ·ℓᵢ, Σ sᵢ·ωᵢ), to accumulate exact means over
        micro-batches or devices.
    eps : float, optional
        Clipping for probability inputs (``from_logits=False``); ignored for logits. Default:
        the machine epsilon of the compute dtype (1.19e-7 in float32, 2.2e-16 in float64), the
        smallest clip that keeps 1 - eps distinct from 1, bounding each term by -log(eps)
        (≈ 15.9 in float32). ``eps=0.0`` disables clipping.
    validate : {"auto", True, False}, default "auto"
        Check values (labels in range, probabilities in [0, 1]). ``"auto"`` checks where the
        data is eager on the host (NumPy, array-api-strict, CPU torch) and skips lazy or
        device data (JAX, Dask, CuPy, CUDA torch), where a read would sync or break tracing.

    Returns
    -------
    loss : array or tuple of two arrays
        Same namespace and device as ``y_pred``, in ``y_pred``'s dtype (float16 and bfloat16
        inputs are computed in float32). A 0-d array (also on NumPy, whose own sums return
        scalars), or shape ``S`` for ``reduction="none"``.
"""


def _with_common_doc(batch_shape_phrase):
    """Splice the options every loss shares into the decorated function's docstring."""

    def decorate(fn):
        common = inspect.cleandoc(_COMMON_DOC).replace(
            "per-sample loss shape ``S``", batch_shape_phrase
        )
        fn.__doc__ = inspect.cleandoc(fn.__doc__).replace("%COMMON%", common)
        return fn

    return decorate


def _finish(xp, value, grad, out_dtype, class_axis):
    """Cast back to the caller's dtype and put the class axis of the gradient back."""

    def cast(a):
        return xp.astype(a, out_dtype, copy=False)

    value = tuple(cast(v) for v in value) if isinstance(value, tuple) else cast(value)
    if grad is None:
        return value, None
    if class_axis is not None and class_axis != grad.ndim - 1:
        grad = xp.moveaxis(grad, -1, class_axis)
    return value, cast(grad)


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


def _reduced(
    xp, kernel, *, batch_shape, dtype, weight, valid, omega, bad, reduction, with_grad,
    class_axis, on_device, x=None, row_args=(),
):  # fmt: skip
    """Run the kernel and apply the shared reduction rule.

    The count and the gradient scale depend on targets and weights only, so they are
    computed first and the kernel folds the scale into its single write of the gradient.
    With ``x`` given, the kernel is ``kernel(x, *row_args, with_grad=, grad_scale=)`` and runs
    over cache-sized row blocks where that pays (see ``_agnostic/_rows.py``); without, it is
    ``kernel(with_grad=, grad_scale=)``.
    """
    total_count = None
    if reduction in ("mean", "sum_and_count"):
        total_count = agnostic.count(
            xp, batch_shape, dtype, on_device, weight=weight, valid=valid, omega=omega
        )
    scale = None
    if with_grad:
        scale = agnostic.gradient_scale(xp, total_count, weight=weight, reduction=reduction)
    if x is None:
        loss, grad = kernel(with_grad=with_grad, grad_scale=scale)
    else:
        run = _fast.kernel_runner(xp)
        loss, grad = run(xp, kernel, x, row_args, with_grad=with_grad, grad_scale=scale)
    value = agnostic.reduce_loss(
        xp, loss, weight=weight, valid=valid, bad=bad, reduction=reduction,
        total_count=total_count,
    )  # fmt: skip
    if grad is not None:
        grad = agnostic.mask_gradient(xp, grad, valid=valid, bad=bad, class_axis=class_axis)
    return value, grad


def _native_kernel(xp, x, name):
    """The backend's native ``name`` kernel for ``x``, or ``None``. It runs whole-array (it
    walks the rows its own way) and hands what it cannot do exactly to the generic kernel."""
    native = _fast.native(xp)
    if native is None or not native.handles(x):
        return None
    return getattr(native, name, None)


def _eps_for(xp, dtype, eps):
    return float(xp.finfo(dtype).eps) if eps is None else float(eps)


def _binary_inputs(xp, y_true, y_pred, *, from_logits, sample_weight, where, validate):
    """The checks and preparation every element-wise (binary) loss shares.

    Returns the compute dtype, the sample weights and validity mask broadcast to
    ``y_pred.shape``, and the inputs cast to the compute dtype (excluded entries zeroed when
    an autodiff system traces them).
    """
    check_floating(xp, y_pred, "y_pred")
    check_target_dtype(xp, y_true, "y_true")
    check_where(xp, where)
    check_same_shape(
        y_true, y_pred,
        hint="For one sigmoid output per sample give both the same shape, (N,) or (N, 1)",
    )  # fmt: skip
    dtype = agnostic.compute_dtype(xp, y_pred.dtype)
    weight = batch_array(xp, sample_weight, "sample_weight", y_pred.shape, dtype)
    valid = batch_array(xp, where, "where", y_pred.shape)
    if values_checked(validate, y_true, y_pred):
        check_unit_interval(xp, y_true, "y_true", " (binary targets are 0/1 or in between)")
        if not from_logits:
            check_unit_interval(xp, y_pred, "y_pred", FROM_LOGITS_HINT)
    x = xp.astype(y_pred, dtype, copy=False)
    y = xp.astype(y_true, dtype, copy=False)
    x, y = _without_excluded(xp, [x, y], valid, class_axis=False)
    return dtype, weight, valid, x, y


def _soft_inputs(
    xp, y_true, y_pred, *, axis, loss_name, from_logits, sample_weight, where, validate
):
    """The checks and preparation every soft-target (categorical) loss shares.

    Returns the class axis, C, the per-sample shape S, the compute dtype, the sample weights
    and validity mask broadcast to S, and both inputs cast with their classes last.
    """
    check_floating(xp, y_pred, "y_pred")
    check_target_dtype(xp, y_true, "y_true")
    check_where(xp, where)
    axis, n_classes, batch = _class_problem(xp, y_pred, axis, loss_name)
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
    x = _classes_last(xp, y_pred, axis, dtype)
    y = _classes_last(xp, y_true, axis, dtype)
    x, y = _without_excluded(xp, [x, y], valid, class_axis=True)
    return axis, n_classes, batch, dtype, weight, valid, x, y


def _binary(
    y_true, y_pred, *, from_logits, pos_weight, sample_weight, label_smoothing, where,
    reduction, eps, validate, with_grad,
):  # fmt: skip
    if (
        from_logits
        and pos_weight is None
        and _is_plain(
            -1, None, None, sample_weight, label_smoothing, where, reduction, eps, validate
        )
    ):
        result = _plain_lane(
            "plain_binary", y_true, y_pred, reduction=reduction, with_grad=with_grad
        )
        if result is not None:
            return result
    array_pos_weight = None if isinstance(pos_weight, numbers.Real) else pos_weight
    xp = namespace_of(
        y_pred=y_pred, y_true=y_true, pos_weight=array_pos_weight,
        sample_weight=sample_weight, where=where,
    )  # fmt: skip
    check_options(reduction=reduction, label_smoothing=label_smoothing, validate=validate, eps=eps)
    dtype, weight, valid, x, y = _binary_inputs(
        xp, y_true, y_pred, from_logits=from_logits, sample_weight=sample_weight, where=where,
        validate=validate,
    )  # fmt: skip
    pw = pos_weight_array(xp, pos_weight, y_pred, dtype)
    rows = {"x": x, "row_args": (y,)}
    if from_logits:
        kernel = functools.partial(
            agnostic.sigmoid_bce, xp, pos_weight=pw, smoothing=label_smoothing
        )
        native = _native_kernel(xp, x, "sigmoid_bce")
        if native is not None:
            kernel = functools.partial(native, x, y, pos_weight=pw, smoothing=label_smoothing,
                                       generic=kernel)  # fmt: skip
            rows = {}
    else:
        kernel = functools.partial(
            agnostic.probs_bce, xp, pos_weight=pw, smoothing=label_smoothing,
            eps=_eps_for(xp, dtype, eps),
        )  # fmt: skip
    value, grad = _reduced(
        xp, kernel, batch_shape=tuple(y_pred.shape), dtype=dtype, weight=weight, valid=valid,
        omega=None, bad=None, reduction=reduction, with_grad=with_grad, class_axis=False,
        on_device=device(y_pred), **rows,
    )  # fmt: skip
    return _finish(xp, value, grad, y_pred.dtype, None)


@_with_common_doc("loss shape ``S = y_pred.shape``")
def binary_cross_entropy(
    y_true,
    y_pred,
    *,
    from_logits=False,
    pos_weight=None,
    sample_weight=None,
    label_smoothing=0.0,
    where=None,
    reduction="mean",
    eps=None,
    validate="auto",
):
    """Binary (sigmoid) cross entropy, element-wise: binary and multi-label targets.

    With the smoothed target q = (1-ε)·y + ε/2 and positive-class weight a,

    .. math::

        ℓ = -a·q·\\log p - (1-q)·\\log(1-p)

    On logits (``from_logits=True``) p = σ(x) and the stable form
    ``(1-q)·softplus(x) + a·q·softplus(-x)``, softplus(x) = max(x, 0) + log1p(exp(-|x|)),
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
        a: a scalar or one weight per output along the last axis (shape ``(K,)``), as in
        ``torch.nn.BCEWithLogitsLoss``. It does not enter the ``"mean"`` denominator.
    %COMMON%
    Raises
    ------
    TypeError
        Mixed array libraries, integer ``y_pred``, non-boolean ``where``.
    ValueError
        Shapes differ, a weight's shape breaks the prefix rule, unknown ``reduction``,
        ``label_smoothing`` outside [0, 1]; on checked data, ``y_true`` or probability
        ``y_pred`` outside [0, 1] (the message suggests ``from_logits=True``).

    Examples
    --------
    >>> import numpy as np, xce
    >>> y = np.array([1.0, 0.0, 1.0])
    >>> x = np.array([2.0, -1.0, 0.0])
    >>> round(float(xce.binary_cross_entropy(y, x, from_logits=True)), 6)
    0.377779
    """
    return _binary(
        y_true, y_pred, from_logits=from_logits, pos_weight=pos_weight,
        sample_weight=sample_weight, label_smoothing=label_smoothing, where=where,
        reduction=reduction, eps=eps, validate=validate, with_grad=False,
    )[0]  # fmt: skip


def _class_problem(xp, y_pred, axis, loss_name):
    """Normalised class axis, class count and per-sample batch shape."""
    if y_pred.ndim == 0:
        raise ValueError(f"y_pred is 0-d; {loss_name} needs a class axis")
    axis = normalise_axis(axis, y_pred.ndim)
    n_classes = y_pred.shape[axis]
    check_class_count(n_classes, loss_name)
    batch = tuple(y_pred.shape[:axis]) + tuple(y_pred.shape[axis + 1 :])
    return axis, n_classes, batch


def _classes_last(xp, a, axis, dtype):
    a = xp.astype(a, dtype, copy=False)
    return a if axis == a.ndim - 1 else xp.moveaxis(a, axis, -1)


def _categorical(
    y_true, y_pred, *, from_logits, axis, class_weight, sample_weight, label_smoothing,
    where, reduction, eps, validate, with_grad,
):  # fmt: skip
    if from_logits and _is_plain(axis, None, class_weight, sample_weight, label_smoothing,
                                 where, reduction, eps, validate):  # fmt: skip
        result = _plain_lane("plain_soft", y_true, y_pred, reduction=reduction, with_grad=with_grad)
        if result is not None:
            return result
    xp = namespace_of(
        y_pred=y_pred, y_true=y_true, class_weight=class_weight,
        sample_weight=sample_weight, where=where,
    )  # fmt: skip
    check_options(reduction=reduction, label_smoothing=label_smoothing, validate=validate, eps=eps)
    axis, n_classes, batch, dtype, weight, valid, x, y = _soft_inputs(
        xp, y_true, y_pred, axis=axis, loss_name="categorical_cross_entropy",
        from_logits=from_logits, sample_weight=sample_weight, where=where, validate=validate,
    )  # fmt: skip
    cw = class_weight_array(xp, class_weight, n_classes, dtype)
    omega = None if cw is None else xp.sum(cw * y, axis=-1)
    rows = {"x": x, "row_args": (y,)}
    if from_logits:
        kernel = functools.partial(
            agnostic.softmax_ce_soft, xp, class_weight=cw, smoothing=label_smoothing
        )
        native = _native_kernel(xp, x, "softmax_ce_soft")
        if native is not None:
            kernel = functools.partial(native, x, y, class_weight=cw, smoothing=label_smoothing,
                                       generic=kernel)  # fmt: skip
            rows = {}
    else:
        kernel = functools.partial(
            agnostic.probs_ce_soft, xp, class_weight=cw, smoothing=label_smoothing,
            eps=_eps_for(xp, dtype, eps),
        )  # fmt: skip
    value, grad = _reduced(
        xp, kernel, batch_shape=batch, dtype=dtype, weight=weight, valid=valid, omega=omega,
        bad=None, reduction=reduction, with_grad=with_grad, class_axis=True,
        on_device=device(y_pred), **rows,
    )  # fmt: skip
    return _finish(xp, value, grad, y_pred.dtype, axis)


@_with_common_doc("per-sample loss shape ``S`` (``y_pred.shape`` without ``axis``)")
def categorical_cross_entropy(
    y_true,
    y_pred,
    *,
    from_logits=False,
    axis=-1,
    class_weight=None,
    sample_weight=None,
    label_smoothing=0.0,
    where=None,
    reduction="mean",
    eps=None,
    validate="auto",
):
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
        w, inside the sum over classes (PyTorch's definition, smoothing included).
    %COMMON%
    Raises
    ------
    TypeError
        Mixed array libraries, integer ``y_pred``, non-boolean ``where``.
    ValueError
        Shapes differ, fewer than 2 classes, ``axis`` out of range, a weight's shape,
        unknown ``reduction``, ``label_smoothing`` outside [0, 1]; on checked data, targets
        or probabilities outside [0, 1].

    Examples
    --------
    >>> import numpy as np, xce
    >>> y = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    >>> x = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    >>> round(float(xce.categorical_cross_entropy(y, x, from_logits=True)), 6)
    1.779646
    """
    return _categorical(
        y_true, y_pred, from_logits=from_logits, axis=axis, class_weight=class_weight,
        sample_weight=sample_weight, label_smoothing=label_smoothing, where=where,
        reduction=reduction, eps=eps, validate=validate, with_grad=False,
    )[0]  # fmt: skip


def _index_dtype(xp, on_device):
    try:
        return xp.__array_namespace_info__().default_dtypes(device=on_device)["indexing"]
    except (AttributeError, TypeError, KeyError):
        return xp.int64


def _plain_lane(name, y_true, y_pred, *, reduction, with_grad):
    """The backend's plain lane ``name`` for an option-free call: its result, or ``None``
    (no lane for this array type, or its quick checks did not all pass)."""
    lanes = _fast.plain_lanes(type(y_pred))
    if lanes is None:
        return None
    return getattr(lanes, name)(y_true, y_pred, reduction=reduction, with_grad=with_grad)


def _is_plain(axis, ignore_index, class_weight, sample_weight, label_smoothing, where,
              reduction, eps, validate):  # fmt: skip
    """Whether a call uses no option beyond the defaults (any reduction but
    ``"sum_and_count"``): the case a native plain lane may serve in a few calls."""
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


def _sparse(
    y_true, y_pred, *, from_logits, axis, ignore_index, class_weight, sample_weight,
    label_smoothing, where, reduction, eps, validate, with_grad,
):  # fmt: skip
    if from_logits and _is_plain(axis, ignore_index, class_weight, sample_weight,
                                 label_smoothing, where, reduction, eps, validate):  # fmt: skip
        result = _plain_lane(
            "plain_sparse", y_true, y_pred, reduction=reduction, with_grad=with_grad
        )
        if result is not None:
            return result
    xp = namespace_of(
        y_pred=y_pred, y_true=y_true, class_weight=class_weight,
        sample_weight=sample_weight, where=where,
    )  # fmt: skip
    check_options(reduction=reduction, label_smoothing=label_smoothing, validate=validate, eps=eps)
    check_floating(xp, y_pred, "y_pred")
    check_label_dtype(xp, y_true, "y_true")
    check_where(xp, where)
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral)
    ):
        raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__}")
    axis, n_classes, batch = _class_problem(xp, y_pred, axis, "sparse_categorical_cross_entropy")
    if tuple(y_true.shape) != batch:
        if tuple(y_true.shape) == tuple(y_pred.shape):
            hint = "it has y_pred's shape: one-hot or soft targets go to categorical_cross_entropy"
        elif tuple(y_true.shape) == (*batch, 1):
            hint = "drop its trailing axis of length 1 (xce never broadcasts labels)"
        else:
            hint = "one integer label per sample"
        raise ValueError(
            f"y_true has shape {tuple(y_true.shape)} but labels for y_pred of shape "
            f"{tuple(y_pred.shape)} with class axis {axis} need shape {batch}; {hint}"
        )
    dtype = agnostic.compute_dtype(xp, y_pred.dtype)
    cw = class_weight_array(xp, class_weight, n_classes, dtype)
    weight = batch_array(xp, sample_weight, "sample_weight", batch, dtype)
    valid = batch_array(xp, where, "where", batch)
    labels = xp.astype(y_true, _index_dtype(xp, device(y_true)), copy=False)
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
    x = _classes_last(xp, y_pred, axis, dtype)
    (x,) = _without_excluded(xp, [x], valid, class_axis=True)
    native = _fast.native(xp)
    if from_logits and native is not None and native.handles(x):
        # Native kernels walk the rows their own way: run them whole-array.
        generic = functools.partial(
            agnostic.softmax_ce_labels, xp, class_weight=cw, smoothing=label_smoothing
        )
        kernel = functools.partial(native.softmax_ce_labels, x, labels, class_weight=cw,
                                   smoothing=label_smoothing, generic=generic)  # fmt: skip
        rows = {}
    else:
        if from_logits:
            kernel = functools.partial(
                agnostic.softmax_ce_labels, xp, class_weight=cw, smoothing=label_smoothing
            )
        else:
            kernel = functools.partial(
                agnostic.probs_ce_labels, xp, class_weight=cw, smoothing=label_smoothing,
                eps=_eps_for(xp, dtype, eps),
            )  # fmt: skip
        rows = {"x": x, "row_args": (labels,)}
    value, grad = _reduced(
        xp, kernel, batch_shape=batch, dtype=dtype, weight=weight, valid=valid, omega=omega,
        bad=bad, reduction=reduction, with_grad=with_grad, class_axis=True,
        on_device=device(y_pred), **rows,
    )  # fmt: skip
    return _finish(xp, value, grad, y_pred.dtype, axis)


@_with_common_doc("per-sample loss shape ``S`` (``y_pred.shape`` without ``axis``)")
def sparse_categorical_cross_entropy(
    y_true,
    y_pred,
    *,
    from_logits=False,
    axis=-1,
    ignore_index=None,
    class_weight=None,
    sample_weight=None,
    label_smoothing=0.0,
    where=None,
    reduction="mean",
    eps=None,
    validate="auto",
):
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
    y_true : integer array, shape S
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
        w, inside the sum; the ``"mean"`` denominator is Σ sᵢ·w[yᵢ], as in PyTorch.
    %COMMON%
    Raises
    ------
    TypeError
        Mixed array libraries, float or boolean labels, integer ``y_pred``.
    ValueError
        ``y_true``'s shape is not ``y_pred``'s without ``axis``, fewer than 2 classes, a
        weight's shape, unknown ``reduction``; on checked data, labels outside [0, C) (other
        than ``ignore_index``) or probabilities outside [0, 1]. On unchecked data (JAX, Dask,
        GPU, ``validate=False``) such a label makes its entry NaN: never a wrapped index.

    Examples
    --------
    >>> import numpy as np, xce
    >>> x = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    >>> y = np.array([1, 2])
    >>> round(float(xce.sparse_categorical_cross_entropy(y, x, from_logits=True)), 6)
    0.279646
    """
    return _sparse(
        y_true, y_pred, from_logits=from_logits, axis=axis, ignore_index=ignore_index,
        class_weight=class_weight, sample_weight=sample_weight,
        label_smoothing=label_smoothing, where=where, reduction=reduction, eps=eps,
        validate=validate, with_grad=False,
    )[0]  # fmt: skip


# The analytic twin of each public loss, for xce.value_and_grad.
FUSED = {
    binary_cross_entropy: _binary,
    categorical_cross_entropy: _categorical,
    sparse_categorical_cross_entropy: _sparse,
}
