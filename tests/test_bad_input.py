"""Bad input: every rule of the contract's "Errors" section, on every backend.

Each metadata error is raised before any data is read, with the exception type the contract
names and a message that names the offending argument. Value errors (labels out of range,
probabilities outside [0, 1]) are raised where the data is eager on the host; on lazy backends
(JAX, Dask) and with ``validate=False`` the affected row is NaN instead (never a silent wrap or
clamp) and the other rows stay exact. The caller's arrays are never mutated.

Every rule runs for every loss of the table that it applies to (the ``loss`` fixture,
``tests/matrix.py``), with the loss's own hyperparameters set; the hyperparameters' own bad
values come from ``matrix.BAD_HYPERPARAMETERS``.
"""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest
from helpers import assert_close, central_difference, is_lazy, seen, to_numpy
from matrix import BAD_HYPERPARAMETERS, losses

import xce
from xce._table import support_table

N, C = 3, 4


# ---------------------------------------------------------------------------------------------
# Small builders
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def arr(xp, device):
    """``arr(data, "float64")``: an array of the backend under test on the fixture's device."""

    def build(data, dtype_name="float64"):
        return xp.asarray(np.asarray(data), dtype=getattr(xp, dtype_name), device=device)

    return build


def _logits(n=N, c=C, seed=0):
    return np.random.default_rng(seed).normal(size=(n, c))


def _probs(n=N, c=C, seed=0):
    e = np.exp(_logits(n, c, seed))
    return e / e.sum(axis=-1, keepdims=True)


def _onehot(labels, c=C):
    return np.eye(c)[np.asarray(labels)]


LABELS = [0, 2, 3]


def _valid_call(loss, arr):
    """(loss function with its hyperparameters, y_true, y_pred): a well-formed call of ``loss``
    (a row of the matrix) on logits, float64."""
    if loss.target == "binary":
        y, p = arr([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), arr(_logits(N, 2))
    elif loss.target == "soft":
        y, p = arr(_onehot(LABELS)), arr(_logits())
    else:
        y, p = arr(LABELS, "int64"), arr(_logits())
    return loss.call, y, p


def _class_count(loss):
    return 2 if loss.target == "binary" else C


def _narrow(**which):
    """Run the test for the losses of the table that ``which`` selects (see matrix.losses)."""
    return pytest.mark.parametrize("loss", losses(**which), indirect=True)


# ---------------------------------------------------------------------------------------------
# Sanity: the well-formed calls used below are accepted
# ---------------------------------------------------------------------------------------------


def test_valid_call_is_accepted(loss, arr):
    fn, y, p = _valid_call(loss, arr)
    fn(y, p, from_logits=True)


# ---------------------------------------------------------------------------------------------
# Shapes of y_true vs y_pred
# ---------------------------------------------------------------------------------------------


def test_binary_n_vs_n1_is_not_broadcast(arr):
    y = arr([1.0, 0.0, 1.0])  # (N,)
    p = arr([[0.3], [0.2], [0.9]])  # (N, 1)
    with pytest.raises(ValueError, match=r"y_true|y_pred"):
        xce.binary_cross_entropy(y, p)
    with pytest.raises(ValueError, match=r"y_true|y_pred"):
        xce.binary_cross_entropy(arr([[1.0], [0.0], [1.0]]), arr([0.3, 0.2, 0.9]))


def test_categorical_shape_mismatch(arr):
    with pytest.raises(ValueError, match=r"y_true|y_pred"):
        xce.categorical_cross_entropy(arr(_onehot(LABELS)), arr(_logits(C, N)), from_logits=True)
    with pytest.raises(ValueError, match=r"y_true|y_pred"):
        xce.categorical_cross_entropy(
            arr(_onehot(LABELS)[:, None, :]), arr(_logits()), from_logits=True
        )


def test_sparse_n1_labels_are_not_broadcast(arr):
    y = arr([[0], [2], [3]], "int64")  # (N, 1) against S = (N,)
    with pytest.raises(ValueError, match=r"y_true|y_pred"):
        xce.sparse_categorical_cross_entropy(y, arr(_logits()), from_logits=True)


def test_sparse_labels_must_match_y_pred_without_class_axis(arr):
    p = arr(_logits(N, C * 2).reshape(N, C, 2))  # (N, C, 2)
    labels = arr(np.zeros((N, 2), dtype=np.int64), "int64")
    # S is (N, C) for axis=-1 and (N, 2) for axis=1: the same labels fit only the second.
    xce.sparse_categorical_cross_entropy(labels, p, from_logits=True, axis=1)
    with pytest.raises(ValueError, match=r"y_true|y_pred"):
        xce.sparse_categorical_cross_entropy(labels, p, from_logits=True, axis=-1)
    with pytest.raises(ValueError, match=r"y_true|y_pred"):
        xce.sparse_categorical_cross_entropy(arr([0, 1], "int64"), arr(_logits()), from_logits=True)


# ---------------------------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------------------------


def test_sparse_float_labels_are_a_type_error(arr):
    with pytest.raises(TypeError, match="y_true"):
        xce.sparse_categorical_cross_entropy(arr([0.0, 2.0, 3.0]), arr(_logits()), from_logits=True)


def test_sparse_bool_labels_are_a_type_error(arr):
    with pytest.raises(TypeError, match="y_true"):
        xce.sparse_categorical_cross_entropy(
            arr([True, False, True], "bool"), arr(_logits(N, 2)), from_logits=True
        )


@pytest.mark.parametrize("from_logits", [True, False])
def test_integer_y_pred_is_a_type_error(loss, from_logits, arr):
    fn, y, _ = _valid_call(loss, arr)
    p = arr(np.ones((N, _class_count(loss)), dtype=np.int64), "int64")
    with pytest.raises(TypeError, match="y_pred"):
        fn(y, p, from_logits=from_logits)


# ---------------------------------------------------------------------------------------------
# Number of classes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("c", [1, 0])
def test_categorical_needs_two_classes(c, arr):
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        xce.categorical_cross_entropy(arr(np.ones((N, c))), arr(np.zeros((N, c))), from_logits=True)


@pytest.mark.parametrize("c", [1, 0])
def test_sparse_needs_two_classes(c, arr):
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        xce.sparse_categorical_cross_entropy(
            arr([0, 0, 0], "int64"), arr(np.zeros((N, c))), from_logits=True
        )


def test_single_class_along_axis_1(arr):
    p = arr(np.zeros((N, 1, 2)))
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        xce.sparse_categorical_cross_entropy(
            arr(np.zeros((N, 2), dtype=np.int64), "int64"), p, from_logits=True, axis=1
        )


# ---------------------------------------------------------------------------------------------
# Scalar options
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["avg", "Mean", "batchmean", None])
def test_unknown_reduction(loss, reduction, arr):
    fn, y, p = _valid_call(loss, arr)
    with pytest.raises(ValueError, match="reduction"):
        fn(y, p, from_logits=True, reduction=reduction)


