"""The value rules of probabilities and soft targets: raised on checked data, NaN elsewhere.

One rule, two enforcements. A probability is in [0, 1]; a categorical row of probabilities
(``y_pred`` with ``from_logits=False``) sums to 1; a soft or one-hot target row sums to 1 (or
to 0: a row of zeros is "no target", loss 0, a common padding). On checked data (eager host
arrays, ``validate="auto"``; or ``validate=True``) a break raises and names the likely
mistake. Where values are not read (JAX, Dask, GPU arrays under ``validate="auto"``), the
entries that break the rule become NaN (:func:`unchecked_bad`), the policy of out-of-range
labels: never a clipped finite number. ``validate=False`` turns both off, the documented way
to pass deliberately unnormalised targets.

A row's sum is compared with 1 within a tolerance that depends on the dtype the values came in:
valid softmax outputs rounded to float16 or bfloat16 must pass (16 units in the last place),
and float32 or float64 data within 1e-4, which admits float32 softmax outputs of any
vocabulary size, cast up or not, while every usual mistake (sigmoid outputs, multi-hot rows,
logits) is off by far more.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

from ._array_api import array_namespace, device, is_eager_host
from ._types import Array, Namespace
from ._validation import read_flag

__all__ = [
    "ROW_SUM_FLOOR",
    "ROW_SUM_ULPS",
    "check_rows_sum_to_one",
    "first_row_may_be_probabilities",
    "row_sum_tolerance",
    "unchecked_bad",
    "warn_if_probabilities",
]

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
ROW_SUM_FLOOR = 1e-4
ROW_SUM_ULPS = 16


def row_sum_tolerance(xp: Namespace, dtype: Any) -> float:
    """How far from 1 a row of values that came in ``dtype`` may sum."""
    if xp.isdtype(dtype, "real floating"):
        return max(ROW_SUM_FLOOR, ROW_SUM_ULPS * float(xp.finfo(dtype).eps))
    return ROW_SUM_FLOOR  # integers and booleans sum exactly


def _off_rows(xp, a, tolerance, *, zero_allowed):
    """Rows (the last axis) whose sum is not 1 within ``tolerance`` (nor 0 if allowed)."""
    total = xp.sum(a, axis=-1)
    off = ~(xp.abs(total - 1) <= tolerance)  # NaN sums are off
    if zero_allowed:
        off = off & (total != 0)
    return off, total


def _host_float(a) -> float:
    """A 0-d array's value for a message (outside any autodiff graph; Dask computed)."""
    if hasattr(a, "detach"):
        a = a.detach()
    if hasattr(a, "compute"):
        a = a.compute()
    return float(a)


def _other_axis_hint(xp, a, axis, tolerance):
    """ ", did you mean axis=k?" where the rows of another axis all sum to 1."""
    for k in range(a.ndim):
        if k != axis and a.shape[k] > 1:
            total = xp.sum(a, axis=k)
            if read_flag(xp.all(xp.abs(total - 1) <= tolerance)):
                return f"; the sums along axis {k} are 1: did you mean axis={k}?"
    return ""


def check_rows_sum_to_one(
    xp: Namespace,
    a: Array,
    name: str,
    *,
    tolerance: float,
    valid: Array | None,
    caller_axis: int,
    caller_array: Array,
    target: bool,
) -> None:
    """Raise unless every included row of ``a`` (classes last) sums to 1 within tolerance
    (targets: or to 0). ``caller_array``/``caller_axis`` are the caller's layout, for the
    message's axis hint."""
    if a.ndim == 0 or a.shape[-1] == 0:
        return
    off, total = _off_rows(xp, a, tolerance, zero_allowed=target)
    if valid is not None:
        off = off & valid
    if not read_flag(xp.any(off)):
        return
    if hasattr(off, "compute"):  # Dask: values are read now anyway (unknown chunks allowed)
        off, total = off.compute(), total.compute()
        xp = array_namespace(off)
    flat_off = xp.reshape(off, (-1,))
    first = int(xp.argmax(xp.astype(flat_off, xp.int8)))
    row_sum = _host_float(xp.reshape(total, (-1,))[first])
    where = f"row {first} (in C order over the batch) sums to {row_sum:.6g}"
    hint = _other_axis_hint(xp, caller_array, caller_axis, tolerance)
    if target:
        raise ValueError(
            f"rows of {name} must sum to 1 (one-hot or soft targets) along axis "
            f"{caller_axis}, but {where}{hint}. A row with several ones is a multi-label "
            "target: use binary_cross_entropy (one sigmoid per class). To pass unnormalised "
            "targets on purpose, use validate=False"
        )
    raise ValueError(
        f"rows of {name} must sum to 1 along axis {caller_axis} (a softmax output), but "
        f"{where}{hint}. Independent sigmoid outputs go to binary_cross_entropy; raw "
        "scores need from_logits=True"
    )


