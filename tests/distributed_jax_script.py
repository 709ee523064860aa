"""Run by ``test_distributed_jax.py`` in a fresh interpreter with four forced CPU devices:
class-sharded losses on JAX, through ``jax.shard_map`` with ``xce.distributed.jax_class_shard``
and through a ``NamedSharding`` of the class axis under plain ``jax.jit``.

The device count of XLA's CPU platform is fixed when JAX starts, hence the own interpreter.
Every sharded result is compared with the same call on the whole (unsharded) arrays, float64
to 1e-12 relative, and a few with the float64 NumPy references. The compiled programs are read
for their collectives: only per-row scalars may travel, never the (N, C) logits, and the
backward of ``jax.grad`` inside ``shard_map`` adds none. Prints one JSON line: the failed cases
(empty when all pass), how many ran, the device count and the collectives counted.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import sys
import time

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
sys.path.insert(0, str(pathlib.Path(__file__).parent))

import jax
import jax.numpy as jnp
import numpy as np
import reference_linear
import reference_softcap
from distributed_jax_cases import (
    CASES,
    COUNTS,
    FAILURES,
    FUNCTIONS,
    IGNORE,
    OPTIONS,
    POSITIONAL,
    REDUCTIONS,
    TIMES,
    C,
    call,
    case_arrays,
    check_per_row_only,
    close,
    data,
    everything,
    failed,
    keywords,
    operations,
    tolerances,
)  # fmt: skip
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import xce

jax.config.update("jax_enable_x64", True)
# The losses run in shard_map.
LOSSES = ("sparse", "categorical", "linear")


def sharded(kind, options, mesh, axis, arrays, check_vma=True, reductions=REDUCTIONS):
    """:func:`everything` in ``shard_map``: the class axis split over ``axis``, the gradients
    this position's slices (linear: the full d_hidden and the local rows of d_weight)."""
    split = {"logits": P(None, axis), "targets": P(None, axis), "weight": P(axis, None),
             "class_weight": P(axis)}  # fmt: skip
    in_specs = {name: split.get(name, P()) for name in arrays}
    grads = (P(), P(axis, None)) if kind == "linear" else (P(None, axis),)
    out_specs = {"grad_mean": grads, "grad_none": grads}
    if reductions:
        out_specs.update(values=P(), value_and_grad=(P(), grads))

    def body(local):
        shard = xce.distributed.jax_class_shard(C, axis)
        return everything(kind, local, options, shard, reductions)

    return jax.jit(jax.shard_map(body, mesh=mesh, in_specs=(in_specs,), out_specs=out_specs,
                                 check_vma=check_vma))  # fmt: skip


UNSHARDED: dict = {}


def unsharded(kind, name, dtype, arrays):
    """:func:`everything` on the whole arrays, computed once per case."""
    key = (kind, name, jnp.dtype(dtype).name)
    if key not in UNSHARDED:
        options = OPTIONS[name]
        UNSHARDED[key] = jax.jit(lambda a: everything(kind, a, options, None))(arrays)
    return UNSHARDED[key]


def run_case(kind, name, mesh, axis, dtype, source):
    """A sharded case against the same call on the whole arrays; its results (or None)."""
    options = OPTIONS[name]
    arrays = case_arrays(kind, options, source, dtype)
    started = time.perf_counter()
    size = int(np.prod([mesh.shape[a] for a in (axis if isinstance(axis, tuple) else (axis,))]))
    what = f"shard_map {kind} [{name}] {size} devices over {axis} {jnp.dtype(dtype).name}"
    CASES.append(what)
    try:
        got = sharded(kind, options, mesh, axis, arrays)(arrays)
        expected = unsharded(kind, name, dtype, arrays)
    except Exception as error:
        failed(what, repr(error))
        return None
    TIMES[what] = round(time.perf_counter() - started, 2)
    close(got, expected, what, *tolerances(dtype))
    return got


