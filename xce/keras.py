"""Keras 3 loss objects computed by xce: ``keras.losses.Loss`` subclasses for ``model.fit``.

==================================  ==============================================
class                               computes (per sample, ``reduction="none"``)
==================================  ==============================================
``BinaryCrossEntropy``              :func:`xce.binary_cross_entropy`
``CategoricalCrossEntropy``         :func:`xce.categorical_cross_entropy`
``SparseCategoricalCrossEntropy``   :func:`xce.sparse_categorical_cross_entropy`
``BinaryFocalCrossEntropy``         :func:`xce.binary_focal_cross_entropy`
``CategoricalFocalCrossEntropy``    :func:`xce.categorical_focal_cross_entropy`
``Poly1CrossEntropy``               :func:`xce.poly1_cross_entropy`
``CTC``                             :func:`xce.ctc_loss` (y_true (N, S), y_pred (N, T, C))
==================================  ==============================================

Each constructor takes the keyword options of its xce function (``from_logits``, ``axis``,
``label_smoothing``, ``class_weight``, ``pos_weight``, ``ignore_index``, ``softcap``,
``z_loss``, ``gamma``, ``alpha``, ``epsilon``, ``blank``, ``zero_infinity``, ``eps``,
``validate``, but not ``return_parts``, whose parts no framework reduces; same defaults,
same meaning: the math is in the function's docstring) plus Keras's ``reduction``, ``name``
and ``dtype``. ``call(y_true, y_pred)`` returns the per-sample loss, and Keras applies
``sample_weight``, masks and its ``reduction`` (``"sum_over_batch_size"`` divides by the
number of samples, not by the class weights' sum as xce's ``"mean"`` does). Keras's
conventions on shapes are kept:

- the binary losses average over the last axis (one value per sample, as
  ``keras.losses.BinaryCrossentropy``); 1-d predictions are one sample per entry, and labels
  of shape (N,) go with predictions of shape (N, 1);
- the sparse loss accepts labels with a length-1 class axis, and the float labels that
  ``Loss.__call__`` makes of integer ones (it casts ``y_true`` to the loss's dtype): whole
  floats are classes, anything else raises on eager host data (Keras's torch backend on CPU)
  and is a NaN loss where values are not read (``jax.jit`` in ``model.fit``); entries equal to
  ``ignore_index`` are masked out of Keras's reduction, as Keras's ``ignore_class`` does;
- ``CTC`` takes label sequences right-padded with the blank, as ``keras.losses.CTC`` (each
  sequence's length is its count of non-blank labels; every frame counts); Keras's model
  outputs logits, so pass ``from_logits=True`` (xce's default is probabilities).

``get_config`` / ``from_config`` round-trip (arrays become lists), and every class is
registered for saving as ``"xce>ClassName"``. Keras's **JAX, torch and TensorFlow backends**
are supported (and NumPy, without training): xce computes on the backend's own arrays,
inside the compiled train step. TensorFlow tensors are no array-API type, so on that backend
``call()`` wraps them in a small array-API namespace of TensorFlow ops (``xce._tensorflow``,
used by this module only: xce's functions still refuse a bare ``tf.Tensor``); the loss stays
TensorFlow ops, so it runs in ``model.fit``'s ``tf.function``, under XLA
(``jit_compile=True``, or ``"auto"`` on a GPU) and under ``GradientTape``, with the numbers
and gradients of the other backends. There, as under JAX, label values are never read: a
fractional label is a NaN loss, not an error (rows whose label is ``ignore_index`` are
zeroed before the loss, so that a NaN there stays out of the gradient). Other Keras backends
are refused by the constructor (``RuntimeError``). Importing this module imports no Keras: a
class is made (and Keras imported) when it is first looked up.

Examples
--------
>>> import os
>>> os.environ["KERAS_BACKEND"] = "jax"  # before Keras is imported (or "torch")
>>> import numpy as np
>>> from xce.keras import SparseCategoricalCrossEntropy
>>> loss = SparseCategoricalCrossEntropy(from_logits=True, label_smoothing=0.1)
>>> value = loss(np.array([1.0, 2.0]), np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]]))
>>> round(float(value), 4)
0.4213
>>> SparseCategoricalCrossEntropy.from_config(loss.get_config()).get_config() == loss.get_config()
True
"""

from __future__ import annotations

import difflib
import functools
import inspect
import numbers
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import xce

