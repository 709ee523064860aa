"""TensorFlow tensors as array-API arrays, for :mod:`xce.keras` on Keras's TensorFlow backend.

array-api-compat has no TensorFlow namespace, so ``tf.Tensor`` is not an array xce can take.
This module wraps a tensor in :class:`TFArray`, whose ``__array_namespace__`` is
:data:`namespace`: the part of the standard that xce's generic kernels and pipeline use,
written with TensorFlow ops. Every operation stays a TensorFlow op, so the loss runs eagerly,
inside ``tf.function`` and under XLA (``jit_compile=True``, what Keras's ``"auto"`` picks on
a GPU), and ``tf.GradientTape`` differentiates it like any TensorFlow code.

**Scope**: only :mod:`xce.keras` uses it, wrapping the tensors Keras hands to ``call()`` and
unwrapping the result. It is not an xce backend: ``xce.sparse_categorical_cross_entropy``
and the other functions still refuse a bare ``tf.Tensor``, the namespace covers only what
xce's own code calls, and TensorFlow's tensors are treated like JAX's (values never read, so
bad labels give NaN losses instead of errors; no device checks). Wrapped tensors are not
seen as differentiated by the pipeline, which therefore does not zero the entries it masks
out before the math: :mod:`xce.keras` zeroes the rows of ``ignore_index`` itself, the one
mask a Keras loss has. Importing this module imports TensorFlow.
"""

from __future__ import annotations

import operator
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

__all__ = ["TFArray", "is_tensorflow_tensor", "namespace", "unwrap", "without_autograph", "wrap"]


def is_tensorflow_tensor(x: Any) -> bool:
    """True for a TensorFlow tensor or variable (eager or symbolic)."""
    return isinstance(x, (tf.Tensor, tf.Variable))


def wrap(x: Any) -> Any:
    """A TensorFlow tensor as a :class:`TFArray`; anything else unchanged."""
    return TFArray(tf.convert_to_tensor(x)) if is_tensorflow_tensor(x) else x


def unwrap(x: Any) -> Any:
    """The TensorFlow tensor inside a :class:`TFArray`; anything else unchanged."""
    return x.tensor if isinstance(x, TFArray) else x


