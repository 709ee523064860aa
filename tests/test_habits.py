"""The user's habits, on every backend: misuse is never silent, host data is accepted, scalar
hyperparameters may be arrays (traced under JAX, differentiated under torch), and the messages
name the mistake.

Where values are read (eager host data) a break raises; where they are not (JAX, Dask, GPU
arrays) the entries that break the rule are NaN and every other entry is exact.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import assert_close, dtype_name, is_lazy, seen, to_numpy
from matrix import C, N, losses

import xce

CLASS_LOSSES = losses(targets=("soft", "labels"))
SOFT_LOSSES = losses(targets=("soft",))


def _name(xp, dtype):
    return dtype_name(xp, dtype)


def _seen_true(loss, t):
    """Targets as the library saw them: labels stay integers."""
    return to_numpy(t) if loss.target == "labels" else seen(t)


def _expected_with_nan(loss, y_true, y_pred, broken, *, name, **options):
    """The reference on valid data, NaN on the ``broken`` entries (per-sample shape)."""
    expected = loss.expected(y_true, y_pred, reduction="none", compute_dtype=name, **options)
    return np.where(broken, np.nan, expected)


# ---------------------------------------------------------------------------------------------
# Misuse is never silent
# ---------------------------------------------------------------------------------------------


def _broken_probabilities(loss):
    """Valid probabilities, the same with a few entries or rows broken, and the broken mask
    (per-sample shape): raw scores (outside [0, 1]) and, for rows, sigmoid outputs (inside
    [0, 1] but not summing to 1)."""
    y_true, good = loss.problem(3, from_logits=False)
    bad = good.copy()
    if loss.target == "binary":
        bad[0, 0], bad[2, 1] = 2.5, -0.3  # logits passed as probabilities
        broken = np.zeros(bad.shape, dtype=bool)
        broken[0, 0] = broken[2, 1] = True
    else:
        bad[0] = [2.5, -1.0, 0.3, 0.7]  # a row of logits
        bad[2] = [0.9, 0.8, 0.1, 0.3]  # sigmoid outputs: each in [0, 1], the sum is not 1
        broken = np.zeros(N, dtype=bool)
        broken[[0, 2]] = True
    return y_true, good, bad, broken


# What broken entries compute to is not part of the rule; NumPy-backed kernels may warn on them
# (a negative base under the focal factor's fractional power).
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_probabilities_that_break_the_rule(loss, backend, xp, dtype, device, make):
    y_true, good, bad, broken = _broken_probabilities(loss)
    t, p = loss.make_y_true(make, y_true), make(bad)
    if not is_lazy(backend):
        with pytest.raises(ValueError, match="from_logits=True"):
            loss.call(t, p)
        return
    got = loss.call(t, p, reduction="none")
    expected = _expected_with_nan(
        loss, _seen_true(loss, t), seen(make(good)), broken, name=_name(xp, dtype)
    )
    assert_close(got, expected, xp=xp, dtype=dtype, device=device)
    assert np.isnan(to_numpy(loss.call(t, p)))  # the mean too: never a clipped number
    # validate=False reads nothing and poisons nothing: the formula on the values as given.
    assert np.isfinite(to_numpy(loss.call(t, p, validate=False, reduction="none"))[~broken]).all()


@pytest.mark.parametrize("loss", SOFT_LOSSES, indirect=True)
def test_multi_hot_targets(loss, backend, xp, dtype, device, make):
    y_true, x = loss.problem(5)
    multi = y_true.copy()
    multi[1] = [1.0, 0.0, 1.0, 0.0]  # a multi-label row: sums to 2
    t, p = make(multi), make(x)
    if not is_lazy(backend):
        with pytest.raises(ValueError, match="binary_cross_entropy"):
            loss.call(t, p, from_logits=True)
    else:
        broken = np.arange(N) == 1
        expected = _expected_with_nan(loss, seen(t), seen(p), broken, name=_name(xp, dtype),
                                      from_logits=True)  # fmt: skip
        assert_close(loss.call(t, p, from_logits=True, reduction="none"), expected, xp=xp,
                     dtype=dtype, device=device)  # fmt: skip
    # Unnormalised targets on purpose: validate=False, the formula (linear in the target).
    expected = loss.expected(seen(t), seen(p), from_logits=True, compute_dtype=_name(xp, dtype))
    assert_close(loss.call(t, p, from_logits=True, validate=False), expected, xp=xp, dtype=dtype,
                 device=device)  # fmt: skip


@pytest.mark.parametrize("loss", SOFT_LOSSES, indirect=True)
def test_all_zero_target_rows_mean_no_target(loss, xp, dtype, device, make):
    y_true, x = loss.problem(7)
    y_true[2] = 0.0
    t, p = make(y_true), make(x)
    expected = loss.expected(seen(t), seen(p), from_logits=True, reduction="none",
                             compute_dtype=_name(xp, dtype))  # fmt: skip
    assert expected[2] == 0.0
    assert_close(loss.call(t, p, from_logits=True, reduction="none"), expected, xp=xp,
                 dtype=dtype, device=device)  # fmt: skip


@pytest.mark.parametrize("loss", CLASS_LOSSES, indirect=True)
@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_precision_softmax_outputs_pass(loss, half, backend, xp, make):
    if getattr(xp, half, None) is None:
        pytest.skip(f"{backend} has no {half}")
    # 1000 classes: every value rounded to the half dtype, the row sums off 1 by a few ulps.
    rng = np.random.default_rng(9)
    x = rng.normal(scale=3.0, size=(8, 1000))
    p64 = np.exp(x - x.max(axis=-1, keepdims=True))
    p64 /= p64.sum(axis=-1, keepdims=True)
    p = xp.astype(make(p64, "float32"), getattr(xp, half))
    labels = rng.integers(0, 1000, size=8)
    t = make(labels, "int64") if loss.target == "labels" else make(np.eye(1000)[labels])
    got = to_numpy(xp.astype(loss.call(t, p, reduction="none"), xp.float32))
    assert np.isfinite(got).all()


@pytest.mark.parametrize("loss", CLASS_LOSSES, indirect=True)
def test_classes_on_another_axis_get_an_axis_hint(loss, backend, make):
    # torch's (N, C, T) layout with probabilities, called without axis=1.
    y_true, p = loss.problem(11, shape=(2, C, 5), from_logits=False, axis=1)
    if loss.target == "labels":
        pytest.skip("labels of shape (N, T) do not fit (N, C, T) with axis=-1: see the shape test")
    if is_lazy(backend):
        got = to_numpy(loss.call(make(y_true), make(p), reduction="none"))
        assert np.isnan(got).all()
        return
    with pytest.raises(ValueError, match="axis=1"):
        loss.call(make(y_true), make(p))


def test_labels_of_another_class_axis_get_an_axis_hint(make):
    with pytest.raises(ValueError, match="axis=1"):
        xce.sparse_categorical_cross_entropy(
            make(np.zeros((2, 5)), "int64"), make(np.zeros((2, C, 5))), from_logits=True
        )


def test_seed_004_sigmoid_vector_to_categorical(backend, make):
    # One sigmoid output per sample, given to the softmax loss: one "sample" of N classes.
    p = make([0.9, 0.2, 0.7, 0.4, 0.6])
    y = make([1.0, 0.0, 1.0, 0.0, 1.0])
    if is_lazy(backend):
        assert np.isnan(to_numpy(xce.categorical_cross_entropy(y, p)))
        return
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        xce.categorical_cross_entropy(y, p)


@pytest.mark.parametrize("loss", CLASS_LOSSES, indirect=True)
def test_probabilities_given_as_logits_warn(loss, backend, make):
    y_true, p = loss.problem(13, from_logits=False)
    t = loss.make_y_true(make, y_true)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ordinary logits: no warning
        loss.call(t, make(np.log(p) * 3.0), from_logits=True)
    if is_lazy(backend):
        pytest.skip(f"{backend}: values are not read, so nothing can be seen to warn about")
    with pytest.warns(UserWarning, match="from_logits=False"):
        loss.call(t, make(p), from_logits=True)


# ---------------------------------------------------------------------------------------------
# Host data is converted to y_pred's library
# ---------------------------------------------------------------------------------------------


def test_host_data_is_converted(loss, xp, dtype, device, make):
    y_true, x = loss.problem(17)
    options = {"sample_weight": np.array([1.0, 2.0, 0.5, 1.0, 3.0, 1.0])}
    if loss.accepts("class_weight"):
        options["class_weight"] = [0.5, 2.0, 1.0, 1.5]
    t, p = loss.make_y_true(make, y_true), make(x)
    backend_options = {k: make(np.asarray(v)) for k, v in options.items()}
    expected = loss.call(t, p, from_logits=True, **backend_options, reduction="none")
    host_true = y_true.astype(np.int64) if loss.target == "labels" else y_true
    for given in (host_true, host_true.tolist()):
        got = loss.call(given, p, from_logits=True, **options, reduction="none")
        assert_close(got, seen(expected), xp=xp, dtype=dtype, device=device)
    # A Python number for a weight, a NumPy boolean mask.
    where = np.array([True, False, True, True, False, True])
    if loss.target == "binary":
        where = np.repeat(where[:, None], x.shape[1], axis=1)
    got = loss.call(t, p, from_logits=True, sample_weight=2.0, where=where)
    expected = loss.call(t, p, from_logits=True, sample_weight=make(np.asarray(2.0)),
                         where=make(where, "bool"))  # fmt: skip
    assert_close(got, seen(expected), xp=xp, dtype=dtype, device=device)


def test_arrays_of_two_libraries_are_refused(loss, backend, make):
    if backend == "array_api_strict":
        pytest.skip("array_api_strict: its session installs no second non-host library")
    import array_api_strict as strict

    y_true, x = loss.problem(19)
    foreign = strict.asarray(y_true)
    with pytest.raises(TypeError, match="different libraries"):
        loss.call(foreign, make(x), from_logits=True)


def test_jax_numpy_labels_beside_traced_logits(backend, make):
    if backend != "jax":
        pytest.skip("the jax.jit idiom: labels from a NumPy data loader")
    import jax

    labels = np.array([1, 0, 3, 2, 1, 0])
    x = make(np.random.default_rng(2).normal(size=(N, C)))
    eager = xce.sparse_categorical_cross_entropy(labels, x, from_logits=True)
    traced = jax.jit(lambda z: xce.sparse_categorical_cross_entropy(labels, z, from_logits=True))
    np.testing.assert_allclose(to_numpy(traced(x)), to_numpy(eager), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Scalar hyperparameters as arrays
# ---------------------------------------------------------------------------------------------


def _scalar_options(loss, from_logits):
    options = {"label_smoothing": 0.2, **loss.hyper}
    if not from_logits:
        options["eps"] = 1e-3
    return options


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_scalar_hyperparameters_as_0d_arrays(loss, from_logits, backend, xp, dtype, device, make):
    y_true, x = loss.problem(23, from_logits=from_logits)
    t, p = loss.make_y_true(make, y_true), make(x)
    options = _scalar_options(loss, from_logits)
    expected = loss.call(t, p, from_logits=from_logits, reduction="none", **options)
    for name, value in options.items():
        arrays = {name: make(np.asarray(value))}
        if backend == "torch":  # a tensor in an autograd graph takes the generic path
            arrays[name] = arrays[name].clone().requires_grad_(True)
        got = loss.call(t, p, from_logits=from_logits, reduction="none", **{**options, **arrays})
        assert_close(got, seen(expected), xp=xp, dtype=dtype, device=device)


def test_out_of_range_array_hyperparameters(loss, backend, make):
    y_true, x = loss.problem(29)
    t, p = loss.make_y_true(make, y_true), make(x)
    bad = make(np.asarray(1.5))
    if not is_lazy(backend):  # readable: checked like a number
        with pytest.raises(ValueError, match="label_smoothing"):
            loss.call(t, p, from_logits=True, label_smoothing=bad)
        return
    got = to_numpy(loss.call(t, p, from_logits=True, label_smoothing=bad, reduction="none"))
    assert np.isnan(got).all()


def _reference_total(loss, y_true, x, **options):
    return float(loss.expected(y_true, x, from_logits=True, reduction="sum", **options))


def _reference_derivative(loss, y_true, x, options, name, step=1e-5):
    """d(Σ ℓ)/d(options[name]) by float64 central differences of the reference."""
    value = options[name]
    up = _reference_total(loss, y_true, x, **{**options, name: value + step})
    down = _reference_total(loss, y_true, x, **{**options, name: value - step})
    return (up - down) / (2 * step)


def test_jax_traced_hyperparameters(loss, backend, xp, dtype, make):
    if backend != "jax":
        pytest.skip("jax.jit / vmap / grad over a hyperparameter")
    if dtype == xp.float32:  # each traced call compiles anew: one dtype is the lean check
        pytest.skip("jax: the traced path does not depend on the dtype; float64 checks it")
    import jax
    import jax.numpy as jnp

    y_true, x = loss.problem(31)
    t, p = loss.make_y_true(make, y_true), make(x)
    options = {"label_smoothing": 0.2, **loss.hyper}
    ref_t, ref_x = _seen_true(loss, t), seen(p)
    for name, value in options.items():

        def total(v, name=name):
            return loss.call(t, p, from_logits=True, reduction="sum", **{**options, name: v})

        v = jnp.asarray(value, dtype=p.dtype)
        expected = _reference_total(loss, ref_t, ref_x, **options)
        np.testing.assert_allclose(float(jax.jit(total)(v)), expected, rtol=1e-5)
        values = np.array([0.5, 1.0]) * value
        batched = to_numpy(jax.vmap(total)(jnp.asarray(values, dtype=p.dtype)))
        each = [_reference_total(loss, ref_t, ref_x, **{**options, name: u}) for u in values]
        np.testing.assert_allclose(batched, each, rtol=1e-5)
        numeric = _reference_derivative(loss, ref_t, ref_x, options, name)
        np.testing.assert_allclose(float(jax.grad(total)(v)), numeric, rtol=1e-4, atol=1e-7)
    traced_bad = jax.jit(lambda v: loss.call(t, p, from_logits=True, label_smoothing=v))
    assert np.isnan(float(traced_bad(jnp.asarray(1.5, dtype=p.dtype))))


def test_torch_autograd_through_hyperparameters(loss, backend, xp, dtype, make):
    if backend not in ("torch", "torch_cuda"):
        pytest.skip("torch.autograd with respect to a hyperparameter")
    y_true, x = loss.problem(37)
    t, p = loss.make_y_true(make, y_true), make(x)
    options = {"label_smoothing": 0.2, **loss.hyper}
    ref_t, ref_x = _seen_true(loss, t), seen(p)
    for name, value in options.items():
        v = make(np.asarray(value)).requires_grad_(True)
        loss.call(t, p, from_logits=True, reduction="sum", **{**options, name: v}).backward()
        numeric = _reference_derivative(loss, ref_t, ref_x, options, name)
        rtol = 1e-3 if _name(xp, dtype) == "float32" else 1e-6
        np.testing.assert_allclose(float(v.grad), numeric, rtol=rtol, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Messages that name the mistake
# ---------------------------------------------------------------------------------------------


def test_swapped_arguments_are_named(loss, make):
    y_true, x = loss.problem(41)
    targets = make(np.round(y_true).astype(np.int64), "int64")  # integer targets, as torch's
    with pytest.raises(TypeError, match="swapped"):
        loss.fn(make(x), targets, from_logits=True)


def test_other_frameworks_keywords_are_named(loss, make):
    y_true, x = loss.problem(43)
    t, p = loss.make_y_true(make, y_true), make(x)
    with pytest.raises(TypeError, match="class_weight"):
        loss.fn(t, p, from_logits=True, weight=make(np.ones(C)))
    with pytest.raises(TypeError, match="from_logits"):
        loss.fn(t, p, from_logit=True)
    with pytest.raises(TypeError, match="keyword-only"):
        loss.fn(t, p, True)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # broken entries' own values: see above
def test_nan_policy_inside_jit_and_without_dask_computes(loss, backend, make):
    # The NaN marks are part of the lazy graph: nothing is read while the call is built.
    if backend not in ("jax", "dask"):
        pytest.skip(f"{backend}: values are read there (the rules raise instead)")
    y_true, _, bad, broken = _broken_probabilities(loss)
    t, p = loss.make_y_true(make, y_true), make(bad)
    if backend == "jax":
        import jax

        out = jax.jit(lambda q: loss.call(t, q, reduction="none"))(p)
        _, grad = jax.jit(lambda q: xce.value_and_grad(loss.fn)(t, q, **loss.hyper))(p)
    else:
        from dask.callbacks import Callback

        computes = []

        class _Count(Callback):
            def _start(self, dsk):
                computes.append(dsk)

        with _Count():
            out = loss.call(t, p, reduction="none")
            _, grad = xce.value_and_grad(loss.fn)(t, p, **loss.hyper)
        assert not computes, "a Dask compute ran inside the call"
    out, grad = to_numpy(out), to_numpy(grad)
    assert np.isnan(out[broken]).all() and np.isfinite(out[~broken]).all()
    rows = broken if loss.target == "binary" else broken[:, None] & np.ones(grad.shape, bool)
    assert np.isnan(grad[rows]).all() and np.isfinite(grad[~rows]).all()


@pytest.mark.parametrize("loss", CLASS_LOSSES, indirect=True)
def test_dask_unknown_chunks_with_validate_true(loss, backend, make):
    # validate=True reads Dask values: after boolean indexing (unknown chunk sizes) the rules
    # still raise their readable errors, and probabilities given as logits still warn.
    if backend != "dask":
        pytest.skip("unknown chunk sizes are Dask's")
    y_true, p = loss.problem(47, from_logits=False)
    keep = make(np.array([True, False, True, True, False, True]), "bool")
    t, q = loss.make_y_true(make, y_true)[keep], make(p)[keep]
    assert any(n != n for n in q.shape)
    with pytest.warns(UserWarning, match="from_logits=False"):
        loss.call(t, q, from_logits=True, validate=True)
    sigmoid_rows = make(np.full(p.shape, 0.4))[keep]  # each row sums to 1.6
    with pytest.raises(ValueError, match="sum to 1"):
        loss.call(t, sigmoid_rows, validate=True)
