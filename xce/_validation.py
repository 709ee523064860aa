"""Argument checks: metadata always, values only where reading them is free.

Metadata checks (shapes, dtypes, options, libraries, devices) never touch data, so they run
everywhere, under ``jax.jit`` too. Value checks (labels in range, probabilities in [0, 1])
read data: they run where the arrays are eager on the host, or when forced.
Every message names the argument and says how to fix the call.
"""

from __future__ import annotations

import numbers

from ._array_api import (
    array_namespace,
    device,
    device_set,
    is_array_api_obj,
    is_dask_array,
    is_eager_host,
    is_jax_array,
    is_jax_tracer,
    is_numpy_namespace,
    library_name,
    size,
)

__all__ = [
    "FROM_LOGITS_HINT",
    "REDUCTIONS",
    "batch_array",
    "check_class_count",
    "check_floating",
    "check_ignore_index",
    "check_label_dtype",
    "check_label_shape",
    "check_labels",
    "check_logit_options",
    "check_options",
    "check_same_shape",
    "check_target_dtype",
    "check_unit_interval",
    "check_where",
    "class_alpha_array",
    "class_weight_array",
    "namespace_of",
    "normalise_axis",
    "pos_weight_array",
    "read_flag",
    "shapes_match",
    "values_checked",
]

REDUCTIONS = ("none", "sum", "mean", "sum_and_count")


def namespace_of(**arrays):
    """The one namespace of all given arrays (``None`` values are skipped), checked for
    mixed libraries and mixed devices. The first argument is the reference."""
    present = {name: a for name, a in arrays.items() if a is not None}
    for name, a in present.items():
        if not is_array_api_obj(a):
            raise TypeError(
                f"{name} must be an array (NumPy, PyTorch, CuPy, JAX, Dask or any array-API "
                f"array), got {type(a).__name__}; wrap it with your library's asarray()"
            )
    try:
        xp = array_namespace(*present.values())
    except TypeError:
        libraries = ", ".join(f"{n} is a {library_name(a)} array" for n, a in present.items())
        raise TypeError(
            f"arrays from different libraries: {libraries}. Convert them all to the library "
            "of y_pred before the call (xce never converts silently)"
        ) from None
    (ref_name, ref), *others = present.items()
    if not others or is_numpy_namespace(xp):  # NumPy has one device: nothing to compare
        return xp
    ref_devices = device_set(ref)
    for name, a in others:
        # A JAX tracer has no device (None): nothing to compare. Sharded JAX arrays compare
        # their sets of devices, not their layouts.
        if ref_devices is not None and device_set(a) not in (None, ref_devices):
            raise ValueError(
                f"{name} is on device {device(a)!r} but {ref_name} is on {device(ref)!r}; move "
                f"{name} to {ref_name}'s device first"
            )
    return xp


def check_options(*, reduction, validate):
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction={reduction!r} is not supported; use one of {', '.join(REDUCTIONS)}"
        )
    if not (validate is True or validate is False or validate == "auto"):
        raise ValueError(f"validate={validate!r} must be 'auto', True or False")


def check_logit_options(*, from_logits, softcap, z_loss, return_parts):
    """Soft-capping, the z-loss and the loss parts act on logits: refused with probabilities.
    ``z_loss`` is checked as given: a number ≠ 0, or any array (its value may not be free to
    read, and a z-loss of probabilities has no meaning whatever it holds)."""
    if type(return_parts) is not bool:
        raise TypeError(f"return_parts must be True or False, got {return_parts!r}")
    if from_logits:
        return
    if softcap is not None:
        raise ValueError("softcap applies to logits: pass from_logits=True")
    if z_loss is not None and not (isinstance(z_loss, (int, float)) and z_loss == 0):
        raise ValueError("z_loss applies to logits (log Z of the logits): pass from_logits=True")
    if return_parts:
        raise ValueError("return_parts gives the z-loss and log Z of logits: pass from_logits=True")


def check_floating(xp, x, name, hint=""):
    if not xp.isdtype(x.dtype, "real floating"):
        advice = "; cast it with astype(..., float32) (integer predictions are always a mistake)"
        raise TypeError(f"{name} must have a real floating dtype, got {x.dtype}" + (hint or advice))


