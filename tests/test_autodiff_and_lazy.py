"""Framework autodiff through xce, and laziness.

* torch: ``torch.autograd`` through the losses equals ``xce.value_and_grad`` (and torch's own
  ``cross_entropy`` / ``binary_cross_entropy_with_logits`` where they define the same number).
* JAX: ``jax.grad`` and ``jax.jit`` through the losses equal ``xce.value_and_grad`` / the eager
  call; a jitted loss traces once for new values of the same shapes; ``validate="auto"``
  traces without a host sync; ``validate=True`` on a tracer is a TypeError.
* Dask: every result is a lazy Dask array, nothing is computed while the graph is built, and it
  computes to the right number.

Each group runs only on its backend and skips elsewhere with a reason. Every loss of the table
(``tests/matrix.py``) runs every group, with its own hyperparameters set.
"""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest
from helpers import assert_close, seen, to_numpy
from matrix import ROWS, losses

import xce

N, C = 4, 3


def _data(loss, option, from_logits, seed=0):
    """NumPy ``(y_true, y_pred, arrays, scalars)`` for ``loss`` (a row of the matrix), with
    the options it takes and its hyperparameters; ``arrays`` become backend arrays."""
    y_true, y_pred, arrays, scalars = _target_data(loss.target, option, from_logits, seed)
    arrays = {k: v for k, v in arrays.items() if loss.accepts(k)}
    scalars = {**loss.hyper, **{k: v for k, v in scalars.items() if loss.accepts(k)}}
    return y_true, y_pred, arrays, scalars


def _target_data(kind, option, from_logits, seed):
    rng = np.random.default_rng(seed)
    arrays, scalars = {}, {}
    if kind == "binary":
        y_pred = rng.normal(size=(N, 2)) if from_logits else rng.uniform(0.1, 0.9, (N, 2))
        y_true = rng.uniform(size=(N, 2))
        if option == "weighted":
            arrays = {
                "pos_weight": np.array([2.0, 0.5]),
                "sample_weight": np.array([1.0, 0.5, 2.0, 1.5]),
                "where": np.array([True, True, False, True]),
            }
            scalars = {"label_smoothing": 0.1}
        return y_true, y_pred, arrays, scalars
    y_pred = rng.normal(size=(N, C)) if from_logits else rng.uniform(0.1, 0.9, (N, C))
    if not from_logits:  # rows of probabilities sum to 1
        y_pred /= y_pred.sum(axis=-1, keepdims=True)
    labels = np.array([0, 2, 1, 2])
    if kind == "labels":
        y_true = labels
        if option == "weighted":
            y_true = np.array([0, -100, 1, 2])
            scalars["ignore_index"] = -100
    else:
        y_true = np.eye(C)[labels] * 0.7 + 0.1
    if option == "weighted":
        arrays.update(
            {
                "class_weight": np.array([0.5, 2.0, 1.5]),
                "sample_weight": np.array([1.0, 0.5, 2.0, 1.5]),
                "where": np.array([True, True, True, False]),
            }
        )
        scalars["label_smoothing"] = 0.1
    return y_true, y_pred, arrays, scalars


def _build(loss, option, from_logits, make, seed=0):
    y_true, y_pred, arrays, scalars = _data(loss, option, from_logits, seed)
    bt = make(y_true, "int64") if loss.target == "labels" else make(y_true)
    kw = {k: make(v, "bool") if v.dtype == bool else make(v) for k, v in arrays.items()}
    kw.update(scalars)
    return bt, make(y_pred), kw


CASES = [
    pytest.param(
        row, option, from_logits, id=f"{row.name}-{option}-{'logits' if from_logits else 'probs'}"
    )
    for row in ROWS
    for option in ("plain", "weighted")
    for from_logits in (True, False)
]
PARAMS = ("loss", "option", "from_logits")


# ---------------------------------------------------------------------------------------------
# torch.autograd
# ---------------------------------------------------------------------------------------------


def _require_torch(backend):
    if backend not in ("torch", "torch_cuda"):
        pytest.skip("torch autograd only applies to torch tensors")


