"""Small calls of the losses without a native kernel (the focal losses, poly-1): on NumPy and
CPU torch tensors outside any graph their generic kernel runs directly after the full path's
value checks (``xce._fast._numpy._generic_small``). Values against the float64 oracle in
``tests/reference.py``, gradients against its central differences, on logits and on
probabilities, every reduction, with sample weights and masks; what the lane declines must
end as the full path ends it. On the other backends the same calls run the full path and
must give the same numbers. Run with ``XCE_DISABLE_FAST_PATHS=1`` too (nox does).
"""

from __future__ import annotations

import numpy as np
import pytest

import xce
from tests import reference
from tests.helpers import assert_close, central_difference, dtype_name, forbid_the_full_path


def _problem(seed, shape=(16, 5)):
    """float32-exact logits, probabilities (away from 0 and 1: central differences stay inside
    the clip), soft and binary targets."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=2.0, size=shape).astype(np.float32).astype(np.float64)
    # flatter than softmax(x): a central difference of -log p errs by about step²/(3p²)
    p = reference.softmax(x / 2)
    pb = reference.sigmoid(x)
    soft = reference.softmax(rng.normal(size=shape))
    binary = (rng.random(shape) < 0.4).astype(np.float64)
    return x, p, pb, soft, binary


# (loss, oracle, binary targets, options)
LOSSES = [
    (xce.categorical_focal_cross_entropy, reference.categorical_focal_cross_entropy, False,
     {"gamma": 2.0, "alpha": 0.25}),
    (xce.categorical_focal_cross_entropy, reference.categorical_focal_cross_entropy, False,
     {"gamma": 0.5, "label_smoothing": 0.1}),
    (xce.binary_focal_cross_entropy, reference.binary_focal_cross_entropy, True,
     {"gamma": 2.0, "alpha": 0.25}),
    (xce.poly1_cross_entropy, reference.poly1_cross_entropy, False, {"epsilon": 1.0}),
]  # fmt: skip
LOSS_IDS = ["focal", "focal-smoothed", "binary-focal", "poly1"]


def _tolerance(xp, dtype):
    return {"rtol": 2e-5, "atol": 2e-6} if dtype == xp.float32 else {"rtol": 1e-11, "atol": 1e-13}


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probabilities"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize(("fn", "oracle", "binary", "options"), LOSSES, ids=LOSS_IDS)
def test_small_calls_match_the_oracle(xp, make, dtype, device, fn, oracle, binary, options,
                                      reduction, from_logits):  # fmt: skip
    """The value, and the gradient of the reduced loss against the oracle's central
    differences (in float64, on the float32-exact inputs)."""
    x, p, pb, soft, targets = _problem(seed=3)
    y = targets if binary else soft
    pred = x if from_logits else (pb if binary else p)
    compute = dtype_name(xp, dtype)
    call = {"from_logits": from_logits, "reduction": reduction, **options}
    expected = oracle(y, pred, compute_dtype=compute, **call)
    tol = _tolerance(xp, dtype)
    assert_close(fn(make(y), make(pred), **call), expected, xp=xp, dtype=dtype, device=device,
                 **tol)  # fmt: skip
    if reduction == "none":
        return  # value_and_grad takes a scalar loss
    value, grad = xce.value_and_grad(fn)(make(y), make(pred), **call)
    assert_close(value, expected, xp=xp, dtype=dtype, device=device, **tol)

    def total(a):
        return float(oracle(y, a, compute_dtype=compute, **call))

    numeric = central_difference(total, pred)
    assert_close(grad, numeric, xp=xp, dtype=dtype, device=device, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(("fn", "oracle", "binary", "options"), LOSSES, ids=LOSS_IDS)
def test_small_calls_with_weights_and_masks_match_the_oracle(xp, make, dtype, device, fn,
                                                             oracle, binary, options):  # fmt: skip
    """Sample weights and a mask over the samples: Σ s·ℓ over the unmasked, over Σ s."""
    x, _, _, soft, targets = _problem(seed=5)
    y = targets if binary else soft
    rng = np.random.default_rng(5)
    weights, mask = rng.uniform(0.0, 2.0, size=16), rng.random(16) < 0.7
    call = {"from_logits": True, **options}
    expected = oracle(y, x, compute_dtype=dtype_name(xp, dtype), sample_weight=weights,
                      where=mask, **call)  # fmt: skip
    value = fn(make(y), make(x), sample_weight=make(weights), where=make(mask, "bool"), **call)
    assert_close(value, expected, xp=xp, dtype=dtype, device=device, **_tolerance(xp, dtype))


def test_what_the_lane_declines_still_raises(xp, make):
    """Hyperparameters out of range, bad targets and probabilities that are not are refused
    by the full path (``validate=True`` reads values on every backend)."""
    x, _, _, soft, binary = _problem(seed=7)
    with pytest.raises(ValueError, match="gamma"):
        xce.categorical_focal_cross_entropy(make(soft), make(x), from_logits=True, gamma=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        xce.binary_focal_cross_entropy(make(binary), make(x), from_logits=True, alpha=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        xce.poly1_cross_entropy(make(soft), make(x), from_logits=True, epsilon=float("nan"))
    with pytest.raises(ValueError, match="y_true"):
        xce.binary_focal_cross_entropy(make(binary * 2), make(x), from_logits=True,
                                       validate=True)  # fmt: skip
    with pytest.raises(ValueError, match="sum to 1"):
        xce.categorical_focal_cross_entropy(make(soft * 0.5), make(x), from_logits=True,
                                            validate=True)  # fmt: skip
    with pytest.raises(ValueError, match="from_logits=True"):
        xce.poly1_cross_entropy(make(soft), make(x), validate=True)  # logits as probabilities


def test_probabilities_given_as_logits_still_warn(xp, make, backend):
    """The lane declines a first row that looks like probabilities; the full path warns."""
    _, p, _, soft, _ = _problem(seed=11)
    with pytest.warns(UserWarning, match="probability distribution"):
        xce.categorical_focal_cross_entropy(make(soft), make(p), from_logits=True, validate=True)


def test_small_focal_and_poly1_calls_take_the_lane(xp, make, backend, monkeypatch):
    """On NumPy and CPU torch the full path's prepare step is never reached."""
    forbid_the_full_path(monkeypatch, backend)
    x, p, pb, soft, binary = _problem(seed=13)
    for fn, _, is_binary, options in LOSSES:
        y = binary if is_binary else soft
        fn(make(y), make(x), from_logits=True, **options)
        fn(make(y), make(pb if is_binary else p), **options)
        xce.value_and_grad(fn)(make(y), make(x), from_logits=True, **options)