def check_target_dtype(xp, y, name):
    if not xp.isdtype(y.dtype, ("bool", "integral", "real floating")):
        raise TypeError(f"{name} must hold real numbers or booleans, got {y.dtype}")


def check_label_dtype(xp, y, name):
    if not xp.isdtype(y.dtype, "integral"):
        hint = (
            "soft or one-hot float targets go to categorical_cross_entropy"
            if xp.isdtype(y.dtype, "real floating")
            else "cast the labels to an integer dtype"
        )
        raise TypeError(f"{name} must hold integer class labels, got {y.dtype}; {hint}")


def normalise_axis(axis, ndim, name="axis"):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for y_pred with {ndim} dimensions")
    return axis % ndim


def check_class_count(n_classes, loss_name):
    if n_classes is not None and n_classes < 2:
        raise ValueError(
            f"y_pred has {n_classes} class along the class axis: a softmax over one class is "
            "always 1 and its cross entropy always 0. For a single sigmoid output use "
            f"binary_cross_entropy instead of {loss_name}"
        )


def shapes_match(a, b) -> bool:
    """Shape equality where an unknown size (Dask's NaN after boolean indexing, None) matches
    any size: it cannot be compared before the data exists, and ``nan != nan``."""
    a, b = tuple(a), tuple(b)
    return len(a) == len(b) and all(
        m == n or m is None or n is None or m != m or n != n for m, n in zip(a, b, strict=True)
    )


def check_same_shape(y_true, y_pred, *, hint=""):
    if not shapes_match(y_true.shape, y_pred.shape):
        raise ValueError(
            f"y_true has shape {tuple(y_true.shape)} but y_pred has shape "
            f"{tuple(y_pred.shape)}; they must match exactly (xce never broadcasts targets)"
            + (f". {hint}" if hint else "")
        )


def check_ignore_index(ignore_index):
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral)
    ):
        raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__}")


def _other_class_axis(y_true, y_pred, axis):
    """The axis k ≠ ``axis`` such that y_pred's shape without k is y_true's, or None."""
    shape = tuple(y_pred.shape)
    for k in range(len(shape)):
        if k != axis and shapes_match(y_true.shape, shape[:k] + shape[k + 1 :]):
            return k
    return None


def check_label_shape(y_true, y_pred, axis, batch):
    if shapes_match(y_true.shape, batch):
        return
    other = _other_class_axis(y_true, y_pred, axis)
    if shapes_match(y_true.shape, y_pred.shape):
        hint = "it has y_pred's shape: one-hot or soft targets go to categorical_cross_entropy"
    elif shapes_match(y_true.shape, (*batch, 1)):
        hint = "drop its trailing axis of length 1 (xce never broadcasts labels)"
    elif other is not None:
        hint = (
            f"did you mean axis={other}? With y_pred of shape (N, C, d1, ...), as torch "
            "lays it out, the classes are axis 1"
        )
    else:
        hint = "one integer label per sample"
    raise ValueError(
        f"y_true has shape {tuple(y_true.shape)} but labels for y_pred of shape "
        f"{tuple(y_pred.shape)} with class axis {axis} need shape {batch}; {hint}"
    )


def batch_array(xp, a, name, batch_shape, dtype=None):
    """``a`` broadcast to the batch shape by the prefix rule, or ``None``.

    ``a`` must be 0-d or have a shape equal to the *leading* dimensions of the batch shape;
    it is then repeated over the trailing ones. Standard broadcasting aligns shapes from the
    right, which turns a per-sample weight (N,) against losses (N, 1) into an (N, N) matrix;
    the prefix rule makes that case mean what it says and refuses everything ambiguous.
    """
    if a is None:
        return None
    if not is_array_api_obj(a):
        raise TypeError(
            f"{name} must be an array of the same library as y_pred, got {type(a).__name__}"
        )
    shape, batch_shape = tuple(a.shape), tuple(batch_shape)
    if not shapes_match(shape, batch_shape[: len(shape)]):
        raise ValueError(
            f"{name} has shape {shape}, which is neither () nor a leading part of the "
            f"per-sample loss shape {batch_shape}; give it shape {batch_shape} (or a prefix "
            "of it, e.g. one weight per sample)"
        )
    if dtype is not None:
        a = xp.astype(a, dtype, copy=False)
    if len(shape) < len(batch_shape):
        a = xp.reshape(a, shape + (1,) * (len(batch_shape) - len(shape)))
        a = xp.broadcast_to(a, batch_shape)
    return a


