"""The conformance matrix: one pytest parameter per row of ``xce._table.LOSSES``.

A contract test takes the ``loss`` fixture (``tests/conftest.py``) and runs once per loss,
on every backend; a new row of the table is covered by every such test without a line here,
unless it brings a new hyperparameter (then ``HYPERPARAMETERS`` must give it a test value,
and collection says so). A test that applies to some losses only narrows the parameters by
what the loss *is* (its target kind, the options it accepts)::

    @pytest.mark.parametrize("loss", losses(accepting="class_weight"), indirect=True)

The known failures of a row (``LossInfo.known_failures``: backend → reason) become a strict
xfail of that row's tests on that backend, with the backend and the reason in the report.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pytest
import reference
from helpers import labels, logits, soft_targets

from xce._table import LOSSES, LossInfo

__all__ = [
    "HYPERPARAMETERS",
    "Loss",
    "known_failure_mark",
    "loss_params",
    "losses",
    "mark_known_failure",
]

# The options every contract test knows how to set; anything else a loss takes is one of its
# hyperparameters and needs a test value below.
CONTRACT_OPTIONS = frozenset({
    "from_logits", "axis", "pos_weight", "class_weight", "ignore_index", "sample_weight",
    "label_smoothing", "where", "reduction", "eps", "validate",
    # Logits-only options off by default, tested in tests/test_softcap_z_loss.py.
    "softcap", "z_loss", "return_parts",
    # Class sharding over a group, tested in tests/test_class_shard.py and the torch / JAX
    # distributed tests.
    "class_shard",
})  # fmt: skip

# Non-trivial values (not the defaults, not the values that turn a loss into another one),
# and the bad values each must refuse: (value, exception type).
HYPERPARAMETERS = {"gamma": 1.5, "alpha": 0.25, "epsilon": 1.5}
BAD_HYPERPARAMETERS = {
    "gamma": [(-1.0, ValueError), (float("nan"), ValueError), (None, TypeError)],
    "alpha": [(1.5, ValueError), (-0.1, ValueError)],
    "epsilon": [(float("inf"), ValueError)],
}

N, C = 6, 4


@dataclass(frozen=True)
class Loss:
    """One row of the table as the suite sees it: its function, its reference and its data."""

    info: LossInfo

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def target(self) -> str:
        """ "binary" (element-wise, targets in [0, 1]), "soft" (rows over the class axis) or
        "labels" (integer class indices)."""
        return self.info.target

    @property
    def fn(self) -> Callable:
        return self.info.public

    @property
    def ref(self) -> Callable:
        """The float64 NumPy oracle of the same name in ``tests/reference.py``."""
        return getattr(reference, self.name)

    @cached_property
    def parameters(self) -> tuple[str, ...]:
        return tuple(inspect.signature(self.fn).parameters)[2:]

    def accepts(self, option: str) -> bool:
        return option in self.parameters

    @cached_property
    def hyper(self) -> dict:
        """The loss's own hyperparameters at their test values."""
        own = [p for p in self.parameters if p not in CONTRACT_OPTIONS]
        missing = [p for p in own if p not in HYPERPARAMETERS]
        if missing:
            raise LookupError(
                f"{self.name} takes {missing}: give each a test value in HYPERPARAMETERS "
                "(and its bad values in BAD_HYPERPARAMETERS) in tests/matrix.py"
            )
        return {p: HYPERPARAMETERS[p] for p in own}

    @property
    def classwise(self) -> bool:
        """Whether y_pred has a class axis that the loss sums over (not element-wise)."""
        return self.target != "binary"

    # -- data ---------------------------------------------------------------------------------

    def y_pred(self, seed, shape=(N, C), *, from_logits=True, axis=-1, scale=2.0) -> np.ndarray:
        """Logits, or probabilities (sigmoid element-wise, softmax along ``axis``)."""
        x = logits(seed, shape, scale=scale)
        if from_logits:
            return x
        if self.classwise:
            return reference.softmax(x, axis=axis)
        return reference.sigmoid(x)

    def y_true(self, seed, shape=(N, C), *, axis=-1) -> np.ndarray:
        """Targets for a ``y_pred`` of ``shape``: a mix of hard and soft binary targets, soft
        rows with zeros, or labels of the shape without the class axis."""
        if self.target == "binary":
            t = np.random.default_rng(seed).uniform(size=shape)
            flat = t.reshape(-1)
            flat[: flat.size // 2] = np.round(flat[: flat.size // 2])
            return t
        if self.target == "soft":
            return soft_targets(seed, shape, axis=axis)
        return labels(seed, self.sample_shape(shape, axis), shape[axis])

    def problem(self, seed, shape=(N, C), *, from_logits=True, axis=-1):
        """NumPy ``(y_true, y_pred)`` for a valid call."""
        y_pred = self.y_pred(seed, shape, from_logits=from_logits, axis=axis)
        return self.y_true(seed + 1, shape, axis=axis), y_pred

    def make_y_true(self, make, data):
        """Targets on the backend: int64 labels, else the fixture's floating dtype."""
        return make(data, "int64") if self.target == "labels" else make(data)

    def sample_shape(self, y_pred_shape, axis=-1) -> tuple[int, ...]:
        """S: the per-sample loss shape (``y_pred``'s without the class axis, element-wise for
        binary losses)."""
        if not self.classwise:
            return tuple(y_pred_shape)
        shape = list(y_pred_shape)
        del shape[axis]
        return tuple(shape)

    def call(self, y_true, y_pred, **options):
        """The public function with the loss's hyperparameters (overridable)."""
        return self.fn(y_true, y_pred, **{**self.hyper, **options})

    def expected(self, y_true, y_pred, **options):
        """The reference with the loss's hyperparameters (overridable)."""
        return self.ref(y_true, y_pred, **{**self.hyper, **options})

    def __str__(self) -> str:
        return self.name


ROWS = tuple(Loss(info) for info in LOSSES)


def losses(*, targets=None, accepting=None, rows=ROWS) -> list:
    """``pytest.param`` per row (id: the loss's name), optionally only the rows of the given
    target kinds and the rows that accept an option."""
    return [
        pytest.param(row, id=row.name)
        for row in rows
        if (targets is None or row.target in targets)
        and (accepting is None or row.accepts(accepting))
    ]


loss_params = losses


def known_failure_mark(info: LossInfo, backend: str):
    """The strict xfail of a known failure of ``info`` on ``backend``, or None."""
    reason = info.known_failures.get(backend)
    if reason is None:
        return None
    return pytest.mark.xfail(strict=True, reason=f"{info.name} on {backend}: {reason}")


def mark_known_failure(request, info: LossInfo, backend: str) -> None:
    """Mark the running test (``request``) with the row's known failure on ``backend``."""
    mark = known_failure_mark(info, backend)
    if mark is not None:
        request.applymarker(mark)
