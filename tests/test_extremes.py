"""Pinned numerics at the extremes: huge offsets, infinities, clipped probabilities, half
precision with many classes, and reductions over nothing.

Every expected value is computed here in float64 NumPy from the *same* numbers the library sees
(inputs rounded to the dtype under test first), so only the library's own rounding remains.
"""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest
from helpers import assert_array_like, assert_close, to_numpy

import xce

VG_SPARSE = xce.value_and_grad(xce.sparse_categorical_cross_entropy)
VG_CATEGORICAL = xce.value_and_grad(xce.categorical_cross_entropy)
VG_BINARY = xce.value_and_grad(xce.binary_cross_entropy)

EPS32 = float(np.finfo(np.float32).eps)


def _f64(a) -> np.ndarray:
    return to_numpy(a).astype(np.float64)


def _eps_of(dtype_name: str) -> float:
    # float16 / bfloat16 are computed in float32 (the contract), so their eps is float32's.
    return float(np.finfo(np.float64 if dtype_name == "float64" else np.float32).eps)


def _dtype_name(xp, dtype) -> str:
    for name in ("float16", "bfloat16", "float32", "float64"):
        if getattr(xp, name, None) is not None and dtype == getattr(xp, name):
            return name
    raise AssertionError(dtype)


def _lse(x: np.ndarray) -> np.ndarray:
    """float64 logsumexp over the last axis; −inf for rows of all −inf."""
    m = np.max(x, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(x - m), axis=-1)) + m[..., 0]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _soft_ce_rows(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Σ_c q_c (lse(x) − x_c), terms with q_c = 0 dropped (even where x_c = −inf)."""
    lse = _lse(x)[..., None]
    with np.errstate(invalid="ignore"):
        terms = np.where(q > 0, q * (lse - x), 0.0)
    return terms.sum(axis=-1)


# ---------------------------------------------------------------------------------------------
# Softmax CE at offsets of 1e8 in float32
# ---------------------------------------------------------------------------------------------

# float32 spacing at 1e8 is 8: every entry below is exactly representable.
OFFSET_LOGITS = np.array(
    [
        [1e8, 1e8 + 8, 1e8 - 8],
        [1e8, 1e8 + 8, 1e8 - 8],
        [1e8, 1e8 + 8, 1e8 - 8],
        [-1e8 + 16, -1e8, -1e8 - 24],
        [3e8, 3e8 + 32, 3e8 - 32],
    ],
    dtype=np.float32,
)
OFFSET_LABELS = np.array([0, 1, 2, 2, 0])


def _offset_tolerance(expected):
    # rel 1e-6, and an absolute floor of 2 float32 ulps of 1: for the arg-max class the loss is
    # log(1 + e^-8 + ...) ≈ 3e-4, formed from a sum near 1 that float32 can only hold to ~6e-8.
    return np.abs(expected) * 1e-6 + 2 * EPS32


def _as_f32(xp, device, data, dtype_name="float32"):
    return xp.asarray(np.asarray(data), dtype=getattr(xp, dtype_name), device=device)


def test_offset_inputs_are_float32_exact():
    assert np.array_equal(OFFSET_LOGITS.astype(np.float64).astype(np.float32), OFFSET_LOGITS)
    assert OFFSET_LOGITS[0, 1] - OFFSET_LOGITS[0, 0] == 8  # not rounded away


@pytest.mark.parametrize("kind", ["sparse", "categorical"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_softmax_ce_at_offset_1e8_float32(kind, label_smoothing, xp, device):
    x = OFFSET_LOGITS
    onehot = np.eye(3)[OFFSET_LABELS]
    y_pred = _as_f32(xp, device, x)
    if kind == "sparse":
        y_true = _as_f32(xp, device, OFFSET_LABELS, "int64")
        fn = xce.sparse_categorical_cross_entropy
    else:
        y_true = _as_f32(xp, device, onehot)
        fn = xce.categorical_cross_entropy
    out = fn(y_true, y_pred, from_logits=True, reduction="none", label_smoothing=label_smoothing)
    assert_array_like(out, xp=xp, dtype=xp.float32, device=device, shape=(5,))

    x64 = x.astype(np.float64)
    q = (1 - label_smoothing) * onehot + label_smoothing / 3
    expected = _soft_ce_rows(x64, q)
    got = _f64(out)
    assert np.all(np.abs(got - expected) <= _offset_tolerance(expected)), (got, expected)
    # The label-0 example of the contract: log(1 + e^8 + e^-8).
    if label_smoothing == 0.0:
        np.testing.assert_allclose(got[0], np.log1p(np.exp(8.0) + np.exp(-8.0)), rtol=1e-6)

    total = fn(y_true, y_pred, from_logits=True, reduction="sum", label_smoothing=label_smoothing)
    assert abs(float(_f64(total)) - expected.sum()) <= expected.sum() * 1e-6 + 10 * EPS32


@pytest.mark.parametrize("kind", ["sparse", "categorical"])
def test_gradient_at_offset_1e8_float32(kind, xp, device):
    x = OFFSET_LOGITS
    onehot = np.eye(3)[OFFSET_LABELS]
    y_pred = _as_f32(xp, device, x)
    if kind == "sparse":
        loss, grad = VG_SPARSE(
            _as_f32(xp, device, OFFSET_LABELS, "int64"), y_pred, from_logits=True, reduction="sum"
        )
    else:
        loss, grad = VG_CATEGORICAL(
            _as_f32(xp, device, onehot), y_pred, from_logits=True, reduction="sum"
        )
    expected = _softmax(x.astype(np.float64)) - onehot
    assert_close(grad, expected, xp=xp, dtype=xp.float32, device=device, rtol=1e-5, atol=1e-6)
    expected_loss = _soft_ce_rows(x.astype(np.float64), onehot).sum()
    assert abs(float(_f64(loss)) - expected_loss) <= expected_loss * 1e-6 + 10 * EPS32


# ---------------------------------------------------------------------------------------------
# −inf logits
# ---------------------------------------------------------------------------------------------

NEG_INF_LOGITS = np.array([[2.0, -np.inf, 0.5, -np.inf], [-np.inf, 1.0, -np.inf, 0.0]])
NEG_INF_LABELS = np.array([0, 3])


@pytest.mark.parametrize("kind", ["sparse", "categorical"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_neg_inf_logits_on_non_target_classes(kind, reduction, xp, dtype, device, make):
    y_pred = make(NEG_INF_LOGITS)
    onehot = np.eye(4)[NEG_INF_LABELS]
    if kind == "sparse":
        y_true, vg = make(NEG_INF_LABELS, "int64"), VG_SPARSE
        fn = xce.sparse_categorical_cross_entropy
    else:
        y_true, vg = make(onehot), VG_CATEGORICAL
        fn = xce.categorical_cross_entropy
    x = _f64(y_pred)
    rows = _soft_ce_rows(x, onehot)
    assert np.all(np.isfinite(rows))
    assert_close(
        fn(y_true, y_pred, from_logits=True, reduction="none"),
        rows,
        xp=xp,
        dtype=dtype,
        device=device,
    )

    scale = 1.0 if reduction == "sum" else 1.0 / 2
    loss, grad = vg(y_true, y_pred, from_logits=True, reduction=reduction)
    assert_close(loss, rows.sum() * scale, xp=xp, dtype=dtype, device=device)
    g = _f64(grad)
    assert not np.any(np.isnan(g))
    assert np.all(g[np.isneginf(x)] == 0.0), "the gradient at −inf classes must be exactly 0"
    assert_close(grad, (_softmax(x) - onehot) * scale, xp=xp, dtype=dtype, device=device)


def test_soft_targets_zero_on_neg_inf_logits(xp, dtype, device, make):
    q = np.array([[0.7, 0.0, 0.3, 0.0], [0.0, 0.4, 0.0, 0.6]])
    y_pred = make(NEG_INF_LOGITS)
    y_true = make(q)
    out = xce.categorical_cross_entropy(y_true, y_pred, from_logits=True, reduction="none")
    expected = _soft_ce_rows(_f64(y_pred), _f64(y_true))
    assert np.all(np.isfinite(expected))
    assert_close(out, expected, xp=xp, dtype=dtype, device=device)
    loss, grad = VG_CATEGORICAL(y_true, y_pred, from_logits=True, reduction="sum")
    assert_close(loss, expected.sum(), xp=xp, dtype=dtype, device=device)
    g = _f64(grad)
    assert np.all(g[np.isneginf(_f64(y_pred))] == 0.0)
    q64 = _f64(y_true)
    assert_close(
        grad,
        _softmax(_f64(y_pred)) * q64.sum(-1, keepdims=True) - q64,
        xp=xp,
        dtype=dtype,
        device=device,
    )


@pytest.mark.parametrize("kind", ["sparse", "categorical"])
def test_label_smoothing_on_neg_inf_class_is_inf(kind, make):
    # Documented: smoothing puts mass ε/C on the −inf class, so the loss is +inf (not NaN).
    y_pred = make(NEG_INF_LOGITS)
    if kind == "sparse":
        out = xce.sparse_categorical_cross_entropy(
            make(NEG_INF_LABELS, "int64"),
            y_pred,
            from_logits=True,
            label_smoothing=0.1,
            reduction="none",
        )
    else:
        out = xce.categorical_cross_entropy(
            make(np.eye(4)[NEG_INF_LABELS]),
            y_pred,
            from_logits=True,
            label_smoothing=0.1,
            reduction="none",
        )
    got = _f64(out)
    assert np.all(np.isposinf(got)), got


# ---------------------------------------------------------------------------------------------
# Binary at ±inf and at huge logits
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_binary_infinite_logits_with_matching_targets(pos_weight, xp, dtype, device, make):
    y_pred = make([np.inf, -np.inf, np.inf, -np.inf])
    y_true = make([1.0, 0.0, 1.0, 0.0])
    out = xce.binary_cross_entropy(
        y_true, y_pred, from_logits=True, reduction="none", pos_weight=pos_weight
    )
    assert_close(out, np.zeros(4), xp=xp, dtype=dtype, device=device, rtol=0, atol=0)
    loss, grad = VG_BINARY(y_true, y_pred, from_logits=True, reduction="sum", pos_weight=pos_weight)
    assert_close(loss, 0.0, xp=xp, dtype=dtype, device=device, rtol=0, atol=0)
    assert_close(grad, np.zeros(4), xp=xp, dtype=dtype, device=device, rtol=0, atol=0)


def test_binary_infinite_logits_with_opposite_targets_are_inf(make):
    out = xce.binary_cross_entropy(
        make([1.0, 0.0]), make([-np.inf, np.inf]), from_logits=True, reduction="none"
    )
    assert np.all(np.isposinf(_f64(out)))


def _softplus(x):
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x):
    return np.where(
        x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x)))
    )


@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_binary_huge_logits(pos_weight, xp, dtype, device, make):
    y_pred = make([1e4, -1e4, 1e4, -1e4, 30.0, -30.0])
    y_true = make([1.0, 0.0, 0.0, 1.0, 0.5, 0.25])
    x, q = _f64(y_pred), _f64(y_true)
    pw = 1.0 if pos_weight is None else pos_weight
    expected = (1 - q) * _softplus(x) + pw * q * _softplus(-x)
    out = xce.binary_cross_entropy(
        y_true, y_pred, from_logits=True, reduction="none", pos_weight=pos_weight
    )
    assert np.all(np.isfinite(_f64(out)))
    assert_close(out, expected, xp=xp, dtype=dtype, device=device)
    loss, grad = VG_BINARY(y_true, y_pred, from_logits=True, reduction="sum", pos_weight=pos_weight)
    assert_close(loss, expected.sum(), xp=xp, dtype=dtype, device=device)
    expected_grad = (1 - q) * _sigmoid(x) - pw * q * _sigmoid(-x)
    assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device)


# ---------------------------------------------------------------------------------------------
# Probabilities exactly 0 and 1: clipped
# ---------------------------------------------------------------------------------------------

PROBS_01 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
LABELS_01 = np.array([1, 1, 2])


@pytest.mark.parametrize("kind", ["sparse", "categorical"])
@pytest.mark.parametrize("eps", [None, 1e-3])
def test_categorical_probabilities_at_zero_and_one(kind, eps, xp, dtype, device, make):
    name = _dtype_name(xp, dtype)
    e = _eps_of(name) if eps is None else eps
    y_pred = make(PROBS_01)
    if kind == "sparse":
        y_true, fn, vg = make(LABELS_01, "int64"), xce.sparse_categorical_cross_entropy, VG_SPARSE
    else:
        y_true, fn, vg = make(np.eye(3)[LABELS_01]), xce.categorical_cross_entropy, VG_CATEGORICAL
    out = fn(y_true, y_pred, reduction="none", eps=eps)
    expected = np.array([-np.log(e), 0.0, -np.log(e)])
    assert np.all(np.isfinite(_f64(out)))
    assert_close(out, expected, xp=xp, dtype=dtype, device=device)

    loss, grad = vg(y_true, y_pred, reduction="sum", eps=eps)
    assert_close(loss, expected.sum(), xp=xp, dtype=dtype, device=device)
    g = _f64(grad)
    # Zero where the probability was clipped (p = 0 < eps) and where the target is 0.
    assert np.all(g[PROBS_01 == 0.0] == 0.0), g
    assert np.all(g[np.eye(3)[LABELS_01] == 0.0] == 0.0), g


@pytest.mark.parametrize("kind", ["sparse", "categorical"])
def test_eps_zero_disables_clipping(kind, make):
    y_pred = make(PROBS_01)
    if kind == "sparse":
        out = xce.sparse_categorical_cross_entropy(
            make(LABELS_01, "int64"), y_pred, eps=0.0, reduction="none"
        )
    else:
        out = xce.categorical_cross_entropy(
            make(np.eye(3)[LABELS_01]), y_pred, eps=0.0, reduction="none"
        )
    got = _f64(out)
    assert np.isposinf(got[0]) and got[1] == 0.0 and np.isposinf(got[2]), got


@pytest.mark.parametrize("eps", [None, 1e-3])
def test_binary_probabilities_at_zero_and_one(eps, xp, dtype, device, make):
    name = _dtype_name(xp, dtype)
    e = _eps_of(name) if eps is None else eps
    y_pred = make([0.0, 1.0, 0.0, 1.0])
    y_true = make([1.0, 0.0, 0.0, 1.0])
    out = xce.binary_cross_entropy(y_true, y_pred, reduction="none", eps=eps)
    expected = np.array([-np.log(e), -np.log(e), -np.log1p(-e), -np.log1p(-e)])
    assert np.all(np.isfinite(_f64(out)))
    assert_close(out, expected, xp=xp, dtype=dtype, device=device)
    loss, grad = VG_BINARY(y_true, y_pred, reduction="sum", eps=eps)
    assert_close(loss, expected.sum(), xp=xp, dtype=dtype, device=device)
    # Every entry is clipped (0 → eps, 1 → 1 − eps): the derivative of the clip is 0.
    assert_close(grad, np.zeros(4), xp=xp, dtype=dtype, device=device, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# Half precision with C = 70000
# ---------------------------------------------------------------------------------------------

BIG_C = 70000


def _big_onehot(labels):
    out = np.zeros((len(labels), BIG_C), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def _half_dtype(xp, backend, name):
    dt = getattr(xp, name, None)
    if dt is None:
        pytest.skip(f"{backend}: the array namespace has no {name}")
    return dt


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
@pytest.mark.parametrize("kind", ["sparse", "categorical"])
def test_half_precision_many_classes(name, kind, backend, xp, device):
    dt = _half_dtype(xp, backend, name)
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(2, BIG_C)) * 3).astype(np.float32)
    x[0, 5] = 12.0  # a clear winner in row 0
    labels = np.array([5, 123])
    y_pred = xp.asarray(x, dtype=dt, device=device)
    if kind == "sparse":
        y_true = xp.asarray(labels, dtype=xp.int64, device=device)
        fn, vg = xce.sparse_categorical_cross_entropy, VG_SPARSE
    else:
        y_true = xp.asarray(_big_onehot(labels), dtype=dt, device=device)
        fn, vg = xce.categorical_cross_entropy, VG_CATEGORICAL
    x64 = _f64(y_pred)
    expected = _lse(x64) - x64[np.arange(2), labels]
    out = fn(y_true, y_pred, from_logits=True, reduction="none")
    assert np.all(np.isfinite(_f64(out)))
    assert_close(out, expected, xp=xp, dtype=dt, device=device)
    mean = fn(y_true, y_pred, from_logits=True)
    assert_close(mean, expected.mean(), xp=xp, dtype=dt, device=device)

    loss, grad = vg(y_true, y_pred, from_logits=True, reduction="sum")
    assert_close(loss, expected.sum(), xp=xp, dtype=dt, device=device)
    assert_array_like(grad, xp=xp, dtype=dt, device=device, shape=(2, BIG_C))
    g = _f64(grad)
    assert np.all(np.isfinite(g))
    expected_grad = _softmax(x64) - _big_onehot(labels)
    # Entries are ~1/70000, near half precision's subnormal range: compare absolutely.
    np.testing.assert_allclose(
        g, expected_grad, rtol=2e-2, atol=2e-3 if name == "bfloat16" else 1e-4
    )


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_half_precision_binary_huge_logits(name, backend, xp, device):
    dt = _half_dtype(xp, backend, name)
    y_pred = xp.asarray(
        np.array([1e4, -1e4, 1e4, -1e4, 2.0], dtype=np.float32), dtype=dt, device=device
    )
    y_true = xp.asarray(
        np.array([1.0, 0.0, 0.0, 1.0, 1.0], dtype=np.float32), dtype=dt, device=device
    )
    x, q = _f64(y_pred), _f64(y_true)
    out = xce.binary_cross_entropy(y_true, y_pred, from_logits=True, reduction="none")
    assert_close(out, (1 - q) * _softplus(x) + q * _softplus(-x), xp=xp, dtype=dt, device=device)


# ---------------------------------------------------------------------------------------------
# Mean over nothing → 0, gradient 0
# ---------------------------------------------------------------------------------------------


def _assert_exact_zero(a, *, xp, dtype, device, shape=()):
    assert_array_like(a, xp=xp, dtype=dtype, device=device, shape=shape)
    got = _f64(a)
    assert not np.any(np.isnan(got)), got
    assert np.all(got == 0.0), got


def _empty_case(name, make):
    """(loss fn, y_true, y_pred, options) whose mean has nothing to average."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 4))
    xb = rng.normal(size=(3, 2))
    sparse, categorical = xce.sparse_categorical_cross_entropy, xce.categorical_cross_entropy
    binary = xce.binary_cross_entropy
    cases = {
        "sparse N=0": lambda: (
            sparse,
            make(np.zeros(0, dtype=np.int64), "int64"),
            make(np.zeros((0, 4))),
            {},
        ),
        "categorical N=0": lambda: (
            categorical,
            make(np.zeros((0, 4))),
            make(np.zeros((0, 4))),
            {},
        ),
        "binary N=0": lambda: (binary, make(np.zeros(0)), make(np.zeros(0)), {}),
        "sparse all ignored": lambda: (
            sparse,
            make([-100, -100, -100], "int64"),
            make(x),
            {"ignore_index": -100},
        ),
        "sparse all where=False": lambda: (
            sparse,
            make([0, 1, 2], "int64"),
            make(x),
            {"where": make([False] * 3, "bool")},
        ),
        "categorical all where=False": lambda: (
            categorical,
            make(np.eye(4)[[0, 1, 2]]),
            make(x),
            {"where": make([False] * 3, "bool")},
        ),
        "binary all where=False": lambda: (
            binary,
            make(np.ones((3, 2))),
            make(xb),
            {"where": make(np.zeros((3, 2), dtype=bool), "bool")},
        ),
        "sparse all weights 0": lambda: (
            sparse,
            make([0, 1, 2], "int64"),
            make(x),
            {"sample_weight": make(np.zeros(3))},
        ),
        "categorical all weights 0": lambda: (
            categorical,
            make(np.eye(4)[[0, 1, 2]]),
            make(x),
            {"sample_weight": make(np.zeros(3))},
        ),
        "binary all weights 0": lambda: (
            binary,
            make(np.ones((3, 2))),
            make(xb),
            {"sample_weight": make(np.zeros(3))},
        ),
        "sparse class_weight 0 on every label": lambda: (
            sparse,
            make([0, 0, 0], "int64"),
            make(x),
            {"class_weight": make([0.0, 1.0, 1.0, 1.0])},
        ),
    }
    return cases[name]()


EMPTY_CASES = [
    "sparse N=0",
    "categorical N=0",
    "binary N=0",
    "sparse all ignored",
    "sparse all where=False",
    "categorical all where=False",
    "binary all where=False",
    "sparse all weights 0",
    "categorical all weights 0",
    "binary all weights 0",
    "sparse class_weight 0 on every label",
]


@pytest.mark.parametrize("case", EMPTY_CASES)
@pytest.mark.parametrize("from_logits", [True, False])
def test_mean_over_nothing_is_zero(case, from_logits, xp, dtype, device, make):
    fn, y_true, y_pred, options = _empty_case(case, make)
    if not from_logits and fn is xce.binary_cross_entropy:
        y_pred = make(1.0 / (1.0 + np.exp(-_f64(y_pred))) / 2)  # values in (0, 1)
    elif not from_logits:  # rows of probabilities: a softmax
        e = np.exp(_f64(y_pred))
        y_pred = make(e / e.sum(axis=-1, keepdims=True))
    mean = fn(y_true, y_pred, from_logits=from_logits, **options)
    _assert_exact_zero(mean, xp=xp, dtype=dtype, device=device)
    total, count = fn(y_true, y_pred, from_logits=from_logits, reduction="sum_and_count", **options)
    _assert_exact_zero(total, xp=xp, dtype=dtype, device=device)
    _assert_exact_zero(count, xp=xp, dtype=dtype, device=device)
    loss, grad = xce.value_and_grad(fn)(y_true, y_pred, from_logits=from_logits, **options)
    _assert_exact_zero(loss, xp=xp, dtype=dtype, device=device)
    _assert_exact_zero(grad, xp=xp, dtype=dtype, device=device, shape=y_pred.shape)


@pytest.mark.parametrize("mask", ["where", "ignore_index"])
def test_invalid_rows_with_nan_and_inf_logits_contribute_nothing(mask, xp, dtype, device, make):
    x = np.array([[0.5, -1.0, 2.0], [np.nan, np.inf, -np.inf], [1.0, 0.0, -0.5]])
    labels = np.array([2, 0, 1])
    options = {"where": make([True, False, True], "bool")}
    if mask == "ignore_index":
        labels = np.array([2, -100, 1])
        options = {"ignore_index": -100}
    y_true, y_pred = make(labels, "int64"), make(x)
    x64 = _f64(y_pred)
    good = [0, 2]
    rows = np.zeros(3)
    rows[good] = _lse(x64[good]) - x64[good, labels[good]]
    out = xce.sparse_categorical_cross_entropy(
        y_true, y_pred, from_logits=True, reduction="none", **options
    )
    assert_close(out, rows, xp=xp, dtype=dtype, device=device)
    loss, grad = VG_SPARSE(y_true, y_pred, from_logits=True, **options)
    assert_close(loss, rows.sum() / 2, xp=xp, dtype=dtype, device=device)
    expected_grad = np.zeros((3, 3))
    expected_grad[good] = (_softmax(x64[good]) - np.eye(3)[labels[good]]) / 2
    assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device)


