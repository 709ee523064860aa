"""Small calls of the losses that have no native kernel (the focal losses, poly-1) on NumPy
arrays: their generic kernel (``xce._agnostic``) called directly on the whole input, after the
checks the full path would make, instead of the full path's Python layers (about 200 µs of a
(64, 10) call, where the kernel itself takes 50-90 µs). CPU torch tensors outside any graph
take this too, on NumPy views (``xce._fast._torch._host``).

The checks: targets in [0, 1] (soft targets: each row summing to 1 or 0); logits finite and,
for soft targets, a first row that does not look like probabilities (the full path warns
there); probabilities in [0, 1] (soft: rows summing to 1), clipped by the default ``eps``. A
call that fails one returns ``None``, and the full path raises, warns, or applies its rules
for infinite and NaN values.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import _config
from .._plain import first_row_may_be_probabilities
from ._dense_kernels import in_unit_interval, sums_are_one
from ._probabilities import default_eps, rows_are_probabilities
from ._small import all_finite, plain_reduction, row_sums_by_matvec

__all__ = ["generic_small"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@functools.cache
def _namespace():
    """NumPy's standard namespace, as the generic kernels take it (looked up once)."""
    from ..._array_api import array_namespace

    return array_namespace(np.empty(0))


def _fits(y, x, *, binary, from_logits):
    """The full path's value checks of targets ``y`` and predictions ``x`` (see the module
    docstring): whether the call may run here."""
    if not in_unit_interval(y) or not np.isfinite(x).all():
        return False
    if binary:
        return from_logits or in_unit_interval(x)
    n_classes = x.shape[-1]
    if not sums_are_one(row_sums_by_matvec(y.reshape(-1, n_classes))):
        return False
    if from_logits:
        return not first_row_may_be_probabilities(x)
    return rows_are_probabilities(x.reshape(-1, n_classes))


def generic_small(kernel, y, x, *, binary, from_logits, reduction, with_grad, **options):
    """``kernel`` (the loss's generic kernel on logits or on probabilities) on targets ``y``
    and predictions ``x`` of the same dtype and shape, up to ``_config.SMALL_LANE_BYTES``,
    with its ``options`` (Python numbers, checked by the caller): ``(value, grad)`` reduced
    by ``reduction`` (``"none"``, ``"sum"`` or ``"mean"``), or ``None``. ``binary``: one loss
    per entry, else per row of the last (class) axis."""
    if (
        type(y) is not np.ndarray
        or x.dtype not in _FLOATS
        or y.dtype != x.dtype
        or y.shape != x.shape
        or x.ndim == 0
        or x.size == 0
        or x.nbytes > _config.SMALL_LANE_BYTES
        or (not binary and x.shape[-1] < 2)
        or not _fits(y, x, binary=binary, from_logits=from_logits)
    ):
        return None
    if not from_logits:
        options["eps"] = default_eps(x.dtype)
    count = x.size if binary else x.size // x.shape[-1]
    scale = None
    if with_grad and reduction == "mean":
        scale = np.asarray(1.0 / count, dtype=x.dtype)
    loss, grad = kernel(_namespace(), x, y, with_grad=with_grad, grad_scale=scale, **options)
    value = plain_reduction(np.asarray(loss), reduction)
    return (value, grad) if all_finite(value) else None
