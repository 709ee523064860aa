"""What the benchmark times: the sizes and operations, the data, and each implementation.

An implementation is a function that imports its framework and returns a builder; a builder
takes ``(operation, logits, labels)`` (NumPy arrays) and returns a call that computes that
operation's loss (and gradient, for ``sparse+grad``) on those arrays, or ``None`` where the
implementation has no such call (the option operations of :mod:`.options` in "numpy plain").
:data:`TIMED` names the function that each implementation actually calls for each operation,
for the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from . import options
from .options import OPTION_OPERATIONS, TIMED_OPTIONS

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import DTypeLike

__all__ = [
    "ALL_OPERATIONS",
    "HEADLINE",
    "IMPLEMENTATIONS",
    "OPERATIONS",
    "OPTION_OPERATIONS",
    "REFERENCE",
    "SIZES",
    "TIMED",
    "Builder",
    "available",
    "binary_targets",
    "data",
    "soft_targets",
]

SIZES = ((64, 10), (256, 1000), (4096, 32000), (1024, 128256), (256, 256000))
HEADLINE = (4096, 32000)
OPERATIONS = ("sparse", "sparse+grad", "soft", "binary")  # the default run's
ALL_OPERATIONS = OPERATIONS + OPTION_OPERATIONS

# (operation, logits, labels) → a call that computes the operation on them, or None
Builder = Callable[[str, "np.ndarray", "np.ndarray"], Callable[[], Any] | None]


def data(n: int, c: int, dtype: DTypeLike, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c), dtype=np.float32).astype(dtype, copy=False) * 3
    labels = rng.integers(0, c, size=n)
    return logits, labels


def soft_targets(logits: np.ndarray) -> np.ndarray:
    import numpy as np

    # A cheap, deterministic distribution per row: a softmax of the rolled logits.
    rolled = np.roll(logits, 1, axis=1)
    e = np.exp(rolled - rolled.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def binary_targets(logits: np.ndarray) -> np.ndarray:
    return (logits > 0.5).astype(logits.dtype)


def _xce(asarray: Callable[[np.ndarray], Any]) -> Builder:
    import xce

    grad_fn = xce.value_and_grad(xce.sparse_categorical_cross_entropy)

    def build(op: str, logits: np.ndarray, labels: np.ndarray) -> Callable[[], Any]:
        if op in OPTION_OPERATIONS:
            return options.xce_call(op, logits, labels, asarray)
        x, y = asarray(logits), asarray(labels)
        if op == "sparse":
            return lambda: xce.sparse_categorical_cross_entropy(y, x, from_logits=True)
        if op == "sparse+grad":
            return lambda: grad_fn(y, x, from_logits=True)
        if op == "soft":
            q = asarray(soft_targets(logits))
            return lambda: xce.categorical_cross_entropy(q, x, from_logits=True)
        t = asarray(binary_targets(logits))
        return lambda: xce.binary_cross_entropy(t, x, from_logits=True)

    return build


def _xce_numpy() -> Builder:
    import numpy as np

    return _xce(np.asarray)


def _xce_torch() -> Builder:
    import torch

    return _xce(torch.from_numpy)


def _torch_native() -> Builder:
    import torch
    import torch.nn.functional as F

    def build(op: str, logits: np.ndarray, labels: np.ndarray) -> Callable[[], Any]:
        if op in OPTION_OPERATIONS:
            return options.torch_call(op, logits, labels)
        x, y = torch.from_numpy(logits), torch.from_numpy(labels)
        if op == "sparse":
            return lambda: F.cross_entropy(x, y)
        if op == "sparse+grad":
            leaf = x.clone().requires_grad_(True)

            def forward_backward() -> tuple[Any, Any]:
                leaf.grad = None
                loss = F.cross_entropy(leaf, y)
                loss.backward()
                return loss, leaf.grad

            return forward_backward
        if op == "soft":
            q = torch.from_numpy(soft_targets(logits))
            return lambda: F.cross_entropy(x, q)
        t = torch.from_numpy(binary_targets(logits))
        return lambda: F.binary_cross_entropy_with_logits(x, t)

    return build


def _numpy_plain() -> Builder:
    """The textbook NumPy version: log-softmax, gather, mean; softmax - one-hot for the grad."""
    import numpy as np

    def log_softmax(x: np.ndarray) -> np.ndarray:
        z = x - x.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def build(op: str, x: np.ndarray, y: np.ndarray) -> Callable[[], Any] | None:
        if op in OPTION_OPERATIONS:
            return None
        rows = np.arange(x.shape[0])
        if op == "sparse":
            return lambda: -log_softmax(x)[rows, y].mean()
        if op == "sparse+grad":

            def forward_backward() -> tuple[Any, np.ndarray]:
                log_p = log_softmax(x)
                grad = np.exp(log_p)
                grad[rows, y] -= 1
                return -log_p[rows, y].mean(), grad / x.shape[0]

            return forward_backward
        if op == "soft":
            q = soft_targets(x)
            return lambda: -(q * log_softmax(x)).sum(axis=1).mean()
        t = binary_targets(x)
        return lambda: (
            np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
        ).mean()  # fmt: skip

    return build


def _jax_jit() -> Builder:
    """Optax's functions under jax.jit (unavailable without optax)."""
    import jax
    import jax.numpy as jnp
    import optax

    sparse = optax.softmax_cross_entropy_with_integer_labels
    soft = optax.softmax_cross_entropy
    binary = optax.sigmoid_binary_cross_entropy

    def mean_of(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        return jax.jit(lambda x, t: fn(x, t).mean())

    def build(op: str, logits: np.ndarray, labels: np.ndarray) -> Callable[[], Any]:
        if op in OPTION_OPERATIONS:
            return options.optax_call(op, logits, labels)
        x, y = jnp.asarray(logits), jnp.asarray(labels)
        if op == "sparse":
            fn, arg = mean_of(sparse), y
        elif op == "sparse+grad":
            fn, arg = jax.jit(jax.value_and_grad(lambda x, y: sparse(x, y).mean())), y
        elif op == "soft":
            fn, arg = mean_of(soft), jnp.asarray(soft_targets(logits))
        else:
            fn, arg = mean_of(binary), jnp.asarray(binary_targets(logits))
        return lambda: jax.block_until_ready(fn(x, arg))

    return build


def _xce_jax_jit() -> Builder:
    """xce's functions on JAX arrays under jax.jit: the generic kernels, compiled."""
    import jax
    import jax.numpy as jnp

    import xce

    sparse = jax.jit(lambda x, y: xce.sparse_categorical_cross_entropy(y, x, from_logits=True))
    sparse_grad = jax.jit(
        lambda x, y: xce.value_and_grad(xce.sparse_categorical_cross_entropy)(
            y, x, from_logits=True
        )
    )
    soft = jax.jit(lambda x, q: xce.categorical_cross_entropy(q, x, from_logits=True))
    binary = jax.jit(lambda x, t: xce.binary_cross_entropy(t, x, from_logits=True))

    def build(op: str, logits: np.ndarray, labels: np.ndarray) -> Callable[[], Any]:
        if op in OPTION_OPERATIONS:
            return options.xce_jax_call(op, logits, labels)
        x, y = jnp.asarray(logits), jnp.asarray(labels)
        if op == "sparse":
            fn, arg = sparse, y
        elif op == "sparse+grad":
            fn, arg = sparse_grad, y
        elif op == "soft":
            fn, arg = soft, jnp.asarray(soft_targets(logits))
        else:
            fn, arg = binary, jnp.asarray(binary_targets(logits))
        return lambda: jax.block_until_ready(fn(x, arg))

    return build


REFERENCE = "torch"  # the "speed-up" column's reference
IMPLEMENTATIONS: dict[str, Callable[[], Builder]] = {
    "xce numpy": _xce_numpy,
    "xce torch": _xce_torch,
    "xce jax jit": _xce_jax_jit,
    "torch": _torch_native,
    "numpy plain": _numpy_plain,
    "optax jit": _jax_jit,
}

_XCE = {
    "sparse": "sparse_categorical_cross_entropy",
    "sparse+grad": "value_and_grad(sparse_categorical_cross_entropy)",
    "soft": "categorical_cross_entropy",
    "binary": "binary_cross_entropy",
}
# What each implementation calls for each operation (all from logits, mean over the batch);
# "numpy plain" has no option operations.
TIMED: dict[str, dict[str, str]] = {
    "xce numpy": {op: f"xce.{fn}" for op, fn in _XCE.items()},
    "xce torch": {op: f"xce.{fn}" for op, fn in _XCE.items()},
    "xce jax jit": {op: f"jax.jit(xce.{fn})" for op, fn in _XCE.items()},
    "torch": {
        "sparse": "F.cross_entropy",
        "sparse+grad": "F.cross_entropy + backward()",
        "soft": "F.cross_entropy (probability targets)",
        "binary": "F.binary_cross_entropy_with_logits",
    },
    "numpy plain": {
        "sparse": "log-softmax, gather, mean",
        "sparse+grad": "log-softmax, gather, mean; softmax - one-hot",
        "soft": "log-softmax, sum, mean",
        "binary": "max(x, 0) - x·t + log1p(exp(-|x|)), mean",
    },
    "optax jit": {
        "sparse": "jax.jit(optax.softmax_cross_entropy_with_integer_labels)",
        "sparse+grad": "jax.jit(value_and_grad(optax.softmax_cross_entropy_with_integer_labels))",
        "soft": "jax.jit(optax.softmax_cross_entropy)",
        "binary": "jax.jit(optax.sigmoid_binary_cross_entropy)",
    },
}


TIMED = {name: {**timed, **TIMED_OPTIONS.get(name, {})} for name, timed in TIMED.items()}


def available(names: Iterable[str]) -> dict[str, Builder]:
    """The builders of the implementations in ``names`` whose framework is installed."""
    found = {}
    for name in names:
        try:
            found[name] = IMPLEMENTATIONS[name]()
        except ImportError:
            pass
    return found