def test_binary_masked_nan_logits_contribute_nothing(xp, dtype, device, make):
    y_pred = make([[np.nan, 1.0], [np.inf, -2.0]])
    y_true = make([[1.0, 0.0], [0.0, 1.0]])
    where = make([[False, True], [False, True]], "bool")
    x, q = _f64(y_pred), _f64(y_true)
    rows = np.where(
        [[False, True], [False, True]],
        (1 - q) * _softplus(np.nan_to_num(x)) + q * _softplus(-np.nan_to_num(x)),
        0.0,
    )
    out = xce.binary_cross_entropy(y_true, y_pred, from_logits=True, reduction="none", where=where)
    assert_close(out, rows, xp=xp, dtype=dtype, device=device)
    loss, grad = VG_BINARY(y_true, y_pred, from_logits=True, reduction="sum", where=where)
    assert_close(loss, rows.sum(), xp=xp, dtype=dtype, device=device)
    expected_grad = np.where([[False, True], [False, True]], _sigmoid(np.nan_to_num(x)) - q, 0.0)
    assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device)


# ---------------------------------------------------------------------------------------------
# logsumexp of a row of all −inf
# ---------------------------------------------------------------------------------------------


def test_logsumexp_all_neg_inf_row(xp, dtype, device, make):
    x = make([[-np.inf, -np.inf, -np.inf], [0.0, 1.0, 2.0], [-np.inf, 3.0, -np.inf]])
    out = xce.logsumexp(x)
    expected = np.array([-np.inf, np.log(np.exp([0.0, 1.0, 2.0]).sum()), 3.0])
    assert_close(out, expected, xp=xp, dtype=dtype, device=device)
    kept = xce.logsumexp(x, axis=-1, keepdims=True)
    assert_close(kept, expected[:, None], xp=xp, dtype=dtype, device=device)
    # The same along axis 0 (columns of all −inf), and over every axis at once.
    col = xce.logsumexp(make(np.full((2, 3), -np.inf)), axis=0)
    assert_close(col, np.full(3, -np.inf), xp=xp, dtype=dtype, device=device)
    everything = xce.logsumexp(make(np.full((2, 3), -np.inf)), axis=(0, 1))
    assert_close(everything, -np.inf, xp=xp, dtype=dtype, device=device)
    assert array_api_compat.array_namespace(out).__name__ == xp.__name__


