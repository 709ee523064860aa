"""Small calls on probabilities (``from_logits=False``, Keras's default): on NumPy and CPU torch
tensors outside any graph these take the short paths of ``xce._fast._numpy._probabilities``
instead of the full path. Every reduction, the gradient, label smoothing, ``ignore_index``,
sample weights, predictions the clip cuts (0 and 1), n-d inputs and one sample, against the
float64 oracle in ``tests/reference.py`` with the dtype's own ``eps``; what the lanes decline
must end as the full path ends it. On the other backends the same calls run the full path and
must give the same numbers. Run with ``XCE_DISABLE_FAST_PATHS=1`` too (nox does).
"""

from __future__ import annotations

import numpy as np
import pytest

import xce
from tests import reference
from tests.helpers import assert_close, dtype_name, forbid_the_full_path, to_numpy

SHAPES = [(64, 10), (3, 4, 7), (9,)]
SHAPE_IDS = ["64x10", "3x4x7", "one-sample"]


def _problem(shape, seed):
    """float32-exact probabilities (rows summing to 1; some entries exactly 0, one exactly 1,
    which the clip cuts), labels (one on a class of probability 0), soft and binary targets,
    binary predictions (0 and 1 among them)."""
    rng = np.random.default_rng(seed)
    p = reference.softmax(rng.normal(scale=2.0, size=shape))
    flat = p.reshape(-1, shape[-1])
    flat[0] = 0.0
    flat[0, 0] = 1.0  # a certain row: its other classes at 0
    p = p.astype(np.float32).astype(np.float64)
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    labels.reshape(-1)[0] = 1  # a label on a class of probability 0: -log eps
    soft = reference.softmax(rng.normal(size=shape))
    binary = (rng.random(shape) < 0.4).astype(np.float64)
    pb = rng.uniform(size=shape).astype(np.float32).astype(np.float64)
    pb.reshape(-1)[:3] = [0.0, 1.0, 0.5]
    return p, labels, soft, binary, pb


def _tolerance(xp, dtype):
    return {"rtol": 2e-5, "atol": 2e-6} if dtype == xp.float32 else {"rtol": 1e-12, "atol": 1e-14}


def _cases(p, labels, soft, binary, pb, smoothing, eps):
    """(loss, targets, predictions, its oracle, ∂ℓ/∂p per entry, the mean's divisor)."""
    n_classes = p.shape[-1]
    rows = p.size // n_classes
    q_sparse = (1 - smoothing) * np.eye(n_classes)[labels] + smoothing / n_classes
    q_soft = (1 - smoothing) * soft + smoothing / n_classes
    q_binary = (1 - smoothing) * binary + smoothing / 2
    inside = p >= eps
    clipped = np.clip(pb, eps, 1 - eps)
    inside_binary = (pb >= eps) & (pb <= 1 - eps)
    binary_grad = ((1 - q_binary) / (1 - clipped) - q_binary / clipped) * inside_binary
    sparse_oracle = reference.sparse_categorical_cross_entropy
    return [
        (xce.sparse_categorical_cross_entropy, labels, p, sparse_oracle,
         np.where(inside, -q_sparse / np.maximum(p, eps), 0.0), rows),
        (xce.categorical_cross_entropy, soft, p, reference.categorical_cross_entropy,
         np.where(inside, -q_soft / np.maximum(p, eps), 0.0), rows),
        (xce.binary_cross_entropy, binary, pb, reference.binary_cross_entropy, binary_grad,
         pb.size),
    ]  # fmt: skip


