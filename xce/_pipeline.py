"""The one pipeline every loss runs through: plain lane, prepare, evaluate.

A loss's driver (``loss_and_gradient`` in its module) offers an option-free call on logits
to the backend's plain lane (:func:`plain_lane`), which answers it or declines; otherwise it
checks and gathers the inputs into one :class:`Prepared` record (``prepare_binary``,
``prepare_soft``, ``prepare_labels`` in :mod:`xce._prepare`), and :func:`evaluate` picks the
kernel once (native where the table of losses names one and the backend takes the input,
else generic, over row blocks where that pays), reduces, and casts back. The documentation's
"How it works" page (docs/how-it-works.md) draws the call path.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

from . import _agnostic as agnostic
from . import _fast
from ._arguments import HYPERPARAMETERS
from ._array_api import is_jax_namespace
from ._parts import LossParts
from ._prepare import (
    Prepared,
    class_problem,
    classes_last,
    option,
    prepare_binary,
    prepare_labels,
    prepare_soft,
)
from ._table import LossInfo
from ._types import Array
from ._validation import check_logit_options

__all__ = [
    "GENERIC_ONLY",
    "LossParts",
    "Prepared",
    "class_problem",
    "classes_last",
    "evaluate",
    "generic_lane",
    "is_plain",
    "logit_options",
    "option",
    "plain_lane",
    "prepare_binary",
    "prepare_labels",
    "prepare_soft",
]


# The kernel options that only the generic kernels know (soft-capping, the z-loss, the loss
# parts): a call with any of them runs generic, never a plain lane or a native kernel.
GENERIC_ONLY = ("softcap", "z_loss", "parts")


def is_plain(
    axis: Any, ignore_index: Any, class_weight: Any, sample_weight: Any,
    label_smoothing: Any, where: Any, reduction: Any, eps: Any, validate: Any,
    *, softcap: Any = None, z_loss: Any = 0.0, return_parts: Any = False,
) -> bool:  # fmt: skip
    """Whether a call uses no option beyond the defaults (any reduction but
    ``"sum_and_count"``), but label smoothing given as a number in [0, 1], an int
    ``ignore_index``, class weights (which only the sparse lanes take, and check), sample
    weights and a ``where`` mask (which :func:`plain_lane` checks): the case a native plain
    lane may serve in a few calls. Exact type tests, not ``==``: an array option must never be
    compared element-wise here."""
    return (
        softcap is None
        and type(z_loss) in (int, float)
        and z_loss == 0
        and return_parts is False
        and type(axis) is int
        and axis == -1
        and (ignore_index is None or type(ignore_index) is int)
        and type(label_smoothing) in (int, float)
        and 0 <= label_smoothing <= 1  # NaN is not: the full path raises
        and eps is None
        and (validate is True or (type(validate) is str and validate == "auto"))
        and type(reduction) is str
        and reduction in ("mean", "sum", "none")
    )


def logit_options(
    inputs: Prepared, *, softcap: Any, z_loss: Any, return_parts: bool
) -> dict[str, Any]:
    """The kernel options of soft-capping, the z-loss and the loss parts, checked (numbers or
    0-d arrays, see :func:`option`; logits only): only the ones in use, so that a call
    without them keeps the native kernels."""
    check_logit_options(
        from_logits=inputs.from_logits, softcap=softcap, z_loss=z_loss, return_parts=return_parts
    )
    options: dict[str, Any] = {}
    if softcap is not None:
        options["softcap"] = option(inputs, softcap, "softcap")
    z_loss = option(inputs, z_loss, "z_loss")
    if not (type(z_loss) is float and z_loss == 0):  # a number is a float once checked
        options["z_loss"] = z_loss
    if return_parts:
        options["parts"] = True
    return options


def plain_lane(
    info: LossInfo, y_true: Array, y_pred: Array, *, reduction: str, with_grad: bool,
    label_smoothing: float | int = 0.0, ignore_index: int | None = None,
    class_weight: Array | None = None, sample_weight: Array | None = None,
    where: Array | None = None, from_logits: bool = True,
) -> tuple[Array, Array | None] | None:  # fmt: skip
    """The backend's plain lane for a call that :func:`is_plain`: its ``(value, grad)``, or
    ``None`` (no lane for this array type, or its quick checks did not all pass).
    ``ignore_index`` and ``class_weight`` go to the sparse lane only. Sample weights and a
    ``where`` mask (not with those two) are applied to the lane's per-sample answer
    (:mod:`xce._fast._weighted`). Probabilities (``from_logits=False``) go to the backend's
    lane on probabilities, which serves small calls without class weights."""
    lanes = _fast.lanes(type(y_pred))
    if lanes is None or info.lane is None:
        return None
    if sample_weight is not None or where is not None:
        if ignore_index is not None or class_weight is not None:
            return None  # their count, Σ v·s·ω, is the full path's

        def per_sample(reduction):
            return plain_lane(
                info, y_true, y_pred, reduction=reduction, with_grad=with_grad,
                label_smoothing=label_smoothing, from_logits=from_logits,
            )  # fmt: skip

        return _weighted(info, per_sample, y_pred, sample_weight=sample_weight, where=where,
                         reduction=reduction, with_grad=with_grad)  # fmt: skip
    # Each lane also declines logits whose first row looks like probabilities (on host data
    # only: a read of a GPU tensor would synchronise the device); the full path looks closer,
    # and warns.
    options: dict[str, Any] = {}
    if label_smoothing:
        options["smoothing"] = float(label_smoothing)
    if ignore_index is not None:
        options["ignore_index"] = ignore_index
    if class_weight is not None:
        if info.lane != "plain_sparse":
            return None  # the soft-target lanes take no class weights: the full path does
        options["class_weight"] = class_weight
    if not from_logits:
        if class_weight is not None:
            return None
        return lanes.plain_probabilities(
            info.lane, y_true, y_pred, reduction=reduction, with_grad=with_grad, **options
        )
    lane = getattr(lanes, info.lane)
    return lane(y_true, y_pred, reduction=reduction, with_grad=with_grad, **options)


def _weighted(info, per_sample, y_pred, *, sample_weight, where, reduction, with_grad):
    """Sample weights and a ``where`` mask applied to a lane's answer without them,
    ``per_sample("none")`` (:mod:`xce._fast._weighted`), or ``None``."""
    class_axis = info.target != "binary"
    batch_shape = tuple(y_pred.shape[:-1] if class_axis else y_pred.shape)
    if not _fast.weights_fit(
        y_pred, batch_shape, sample_weight=sample_weight, where=where, with_grad=with_grad
    ):
        return None
    result = per_sample("none")
    if result is None:
        return None
    return _fast.weighted(
        result, y_pred, batch_shape, sample_weight=sample_weight, where=where,
        reduction=reduction, class_axis=class_axis,
    )  # fmt: skip


def _plain_numbers(values: Mapping[str, Any]) -> dict[str, float | None] | None:
    """A loss's scalar hyperparameters as a generic lane takes them: each a Python number
    inside its rule's range (or ``None`` where the rule allows it), as floats; ``None`` if any
    is not, so that the full path checks, converts or refuses it (in its own order)."""
    numbers: dict[str, float | None] = {}
    for name, value in values.items():
        rule = HYPERPARAMETERS[name]
        if value is None and rule.none_allowed:
            numbers[name] = None
        elif type(value) in (int, float) and rule.inside(value):
            numbers[name] = float(value)
        else:
            return None
    return numbers


def generic_lane(
    info: LossInfo, y_true: Array, y_pred: Array, *, from_logits: bool, axis: Any,
    sample_weight: Any, label_smoothing: Any, where: Any, reduction: Any, eps: Any,
    validate: Any, with_grad: bool, kernel_options: Mapping[str, Any] | None = None,
    **hyperparameters: Any,
) -> tuple[Array, Array | None] | None:  # fmt: skip
    """A small call of a loss without a plain lane (the focal losses, poly-1), offered as the
    caller got it: if it :func:`is_plain` and its ``hyperparameters`` (``gamma``, ``alpha``,
    ``epsilon``) are Python numbers in range, the backend's ``generic_small`` (NumPy arrays,
    small CPU tensors outside any graph) runs the loss's generic kernel, with them and
    ``kernel_options``, after the full path's value checks; ``(value, grad)``, or ``None``."""
    numbers = _plain_numbers(hyperparameters)
    if numbers is None or not is_plain(
        axis, None, None, sample_weight, label_smoothing, where, reduction, eps, validate
    ):
        return None
    return _generic_call(info, y_true, y_pred, from_logits=from_logits, reduction=reduction,
                         with_grad=with_grad, sample_weight=sample_weight, where=where,
                         smoothing=float(label_smoothing), **numbers,
                         **(kernel_options or {}))  # fmt: skip


