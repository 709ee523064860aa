"""The prepare step's share of a class-sharded call (``class_shard=``): the values that span
every class, combined over the group before the kernels run.

The labels are the same on every member, so their checks need no communication. The mean's
denominator needs the label's class weight ω, held by one member; soft targets' row rules
(entries in [0, 1], rows summing to 1) need every member's slice. Each is one ``all_sum``
of per-row numbers, and every member then takes the same decision: a check that raised on
one member alone would leave the others waiting in their next collective.
"""

from __future__ import annotations

from typing import Any

from . import _agnostic as agnostic
from ._agnostic._sharded import owned_labels
from ._types import Array, Namespace
from ._value_checks import check_rows_sum_to_one

__all__ = ["shard_label_weight", "shard_target_rows"]


def shard_label_weight(
    xp: Namespace, class_weight: Array, labels: Array, shard: Any, start: Any
) -> Array:
    """ω = w[y] per entry, from the member holding each label's class (``labels`` global
    and in range; ``class_weight`` this member's slice)."""
    owned, local = owned_labels(xp, labels, start, class_weight.shape[0])
    picked = agnostic.class_weight_of(xp, class_weight, local)
    return shard.all_sum(xp.where(owned, picked, xp.zeros_like(picked)))


def shard_target_rows(
    xp: Namespace, y: Array, shard: Any, *, class_weight: Array | None, check: str | None,
    tolerance: float, valid: Array | None, caller_axis: int, caller_array: Array,
) -> tuple[Array | None, Array | None]:  # fmt: skip
    """The soft targets' row rules over the whole class axis, and ω = Σ_c w_c·y_c.

    ``y`` is this member's slice (classes last). ``check`` is ``"raise"`` (values read:
    every member raises the same error), ``"nan"`` (the rows that break a rule, returned
    for NaN) or ``None``. Returns ``(bad rows or None, ω or None)``, from one ``all_sum``.
    """
    columns = []
    if check is not None:
        outside = ~((y >= 0) & (y <= 1))  # NaN is outside
        columns += [xp.sum(y, axis=-1), xp.sum(xp.astype(outside, y.dtype), axis=-1)]
    if class_weight is not None:
        columns.append(xp.sum(class_weight * y, axis=-1))
    if not columns:
        return None, None
    sums = shard.all_sum(xp.stack(columns, axis=-1))
    omega = sums[..., -1] if class_weight is not None else None
    if check is None:
        return None, omega
    row_sum, outside = sums[..., 0], sums[..., 1] > 0
    if check == "nan":
        off = ~(xp.abs(row_sum - 1) <= tolerance) & (row_sum != 0)
        return outside | off, omega
    if valid is not None:
        outside = outside & valid
    if bool(xp.any(outside)):
        raise ValueError(
            "y_true (soft or one-hot targets) must lie in [0, 1]; a value outside it is in "
            "some member's slice of the classes. To pass such targets on purpose, use "
            "validate=False"
        )
    # The row sums with a trailing axis of 1 stand for the rows: the shared check then
    # raises its usual message on every member.
    check_rows_sum_to_one(
        xp, row_sum[..., None], "y_true", tolerance=tolerance, valid=valid,
        caller_axis=caller_axis, caller_array=caller_array, target=True,
    )  # fmt: skip
    return None, omega