from ._hints import ALIASES
from .compat._common import integral_labels, namespace_of

__all__ = [
    "CTC",
    "BinaryCrossEntropy",
    "BinaryFocalCrossEntropy",
    "CategoricalCrossEntropy",
    "CategoricalFocalCrossEntropy",
    "Poly1CrossEntropy",
    "SparseCategoricalCrossEntropy",
]

if TYPE_CHECKING:  # made on first lookup by the module's __getattr__
    CTC: type
    BinaryCrossEntropy: type
    BinaryFocalCrossEntropy: type
    CategoricalCrossEntropy: type
    CategoricalFocalCrossEntropy: type
    Poly1CrossEntropy: type
    SparseCategoricalCrossEntropy: type

# The loss objects and the xce function each one computes (shared with xce.torch).
LOSS_FUNCTIONS: dict[str, str] = {
    "BinaryCrossEntropy": "binary_cross_entropy",
    "BinaryFocalCrossEntropy": "binary_focal_cross_entropy",
    "CTC": "ctc_loss",
    "CategoricalCrossEntropy": "categorical_cross_entropy",
    "CategoricalFocalCrossEntropy": "categorical_focal_cross_entropy",
    "Poly1CrossEntropy": "poly1_cross_entropy",
    "SparseCategoricalCrossEntropy": "sparse_categorical_cross_entropy",
}
# Keyword arguments of the functions that belong to a call, not to a loss object.
PER_CALL = ("sample_weight", "where", "reduction", "input_lengths", "label_lengths")
# Options of the functions that a loss object refuses, and why.
REFUSED = {
    "return_parts": "a loss object returns the one array that the framework reduces and "
    "differentiates, not xce.LossParts; call the xce function with return_parts=True to read "
    "the parts (the z-loss term, log Z)",
}
SUPPORTED_BACKENDS = ("jax", "torch", "tensorflow", "numpy")


def loss_options(function: Callable[..., Any]) -> dict[str, Any]:
    """The options of an xce loss function (keyword-only, less the per-call ones) and their
    defaults."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind is parameter.KEYWORD_ONLY and name not in PER_CALL + tuple(REFUSED)
    }


def merged_options(owner: str, defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict:
    """``defaults`` updated with ``given``; an unknown keyword is a ``TypeError`` naming the
    xce option meant (``weight=`` is ``class_weight``, ``ignore_class=`` is ``ignore_index``)."""
    for word in REFUSED:
        if word in given:
            raise TypeError(f"{owner}() takes no {word}=: {REFUSED[word]}")
    unknown = [word for word in given if word not in defaults]
    if unknown:
        hints = []
        for word in unknown:
            close = difflib.get_close_matches(word, list(defaults), n=1)
            if word in ALIASES:
                hints.append(f"{word}= is {ALIASES[word]} in xce")
            else:
                hints.append(
                    f"{word}= is unknown" + (f"; did you mean {close[0]}=?" if close else "")
                )
        raise TypeError(f"{owner}() got unexpected keyword arguments: {'; '.join(hints)}. "
                        f"Its options are {', '.join(defaults)}")  # fmt: skip
    return {**defaults, **given}


# One batch per kind of loss for the loss objects' examples (y_true, y_pred), and what each
# loss gives on it: the same under Keras's "sum_over_batch_size" and torch's "mean".
EXAMPLES = {
    "binary": ("[1.0, 0.0]", "[0.8, 0.3]"),
    "soft": ("[[0.0, 1.0, 0.0]]", "[[0.2, 0.7, 0.1]]"),
    "sparse": ("[1]", "[[0.2, 0.7, 0.1]]"),
    "ctc": ("[[1, 2]]", "[[[0.4, 0.3, 0.3], [0.2, 0.5, 0.3], [0.3, 0.2, 0.5]]]"),
}
EXAMPLE_RESULTS = {
    "BinaryCrossEntropy": "0.2899",  # -(log 0.8 + log 0.7) / 2
    "BinaryFocalCrossEntropy": "0.0205",
    "CTC": "1.2837",
    "CategoricalCrossEntropy": "0.3567",  # -log 0.7
    "CategoricalFocalCrossEntropy": "0.0321",
    "Poly1CrossEntropy": "0.9567",  # -log 0.7 + 2·(1 - 0.7)
    "SparseCategoricalCrossEntropy": "0.3567",
}


def loss_kind(class_name: str) -> str:
    """The kind of targets a loss object takes: "binary", "soft", "sparse" or "ctc"."""
    kinds = {"CTC": "ctc", "SparseCategoricalCrossEntropy": "sparse"}
    return kinds.get(class_name, "binary" if "Binary" in class_name else "soft")


def class_docstring(class_name: str, framework: str, call: str, extra: str) -> str:
    """The docstring of a loss object: what it computes, where the math is, an example."""
    function = LOSS_FUNCTIONS[class_name]
    options = ", ".join(loss_options(getattr(xce, function)))
    y_true, y_pred = EXAMPLES[loss_kind(class_name)]
    if framework == "Keras":
        module, setup = "xce.keras", ">>> import numpy as np\n"
        args = f"np.array({y_true}), np.array({y_pred})"
    else:
        module, setup = "xce.torch", ">>> import torch\n"
        args = f"torch.tensor({y_pred}), torch.tensor({y_true})"  # predictions first
    return (
        f"{framework} loss object computing :func:`xce.{function}`.\n\n"
        f"Parameters\n----------\n{extra}**options\n    The options {options}: as in "
        f":func:`xce.{function}` (same defaults; the math is there).\n\n"
        f"Methods\n-------\n{call}\n\n"
        "Raises\n------\nTypeError\n    An unknown option (the message names the xce one "
        f"meant).\nValueError, TypeError\n    At the call, what :func:`xce.{function}` "
        'raises (see its "Raises").\n\n'
        f"Examples\n--------\n{setup}>>> from {module} import {class_name}\n"
        f">>> round(float({class_name}()({args})), 4)\n{EXAMPLE_RESULTS[class_name]}\n"
    )


def config_value(value: Any) -> Any:
    """An option as Keras's config holds it: arrays as (nested) lists of numbers."""
    if value is None or isinstance(value, (str, bool, numbers.Number, list, tuple)):
        return list(value) if isinstance(value, tuple) else value
    from keras import ops

    return ops.convert_to_numpy(value).tolist()