def unchecked_bad(
    xp: Namespace,
    a: Array,
    *,
    tolerance: float | None,
    target: bool,
    rows: bool,
) -> Array:
    """Where ``a`` breaks the rule, for NaN: per entry (``rows=False``: values outside
    [0, 1]), or per row of the last axis (values outside [0, 1], or a sum off 1)."""
    if not rows:
        return ~((a >= 0) & (a <= 1))  # NaN is outside
    if any(n == 0 for n in a.shape):
        # Nothing to sum. (Dask fails to compute a row sum of an empty array in several chunks.)
        return xp.zeros(a.shape[:-1], dtype=xp.bool, device=device(a))
    off, _ = _off_rows(xp, a, tolerance, zero_allowed=target)
    # A row's minimum and maximum rather than a test of every entry: reductions without a
    # select in the loop, which XLA's CPU code runs several times faster. NaN propagates
    # through both, and fails the comparisons.
    inside = (xp.min(a, axis=-1) >= 0) & (xp.max(a, axis=-1) <= 1)
    return ~inside | off


def _first_frame_outside_xce() -> int:
    """The ``stacklevel`` that points a warning at the caller's own line."""
    frame: Any = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def warn_if_probabilities(xp: Namespace, x: Array, tolerance: float) -> None:
    """Warn when every row of "logits" (classes last) is a probability distribution.

    The first row decides whether to look further (O(C)): logits almost never pass it.
    """
    if x.ndim == 0 or x.shape[-1] == 0 or any(d == 0 for d in x.shape):
        return
    if is_eager_host(x) and hasattr(x, "tolist") and tolerance <= _FIRST_ROW_TOLERANCE:
        # NumPy arrays and CPU tensors: one read of the first row (a few µs, where the array
        # calls below cost ~40 on a torch tensor); looser than the rule, which follows
        if not first_row_may_be_probabilities(x):
            return
    elif not any(d != d for d in x.shape):  # the first row, where the sizes are known
        first = xp.reshape(x, (-1, x.shape[-1]))[0, :]
        if not read_flag(xp.all(first >= 0) & (xp.abs(xp.sum(first) - 1) <= tolerance)):
            return
    off, _ = _off_rows(xp, x, tolerance, zero_allowed=False)
    if read_flag(xp.all(x >= 0) & ~xp.any(off)):
        warnings.warn(
            "from_logits=True, but every row of y_pred is a probability distribution "
            "(values in [0, 1] that sum to 1): if the model ends in a softmax, pass "
            "from_logits=False (or, better for accuracy, drop the softmax and keep "
            "from_logits=True)",
            UserWarning,
            stacklevel=_first_frame_outside_xce(),
        )


def first_row_may_be_probabilities(x) -> bool:
    """Whether the first row of logits ``x`` (classes last; a NumPy array or a CPU tensor)
    could be a probability distribution: its first entry in [0, 1], then the row's minimum
    ≥ 0 and its sum near 1. Logits almost never pass (one entry read); a lane that sees
    such a row declines, and the full path checks every row and warns. The sparse and
    soft-target lanes ask it, each with the cheapest array it has (a NumPy view of a small
    tensor); :func:`warn_if_probabilities` too, on NumPy arrays and CPU tensors."""
    if x.ndim == 0 or 0 in x.shape:
        return False
    row = x[(0,) * (x.ndim - 1)]
    if getattr(row, "requires_grad", False):
        row = row.detach()
    if row.shape[0] <= _SHORT_ROW:  # one read of the row instead of three (a NaN sum fails)
        values = row.tolist()
        return (
            0.0 <= values[0] <= 1.0
            and min(values) >= 0.0
            and abs(sum(values) - 1.0) <= _FIRST_ROW_TOLERANCE
        )
    if not 0.0 <= float(row[0]) <= 1.0:
        return False
    return float(row.min()) >= 0.0 and abs(float(row.sum()) - 1.0) <= _FIRST_ROW_TOLERANCE


# Rows up to this long are read into Python at once by the look above.
_SHORT_ROW = 64
# The look's tolerance on the first row's sum: looser than any dtype's row rule up to float32
# (a row it turns away is turned away by the rule too).
_FIRST_ROW_TOLERANCE = 1e-2