# ---------------------------------------------------------------------------------------------
# +inf and NaN logits in the sparse loss
# ---------------------------------------------------------------------------------------------


# The NumPy-backed generic kernels (array-api-strict, Dask) warn on inf - inf while computing
# these values; the values are what this test checks.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")
def test_sparse_rows_with_positive_inf_and_nan_logits(xp, dtype, device, make):
    """A +inf logit off the label makes the loss +inf and the gradient -1 at the label, 0 at
    the finite logits and NaN at the +inf one; +inf on the label, a NaN, or nothing but -inf
    make the row NaN. The same on every backend: torch's own log-softmax makes a row with a
    +inf logit all NaN, so its fast path hands such rows to the generic kernel."""
    inf, nan = np.inf, np.nan
    x = np.array([[0.5, inf, 2.0], [0.5, inf, 2.0], [nan, 0.0, 1.0], [-inf, -inf, -inf],
                  [1.0, 0.0, -0.5]])  # fmt: skip
    labels = np.array([0, 1, 2, 1, 0])
    y_true, y_pred = make(labels, "int64"), make(x)
    finite = _f64(y_pred)[4]
    expected = np.array([inf, nan, nan, nan, _lse(finite[None])[0] - finite[0]])
    for reduction_none in (
        xce.sparse_categorical_cross_entropy(y_true, y_pred, from_logits=True, reduction="none"),
        xce.sparse_categorical_cross_entropy(
            y_true, y_pred, from_logits=True, reduction="none", class_weight=make([1.0, 1.0, 1.0])
        ),  # the full path, through the backend's native kernel where it has one
    ):
        assert_close(reduction_none, expected, xp=xp, dtype=dtype, device=device)
    _, grad = VG_SPARSE(y_true, y_pred, from_logits=True, reduction="sum")
    expected_grad = np.full((5, 3), nan)
    expected_grad[0] = [-1.0, nan, 0.0]
    expected_grad[1] = [0.0, nan, 0.0]
    expected_grad[4] = _softmax(finite[None])[0] - np.eye(3)[0]
    assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device)


