"""``xce.value_and_grad``: the analytic gradient against float64 central differences.

For each loss, ``from_logits`` True and False, every option and the reductions "mean", "sum" and
"sum_and_count", the gradient returned on the backend under test is compared with central
differences of xce's *own* loss evaluated on NumPy in float64 at the same (dtype-rounded) inputs,
and the returned loss with the plain loss call. The contract's other rules (same signature,
``reduction="none"`` and foreign functions refused, grad shaped like ``y_pred``) follow.

The cases come from the table of losses (``tests/matrix.py``): each row runs the options of
its target kind that it accepts, with its own hyperparameters set.
"""

from __future__ import annotations

import functools
import inspect
import zlib

import numpy as np
import pytest
from helpers import assert_array_like, assert_close, central_difference, is_lazy, to_numpy
from matrix import ROWS

import xce

LOSSES = {row.name: row for row in ROWS}
N, C = 3, 4
STEP = 1e-6
# The gradient on the backend vs the float64 central difference at the same inputs.
GRAD_TOL = {"float64": (1e-6, 1e-7), "float32": (1e-4, 1e-5)}


# ---------------------------------------------------------------------------------------------
# Cases: NumPy data for (kind, option, from_logits)
# ---------------------------------------------------------------------------------------------


def _pred(rng, shape, from_logits):
    if from_logits:
        return rng.normal(scale=1.5, size=shape)
    # Away from the clip bounds so that the central difference stays smooth.
    return rng.uniform(0.1, 0.9, size=shape)


def _soft(rng, shape, axis=-1):
    w = rng.uniform(0.05, 1.0, size=shape)
    return w / w.sum(axis=axis, keepdims=True)


def _onehot_along(labels, c, axis):
    out = np.eye(c)[labels]  # classes last
    return np.moveaxis(out, -1, axis)


BINARY_OPTIONS = [
    "plain",
    "soft_targets",
    "pos_weight_scalar",
    "pos_weight_0d",
    "pos_weight_vector",
    "sample_weight",
    "sample_weight_full",
    "where",
    "where_rows",
    "label_smoothing",
    "extra_dims",
    "eps",
    "all",
]
CATEGORICAL_OPTIONS = [
    "plain",
    "soft_targets",
    "class_weight",
    "sample_weight",
    "where",
    "label_smoothing",
    "axis1",
    "axis1_all",
    "extra_dims_last",
    "eps",
    "all",
]
LABELS_OPTIONS = [
    "plain",
    "class_weight",
    "sample_weight",
    "where",
    "ignore_index",
    "label_smoothing",
    "axis1",
    "axis1_all",
    "extra_dims_last",
    "eps",
    "all",
]


# The three first losses keep the seeds their cases always had.
SEED_NAMES = {
    "binary_cross_entropy": "binary",
    "categorical_cross_entropy": "categorical",
    "sparse_categorical_cross_entropy": "sparse",
}
OPTIONS = {"binary": BINARY_OPTIONS, "soft": CATEGORICAL_OPTIONS, "labels": LABELS_OPTIONS}
# The option a case is about, where a loss may not take it (the combined cases drop the
# options a loss does not take).
NEEDS = {
    "pos_weight_scalar": "pos_weight",
    "pos_weight_0d": "pos_weight",
    "pos_weight_vector": "pos_weight",
    "class_weight": "class_weight",
    "ignore_index": "ignore_index",
}


def _case(name, option, from_logits):
    """``(y_true, y_pred, arrays, scalars)`` for the loss ``name``: NumPy float64 / int64 / bool
    data, the loss's hyperparameters among the scalars.

    ``arrays`` are keyword options that become backend arrays (``where`` is boolean, the rest
    floating); ``scalars`` are passed through unchanged.
    """
    loss = LOSSES[name]
    y_true, y_pred, arrays, scalars = _target_case(loss.target, option, from_logits, name)
    arrays = {k: v for k, v in arrays.items() if loss.accepts(k)}
    scalars = {**loss.hyper, **{k: v for k, v in scalars.items() if loss.accepts(k)}}
    if not from_logits and loss.target != "binary":
        # Central differences step off the simplex, where rows no longer sum to 1: the
        # gradient of the formula there is what is compared, so the row check is off.
        scalars["validate"] = False
    return y_true, y_pred, arrays, scalars


