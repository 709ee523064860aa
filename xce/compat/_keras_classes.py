"""Keras's loss classes (``keras.losses.BinaryCrossentropy``, ...) on any array type.

Plain Python classes with Keras's constructor arguments, ``get_config`` / ``from_config`` and
``__call__(y_true, y_pred, sample_weight=None)``, computed by the function twins of
:mod:`xce.compat.keras` and reduced by Keras's rules (``Loss.__call__``):

- ``y_true`` and ``y_pred`` are first brought to the same rank as Keras does (a trailing
  axis of length 1 squeezed, or added to a 1-D array).
- ``sample_weight`` (an array, a number or host data) is squeezed or expanded to the rank of
  the per-sample losses the same way, then multiplied in.
- ``"sum_over_batch_size"`` (the default) and ``"mean"``: Σ(w·ℓ) / the number of losses;
  ``"mean_with_sample_weight"``: Σ(w·ℓ) / Σ w; ``"sum"``: Σ(w·ℓ); ``"none"`` or ``None``:
  the weighted losses. A division by 0 gives 0 (Keras's ``divide_no_nan``); a loss of shape
  () or (0,) is returned unreduced.
- ``SparseCategoricalCrossentropy(ignore_class=k)`` masks the ignored entries: the mean is
  over the valid entries only (0 when none is valid), as Keras's mask does.

They import no framework. Divergences besides the function twins': ``dtype=None`` computes in
``y_pred``'s floating dtype (Keras: ``floatx()``, float32 unless changed); a given ``dtype``
("float32", "float64", ...) casts ``y_pred`` to it, as Keras does; ``name`` is only stored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .._types import Array, Namespace
from ._common import gather
from ._docstrings import with_parameters

__all__ = [
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "KLDivergence",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "cast_to_keras_dtype",
    "check_keras_reduction",
]

REDUCTIONS = ("sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight")

# The constructors' arguments, as the Parameters sections give them (see _docstrings).
KERAS_OPTIONS = {
    "from_logits": ("bool", "Whether ``y_pred`` holds logits."),
    "label_smoothing": ("float", "Smoothing ε in [0, 1], Keras's formula."),
    "axis": ("int", "The class axis (binary losses: the axis averaged over)."),
    "ignore_class": ("int", "A label whose entries are masked out of the reduction."),
    "apply_class_balancing": ("bool", "Whether to weigh positives by α, negatives by 1 - α."),
    "alpha": ("float or sequence of floats", "The focal loss's class balance α."),
    "gamma": ("float", "The focal exponent γ ≥ 0."),
    "reduction": ("str or None", "Keras's reduction: one of ``REDUCTIONS`` (module docstring)."),
    "name": ("str", "Stored, as Keras's loss name."),
    "dtype": ("str or dtype", "The dtype ``y_pred`` is cast to; None keeps its own."),
}


def _same_rank(xp: Namespace, a: Array, b: Array) -> tuple[Array, Array]:
    """Keras's ``squeeze_or_expand_to_same_rank``: ranks that differ by one are matched by
    squeezing the longer one's trailing 1 (or expanding the shorter one when it is 1-D)."""
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        return (a, xp.expand_dims(b, axis=-1)) if b.ndim == 1 else (xp.squeeze(a, axis=-1), b)
    if b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        return (xp.expand_dims(a, axis=-1), b) if a.ndim == 1 else (a, xp.squeeze(b, axis=-1))
    return a, b


def _divide_no_nan(xp: Namespace, total: Array, divisor: Array) -> Array:
    zero = divisor == 0
    quotient = total / xp.where(zero, xp.ones_like(divisor), divisor)
    return xp.where(zero, xp.zeros_like(quotient), quotient)


def reduce_weighted(
    xp: Namespace, values: Array, sample_weight: Array | None, mask: Array | None, reduction: Any
) -> Array:
    """Keras's ``reduce_weighted_values``: mask and weights merged, multiplied in, reduced."""
    if mask is not None:
        float_mask = xp.astype(mask, values.dtype)
        if reduction in ("mean", "sum_over_batch_size"):
            total = xp.full_like(xp.sum(float_mask), float(math.prod(mask.shape)))
            float_mask = float_mask * _divide_no_nan(xp, total, xp.sum(float_mask))
        if sample_weight is not None:
            float_mask, sample_weight = _same_rank(xp, float_mask, sample_weight)
            sample_weight = xp.astype(sample_weight, values.dtype) * float_mask
        else:
            sample_weight = float_mask
    if sample_weight is not None:
        values, sample_weight = _same_rank(xp, values, xp.astype(sample_weight, values.dtype))
        values = values * sample_weight
    if reduction in (None, "none") or tuple(values.shape) in ((), (0,)):
        return values
    loss = xp.sum(values)
    if reduction == "sum":
        return loss
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        return _divide_no_nan(xp, loss, xp.sum(sample_weight))
    return _divide_no_nan(xp, loss, xp.full_like(loss, float(math.prod(values.shape))))


