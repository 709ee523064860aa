"""The class-sharded cases that each rank of ``distributed_torch_worker.py`` runs.

Every rank builds the same full problem (fixed seeds), takes its classes ``[start, start +
C_r)`` and compares the sharded call with one process's unsharded call on the whole arrays
(float64: 1e-12 relative; float32 and bfloat16: their tolerances), for values,
``value_and_grad`` and ``torch.autograd``. Each check makes all its collective calls before
comparing anything, so a failed comparison on one rank never leaves the others waiting.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import reference_linear
import reference_softcap
import torch
from helpers import ATOL, RTOL

import xce
from xce.distributed import torch_class_shard

__all__ = ["COLLECTIVES", "COUNTER", "ERRORS", "all_cases"]

# The collectives of the counted calls ({call: [(name, shape, dtype), ...]}) and the messages
# that bad input raised ({case: message}); the worker puts both in its report.
COLLECTIVES: dict[str, list[tuple[str, tuple[int, ...], str]]] = {}
ERRORS: dict[str, str] = {}
COUNTER: list | None = None  # on while a counted call runs

REDUCTIONS = ("none", "mean", "sum", "sum_and_count")
DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}
N, D = 5, 3  # rows, hidden size
IGNORE = -100
ARRAYS = ("where", "sample_weight", "class_weight")  # options given by their array's name


@functools.cache
def problem(num_classes):
    """The full float64 arrays of one layout (the same on every rank)."""
    rng = np.random.default_rng(num_classes)
    labels = rng.integers(0, num_classes, size=N)
    ignored = labels.copy()
    ignored[[1, 3]] = IGNORE
    targets = rng.random((N, num_classes))
    return {
        "logits": rng.normal(size=(N, num_classes)) * 2.0,
        "labels": labels,
        "ignored": ignored,
        "targets": targets / targets.sum(-1, keepdims=True),
        "hidden": rng.normal(size=(N, D)),
        "weight": rng.normal(size=(num_classes, D)),
        "bias": rng.normal(size=num_classes),
        "class_weight": rng.uniform(0.5, 2.0, size=num_classes),
        "sample_weight": rng.uniform(0.5, 1.5, size=N),
        "where": np.array([True, True, False, True, True]),
    }


EVERYTHING = dict(
    ignore_index=IGNORE, where="where", sample_weight="sample_weight",
    class_weight="class_weight", label_smoothing=0.1, softcap=2.0, z_loss=1e-2,
)  # fmt: skip
# One set of options per line; every one of them runs with every reduction and dtype.
OPTIONS = {
    "plain": {},
    "ignore_index": {"ignore_index": IGNORE},
    "where": {"where": "where"},
    "sample_weight": {"sample_weight": "sample_weight"},
    "class_weight": {"class_weight": "class_weight"},
    "label_smoothing": {"label_smoothing": 0.1},
    "softcap": {"softcap": 2.0},
    "z_loss": {"z_loss": 1e-2},
    "everything": EVERYTHING,
    "parts": {"class_weight": "class_weight", "z_loss": 1e-2, "return_parts": True},
}


def close(got, expected, dtype, what):
    """``got`` (a tensor, tuple or LossParts) equals ``expected`` leaf by leaf."""
    if isinstance(got, tuple):
        assert isinstance(expected, tuple) and len(got) == len(expected), what
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            close(g, e, dtype, f"{what}[{i}]")
        return
    name = str(dtype).removeprefix("torch.")
    g, e = (
        x.detach().to(torch.float64).numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        for x in (got, expected)
    )
    if isinstance(got, torch.Tensor) and isinstance(expected, torch.Tensor):
        assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype} != {expected.dtype}"
    assert g.shape == e.shape, f"{what}: shape {g.shape} != {e.shape}"
    np.testing.assert_allclose(g, e, rtol=RTOL[name], atol=ATOL[name], err_msg=what)


def first(value):
    """The array that carries the gradient: the loss, or the ``"sum_and_count"`` total."""
    while isinstance(value, tuple):
        value = value[0]
    return value


class Case:
    """One kind of loss on one layout and dtype: the full and the local arrays and calls."""

    def __init__(self, kind, rank, counts, explicit, dtype):
        self.kind, self.dtype = kind, dtype
        self.num_classes = sum(counts)
        self.lo = sum(counts[:rank])
        self.hi = self.lo + counts[rank]
        self.data = problem(self.num_classes)
        start = self.lo if explicit else None
        self.shard = torch_class_shard(self.num_classes, start=start)

    def tensor(self, name, local=False):
        array = self.data[name]
        if name in ("labels", "ignored", "where"):
            return torch.from_numpy(array.copy())
        out = torch.tensor(array, dtype=self.dtype)
        if local and name in ("weight", "bias", "class_weight"):  # rows / entries
            return out[self.lo : self.hi]
        if local and name in ("logits", "targets"):  # columns
            return out[:, self.lo : self.hi]
        return out

    def arguments(self, options, local):
        """(the loss, its arrays, its keyword options) for the full or the local call."""
        kwargs = {}
        for key, value in options.items():
            kwargs[key] = self.tensor(value, local) if key in ARRAYS else value
        labels = self.tensor("ignored" if "ignore_index" in options else "labels")
        if self.kind == "linear":
            arrays = [labels, self.tensor("hidden"), self.tensor("weight", local)]
            kwargs["bias"] = self.tensor("bias", local)
            return xce.linear_cross_entropy, arrays, kwargs
        if self.kind == "sparse":
            arrays = [labels, self.tensor("logits", local)]
            return xce.sparse_categorical_cross_entropy, arrays, {**kwargs, "from_logits": True}
        kwargs.pop("ignore_index", None)  # soft targets have no labels to ignore
        arrays = [self.tensor("targets", local), self.tensor("logits", local)]
        return xce.categorical_cross_entropy, arrays, {**kwargs, "from_logits": True}

    def call(self, options, *, sharded, how):
        """The value and the gradients (a tuple over the differentiated arrays) of one call:
        ``how`` is "value", "value_and_grad" or "autograd"."""
        loss, arrays, kwargs = self.arguments(options, local=sharded)
        if sharded:
            kwargs["class_shard"] = self.shard
        if how == "value":
            return loss(*arrays, **kwargs), None
        if how == "value_and_grad":
            value, grad = xce.value_and_grad(loss)(*arrays, **kwargs)
            return value, grad if isinstance(grad, tuple) else (grad,)
        leaves = arrays[1:] + ([kwargs["bias"]] if "bias" in kwargs else [])
        for leaf in leaves:
            leaf.requires_grad_(True)
        value = loss(*arrays, **kwargs)
        out = first(value)
        # "none": a per-sample cotangent that is not all ones.
        out.backward(torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).reshape(out.shape))
        return value, tuple(leaf.grad for leaf in leaves)

    def local_grads(self, grads):
        """The unsharded gradients' parts that this rank holds."""
        if self.kind == "linear":
            d_hidden, d_weight, d_bias = grads
            return d_hidden, d_weight[self.lo : self.hi], d_bias[self.lo : self.hi]
        return tuple(g[..., self.lo : self.hi] for g in grads)


