"""Class-sharded cross entropy (``class_shard=``) on every backend, in one process.

The members of a group are threads here (``tests/sharding.py``): each calls the loss on its
slice of the classes, and the collectives combine the members' arrays. The torch.distributed
and JAX shards have their own tests (processes, devices, autodiff); these check the kernels'
arithmetic on every array library: each member's value equals the float64 oracle
(``tests/reference_softcap.py``) and the unsharded call, its gradient is its slice of the
unsharded gradient, the collectives carry per-row numbers only, and bad input is refused by
every member alike (or NaN where values are not read).
"""

from __future__ import annotations

import numpy as np
import pytest
import reference_softcap as ref
from helpers import case, check, is_lazy, same, soft_targets, to_numpy
from sharding import run_members

import xce
from xce._fast import _config

N, C = 6, 7
# Uneven shards (explicit starts), and the equal shards of the default start.
UNEVEN = [(0, 3), (3, 4), (4, 7)]
LABELS = np.array([0, 6, -100, 3, 4, 2])  # -100 ignored (sparse); excluded by ``where`` (soft)
WHERE = LABELS != -100
CLASS_WEIGHT = np.linspace(0.5, 2.0, C)
SAMPLE_WEIGHT = np.array([1.0, 0.5, 2.0, 1.5, 0.75, 1.25])
SOFTCAP, Z_LOSS = 3.0, 0.05

# (name, the options' keys) — the values come from OPTIONS; soft targets use ``where``
# where labels use ``ignore_index``.
CASES = [
    ("plain", ()),
    ("weights and smoothing", ("class_weight", "sample_weight", "label_smoothing", "mask")),
    ("softcap and z-loss", ("softcap", "z_loss", "class_weight", "mask")),
]
LAZY_CASES = CASES[1:2]  # each call is dear on JAX and Dask; the gradient test adds the next


@pytest.fixture(autouse=True)
def _small_blocks(monkeypatch):
    """Blocks of a few rows on eager backends, so that the kernels' passes over row blocks
    run: a member's (6, 3) float64 logits take 144 bytes (three blocks of two rows), float32
    72 (two blocks); a member of one class, 48 or 24 bytes, runs whole."""
    monkeypatch.setattr(_config, "ROW_BLOCK_BYTES", 64)
    monkeypatch.setattr(_config, "TORCH_CHUNK_BYTES", 64)


def _logits(shape=(N, C)):
    return np.random.default_rng(3).normal(scale=3.0, size=shape)


def _problem(kind, keys):
    """NumPy ``(y_true, xce options, oracle options)``."""
    ours, theirs = {}, {}
    values = {
        "class_weight": CLASS_WEIGHT, "sample_weight": SAMPLE_WEIGHT, "label_smoothing": 0.1,
        "softcap": SOFTCAP, "z_loss": Z_LOSS,
    }  # fmt: skip
    for key in keys:
        if key != "mask":
            ours[key] = theirs[key] = values[key]
    if kind == "sparse":
        y = LABELS if "mask" in keys else np.where(WHERE, LABELS, 1)
        if "mask" in keys:
            ours["ignore_index"] = theirs["ignore_index"] = -100
        return y, ours, theirs
    if "mask" in keys:
        ours["where"], theirs["valid"] = WHERE, WHERE
    return soft_targets(1, (N, C)), ours, theirs


def _member_options(options, lo, hi, make):
    """One member's options: its slice of the class weights, backend arrays."""
    out = {}
    for key, value in options.items():
        if isinstance(value, np.ndarray):
            value = value[lo:hi] if key == "class_weight" else value
            value = make(value, "bool") if value.dtype == bool else make(value)
        out[key] = value
    return out


def _sharded(fn, kind, y, x, options, make, bounds, *, explicit_start=True, **call):
    """Each member's result of ``fn`` on its classes, and the collectives' log."""

    def member(shard, lo, hi):
        target = make(y, "int64") if kind == "sparse" else make(y[:, lo:hi])
        return fn(target, make(x[:, lo:hi]), from_logits=True, class_shard=shard,
                  **_member_options(options, lo, hi, make), **call)  # fmt: skip

    return run_members(C, bounds, member, explicit_start=explicit_start)


def _fns(kind):
    if kind == "sparse":
        return xce.sparse_categorical_cross_entropy, ref.sparse
    return xce.categorical_cross_entropy, ref.categorical


