"""Identities between xce's own functions (library against library, no reference needed).

* sparse == categorical on the one-hot target (every option and reduction);
* sparse ``ignore_index`` == categorical ``where``;
* a ``where`` mask == slicing the masked rows out;
* ``axis=k`` == moving the class axis last;
* cross-entropy == entropy + KL divergence;
* sparse label smoothing == categorical on the smoothed one-hot ("none"/"sum" when class
  weights are given, since ω uses the unsmoothed target);
* ``sum_and_count`` accumulated over micro-batches == the mean of the whole batch;
* categorical/binary from logits == the same loss on softmax/sigmoid probabilities.

JAX compiles each eager op for every new shape and Dask builds a task graph per call (tens of
ms a call against about 1 ms on NumPy): on those two the option / axis loops run a
representative subset; the eager backends run all of them.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from helpers import assert_close, is_lazy, to_numpy
from helpers import build_options as _build_opts
from helpers import case as _case
from helpers import logits as _logits
from helpers import one_hot as _one_hot
from helpers import pick as _pick
from helpers import reductions as _reds
from helpers import same as _same
from matrix import losses

import xce

N, C = 6, 4
CW = np.array([0.5, 2.0, 1.0, 3.0])
SW = np.array([1.0, 0.5, 2.0, 0.0, 1.5, 3.0])
MASK = np.array([True, False, True, True, False, True])
LAB = np.array([0, 3, 1, 2, 3, 1])


OPTION_SETS = {
    "plain": {},
    "class_weight": {"class_weight": CW},
    "sample_weight": {"sample_weight": SW},
    "where": {"where": MASK},
    "label_smoothing": {"label_smoothing": 0.2},
    "smoothing_and_class_weight": {"label_smoothing": 0.1, "class_weight": CW},
    "everything": {"class_weight": CW, "sample_weight": SW, "where": MASK, "label_smoothing": 0.3},
}


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_sparse_equals_categorical_on_one_hot(backend, xp, make, dtype, device, from_logits):
    x = _logits(1, (N, C))
    if not from_logits:
        x = ref.softmax(x)
    y_pred = make(x)
    for option in _pick(backend, OPTION_SETS, ["everything"]):
        kw = {"from_logits": from_logits, **_build_opts(OPTION_SETS[option], make)}
        for reduction in _reds(backend):
            with _case(f"{option}, {reduction}"):
                sparse = xce.sparse_categorical_cross_entropy(
                    make(LAB, "int64"), y_pred, reduction=reduction, **kw
                )
                cat = xce.categorical_cross_entropy(
                    make(_one_hot(LAB, C)), y_pred, reduction=reduction, **kw
                )
                _same(sparse, cat, xp=xp, dtype=dtype, device=device)


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_sparse_equals_categorical_spatial(backend, xp, make, dtype, device, from_logits):
    # (N, C, d1, d2) with axis=1.
    shape = (3, 4, 2, 3)
    x = _logits(2, shape)
    if not from_logits:
        x = ref.softmax(x, axis=1)
    labels = np.random.default_rng(3).integers(0, 4, size=(3, 2, 3))
    y_pred = make(x)
    kw = {
        "axis": 1,
        "from_logits": from_logits,
        "class_weight": make([1.0, 0.25, 4.0, 2.0]),
        "sample_weight": make([2.0, 0.5, 1.0]),
        "label_smoothing": 0.1,
    }
    for reduction in _reds(backend):
        sparse = xce.sparse_categorical_cross_entropy(
            make(labels, "int64"), y_pred, reduction=reduction, **kw
        )
        cat = xce.categorical_cross_entropy(
            make(_one_hot(labels, 4, axis=1)), y_pred, reduction=reduction, **kw
        )
        _same(sparse, cat, xp=xp, dtype=dtype, device=device)


def test_sparse_ignore_index_equals_categorical_where(backend, xp, make, dtype, device):
    labels = LAB.copy()
    labels[[1, 4]] = -100
    valid = labels != -100
    x = make(_logits(4, (N, C)))
    one_hot = _one_hot(np.where(valid, labels, 0), C)  # any row will do where invalid
    cases = [(s, w) for s in (0.0, 0.2) for w in (False, True)]
    for smoothing, use_class_weight in _pick(backend, cases, [(0.2, True)]):
        kw = {"from_logits": True, "label_smoothing": smoothing, "sample_weight": make(SW)}
        if use_class_weight:
            kw["class_weight"] = make(CW)
        for reduction in _reds(backend):
            with _case(f"smoothing={smoothing}, class_weight={use_class_weight}, {reduction}"):
                sparse = xce.sparse_categorical_cross_entropy(
                    make(labels, "int64"), x, ignore_index=-100, reduction=reduction, **kw
                )
                cat = xce.categorical_cross_entropy(
                    make(one_hot), x, where=make(valid, "bool"), reduction=reduction, **kw
                )
                _same(sparse, cat, xp=xp, dtype=dtype, device=device)


@pytest.mark.parametrize("kind", ["sparse", "categorical", "binary"])
def test_where_equals_slicing(backend, xp, make, dtype, device, kind):
    rng = np.random.default_rng(5)
    x = _logits(6, (N, C))
    if kind == "sparse":
        y, fn = LAB, xce.sparse_categorical_cross_entropy
        extra = {"class_weight": CW}
    elif kind == "categorical":
        y, fn = rng.dirichlet(np.ones(C), size=N), xce.categorical_cross_entropy
        extra = {"class_weight": CW, "label_smoothing": 0.1}
    else:
        y, fn = (rng.uniform(size=(N, C)) < 0.5).astype(float), xce.binary_cross_entropy
        extra = {"pos_weight": 1.5, "label_smoothing": 0.1}

    def mk_y(v):
        return make(v, "int64") if kind == "sparse" else make(v)

    kw = {"from_logits": True, **_build_opts(extra, make)}
    for reduction in _reds(backend):
        masked = fn(
            mk_y(y),
            make(x),
            where=make(MASK, "bool"),
            sample_weight=make(SW),
            reduction=reduction,
            **kw,
        )
        sliced = fn(
            mk_y(y[MASK]), make(x[MASK]), sample_weight=make(SW[MASK]), reduction=reduction, **kw
        )
        if reduction == "none":
            got = to_numpy(masked).astype(np.float64)
            assert np.all(got[~MASK] == 0.0)
            np.testing.assert_allclose(
                got[MASK],
                to_numpy(sliced).astype(np.float64),
                rtol=2e-5 if dtype == xp.float32 else 1e-12,
                atol=2e-6 if dtype == xp.float32 else 1e-13,
            )
            assert masked.dtype == dtype
        else:
            _same(masked, sliced, xp=xp, dtype=dtype, device=device)


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_axis_equals_moveaxis(backend, xp, make, dtype, device, from_logits):
    shape = (3, 4, 5)
    for axis in _pick(backend, [0, 1, 2, -3, -2], [1]):
        x = _logits(7, shape)
        if not from_logits:
            x = ref.softmax(x, axis=axis)
        rng = np.random.default_rng(8)
        n_classes = shape[axis]
        S = tuple(np.delete(shape, axis))
        soft = rng.dirichlet(np.ones(n_classes), size=S)  # class last
        labels = rng.integers(0, n_classes, size=S)
        x_last = np.moveaxis(x, axis, -1)
        soft_moved = np.moveaxis(soft, -1, axis)
        cw = make(np.linspace(0.5, 2.0, n_classes))
        for reduction in _reds(backend):
            with _case(f"axis={axis}, {reduction}"):
                kw = {
                    "from_logits": from_logits,
                    "class_weight": cw,
                    "label_smoothing": 0.1,
                    "reduction": reduction,
                }
                a = xce.categorical_cross_entropy(make(soft_moved), make(x), axis=axis, **kw)
                b = xce.categorical_cross_entropy(make(soft), make(x_last), **kw)
                _same(a, b, xp=xp, dtype=dtype, device=device)
                a = xce.sparse_categorical_cross_entropy(
                    make(labels, "int64"), make(x), axis=axis, **kw
                )
                b = xce.sparse_categorical_cross_entropy(make(labels, "int64"), make(x_last), **kw)
                _same(a, b, xp=xp, dtype=dtype, device=device)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_cross_entropy_is_entropy_plus_kl(xp, make, dtype, device, axis):
    rng = np.random.default_rng(9)
    p = rng.dirichlet(np.ones(4), size=(3, 5))
    p[0, 0] = [0.0, 0.5, 0.5, 0.0]  # zeros in p: 0·log 0 = 0 in all three
    q = rng.dirichlet(np.ones(4), size=(3, 5))
    p, q = np.moveaxis(p, -1, axis), np.moveaxis(q, -1, axis)
    P, Q = make(p), make(q)
    ce = xce.categorical_cross_entropy(P, Q, axis=axis, eps=0.0, reduction="none")
    h = xce.entropy(P, axis=axis)
    kl = xce.kl_divergence(P, Q, axis=axis)
    _same(ce, h + kl, xp=xp, dtype=dtype, device=device)
    # and the reduced form
    ce_sum = xce.categorical_cross_entropy(P, Q, axis=axis, eps=0.0, reduction="sum")
    _same(ce_sum, xp.sum(h + kl), xp=xp, dtype=dtype, device=device)
    # CE(p, p) == H(p)
    _same(
        xce.categorical_cross_entropy(P, P, axis=axis, eps=0.0, reduction="none"),
        h,
        xp=xp,
        dtype=dtype,
        device=device,
    )


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_sparse_smoothing_equals_categorical_on_smoothed_one_hot(
    backend, xp, make, dtype, device, from_logits
):
    for eps_smooth in _pick(backend, [0.1, 0.5, 1.0], [0.1]):
        with _case(f"label_smoothing={eps_smooth}"):
            _check_smoothing(xp, make, dtype, device, from_logits, eps_smooth, _reds(backend))


def _check_smoothing(xp, make, dtype, device, from_logits, eps_smooth, reductions):
    x = _logits(10, (N, C))
    if not from_logits:
        x = ref.softmax(x)
    smoothed = (1.0 - eps_smooth) * _one_hot(LAB, C) + eps_smooth / C
    y_pred = make(x)
    base = {"from_logits": from_logits, "sample_weight": make(SW), "where": make(MASK, "bool")}
    # Without class weights ω = 1 for both: every reduction agrees.
    for reduction in reductions:
        a = xce.sparse_categorical_cross_entropy(
            make(LAB, "int64"), y_pred, label_smoothing=eps_smooth, reduction=reduction, **base
        )
        b = xce.categorical_cross_entropy(make(smoothed), y_pred, reduction=reduction, **base)
        _same(a, b, xp=xp, dtype=dtype, device=device)
    # With class weights the losses agree ("none", "sum", the total of "sum_and_count") but the
    # count does not: ω = w[y] on the unsmoothed label vs Σ_c w_c q_c on the smoothed target.
    cw = make(CW)
    for reduction in ("none", "sum"):
        a = xce.sparse_categorical_cross_entropy(
            make(LAB, "int64"),
            y_pred,
            label_smoothing=eps_smooth,
            class_weight=cw,
            reduction=reduction,
            **base,
        )
        b = xce.categorical_cross_entropy(
            make(smoothed), y_pred, class_weight=cw, reduction=reduction, **base
        )
        _same(a, b, xp=xp, dtype=dtype, device=device)
    total, count = xce.sparse_categorical_cross_entropy(
        make(LAB, "int64"),
        y_pred,
        label_smoothing=eps_smooth,
        class_weight=cw,
        reduction="sum_and_count",
        **base,
    )
    valid_sw = np.where(MASK, SW, 0.0)
    assert_close(count, np.sum(valid_sw * CW[LAB]), xp=xp, dtype=dtype, device=device)
    mean = xce.sparse_categorical_cross_entropy(
        make(LAB, "int64"),
        y_pred,
        label_smoothing=eps_smooth,
        class_weight=cw,
        reduction="mean",
        **base,
    )
    _same(mean, total / count, xp=xp, dtype=dtype, device=device)


@pytest.mark.parametrize("kind", ["sparse", "categorical", "binary"])
def test_sum_and_count_over_micro_batches_equals_full_mean(xp, make, dtype, device, kind):
    rng = np.random.default_rng(11)
    n = 10
    x = _logits(12, (n, C))
    sw = rng.uniform(0.0, 2.0, size=n)
    mask = rng.uniform(size=n) < 0.8
    if kind == "sparse":
        y = rng.integers(0, C, size=n)
        y[[2, 7]] = -1
        fn, mk_y = xce.sparse_categorical_cross_entropy, (lambda v: make(v, "int64"))
        extra = {"class_weight": make(CW), "ignore_index": -1, "label_smoothing": 0.1}
    elif kind == "categorical":
        y = rng.dirichlet(np.ones(C), size=n)
        fn, mk_y = xce.categorical_cross_entropy, make
        extra = {"class_weight": make(CW), "label_smoothing": 0.1}
    else:
        y = (rng.uniform(size=(n, C)) < 0.4).astype(float)
        fn, mk_y = xce.binary_cross_entropy, make
        extra = {"pos_weight": make(np.array([1.0, 2.0, 0.5, 3.0]))}
    kw = {"from_logits": True, **extra}
    full = fn(
        mk_y(y), make(x), sample_weight=make(sw), where=make(mask, "bool"), reduction="mean", **kw
    )
    total = count = 0.0
    for sl in (slice(0, 3), slice(3, 4), slice(4, n)):
        t, c = fn(
            mk_y(y[sl]),
            make(x[sl]),
            sample_weight=make(sw[sl]),
            where=make(mask[sl], "bool"),
            reduction="sum_and_count",
            **kw,
        )
        assert t.shape == () and c.shape == ()
        assert t.dtype == dtype and c.dtype == dtype
        total += float(to_numpy(t))
        count += float(to_numpy(c))
    _same(full, np.asarray(total / count), xp=xp, dtype=dtype, device=device)
    # and the full batch's own pieces
    ft, fc = fn(
        mk_y(y),
        make(x),
        sample_weight=make(sw),
        where=make(mask, "bool"),
        reduction="sum_and_count",
        **kw,
    )
    _same(full, ft / fc, xp=xp, dtype=dtype, device=device)
    np.testing.assert_allclose(
        float(to_numpy(fc)), count, rtol=2e-5 if dtype == xp.float32 else 1e-12
    )


def test_categorical_logits_equals_probs_of_softmax(backend, xp, make, dtype, device):
    # CE from logits == CE on softmax(logits) with clipping off (moderate logits).
    x = _logits(13, (N, C), scale=1.5)
    p = ref.softmax(x)
    y = np.random.default_rng(14).dirichlet(np.ones(C), size=N)
    options = {
        "plain": {},
        "class_weight": {"class_weight": make(CW)},
        "smoothing": {"label_smoothing": 0.2},
        "everything": {"sample_weight": make(SW), "class_weight": make(CW), "label_smoothing": 0.1},
    }
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == xp.float32 else {}
    for option in _pick(backend, options, ["everything"]):
        for reduction in _reds(backend):
            with _case(f"{option}, {reduction}"):
                a = xce.categorical_cross_entropy(
                    make(y), make(x), from_logits=True, reduction=reduction, **options[option]
                )
                b = xce.categorical_cross_entropy(
                    make(y), make(p), eps=0.0, reduction=reduction, **options[option]
                )
                _same(a, b, xp=xp, dtype=dtype, device=device, **tol)


def test_binary_logits_equals_probs_of_sigmoid(backend, xp, make, dtype, device):
    x = _logits(15, (N, C), scale=1.5)
    p = ref.sigmoid(x)
    y = np.random.default_rng(16).uniform(size=(N, C))
    options = {
        "plain": {},
        "pos_weight": {"pos_weight": make([0.5, 1.0, 4.0, 2.0])},
        "smoothing": {"label_smoothing": 0.3},
        "everything": {"pos_weight": 2.0, "sample_weight": make(SW), "label_smoothing": 0.1},
    }
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == xp.float32 else {}
    for option in _pick(backend, options, ["everything"]):
        for reduction in _reds(backend):
            with _case(f"{option}, {reduction}"):
                a = xce.binary_cross_entropy(
                    make(y), make(x), from_logits=True, reduction=reduction, **options[option]
                )
                b = xce.binary_cross_entropy(
                    make(y), make(p), eps=0.0, reduction=reduction, **options[option]
                )
                _same(a, b, xp=xp, dtype=dtype, device=device, **tol)


def test_log_softmax_is_logits_minus_logsumexp_and_softmax_is_its_exp(xp, make, dtype, device):
    x = make(_logits(17, (3, 5)))
    ls = xce.log_softmax(x, axis=-1)
    _same(ls, x - xce.logsumexp(x, axis=-1, keepdims=True), xp=xp, dtype=dtype, device=device)
    _same(xce.softmax(x, axis=-1), xp.exp(ls), xp=xp, dtype=dtype, device=device)
    _same(xce.log_sigmoid(x), xp.log(xce.sigmoid(x)), xp=xp, dtype=dtype, device=device)
    # sparse CE from logits == −log_softmax at the label
    lab = np.array([0, 4, 2])
    per = xce.sparse_categorical_cross_entropy(
        make(lab, "int64"), x, from_logits=True, reduction="none"
    )
    expected = -to_numpy(ls).astype(np.float64)[np.arange(3), lab]
    assert_close(per, expected, xp=xp, dtype=dtype, device=device)


# ---------------------------------------------------------------------------------------------
# Reduction identities, for every loss of the table (tests/matrix.py)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_reduction_identities(loss, from_logits, backend, xp, make, dtype, device):
    """The "sum" is the sum of "none", the "mean" is total / count of "sum_and_count", and
    sample_weight of ones and where all-True change nothing."""
    if is_lazy(backend) and not from_logits:
        pytest.skip(f"{backend}: the reductions are the same code on logits and probabilities")
    y, x = loss.problem(60, (N, C), from_logits=from_logits)
    y_true, y_pred = loss.make_y_true(make, y), make(x)
    S = loss.sample_shape(x.shape)
    kw = {"from_logits": from_logits, "sample_weight": make(SW)}
    none = loss.call(y_true, y_pred, reduction="none", **kw)
    total, count = loss.call(y_true, y_pred, reduction="sum_and_count", **kw)
    _same(total, xp.sum(none), xp=xp, dtype=dtype, device=device)
    _same(loss.call(y_true, y_pred, reduction="mean", **kw), total / count, xp=xp, dtype=dtype,
          device=device)  # fmt: skip
    if not is_lazy(backend):
        _same(loss.call(y_true, y_pred, reduction="sum", **kw), total, xp=xp, dtype=dtype,
              device=device)  # fmt: skip
    plain = {"from_logits": from_logits}
    for reduction in _reds(backend):
        with _case(reduction):
            base = loss.call(y_true, y_pred, reduction=reduction, **plain)
            ones = loss.call(
                y_true, y_pred, reduction=reduction, sample_weight=make(np.ones(S)), **plain
            )
            _same(ones, base, xp=xp, dtype=dtype, device=device)
            everywhere = make(np.ones(S, dtype=bool), "bool")
            masked = loss.call(y_true, y_pred, reduction=reduction, where=everywhere, **plain)
            _same(masked, base, xp=xp, dtype=dtype, device=device)


@pytest.mark.parametrize("loss", losses(accepting="axis"), indirect=True)
def test_axis_equals_moveaxis_for_every_loss(loss, backend, xp, make, dtype, device):
    x = _logits(61, (3, 4, 5))
    y = loss.y_true(62, (3, 4, 5), axis=1)
    kw = {"from_logits": True, "label_smoothing": 0.1}
    y_last = y if loss.target == "labels" else np.moveaxis(y, 1, -1)
    for reduction in _reds(backend):
        with _case(reduction):
            a = loss.call(loss.make_y_true(make, y), make(x), axis=1, reduction=reduction, **kw)
            b = loss.call(
                loss.make_y_true(make, y_last), make(np.moveaxis(x, 1, -1)), reduction=reduction,
                **kw,
            )  # fmt: skip
            _same(a, b, xp=xp, dtype=dtype, device=device)


def test_where_equals_slicing_for_every_loss(loss, backend, xp, make, dtype, device):
    y, x = loss.problem(63, (N, C))
    kw = {"from_logits": True, "label_smoothing": 0.1}
    for reduction in [r for r in _reds(backend) if r != "none"]:
        with _case(reduction):
            masked = loss.call(
                loss.make_y_true(make, y), make(x), where=make(MASK, "bool"),
                sample_weight=make(SW), reduction=reduction, **kw,
            )  # fmt: skip
            sliced = loss.call(
                loss.make_y_true(make, y[MASK]), make(x[MASK]), sample_weight=make(SW[MASK]),
                reduction=reduction, **kw,
            )  # fmt: skip
            _same(masked, sliced, xp=xp, dtype=dtype, device=device)