def _target_case(target, option, from_logits, name):
    seed = zlib.crc32(f"{SEED_NAMES.get(name, name)}/{option}/{from_logits}".encode())
    rng = np.random.default_rng(seed)
    arrays, scalars = {}, {}
    if target == "binary":
        shape = (2, 3, 2) if option == "extra_dims" else (N, 2)
        y_pred = _pred(rng, shape, from_logits)
        if option in ("soft_targets", "all"):
            y_true = rng.uniform(0.0, 1.0, size=shape)
        else:
            y_true = rng.integers(0, 2, size=shape).astype(np.float64)
        if option == "pos_weight_scalar":
            scalars["pos_weight"] = 2.5
        if option == "pos_weight_0d":
            arrays["pos_weight"] = np.asarray(2.5)
        if option in ("pos_weight_vector", "all"):
            arrays["pos_weight"] = np.array([2.0, 0.5])
        if option in ("sample_weight", "all"):
            arrays["sample_weight"] = np.array([1.0, 2.0, 0.5])
        if option == "sample_weight_full":
            arrays["sample_weight"] = rng.uniform(0.2, 2.0, size=shape)
        if option == "extra_dims":
            arrays["sample_weight"] = np.array([0.5, 2.0])  # a prefix of S = (2, 3, 2)
            arrays["where"] = np.array([[True, False, True], [True, True, False]])
        if option in ("where", "all"):
            arrays["where"] = np.array([[True, False], [True, True], [False, True]])
        if option == "where_rows":
            arrays["where"] = np.array([True, False, True])
        if option in ("label_smoothing", "all"):
            scalars["label_smoothing"] = 0.2
        if option == "eps":
            scalars["eps"] = 1e-3
            if not from_logits:  # clipped at both ends: a zero derivative there
                y_pred[0, 0], y_pred[1, 1] = 2e-4, 1 - 2e-4
        return y_true, y_pred, arrays, scalars

    axis = 1 if option.startswith("axis1") else -1
    if option.startswith("axis1"):
        shape, s_shape = (2, C, 3), (2, 3)
    elif option == "extra_dims_last":
        shape, s_shape = (2, 3, C), (2, 3)
    else:
        shape, s_shape = (N, C), (N,)
    y_pred = _pred(rng, shape, from_logits)
    labels = rng.integers(0, C, size=s_shape)
    if target == "labels":
        if option in ("ignore_index", "all"):
            labels.flat[1] = -100
            scalars["ignore_index"] = -100
        if option == "axis1_all":
            labels[1, 2] = 7
            scalars["ignore_index"] = 7  # any integer may be the ignored one
        y_true = labels.astype(np.int64)
    elif option in ("soft_targets", "all", "axis1_all"):
        y_true = _soft(rng, shape, axis=axis)
    else:
        y_true = _onehot_along(labels, C, axis)
    if axis == 1:
        scalars["axis"] = 1
    if option in ("class_weight", "all", "axis1_all"):
        arrays["class_weight"] = np.array([0.5, 2.0, 1.0, 3.0])
    if option in ("sample_weight", "all"):
        arrays["sample_weight"] = np.array([1.0, 0.25, 2.0])
    if option == "axis1_all":
        arrays["sample_weight"] = np.array([1.5, 0.5])  # prefix of S = (2, 3)
        arrays["where"] = np.array([[True, True, False], [True, True, True]])
        scalars["label_smoothing"] = 0.1
    if option == "extra_dims_last":
        arrays["where"] = np.array([True, False])  # prefix of S = (2, 3)
        arrays["sample_weight"] = np.array([[1.0, 2.0, 0.5], [1.0, 1.0, 1.0]])
    if option in ("where", "all"):
        arrays["where"] = np.array([True, False, True])
    if option in ("label_smoothing", "all"):
        scalars["label_smoothing"] = 0.15
    if option == "eps":
        scalars["eps"] = 1e-3
        if not from_logits:  # the target class of sample 0 is clipped: a zero derivative there
            y_pred[0, labels[0]] = 2e-4
    return y_true, y_pred, arrays, scalars