@pytest.mark.parametrize("kind", ["sparse", "soft"])
def test_every_member_gets_the_unsharded_loss(kind, xp, backend, make, dtype, device):
    fn, oracle = _fns(kind)
    x = _logits()
    reductions = ("none",) if is_lazy(backend) else ("none", "mean", "sum")
    for name, keys in LAZY_CASES if is_lazy(backend) else CASES:
        y, ours, theirs = _problem(kind, keys)
        for reduction in reductions:
            with case(f"{name}, {reduction}"):
                results, _ = _sharded(fn, kind, y, x, ours, make, UNEVEN, reduction=reduction)
                expected = oracle(y, x, **theirs, reduction=reduction)["loss"]
                target = make(y, "int64") if kind == "sparse" else make(y)
                whole = fn(target, make(x), from_logits=True, reduction=reduction,
                           **_member_options(ours, 0, C, make))  # fmt: skip
                for got in results:
                    check(got, expected, xp=xp, dtype=dtype, device=device)
                    same(got, whole, xp=xp, dtype=dtype, device=device)


@pytest.mark.parametrize("kind", ["sparse", "soft"])
def test_each_member_gets_its_slice_of_the_gradient(kind, xp, backend, make, dtype, device):
    fn, oracle = _fns(kind)
    loss_and_grad = xce.value_and_grad(fn)
    x = _logits()
    y, ours, theirs = _problem(kind, CASES[2][1] if is_lazy(backend) else CASES[1][1])
    for reduction in ("sum_and_count",) if is_lazy(backend) else ("mean", "sum_and_count"):
        with case(reduction):
            results, _ = _sharded(loss_and_grad, kind, y, x, ours, make, UNEVEN,
                                  reduction=reduction)  # fmt: skip
            expected = oracle(y, x, **theirs, reduction=reduction)
            for (value, grad), (lo, hi) in zip(results, UNEVEN, strict=True):
                check(value, expected["loss"], xp=xp, dtype=dtype, device=device)
                check(grad, expected["grad"][:, lo:hi], xp=xp, dtype=dtype, device=device)


def test_the_loss_parts_and_equal_shards(xp, backend, make, dtype, device):
    """``return_parts`` sharded, and the default start (equal contiguous shards)."""
    x = _logits((N, 6))
    y = np.array([0, 5, 3, 2, 4, 1])
    halves = [(0, 3), (3, 6)]

    def member(shard, lo, hi):
        return xce.sparse_categorical_cross_entropy(
            make(y, "int64"), make(x[:, lo:hi]), from_logits=True, softcap=SOFTCAP,
            z_loss=Z_LOSS, return_parts=True, class_shard=shard,
        )  # fmt: skip

    results, _ = run_members(6, halves, member, explicit_start=False)
    expected = ref.sparse(y, x, softcap=SOFTCAP, z_loss=Z_LOSS)
    for parts in results:
        for field in ("loss", "cross_entropy", "z_loss", "log_z"):
            check(getattr(parts, field), expected[field], xp=xp, dtype=dtype, device=device)


def test_linear_cross_entropy_over_a_group(xp, backend, make, dtype, device):
    """Vocab parallel: each member holds its rows of the output layer; every member gets
    the loss, the full d_hidden and its rows of d_weight and d_bias."""
    if backend == "jax":
        pytest.skip(
            "jax: the sweep is compiled (lax.scan), where the thread shard's collectives "
            "cannot run; tests/test_distributed_jax.py runs it with jax_class_shard"
        )
    if backend == "dask":
        with pytest.raises(TypeError, match="not Dask arrays"):
            xce.linear_cross_entropy(
                make([0, 1], "int64"),
                make(np.ones((2, 3))),
                make(np.ones((2, 3))),
                class_shard=run_members(4, [(0, 2), (2, 4)], lambda s, lo, hi: s)[0][0],
            )
        return
    rng = np.random.default_rng(5)
    hidden, weight, bias = rng.normal(size=(N, 3)), rng.normal(size=(C, 3)), rng.normal(size=C)
    y = np.where(WHERE, LABELS, 1)
    loss_and_grad = xce.value_and_grad(xce.linear_cross_entropy)
    options = {"class_weight": CLASS_WEIGHT, "label_smoothing": 0.1, "chunk_size": 4}

    def member(shard, lo, hi):
        return loss_and_grad(
            make(y, "int64"), make(hidden), make(weight[lo:hi]), bias=make(bias[lo:hi]),
            class_shard=shard, **_member_options(options, lo, hi, make),
        )  # fmt: skip

    results, _ = run_members(C, UNEVEN, member)
    logits = hidden @ weight.T + bias
    expected = ref.sparse(y, logits, class_weight=CLASS_WEIGHT, label_smoothing=0.1)
    g = expected["grad"]
    for (value, grads), (lo, hi) in zip(results, UNEVEN, strict=True):
        check(value, expected["loss"], xp=xp, dtype=dtype, device=device)
        check(grads[0], g @ weight, xp=xp, dtype=dtype, device=device)
        check(grads[1], g[:, lo:hi].T @ hidden, xp=xp, dtype=dtype, device=device)
        check(grads[2], g[:, lo:hi].sum(axis=0), xp=xp, dtype=dtype, device=device)