def _check_backend(keras: Any, class_name: str) -> None:
    backend = keras.backend.backend()
    if backend not in SUPPORTED_BACKENDS:
        raise RuntimeError(
            f"xce.keras.{class_name} runs on Keras's {', '.join(SUPPORTED_BACKENDS)} backends, "
            f"but this Keras uses the {backend!r} backend: its tensors are not an array-API "
            "type that xce can compute on. Set KERAS_BACKEND to jax, torch or tensorflow before "
            "Keras is imported, or use keras.losses on this backend"
        )


def _keras_labels(xp: Any, labels: Any, n_classes: int, ignore: int | None) -> Any:
    """Keras's float labels (``Loss.__call__`` casts y_true to the loss's dtype) as ints."""
    try:
        return integral_labels(xp, labels, n_classes, ignore=ignore)
    except ValueError as exc:
        raise ValueError(
            f"{exc}. (Keras casts y_true to the loss's dtype before call(): integer labels "
            "arrive as whole floats, which are accepted; one-hot targets go to "
            "CategoricalCrossEntropy)"
        ) from None


def _is_tensorflow(x: Any) -> bool:
    return type(x).__module__.startswith("tensorflow.")  # no import: TF may not be loaded


def _tf_arrays(*arrays: Any) -> tuple[Any, ...] | None:
    """On Keras's TensorFlow backend, the call's tensors wrapped as array-API arrays for xce
    (see :mod:`xce._tensorflow`); ``None`` elsewhere."""
    if not any(_is_tensorflow(a) for a in arrays):
        return None
    from . import _tensorflow

    return tuple(_tensorflow.wrap(a) for a in arrays)


def _per_sample(loss: Any, y_true: Any, y_pred: Any) -> Any:
    """The xce loss with ``reduction="none"``, in Keras's per-sample shapes."""
    wrapped = _tf_arrays(y_true, y_pred)
    if wrapped is None:
        return _per_sample_of_arrays(loss, y_true, y_pred, lambda a: a)
    from . import _tensorflow

    compute = _tensorflow.without_autograph(_per_sample_of_arrays)
    return compute(loss, *wrapped, _tensorflow.unwrap, wrapped=True)