def _generic_call(info, y_true, y_pred, *, from_logits, reduction, with_grad, sample_weight,
                  where, **options):  # fmt: skip
    """:func:`generic_lane` once its options are checked: weights and masks applied to the
    lane's per-sample answer, as in :func:`plain_lane`."""
    lanes = _fast.lanes(type(y_pred))
    if lanes is None:
        return None
    if sample_weight is not None or where is not None:

        def per_sample(reduction):
            return _generic_call(info, y_true, y_pred, from_logits=from_logits,
                                 reduction=reduction, with_grad=with_grad, sample_weight=None,
                                 where=None, **options)  # fmt: skip

        return _weighted(info, per_sample, y_pred, sample_weight=sample_weight, where=where,
                         reduction=reduction, with_grad=with_grad)  # fmt: skip
    kernel = info.logits_kernel if from_logits else info.probabilities_kernel
    if kernel is None:
        return None
    return lanes.generic_small(
        kernel, y_true, y_pred, binary=info.target == "binary", from_logits=bool(from_logits),
        reduction=reduction, with_grad=with_grad, **options,
    )  # fmt: skip


def _kernel_call(
    info: LossInfo, inputs: Prepared, options: Mapping[str, Any]
) -> Callable[..., tuple[Array, Array | None]]:
    """The dispatch, once per call: ``kernel(with_grad=, grad_scale=) -> (loss, grad)`` from
    the backend's native kernel where the row names one and the backend handles ``x``, else
    from the generic kernel, run over row blocks where the row allows it."""
    xp, x, target = inputs.xp, inputs.x, inputs.target
    kernel = info.logits_kernel if inputs.from_logits else info.probabilities_kernel
    if kernel is None:  # a structured loss's row: its driver runs its own kernels
        raise TypeError(f"{info.name} has no generic kernel pair for the pipeline")
    if inputs.class_shard is not None and info.sharded is not None:
        # Its own passes over row blocks: the runner's blocks would each pay the group's
        # collectives.
        sharded = functools.partial(
            info.sharded, xp, shard=inputs.class_shard, start=inputs.shard_start,
            block_rows=_fast.sharded_block_rows(xp, x),
            in_place=_fast.sharded_in_place(xp, x), **options,
        )  # fmt: skip
        return functools.partial(sharded, x, target)
    if inputs.from_logits:
        generic = functools.partial(kernel, xp, **options)
    else:
        generic = functools.partial(kernel, xp, **options, eps=inputs.eps)
    backend = _fast.backend(xp)
    # Array hyperparameters (traced, differentiated, lazy) only the generic kernels take, and
    # the options of GENERIC_ONLY only they know.
    generic_only = inputs.array_options or any(name in options for name in GENERIC_ONLY)
    if inputs.from_logits and info.native is not None and not generic_only:
        native = backend.native_kernel(info.native, x)
        if native is not None:
            # Native kernels walk the rows their own way: they run whole-array.
            return functools.partial(native, x, target, **options, generic=generic)
    # The loss parts are a tuple per sample, which the row blocks do not write: whole-array,
    # but still compiled as one program on JAX.
    if info.row_blocked and (not options.get("parts") or is_jax_namespace(xp)):
        return functools.partial(backend.run_rows, xp, generic, x, (target,))
    return functools.partial(generic, x, target)