def check_against_unsharded(case, options, reduction, how):
    options = {**options, "reduction": reduction}
    got, got_grads = case.call(options, sharded=True, how=how)
    expected, expected_grads = case.call(options, sharded=False, how=how)
    close(got, expected, case.dtype, "value")
    if got_grads is not None:
        close(got_grads, case.local_grads(expected_grads), case.dtype, "gradient")


def check_against_reference(case):
    """float64 with every option, "mean": the loss and gradient against the NumPy oracles."""
    options = {**OPTIONS["everything"], "reduction": "mean"}
    value, grads = case.call(options, sharded=True, how="value_and_grad")
    d = case.data
    common = {
        "class_weight": d["class_weight"], "sample_weight": d["sample_weight"],
        "label_smoothing": 0.1, "softcap": 2.0, "z_loss": 1e-2,
    }  # fmt: skip
    if case.kind == "linear":
        expected = reference_linear.linear_cross_entropy(
            d["ignored"], d["hidden"], d["weight"], bias=d["bias"], ignore_index=IGNORE,
            where=d["where"], **common,
        )  # fmt: skip
        d_hidden, d_weight, d_bias = reference_linear.gradients(
            d["ignored"], d["hidden"], d["weight"], bias=d["bias"], ignore_index=IGNORE,
            where=d["where"], **common,
        )  # fmt: skip
        expected_grads = (d_hidden, d_weight[case.lo : case.hi], d_bias[case.lo : case.hi])
    else:
        if case.kind == "sparse":
            oracle = reference_softcap.sparse(
                d["ignored"], d["logits"], ignore_index=IGNORE, valid=d["where"], **common
            )
        else:
            oracle = reference_softcap.categorical(
                d["targets"], d["logits"], valid=d["where"], **common
            )
        expected, expected_grads = oracle["loss"], (oracle["grad"][:, case.lo : case.hi],)
    close(value, np.float64(expected), case.dtype, "value against the oracle")
    close(grads, expected_grads, case.dtype, "gradient against the oracle")


