"""What the CTC twins of :mod:`xce.compat` share: the label rule, the length rule, and the
poisoning of rows whose values could not be checked.

The frameworks read the labels of a CTC problem only up to each sequence's label length and
read nothing past it; they check neither that the labels index a class nor that they avoid
the blank (PyTorch reads out of bounds, Optax and Keras take a zero log-probability, and a
blank inside a label sequence is silently a path through the blank). The twins refuse both
on eager host data and give the row NaN elsewhere.
"""

from __future__ import annotations

import math

from .._array_api import device, index_dtype
from .._types import Array, Namespace
from ._common import checked, ensure, integral_labels

__all__ = [
    "check_lengths",
    "ctc_labels",
    "lengths_array",
    "poisoned",
    "within",
]


def lengths_array(xp: Namespace, lengths: object, like: Array, name: str) -> Array:
    """Lengths given as an array (of any library that ``like``'s takes), a tuple or a list,
    as a 1-D integer array of ``like``'s library and device."""
    on_device = device(like)
    if isinstance(lengths, (tuple, list)):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in lengths):
            raise TypeError(f"{name} must hold integers, got {lengths!r}")
        return xp.asarray(lengths, dtype=index_dtype(xp, on_device), device=on_device)
    a = xp.asarray(lengths, device=on_device) if not hasattr(lengths, "dtype") else lengths
    if not xp.isdtype(a.dtype, "integral"):
        raise TypeError(f"{name} must hold integers, got an array of {a.dtype}")
    return xp.astype(a, index_dtype(xp, on_device), copy=False)


def within(xp: Namespace, lengths: Array, size: int) -> Array:
    """(N, size) boolean: the positions before each row's length."""
    positions = xp.arange(size, dtype=lengths.dtype, device=device(lengths))
    return positions[None, :] < lengths[:, None]


def ctc_labels(
    xp: Namespace,
    labels: Array,
    label_lengths: Array,
    n_classes: int,
    blank: int,
    *,
    name: str,
    check: bool,
) -> tuple[Array, Array | None]:
    """``labels`` (N, S) as safe integer labels, and the rows to poison (``None``: none).

    Within each row's length a label must index a class other than the blank: on eager host
    data (``check``) anything else is a ``ValueError``; elsewhere the entry is replaced by a
    harmless class and its row is returned for poisoning. Whole floats are labels (Keras
    casts to float); a fractional label is an error or a poisoned row, never truncated.
    Entries past the length are kept as given (the frameworks never read them as labels).
    """
    if labels.ndim != 2:
        raise ValueError(f"{name} must be 2-D (batch, max label length), got shape "
                         f"{tuple(labels.shape)}")  # fmt: skip
    labels = integral_labels(xp, labels, n_classes, ignore=None, name=name)
    used = within(xp, xp.astype(label_lengths, labels.dtype), labels.shape[1])
    wrong = used & ((labels < 0) | (labels >= n_classes) | (labels == blank))
    if check:
        ensure(
            xp, wrong,
            f"{name} holds a label outside [0, {n_classes}) or equal to the blank index "
            f"{blank} within its label length; labels are the classes 0..{n_classes - 1} "
            "other than the blank",
        )  # fmt: skip
        return labels, None
    harmless = xp.full_like(labels, (blank + 1) % max(n_classes, 1))
    return xp.where(wrong, harmless, labels), xp.any(wrong, axis=1)


def poisoned(xp: Namespace, loss: Array, bad: Array | None) -> Array:
    """``loss`` (N,) with NaN in the rows marked ``bad`` (a no-op for ``None``)."""
    if bad is None:
        return loss
    return xp.where(bad, xp.full_like(loss, math.nan), loss)


def check_lengths(
    xp: Namespace, lengths: Array, upper: int | Array, name: str, what: str
) -> Array | None:
    """0 ≤ lengths ≤ ``upper``: a ``ValueError`` on eager host data, else the bad rows."""
    bad = (lengths < 0) | (lengths > upper)
    if checked(lengths):
        ensure(xp, bad, f"{name} must hold values in [0, {what}], got {lengths}")
        return None
    return bad