def _finish(inputs: Prepared, value, grad):
    """Cast back to the caller's dtype and put the class axis of the gradient back."""
    xp, out_dtype = inputs.xp, inputs.out_dtype

    def cast(a):
        if isinstance(a, LossParts):
            return LossParts(*(cast(v) for v in a))
        if isinstance(a, tuple):
            return tuple(cast(v) for v in a)
        return xp.astype(a, out_dtype, copy=False)

    value = cast(value)
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
    gradient laid out as ``y_pred`` (``None`` without ``with_grad``). With the option
    ``parts`` the kernel returns (loss, cross entropy, z-loss term, log Z) per sample and the
    value is a :class:`LossParts`: the first three reduced alike, log Z per sample.
    """
    xp = inputs.xp
    class_axis = inputs.class_axis is not None
    total_count = None
    if reduction in ("mean", "sum_and_count"):
        batch_like = inputs.x[..., 0] if class_axis else inputs.x
        total_count = agnostic.count(
            xp, batch_like, inputs.dtype, inputs.on_device, weight=inputs.weight,
            valid=inputs.valid, omega=inputs.omega,
        )  # fmt: skip
    scale = None
    if with_grad:
        scale = agnostic.gradient_scale(xp, total_count, weight=inputs.weight, reduction=reduction)
    loss, grad = _kernel_call(info, inputs, options)(with_grad=with_grad, grad_scale=scale)

    def reduce(per_sample):
        return agnostic.reduce_loss(
            xp, per_sample, weight=inputs.weight, valid=inputs.valid, bad=inputs.bad,
            reduction=reduction, total_count=total_count,
        )  # fmt: skip

    if options.get("parts"):
        total, cross_entropy, z_term, log_z = loss
        if inputs.bad is not None:
            log_z = xp.where(inputs.bad, xp.full_like(log_z, math.nan), log_z)
        value = LossParts(reduce(total), reduce(cross_entropy), reduce(z_term), log_z)
    else:
        value = reduce(loss)
    if grad is not None:
        grad = agnostic.mask_gradient(
            xp, grad, valid=inputs.valid, bad=inputs.bad, class_axis=class_axis
        )
    return _finish(inputs, value, grad)