@pytest.mark.parametrize("kind", ["sparse", "soft"])
def test_what_travels_is_per_row(kind, xp, make):
    """Two collectives per call (the row maximum, a stack of sums), one more in the prepare
    step with class weights (sparse) or the targets' row checks (soft); never (N, C)."""
    fn, _ = _fns(kind)
    x = _logits()
    for keys, expected in ((("label_smoothing",), 2), (("class_weight", "z_loss"), 3)):
        y, ours, _ = _problem(kind, keys)
        with case(keys):
            _, calls = _sharded(fn, kind, y, x, ours, make, UNEVEN, validate=False)
            assert len(calls) == expected, calls
            assert [how for how, _ in calls][-2:] == ["max", "sum"], calls
            for _, shape in calls:
                assert shape[0] == N and (len(shape) == 1 or shape[1:] <= (5,)), calls


def test_bad_input_is_refused_by_every_member(xp, backend, make):
    x = _logits()
    y = np.where(WHERE, LABELS, 1)
    bad_labels = y.copy()
    bad_labels[2] = C  # global class count: out of range, though a member has 3 classes
    bad_targets = soft_targets(1, (N, C))
    bad_targets[4, 5] += 0.5  # in the last member's slice only: the row sums to 1.5

    def sparse(labels):
        return lambda shard, lo, hi: xce.sparse_categorical_cross_entropy(
            make(labels, "int64"), make(x[:, lo:hi]), from_logits=True, class_shard=shard,
            reduction="none",
        )  # fmt: skip

    def soft(shard, lo, hi):
        return xce.categorical_cross_entropy(
            make(bad_targets[:, lo:hi]), make(x[:, lo:hi]), from_logits=True,
            class_shard=shard, reduction="none",
        )  # fmt: skip

    for call, row in ((sparse(bad_labels), 2), (soft, 4)):
        if is_lazy(backend):
            results, _ = run_members(C, UNEVEN, call)
            for got in results:
                got = to_numpy(got)
                assert np.isnan(got[row]) and np.isfinite(np.delete(got, row)).all()
        else:
            with pytest.raises(ValueError, match=r"y_true|label"):
                run_members(C, UNEVEN, call)
    with pytest.raises(ValueError, match="from_logits=True"):
        run_members(C, UNEVEN, lambda shard, lo, hi: xce.sparse_categorical_cross_entropy(
            make(y, "int64"), make(x[:, lo:hi]), class_shard=shard))  # fmt: skip
    with pytest.raises(ValueError, match="uneven shards need an explicit start"):
        run_members(C, UNEVEN, sparse(y), explicit_start=False)
    with pytest.raises(TypeError, match="class_shard must come from"):
        xce.sparse_categorical_cross_entropy(
            make(y, "int64"), make(x), from_logits=True, class_shard=object()
        )


def test_autograd_refuses_to_drop_a_gradient(backend, make):
    """The shard's autodiff hook differentiates the logits alone: soft targets (or weights)
    that autograd records raise rather than silently get no gradient."""
    if backend != "torch":
        pytest.skip(f"{backend}: requires_grad is torch's (JAX refuses such a jax.grad itself)")
    x = _logits()
    targets = soft_targets(1, (N, C))

    def member(shard, lo, hi):
        y = make(targets[:, lo:hi])
        y.requires_grad_(True)
        return xce.categorical_cross_entropy(
            y, make(x[:, lo:hi]), from_logits=True, class_shard=shard
        )

    with pytest.raises(ValueError, match="differentiates y_pred only"):
        run_members(C, UNEVEN, member)
