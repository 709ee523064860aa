"""The repository's seed examples, reproduced with xce.

Seed 003 (a tutorial on loss functions) works one MNIST-style example: the network output
``y`` below and the one-hot label ``t`` of class 2. Its ``cross_entropy_error`` adds
``delta = 1e-7`` inside the log, −Σ t·log(y + 1e-7), and prints 0.510825457099338; its
``mean_squared_error`` is 0.5·Σ(y − t)² = 0.0975.

Seed 004 (a Q&A on the cross-entropy family) warns that a softmax over a single output always
says "true": xce refuses C == 1 for the categorical losses and points at binary_cross_entropy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ref
from helpers import assert_close, to_numpy

import xce

Y = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]
T = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
DELTA = 1e-7
SEED_003_CE = 0.510825457099338  # printed by the seed
SEED_003_MSE = 0.0975  # 0.09750000000000003 printed by the seed


def test_seed_003_reference_agrees_with_the_printed_numbers():
    # The oracle itself against the seed's own formulas.
    y, t = np.array(Y), np.array(T, dtype=np.float64)
    assert -np.sum(t * np.log(y + DELTA)) == pytest.approx(SEED_003_CE, rel=1e-14)
    assert ref.categorical_cross_entropy(t, y + DELTA, eps=0.0, reduction="sum") == pytest.approx(
        SEED_003_CE, rel=1e-14
    )
    assert 0.5 * np.sum((y - t) ** 2) == pytest.approx(SEED_003_MSE, rel=1e-14)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_seed_003_cross_entropy_error_categorical(xp, make, dtype, device, reduction):
    # cross_entropy_error(y, t) = −Σ t log(y + δ): categorical CE on y + δ with clipping off.
    t = make(T)
    y_delta = make(np.array(Y) + DELTA)
    got = xce.categorical_cross_entropy(t, y_delta, reduction=reduction, eps=0.0)
    expected = SEED_003_CE if dtype == xp.float64 else -math.log(float(to_numpy(y_delta)[2]))
    assert_close(got, expected, xp=xp, dtype=dtype, device=device)
    assert_close(got, -math.log(0.6 + DELTA), xp=xp, dtype=dtype, device=device)


def test_seed_003_cross_entropy_error_batched_and_sparse(xp, make, dtype, device):
    # The same example as a batch of one, with the label as an integer and as a one-hot row.
    y_delta = make((np.array(Y) + DELTA)[None, :])
    expected = -math.log(0.6 + DELTA)
    sparse = xce.sparse_categorical_cross_entropy(make([2], "int64"), y_delta, eps=0.0)
    assert_close(sparse, expected, xp=xp, dtype=dtype, device=device)
    per_sample = xce.categorical_cross_entropy(make([T]), y_delta, eps=0.0, reduction="none")
    assert_close(per_sample, [expected], xp=xp, dtype=dtype, device=device)
    if dtype == xp.float64:
        assert abs(float(to_numpy(sparse)) - SEED_003_CE) <= 1e-12 * SEED_003_CE


def test_seed_003_without_delta_differs_by_the_delta(xp, make, dtype, device):
    # xce clips at eps instead of adding δ: on y itself the loss is exactly −log 0.6, which the
    # seed's δ shifts by ≈ δ/0.6.
    t, y = make(T), make(Y)
    got = xce.categorical_cross_entropy(t, y, reduction="sum")
    assert_close(got, -math.log(0.6), xp=xp, dtype=dtype, device=device)
    if dtype == xp.float64:
        diff = float(to_numpy(got)) - SEED_003_CE
        assert diff == pytest.approx(DELTA / 0.6, rel=1e-6)


def test_seed_003_mean_squared_error_example(xp, make, dtype, device):
    # A pin of the example data: E = ½ Σ (y − t)², computed with the namespace itself.
    y, t = make(Y), make(T)
    got = 0.5 * xp.sum((y - t) ** 2)
    assert_close(got, SEED_003_MSE, xp=xp, dtype=dtype, device=device)


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
@pytest.mark.parametrize("classes", [1, 0])
def test_seed_004_single_output_softmax_is_refused(xp, make, dtype, device, from_logits, classes):
    x = make(np.full((4, classes), 0.7))
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        xce.categorical_cross_entropy(make(np.ones((4, classes))), x, from_logits=from_logits)
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        xce.sparse_categorical_cross_entropy(
            make([0, 0, 0, 0], "int64"), x, from_logits=from_logits
        )


def test_seed_004_single_output_on_another_axis_is_refused(xp, make, dtype, device):
    # (N, 1, d) with axis=1 is still one class.
    x = make(np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        xce.sparse_categorical_cross_entropy(
            make(np.zeros((2, 3)), "int64"), x, axis=1, from_logits=True
        )


def test_seed_004_why_one_output_softmax_is_wrong(xp, make, dtype, device):
    # A softmax over one output is 1 whatever the score: the "always true" network of seed 004.
    # The single output belongs to the sigmoid / binary loss instead.
    scores = np.array([[-3.0], [0.0], [2.5]])
    x = make(scores)
    assert_close(xce.softmax(x, axis=-1), np.ones((3, 1)), xp=xp, dtype=dtype, device=device)
    y = np.array([[0.0], [1.0], [1.0]])
    got = xce.binary_cross_entropy(make(y), x, from_logits=True, reduction="none")
    expected = np.array([[np.log1p(np.exp(-3.0))], [np.log(2.0)], [np.log1p(np.exp(-2.5))]])
    assert_close(got, expected, xp=xp, dtype=dtype, device=device)