@pytest.mark.parametrize("smoothing", [-0.1, 1.5])
def test_label_smoothing_out_of_range(loss, smoothing, arr):
    fn, y, p = _valid_call(loss, arr)
    with pytest.raises(ValueError, match="label_smoothing"):
        fn(y, p, from_logits=True, label_smoothing=smoothing)


@pytest.mark.parametrize("smoothing", [0.0, 1.0])
def test_label_smoothing_bounds_are_accepted(loss, smoothing, arr):
    fn, y, p = _valid_call(loss, arr)
    fn(y, p, from_logits=True, label_smoothing=smoothing)


@_narrow(accepting="axis")
@pytest.mark.parametrize("axis", [2, -3, 5])
def test_axis_out_of_range(loss, axis, arr):
    fn, y, p = _valid_call(loss, arr)
    with pytest.raises(ValueError, match="axis"):
        fn(y, p, from_logits=True, axis=axis)


@pytest.mark.parametrize("validate", ["yes", "true", "never", None])
def test_bad_validate(loss, validate, arr):
    fn, y, p = _valid_call(loss, arr)
    with pytest.raises(ValueError, match="validate"):
        fn(y, p, from_logits=True, validate=validate)


@pytest.mark.parametrize("eps", [-1e-3, 0.5, 0.7, 1.0])
def test_bad_eps(loss, eps, arr):
    fn, y, p = _valid_call(loss, arr)
    with pytest.raises(ValueError, match="eps"):
        fn(y, p, eps=eps)


@pytest.mark.parametrize("eps", [0.0, 1e-3, 0.49])
def test_eps_in_range_is_accepted(loss, eps, arr):
    fn, y, _ = _valid_call(loss, arr)
    p = arr(_probs(N, _class_count(loss)))
    fn(y, p, eps=eps)


