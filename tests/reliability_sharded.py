"""Run by ``test_reliability.py`` in a fresh interpreter: every loss on JAX arrays sharded over
two (forced CPU) devices along the batch, eagerly and under ``jax.jit``.

The device count of XLA's CPU platform is fixed when JAX starts, hence the own interpreter.
Targets and predictions are split over a 1-D mesh ``("batch",)``: labels ``P("batch")``,
predictions ``P("batch", None)`` (the same two devices, another layout), and host labels
beside sharded predictions, all from logits (sharding changes where arrays are made and
compared, the same for probabilities). Values (``none``, ``mean``, ``sum_and_count``) are
compared with the float64 NumPy reference, ``value_and_grad`` with the reference and its
central differences. Prints one JSON line: the failed cases (empty when all pass), the count
of cases and of devices.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
sys.path.insert(0, str(pathlib.Path(__file__).parent))

import jax
import numpy as np
from helpers import central_difference
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from matrix import ROWS

import xce

jax.config.update("jax_enable_x64", True)
MESH = Mesh(np.array(jax.devices()[:2]), ("batch",))
BOTH = frozenset(jax.devices()[:2])
SHAPE = (8, 4)


def sharded(a):
    """``a`` split over the mesh along its first axis, whole along the others."""
    return jax.device_put(a, NamedSharding(MESH, P("batch", *([None] * (a.ndim - 1)))))


def close(got, expected, what, rtol=1e-9, atol=1e-7):
    got = tuple(got) if isinstance(got, tuple) else (got,)
    expected = tuple(expected) if isinstance(expected, tuple) else (expected,)
    for g, e in zip(got, expected, strict=True):
        if frozenset(g.devices()) != BOTH and g.ndim > 0:
            raise AssertionError(f"{what}: result on {g.devices()}, not on both devices")
        np.testing.assert_allclose(np.asarray(g), e, rtol=rtol, atol=atol, err_msg=what)


def check_loss(loss):
    y_true, y_pred = loss.problem(0, SHAPE)
    t, p = sharded(y_true), sharded(y_pred)
    options = {**loss.hyper, "from_logits": True}
    none = loss.expected(y_true, y_pred, reduction="none", **options)
    pair = loss.expected(y_true, y_pred, reduction="sum_and_count", **options)
    mean = loss.expected(y_true, y_pred, **options)
    grad = central_difference(lambda q: float(loss.expected(y_true, q, **options)), y_pred)
    value_and_grad = xce.value_and_grad(loss.fn)
    # Eagerly (where the arrays' devices are compared and new ones made) with sharded targets,
    # and host labels (from a data loader) beside sharded logits.
    close(loss.fn(t, p, reduction="sum_and_count", **options), pair, "eager sum_and_count")
    if loss.target == "labels":
        close(loss.fn(y_true, p, reduction="none", **options), none, "host labels")
    close(value_and_grad(t, p, **options), (mean, grad), "eager value_and_grad", rtol=1e-6)

    @jax.jit
    def everything(a, b):
        return (
            loss.fn(a, b, reduction="none", **options),
            loss.fn(a, b, reduction="sum_and_count", **options),
            value_and_grad(a, b, **options),
            jax.value_and_grad(lambda c: loss.fn(a, c, **options))(b),
        )

    got_none, got_pair, got_xce, got_jax = everything(t, p)
    close(got_none, none, "jit none")
    close(got_pair, pair, "jit sum_and_count")
    close(got_xce, (mean, grad), "jit value_and_grad", rtol=1e-6)
    close(got_jax, (mean, grad), "jit jax.value_and_grad", rtol=1e-6)


def main():
    failures, cases = [], 0
    for loss in ROWS:
        cases += 1
        try:
            check_loss(loss)
        except Exception as error:  # every failure is reported, not only the first
            failures.append(f"{loss.name}: {type(error).__name__}: {str(error)[:400]}")
    print(json.dumps({"failures": failures, "cases": cases, "devices": len(BOTH)}))


if __name__ == "__main__":
    main()