def check_reference(kind, got, source):
    """The float64 "everything" case against the NumPy references (mean and "none")."""
    options = OPTIONS["everything, parts"]
    arrays = case_arrays(kind, options, source, jnp.float64)
    host = {k: np.asarray(v) for k, v in arrays.items()}
    common = {"class_weight": host["class_weight"], "sample_weight": host["sample_weight"],
              "label_smoothing": options["label_smoothing"], "softcap": options["softcap"],
              "z_loss": options["z_loss"]}  # fmt: skip
    what = f"shard_map {kind} against the NumPy reference"
    if kind == "linear":
        for reduction in ("mean", "none"):
            expected = reference_linear.linear_cross_entropy(
                host["labels"], host["hidden"], host["weight"], ignore_index=IGNORE,
                where=host["where"], reduction=reduction, **common,
            )  # fmt: skip
            close(got["values"][reduction].loss, expected, f"{what} {reduction}", 1e-12, 1e-13)
        expected = reference_linear.gradients(host["labels"], host["hidden"], host["weight"],
                                              ignore_index=IGNORE, where=host["where"],
                                              **common)  # fmt: skip
        close(got["grad_mean"], tuple(expected), f"{what} gradients", 1e-12, 1e-13)
        return
    if kind == "sparse":
        oracle = functools.partial(reference_softcap.sparse, host["labels"], ignore_index=IGNORE)
    else:
        oracle = functools.partial(reference_softcap.categorical, host["targets"])
    expected = {r: oracle(host["logits"], valid=host["where"], reduction=r, **common)
                for r in REDUCTIONS}  # fmt: skip
    # log Z of the included rows: an excluded row's is documented as that of zeroed logits.
    included = host["where"] & (host.get("labels", 0) != IGNORE)
    for r in REDUCTIONS:
        parts = got["values"][r]
        fields = (parts.loss, parts.cross_entropy, parts.z_loss, parts.log_z[included])
        wanted = (*(expected[r][k] for k in ("loss", "cross_entropy", "z_loss")),
                  expected[r]["log_z"][included])  # fmt: skip
        close(fields, wanted, f"{what} {r}", 1e-12, 1e-13)
    close(got["grad_mean"], (expected["mean"]["grad"],), f"{what} gradient", 1e-12, 1e-13)


def check_autodiff_and_collectives(mesh, axis, source):
    """``jax.grad`` inside ``shard_map`` under ``check_vma=False`` (where a transposed psum
    would count each share group-size times), ``jax.grad`` of the whole ``shard_map``, and
    the collectives: the gradient's program has exactly the forward's."""
    options = OPTIONS["everything"]
    # The two ways jax.grad goes: jax_class_shard's custom VJP, and linear's own.
    for kind in (k for k in LOSSES if k != "categorical"):
        arrays = case_arrays(kind, options, source, jnp.float64)
        what = f"shard_map {kind} check_vma=False"
        try:
            got = sharded(kind, options, mesh, axis, arrays, check_vma=False, reductions=())
            got = got(arrays)
            expected = jax.jit(lambda a, kind=kind: everything(kind, a, options, None, ()))(arrays)
        except Exception as error:
            failed(what, repr(error))
            continue
        close(got, expected, what, 1e-12, 1e-13)
    arrays = case_arrays("sparse", options, source, jnp.float64)
    split = {"logits": P(None, axis), "class_weight": P(axis)}
    in_specs = ({name: split.get(name, P()) for name in arrays},)

    def mapped(body):
        return jax.shard_map(body, mesh=mesh, in_specs=in_specs, out_specs=P())

    def loss(local):
        shard = xce.distributed.jax_class_shard(C, axis)
        return call("sparse", local, options, shard)

    def inside(local):
        return jax.value_and_grad(lambda x: loss({**local, "logits": x}))(local["logits"])

    outside = jax.jit(jax.grad(lambda x: mapped(loss)({**arrays, "logits": x})))
    expected = jax.jit(jax.grad(lambda x: call("sparse", {**arrays, "logits": x}, options, None)))
    close(outside(arrays["logits"]), expected(arrays["logits"]), "jax.grad of the whole shard_map",
          1e-12, 1e-13)  # fmt: skip
    forward = jax.jit(mapped(loss)).lower(arrays).compile().as_text()
    both = jax.shard_map(inside, mesh=mesh, in_specs=in_specs, out_specs=(P(), P(None, axis)))
    backward = jax.jit(both).lower(arrays).compile().as_text()
    COUNTS["shard_map forward"] = operations(forward)
    COUNTS["shard_map value and jax.grad"] = operations(backward)
    check_per_row_only(forward, "shard_map forward")
    check_per_row_only(backward, "shard_map jax.grad")
    if operations(backward) != operations(forward):
        failed("shard_map jax.grad", "the backward adds collectives:\n" + backward[-3000:])
    if operations(forward) > 3:
        failed("shard_map forward", f"{operations(forward)} collectives, more than 3")