def _bad_hyperparameters():
    for param in losses():
        row = param.values[0]
        for name in row.hyper:
            for value, error in BAD_HYPERPARAMETERS[name]:
                yield pytest.param(row, name, value, error, id=f"{row.name}-{name}={value}")


@pytest.mark.parametrize(
    ("loss", "name", "value", "error"), list(_bad_hyperparameters()), indirect=["loss"]
)
def test_bad_hyperparameter(loss, name, value, error, arr):
    fn, y, p = _valid_call(loss, arr)
    with pytest.raises(error, match=name):
        fn(y, p, from_logits=True, **{name: value})
    vg = xce.value_and_grad(loss.fn)
    with pytest.raises(error, match=name):
        vg(y, p, from_logits=True, **{**loss.hyper, name: value})


# ---------------------------------------------------------------------------------------------
# Weight and mask shapes
# ---------------------------------------------------------------------------------------------


@_narrow(accepting="class_weight")
@pytest.mark.parametrize("shape", [(C - 1,), (C + 1,), (1, C), (N, C)])
def test_class_weight_shape(loss, shape, arr):
    fn, y, p = _valid_call(loss, arr)
    with pytest.raises(ValueError, match="class_weight"):
        fn(y, p, from_logits=True, class_weight=arr(np.ones(shape)))


@_narrow(accepting="pos_weight")
@pytest.mark.parametrize("shape", [(3,), (1,), (N, 2), (1, 2)])
def test_pos_weight_shape(loss, shape, arr):
    fn, y, p = _valid_call(loss, arr)  # y_pred is (N, 2): pos_weight must have length 2
    with pytest.raises(ValueError, match="pos_weight"):
        fn(y, p, from_logits=True, pos_weight=arr(np.full(shape, 2.0)))


@_narrow(accepting="pos_weight")
def test_pos_weight_accepted_forms(loss, arr):
    fn, y, p = _valid_call(loss, arr)
    for pw in (2.0, 3, arr(2.0), arr([2.0, 0.5])):
        fn(y, p, from_logits=True, pos_weight=pw)


def test_sample_weight_n1_against_n(loss, arr):
    fn, y, p = _valid_call(loss, arr)
    if loss.target == "binary":  # S = (N,) for binary needs a 1-D y_pred
        y, p = arr([1.0, 0.0, 1.0]), arr([0.5, -1.0, 2.0])
    with pytest.raises(ValueError, match="sample_weight"):
        fn(y, p, from_logits=True, sample_weight=arr(np.ones((N, 1))))


def test_sample_weight_trailing_instead_of_leading(loss, arr):
    # S = (2, 3): a (3,) weight matches the *trailing* dimension only, which is not a prefix.
    fn = loss.call
    if loss.target == "binary":
        y, p = arr(np.ones((2, 3))), arr(_logits(2, 3))
    elif loss.target == "soft":
        y, p = arr(_onehot(np.zeros((2, 3), dtype=int))), arr(_logits(6, C).reshape(2, 3, C))
    else:
        y, p = arr(np.zeros((2, 3), dtype=np.int64), "int64"), arr(_logits(6, C).reshape(2, 3, C))
    fn(y, p, from_logits=True, sample_weight=arr(np.ones(2)))  # a leading prefix: fine
    fn(y, p, from_logits=True, sample_weight=arr(1.0))  # 0-d: fine
    with pytest.raises(ValueError, match="sample_weight"):
        fn(y, p, from_logits=True, sample_weight=arr(np.ones(3)))
    with pytest.raises(ValueError, match="sample_weight"):
        fn(y, p, from_logits=True, sample_weight=arr(np.ones((3, 2))))


@pytest.mark.parametrize("value", [1.0, 2, 0.5])
def test_python_number_sample_weight_is_its_0d_array(loss, value, arr):
    # Host data (numbers, NumPy, sequences) is converted to y_pred's library.
    fn, y, p = _valid_call(loss, arr)
    got = fn(y, p, from_logits=True, sample_weight=value, reduction="sum")
    expected = fn(y, p, from_logits=True, sample_weight=arr(np.asarray(float(value))),
                  reduction="sum")  # fmt: skip
    np.testing.assert_allclose(to_numpy(got), to_numpy(expected), rtol=1e-6)


