"""The building blocks (logsumexp, log_softmax, softmax, log_sigmoid, sigmoid, entropy,
kl_divergence) against the float64 NumPy reference on every backend and floating dtype.

Inputs are built on the backend in the dtype under test; the reference is fed the *same*
(already rounded) numbers, widened to float64.

JAX compiles each eager op for every new shape and Dask builds a task graph per call (tens of
ms a call against about 1 ms on NumPy): on those two the axis / shape loops run a
representative subset; the eager backends run all of them.
"""

from __future__ import annotations

import numpy as np
import reference as ref
from helpers import assert_close, to_numpy
from helpers import case as _case
from helpers import pick as _pick
from helpers import seen as _seen

import xce


def _data(seed, shape, scale=3.0):
    return np.random.default_rng(seed).normal(scale=scale, size=shape)


# ---------------------------------------------------------------------------------------------
# logsumexp
# ---------------------------------------------------------------------------------------------

LSE_AXES = [-1, 0, 1, 2, -2, (0, 2), (1, 2), (0, -1), (0, 1, 2)]


def test_logsumexp_axes(backend, xp, make, dtype, device):
    x = make(_data(1, (3, 4, 5)))
    seen = _seen(x)
    cases = [(a, k) for a in LSE_AXES for k in (False, True)]
    for axis, keepdims in _pick(
        backend, cases, [(-1, False), (0, True), ((0, 2), False), ((1, 2), True)]
    ):
        with _case(f"axis={axis}, keepdims={keepdims}"):
            got = xce.logsumexp(x, axis=axis, keepdims=keepdims)
            assert_close(
                got,
                ref.logsumexp(seen, axis=axis, keepdims=keepdims),
                xp=xp,
                dtype=dtype,
                device=device,
            )


def test_logsumexp_default_axis_is_last(xp, make, dtype, device):
    x = make(_data(2, (4, 6)))
    assert_close(
        xce.logsumexp(x), ref.logsumexp(_seen(x), axis=-1), xp=xp, dtype=dtype, device=device
    )


def test_logsumexp_neg_inf_rows(xp, make, dtype, device):
    data = np.array(
        [
            [-np.inf, -np.inf, -np.inf],  # all −inf → −inf
            [-np.inf, 0.0, 1.0],  # some −inf → finite
            [2.0, -np.inf, -np.inf],  # a single finite entry → that entry
            [0.5, -1.5, 3.0],
        ]
    )
    x = make(data)
    expected = np.array([-np.inf, np.log(1.0 + np.e), 2.0, ref.logsumexp(data[3])])
    assert np.allclose(ref.logsumexp(data), expected, rtol=1e-15)  # the reference itself
    assert_close(xce.logsumexp(x, axis=-1), expected, xp=xp, dtype=dtype, device=device)
    assert_close(
        xce.logsumexp(x, axis=-1, keepdims=True),
        expected[:, None],
        xp=xp,
        dtype=dtype,
        device=device,
    )


def test_logsumexp_neg_inf_tuple_axis(xp, make, dtype, device):
    data = np.full((2, 3, 2), -np.inf)
    data[1, 2, 0] = 0.25
    data[1, 0, 1] = -0.75
    x = make(data)
    expected = np.array([-np.inf, np.log(np.exp(0.25) + np.exp(-0.75))])
    assert_close(xce.logsumexp(x, axis=(1, 2)), expected, xp=xp, dtype=dtype, device=device)


def test_logsumexp_large_offsets(backend, xp, make, dtype, device):
    # Shifted data: exp would overflow / underflow without the max shift.
    for offset in _pick(backend, [1e4, -1e4, 1e8], [1e8]):
        with _case(f"offset={offset}"):
            x = make(_data(3, (5, 4), scale=4.0) + offset)
            got = xce.logsumexp(x, axis=-1)
            assert np.all(np.isfinite(to_numpy(got)))
            assert_close(got, ref.logsumexp(_seen(x), axis=-1), xp=xp, dtype=dtype, device=device)


def test_logsumexp_overflow_range(xp, make, dtype, device):
    # Values near each dtype's overflow threshold for exp.
    big = 80.0 if dtype == xp.float32 else 700.0
    data = np.array([[big, big, big], [-big, -big - 1.0, -big - 2.0], [big, 0.0, -big]]) * 1.2
    x = make(data)
    assert_close(
        xce.logsumexp(x, axis=-1),
        ref.logsumexp(_seen(x), axis=-1),
        xp=xp,
        dtype=dtype,
        device=device,
    )


# ---------------------------------------------------------------------------------------------
# log_softmax / softmax
# ---------------------------------------------------------------------------------------------

AXES = [-1, 0, 1, 2, -2]