@pytest.mark.parametrize("reduction", ["mean", "sum", "sum_and_count"])
@pytest.mark.parametrize(PARAMS, CASES, indirect=["loss"])
def test_torch_autograd_equals_value_and_grad(
    loss, option, from_logits, reduction, backend, xp, dtype, device, make
):
    _require_torch(backend)
    fn = loss.fn
    y_true, y_pred, kw = _build(loss, option, from_logits, make)
    leaf = y_pred.detach().clone().requires_grad_(True)
    out = fn(y_true, leaf, from_logits=from_logits, reduction=reduction, **kw)
    total = out[0] if reduction == "sum_and_count" else out
    assert total.requires_grad, "the loss is not connected to y_pred's autograd graph"
    total.backward()
    value, grad = xce.value_and_grad(fn)(
        y_true, y_pred, from_logits=from_logits, reduction=reduction, **kw
    )
    value_total = value[0] if reduction == "sum_and_count" else value
    assert_close(total.detach(), to_numpy(value_total), xp=xp, dtype=dtype, device=device)
    assert_close(leaf.grad, to_numpy(grad), xp=xp, dtype=dtype, device=device)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_torch_autograd_equals_torch_cross_entropy(
    label_smoothing, backend, xp, dtype, device, make
):
    _require_torch(backend)
    import torch

    # torch's mean for integer targets is Σ w[y]ℓ / Σ w[y] over non-ignored targets, and its
    # smoothing is (1−ε)·NLL + (ε/C)·Σ_c w_c·(−log p_c): the same number as xce's contract.
    x = np.random.default_rng(1).normal(size=(5, C))
    labels = np.array([0, 2, -100, 1, 2])
    w = np.array([0.5, 2.0, 1.5])
    a = make(x).requires_grad_(True)
    b = make(x).requires_grad_(True)
    ours = xce.sparse_categorical_cross_entropy(
        make(labels, "int64"),
        a,
        from_logits=True,
        class_weight=make(w),
        ignore_index=-100,
        label_smoothing=label_smoothing,
    )
    theirs = torch.nn.functional.cross_entropy(
        b, make(labels, "int64"), weight=make(w), ignore_index=-100, label_smoothing=label_smoothing
    )
    ours.backward()
    theirs.backward()
    assert_close(ours.detach(), to_numpy(theirs), xp=xp, dtype=dtype, device=device)
    assert_close(a.grad, to_numpy(b.grad), xp=xp, dtype=dtype, device=device)


def test_torch_autograd_equals_torch_bce_with_logits(backend, xp, dtype, device, make):
    _require_torch(backend)
    import torch

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(4, 3)) * 3, rng.uniform(size=(4, 3))
    pw = np.array([2.0, 0.5, 1.0])
    a = make(x).requires_grad_(True)
    b = make(x).requires_grad_(True)
    ours = xce.binary_cross_entropy(make(y), a, from_logits=True, pos_weight=make(pw))
    theirs = torch.nn.functional.binary_cross_entropy_with_logits(b, make(y), pos_weight=make(pw))
    ours.backward()
    theirs.backward()
    assert_close(ours.detach(), to_numpy(theirs), xp=xp, dtype=dtype, device=device)
    assert_close(a.grad, to_numpy(b.grad), xp=xp, dtype=dtype, device=device)


def test_torch_autograd_masked_nan_logits_give_zero_gradient(
    loss, backend, xp, dtype, device, make
):
    # The double-`where` trap: a masked NaN/inf must not leak NaN into the backward pass.
    _require_torch(backend)
    fn = loss.fn
    y_true, y_pred, kw = _build(loss, "plain", True, make)  # kw: the hyperparameters
    x = to_numpy(y_pred).copy()
    x[1] = np.nan
    x[2, 0] = np.inf
    where = make([True, False, False, True], "bool")
    leaf = make(x).requires_grad_(True)
    fn(y_true, leaf, from_logits=True, reduction="sum", where=where, **kw).backward()
    g = to_numpy(leaf.grad)
    assert np.all(g[1:3] == 0.0), g
    assert np.all(np.isfinite(g)), g
    _, grad = xce.value_and_grad(fn)(
        y_true, make(x), from_logits=True, reduction="sum", where=where, **kw
    )
    assert_close(leaf.grad, to_numpy(grad), xp=xp, dtype=dtype, device=device)


def test_torch_value_and_grad_accepts_a_tensor_that_requires_grad(
    loss, backend, xp, dtype, device, make
):
    _require_torch(backend)
    y_true, y_pred, kw = _build(loss, "weighted", True, make)
    leaf = y_pred.detach().clone().requires_grad_(True)
    value, grad = xce.value_and_grad(loss.fn)(y_true, leaf, from_logits=True, **kw)
    value2, grad2 = xce.value_and_grad(loss.fn)(y_true, y_pred, from_logits=True, **kw)
    assert_close(value.detach(), to_numpy(value2), xp=xp, dtype=dtype, device=device)
    assert_close(grad.detach(), to_numpy(grad2), xp=xp, dtype=dtype, device=device)