# ---------------------------------------------------------------------------------------------
# Every loss of the table (tests/matrix.py): offsets, huge logits, half precision, nothing
# ---------------------------------------------------------------------------------------------


def test_large_offset_or_huge_logits_lose_nothing(loss, xp, device):
    """Softmax losses are shift invariant: rows at 1e8 in float32 equal the reference on the
    rows shifted to a max of 0. Element-wise losses at ±1e4 stay finite and exact."""
    if loss.classwise:
        x = OFFSET_LOGITS
        x64 = x.astype(np.float64)
        y = np.eye(3)[OFFSET_LABELS] if loss.target == "soft" else OFFSET_LABELS
        expected = loss.expected(y, x64 - x64.max(-1, keepdims=True), from_logits=True,
                                 reduction="none")  # fmt: skip
        tolerance = _offset_tolerance(expected)
    else:
        x = np.array([[1e4, -1e4, 1e4], [-1e4, 30.0, -30.0]], dtype=np.float32)
        y = np.array([[1.0, 0.0, 0.0], [1.0, 0.5, 0.25]])
        expected = loss.expected(y, x.astype(np.float64), from_logits=True, reduction="none")
        tolerance = np.abs(expected) * 1e-6 + 2 * EPS32
    y_true = _as_f32(xp, device, y, "int64" if loss.target == "labels" else "float32")
    out = loss.call(y_true, _as_f32(xp, device, x), from_logits=True, reduction="none")
    assert_array_like(out, xp=xp, dtype=xp.float32, device=device, shape=expected.shape)
    got = _f64(out)
    assert np.all(np.isfinite(got)) and np.all(np.abs(got - expected) <= tolerance), (
        got, expected,
    )  # fmt: skip


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_half_precision_is_computed_in_float32_for_every_loss(loss, name, backend, xp, device):
    dt = _half_dtype(xp, backend, name)
    x = np.random.default_rng(19).normal(size=(3, 4)).astype(np.float32)
    y, _ = loss.problem(20, (3, 4))
    y_true = xp.asarray(y, dtype=xp.int64 if loss.target == "labels" else dt, device=device)
    y_pred = xp.asarray(x, dtype=dt, device=device)
    out = loss.call(y_true, y_pred, from_logits=True, reduction="none")
    assert out.dtype == dt
    expected = loss.expected(_f64(y_true) if loss.target != "labels" else y, _f64(y_pred),
                             from_logits=True, reduction="none")  # fmt: skip
    np.testing.assert_allclose(_f64(out), expected, rtol=2e-2, atol=2e-2)
    value, grad = xce.value_and_grad(loss.fn)(y_true, y_pred, from_logits=True, **loss.hyper)
    assert value.dtype == dt and grad.dtype == dt and np.all(np.isfinite(_f64(grad)))


@pytest.mark.parametrize("from_logits", [True, False])
def test_mean_over_nothing_is_zero_for_every_loss(loss, from_logits, xp, dtype, device, make):
    y, x = loss.problem(21, (3, 4), from_logits=from_logits)
    y_true, y_pred = loss.make_y_true(make, y), make(x)
    S = loss.sample_shape(x.shape)
    for options in (
        {"where": make(np.zeros(S, dtype=bool), "bool")},
        {"sample_weight": make(np.zeros(S))},
    ):
        kw = {"from_logits": from_logits, **options}
        _assert_exact_zero(loss.call(y_true, y_pred, **kw), xp=xp, dtype=dtype, device=device)
        total, count = loss.call(y_true, y_pred, reduction="sum_and_count", **kw)
        _assert_exact_zero(total, xp=xp, dtype=dtype, device=device)
        _assert_exact_zero(count, xp=xp, dtype=dtype, device=device)
        value, grad = xce.value_and_grad(loss.fn)(y_true, y_pred, **loss.hyper, **kw)
        _assert_exact_zero(value, xp=xp, dtype=dtype, device=device)
        _assert_exact_zero(grad, xp=xp, dtype=dtype, device=device, shape=y_pred.shape)