def test_log_softmax_and_softmax_axes(backend, xp, make, dtype, device):
    x = make(_data(4, (3, 4, 5)))
    seen = _seen(x)
    for axis in _pick(backend, AXES, [-1, 1]):
        with _case(f"axis={axis}"):
            assert_close(
                xce.log_softmax(x, axis=axis),
                ref.log_softmax(seen, axis=axis),
                xp=xp,
                dtype=dtype,
                device=device,
            )
            got = xce.softmax(x, axis=axis)
            assert_close(got, ref.softmax(seen, axis=axis), xp=xp, dtype=dtype, device=device)
            sums = np.sum(to_numpy(got).astype(np.float64), axis=axis)
            np.testing.assert_allclose(
                sums, 1.0, rtol=0, atol=1e-5 if dtype == xp.float32 else 1e-13
            )


def test_softmax_default_axis_is_last(xp, make, dtype, device):
    x = make(_data(6, (3, 4)))
    assert_close(xce.softmax(x), ref.softmax(_seen(x), axis=-1), xp=xp, dtype=dtype, device=device)
    assert_close(
        xce.log_softmax(x), ref.log_softmax(_seen(x), axis=-1), xp=xp, dtype=dtype, device=device
    )


def test_log_softmax_large_offsets(backend, xp, make, dtype, device):
    # log_softmax must be formed as (x − m) − log Σ exp(x − m): subtracting a rounded
    # logsumexp from x at offset 1e8 loses the answer entirely.
    for offset in _pick(backend, [1e4, -1e4, 1e8], [1e8]):
        with _case(f"offset={offset}"):
            data = _data(7, (4, 5), scale=4.0) + offset
            x = make(data)
            seen = _seen(x)
            assert_close(
                xce.log_softmax(x, axis=-1),
                ref.log_softmax(seen, axis=-1),
                xp=xp,
                dtype=dtype,
                device=device,
            )
            assert_close(
                xce.softmax(x, axis=-1),
                ref.softmax(seen, axis=-1),
                xp=xp,
                dtype=dtype,
                device=device,
            )
            xt = make(data.T)
            assert_close(
                xce.log_softmax(xt, axis=0),
                ref.log_softmax(_seen(xt), axis=0),
                xp=xp,
                dtype=dtype,
                device=device,
            )


def test_log_softmax_pinned_offset_float32_values(xp, make, dtype, device):
    # The spec's pinned example: [1e8, 1e8+8, 1e8−8] is exactly representable in float32.
    x = make([[1e8, 1e8 + 8.0, 1e8 - 8.0]])
    assert np.array_equal(_seen(x), [[1e8, 1e8 + 8.0, 1e8 - 8.0]])
    z = np.log1p(np.exp(-8.0) + np.exp(-16.0))  # log Σ exp(x − max)
    expected = np.array([[-8.0 - z, -z, -16.0 - z]])
    assert_close(xce.log_softmax(x, axis=-1), expected, xp=xp, dtype=dtype, device=device)


def test_softmax_neg_inf_entries(xp, make, dtype, device):
    data = np.array([[-np.inf, 0.0, 1.0], [2.0, -np.inf, -np.inf], [0.0, 0.0, -np.inf]])
    x = make(data)
    ls = xce.log_softmax(x, axis=-1)
    sm = xce.softmax(x, axis=-1)
    expected_ls = np.array(
        [
            [-np.inf, -np.log1p(np.e), 1.0 - np.log1p(np.e)],
            [0.0, -np.inf, -np.inf],
            [-np.log(2.0), -np.log(2.0), -np.inf],
        ]
    )
    assert_close(ls, expected_ls, xp=xp, dtype=dtype, device=device)
    assert_close(sm, np.exp(expected_ls), xp=xp, dtype=dtype, device=device)
    assert not np.any(np.isnan(to_numpy(sm)))


def test_softmax_single_class_is_one(xp, make, dtype, device):
    x = make([[3.5], [-2.0], [0.0]])
    assert_close(xce.softmax(x, axis=-1), np.ones((3, 1)), xp=xp, dtype=dtype, device=device)
    assert_close(xce.log_softmax(x, axis=-1), np.zeros((3, 1)), xp=xp, dtype=dtype, device=device)


# ---------------------------------------------------------------------------------------------
# sigmoid / log_sigmoid
# ---------------------------------------------------------------------------------------------

SIG_DATA = [-800.0, -100.0, -30.0, -5.0, -1.0, -1e-3, 0.0, 1e-3, 0.5, 2.0, 12.0, 30.0, 100.0, 800.0]