def _target(make, y, labels):
    return make(y, "int64") if y is labels else make(y)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_probabilities_match_the_oracle(xp, make, dtype, device, shape, reduction, smoothing):
    """-Σ q·log clip(p), clip to [eps, 1] ([eps, 1 - eps] for binary) with the dtype's
    machine epsilon; the gradient -q/p, 0 where the clip cut."""
    p, labels, soft, binary, pb = _problem(shape, seed=3)
    tol = _tolerance(xp, dtype)
    compute = dtype_name(xp, dtype)
    eps = float(np.finfo(compute).eps)
    options = {"reduction": reduction, "label_smoothing": smoothing}
    for fn, y, pred, oracle, per_entry, divisor in _cases(p, labels, soft, binary, pb,
                                                           smoothing, eps):  # fmt: skip
        expected = oracle(y, pred, compute_dtype=compute, **options)
        value = fn(_target(make, y, labels), make(pred), **options)
        assert_close(value, expected, xp=xp, dtype=dtype, device=device, **tol)
        if reduction == "none":
            continue  # value_and_grad takes a scalar loss
        value, grad = xce.value_and_grad(fn)(_target(make, y, labels), make(pred), **options)
        assert_close(value, expected, xp=xp, dtype=dtype, device=device, **tol)
        expected_grad = per_entry / (divisor if reduction == "mean" else 1)
        assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device, **tol)


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_larger_probabilities_match_the_oracle(xp, make, dtype, device, reduction):
    """(300, 130), past the 1024 entries where the binary loss's log1p(-p̂) is formed from
    NumPy's vectorised log: a confident right answer keeps its small loss -log(1 - p) ≈ p
    (p = 1e-5 would lose 0.6% of it in float32 as log(1 - p))."""
    p, labels, soft, binary, pb = _problem((300, 130), seed=17)
    pb.reshape(-1)[3:1000:2] = 1e-5
    binary.reshape(-1)[3:1000:2] = 0.0
    tol = _tolerance(xp, dtype)
    compute = dtype_name(xp, dtype)
    eps = float(np.finfo(compute).eps)
    for fn, y, pred, oracle, per_entry, divisor in _cases(p, labels, soft, binary, pb, 0.0,
                                                           eps):  # fmt: skip
        expected = oracle(y, pred, compute_dtype=compute, reduction=reduction)
        value = fn(_target(make, y, labels), make(pred), reduction=reduction)
        assert_close(value, expected, xp=xp, dtype=dtype, device=device, **tol)
        if reduction == "none" and fn is xce.binary_cross_entropy:  # the small losses, relative
            small = np.asarray(to_numpy(value), dtype=np.float64).reshape(-1)[3:1000:2]
            np.testing.assert_allclose(small, expected.reshape(-1)[3:1000:2], rtol=tol["rtol"])
        if reduction == "mean":
            _, grad = xce.value_and_grad(fn)(_target(make, y, labels), make(pred))
            assert_close(grad, per_entry / divisor, xp=xp, dtype=dtype, device=device, **tol)


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_probabilities_with_ignore_index_and_sample_weights(xp, make, dtype, device, reduction):
    """Ignored labels count for nothing (their rows may hold anything that is a probability
    row); sample weights scale each sample's loss, the mean over Σ s."""
    p, labels, soft, _, _ = _problem((64, 10), seed=5)
    labels[::3] = -100
    tol = _tolerance(xp, dtype)
    compute = dtype_name(xp, dtype)
    options = {"reduction": reduction, "ignore_index": -100}
    expected = reference.sparse_categorical_cross_entropy(labels, p, compute_dtype=compute,
                                                          **options)  # fmt: skip
    value = xce.sparse_categorical_cross_entropy(make(labels, "int64"), make(p), **options)
    assert_close(value, expected, xp=xp, dtype=dtype, device=device, **tol)
    weights = np.linspace(0.0, 2.0, 64)
    expected = reference.categorical_cross_entropy(
        soft, p, compute_dtype=compute, reduction=reduction, sample_weight=weights
    )
    value = xce.categorical_cross_entropy(
        make(soft), make(p), reduction=reduction, sample_weight=make(weights)
    )
    assert_close(value, expected, xp=xp, dtype=dtype, device=device, **tol)


def test_logits_given_as_probabilities_still_raise(xp, make):
    """The lanes decline predictions outside [0, 1] or rows that do not sum to 1, and targets
    outside [0, 1]; the full path then raises its errors (with its from_logits hint).
    ``validate=True`` reads the values on every backend."""
    p, labels, soft, binary, pb = _problem((64, 10), seed=7)
    logits = np.log(p + 1e-3)
    check = {"validate": True}
    with pytest.raises(ValueError, match="from_logits=True"):
        xce.sparse_categorical_cross_entropy(make(labels, "int64"), make(logits), **check)
    with pytest.raises(ValueError, match="from_logits=True"):
        xce.binary_cross_entropy(make(binary), make(pb * 3 - 1), **check)
    with pytest.raises(ValueError, match="y_pred"):
        xce.categorical_cross_entropy(make(soft), make(p * 0.5), **check)
    with pytest.raises(ValueError, match="y_true"):
        xce.binary_cross_entropy(make(binary * 2), make(pb), **check)
    bad = labels.copy()
    bad[4] = 10
    with pytest.raises(ValueError, match="labels"):
        xce.sparse_categorical_cross_entropy(make(bad, "int64"), make(p), **check)


def test_calls_on_probabilities_take_the_plain_lane(xp, make, backend, monkeypatch):
    """On NumPy and CPU torch the full path's prepare step is never reached."""
    forbid_the_full_path(monkeypatch, backend)
    p, labels, soft, binary, pb = _problem((64, 10), seed=11)
    for fn, y, pred in ((xce.sparse_categorical_cross_entropy, labels, p),
                        (xce.categorical_cross_entropy, soft, p),
                        (xce.binary_cross_entropy, binary, pb)):  # fmt: skip
        fn(_target(make, y, labels), make(pred), label_smoothing=0.1)
        xce.value_and_grad(fn)(_target(make, y, labels), make(pred))


def test_torch_probabilities_in_a_graph_keep_their_graph(backend):
    """A tensor that autograd records takes the full path: backward() reaches it with the
    clipped gradient."""
    if backend != "torch":
        pytest.skip(f"{backend}: autograd is torch's")
    import torch

    _, _, soft, _, _ = _problem((64, 10), seed=13)
    # away from the clip's ends: at p = 1 exactly autograd takes half of minimum(p, 1)'s tie
    p = reference.softmax(np.random.default_rng(13).normal(size=(64, 10)))
    pred = torch.tensor(p, requires_grad=True)
    xce.categorical_cross_entropy(torch.tensor(soft), pred).backward()
    eps = float(np.finfo(np.float64).eps)
    expected = np.where(p >= eps, -soft / np.maximum(p, eps), 0.0) / 64
    np.testing.assert_allclose(pred.grad.numpy(), expected, rtol=1e-12, atol=1e-14)
