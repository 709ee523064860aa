"""The option operations of the benchmark: the sparse loss with one everyday option each
(label smoothing, ``ignore_index``, class weights, sample weights), forward, mean over the
batch. They are not in the default run; ``--operations`` names them.

Each implementation computes the same number (``tests/test_bench.py`` checks it against the
float64 reference): torch's ``F.cross_entropy`` with its own option, sample weights as
Σ s·ℓ / Σ s over its per-sample losses; Optax's integer-label function under ``jax.jit`` with
the same arithmetic in ``jax.numpy`` (it has no such options); "numpy plain" is not timed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "OPTION_OPERATIONS",
    "TIMED_OPTIONS",
    "optax_call",
    "option_inputs",
    "torch_call",
    "xce_call",
    "xce_jax_call",
]

OPTION_OPERATIONS = (
    "sparse+smoothing",
    "sparse+ignore_index",
    "sparse+class_weight",
    "sparse+sample_weight",
)
_IGNORED = -100
_SMOOTHING = 0.1

_XCE_OPTION = {
    "sparse+smoothing": f"label_smoothing={_SMOOTHING}",
    "sparse+ignore_index": f"ignore_index={_IGNORED}",
    "sparse+class_weight": "class_weight=w",
    "sparse+sample_weight": "sample_weight=s",
}
# What each implementation calls for each option operation (mean over the batch).
_XCE_TIMED = {op: f"xce.sparse_categorical_cross_entropy({o})" for op, o in _XCE_OPTION.items()}
TIMED_OPTIONS: dict[str, dict[str, str]] = {
    "xce numpy": _XCE_TIMED,
    "xce torch": _XCE_TIMED,
    "xce jax jit": {op: f"jax.jit({timed})" for op, timed in _XCE_TIMED.items()},
    "torch": {
        "sparse+smoothing": f"F.cross_entropy(label_smoothing={_SMOOTHING})",
        "sparse+ignore_index": f"F.cross_entropy(ignore_index={_IGNORED})",
        "sparse+class_weight": "F.cross_entropy(weight=w)",
        "sparse+sample_weight": "Σ s·F.cross_entropy(reduction='none') / Σ s",
    },
    "optax jit": {
        "sparse+smoothing": "jax.jit(optax.softmax_cross_entropy(optax.smooth_labels(one-hot)))",
        "sparse+ignore_index": "jax.jit(optax.softmax_cross_entropy_with_integer_labels, masked)",
        "sparse+class_weight": "jax.jit(Σ w_y·optax…integer_labels / Σ w_y)",
        "sparse+sample_weight": "jax.jit(Σ s·optax…integer_labels / Σ s)",
    },
}


def option_inputs(op: str, logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, dict]:
    """The labels (every fourth one ignored for ``ignore_index``) and the option's keyword and
    value, NumPy arrays in the logits' dtype for weights."""
    import numpy as np

    n, c = logits.shape
    if op == "sparse+smoothing":
        return labels, {"label_smoothing": _SMOOTHING}
    if op == "sparse+ignore_index":
        ignored = labels.copy()
        ignored[::4] = _IGNORED
        return ignored, {"ignore_index": _IGNORED}
    if op == "sparse+class_weight":
        return labels, {"class_weight": np.linspace(0.5, 2.0, c).astype(logits.dtype)}
    return labels, {"sample_weight": np.linspace(0.5, 1.5, n).astype(logits.dtype)}


def _converted(options: dict, asarray: Callable[[np.ndarray], Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, (int, float)) else asarray(v) for k, v in options.items()}


def xce_call(op: str, logits: np.ndarray, labels: np.ndarray,
             asarray: Callable[[np.ndarray], Any]) -> Callable[[], Any]:  # fmt: skip
    import xce

    y, options = option_inputs(op, logits, labels)
    x, target, given = asarray(logits), asarray(y), _converted(options, asarray)
    return lambda: xce.sparse_categorical_cross_entropy(target, x, from_logits=True, **given)


def xce_jax_call(op: str, logits: np.ndarray, labels: np.ndarray) -> Callable[[], Any]:
    import jax
    import jax.numpy as jnp

    import xce

    y, options = option_inputs(op, logits, labels)
    arrays = {k: jnp.asarray(v) for k, v in options.items() if not isinstance(v, (int, float))}
    numbers: dict[str, Any] = {k: v for k, v in options.items() if isinstance(v, (int, float))}
    fn = jax.jit(lambda x, y, arrays: xce.sparse_categorical_cross_entropy(
        y, x, from_logits=True, **arrays, **numbers))  # fmt: skip
    x, target = jnp.asarray(logits), jnp.asarray(y)
    return lambda: jax.block_until_ready(fn(x, target, arrays))


def torch_call(op: str, logits: np.ndarray, labels: np.ndarray) -> Callable[[], Any]:
    import torch
    import torch.nn.functional as F

    y, options = option_inputs(op, logits, labels)
    x, target = torch.from_numpy(logits), torch.from_numpy(y)
    if op == "sparse+smoothing":
        return lambda: F.cross_entropy(x, target, label_smoothing=_SMOOTHING)
    if op == "sparse+ignore_index":
        return lambda: F.cross_entropy(x, target, ignore_index=_IGNORED)
    if op == "sparse+class_weight":
        w = torch.from_numpy(options["class_weight"])
        return lambda: F.cross_entropy(x, target, weight=w)
    s = torch.from_numpy(options["sample_weight"])
    return lambda: (F.cross_entropy(x, target, reduction="none") * s).sum() / s.sum()


def optax_call(op: str, logits: np.ndarray, labels: np.ndarray) -> Callable[[], Any]:
    import jax
    import jax.numpy as jnp
    import optax

    y, options = option_inputs(op, logits, labels)
    x, target = jnp.asarray(logits), jnp.asarray(y)
    per_sample = optax.softmax_cross_entropy_with_integer_labels
    if op == "sparse+smoothing":
        n_classes = logits.shape[1]

        def fn(x, y, _):
            q = optax.smooth_labels(jax.nn.one_hot(y, n_classes, dtype=x.dtype), _SMOOTHING)
            return optax.softmax_cross_entropy(x, q).mean()

        extra = None
    elif op == "sparse+ignore_index":

        def fn(x, y, _):
            valid = y != _IGNORED
            loss = per_sample(x, jnp.where(valid, y, 0))
            return jnp.where(valid, loss, 0).sum() / jnp.maximum(valid.sum(), 1)

        extra = None
    else:
        extra = jnp.asarray(next(iter(options.values())))

        def fn(x, y, w):
            weight = w[y] if op == "sparse+class_weight" else w
            return (weight * per_sample(x, y)).sum() / weight.sum()

    jitted = jax.jit(fn)
    return lambda: jax.block_until_ready(jitted(x, target, extra))
