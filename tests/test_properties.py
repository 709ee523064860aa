"""Hypothesis property tests on every backend and floating dtype.

Data are drawn as float64 NumPy arrays (``hypothesis.extra.numpy``) and built on the backend
with the ``make`` fixture; the reference sees the numbers the library saw (rounded to the dtype).

Each test builds its ``@given`` function inside the test body so that the example budget can
follow the backend: 20 examples on NumPy, array-api-strict and torch; 3 examples over a couple
of fixed shapes on JAX (which compiles every eager op anew for each new shape) and Dask (a task
graph per call), where the per-option loops also check only the "none" and "sum_and_count"
reductions.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from helpers import assert_close, dtype_name, is_lazy, to_numpy
from helpers import build_options as _build
from helpers import check as _check
from helpers import reductions as _reds
from helpers import reference_options as _ref_opts
from helpers import seen as _seen
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import xce

# Drawn logits can form a probability distribution ([[0.2, 0.2, 0.2, 0.2, 0.2]]), which xce
# rightly warns about (tests/test_habits.py tests the warning); the numbers are what
# these properties check.
pytestmark = pytest.mark.filterwarnings("ignore:from_logits=True, but every row:UserWarning")


def _settings(backend):
    return settings(
        max_examples=3 if is_lazy(backend) else 20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


def _sizes(backend, eager):
    """A strategy for a dimension: ``eager`` (a range) on eager backends, fixed on JAX/Dask."""
    return st.sampled_from([6] if is_lazy(backend) else list(eager))


def _floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=64)


# Weights are 0 or well away from the subnormal range (whose rounding is order dependent).
WEIGHTS = st.one_of(st.just(0.0), st.floats(0.01, 3.0, allow_nan=False, allow_infinity=False))


@st.composite
def categorical_problem(draw, ns, cs):
    """Logits (N, C), labels, soft targets and options for the categorical losses."""
    n = draw(ns)
    c = draw(cs)
    logits = draw(hnp.arrays(np.float64, (n, c), elements=_floats(-10, 10)))
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    raw = draw(hnp.arrays(np.float64, (n, c), elements=_floats(0, 1)))
    raw[:, 0] += 1e-3  # no all-zero target row
    soft = raw / raw.sum(axis=-1, keepdims=True)
    opts = {}
    if draw(st.booleans()):
        opts["class_weight"] = draw(hnp.arrays(np.float64, (c,), elements=_floats(0.1, 3)))
    if draw(st.booleans()):
        opts["sample_weight"] = draw(hnp.arrays(np.float64, (n,), elements=WEIGHTS))
    if draw(st.booleans()):
        opts["where"] = draw(hnp.arrays(np.bool_, (n,)))
    if draw(st.booleans()):
        opts["label_smoothing"] = draw(st.sampled_from([0.05, 0.1, 0.5]))
    from_logits = draw(st.booleans())
    return logits, labels, soft, opts, from_logits


def _categorical_strategy(backend):
    return categorical_problem(_sizes(backend, range(0, 6)), _sizes(backend, range(2, 6)))


def test_categorical_losses_match_reference_and_are_nonnegative(backend, xp, make, dtype, device):
    name = dtype_name(xp, dtype)

    @_settings(backend)
    @given(problem=_categorical_strategy(backend))
    def check(problem):
        logits, labels, soft, opts, from_logits = problem
        y_pred = make(logits if from_logits else ref.softmax(logits))
        kw = _build(opts, make)
        rkw = _ref_opts(kw, opts)
        p_seen = _seen(y_pred)
        soft_t = make(soft)
        for reduction in _reds(backend):
            got = xce.sparse_categorical_cross_entropy(
                make(labels, "int64"), y_pred, from_logits=from_logits, reduction=reduction, **kw
            )
            exp = ref.sparse_categorical_cross_entropy(
                labels,
                p_seen,
                from_logits=from_logits,
                reduction=reduction,
                compute_dtype=name,
                **rkw,
            )
            _check(got, exp, xp=xp, dtype=dtype, device=device)
            got_c = xce.categorical_cross_entropy(
                soft_t, y_pred, from_logits=from_logits, reduction=reduction, **kw
            )
            exp_c = ref.categorical_cross_entropy(
                _seen(soft_t),
                p_seen,
                from_logits=from_logits,
                reduction=reduction,
                compute_dtype=name,
                **rkw,
            )
            _check(got_c, exp_c, xp=xp, dtype=dtype, device=device)
            values = (got if isinstance(got, tuple) else (got,)) + (
                got_c if isinstance(got_c, tuple) else (got_c,)
            )
            assert all(np.all(to_numpy(v) >= 0) for v in values)

    check()


def test_sparse_equals_categorical_on_one_hot(backend, xp, make, dtype, device):
    @_settings(backend)
    @given(problem=_categorical_strategy(backend))
    def check(problem):
        logits, labels, _, opts, from_logits = problem
        c = logits.shape[1]
        y_pred = make(logits if from_logits else ref.softmax(logits))
        one_hot = make((labels[:, None] == np.arange(c)).astype(np.float64))
        kw = _build(opts, make)
        for reduction in _reds(backend):
            a = xce.sparse_categorical_cross_entropy(
                make(labels, "int64"), y_pred, from_logits=from_logits, reduction=reduction, **kw
            )
            b = xce.categorical_cross_entropy(
                one_hot, y_pred, from_logits=from_logits, reduction=reduction, **kw
            )
            if reduction == "sum_and_count":
                for u, v in zip(a, b, strict=True):
                    assert_close(u, _seen(v), xp=xp, dtype=dtype, device=device)
            else:
                assert_close(a, _seen(b), xp=xp, dtype=dtype, device=device)

    check()


def test_softmax_ce_invariant_to_per_row_shift(backend, xp, make, dtype, device):
    # Logits on a 2^-10 grid and integer shifts: x + k is exact in float32 and float64, so the
    # two losses are mathematically equal and differ only by the library's rounding.
    @_settings(backend)
    @given(data=st.data(), n=_sizes(backend, range(1, 6)), c=_sizes(backend, range(2, 7)))
    def check(data, n, c):
        grid = data.draw(hnp.arrays(np.int64, (n, c), elements=st.integers(-10240, 10240)))
        x = grid / 1024.0
        shift = data.draw(hnp.arrays(np.int64, (n, 1), elements=st.integers(-1000, 1000)))
        labels = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
        soft = data.draw(hnp.arrays(np.float64, (n, c), elements=_floats(0, 1)))
        soft[:, -1] += 1e-3
        soft /= soft.sum(axis=-1, keepdims=True)
        xs = make(x + shift)
        assert np.array_equal(_seen(xs), x + shift)
        base = xce.sparse_categorical_cross_entropy(
            make(labels, "int64"), make(x), from_logits=True, reduction="none"
        )
        shifted = xce.sparse_categorical_cross_entropy(
            make(labels, "int64"), xs, from_logits=True, reduction="none"
        )
        assert_close(shifted, _seen(base), xp=xp, dtype=dtype, device=device)
        base_c = xce.categorical_cross_entropy(
            make(soft), make(x), from_logits=True, reduction="none"
        )
        shifted_c = xce.categorical_cross_entropy(
            make(soft), xs, from_logits=True, reduction="none"
        )
        assert_close(shifted_c, _seen(base_c), xp=xp, dtype=dtype, device=device)
        # softmax itself is shift invariant
        assert_close(
            xce.softmax(xs, axis=-1),
            _seen(xce.softmax(make(x), axis=-1)),
            xp=xp,
            dtype=dtype,
            device=device,
        )

    check()


@st.composite
def binary_problem(draw, ns, ks):
    n = draw(ns)
    k = draw(ks)
    x = draw(hnp.arrays(np.float64, (n, k), elements=_floats(-4, 4)))
    hard = draw(st.booleans())
    if hard:
        y = draw(hnp.arrays(np.bool_, (n, k))).astype(np.float64)
    else:
        y = draw(hnp.arrays(np.float64, (n, k), elements=_floats(0, 1)))
    opts = {}
    pw = draw(st.sampled_from(["none", "float", "vector"]))
    if pw == "float":
        opts["pos_weight"] = draw(st.sampled_from([0.5, 2.0, 3.0]))
    elif pw == "vector":
        opts["pos_weight"] = draw(hnp.arrays(np.float64, (k,), elements=_floats(0.1, 4)))
    sw = draw(st.sampled_from(["none", "N", "NK"]))
    if sw == "N":
        opts["sample_weight"] = draw(hnp.arrays(np.float64, (n,), elements=WEIGHTS))
    elif sw == "NK":
        opts["sample_weight"] = draw(hnp.arrays(np.float64, (n, k), elements=WEIGHTS))
    if draw(st.booleans()):
        opts["where"] = draw(hnp.arrays(np.bool_, (n, k) if draw(st.booleans()) else (n,)))
    if draw(st.booleans()):
        opts["label_smoothing"] = draw(st.sampled_from([0.1, 0.3]))
    return x, y, opts


def _binary_strategy(backend):
    return binary_problem(_sizes(backend, range(0, 6)), _sizes(backend, range(1, 5)))


def test_binary_matches_reference_and_is_nonnegative(backend, xp, make, dtype, device):
    name = dtype_name(xp, dtype)

    @_settings(backend)
    @given(problem=_binary_strategy(backend), from_logits=st.booleans())
    def check(problem, from_logits):
        x, y, opts = problem
        y_pred = make(x if from_logits else ref.sigmoid(x))
        y_true = make(y)
        kw = _build(opts, make)
        rkw = _ref_opts(kw, opts)
        for reduction in _reds(backend):
            got = xce.binary_cross_entropy(
                y_true, y_pred, from_logits=from_logits, reduction=reduction, **kw
            )
            exp = ref.binary_cross_entropy(
                _seen(y_true),
                _seen(y_pred),
                from_logits=from_logits,
                reduction=reduction,
                compute_dtype=name,
                **rkw,
            )
            _check(got, exp, xp=xp, dtype=dtype, device=device)
            values = got if isinstance(got, tuple) else (got,)
            assert all(np.all(to_numpy(v) >= 0) for v in values)

    check()


def test_binary_logits_equals_binary_on_sigmoid(backend, xp, make, dtype, device):
    # Moderate logits (|x| ≤ 4): from_logits on x == probabilities σ(x) with clipping off.
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == xp.float32 else {"rtol": 1e-10, "atol": 1e-12}

    @_settings(backend)
    @given(problem=_binary_strategy(backend))
    def check(problem):
        x, y, opts = problem
        kw = _build(opts, make)
        for reduction in _reds(backend):
            a = xce.binary_cross_entropy(
                make(y), make(x), from_logits=True, reduction=reduction, **kw
            )
            b = xce.binary_cross_entropy(
                make(y), make(ref.sigmoid(x)), eps=0.0, reduction=reduction, **kw
            )
            a = a if isinstance(a, tuple) else (a,)
            b = b if isinstance(b, tuple) else (b,)
            for u, v in zip(a, b, strict=True):
                assert_close(u, _seen(v), xp=xp, dtype=dtype, device=device, **tol)

    check()


def test_softmax_rows_sum_to_one(backend, xp, make, dtype, device):
    if is_lazy(backend):
        shapes = st.sampled_from([(6, 4), (3, 4, 5)])
    else:
        shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)

    @_settings(backend)
    @given(data=st.data(), shape=shapes)
    def check(data, shape):
        x = data.draw(hnp.arrays(np.float64, shape, elements=_floats(-30, 30)))
        axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
        arr = make(x)
        sm = xce.softmax(arr, axis=axis)
        assert_close(sm, ref.softmax(_seen(arr), axis=axis), xp=xp, dtype=dtype, device=device)
        got = to_numpy(sm).astype(np.float64)
        assert np.all(got >= 0) and np.all(got <= 1)
        tol = 1e-5 if dtype == xp.float32 else 1e-13
        np.testing.assert_allclose(got.sum(axis=axis), 1.0, rtol=0, atol=tol)
        ls = to_numpy(xce.log_softmax(arr, axis=axis)).astype(np.float64)
        assert np.all(ls <= 0)
        assert_close(
            xce.logsumexp(arr, axis=axis),
            ref.logsumexp(_seen(arr), axis=axis),
            xp=xp,
            dtype=dtype,
            device=device,
        )

    check()


def test_every_loss_matches_reference_and_is_finite(loss, backend, xp, make, dtype, device):
    """Each loss of the table (tests/matrix.py), drawn shapes, targets and options, against the
    reference; every value finite and, for these hyperparameters, non-negative."""
    name = dtype_name(xp, dtype)
    classes = _sizes(backend, range(2, 6))

    @_settings(backend)
    @given(data=st.data(), n=_sizes(backend, range(0, 6)), c=classes, from_logits=st.booleans())
    def check(data, n, c, from_logits):
        x = data.draw(hnp.arrays(np.float64, (n, c), elements=_floats(-8, 8)))
        seed = data.draw(st.integers(0, 2**16))
        y = loss.y_true(seed, (n, c))
        if not from_logits:
            x = ref.softmax(x) if loss.classwise else ref.sigmoid(x)
        opts = {"sample_weight": data.draw(hnp.arrays(np.float64, (n,), elements=WEIGHTS))}
        if data.draw(st.booleans()):
            opts["where"] = data.draw(hnp.arrays(np.bool_, (n,)))
        if data.draw(st.booleans()):
            opts["label_smoothing"] = data.draw(st.sampled_from([0.05, 0.3]))
        y_pred = make(x)
        kw = _build(opts, make)
        for reduction in _reds(backend):
            got = loss.call(loss.make_y_true(make, y), y_pred, from_logits=from_logits,
                            reduction=reduction, **kw)  # fmt: skip
            exp = loss.expected(y, _seen(y_pred), from_logits=from_logits, reduction=reduction,
                                compute_dtype=name, **_ref_opts(kw, opts))  # fmt: skip
            _check(got, exp, xp=xp, dtype=dtype, device=device)
            values = got if isinstance(got, tuple) else (got,)
            assert all(np.all(np.isfinite(to_numpy(v))) for v in values)
            assert all(np.all(to_numpy(v) >= 0) for v in values)

    check()