def _all_cases():
    for row in ROWS:
        for option in OPTIONS[row.target]:
            if option in NEEDS and not row.accepts(NEEDS[option]):
                continue
            yield pytest.param(row, option, id=f"{row.name}-{option}")


def _round(a, dtype_name):
    """float64 NumPy data rounded to ``dtype_name`` and widened back (what the library sees)."""
    a = np.asarray(a)
    if a.dtype.kind == "f":
        return a.astype(dtype_name).astype(np.float64)
    return a


def _to_backend(make, data, kind_of):
    if kind_of == "bool":
        return make(data, "bool")
    if kind_of == "int":
        return make(data, "int64")
    return make(data)


# ---------------------------------------------------------------------------------------------
# Central differences of xce's own loss on NumPy float64 (cached across backends)
# ---------------------------------------------------------------------------------------------


@functools.cache
def _numeric(kind, option, from_logits, reduction, dtype_name):
    y_true, y_pred, arrays, scalars = _case(kind, option, from_logits)
    y_true, y_pred = _round(y_true, dtype_name), _round(y_pred, dtype_name)
    kw = {k: (_round(v, dtype_name) if v.dtype.kind == "f" else v) for k, v in arrays.items()}
    kw.update(scalars)
    fn = LOSSES[kind].fn

    def total(p):
        out = fn(y_true, p, from_logits=from_logits, reduction=reduction, **kw)
        if reduction == "sum_and_count":
            out = out[0]
        return float(out)

    return central_difference(total, y_pred, STEP)


def _dtype_name(xp, dtype):
    return "float64" if dtype == xp.float64 else "float32"


def _backend_call(kind, option, from_logits, make):
    y_true, y_pred, arrays, scalars = _case(kind, option, from_logits)
    bt = _to_backend(make, y_true, "int" if LOSSES[kind].target == "labels" else "float")
    bp = make(y_pred)
    kw = {
        k: _to_backend(make, v, "bool" if v.dtype == bool else "float") for k, v in arrays.items()
    }
    kw.update(scalars)
    return bt, bp, kw


# ---------------------------------------------------------------------------------------------
# The gradient and the value
# ---------------------------------------------------------------------------------------------


# "sum_and_count" differentiates the same total as "sum": a few options suffice for it.
SUM_AND_COUNT_OPTIONS = ("plain", "all", "axis1_all", "extra_dims", "eps")
# On lazy backends (a compile or a graph per call) the combined options stand for the others.
LAZY_OPTIONS = ("plain", "all", "axis1_all", "extra_dims", "eps")


def _gradient_cases():
    for param in _all_cases():
        row, option = param.values
        for reduction in ("mean", "sum", "sum_and_count"):
            if reduction == "sum_and_count" and option not in SUM_AND_COUNT_OPTIONS:
                continue
            for from_logits in (True, False):
                yield pytest.param(
                    row,
                    option,
                    from_logits,
                    reduction,
                    id=f"{row.name}-{option}-{'logits' if from_logits else 'probs'}-{reduction}",
                )


@pytest.mark.parametrize(
    ("loss", "option", "from_logits", "reduction"), list(_gradient_cases()), indirect=["loss"]
)
def test_gradient_matches_central_differences(
    loss, option, from_logits, reduction, backend, xp, dtype, device, make
):
    if is_lazy(backend) and option not in LAZY_OPTIONS:
        pytest.skip(f"{backend}: the combined options {LAZY_OPTIONS} cover this one")
    kind, fn = loss.name, loss.fn
    y_true, y_pred, kw = _backend_call(loss.name, option, from_logits, make)
    value, grad = xce.value_and_grad(fn)(
        y_true, y_pred, from_logits=from_logits, reduction=reduction, **kw
    )
    plain = fn(y_true, y_pred, from_logits=from_logits, reduction=reduction, **kw)

    name = _dtype_name(xp, dtype)
    if reduction == "sum_and_count":
        (total, count), (plain_total, plain_count) = value, plain
        assert_close(total, to_numpy(plain_total), xp=xp, dtype=dtype, device=device)
        assert_close(count, to_numpy(plain_count), xp=xp, dtype=dtype, device=device)
    else:
        assert_close(value, to_numpy(plain), xp=xp, dtype=dtype, device=device)
        assert np.isfinite(to_numpy(value))

    expected = _numeric(kind, option, from_logits, reduction, name)
    rtol, atol = GRAD_TOL[name]
    # assert_close checks namespace, dtype, device and shape of the gradient first.
    assert_close(grad, expected, xp=xp, dtype=dtype, device=device, rtol=rtol, atol=atol)