def check_where(xp, where):
    if where is not None and is_array_api_obj(where) and not xp.isdtype(where.dtype, "bool"):
        raise TypeError(f"where must be a boolean array, got dtype {where.dtype}")


def class_weight_array(xp, class_weight, n_classes, dtype):
    if class_weight is None:
        return None
    if not is_array_api_obj(class_weight):
        raise TypeError(
            f"class_weight must be an array of the same library as y_pred, got "
            f"{type(class_weight).__name__}"
        )
    if tuple(class_weight.shape) != (n_classes,):
        raise ValueError(
            f"class_weight has shape {tuple(class_weight.shape)}; it needs one weight per "
            f"class, shape ({n_classes},)"
        )
    return xp.astype(class_weight, dtype, copy=False)


def pos_weight_array(xp, pos_weight, y_pred, dtype):
    if pos_weight is None:
        return None
    if isinstance(pos_weight, numbers.Real) and not isinstance(pos_weight, bool):
        return xp.asarray(pos_weight, dtype=dtype, device=device(y_pred))
    if not is_array_api_obj(pos_weight):
        raise TypeError(f"pos_weight must be a number or an array, got {type(pos_weight).__name__}")
    shape = tuple(pos_weight.shape)
    allowed = [()] + ([(y_pred.shape[-1],)] if y_pred.ndim else [])
    if shape not in allowed:
        raise ValueError(
            f"pos_weight has shape {shape}; it must be a scalar or one weight per output along "
            f"y_pred's last axis, shape {allowed[-1]}"
        )
    return xp.astype(pos_weight, dtype, copy=False)


def values_checked(validate, *arrays):
    """Whether to read values: ``"auto"`` reads eager host data only."""
    arrays = [a for a in arrays if a is not None]
    if validate == "auto":
        return all(is_eager_host(a) for a in arrays)
    if validate and any(is_jax_tracer(a) for a in arrays):
        raise TypeError(
            "validate=True cannot read the values of a traced JAX array (inside jax.jit or "
            "jax.grad); use validate='auto' or False there, and validate outside the trace"
        )
    return bool(validate)


def read_flag(flag):
    """bool() of a 0-d result; Dask needs an explicit compute."""
    return bool(flag.compute()) if is_dask_array(flag) else bool(flag)


def check_labels(xp, labels, n_classes, *, ignore_index, where):
    bad = (labels < 0) | (labels >= n_classes)
    if ignore_index is not None:
        bad = bad & (labels != ignore_index)
    if where is not None:
        bad = bad & where
    if read_flag(xp.any(bad)):
        found = sorted({int(v) for v in (xp.min(labels), xp.max(labels))})
        ignored = "" if ignore_index is None else f" or ignore_index={ignore_index}"
        raise ValueError(
            f"y_true holds labels outside [0, {n_classes}){ignored} (smallest/largest label: "
            f"{found}); labels index the class axis of y_pred. Mark padding with ignore_index=... "
            "or mask it with where=..."
        )


def check_unit_interval(xp, a, name, hint=""):
    if xp.isdtype(a.dtype, "bool") or size(a) == 0:
        return
    # Two reductions, not a mask: no (N, C) temporaries, half the time of the mask's four
    # passes on a large batch. NaN propagates through NumPy's and torch's min and max (and
    # fails both comparisons); XLA's may drop it, so JAX also asks for NaN explicitly.
    inside = (xp.min(a) >= 0) & (xp.max(a) <= 1)
    if is_jax_array(a):
        inside = inside & ~xp.any(xp.isnan(a))
    if not read_flag(inside):
        raise ValueError(
            f"{name} holds values outside [0, 1] (or NaN) but must hold probabilities" + hint
        )


FROM_LOGITS_HINT = (
    "; did you mean from_logits=True? (y_pred looks like raw scores, not probabilities)"
)


def class_alpha_array(xp, alpha, n_classes, dtype):
    """A per-class ``alpha`` of shape (C,), cast; a scalar alpha is a hyperparameter."""
    if tuple(alpha.shape) != (n_classes,):
        raise ValueError(
            f"alpha has shape {tuple(alpha.shape)}; give a scalar or one weight per class, "
            f"shape ({n_classes},)"
        )
    return xp.astype(alpha, dtype, copy=False)
