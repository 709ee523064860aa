"""The problems, calls and checks of ``distributed_jax_script.py`` (imported by it after it
has set XLA's device count): one problem's arrays, the options of each case, every loss call
of a case in one program, and the reading of a compiled program's collectives. Results and
failures are collected in the module's lists, which the script prints.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np

import xce

N, C, D = 6, 64, 3
# The most per-row scalars one collective carries (a stack of sums): far fewer than the
# classes of one shard (C / 4), so that a gathered logit block would stand out.
COLUMNS = 6
IGNORE = -100
REDUCTIONS = ("none", "mean", "sum", "sum_and_count")
FAILURES: list[str] = []
COUNTS: dict[str, int] = {}
TIMES: dict[str, float] = {}
CASES: list[str] = []  # the names of the cases run

# Each case turns several options on at once, so that every option and reduction is met
# without a program per combination (each is compiled: JAX's cost is its compilation).
OPTIONS = {
    "plain": {},
    "everything": {
        "ignore_index": IGNORE, "class_weight": True, "label_smoothing": 0.2, "where": True,
        "sample_weight": True, "softcap": 3.0, "z_loss": 0.02,
    },
    "everything, parts": {
        "ignore_index": IGNORE, "class_weight": True, "label_smoothing": 0.2, "where": True,
        "sample_weight": True, "softcap": 3.0, "z_loss": 0.02, "return_parts": True,
    },
}  # fmt: skip


def data(seed):
    """Host arrays of one problem (float64; labels with one ``ignore_index`` entry)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, N)
    labels[1] = IGNORE
    targets = rng.dirichlet(np.ones(C), N)
    return {
        "labels": labels,
        "targets": targets,
        "logits": 2.0 * rng.normal(size=(N, C)),
        "hidden": rng.normal(size=(N, D)),
        "weight": rng.normal(size=(C, D)),
        "class_weight": rng.uniform(0.5, 2.0, C),
        "sample_weight": rng.uniform(0.5, 2.0, N),
        "where": np.arange(N) % 4 != 2,
        "cotangent": rng.uniform(0.5, 1.5, N),
    }


def failed(what, error):
    FAILURES.append(f"{what}: {str(error).strip()[:600]}")


def close(got, expected, what, rtol, atol=0.0):
    """Compare two pytrees of arrays leaf by leaf (same structure)."""
    got_leaves, expected_leaves = jax.tree.leaves(got), jax.tree.leaves(expected)
    try:
        assert len(got_leaves) == len(expected_leaves), "different structures"
        for g, e in zip(got_leaves, expected_leaves, strict=True):
            np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=rtol, atol=atol)
    except AssertionError as error:
        failed(what, error)


KINDS = r"(all-reduce|all-gather|all-to-all|collective-permute|reduce-scatter)(?:-start)?\("


def collectives(compiled_text):
    """``(kind, element count)`` of each operand of each collective of an HLO module."""
    found = []
    for line in compiled_text.splitlines():
        match = re.search(r"=\s*(.*?)\s" + KINDS, line)
        if match is None:
            continue
        for shape in re.findall(r"\w+\[([\d,]*)\]", match.group(1)):
            size = int(np.prod([int(d) for d in shape.split(",") if d] or [1]))
            found.append((match.group(2), size))
    return found


def operations(compiled_text):
    """The number of collective operations (a tuple all-reduce counts once)."""
    return sum(1 for line in compiled_text.splitlines() if re.search(r"\s" + KINDS, line))


def check_per_row_only(text, what):
    """Only all-reduces, each of a few scalars per row at most: never a block of logits."""
    for kind, size in collectives(text):
        if kind != "all-reduce" or size > COLUMNS * N:
            failed(what, f"a {kind} of {size} elements (rows {N}, logits {N * C})")


# --- shard_map with jax_class_shard ----------------------------------------------------------

OPTION_ARRAYS = ("class_weight", "sample_weight", "where")
FUNCTIONS = {
    "sparse": xce.sparse_categorical_cross_entropy,
    "categorical": xce.categorical_cross_entropy,
    "linear": xce.linear_cross_entropy,
}
DIFFERENTIATED = {"sparse": ("logits",), "categorical": ("logits",), "linear": ("hidden", "weight")}
POSITIONAL = {"sparse": ("labels", "logits"), "categorical": ("targets", "logits"),
              "linear": ("labels", "hidden", "weight")}  # fmt: skip


def case_arrays(kind, options, source, dtype):
    """The arrays of a call in ``dtype`` (labels as they are): its positional ones, the option
    arrays it uses (by the option's name) and the cotangent of ``reduction="none"``."""
    names = (*POSITIONAL[kind], "cotangent", *(n for n in OPTION_ARRAYS if options.get(n)))
    arrays = {name: np.array(source[name]) for name in names}
    if "labels" in arrays and "ignore_index" not in options:
        arrays["labels"][arrays["labels"] == IGNORE] = 0
    return {k: jnp.asarray(v, dtype=dtype if v.dtype.kind == "f" else None)
            for k, v in arrays.items()}  # fmt: skip


def keywords(kind, arrays, options, shard, **extra):
    """The call's keywords: ``options`` with their arrays taken from (local) ``arrays``."""
    result = {k: v for k, v in options.items() if k not in OPTION_ARRAYS}
    result.update({name: arrays[name] for name in OPTION_ARRAYS if name in arrays}, **extra)
    if kind == "categorical":
        result.pop("ignore_index", None)
    if kind != "linear":
        result["from_logits"] = True
    if shard is not None:
        result["class_shard"] = shard
    return result


def call(kind, arrays, options, shard, **extra):
    """One loss call of ``kind`` on (local) ``arrays``."""
    positional = (arrays[name] for name in POSITIONAL[kind])
    return FUNCTIONS[kind](*positional, **keywords(kind, arrays, options, shard, **extra))


def everything(kind, arrays, options, shard, reductions=REDUCTIONS):
    """Every reduction, ``xce.value_and_grad`` and ``jax.grad`` (of the mean, and of the
    per-sample losses against a cotangent), in one program."""
    names = DIFFERENTIATED[kind]

    def scalar(differentiable, reduction):
        local = {**arrays, **dict(zip(names, differentiable, strict=True))}
        value = call(kind, local, options, shard, reduction=reduction)
        value = value.loss if isinstance(value, xce.LossParts) else value
        return jnp.sum(value * arrays["cotangent"]) if reduction == "none" else value

    primals = tuple(arrays[name] for name in names)
    result = {
        "grad_mean": jax.grad(scalar)(primals, "mean"),
        "grad_none": jax.grad(scalar)(primals, "none"),
    }
    if reductions:
        with_grad = xce.value_and_grad(FUNCTIONS[kind])
        positional = (arrays[name] for name in POSITIONAL[kind])
        value, grad = with_grad(*positional, **keywords(kind, arrays, options, shard))
        result["value_and_grad"] = (value, grad if kind == "linear" else (grad,))
        result["values"] = {r: call(kind, arrays, options, shard, reduction=r) for r in reductions}
    return result


def tolerances(dtype):
    return (1e-12, 1e-13) if dtype == jnp.float64 else (2e-5, 2e-6)