def test_where_shape(loss, arr):
    fn, y, p = _valid_call(loss, arr)
    # (N, 1) is not a leading prefix of S = (N,) (categorical, sparse) nor of S = (N, 2) (binary).
    with pytest.raises(ValueError, match="where"):
        fn(y, p, from_logits=True, where=arr(np.ones((N, 1), dtype=bool), "bool"))
    with pytest.raises(ValueError, match="where"):
        fn(y, p, from_logits=True, where=arr(np.ones(N + 1, dtype=bool), "bool"))


@pytest.mark.parametrize("dtype_name", ["float64", "int64"])
def test_non_bool_where_is_a_type_error(loss, dtype_name, arr):
    fn, y, p = _valid_call(loss, arr)
    with pytest.raises(TypeError, match="where"):
        fn(y, p, from_logits=True, where=arr(np.ones(N), dtype_name))


# ---------------------------------------------------------------------------------------------
# Mixed libraries and devices
# ---------------------------------------------------------------------------------------------


def _foreign(backend, data, dtype_name):
    """``data`` as an array of a library *other* than the backend under test and not host data
    (NumPy arrays, numbers and sequences are converted to y_pred's library: test_habits.py)."""
    if backend == "array_api_strict":
        pytest.skip("array_api_strict: its session installs no second non-host library")
    import array_api_strict

    return array_api_strict.asarray(np.asarray(data), dtype=getattr(array_api_strict, dtype_name))


def test_mixed_libraries_y_true(loss, backend, arr):
    fn, y, p = _valid_call(loss, arr)
    y_foreign = _foreign(backend, to_numpy(y), "int64" if loss.target == "labels" else "float64")
    with pytest.raises(TypeError, match=r"y_true|y_pred"):
        fn(y_foreign, p, from_logits=True)


@_narrow(accepting="class_weight")
def test_mixed_libraries_class_weight(loss, backend, arr):
    fn, y, p = _valid_call(loss, arr)
    with pytest.raises(TypeError, match="class_weight"):
        fn(y, p, from_logits=True, class_weight=_foreign(backend, np.ones(C), "float64"))


def test_mixed_libraries_sample_weight(loss, backend, arr):
    fn, y, p = _valid_call(loss, arr)
    with pytest.raises(TypeError, match="sample_weight"):
        fn(y, p, from_logits=True, sample_weight=_foreign(backend, np.ones(N), "float64"))


def _other_device(backend, xp, device):
    """A second device of the backend under test, or skip."""
    if backend == "array_api_strict":
        other = xp.Device("CPU_DEVICE")
        assert other != device
        return other
    if backend in ("torch", "torch_cuda"):
        import torch

        if not torch.cuda.is_available():
            pytest.skip("torch: no second device here (CUDA is not available)")
        return torch.device("cpu") if backend == "torch_cuda" else torch.device("cuda")
    if backend == "jax":
        import jax

        if len(jax.devices()) < 2:
            pytest.skip("jax: only one device here")
        return jax.devices()[1]
    pytest.skip(f"{backend}: arrays live on a single device ('cpu' / the current GPU)")


def test_mixed_devices(loss, backend, xp, device):
    other = _other_device(backend, xp, device)
    fn, y, p = _valid_call(
        loss, lambda d, t="float64": xp.asarray(np.asarray(d), dtype=getattr(xp, t), device=device)
    )
    y_other = xp.asarray(to_numpy(y), device=other)
    with pytest.raises(ValueError, match=r"y_true|y_pred"):
        fn(y_other, p, from_logits=True)
    with pytest.raises(ValueError, match="sample_weight"):
        fn(y, p, from_logits=True, sample_weight=xp.asarray(np.ones(N), device=other))
    if loss.accepts("class_weight"):
        with pytest.raises(ValueError, match="class_weight"):
            fn(y, p, from_logits=True, class_weight=xp.asarray(np.ones(C), device=other))


# ---------------------------------------------------------------------------------------------
# Values: eager backends raise
# ---------------------------------------------------------------------------------------------


def _require_eager(backend):
    if is_lazy(backend):
        pytest.skip(f"{backend}: validate='auto' does not read the data (lazy or GPU backend)")