# ---------------------------------------------------------------------------------------------
# JAX: grad and jit
# ---------------------------------------------------------------------------------------------


def _require_jax(backend):
    if backend != "jax":
        pytest.skip("jax.grad / jax.jit only apply to JAX arrays")


def _split(kw):
    arrays = {k: v for k, v in kw.items() if not isinstance(v, (int, float))}
    scalars = {k: v for k, v in kw.items() if isinstance(v, (int, float))}
    return arrays, scalars


@pytest.mark.parametrize(
    PARAMS, [c for c in CASES if c.values[1:] == ("weighted", True)], indirect=["loss"]
)
def test_jax_grad_equals_value_and_grad(
    loss, option, from_logits, backend, xp, dtype, device, make
):
    # The everyday pattern, eagerly: targets and weights are concrete arrays closed over, only
    # y_pred is traced by jax.grad. (Eager JAX compiles every primitive on first use, so this
    # runs the fully weighted logits cases only; the jitted test below covers every case.)
    _require_jax(backend)
    import jax

    fn = loss.fn
    y_true, y_pred, kw = _build(loss, option, from_logits, make)

    def loss(p):
        return fn(y_true, p, from_logits=from_logits, **kw)

    value, grad = xce.value_and_grad(fn)(y_true, y_pred, from_logits=from_logits, **kw)
    jv, jg = jax.value_and_grad(loss)(y_pred)
    assert_close(jv, to_numpy(value), xp=xp, dtype=dtype, device=device)
    assert_close(jg, to_numpy(grad), xp=xp, dtype=dtype, device=device)


@pytest.mark.parametrize(PARAMS, [c for c in CASES if c.values[1] == "weighted"], indirect=["loss"])
def test_jax_jit_grad_equals_value_and_grad(
    loss, option, from_logits, backend, xp, dtype, device, make
):
    # jax.jit(jax.grad(...)) with every array an argument, and with the targets closed over;
    # "mean" and "sum" in one compiled function. (The weighted cases only, which set every
    # option the plain ones leave at its default: each case compiles anew.)
    _require_jax(backend)
    import jax

    fn = loss.fn
    y_true, y_pred, kw = _build(loss, option, from_logits, make)
    arrays, scalars = _split(kw)

    def loss(t, p, a, reduction):
        return fn(t, p, from_logits=from_logits, reduction=reduction, **a, **scalars)

    @jax.jit
    def grads(t, p, a):
        return {r: jax.grad(loss, argnums=1)(t, p, a, r) for r in ("mean", "sum")}

    @jax.jit
    def grads_closed_over(p):
        return jax.grad(lambda q: loss(y_true, q, arrays, "mean"))(p)

    got = grads(y_true, y_pred, arrays)
    for reduction in ("mean", "sum"):
        _, grad = xce.value_and_grad(fn)(
            y_true, y_pred, from_logits=from_logits, reduction=reduction, **kw
        )
        assert_close(got[reduction], to_numpy(grad), xp=xp, dtype=dtype, device=device)
        if reduction == "mean":
            assert_close(
                grads_closed_over(y_pred), to_numpy(grad), xp=xp, dtype=dtype, device=device
            )


REDUCTIONS = ("none", "mean", "sum", "sum_and_count")


@pytest.mark.parametrize(PARAMS, CASES, indirect=["loss"])
def test_jax_jit_equals_eager(loss, option, from_logits, backend, xp, dtype, device, make):
    _require_jax(backend)
    import jax

    fn = loss.fn
    vg = xce.value_and_grad(fn)
    y_true, y_pred, kw = _build(loss, option, from_logits, make)
    arrays, scalars = _split(kw)

    traced = []

    # validate="auto" (the default) must trace: no value is read back to the host.
    @jax.jit
    def jitted(t, p, a):
        traced.append(1)
        losses = {
            r: fn(t, p, from_logits=from_logits, reduction=r, **a, **scalars) for r in REDUCTIONS
        }
        grads = {
            r: vg(t, p, from_logits=from_logits, reduction=r, **a, **scalars)
            for r in ("mean", "sum_and_count")
        }
        return losses, grads

    got_losses, got_grads = jitted(y_true, y_pred, arrays)
    # New values of the same shapes reuse the compiled function: no retrace.
    jitted(y_true, y_pred * 0.5, arrays)
    assert len(traced) == 1, f"traced {len(traced)} times for one set of shapes"
    for reduction in REDUCTIONS:
        eager = fn(y_true, y_pred, from_logits=from_logits, reduction=reduction, **kw)
        got = got_losses[reduction]
        if reduction == "sum_and_count":
            got, eager = tuple(got), tuple(eager)
        else:
            got, eager = (got,), (eager,)
        for g, e in zip(got, eager, strict=True):
            assert_close(g, to_numpy(e), xp=xp, dtype=dtype, device=device)
    for reduction in ("mean", "sum_and_count"):
        (jv, jg), (ev, eg) = (
            got_grads[reduction],
            vg(y_true, y_pred, from_logits=from_logits, reduction=reduction, **kw),
        )
        if reduction == "sum_and_count":
            jv, ev = jv[0], ev[0]
        assert_close(jv, to_numpy(ev), xp=xp, dtype=dtype, device=device)
        assert_close(jg, to_numpy(eg), xp=xp, dtype=dtype, device=device)