def without_autograph(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` run as written inside ``tf.function``: AutoGraph would rewrite xce's
    Python control flow, which never branches on a tensor's value."""
    return tf.autograph.experimental.do_not_convert(function)


def _tensor(x: Any, like: tf.DType | None = None) -> tf.Tensor:
    """An operand as a tensor: Python scalars take the other operand's dtype (the standard's
    rule for scalars), NumPy arrays keep theirs."""
    if isinstance(x, TFArray):
        return x.tensor
    if like is not None and isinstance(x, (bool, int, float)):
        if like.is_integer and isinstance(x, float):
            raise TypeError(f"a float scalar with an array of dtype {like.name}")
        return tf.constant(x, dtype=like)
    return tf.convert_to_tensor(x)


def _promoted(a: tf.Tensor, b: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Both operands in their promoted dtype (TensorFlow never promotes by itself)."""
    if a.dtype == b.dtype:
        return a, b
    common = tf.as_dtype(np.promote_types(a.dtype.as_numpy_dtype, b.dtype.as_numpy_dtype))
    return tf.cast(a, common), tf.cast(b, common)


def _binary(op: Callable[[Any, Any], Any], reflected: bool = False) -> Callable[..., Any]:
    def method(self: TFArray, other: Any) -> Any:
        if not isinstance(other, (TFArray, bool, int, float, np.ndarray, np.generic)):
            return NotImplemented
        a, b = _promoted(self.tensor, _tensor(other, self.tensor.dtype))
        return TFArray(op(b, a) if reflected else op(a, b))

    return method


def _logical(tf_op: Callable[[Any, Any], Any], int_op: Callable[[Any, Any], Any]):
    def op(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        return tf_op(a, b) if a.dtype == tf.bool else int_op(a, b)

    return op


def _key(key: Any) -> Any:
    if isinstance(key, tuple):
        return tuple(_key(k) for k in key)
    if isinstance(key, TFArray):
        if key.dtype == tf.bool:
            raise IndexError("boolean-mask indexing has no static shape; use where()")
        return key.tensor
    return key


class TFArray:
    """A TensorFlow tensor with the array API's operators, properties and namespace."""

    __slots__ = ("tensor",)
    __array_priority__ = 1000  # NumPy operands defer to our reflected operators

    def __init__(self, tensor: tf.Tensor) -> None:
        self.tensor = tensor

    def __array_namespace__(self, *, api_version: str | None = None) -> Any:
        return namespace

    @property
    def dtype(self) -> tf.DType:
        return self.tensor.dtype

    @property
    def shape(self) -> tuple[int | None, ...]:
        return tuple(self.tensor.shape)

    @property
    def ndim(self) -> int:
        return self.tensor.shape.rank

    @property
    def size(self) -> int | None:
        return self.tensor.shape.num_elements()

    @property
    def device(self) -> str:
        return "tensorflow"  # placement is TensorFlow's business (and unknown while tracing)

    def __getitem__(self, key: Any) -> TFArray:
        return TFArray(self.tensor[_key(key)])

    def __neg__(self) -> TFArray:
        return TFArray(-self.tensor)

    def __pos__(self) -> TFArray:
        return self

    def __abs__(self) -> TFArray:
        return TFArray(tf.abs(self.tensor))

    def __invert__(self) -> TFArray:
        t = self.tensor
        return TFArray(tf.logical_not(t) if t.dtype == tf.bool else tf.bitwise.invert(t))

    def __bool__(self) -> bool:
        return bool(self.tensor)  # eager tensors only: a traced one raises, as in TensorFlow

    def __float__(self) -> float:
        return float(self.tensor)

    def __int__(self) -> int:
        return int(self.tensor)

    def __index__(self) -> int:
        return int(self.tensor)

    def __repr__(self) -> str:
        return f"TFArray({self.tensor!r})"

    __add__ = _binary(operator.add)
    __radd__ = _binary(operator.add, reflected=True)
    __sub__ = _binary(operator.sub)
    __rsub__ = _binary(operator.sub, reflected=True)
    __mul__ = _binary(operator.mul)
    __rmul__ = _binary(operator.mul, reflected=True)
    __truediv__ = _binary(tf.math.truediv)
    __rtruediv__ = _binary(tf.math.truediv, reflected=True)
    __pow__ = _binary(tf.pow)
    __rpow__ = _binary(tf.pow, reflected=True)
    __and__ = _binary(_logical(tf.logical_and, tf.bitwise.bitwise_and))
    __rand__ = _binary(_logical(tf.logical_and, tf.bitwise.bitwise_and), reflected=True)
    __or__ = _binary(_logical(tf.logical_or, tf.bitwise.bitwise_or))
    __ror__ = _binary(_logical(tf.logical_or, tf.bitwise.bitwise_or), reflected=True)
    __eq__ = _binary(tf.equal)
    __ne__ = _binary(tf.not_equal)
    __lt__ = _binary(tf.less)
    __le__ = _binary(tf.less_equal)
    __gt__ = _binary(tf.greater)
    __ge__ = _binary(tf.greater_equal)
    __hash__ = None  # type: ignore[assignment]  # elementwise __eq__, as every array


def _t(x: Any) -> tf.Tensor:
    return _tensor(x)


def _dtype(dtype: Any) -> tf.DType | None:
    return None if dtype is None else tf.as_dtype(dtype)


_KINDS: dict[str, Callable[[tf.DType], bool]] = {
    "bool": lambda d: d == tf.bool,
    "signed integer": lambda d: d.is_integer and not d.is_unsigned,
    "unsigned integer": lambda d: d.is_integer and d.is_unsigned,
    "integral": lambda d: d.is_integer,
    "real floating": lambda d: d.is_floating,
    "complex floating": lambda d: d.is_complex,
    "numeric": lambda d: d.is_integer or d.is_floating or d.is_complex,
}


def isdtype(dtype: Any, kind: Any) -> bool:
    if isinstance(kind, tuple):
        return any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, str):
        return _KINDS[kind](tf.as_dtype(dtype))
    return tf.as_dtype(dtype) == tf.as_dtype(kind)


def finfo(dtype: Any) -> Any:
    info = np.finfo(tf.as_dtype(dtype).as_numpy_dtype)
    # the standard's names; smallest_normal is NumPy's tiny
    return type("finfo", (), {"bits": info.bits, "eps": float(info.eps), "max": float(info.max),
                              "min": float(info.min), "smallest_normal": float(info.tiny),
                              "dtype": tf.as_dtype(dtype)})  # fmt: skip


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: Any = None) -> TFArray:
    t = _tensor(obj)
    return TFArray(t if dtype is None or t.dtype == _dtype(dtype) else tf.cast(t, dtype))


def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> TFArray:
    t = _t(x)
    return TFArray(t if t.dtype == _dtype(dtype) else tf.cast(t, dtype))


def _axis(axis: Any) -> Any:
    return list(axis) if isinstance(axis, tuple) else axis


def _reduction(reduce: Callable[..., Any], as_bool: bool = False):
    def function(x: Any, /, *, axis: Any = None, keepdims: bool = False, dtype: Any = None):
        t = _t(x)
        if as_bool and t.dtype != tf.bool:
            t = tf.not_equal(t, tf.zeros((), t.dtype))
        elif not as_bool and t.dtype == tf.bool:
            t = tf.cast(t, tf.int64)  # the standard sums booleans as integers
        if dtype is not None:
            t = tf.cast(t, dtype)
        return TFArray(reduce(t, axis=_axis(axis), keepdims=keepdims))

    return function


# Named after builtins, so kept out of the module's globals (set on the namespace below).
_SHADOWING: dict[str, Callable[..., Any]] = {
    "sum": _reduction(tf.reduce_sum),
    "max": _reduction(tf.reduce_max),
    "min": _reduction(tf.reduce_min),
    "mean": _reduction(tf.reduce_mean),
    "any": _reduction(tf.reduce_any, as_bool=True),
    "all": _reduction(tf.reduce_all, as_bool=True),
}


def _unary(op: Callable[[tf.Tensor], tf.Tensor]) -> Callable[[Any], TFArray]:
    return lambda x, /: TFArray(op(_t(x)))


def _elementwise(op: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]) -> Callable[..., TFArray]:
    def function(a: Any, b: Any, /) -> TFArray:
        like = a.dtype if isinstance(a, TFArray) else b.dtype if isinstance(b, TFArray) else None
        return TFArray(op(*_promoted(_tensor(a, like), _tensor(b, like))))

    return function


exp, log, log1p, expm1 = (_unary(f) for f in (tf.exp, tf.math.log, tf.math.log1p, tf.math.expm1))
sqrt, tanh, sign = (_unary(f) for f in (tf.sqrt, tf.tanh, tf.sign))
floor, ceil = _unary(tf.floor), _unary(tf.math.ceil)
isnan, isinf, isfinite = (_unary(f) for f in (tf.math.is_nan, tf.math.is_inf, tf.math.is_finite))
logical_not = _unary(tf.logical_not)
negative = _unary(tf.negative)
minimum, maximum = _elementwise(tf.minimum), _elementwise(tf.maximum)
_SHADOWING.update(abs=_unary(tf.abs), pow=_elementwise(tf.pow))
add, subtract, multiply = (_elementwise(f) for f in (tf.add, tf.subtract, tf.multiply))
divide = _elementwise(tf.math.truediv)
logical_and, logical_or = _elementwise(tf.logical_and), _elementwise(tf.logical_or)
equal, not_equal = _elementwise(tf.equal), _elementwise(tf.not_equal)
less, greater = _elementwise(tf.less), _elementwise(tf.greater)


def where(condition: Any, a: Any, b: Any, /) -> TFArray:
    like = a.dtype if isinstance(a, TFArray) else b.dtype if isinstance(b, TFArray) else None
    x, y = _promoted(_tensor(a, like), _tensor(b, like))
    return TFArray(tf.where(_t(condition), x, y))


def zeros(shape: Any, *, dtype: Any = None, device: Any = None) -> TFArray:
    return TFArray(tf.zeros(shape, dtype=_dtype(dtype) or tf.float32))


def ones(shape: Any, *, dtype: Any = None, device: Any = None) -> TFArray:
    return TFArray(tf.ones(shape, dtype=_dtype(dtype) or tf.float32))


def full(shape: Any, fill_value: Any, *, dtype: Any = None, device: Any = None) -> TFArray:
    return TFArray(tf.fill(shape, tf.constant(fill_value, dtype=_dtype(dtype))))


def zeros_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> TFArray:
    return TFArray(tf.zeros_like(_t(x), dtype=_dtype(dtype)))


def ones_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> TFArray:
    return TFArray(tf.ones_like(_t(x), dtype=_dtype(dtype)))


def full_like(x: Any, /, fill_value: Any, *, dtype: Any = None, device: Any = None) -> TFArray:
    t = _t(x)
    # shaped by the tensor, not its static shape: the batch size may be unknown while tracing
    return TFArray(tf.fill(tf.shape(t), tf.constant(fill_value, dtype=_dtype(dtype) or t.dtype)))


def arange(start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None,
           device: Any = None) -> TFArray:  # fmt: skip
    start, stop = (0, start) if stop is None else (start, stop)
    return TFArray(tf.range(start, stop, step, dtype=_dtype(dtype) or tf.int64))


def reshape(x: Any, /, shape: Any, *, copy: Any = None) -> TFArray:
    return TFArray(tf.reshape(_t(x), [-1 if d is None else d for d in shape]))


def squeeze(x: Any, /, axis: Any) -> TFArray:
    return TFArray(tf.squeeze(_t(x), axis=_axis(axis)))


def expand_dims(x: Any, /, *, axis: int = 0) -> TFArray:
    return TFArray(tf.expand_dims(_t(x), axis))


def moveaxis(x: Any, source: int, destination: int, /) -> TFArray:
    t = _t(x)
    order = [k for k in range(t.shape.rank) if k != source % t.shape.rank]
    order.insert(destination % t.shape.rank, source % t.shape.rank)
    return TFArray(tf.transpose(t, order))


def broadcast_to(x: Any, /, shape: Any) -> TFArray:
    return TFArray(tf.broadcast_to(_t(x), shape))


def take(x: Any, indices: Any, /, *, axis: int | None = None) -> TFArray:
    t = _t(x)
    return TFArray(tf.gather(tf.reshape(t, [-1]) if axis is None else t, _t(indices), axis=axis))


def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> TFArray:
    t, i = _t(x), _t(indices)
    rank = t.shape.rank
    axis %= rank
    if axis != rank - 1:
        return moveaxis(take_along_axis(moveaxis(x, axis, -1), moveaxis(indices, axis, -1)), -1,
                        axis)  # fmt: skip
    return TFArray(tf.gather(t, i, axis=-1, batch_dims=rank - 1))


def argmax(x: Any, /, *, axis: int | None = None, keepdims: bool = False) -> TFArray:
    t = _t(x)
    result = tf.argmax(tf.reshape(t, [-1]) if axis is None else t, axis=axis or 0)
    return TFArray(tf.expand_dims(result, axis) if keepdims and axis is not None else result)


def concat(arrays: Any, /, *, axis: int = 0) -> TFArray:
    return TFArray(tf.concat([_t(a) for a in arrays], axis))


def stack(arrays: Any, /, *, axis: int = 0) -> TFArray:
    return TFArray(tf.stack([_t(a) for a in arrays], axis))


class _Info:
    """``__array_namespace_info__()``: TensorFlow's default dtypes (float32, int64 indices)."""

    def default_dtypes(self, *, device: Any = None) -> dict[str, tf.DType]:
        return {"real floating": tf.float32, "complex floating": tf.complex64,
                "integral": tf.int64, "indexing": tf.int64}  # fmt: skip

    def devices(self) -> list[str]:
        return ["tensorflow"]

    def default_device(self) -> str:
        return "tensorflow"


def __array_namespace_info__() -> _Info:
    return _Info()


# The namespace as a module object: array-api-compat's is_*_namespace checks read __name__.
namespace = types.ModuleType("xce._tensorflow.namespace", "TensorFlow ops as an array-API subset")
_CONSTANTS = {"__array_namespace_info__": __array_namespace_info__,
              "__array_api_version__": "2023.12", "e": np.e, "inf": np.inf, "nan": np.nan,
              "pi": np.pi, "newaxis": None}  # fmt: skip
_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
           "float16", "float32", "float64", "complex64", "complex128")  # fmt: skip
for _name, _value in [*globals().items(), *_SHADOWING.items(), *_CONSTANTS.items(),
                      *((name, getattr(tf, name)) for name in _DTYPES)]:  # fmt: skip
    is_function = callable(_value) and getattr(_value, "__module__", None) == __name__
    if _name in {*_SHADOWING, *_CONSTANTS, *_DTYPES} or (is_function and _name[0] != "_"):
        if _name not in __all__:  # wrap, unwrap...: this module's API, not the standard's
            setattr(namespace, _name, _value)