# -100 is torch's default ignore_index, which its own kernels skip without a word; the int64
# extremes are the values a range check by arithmetic could wrap around.
@pytest.mark.parametrize(
    ("bad", "ignore_index"),
    [(bad, ignore_index) for bad in (C, C + 7, -1, -2, -100, -(2**63), 2**63 - 1)
     for ignore_index in (None, -100) if bad != ignore_index],  # an ignored label is not bad
)  # fmt: skip
@pytest.mark.parametrize("with_grad", [False, True], ids=["loss", "value_and_grad"])
@_narrow(targets=("labels",))
def test_label_out_of_range_raises_on_eager(loss, bad, ignore_index, with_grad, backend, arr):
    _require_eager(backend)
    labels = arr([0, bad, 1], "int64")
    fn = xce.value_and_grad(loss.fn) if with_grad else loss.fn
    with pytest.raises(ValueError, match="y_true"):
        fn(labels, arr(_logits()), from_logits=True, ignore_index=ignore_index, **loss.hyper)


@pytest.mark.parametrize("validate", [True, "auto"])
@_narrow(targets=("labels",))
def test_label_out_of_range_with_axis_1(loss, validate, backend, arr):
    if validate == "auto":
        _require_eager(backend)
    labels = arr([[0, 1], [2, C]], "int64")  # S = (2, 2), y_pred (2, C, 2)
    with pytest.raises(ValueError, match="y_true"):
        loss.call(
            labels,
            arr(_logits(4, C).reshape(2, C, 2)),
            from_logits=True,
            axis=1,
            validate=validate,
        )


@pytest.mark.parametrize("bad", [1.5, -0.25])
def test_probabilities_outside_unit_interval_suggest_from_logits(loss, bad, backend, arr):
    _require_eager(backend)
    fn, y, _ = _valid_call(loss, arr)
    p = _probs(N, _class_count(loss))
    p[1, 0] = bad
    with pytest.raises(ValueError, match="from_logits=True"):
        fn(y, arr(p))


@_narrow(targets=("binary", "soft"))
@pytest.mark.parametrize("bad", [1.5, -0.5])
@pytest.mark.parametrize("from_logits", [True, False])
def test_targets_outside_unit_interval(loss, bad, from_logits, backend, arr):
    _require_eager(backend)
    fn, y, _ = _valid_call(loss, arr)
    y = to_numpy(y).copy()
    y[0, 0] = bad
    p = _logits(N, _class_count(loss)) if from_logits else _probs(N, _class_count(loss))
    with pytest.raises(ValueError, match="y_true"):
        fn(arr(y), arr(p), from_logits=from_logits)


@pytest.mark.parametrize("bad", [C, -1])
@_narrow(targets=("labels",))
def test_validate_true_forces_the_check(loss, bad, backend, arr):
    # Everywhere, including Dask and (concrete, non-traced) JAX arrays.
    with pytest.raises(ValueError, match="y_true"):
        loss.call(arr([0, bad, 1], "int64"), arr(_logits()), from_logits=True, validate=True)


def test_validate_true_forces_the_probability_check(loss, arr):
    fn, y, _ = _valid_call(loss, arr)
    p = _probs(N, _class_count(loss))
    p[2, 1] = 1.25
    with pytest.raises(ValueError, match="from_logits=True"):
        fn(y, arr(p), validate=True)


@pytest.mark.parametrize("from_logits", [True, False])
@_narrow(accepting="ignore_index")
def test_ignore_index_is_not_an_error(loss, from_logits, xp, dtype, make):
    labels = np.array([0, -100, 3])
    y_pred = make(_logits() if from_logits else _probs())
    out = loss.call(
        make(labels, "int64"),
        y_pred,
        from_logits=from_logits,
        ignore_index=-100,
        reduction="none",
    )
    expected = loss.expected(
        labels, seen(y_pred), from_logits=from_logits, ignore_index=-100, reduction="none"
    )
    assert expected[1] == 0.0
    assert_close(out, expected, xp=xp, dtype=dtype, device=_dev(y_pred))


def _dev(a):
    return array_api_compat.device(a)


# ---------------------------------------------------------------------------------------------
# Values unchecked: a NaN row, never a wrap or a clamp
# ---------------------------------------------------------------------------------------------


def _expected_rows(loss, x, labels):
    """The reference's per-row loss in float64; NaN where the label is not in [0, C)."""
    ok = (labels >= 0) & (labels < x.shape[-1])
    rows = loss.expected(np.where(ok, labels, 0), x, from_logits=True, reduction="none")
    return np.where(ok, rows, np.nan)


