"""Translation helpers shared by the compatibility layers (no loss math lives here).

They turn a framework's conventions (its reductions, its broadcasting, its axis tuples, its
float labels) into the arguments of the core losses, and read values only where the core
would: on eager host data (``validate="auto"``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from .._arguments import gather_arrays, is_host_data
from .._array_api import device, index_dtype, is_array_api_obj, is_jax_array, is_torch_array
from .._types import Array, Namespace
from .._validation import check_labels, namespace_of, read_flag, values_checked

__all__ = [
    "as_array",
    "broadcast_to",
    "checked",
    "divide_or_nan",
    "ensure",
    "flatten_axes",
    "gather",
    "integral_labels",
    "namespace_of",
    "normalise_axes",
    "one_class_logits",
    "one_class_padded",
    "stop_gradient",
]


def checked(*arrays: Array) -> bool:
    """Whether values may be read: the core's ``validate="auto"`` rule (eager host data)."""
    return values_checked("auto", *arrays)


def ensure(xp: Namespace, bad: Array, message: str) -> None:
    """Raise ``ValueError(message)`` if any entry of the boolean array ``bad`` is true."""
    if read_flag(xp.any(bad)):
        raise ValueError(message)


def divide_or_nan(xp: Namespace, total: Array, count: Array) -> Array:
    """total / count with 0/0 = NaN, as the frameworks' means over nothing, without the
    floating-point warning NumPy would emit for the division."""
    empty = count == 0
    quotient = total / xp.where(empty, xp.ones_like(count), count)
    return xp.where(empty, xp.full_like(quotient, math.nan), quotient)


