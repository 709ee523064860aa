"""What a caller may pass: host data beside any array, and hyperparameters as numbers or arrays.

Two rules, the same for every loss:

- **Host data is converted.** ``y_pred``'s library decides the namespace and the device. Any
  other array argument may also be given as host data (a NumPy array, a Python number, a
  list or tuple), which is converted to ``y_pred``'s library and device, as JAX does with
  NumPy inputs: labels from a data loader beside JAX or torch logits, a float
  ``sample_weight``, a list ``class_weight``. Arrays of two different non-host libraries are a
  ``TypeError``: xce never moves data between accelerators' libraries behind the caller's back.
- **Scalar hyperparameters** (``label_smoothing``, ``eps``, ``gamma``, a scalar ``alpha``,
  ``epsilon``, ``softcap``, ``z_loss``) are a Python number or a 0-d array. A number, or a
  0-d array whose value is free to read (eager host data outside an autodiff graph), is
  checked and becomes a Python float, which the native kernels take. Any other 0-d array (a
  JAX tracer under ``jit``, ``vmap`` or ``grad``; a torch tensor that requires grad; Dask;
  GPU) stays an array of the compute dtype and reaches the generic kernels, which
  differentiate through it; its range is not read, and an out-of-range value makes the whole
  result NaN (:func:`scalar_option`'s ``bad``), never a number computed from it.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from typing import Any

from ._agnostic import compute_dtype
from ._array_api import (
    array_namespace,
    device,
    device_set,
    is_array_api_obj,
    is_eager_host,
    is_numpy_array,
    is_numpy_namespace,
    library_name,
    may_be_differentiated,
)
from ._types import Array, Namespace

__all__ = [
    "HYPERPARAMETERS",
    "Hyperparameter",
    "gather_arrays",
    "is_host_data",
    "scalar_option",
]


def is_host_data(a: Any) -> bool:
    """A NumPy array or scalar, a Python number (bool included) or a sequence."""
    return is_numpy_array(a) or isinstance(a, (numbers.Number, list, tuple))


def _convert(xp: Namespace, a: Any, name: str, on_device: Any, float_dtype: Any) -> Array:
    """Host data as an array of ``xp`` on ``on_device``. NumPy arrays keep their dtype; Python
    floats become ``float_dtype`` (y_pred's compute dtype), not the library's default (torch's
    float32 would round float64 weights and targets)."""
    try:
        if float_dtype is not None and not is_numpy_array(a):
            if xp.isdtype(xp.asarray(a).dtype, "real floating"):
                return xp.asarray(a, dtype=float_dtype, device=on_device)
        return xp.asarray(a, device=on_device)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} could not be converted to y_pred's library ({error}); give it as an array "
            "of y_pred's library"
        ) from None


def gather_arrays(
    y_pred: Any, swapped_hint: str = "", **others: Any
) -> tuple[Namespace, dict[str, Any]]:
    """``y_pred``'s namespace and the other arrays of the call in it (``None`` stays ``None``).

    Host data is converted to ``y_pred``'s library and device; arrays of another library, or
    on another device, are refused with a message that names both.
    """
    if not is_array_api_obj(y_pred):
        raise TypeError(
            f"y_pred must be an array (NumPy, PyTorch, CuPy, JAX, Dask or any array-API array), "
            f"got {type(y_pred).__name__}: its library decides where the loss is computed, so "
            "convert it with your library's asarray()" + swapped_hint
        )
    xp = array_namespace(y_pred)
    on_device = device(y_pred)
    numpy_is_native = is_numpy_namespace(xp)
    floats = xp.isdtype(y_pred.dtype, "real floating")
    float_dtype = compute_dtype(xp, y_pred.dtype) if floats else None
    out: dict[str, Any] = {}
    for name, a in others.items():
        if a is not None and is_host_data(a) and not (numpy_is_native and is_numpy_array(a)):
            a = _convert(xp, a, name, on_device, float_dtype)
        elif a is not None and not is_array_api_obj(a):
            raise TypeError(
                f"{name} must be an array of y_pred's library, a NumPy array, a number or a "
                f"sequence, got {type(a).__name__}"
            )
        out[name] = a
    present = {name: a for name, a in out.items() if a is not None}
    try:
        array_namespace(y_pred, *present.values())
    except TypeError:
        libraries = ", ".join(f"{n} is a {library_name(a)} array" for n, a in present.items())
        raise TypeError(
            f"arrays from different libraries: y_pred is a {library_name(y_pred)} array, "
            f"{libraries}. NumPy arrays, numbers and sequences are converted to y_pred's "
            "library; arrays of another library are not: convert them first"
        ) from None
    where = device_set(y_pred)
    if not numpy_is_native and where is not None:  # NumPy has one device; tracers none
        for name, a in present.items():
            # Devices, not layouts: labels sharded P('b') beside logits P('b', None) match.
            if device_set(a) is not None and device_set(a) != where:
                raise ValueError(
                    f"{name} is on device {device(a)!r} but y_pred is on {device(y_pred)!r}; "
                    f"move {name} to y_pred's device first"
                )
    return xp, out


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    """A scalar option's valid range: ``inside(v)`` works on a float and on an array alike
    (NaN fails it), ``requirement`` completes the message "<name>=<v> must ..."."""

    inside: Callable[[Any], Any]
    requirement: str
    none_allowed: bool = False


def _finite(v):
    return (v > -float("inf")) & (v < float("inf"))


HYPERPARAMETERS = {
    "label_smoothing": Hyperparameter(lambda v: (v >= 0) & (v <= 1), "lie in [0, 1]"),
    "eps": Hyperparameter(
        lambda v: (v >= 0) & (v < 0.5),
        "lie in [0, 0.5) (None picks the dtype's epsilon)",
        none_allowed=True,
    ),
    "gamma": Hyperparameter(
        lambda v: (v >= 0) & _finite(v), "be a finite number ≥ 0 (0 gives cross entropy)"
    ),
    "alpha": Hyperparameter(lambda v: (v >= 0) & (v <= 1), "lie in [0, 1]", none_allowed=True),
    "epsilon": Hyperparameter(_finite, "be finite"),
    "softcap": Hyperparameter(
        lambda v: (v > 0) & _finite(v),
        "be a finite number > 0 (None turns soft-capping off)",
        none_allowed=True,
    ),
    "z_loss": Hyperparameter(lambda v: (v >= 0) & _finite(v), "be a finite number ≥ 0"),
}


def scalar_option(xp: Namespace, value: Any, name: str, *, dtype: Any) -> tuple[Any, Array | None]:
    """``(value, bad)``: a checked Python float (``bad`` is ``None``), or a 0-d array of
    ``xp`` in ``dtype`` and a 0-d boolean ``bad``, true where its value is out of range.

    ``None`` passes through for the options that allow it.
    """
    rule = HYPERPARAMETERS[name]
    if value is None and rule.none_allowed:
        return None, None
    if isinstance(value, bool) or not (isinstance(value, numbers.Real) or is_array_api_obj(value)):
        raise TypeError(f"{name} must be a number or a 0-d array, got {type(value).__name__}")
    if is_array_api_obj(value):
        if tuple(value.shape) != ():
            raise ValueError(
                f"{name} must be a scalar: a number or a 0-d array, got shape {tuple(value.shape)}"
            )
        if not array_namespace(value).isdtype(value.dtype, ("integral", "real floating")):
            raise TypeError(f"{name} must hold a real number, got dtype {value.dtype}")
        if not (is_eager_host(value) and not may_be_differentiated(value)):
            if array_namespace(value) is not xp:
                raise TypeError(
                    f"{name} is a {library_name(value)} array whose value cannot be read here; "
                    "give it as an array of y_pred's library (or a number)"
                )
            value = xp.astype(value, dtype, copy=False)
            return value, ~rule.inside(value)
        value = float(value)  # free to read: checked here, and the native kernels take it
    if not rule.inside(value):
        raise ValueError(f"{name}={value!r} must {rule.requirement}")
    return float(value), None