# --- NamedSharding under plain jax.jit -------------------------------------------------------


def placed(arrays, mesh, batch):
    """The arrays laid out on ``mesh``: the class axis over "classes", the rows over
    ``batch`` (an axis name or None)."""
    specs = {"logits": P(batch, "classes"), "targets": P(batch, "classes"),
             "class_weight": P("classes")}  # fmt: skip
    return {
        name: jax.device_put(a, NamedSharding(mesh, specs.get(name, P(batch))))
        for name, a in arrays.items()
    }


def few(kind, arrays, options):
    """What a training step calls: the mean (as a pair for data parallelism), and its
    gradient by ``xce.value_and_grad`` and by ``jax.grad``."""
    positional = tuple(arrays[name] for name in POSITIONAL[kind])
    keys = keywords(kind, arrays, options, None)

    def mean(x):
        value = FUNCTIONS[kind](*positional[:-1], x, **keys)
        return value.loss if isinstance(value, xce.LossParts) else value

    return {
        "sum_and_count": FUNCTIONS[kind](*positional, **keys, reduction="sum_and_count"),
        "value_and_grad": xce.value_and_grad(FUNCTIONS[kind])(*positional, **keys),
        "jax.grad": jax.grad(mean)(positional[-1]),
    }


def check_named_sharding(source):
    """The plain losses under ``jax.jit`` on logits split over the classes (and the rows):
    the unsharded numbers, and no collective of more than a few scalars per row."""
    devices = np.array(jax.devices()[:4])
    layouts = {
        "P(None, 'classes')": (Mesh(devices, ("classes",)), None),
        "P('batch', 'classes')": (Mesh(devices.reshape(2, 2), ("batch", "classes")), "batch"),
    }
    for kind in ("sparse", "categorical"):
        programs = {
            # Every option, and (the counts the docs quote) the loss alone and with its gradient.
            "everything": jax.jit(lambda a, kind=kind: few(kind, a, OPTIONS["everything"])),
            "value": jax.jit(lambda a, kind=kind: call(kind, a, {}, None)),
            "value_and_grad": jax.jit(
                lambda a, kind=kind: xce.value_and_grad(FUNCTIONS[kind])(
                    *(a[name] for name in POSITIONAL[kind]), from_logits=True
                )
            ),
        }
        for name, program in programs.items():
            options = OPTIONS["everything" if name == "everything" else "plain"]
            arrays = case_arrays(kind, options, source, jnp.float64)
            expected = program(arrays)
            for layout, (mesh, batch) in layouts.items():
                what = f"NamedSharding {layout} {kind} {name}"
                CASES.append(what)
                inputs = placed(arrays, mesh, batch)
                try:
                    compiled = program.lower(inputs).compile()
                    close(compiled(inputs), expected, what, 1e-12, 1e-13)
                except Exception as error:
                    failed(what, repr(error))
                    continue
                text = compiled.as_text()
                check_per_row_only(text, what)
                COUNTS[what] = operations(text)


def main():
    source = data(0)
    devices = np.array(jax.devices()[:4])
    four = Mesh(devices, ("classes",))
    two = Mesh(devices[:2], ("classes",))
    run_case("sparse", "plain", four, "classes", jnp.float64, source)
    for kind in LOSSES:
        got = run_case(kind, "everything, parts", four, "classes", jnp.float64, source)
        if got is not None:
            check_reference(kind, got, source)
        # Two devices, float32: every option again, without the parts.
        run_case(kind, "everything", two, "classes", jnp.float32, source)
    # A tuple of mesh axes: classes split over both axes of a 2 × 2 mesh.
    square = Mesh(devices.reshape(2, 2), ("a", "b"))
    run_case("sparse", "everything", square, ("a", "b"), jnp.float64, source)
    started = time.perf_counter()
    check_autodiff_and_collectives(four, "classes", source)
    TIMES["autodiff and collectives"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    check_named_sharding(source)
    TIMES["NamedSharding"] = round(time.perf_counter() - started, 2)
    print(json.dumps({"failures": FAILURES, "cases": len(CASES), "devices": len(jax.devices()),
                      "collectives": COUNTS, "seconds": TIMES}))  # fmt: skip


if __name__ == "__main__":
    main()