def test_jax_validate_true_on_a_tracer_is_a_type_error(loss, backend, make):
    _require_jax(backend)
    import jax

    fn = loss.fn
    y_true, y_pred, _ = _build(loss, "plain", True, make)
    with pytest.raises(TypeError):
        jax.jit(lambda t, p: fn(t, p, from_logits=True, validate=True))(y_true, y_pred)


@pytest.mark.parametrize("loss", losses(targets=("labels",)), indirect=True)
def test_jax_jit_out_of_range_label_is_a_nan_row(loss, backend, xp, dtype, device, make):
    _require_jax(backend)
    import jax

    x = np.random.default_rng(4).normal(size=(3, C))
    labels = np.array([1, C, 0])
    y_pred = make(x)
    out = jax.jit(lambda t, p: loss.call(t, p, from_logits=True, reduction="none"))(
        make(labels, "int64"), y_pred
    )
    expected = loss.expected(np.array([1, 0, 0]), seen(y_pred), from_logits=True, reduction="none")
    expected[1] = np.nan
    assert_close(out, expected, xp=xp, dtype=dtype, device=device)


def test_jax_grad_masked_nan_logits_give_zero_gradient(loss, backend, xp, dtype, device, make):
    _require_jax(backend)
    import jax

    fn = loss.fn
    y_true, y_pred, kw = _build(loss, "plain", True, make)  # kw: the hyperparameters
    x = to_numpy(y_pred).copy()
    x[1] = np.nan
    x[2, 0] = np.inf
    where = make([True, False, False, True], "bool")
    # Everything is an argument of jit, so this checks the masking, not closed-over arrays.
    g = jax.jit(
        jax.grad(
            lambda t, p, w: fn(t, p, from_logits=True, reduction="sum", where=w, **kw), argnums=1
        )
    )(y_true, make(x), where)
    gn = to_numpy(g)
    assert np.all(gn[1:3] == 0.0), gn
    assert np.all(np.isfinite(gn)), gn
    _, grad = xce.value_and_grad(fn)(
        y_true, make(x), from_logits=True, reduction="sum", where=where, **kw
    )
    assert_close(g, to_numpy(grad), xp=xp, dtype=dtype, device=device)


# ---------------------------------------------------------------------------------------------
# Dask: lazy, no compute while building, the right number
# ---------------------------------------------------------------------------------------------


def _require_dask(backend):
    if backend != "dask":
        pytest.skip("laziness checks apply to Dask arrays")


class _ComputeCounter:
    """Counts every Dask compute started inside the ``with`` block."""

    def __enter__(self):
        from dask.callbacks import Callback

        counter = self

        class _Count(Callback):
            def _start(self, dsk):
                counter.count += 1

        self.count = 0
        self._cb = _Count()
        self._cb.__enter__()
        return self

    def __exit__(self, *exc):
        self._cb.__exit__(*exc)


def _chunked(make, data, dtype_name=None):
    """A Dask array split into several chunks along the first axis."""
    import dask.array as da

    a = make(data, dtype_name)
    return da.rechunk(a, chunks=(2, *tuple(-1 for _ in a.shape[1:]))) if a.ndim else a