def test_keyword_call_and_defaults(loss, xp, dtype, device, make):
    # y_true / y_pred by keyword; the default reduction is "mean", from_logits False.
    y_true, y_pred, kw = _backend_call(loss.name, "plain", False, make)  # kw: hyperparameters
    vg = xce.value_and_grad(loss.fn)
    value, grad = vg(y_true=y_true, y_pred=y_pred, **kw)
    value2, grad2 = vg(y_true, y_pred, reduction="mean", from_logits=False, **kw)
    assert_close(value, to_numpy(loss.fn(y_true, y_pred, **kw)), xp=xp, dtype=dtype, device=device)
    assert_close(grad, to_numpy(grad2), xp=xp, dtype=dtype, device=device)
    assert_close(
        grad,
        _numeric(loss.name, "plain", False, "mean", _dtype_name(xp, dtype)),
        xp=xp,
        dtype=dtype,
        device=device,
        rtol=GRAD_TOL[_dtype_name(xp, dtype)][0],
        atol=GRAD_TOL[_dtype_name(xp, dtype)][1],
    )
    assert_array_like(value2, xp=xp, dtype=dtype, device=device, shape=())


def test_reduction_none_is_refused(loss, make):
    y_true, y_pred, kw = _backend_call(loss.name, "plain", True, make)
    with pytest.raises(ValueError, match="reduction"):
        xce.value_and_grad(loss.fn)(y_true, y_pred, from_logits=True, reduction="none", **kw)


def _my_loss(y_true, y_pred, **kwargs):
    return xce.binary_cross_entropy(y_true, y_pred, **kwargs)


@pytest.mark.parametrize(
    "fn",
    [
        _my_loss,
        lambda y_true, y_pred: xce.categorical_cross_entropy(y_true, y_pred),
        xce.logsumexp,
        xce.softmax,
        np.mean,
        "binary_cross_entropy",
        None,
    ],
    ids=["wrapper", "lambda", "logsumexp", "softmax", "np.mean", "str", "None"],
)
def test_other_functions_are_a_type_error(fn, make):
    y_true, y_pred, _ = _backend_call("binary_cross_entropy", "plain", True, make)
    with pytest.raises(TypeError):
        xce.value_and_grad(fn)(y_true, y_pred)


def test_value_and_grad_of_value_and_grad_is_a_type_error(make):
    y_true, y_pred, _ = _backend_call("binary_cross_entropy", "plain", True, make)
    with pytest.raises(TypeError):
        xce.value_and_grad(xce.value_and_grad(xce.binary_cross_entropy))(y_true, y_pred)


def test_signature_is_preserved(loss):
    fn = loss.fn
    vg = xce.value_and_grad(fn)
    assert inspect.signature(vg) == inspect.signature(fn)
    params = inspect.signature(vg).parameters
    assert list(params)[:2] == ["y_true", "y_pred"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(params.values())[2:])


def test_gradient_does_not_depend_on_a_previous_call(loss, xp, dtype, device, make):
    # Two different inputs through one wrapped function: no state is carried between calls.
    vg = xce.value_and_grad(loss.fn)
    a = _backend_call(loss.name, "plain", True, make)
    b = _backend_call(loss.name, "all", True, make)
    _, grad_a1 = vg(a[0], a[1], from_logits=True, reduction="sum", **a[2])
    vg(b[0], b[1], from_logits=True, reduction="sum", **b[2])
    _, grad_a2 = vg(a[0], a[1], from_logits=True, reduction="sum", **a[2])
    assert_close(grad_a2, to_numpy(grad_a1), xp=xp, dtype=dtype, device=device, rtol=0, atol=0)
