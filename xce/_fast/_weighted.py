"""Sample weights and ``where`` masks on a plain lane's answer: the lane runs with
``reduction="none"`` (per-sample losses, and the gradient of their plain sum), and the shared
rule is applied to what it returns in a few calls of the array's own library.

For weights s (``None``: 1) and a mask v (``None``: all true), broadcast by xce's prefix rule to
the batch shape, with u = v·s (0 where v is false, whatever s is there):
``"none"`` → u·ℓ, ``"sum"`` → Σ u·ℓ, ``"mean"`` → Σ u·ℓ / Σ u (0 over nothing, a NaN total
staying NaN), and the gradient's rows scaled by u (over Σ u for the mean), as the full path's
reduction (:mod:`xce._agnostic._reduce`) does, for finite losses: a call with any other is
left to the full path.

The full path folds that scale into its kernel's one write of the gradient; here it is a pass
over the gradient more, which costs less than the full path's Python layers (about 300 µs a
call) only up to ``_config.WEIGHTED_LANE_BYTES`` of logits: larger ``value_and_grad`` calls
take the full path.
"""

from __future__ import annotations

import math

from .._array_api import array_namespace
from . import _config

__all__ = ["weighted", "weights_fit"]


_NAMESPACES: dict[type, object] = {}


def _namespace(x):
    """The standard namespace of ``x``'s type, looked up once per type: the lanes take exact
    ``numpy.ndarray`` and ``torch.Tensor`` only, whose namespace the type decides, and a
    lookup costs several µs of a (64, 10) call."""
    xp = _NAMESPACES.get(type(x))
    if xp is None:
        xp = _NAMESPACES[type(x)] = array_namespace(x)
    return xp


def _fits(xp, a, x, batch_shape, kinds):
    """Whether ``a`` is an array of ``x``'s exact type and device, of a dtype of one of
    ``kinds``, with a shape that is a prefix of ``batch_shape`` (0-d included): everything
    else takes the full path, which converts it or raises the proper error."""
    return (
        type(a) is type(x)
        and tuple(a.shape) == tuple(batch_shape[: a.ndim])
        and getattr(a, "device", None) == getattr(x, "device", None)
        and any(xp.isdtype(a.dtype, kind) for kind in kinds)
    )


def weights_fit(x, batch_shape, *, sample_weight, where, with_grad) -> bool:
    """Whether a lane's answer can be weighted here: real sample weights and a boolean mask,
    each of ``x``'s type and device and shaped by the prefix rule; with the gradient, logits
    of at most ``_config.WEIGHTED_LANE_BYTES``."""
    if with_grad and math.prod(x.shape) * x.dtype.itemsize > _config.WEIGHTED_LANE_BYTES:
        return False
    xp = _namespace(x)
    if sample_weight is not None and not _fits(
        xp, sample_weight, x, batch_shape, ("real floating", "integral")
    ):
        return False
    return where is None or _fits(xp, where, x, batch_shape, ("bool",))


def weighted(result, x, batch_shape, *, sample_weight, where, reduction, class_axis):
    """The shared rule on a lane's ``(ℓ, ∂Σℓ/∂x)`` with ``reduction="none"`` (module
    docstring): ``(value, grad)``, the gradient ``None`` if the lane made none; ``None`` if a
    loss is not finite.
    ``class_axis``: whether the gradient has a class axis beyond the batch shape. The lane's
    gradient is its own fresh array, scaled in place; each call here is a few µs of a small
    call, so none is made that the reduction does not need."""
    loss, grad = result
    if not math.isfinite(_read(loss.sum())):
        # An infinite or NaN loss (the rules for infinite logits, a NaN row the mask hides):
        # s·ℓ and the mask's selection differ there, which the full path applies as it must.
        # (A finite sum that overflows only sends the call there too.)
        return None
    xp = _namespace(x)
    u = _batch_weights(xp, sample_weight, where, x.dtype)
    missing = len(batch_shape) - u.ndim  # the trailing batch axes u is repeated over
    if missing:
        u = u.reshape(tuple(u.shape) + (1,) * missing)
    weighted_loss = u * loss
    r = 1.0  # the gradient's scale beyond u
    if reduction == "none":
        value = weighted_loss
    elif reduction == "sum":
        value = weighted_loss.sum()
    else:  # each weight stands for the batch entries it is repeated over
        count = u.sum() * math.prod(batch_shape[u.ndim - missing :])
        total = weighted_loss.sum()
        read = _read(count)
        if read:  # divided by the array: learned weights get their gradient through Σ u
            value, r = total / count, 1.0 / read
        else:  # a mean over nothing: 0, but a NaN total stays NaN (the shared rule)
            value, r = xp.where(xp.isnan(total), total, xp.zeros_like(total)), 0.0
    if type(value) is not type(x):  # NumPy's sum gives a scalar, not a 0-d array
        value = xp.asarray(value)
    if grad is not None:
        grad *= u.reshape((*u.shape, 1)) if class_axis else u
        if r != 1.0:
            grad *= r
    return value, grad


def _batch_weights(xp, sample_weight, where, dtype):
    """u = v·s in ``dtype``, of the larger of the two shapes (both are prefixes of the batch
    shape), 0 where the mask is false."""
    s = None if sample_weight is None else xp.astype(sample_weight, dtype, copy=False)
    if where is None:
        return s
    if s is None:
        return xp.astype(where, dtype)
    if s.ndim < where.ndim:
        s = s.reshape(tuple(s.shape) + (1,) * (where.ndim - s.ndim))
    elif where.ndim < s.ndim:
        where = where.reshape(tuple(where.shape) + (1,) * (s.ndim - where.ndim))
    return xp.where(where, s, xp.zeros_like(s))


def _read(total):
    """A 0-d array's value as a float, outside any autograd graph (torch warns on reading a
    tensor that requires grad)."""
    return float(total.detach() if getattr(total, "requires_grad", False) else total)
