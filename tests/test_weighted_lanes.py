"""Sample weights and ``where`` masks on logits: on NumPy and CPU torch the plain lanes answer
these calls (``xce._fast._weighted`` applies the shared rule to the lane's per-sample losses)
instead of the full path. Every reduction, the gradient, prefix-shaped weights, n-d inputs
and both sizes of lane (a short path's and the blocked kernels') against the float64 oracle
in ``tests/reference.py``; what the lanes decline must end as the full path ends it. On the
other backends the same calls run the full path and must give the same numbers. Run with
``XCE_DISABLE_FAST_PATHS=1`` too (nox does).
"""

from __future__ import annotations

import numpy as np
import pytest

import xce
from tests import reference
from tests.helpers import assert_close, forbid_the_full_path
from xce._fast import _config

REDUCTIONS = ["none", "sum", "mean"]
# a short path's size, one past it (the blocked kernels), and n-d logits
SHAPES = [(64, 10), (300, 130), (3, 4, 7)]
SHAPE_IDS = ["64x10", "300x130", "3x4x7"]


def _problem(shape, seed):
    """float32-exact logits, labels, soft and binary targets, weights (some 0, one negative:
    the rule does not refuse them) and a mask."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=3.0, size=shape).astype(np.float32).astype(np.float64)
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    soft = reference.softmax(rng.normal(size=shape))
    binary = (rng.random(shape) < 0.4).astype(np.float64)
    # of the logits' shape: cut to a loss's batch shape, or a prefix of it, by _check
    weights = rng.uniform(0.0, 2.0, size=shape).astype(np.float32).astype(np.float64)
    weights.reshape(-1)[::7] = 0.0
    weights.reshape(-1)[1] = -0.5
    mask = rng.random(shape) < 0.7
    return x, labels, soft, binary, weights, mask


def _tolerance(xp, dtype):
    return {"rtol": 2e-5, "atol": 2e-6} if dtype == xp.float32 else {"rtol": 1e-12, "atol": 1e-14}


def _cases(x, labels, soft, binary, smoothing):
    """(loss, targets, their oracle, ∂ℓ/∂x per entry without weights, whether its batch shape
    has a class axis beyond it)."""
    n_classes = x.shape[-1]
    q_sparse = (1 - smoothing) * np.eye(n_classes)[labels] + smoothing / n_classes
    q_soft = (1 - smoothing) * soft + smoothing / n_classes
    q_binary = (1 - smoothing) * binary + smoothing / 2
    return [
        (xce.sparse_categorical_cross_entropy, labels, reference.sparse_categorical_cross_entropy,
         reference.softmax(x) - q_sparse, True),
        (xce.categorical_cross_entropy, soft, reference.categorical_cross_entropy,
         reference.softmax(x) - q_soft, True),
        (xce.binary_cross_entropy, binary, reference.binary_cross_entropy,
         reference.sigmoid(x) - q_binary, False),
    ]  # fmt: skip


def _expected_grad(per_entry, u, reduction, class_axis):
    """∂/∂x of the reduced loss: u (broadcast over the batch shape) times the per-entry
    gradient, over Σ u for the mean (0 over nothing)."""
    batch_shape = per_entry.shape[:-1] if class_axis else per_entry.shape
    u = np.broadcast_to(u.reshape(u.shape + (1,) * (len(batch_shape) - u.ndim)), batch_shape)
    scale = u[..., None] if class_axis else u
    if reduction == "mean":
        count = u.sum()
        scale = scale / count if count else np.zeros_like(scale)
    return per_entry * scale


def _check(xp, make, dtype, device, shape, reduction, smoothing, *, weight, mask, prefix=None):
    """Every loss on ``shape`` with sample weights and/or a mask (cut to their first
    ``prefix`` batch axes), value and gradient, against the oracle."""
    x, labels, soft, binary, weights, where = _problem(shape, seed=11)
    tol = _tolerance(xp, dtype)
    for fn, y, oracle, per_entry, class_axis in _cases(x, labels, soft, binary, smoothing):
        batch_ndim = x.ndim - 1 if class_axis else x.ndim
        cut = batch_ndim if prefix is None else prefix
        s = weights[(slice(None),) * cut + (0,) * (weights.ndim - cut)] if weight else None
        v = where[(slice(None),) * cut + (0,) * (where.ndim - cut)] if mask else None
        options = {"from_logits": True, "reduction": reduction, "label_smoothing": smoothing}
        expected = oracle(y, x, sample_weight=s, where=v, **options)
        given = {
            "sample_weight": None if s is None else make(s),
            "where": None if v is None else make(v, "bool"),
        }
        target = make(y, "int64") if y is labels else make(y)
        value = fn(target, make(x), **given, **options)
        assert_close(value, expected, xp=xp, dtype=dtype, device=device, **tol)
        if reduction == "none":
            continue  # value_and_grad takes a scalar loss
        value, grad = xce.value_and_grad(fn)(target, make(x), **given, **options)
        u = np.ones(x.shape[:cut])
        if s is not None:
            u = u * s
        if v is not None:
            u = np.where(v, u, 0.0)
        assert_close(value, expected, xp=xp, dtype=dtype, device=device, **tol)
        assert_close(grad, _expected_grad(per_entry, u, reduction, class_axis), xp=xp,
                     dtype=dtype, device=device, **tol)  # fmt: skip


# label smoothing reaches the lane the same way for every reduction: four pairs, not six
@pytest.mark.parametrize(
    ("reduction", "smoothing"), [("none", 0.0), ("sum", 0.1), ("mean", 0.0), ("mean", 0.1)]
)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_sample_weights_match_the_oracle(xp, make, dtype, device, shape, reduction, smoothing):
    """s·ℓ, Σ s·ℓ, Σ s·ℓ / Σ s; the gradient's rows scaled alike (weights of 0 and below
    included)."""
    _check(xp, make, dtype, device, shape, reduction, smoothing, weight=True, mask=False)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_where_masks_match_the_oracle(xp, make, dtype, device, shape, reduction):
    """Masked entries count for nothing: loss and gradient 0, the mean over the others."""
    _check(xp, make, dtype, device, shape, reduction, 0.0, weight=False, mask=True)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_weights_and_masks_of_prefix_shapes_match_the_oracle(xp, make, dtype, device, reduction):
    """One weight and one mask entry per leading index, repeated over the other batch axes
    (the binary loss's batch shape is the logits' own): each counts once per entry."""
    _check(xp, make, dtype, device, (3, 4, 7), reduction, 0.0, weight=True, mask=True, prefix=1)
    _check(xp, make, dtype, device, (3, 4, 7), reduction, 0.1, weight=True, mask=False, prefix=0)


def test_a_mean_over_nothing_is_zero(xp, make, dtype, device):
    """Every entry masked, or weights that sum to 0: the mean is 0, and so is its gradient."""
    x, labels, soft, binary, _, _ = _problem((64, 10), seed=13)
    nothing = [
        {"where": make(np.zeros(64, bool), "bool")},
        {"sample_weight": make(np.r_[np.ones(32), -np.ones(32)])},
    ]
    for fn, y, _, _, _ in _cases(x, labels, soft, binary, 0.0):
        target = make(y, "int64") if y is labels else make(y)
        for given in nothing:
            value = fn(target, make(x), from_logits=True, **given)
            assert_close(value, 0.0, xp=xp, dtype=dtype, device=device)
            value, grad = xce.value_and_grad(fn)(target, make(x), from_logits=True, **given)
            assert_close(value, 0.0, xp=xp, dtype=dtype, device=device)
            assert_close(grad, np.zeros_like(x), xp=xp, dtype=dtype, device=device)


def test_masked_rows_may_hold_nan_logits(xp, make, dtype, device):
    """A masked row's logits may be anything: the lane declines the NaN it meets, and the full
    path's mask makes the row count for nothing."""
    x, labels, _, _, weights, where = _problem((64, 10), seed=17)
    weights, where = weights[:, 0], where[:, 0].copy()
    where[5] = False
    x[5, 2] = np.nan
    options = {"from_logits": True, "sample_weight": weights}
    expected = reference.sparse_categorical_cross_entropy(labels, x, where=where, **options)
    value = xce.sparse_categorical_cross_entropy(
        make(labels, "int64"), make(x), where=make(where, "bool"),
        **{**options, "sample_weight": make(weights)},
    )  # fmt: skip
    assert_close(value, expected, xp=xp, dtype=dtype, device=device, **_tolerance(xp, dtype))