def as_array(xp: Namespace, value: float | Array, like: Array, name: str) -> Array:
    """A Python number, or an array of ``like``'s namespace, as an array of ``like``'s dtype
    and device."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return xp.asarray(float(value), dtype=like.dtype, device=device(like))
    if not is_array_api_obj(value):
        raise TypeError(
            f"{name} must be a number or an array of the same library as the predictions, "
            f"got {type(value).__name__}"
        )
    return xp.astype(value, like.dtype, copy=False)


def broadcast_to(
    xp: Namespace, a: Array, shape: Sequence[int], name: str, target_name: str
) -> Array:
    """``a`` broadcast to ``shape`` (standard right-aligned broadcasting, as the frameworks
    do), never enlarging ``shape``: a shape that would is an error naming both arguments."""
    shape = tuple(shape)
    if tuple(a.shape) == shape:
        return a
    try:
        return xp.broadcast_to(a, shape)
    except (ValueError, RuntimeError, TypeError):
        raise ValueError(
            f"{name} has shape {tuple(a.shape)}, which does not broadcast to the shape "
            f"{shape} of {target_name}"
        ) from None


def normalise_axes(axis: int | tuple[int, ...], ndim: int, name: str = "axis") -> tuple[int, ...]:
    """An int or a tuple of ints as a tuple of non-negative axes, in the given order."""
    axes = axis if isinstance(axis, tuple) else (axis,)
    out: list[int] = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise TypeError(f"{name} must be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < ndim:
            raise ValueError(f"{name}={axis!r} is out of range for an array with {ndim} dims")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}={axis!r} repeats an axis")
    return tuple(out)


def flatten_axes(xp: Namespace, a: Array, axes: tuple[int, ...]) -> Array:
    """Move ``axes`` to the end (in the given order) and merge them into one last axis: the
    layout in which a tuple ``axis`` is one class axis of size Π shape[axes]."""
    batch = tuple(i for i in range(a.ndim) if i not in axes)
    order = batch + tuple(axes)
    if order != tuple(range(a.ndim)):
        a = xp.permute_dims(a, order)
    size = math.prod(a.shape[len(batch) :])
    return xp.reshape(a, (*a.shape[: len(batch)], size))


def integral_labels(
    xp: Namespace, labels: Array, n_classes: int, *, ignore: int | None, name: str = "y_true"
) -> Array:
    """Float class labels (Keras accepts 1.0 for class 1) as integers.

    On eager host data a non-integer, infinite or NaN label is an error. Elsewhere it becomes
    the out-of-range label ``n_classes`` (``n_classes + 1`` when that is the ignored value),
    which the core turns into a NaN row: a fractional label is never truncated into a class.
    """
    if xp.isdtype(labels.dtype, "integral"):
        return labels
    if not xp.isdtype(labels.dtype, "real floating"):
        raise TypeError(f"{name} must hold class labels (integers, or whole floats), got "
                        f"{labels.dtype}")  # fmt: skip
    whole = (labels == xp.floor(labels)) & (xp.abs(labels) <= 2.0**31)
    if checked(labels):
        ensure(
            xp, ~whole,
            f"{name} holds labels that are not whole numbers (or NaN/inf); class labels "
            f"index the class axis: 0, 1, ..., {n_classes - 1}",
        )  # fmt: skip
        return xp.astype(labels, index_dtype(xp, device(labels)))
    poison = n_classes + 1 if ignore == n_classes else n_classes
    safe = xp.where(whole, labels, xp.full_like(labels, float(poison)))
    return xp.astype(safe, index_dtype(xp, device(labels)))


def gather(**arrays: Any) -> tuple[Namespace, dict[str, Any]]:
    """The call's namespace and its arrays in it, by the core's host-data rule, for the
    frameworks that take NumPy arrays, numbers and lists beside their own arrays (Optax,
    Keras, TensorFlow).

    The library is that of the first argument that is no host data (NumPy when all are); host
    data is converted to it, on its device (Python floats in its compute dtype). Arrays of two
    non-host libraries, or on two devices, are refused as by :func:`namespace_of`.
    """
    present = {name: a for name, a in arrays.items() if a is not None}
    foreign = {n: a for n, a in present.items() if is_array_api_obj(a) and not is_host_data(a)}
    if foreign:
        namespace_of(**foreign)  # mixed libraries or devices: the error names the arguments
        lead_name = next(iter(foreign))
        lead = foreign[lead_name]
    else:
        import numpy as np  # all host data: NumPy computes, as the frameworks' NumPy paths

        lead_name = next(iter(present))
        lead = np.asarray(present[lead_name])
    # gather_arrays's own parameter names may not be keywords of the others.
    keys = {name: f"{name}_" if name in ("y_pred", "swapped_hint") else name for name in arrays}
    others = {keys[name]: a for name, a in present.items() if name != lead_name}
    xp, converted = gather_arrays(lead, **others)
    converted[keys[lead_name]] = lead
    return xp, {name: converted.get(keys[name]) for name in arrays}


def one_class_padded(xp: Namespace, a: Array, axis: int, fill: float) -> Array:
    """``a`` with a second class of ``fill`` along ``axis`` when it has one class.

    The frameworks' softmax losses accept one class and return 0 (the softmax of one logit is
    1); the core refuses it. Padded with a -inf logit (or a zero probability) that carries a
    zero target, the core computes that 0 (and its zero gradient): the pad adds nothing.
    """
    if a.shape[axis] != 1:
        return a
    pad = xp.full_like(a, fill)
    return xp.concat([a, pad], axis=axis)


def one_class_logits(
    xp: Namespace, logits: Array, target: Array, axis: int, *, ignore: int | None = None
) -> tuple[Array, Array]:
    """A one-class softmax problem as two classes whose second adds nothing: a -inf logit
    with a zero probability target; an index target 1, out of range for one class, moved out
    of range of two (to 2, or 3 when 2 is the ignored index). Others are returned as given."""
    if logits.shape[axis] != 1:
        return logits, target
    logits = one_class_padded(xp, logits, axis, -math.inf)
    if xp.isdtype(target.dtype, "integral"):
        if checked(target):  # the error names the one class, not the padded two
            check_labels(xp, target, 1, ignore_index=ignore, where=None)
        poison = 3 if ignore == 2 else 2
        return logits, xp.where(target == 1, xp.full_like(target, poison), target)
    return logits, one_class_padded(xp, target, axis, 0.0)


def stop_gradient(a: Array) -> Array:
    """``a`` as a constant for autodiff (torch ``detach``, JAX ``stop_gradient``); other
    libraries have no autodiff, so ``a`` itself."""
    if is_torch_array(a):
        return a.detach()
    if is_jax_array(a):
        import jax  # only reached with JAX arrays

        return jax.lax.stop_gradient(a)
    return a
