"""The conformance matrix itself: one parameter per row, an oracle per row, data per target
kind, and a row's known failure turned into a strict xfail naming the backend and the reason."""

from __future__ import annotations

import dataclasses

import matrix
import numpy as np
import pytest
import reference

from xce._backends import BACKEND_NAMES
from xce._table import LOSSES, loss_info


def test_one_parameter_per_row_named_after_it():
    params = matrix.losses()
    assert [p.id for p in params] == [info.name for info in LOSSES]
    assert [p.values[0].info for p in params] == list(LOSSES)


def test_every_row_has_its_oracle_and_test_values(loss):
    assert loss.ref is getattr(reference, loss.name)
    assert loss.fn.__name__ == loss.name
    assert set(loss.hyper) <= set(matrix.BAD_HYPERPARAMETERS)
    y_true, y_pred = loss.problem(0, from_logits=False)
    assert y_pred.shape == (matrix.N, matrix.C)
    wanted = loss.sample_shape(y_pred.shape) if loss.target == "labels" else y_pred.shape
    assert y_true.shape == wanted
    assert np.all((y_pred >= 0) & (y_pred <= 1))
    if loss.target != "labels":
        assert np.all((y_true >= 0) & (y_true <= 1))
        assert np.any(y_true == 0) and np.any((y_true > 0) & (y_true < 1))
    np.asarray(loss.expected(y_true, y_pred, reduction="none"))  # the oracle takes them


def test_a_new_hyperparameter_needs_a_test_value():
    row = matrix.Loss(loss_info("binary_cross_entropy"))
    object.__setattr__(row, "parameters", ("from_logits", "temperature"))
    with pytest.raises(LookupError, match="temperature"):
        row.hyper  # noqa: B018


def test_narrowing_by_target_and_option():
    assert [p.id for p in matrix.losses(targets=("labels",))] == [
        "sparse_categorical_cross_entropy"
    ]
    with_class_weight = {p.id for p in matrix.losses(accepting="class_weight")}
    assert with_class_weight == {
        "categorical_cross_entropy",
        "sparse_categorical_cross_entropy",
        "poly1_cross_entropy",
    }


FAKE = dataclasses.replace(
    loss_info("binary_cross_entropy"),
    name="fake_loss",
    known_failures={"numpy": "a fake reason", "dask": "another fake reason"},
)


class _Request:
    def __init__(self):
        self.marks = []

    def applymarker(self, mark):
        self.marks.append(mark)


@pytest.mark.parametrize("backend_name", BACKEND_NAMES)
def test_known_failure_becomes_a_strict_xfail_naming_backend_and_reason(backend_name):
    request = _Request()
    matrix.mark_known_failure(request, FAKE, backend_name)
    reason = FAKE.known_failures.get(backend_name)
    if reason is None:
        assert request.marks == []
        return
    (mark,) = request.marks
    assert mark.name == "xfail"
    assert mark.kwargs["strict"] is True
    assert backend_name in mark.kwargs["reason"] and reason in mark.kwargs["reason"]
    assert "fake_loss" in mark.kwargs["reason"]


def test_rows_without_known_failures_are_not_marked(loss, backend):
    request = _Request()
    matrix.mark_known_failure(request, loss.info, backend)
    assert request.marks == [] or loss.info.known_failures.get(backend)


def test_known_failure_marks_the_running_test(request, backend):
    """End to end: a fake row failing everywhere is reported as xfailed on every backend
    (strict: were it to pass, the run would fail)."""
    failing_everywhere = dataclasses.replace(
        FAKE, known_failures={name: "fails by design" for name in BACKEND_NAMES}
    )
    matrix.mark_known_failure(request, failing_everywhere, backend)
    raise AssertionError("the fake row's known failure")