def _expected_grad_sum(loss, x, labels, step=1e-6):
    """Central differences of the reference's "sum" in float64; NaN rows where the label is
    not in [0, C)."""
    ok = (labels >= 0) & (labels < x.shape[-1])
    y = np.where(ok, labels, 0)

    def total(z):
        return float(np.sum(loss.expected(y, z, from_logits=True, reduction="none")[ok]))

    g = central_difference(total, x, step)
    g[~ok] = np.nan
    return g


def _unchecked_cases(backend):
    """validate settings under which ``backend`` does not check label values."""
    settings = [False]
    if is_lazy(backend):
        settings.append("auto")
    return settings


@pytest.mark.parametrize("validate", [False, "auto"])
@pytest.mark.parametrize("bad", [C, C + 3, -1])
@pytest.mark.parametrize("ignore_index", [None, -100])
@_narrow(targets=("labels",))
def test_unchecked_label_gives_a_nan_row(
    loss, validate, bad, ignore_index, backend, xp, dtype, make
):
    if validate not in _unchecked_cases(backend):
        pytest.skip(f"{backend}: validate={validate!r} checks the labels (tested above)")
    x = _logits(4, C, seed=3)
    labels = np.array([1, bad, 0, 3])
    y_pred = make(x)
    y_true = make(labels, "int64")
    kw = {"from_logits": True, "validate": validate, "ignore_index": ignore_index}
    out = loss.call(y_true, y_pred, reduction="none", **kw)
    rounded = seen(y_pred)
    expected = _expected_rows(loss, rounded, labels)
    assert np.isnan(expected[1])
    assert_close(out, expected, xp=xp, dtype=dtype, device=_dev(y_pred))

    for reduction in ("mean", "sum"):
        total = loss.call(y_true, y_pred, reduction=reduction, **kw)
        assert np.isnan(to_numpy(total)), f"reduction={reduction!r} should be NaN"

    vg = xce.value_and_grad(loss.fn)
    value, grad = vg(y_true, y_pred, reduction="sum", **loss.hyper, **kw)
    assert np.isnan(to_numpy(value))
    g = seen(grad)
    assert np.isnan(g[1]).all(), f"gradient row of the bad label should be NaN, got {g[1]}"
    assert np.isfinite(np.delete(g, 1, axis=0)).all()
    tol = {} if dtype == xp.float32 else {"rtol": 1e-6, "atol": 1e-7}  # central differences
    assert_close(
        grad, _expected_grad_sum(loss, rounded, labels), xp=xp, dtype=dtype,
        device=_dev(y_pred), **tol,
    )  # fmt: skip


@pytest.mark.parametrize("validate", [False, "auto"])
@_narrow(targets=("labels",))
def test_unchecked_label_with_extra_dims(loss, validate, backend, xp, dtype, make):
    if validate not in _unchecked_cases(backend):
        pytest.skip(f"{backend}: validate={validate!r} checks the labels (tested above)")
    x = _logits(2 * 3, C, seed=5).reshape(2, 3, C)  # (N, T, C), axis=-1
    labels = np.array([[0, C, 1], [3, 2, -1]])
    y_pred = make(x)
    out = loss.call(
        make(labels, "int64"), y_pred, from_logits=True, reduction="none", validate=validate
    )
    rounded = seen(y_pred).reshape(6, C)
    expected = _expected_rows(loss, rounded, labels.reshape(6)).reshape(2, 3)
    assert_close(out, expected, xp=xp, dtype=dtype, device=_dev(y_pred))


