"""Small CPU tensors through NumPy views of their memory: a torch call on a tiny tensor costs
several µs of dispatch, a NumPy call about one, and a (64, 10) loss or check is a dozen calls.
The views share the tensors' memory (no copy) and are only read; what the NumPy kernels return
is wrapped as tensors without a copy. Results never come this way for tensors that autograd
records (their graph would be lost), nor for dtypes NumPy does not have; without NumPy
nothing does (torch imports NumPy itself where it is installed).
"""

from __future__ import annotations

import types

import torch

from .. import _config

_small: types.ModuleType | None
_dense: types.ModuleType | None
_numpy_lanes: types.ModuleType | None
_generic: types.ModuleType | None
try:
    from .._numpy import _dense_kernels as _dense
    from .._numpy import _generic_small as _generic
    from .._numpy import _lanes as _numpy_lanes
    from .._numpy import _small
except ImportError:  # no NumPy
    _small = _dense = _numpy_lanes = _generic = None

__all__ = [
    "checked_labels",
    "generic_on_host",
    "host_view",
    "on_host",
    "probabilities_on_host",
    "row_totals_fit",
]

_NUMPY_DTYPES = (torch.float32, torch.float64, torch.int64)


def host_view(a):
    """A NumPy view of a small CPU tensor (float32, float64 or int64, up to
    ``_config.TORCH_HOST_ELEMENTS`` entries), detached from any graph; else ``None`` (a GPU
    tensor too: its callers run on CPU tensors, and a read would wait for the device)."""
    if (
        a.numel() > _config.TORCH_HOST_ELEMENTS
        or a.dtype not in _NUMPY_DTYPES
        or _small is None
        or not a.is_cpu
    ):
        return None
    return (a.detach() if a.requires_grad else a).numpy()


def row_totals_fit(total):
    """Whether every row total of soft targets (float32 or float64, CPU) is 1 within the
    shared tolerance, or 0, compared through NumPy: five torch calls on a few hundred totals
    cost more than the sum itself. ``None`` without NumPy."""
    if _dense is None:
        return None
    return bool(_dense.sums_are_one(total.numpy() if isinstance(total, torch.Tensor) else total))


def on_host(kernel_name, x_view, y_view, *, reduction, with_grad, **options):
    """The NumPy small-call kernel ``kernel_name`` (``xce._fast._numpy._small``) on host views
    of tensors outside any graph, with its ``options``: ``(value, grad)`` as tensors, or
    ``None`` (the kernel declined: bad targets, a result that is not finite)."""
    kernel = getattr(_small, kernel_name)
    return _tensors(kernel(x_view, y_view, reduction=reduction, with_grad=with_grad, **options))


def probabilities_on_host(lane, y_view, p_view, **options):
    """The NumPy lane on probabilities (``xce._fast._numpy._lanes.plain_probabilities``) on
    host views of tensors outside any graph: ``(value, grad)`` as tensors, or ``None``."""
    return _tensors(_numpy_lanes.plain_probabilities(lane, y_view, p_view, **options))


def generic_on_host(kernel, y_view, x_view, **options):
    """The NumPy small call of a generic ``kernel`` (``xce._fast._numpy._generic_small``) on
    host views of tensors outside any graph: ``(value, grad)`` as tensors, or ``None``."""
    return _tensors(_generic.generic_small(kernel, y_view, x_view, **options))


def _tensors(result):
    """A NumPy kernel's ``(value, grad)`` as tensors sharing their memory, or ``None``."""
    if result is None:
        return None
    value, grad = result
    return torch.from_numpy(value), None if grad is None else torch.from_numpy(grad)


def checked_labels(labels_view, n_classes, ignore_index):
    """:func:`xce._fast._numpy._small.checked_labels` on a host view of labels."""
    return _small.checked_labels(labels_view, n_classes, ignore_index)