def check_keras_reduction(reduction: Any) -> None:
    """Keras's check of a Loss's ``reduction``, with its message."""
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"Invalid value for argument `reduction`. Expected one of {set(REDUCTIONS)}. "
            f"Received: reduction={reduction}"
        )


def cast_to_keras_dtype(xp: Any, y_pred: Array, dtype: Any) -> Array:
    """``y_pred`` in a Loss's ``dtype`` ("float64", np.float64, np.dtype("float64"),
    torch.float64, ...); as it is for ``None``."""
    if dtype is None:
        return y_pred
    name = getattr(dtype, "name", None) or getattr(dtype, "__name__", None)
    return xp.astype(y_pred, getattr(xp, str(name or dtype).rsplit(".", 1)[-1]))


class _Loss:
    """Keras's ``Loss.__call__``: inputs gathered, per-sample losses, weights, reduction."""

    _options: tuple[str, ...] = ()
    ignore_class: int | None = None  # masks the reduction where set (the sparse loss)

    def __init__(self, name: str, reduction: Any, dtype: Any) -> None:
        check_keras_reduction(reduction)
        self.name, self.reduction, self.dtype = name, reduction, dtype

    def __call__(self, y_true: Array, y_pred: Array, sample_weight: Array | None = None) -> Array:
        xp, arrays = gather(y_pred=y_pred, y_true=y_true, sample_weight=sample_weight)
        y_true, y_pred = arrays["y_true"], arrays["y_pred"]
        y_pred = cast_to_keras_dtype(xp, y_pred, self.dtype)
        y_true, y_pred = _same_rank(xp, y_true, y_pred)
        values = self._values(y_true, y_pred)
        mask = None
        if self.ignore_class is not None:
            mask = xp.reshape(y_true, values.shape) != self.ignore_class
        return reduce_weighted(xp, values, arrays["sample_weight"], mask, self.reduction)

    def _values(self, y_true: Array, y_pred: Array) -> Array:
        raise NotImplementedError

    def _kwargs(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._options}

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as Keras's ``get_config`` lists them."""
        return {"name": self.name, "reduction": self.reduction, **self._kwargs()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        """A new instance from :meth:`get_config`'s dictionary."""
        return cls(**config)


@with_parameters(KERAS_OPTIONS)
class BinaryCrossentropy(_Loss):
    """Twin of ``keras.losses.BinaryCrossentropy``: :func:`~xce.compat.keras.binary_crossentropy`.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat.keras import BinaryCrossentropy
    >>> y_true, y_pred = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[0.6, 0.4], [0.3, 0.7]])
    >>> round(float(BinaryCrossentropy()(y_true, y_pred)), 4)
    1.0601
    """

    _options = ("from_logits", "label_smoothing", "axis")

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: Any = "sum_over_batch_size", name: str = "binary_crossentropy",
                 dtype: Any = None) -> None:  # fmt: skip
        super().__init__(name, reduction, dtype)
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis

    def _values(self, y_true: Array, y_pred: Array) -> Array:
        return functions.binary_crossentropy(y_true, y_pred, **self._kwargs())


@with_parameters(KERAS_OPTIONS)
class CategoricalCrossentropy(BinaryCrossentropy):
    """Twin of ``keras.losses.CategoricalCrossentropy``, reduced by Keras's rules.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat.keras import CategoricalCrossentropy
    >>> loss = CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    >>> logits = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    >>> round(float(loss(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), logits)), 4)
    0.3639
    """

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: Any = "sum_over_batch_size", name: str = "categorical_crossentropy",
                 dtype: Any = None) -> None:  # fmt: skip
        super().__init__(from_logits, label_smoothing, axis, reduction, name, dtype)

    def _values(self, y_true: Array, y_pred: Array) -> Array:
        return functions.categorical_crossentropy(y_true, y_pred, **self._kwargs())


@with_parameters(KERAS_OPTIONS)
class SparseCategoricalCrossentropy(_Loss):
    """Twin of ``keras.losses.SparseCategoricalCrossentropy``, reduced by Keras's rules.

    The reduction is over the entries whose label is not ``ignore_class``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat.keras import SparseCategoricalCrossentropy
    >>> logits = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    >>> loss = SparseCategoricalCrossentropy(from_logits=True, reduction="none")
    >>> np.round(loss(np.array([0, 2]), logits), 4)
    array([0.2413, 0.1698])
    >>> loss = SparseCategoricalCrossentropy(from_logits=True, ignore_class=2)
    >>> round(float(loss(np.array([0, 2]), logits)), 4)  # the mean over the one valid entry
    0.2413
    """

    _options = ("from_logits", "ignore_class")  # Keras's config leaves out axis too

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None,
                 reduction: Any = "sum_over_batch_size", axis: int = -1,
                 name: str = "sparse_categorical_crossentropy",
                 dtype: Any = None) -> None:  # fmt: skip
        super().__init__(name, reduction, dtype)
        self.from_logits, self.ignore_class, self.axis = from_logits, ignore_class, axis

    def _values(self, y_true: Array, y_pred: Array) -> Array:
        return functions.sparse_categorical_crossentropy(
            y_true, y_pred, from_logits=self.from_logits, ignore_class=self.ignore_class,
            axis=self.axis,
        )  # fmt: skip