# What the bad entries hold is not part of the rule; NumPy-backed kernels may warn computing
# them (a negative base under the focal factor's fractional power).
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("validate", [False, "auto"])
@pytest.mark.parametrize("what", ["probability", "target"])
def test_unchecked_value_outside_unit_interval_is_nan(loss, what, validate, backend, make):
    """Where values are not read (validate="auto" on lazy or device data), probabilities and
    targets outside [0, 1] make their entries NaN (the support tables' "NaN entry"), never a
    clipped number; validate=False reads and poisons nothing. The other rows stay exact."""
    if validate not in _unchecked_cases(backend):
        pytest.skip(f"{backend}: validate={validate!r} checks the values (tested above)")
    if what == "target" and loss.target == "labels":
        pytest.skip("labels are integers: their range is the class count (tested above)")
    row = {r[0]: r[2] for r in support_table(loss.info)}[backend]
    if validate == "auto":
        assert "NaN entry" in row, row
    fn, y, _ = _valid_call(loss, make)
    p = _probs(N, _class_count(loss))
    y = to_numpy(y).copy()
    if what == "probability":
        p[1, 0], p[2, 1] = 1.5, -0.25
    else:
        y[1, 0], y[2, 1] = 1.5, -0.5
    y_true, y_pred = (make(y, "int64") if loss.target == "labels" else make(y)), make(p)
    out = seen(fn(y_true, y_pred, reduction="none", validate=validate))
    y_seen = to_numpy(y_true) if loss.target == "labels" else seen(y_true)
    expected = loss.expected(y_seen[:1], seen(y_pred)[:1], reduction="none")
    np.testing.assert_allclose(out[:1], expected, rtol=2e-5, atol=2e-6)
    if validate == "auto":  # validate=False: the formula on the values as given
        broken = (out[1, 0], out[2, 1]) if loss.target == "binary" else (out[1], out[2])
        assert np.isnan(broken).all()


# ---------------------------------------------------------------------------------------------
# The caller's arrays are never mutated
# ---------------------------------------------------------------------------------------------


def _snapshot(arrays):
    return {k: to_numpy(v).copy() for k, v in arrays.items() if not isinstance(v, (int, float))}


def _assert_unchanged(before, arrays):
    for k, old in before.items():
        new = to_numpy(arrays[k])
        assert new.dtype == old.dtype, k
        np.testing.assert_array_equal(new, old, err_msg=f"{k} was mutated")


@pytest.mark.parametrize("from_logits", [True, False])
def test_inputs_are_not_mutated(loss, from_logits, backend, make):
    rng = np.random.default_rng(11)
    if loss.target == "binary":
        y = rng.uniform(size=(N, 2))
        p = rng.normal(size=(N, 2)) if from_logits else rng.uniform(0.05, 0.95, size=(N, 2))
        p[0, 0] = 0.0 if not from_logits else 50.0  # a clipped / extreme entry
        arrays = {
            "y_true": make(y),
            "y_pred": make(p),
            "pos_weight": make([2.0, 0.5]),
            "sample_weight": make([1.0, 2.0, 0.5]),
            "where": make([[True, False], [True, True], [False, True]], "bool"),
        }
        extra = {}
    else:
        p = rng.normal(size=(N, C)) if from_logits else _probs(seed=2)
        if not from_logits:
            p[0, 1] = 0.0  # clipped
            p[0] /= p[0].sum()  # still a distribution
        arrays = {
            "y_pred": make(p),
            "class_weight": make([1.0, 2.0, 0.5, 3.0]),
            "sample_weight": make([1.0, 2.0, 0.5]),
            "where": make([True, False, True], "bool"),
        }
        if loss.target == "soft":
            arrays["y_true"] = make(_onehot(LABELS) * 0.8 + 0.05)
            extra = {"axis": -1}
        else:
            arrays["y_true"] = make([1, -100, 3], "int64")
            extra = {"axis": -1, "ignore_index": -100}
    # Every array option the loss takes (pos_weight, class_weight, alpha per class ...).
    arrays = {k: v for k, v in arrays.items() if k in ("y_true", "y_pred") or loss.accepts(k)}
    before = _snapshot(arrays)
    fn = loss.fn
    options = {k: v for k, v in arrays.items() if k not in ("y_true", "y_pred")}
    extra = {**loss.hyper, **extra}
    for reduction in ("none", "mean", "sum", "sum_and_count"):
        fn(
            arrays["y_true"],
            arrays["y_pred"],
            from_logits=from_logits,
            reduction=reduction,
            label_smoothing=0.1,
            **options,
            **extra,
        )
        _assert_unchanged(before, arrays)
    vg = xce.value_and_grad(fn)
    for reduction in ("mean", "sum", "sum_and_count"):
        vg(
            arrays["y_true"],
            arrays["y_pred"],
            from_logits=from_logits,
            reduction=reduction,
            label_smoothing=0.1,
            **options,
            **extra,
        )
        _assert_unchanged(before, arrays)
    if backend in ("torch", "torch_cuda"):
        assert arrays["y_pred"]._version == 0, "y_pred was written in place"