# What runs where (a few hundred calls per rank, so that both groups finish in seconds; with
# four ranks on two cores every collective waits for each rank to be scheduled): two ranks,
# float64 on even shards: every option × reduction; the other layouts and dtypes: the
# options that combine everything (bfloat16: all at once, "mean"). Four ranks: uneven shards
# only (their even shards run in the collectives' count and the bad-input checks). autograd
# and value_and_grad everywhere, the plain value (no autodiff: another path through the
# shard) in float64.
EVERY = tuple(OPTIONS)
COMBINED = ("plain", "everything", "parts")


def layouts(world):
    """(name, local class counts, explicit starts?) for this world size."""
    if world == 2:
        return [("even", [3, 3], False), ("uneven", [2, 5], True)]
    return [("uneven", [3, 1, 4, 2], True)]


def _plan(layout, dtype_name):
    if dtype_name == "bfloat16":  # computed in float32, rounded at the end
        return ("everything",), ("mean",)
    if dtype_name == "float64":
        return (EVERY, REDUCTIONS) if layout == "even" else (COMBINED, REDUCTIONS)
    return COMBINED, ("none", "mean", "sum_and_count")


def check_class_axis(case):
    """Logits (N, C, 2) with the classes on axis 1: per-sample losses through autograd (the
    cotangent expanded at the class axis) and the mean's value_and_grad."""
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(N, case.num_classes, 2))
    labels = torch.from_numpy(rng.integers(0, case.num_classes, size=(N, 2)))
    cotangent = torch.linspace(0.5, 1.5, 2 * N, dtype=case.dtype).reshape(N, 2)
    results = []
    for x, shard in ((logits[:, case.lo : case.hi], case.shard), (logits, None)):
        leaf = torch.tensor(x, dtype=case.dtype, requires_grad=True)
        kwargs = {"from_logits": True, "axis": 1, "class_shard": shard}
        per_sample = xce.sparse_categorical_cross_entropy(labels, leaf, reduction="none", **kwargs)
        per_sample.backward(cotangent)
        loss = xce.value_and_grad(xce.sparse_categorical_cross_entropy)
        results.append((per_sample, leaf.grad, *loss(labels, leaf.detach(), **kwargs)))
    (got, got_grad, got_mean, got_mean_grad), (want, want_grad, want_mean, want_mean_grad) = results
    close(got, want, case.dtype, "per-sample loss")
    close(got_grad, want_grad[:, case.lo : case.hi], case.dtype, "autograd, axis 1")
    close(got_mean, want_mean, case.dtype, "mean")
    close(got_mean_grad, want_mean_grad[:, case.lo : case.hi], case.dtype, "value_and_grad")


def all_cases(rank, world):
    """(name, check) pairs: the same list, in the same order, on every rank."""
    for (layout, counts, explicit), kind, (dtype_name, dtype) in itertools.product(
        layouts(world), ("sparse", "categorical", "linear"), DTYPES.items()
    ):
        case = Case(kind, rank, counts, explicit, dtype)
        prefix = f"{kind} {layout} {counts} {dtype_name}"
        option_names, reductions = _plan(layout, dtype_name)
        for option_name, reduction in itertools.product(option_names, reductions):
            if kind == "categorical" and option_name == "ignore_index":
                continue
            hows = ["autograd"]
            if reduction != "none":
                hows.append("value_and_grad")
            if reduction in ("none", "mean") and dtype_name == "float64":
                hows.append("value")
            for how in hows:
                yield (
                    f"{prefix} {option_name} {reduction} {how}",
                    functools.partial(
                        check_against_unsharded, case, OPTIONS[option_name], reduction, how
                    ),
                )
        if dtype_name == "float64":
            yield f"{prefix} against the oracle", functools.partial(check_against_reference, case)
        if dtype_name == "float64" and kind == "sparse":
            yield f"{prefix} class axis 1", functools.partial(check_class_axis, case)
    yield "collectives counted", functools.partial(count_collectives, rank, world)
    yield "bad input", functools.partial(bad_input, rank, world)


def counted(name, call):
    """``call()``, with its collectives recorded under ``name``."""
    global COUNTER
    COUNTER = []
    try:
        return call()
    finally:
        COLLECTIVES[name], COUNTER = COUNTER, None