@with_parameters(KERAS_OPTIONS)
class BinaryFocalCrossentropy(_Loss):
    """Twin of ``keras.losses.BinaryFocalCrossentropy``, reduced by Keras's rules.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat.keras import BinaryFocalCrossentropy
    >>> y_true, y_pred = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[0.6, 0.4], [0.3, 0.7]])
    >>> round(float(BinaryFocalCrossentropy(gamma=2.0)(y_true, y_pred)), 4)
    0.4599
    """

    _options = ("from_logits", "label_smoothing", "axis", "apply_class_balancing", "alpha",
                "gamma")  # fmt: skip

    def __init__(self, apply_class_balancing: bool = False, alpha: float = 0.25,
                 gamma: float = 2.0, from_logits: bool = False, label_smoothing: float = 0.0,
                 axis: int = -1, reduction: Any = "sum_over_batch_size",
                 name: str = "binary_focal_crossentropy", dtype: Any = None) -> None:  # fmt: skip
        super().__init__(name, reduction, dtype)
        self.apply_class_balancing, self.alpha, self.gamma = apply_class_balancing, alpha, gamma
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis

    def _values(self, y_true: Array, y_pred: Array) -> Array:
        return functions.binary_focal_crossentropy(y_true, y_pred, **self._kwargs())


@with_parameters(KERAS_OPTIONS)
class CategoricalFocalCrossentropy(_Loss):
    """Twin of ``keras.losses.CategoricalFocalCrossentropy``, reduced by Keras's rules.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat.keras import CategoricalFocalCrossentropy
    >>> logits = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    >>> loss = CategoricalFocalCrossentropy(from_logits=True)
    >>> round(float(loss(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), logits)), 4)
    0.0019
    """

    _options = ("from_logits", "label_smoothing", "axis", "alpha", "gamma")

    def __init__(self, alpha: float | Sequence[float] | Array = 0.25, gamma: float = 2.0,
                 from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: Any = "sum_over_batch_size",
                 name: str = "categorical_focal_crossentropy",
                 dtype: Any = None) -> None:  # fmt: skip
        super().__init__(name, reduction, dtype)
        self.alpha, self.gamma = alpha, gamma
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis

    def _values(self, y_true: Array, y_pred: Array) -> Array:
        return functions.categorical_focal_crossentropy(y_true, y_pred, **self._kwargs())


@with_parameters(KERAS_OPTIONS)
class KLDivergence(_Loss):
    """Twin of ``keras.losses.KLDivergence``: :func:`~xce.compat.keras.kl_divergence`, reduced.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat.keras import KLDivergence
    >>> y_true, y_pred = np.array([[0.2, 0.8], [0.5, 0.5]]), np.array([[0.4, 0.6], [0.9, 0.1]])
    >>> round(float(KLDivergence()(y_true, y_pred)), 4)
    0.3012
    """

    def __init__(self, reduction: Any = "sum_over_batch_size", name: str = "kl_divergence",
                 dtype: Any = None) -> None:  # fmt: skip
        super().__init__(name, reduction, dtype)

    def _values(self, y_true: Array, y_pred: Array) -> Array:
        return functions.kl_divergence(y_true, y_pred)


@with_parameters(KERAS_OPTIONS)
class Poisson(_Loss):
    """Twin of ``keras.losses.Poisson``: :func:`~xce.compat.keras.poisson`, reduced.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat.keras import Poisson
    >>> y_true, y_pred = np.array([[1.0, 0.0], [2.0, 3.0]]), np.array([[0.5, 1.0], [2.0, 2.5]])
    >>> round(float(Poisson(reduction="sum")(y_true, y_pred)), 4)
    1.279
    """

    def __init__(self, reduction: Any = "sum_over_batch_size", name: str = "poisson",
                 dtype: Any = None) -> None:  # fmt: skip
        super().__init__(name, reduction, dtype)

    def _values(self, y_true: Array, y_pred: Array) -> Array:
        return functions.poisson(y_true, y_pred)


# Last: the function module imports these classes, so whichever of the two is imported first
# finds the other complete enough (the doctest run imports this one first).
from . import keras as functions  # noqa: E402