def test_sigmoid_and_log_sigmoid(backend, xp, make, dtype, device):
    for shape in _pick(backend, [(14,), (2, 7), (7, 1, 2)], [(2, 7)]):
        with _case(f"shape={shape}"):
            x = make(np.reshape(SIG_DATA, shape))
            seen = _seen(x)
            got = xce.sigmoid(x)
            assert_close(got, ref.sigmoid(seen), xp=xp, dtype=dtype, device=device)
            assert not np.any(np.isnan(to_numpy(got)))
            expected = ref.log_sigmoid(seen)
            # log σ(−800) = −800 exactly (no −inf from log(0)); log σ(800) ≈ −e^{−800} = −0.
            assert expected.flat[0] == -800.0
            assert_close(xce.log_sigmoid(x), expected, xp=xp, dtype=dtype, device=device)


def test_log_sigmoid_small_magnitude_relative_accuracy(xp, make, dtype, device):
    # log σ(x) ≈ −e^{−x} for large x: a log(sigmoid(x)) implementation returns 0 here.
    x = make([10.0, 20.0, 30.0])
    expected = ref.log_sigmoid(_seen(x))
    assert_close(xce.log_sigmoid(x), expected, xp=xp, dtype=dtype, device=device, atol=0.0)


def test_sigmoid_infinities(xp, make, dtype, device):
    x = make([-np.inf, np.inf, 0.0])
    assert_close(xce.sigmoid(x), [0.0, 1.0, 0.5], xp=xp, dtype=dtype, device=device)
    assert_close(
        xce.log_sigmoid(x), [-np.inf, 0.0, -np.log(2.0)], xp=xp, dtype=dtype, device=device
    )


def test_sigmoid_0d(xp, make, dtype, device):
    x = make(1.25)
    assert_close(xce.sigmoid(x), ref.sigmoid(_seen(x)), xp=xp, dtype=dtype, device=device)
    assert_close(xce.log_sigmoid(x), ref.log_sigmoid(_seen(x)), xp=xp, dtype=dtype, device=device)


# ---------------------------------------------------------------------------------------------
# entropy / kl_divergence
# ---------------------------------------------------------------------------------------------


def _dirichlet(seed, shape, axis):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 1.0, size=shape)
    return p / p.sum(axis=axis, keepdims=True)


def test_entropy_axes(backend, xp, make, dtype, device):
    for axis in _pick(backend, AXES, [0]):
        with _case(f"axis={axis}"):
            p = make(_dirichlet(8, (3, 4, 5), axis))
            assert_close(
                xce.entropy(p, axis=axis),
                ref.entropy(_seen(p), axis=axis),
                xp=xp,
                dtype=dtype,
                device=device,
            )


def test_entropy_zeros_and_default_axis(xp, make, dtype, device):
    data = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.25, 0.25, 0.5], [0.0, 0.0, 1.0]])
    p = make(data)
    expected = np.array([0.0, np.log(2.0), 1.5 * np.log(2.0), 0.0])
    assert_close(xce.entropy(p), expected, xp=xp, dtype=dtype, device=device)
    assert not np.any(np.isnan(to_numpy(xce.entropy(p))))


def test_kl_divergence_axes(backend, xp, make, dtype, device):
    for axis in _pick(backend, AXES, [-2]):
        with _case(f"axis={axis}"):
            p = make(_dirichlet(9, (3, 4, 5), axis))
            q = make(_dirichlet(10, (3, 4, 5), axis))
            assert_close(
                xce.kl_divergence(p, q, axis=axis),
                ref.kl_divergence(_seen(p), _seen(q), axis=axis),
                xp=xp,
                dtype=dtype,
                device=device,
            )


def test_kl_divergence_zeros(xp, make, dtype, device):
    p_data = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [0.25, 0.25, 0.5]])
    q_data = np.array([[0.25, 0.25, 0.5], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.25, 0.25, 0.5]])
    p, q = make(p_data), make(q_data)
    expected = np.array(
        [
            np.log(2.0),  # p = 0 where q > 0 contributes 0
            np.log(2.0),  # q = 0 where p = 0 contributes 0 (not NaN)
            np.inf,  # q = 0 < p → +inf
            0.0,
        ]
    )
    assert_close(xce.kl_divergence(p, q), expected, xp=xp, dtype=dtype, device=device)
    assert_close(
        xce.kl_divergence(p, q, axis=-1),
        ref.kl_divergence(p_data, q_data),
        xp=xp,
        dtype=dtype,
        device=device,
    )


def test_kl_of_equal_is_zero_and_nonnegative(xp, make, dtype, device):
    pd = _dirichlet(11, (6, 4), -1)
    p = make(pd)
    assert_close(xce.kl_divergence(p, p), np.zeros(6), xp=xp, dtype=dtype, device=device)
    q = make(_dirichlet(12, (6, 4), -1))
    assert np.all(to_numpy(xce.kl_divergence(p, q)) >= 0)