def test_weights_the_lanes_decline_still_raise(xp, make):
    """A weight shaped (N, 1) for losses (N,) is never broadcast, and a mask that is not
    boolean is refused: the lanes pass them to the full path, which raises."""
    x, labels, _, _, weights, where = _problem((64, 10), seed=19)
    weights, where = weights[:, 0], where[:, 0]
    fn = xce.sparse_categorical_cross_entropy
    with pytest.raises(ValueError, match="sample_weight"):
        fn(make(labels, "int64"), make(x), from_logits=True, sample_weight=make(weights[:, None]))
    with pytest.raises(TypeError, match="where"):
        fn(make(labels, "int64"), make(x), from_logits=True, where=make(where.astype(float)))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_value_and_grad_past_the_weighted_lanes_size(xp, make, dtype, device, monkeypatch,
                                                     reduction):  # fmt: skip
    """Past ``WEIGHTED_LANE_BYTES`` (here set below the input's size) value_and_grad takes the
    full path, which folds the weights into its kernel: the same numbers."""
    monkeypatch.setattr(_config, "WEIGHTED_LANE_BYTES", 1024)
    _check(xp, make, dtype, device, (64, 10), reduction, 0.0, weight=True, mask=True)


def test_weighted_calls_take_the_plain_lane(xp, make, backend, monkeypatch):
    """On NumPy and CPU torch the full path's prepare step is never reached."""
    forbid_the_full_path(monkeypatch, backend)
    x, labels, soft, binary, weights, where = _problem((64, 10), seed=23)
    given = {"sample_weight": make(weights[:, 0]), "where": make(where[:, 0], "bool")}
    for fn, y, _, _, _ in _cases(x, labels, soft, binary, 0.0):
        target = make(y, "int64") if y is labels else make(y)
        fn(target, make(x), from_logits=True, label_smoothing=0.1, **given)
        xce.value_and_grad(fn)(target, make(x), from_logits=True, **given)


