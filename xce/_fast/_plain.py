"""The step the backends' plain lanes share: a native soft-target or binary kernel called with
every option at its default, its targets checked block by block, and the loss reduced."""

from __future__ import annotations

import functools

from .. import _agnostic
from .._array_api import array_namespace

__all__ = ["first_row_may_be_probabilities", "generic_kernel", "run_plain"]


def first_row_may_be_probabilities(x) -> bool:
    """Whether the first row of logits ``x`` (classes last; a NumPy array or a CPU tensor)
    could be a probability distribution: its first entry in [0, 1], then the row's minimum
    ≥ 0 and its sum near 1. Logits almost never pass (one entry read); a lane that sees
    such a row declines, and the full path checks every row and warns. The sparse and
    soft-target lanes ask it, each with the cheapest array it has (a NumPy view of a small
    tensor)."""
    if x.ndim == 0 or 0 in x.shape:
        return False
    row = x[(0,) * (x.ndim - 1)]
    if getattr(row, "requires_grad", False):
        row = row.detach()
    if row.shape[0] <= _SHORT_ROW:  # one read of the row instead of three (a NaN sum fails)
        values = row.tolist()
        return 0.0 <= values[0] <= 1.0 and min(values) >= 0.0 and abs(sum(values) - 1.0) <= 1e-2
    if not 0.0 <= float(row[0]) <= 1.0:
        return False
    return float(row.min()) >= 0.0 and abs(float(row.sum()) - 1.0) <= 1e-2


# Rows up to this long are read into Python at once by the look above.
_SHORT_ROW = 64


@functools.cache
def generic_kernel(name, xp, smoothing=0.0):
    """The generic kernel ``name`` of ``xce._agnostic`` with every option at its default but
    label smoothing."""
    options = {
        "smoothing": smoothing,
        ("pos_weight" if name == "sigmoid_bce" else "class_weight"): None,
    }
    return functools.partial(getattr(_agnostic, name), xp, **options)


def run_plain(kernel, x, y, *, reduction, with_grad, grad_scale, reduce, smoothing=0.0,
              **options):  # fmt: skip
    """A plain lane's call of a native soft-target or binary ``kernel``, options at their
    defaults but label ``smoothing``, and the targets checked block by block: ``None`` if
    they leave [0, 1] (the full path then raises), else ``(reduce(loss, reduction), grad)``.
    Non-finite blocks go to the generic kernel; ``options`` go to the kernel as they are."""
    generic = generic_kernel(kernel.__name__, array_namespace(x), float(smoothing))
    # the native kernel takes the same options as its generic twin
    result = kernel(x, y, **generic.keywords, generic=generic, with_grad=with_grad,
                    grad_scale=grad_scale, check_targets=True, **options)  # fmt: skip
    if result is None:
        return None
    return reduce(result[0], reduction), result[1]