@pytest.mark.parametrize(PARAMS, CASES, indirect=["loss"])
def test_dask_losses_are_lazy_and_right(
    loss, option, from_logits, backend, xp, dtype, device, make
):
    _require_dask(backend)
    fn = loss.fn
    y_true, y_pred, arrays, scalars = _data(loss, option, from_logits)
    bt = _chunked(make, y_true, "int64" if loss.target == "labels" else None)
    bp = _chunked(make, y_pred)
    kw = {k: (make(v, "bool") if v.dtype == bool else make(v)) for k, v in arrays.items()}
    kw.update(scalars)

    results = {}
    with _ComputeCounter() as counter:
        for reduction in ("none", "mean", "sum", "sum_and_count"):
            results[reduction] = fn(bt, bp, from_logits=from_logits, reduction=reduction, **kw)
        vg = xce.value_and_grad(fn)(bt, bp, from_logits=from_logits, reduction="sum", **kw)
    assert counter.count == 0, "xce computed (a host sync) while building the graph"
    for reduction, out in results.items():
        parts = out if reduction == "sum_and_count" else (out,)
        for part in parts:
            assert array_api_compat.is_dask_array(part), f"{reduction}: {type(part)}"
    assert array_api_compat.is_dask_array(vg[0]) and array_api_compat.is_dask_array(vg[1])

    # Now compute and compare with the float64 reference on the rounded inputs.
    rounded = {
        k: (seen(v) if v.dtype == dtype else to_numpy(v))
        for k, v in kw.items()
        if not isinstance(v, (int, float))
    }
    yt = to_numpy(bt) if loss.target == "labels" else seen(bt)
    name = "float64" if dtype == xp.float64 else "float32"

    def expected(reduction):
        return loss.ref(
            yt, seen(bp), from_logits=from_logits, reduction=reduction, compute_dtype=name,
            **rounded, **scalars,
        )  # fmt: skip

    per, total_expected = expected("none"), expected("sum")
    assert_close(results["none"], per, xp=xp, dtype=dtype, device=device)
    assert_close(results["sum"], total_expected, xp=xp, dtype=dtype, device=device)
    assert_close(results["mean"], expected("mean"), xp=xp, dtype=dtype, device=device)
    total, n = results["sum_and_count"]
    expected_total, expected_count = expected("sum_and_count")
    assert_close(total, expected_total, xp=xp, dtype=dtype, device=device)
    assert_close(n, expected_count, xp=xp, dtype=dtype, device=device)
    assert_close(vg[0], total_expected, xp=xp, dtype=dtype, device=device)
    assert tuple(vg[1].shape) == tuple(bp.shape)


def test_dask_building_blocks_are_lazy(backend, xp, dtype, device, make):
    _require_dask(backend)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 3))
    p = np.array([[0.2, 0.3, 0.5], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [0.25, 0.25, 0.5]])
    q = np.array([[0.3, 0.3, 0.4], [0.2, 0.4, 0.4], [0.5, 0.25, 0.25], [0.25, 0.5, 0.25]])
    bx, bp, bq = _chunked(make, x), _chunked(make, p), _chunked(make, q)
    with _ComputeCounter() as counter:
        out = {
            "logsumexp": xce.logsumexp(bx),
            "log_softmax": xce.log_softmax(bx),
            "softmax": xce.softmax(bx),
            "log_sigmoid": xce.log_sigmoid(bx),
            "sigmoid": xce.sigmoid(bx),
            "entropy": xce.entropy(bp),
            "kl_divergence": xce.kl_divergence(bp, bq),
        }
    assert counter.count == 0
    for name, a in out.items():
        assert array_api_compat.is_dask_array(a), name
    x64, p64, q64 = (to_numpy(a).astype(np.float64) for a in (bx, bp, bq))
    lse = np.log(np.exp(x64).sum(-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p64 > 0, p64 * np.log(p64), 0.0)
        kl = np.where(p64 > 0, p64 * (np.log(p64) - np.log(q64)), 0.0).sum(-1)
    expected = {
        "logsumexp": lse,
        "log_softmax": x64 - lse[:, None],
        "softmax": np.exp(x64 - lse[:, None]),
        "log_sigmoid": -np.log1p(np.exp(-x64)),
        "sigmoid": 1 / (1 + np.exp(-x64)),
        "entropy": -plogp.sum(-1),
        "kl_divergence": kl,
    }
    for name, a in out.items():
        assert_close(a, expected[name], xp=xp, dtype=dtype, device=device)


def test_dask_validate_true_computes_and_accepts_good_data(loss, backend, xp, dtype, device, make):
    _require_dask(backend)
    y_true, y_pred = loss.problem(6, (4, C))
    bt = _chunked(make, y_true, "int64" if loss.target == "labels" else None)
    bp = _chunked(make, y_pred)
    out = loss.call(bt, bp, from_logits=True, validate=True, reduction="none")
    yt = to_numpy(bt) if loss.target == "labels" else seen(bt)
    expected = loss.expected(yt, seen(bp), from_logits=True, reduction="none")
    assert_close(out, expected, xp=xp, dtype=dtype, device=device)