def _per_sample_of_arrays(
    loss: Any, y_true: Any, y_pred: Any, backend: Callable, wrapped: bool = False
) -> Any:
    """:func:`_per_sample` on array-API arrays; ``backend`` gives Keras's tensor of one
    (``wrapped``: TensorFlow tensors in :class:`xce._tensorflow.TFArray`)."""
    xp = namespace_of(y_pred=y_pred, y_true=y_true)
    options = loss.options
    kind = loss.kind
    if kind == "binary":
        if y_pred.ndim >= 2 and y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
            y_true = xp.reshape(y_true, (*y_true.shape, 1))
        values = loss.function(y_true, y_pred, reduction="none", **options)
        return backend(xp.mean(values, axis=-1) if y_pred.ndim >= 2 else values)
    if kind == "ctc":  # y_true right-padded with the blank, as keras.losses.CTC takes it
        labels = _keras_labels(xp, y_true, y_pred.shape[-1], None)
        lengths = xp.sum(xp.astype(labels != options["blank"], labels.dtype), axis=-1)
        values = loss.function(labels, y_pred, label_lengths=lengths, reduction="none", **options)
        return backend(values)
    if kind != "sparse":
        return backend(loss.function(y_true, y_pred, reduction="none", **options))
    axis = options["axis"] % y_pred.ndim if -y_pred.ndim <= options["axis"] < y_pred.ndim else 0
    if y_true.ndim == y_pred.ndim and y_true.shape[axis] == 1:
        y_true = xp.squeeze(y_true, axis=axis)
    ignore = options["ignore_index"]
    labels = _keras_labels(xp, y_true, y_pred.shape[axis], ignore)
    if ignore is not None and wrapped:
        # Wrapped TensorFlow tensors: the core cannot tell that a tape is watching, so the
        # ignored rows are zeroed here (a NaN logit there would reach the gradient).
        keep = xp.expand_dims(labels != ignore, axis=axis)
        y_pred = xp.where(keep, y_pred, xp.zeros_like(y_pred))
    values = backend(loss.function(labels, y_pred, reduction="none", **options))
    if ignore is not None:
        from keras.src.backend import set_keras_mask  # Keras's own ignore_class does this

        set_keras_mask(values, backend(labels != ignore))
    return values


@functools.cache
def _base() -> type:
    import keras

    class CrossEntropyLoss(keras.losses.Loss):
        """The shared body of the xce Keras losses (the subclasses name their function)."""

        function: Callable[..., Any]
        kind: str

        def __init__(
            self,
            *,
            reduction: str | None = "sum_over_batch_size",
            name: str | None = None,
            dtype: Any = None,
            **options: Any,
        ) -> None:
            class_name = type(self).__name__
            _check_backend(keras, class_name)
            super().__init__(name=name, reduction=reduction, dtype=dtype)
            self.options = merged_options(class_name, loss_options(self.function), options)

        def call(self, y_true: Any, y_pred: Any) -> Any:
            return _per_sample(self, y_true, y_pred)

        def get_config(self) -> dict[str, Any]:
            config = super().get_config()
            config["dtype"] = self.dtype
            config.update({key: config_value(value) for key, value in self.options.items()})
            return config

    return CrossEntropyLoss


@functools.cache
def _loss_class(class_name: str) -> type:
    import keras

    function = getattr(xce, LOSS_FUNCTIONS[class_name])
    kind = loss_kind(class_name)
    extra = (
        'reduction : str or None, default "sum_over_batch_size"\n    Keras\'s reduction: '
        '"sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none" or None.\n'
        "name : str, optional\n    The loss's name (Keras's default: the class's).\n"
        "dtype : str or dtype, optional\n    Keras's dtype of the loss.\n"
    )
    call = (
        "call(y_true, y_pred)\n    The per-sample loss: y_pred's shape less the class axis "
        "(binary: less the last axis; CTC: one value per sequence, (N,))."
    )
    cls = type(class_name, (_base(),), {
        "__doc__": class_docstring(class_name, "Keras", call, extra),
        "__module__": __name__,
        "__qualname__": class_name,
        "function": staticmethod(function),
        "kind": kind,
    })  # fmt: skip
    return keras.saving.register_keras_serializable(package="xce", name=class_name)(cls)


# No module __dir__ listing the classes: tools that getattr every name dir() gives (pytest's
# collection does) would import Keras, and pick its backend, before the caller could.
def __getattr__(name: str) -> type:
    if name in __all__:
        return _loss_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