def test_torch_sample_weights_in_a_graph_get_their_gradient(backend):
    """Sample weights that require grad (learned weights): d(Σ s·ℓ / Σ s)/ds_i =
    (ℓ_i - mean) / Σ s, and the logits' gradient as without a graph."""
    if backend != "torch":
        pytest.skip(f"{backend}: autograd is torch's")
    import torch

    x, labels, _, _, _, _ = _problem((64, 10), seed=29)
    s = np.random.default_rng(29).uniform(0.5, 1.5, size=64)
    logits = torch.tensor(x, requires_grad=True)
    weights = torch.tensor(s, requires_grad=True)
    value = xce.sparse_categorical_cross_entropy(
        torch.as_tensor(labels), logits, from_logits=True, sample_weight=weights
    )
    value.backward()
    per_sample = reference.sparse_categorical_cross_entropy(
        labels, x, from_logits=True, reduction="none"
    )
    mean = (s * per_sample).sum() / s.sum()
    np.testing.assert_allclose(value.item(), mean, rtol=1e-12)
    np.testing.assert_allclose(weights.grad.numpy(), (per_sample - mean) / s.sum(), rtol=1e-10)
    expected = (reference.softmax(x) - np.eye(10)[labels]) * (s / s.sum())[:, None]
    np.testing.assert_allclose(logits.grad.numpy(), expected, rtol=1e-10, atol=1e-14)