def count_collectives(rank, world):
    """The collectives of typical calls (N = 4 rows, 16 classes per rank, float32): the
    forward with and without class weights, value_and_grad, autograd's backward alone, soft
    targets, linear cross entropy (D = 3) without and with autograd, and an uneven layout's
    first and second calls (its tiling is checked once)."""
    case = Case("sparse", rank, [16] * world, False, torch.float32)
    case.data = {**problem(case.num_classes)}
    rng = np.random.default_rng(1)
    case.data["labels"] = rng.integers(0, case.num_classes, size=4)
    case.data["logits"] = rng.normal(size=(4, case.num_classes))
    case.data["class_weight"] = rng.uniform(0.5, 2.0, size=case.num_classes)
    plain = {"reduction": "mean"}
    weighted = {**plain, "class_weight": "class_weight", "label_smoothing": 0.1, "z_loss": 1e-2}
    counted("forward", lambda: case.call(plain, sharded=True, how="value"))
    counted("forward, class weights", lambda: case.call(weighted, sharded=True, how="value"))
    counted("value_and_grad", lambda: case.call(weighted, sharded=True, how="value_and_grad"))
    logits = case.tensor("logits", local=True).requires_grad_(True)
    labels = case.tensor("labels")
    loss = xce.sparse_categorical_cross_entropy(
        labels, logits, from_logits=True, class_shard=case.shard
    )
    counted("autograd backward", loss.backward)
    # The caller's arrays stay as they were (all_reduce works in place, on copies).
    np.testing.assert_array_equal(logits.detach().numpy(), case.tensor("logits", True).numpy())
    mine = torch.full((4,), float(rank))
    assert case.shard.all_sum(mine).tolist() == [sum(range(world))] * 4
    assert case.shard.all_max(mine).tolist() == [world - 1] * 4 and mine.tolist() == [rank] * 4
    soft = Case("categorical", rank, [16] * world, False, torch.float32)
    soft.data = {**case.data, "targets": np.full((4, case.num_classes), 1 / case.num_classes)}
    counted("categorical forward", lambda: soft.call(plain, sharded=True, how="value"))
    linear = Case("linear", rank, [16] * world, False, torch.float32)
    linear.data = {**case.data, "hidden": rng.normal(size=(4, D))}
    linear.data["weight"] = rng.normal(size=(case.num_classes, D))
    counted("linear forward", lambda: linear.call(plain, sharded=True, how="value"))
    hidden = linear.tensor("hidden").requires_grad_(True)
    weight = linear.tensor("weight", local=True).requires_grad_(True)
    loss = counted(
        "linear forward, autograd",
        lambda: xce.linear_cross_entropy(labels, hidden, weight, class_shard=linear.shard),
    )
    counted("linear autograd backward", loss.backward)
    uneven = Case("sparse", rank, [16] * world, True, torch.float32)
    uneven.data = case.data
    counted("explicit start, first call", lambda: uneven.call(plain, sharded=True, how="value"))
    counted("explicit start, second call", lambda: uneven.call(plain, sharded=True, how="value"))


def raises(name, call):
    """Record the error that ``call`` raises (every rank must raise one)."""
    try:
        call()
    except (ValueError, TypeError) as exc:
        ERRORS[name] = f"{type(exc).__name__}: {exc}"
    else:
        ERRORS[name] = "no error"


def bad_input(rank, world):
    """Labels outside [0, C), probabilities, soft targets whose whole rows do not sum to 1,
    shards that do not tile the classes."""
    counts = [3] * world
    case = Case("sparse", rank, counts, False, torch.float64)
    local = case.tensor("logits", local=True)
    for label in (case.num_classes, -1):
        labels = torch.tensor([0, label, 1, 0, 2])
        raises(
            f"label {label}",
            lambda labels=labels: xce.sparse_categorical_cross_entropy(
                labels, local, from_logits=True, class_shard=case.shard
            ),
        )
    raises(
        "from_logits=False",
        lambda: xce.sparse_categorical_cross_entropy(
            case.tensor("labels"), torch.softmax(local, -1), class_shard=case.shard
        ),
    )
    # Targets whose whole rows sum to 1.3 (each rank sees only its part of the sum).
    soft = Case("categorical", rank, counts, False, torch.float64)
    raises(
        "soft targets off by 30%",
        lambda: xce.categorical_cross_entropy(
            soft.tensor("targets", local=True) * 1.3, local, from_logits=True,
            class_shard=case.shard,
        ),
    )  # fmt: skip
    # Every rank claims to start at class 0 (overlapping shards): the one gather shows it.
    overlapping = torch_class_shard(case.num_classes, start=0)
    raises(
        "overlapping starts",
        lambda: xce.sparse_categorical_cross_entropy(
            case.tensor("labels"), local, from_logits=True, class_shard=overlapping
        ),
    )
    # Equal shards of 3 classes cannot make 3·world + 1.
    short = torch_class_shard(case.num_classes + 1)
    raises(
        "shards short of num_classes",
        lambda: xce.sparse_categorical_cross_entropy(
            case.tensor("labels"), local, from_logits=True, class_shard=short
        ),
    )
