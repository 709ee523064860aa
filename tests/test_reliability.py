"""Reliability (issue 23): xce in forked workers, with empty and lazily-shaped batches, and
the building blocks' result type.

Each test fails without its fix; values are checked against the float64 NumPy reference.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import reference as ref
from helpers import assert_close, central_difference, check, seen, soft_targets
from matrix import losses

import xce

TESTS = pathlib.Path(__file__).parent


def test_forked_child_computes_after_parent_used_numpy_threads():
    # NumPy only: the thread pool is the NumPy fast path's. Before the fix the child inherited
    # the pool without its threads and waited forever on its first threaded call.
    script = TESTS / "reliability_fork.py"
    done = subprocess.run(
        [sys.executable, str(script), "30"], capture_output=True, text=True, timeout=90, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 1024))
    y = rng.integers(0, 1024, size=512)
    expected = ref.sparse_categorical_cross_entropy(y, x, from_logits=True, reduction="sum")
    assert result["child"] is not None, "the forked child hung on the NumPy thread pool"
    np.testing.assert_allclose(result["child"], expected, rtol=1e-12)
    np.testing.assert_allclose(result["parent"], expected, rtol=1e-12)


@pytest.mark.parametrize("shape", [(5,), (3, 4)], ids=["1d", "2d"])
def test_entropy_and_kl_return_arrays_of_the_backend(xp, make, dtype, device, shape):
    # NumPy's sum over a 1-D array gives a scalar (numpy.float64), not the 0-d array that
    # the docstrings promise and the losses return.
    p, q = make(soft_targets(0, shape)), make(soft_targets(1, shape))
    got_h, got_kl = xce.entropy(p), xce.kl_divergence(p, q)
    for got in (got_h, got_kl):
        assert type(got) is type(p), f"{type(got)} is not the backend's array type {type(p)}"
    assert_close(got_h, ref.entropy(seen(p)), xp=xp, dtype=dtype, device=device)
    expected_kl = ref.kl_divergence(seen(p), seen(q))
    assert_close(got_kl, expected_kl, xp=xp, dtype=dtype, device=device)


def test_jax_arrays_sharded_over_two_devices(backend):
    # JAX only, in its own interpreter with two forced CPU devices. Before the fix the 0-d
    # count was made with the batch's sharding (with_sharding_constraint refused it), and
    # labels sharded P('batch') beside logits P('batch', None) were "on another device".
    if backend != "jax":
        pytest.skip("sharding is a JAX layout")
    script = TESTS / "reliability_sharded.py"
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["devices"] == 2, "XLA did not give the child interpreter two CPU devices"
    assert result["cases"] == len(losses())
    assert not result["failures"], "\n".join(result["failures"])


def _dask_rows_in_chunks(xp, data, dtype, row_chunks):
    """``data`` as a Dask array whose leading axis is cut into ``row_chunks``."""
    return xp.asarray(data, dtype=dtype).rechunk((row_chunks, *((n,) for n in data.shape[1:])))


@pytest.mark.parametrize("loss", losses(), indirect=True)
def test_dask_empty_batch_in_several_chunks(xp, backend, loss, dtype, device):
    # Dask only: an axis of length 0 split into several chunks is a Dask layout. Before the
    # fix the sparse loss refused to reshape it, and kernels that broadcast it failed at
    # compute time.
    if backend != "dask":
        pytest.skip("chunked empty batches are a Dask layout")
    y_true, y_pred = loss.problem(0, (0, 4))
    t_dtype = xp.int64 if loss.target == "labels" else dtype
    t = _dask_rows_in_chunks(xp, y_true, t_dtype, (0, 0, 0))
    p = _dask_rows_in_chunks(xp, y_pred, dtype, (0, 0, 0))
    for reduction in ("none", "mean", "sum_and_count"):
        got = loss.call(t, p, reduction=reduction)
        expected = loss.expected(y_true, y_pred, reduction=reduction)
        check(got, expected, xp=xp, dtype=dtype, device=device)
    (total, _), grad = xce.value_and_grad(loss.fn)(t, p, reduction="sum_and_count", **loss.hyper)
    assert_close(total, 0.0, xp=xp, dtype=dtype, device=device)
    assert_close(grad, np.zeros((0, 4)), xp=xp, dtype=dtype, device=device)


def _sized(result):
    """A Dask result (or a tuple of them) with its unknown chunk sizes computed."""
    if isinstance(result, tuple):
        return tuple(_sized(r) for r in result)
    return result.compute_chunk_sizes() if any(n != n for n in result.shape) else result


@pytest.mark.parametrize("loss", losses(), indirect=True)
@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probabilities"])
def test_dask_unknown_chunk_sizes(xp, backend, loss, dtype, device, from_logits):
    # Dask only: boolean indexing leaves Dask arrays with unknown (nan) chunk sizes. Each loss
    # and its gradient must compute as on the rows selected from concrete NumPy data.
    if backend != "dask":
        pytest.skip("unknown chunk sizes are a Dask layout")
    keep = np.arange(9) % 3 != 1
    y_true, y_pred = loss.problem(0, (9, 4), from_logits=from_logits)
    t_dtype = xp.int64 if loss.target == "labels" else dtype
    mask = _dask_rows_in_chunks(xp, keep, xp.bool, 3)
    t = _dask_rows_in_chunks(xp, y_true, t_dtype, 3)[mask]
    p = _dask_rows_in_chunks(xp, y_pred, dtype, 3)[mask]
    seen_t = seen(t) if t_dtype == dtype else y_true[keep]
    seen_p = seen(p)
    for reduction in ("none", "sum_and_count"):
        got = _sized(loss.call(t, p, from_logits=from_logits, reduction=reduction))
        expected = loss.expected(seen_t, seen_p, from_logits=from_logits, reduction=reduction)
        check(got, expected, xp=xp, dtype=dtype, device=device)
    value, grad = xce.value_and_grad(loss.fn)(t, p, from_logits=from_logits, **loss.hyper)
    mean = loss.expected(seen_t, seen_p, from_logits=from_logits)
    assert_close(value, mean, xp=xp, dtype=dtype, device=device)
    expected_grad = central_difference(
        lambda q: float(loss.expected(seen_t, q, from_logits=from_logits)), seen_p
    )
    assert_close(_sized(grad), expected_grad, xp=xp, dtype=dtype, device=device, atol=1e-6)


@pytest.mark.parametrize("loss", losses(accepting="class_weight"), indirect=True)
def test_dask_unknown_chunk_sizes_with_weights_and_masks(xp, backend, loss, dtype, device):
    # Dask only: sample weights, a where mask and class weights selected by the same boolean
    # index. Before the fix the class weights of the labels were taken through a reshape
    # over the rows, which needs their count.
    if backend != "dask":
        pytest.skip("unknown chunk sizes are a Dask layout")
    keep = np.arange(9) % 3 != 1
    y_true, y_pred = loss.problem(0, (9, 4))
    weight = np.linspace(0.5, 2.0, 9 if loss.classwise else 36).reshape(loss.sample_shape((9, 4)))
    where = np.arange(weight.size).reshape(weight.shape) % 4 != 2
    class_weight = np.array([0.5, 1.0, 1.5, 2.0])
    mask = _dask_rows_in_chunks(xp, keep, xp.bool, 3)

    def lazy(a, a_dtype):
        return _dask_rows_in_chunks(xp, a, a_dtype, 3)[mask]

    t_dtype = xp.int64 if loss.target == "labels" else dtype
    t, p = lazy(y_true, t_dtype), lazy(y_pred, dtype)
    got = loss.call(
        t, p, from_logits=True, class_weight=class_weight,
        sample_weight=lazy(weight, dtype), where=lazy(where, xp.bool),
    )  # fmt: skip
    expected = loss.expected(
        y_true[keep], seen(p), from_logits=True, class_weight=class_weight,
        sample_weight=weight[keep], where=where[keep],
    )  # fmt: skip
    assert_close(got, expected, xp=xp, dtype=dtype, device=device)


def test_jax_sparse_forward_holds_no_temporary_the_size_of_the_logits(backend):
    # JAX only: XLA's own account of the compiled program (nothing runs). Before the fix the
    # label's logit was gathered from the shifted logits x - m, which XLA cannot fuse into
    # the gather: it held x - m, a temporary as large as the logits.
    if backend != "jax":
        pytest.skip("XLA's memory analysis is JAX's")
    import jax

    n, c = 256, 4096
    x = jax.ShapeDtypeStruct((n, c), np.float32)
    y = jax.ShapeDtypeStruct((n,), np.int32)
    logits_bytes = n * c * 4
    for reduction in ("mean", "none"):

        def forward(y, x, reduction=reduction):
            return xce.sparse_categorical_cross_entropy(y, x, from_logits=True, reduction=reduction)

        memory = jax.jit(forward).lower(y, x).compile().memory_analysis()
        if memory is None:
            pytest.skip("this XLA backend gives no memory analysis")
        ratio = memory.temp_size_in_bytes / logits_bytes
        assert ratio < 0.25, f"{reduction}: temporaries of {ratio:.2f}x the logits"


def test_dask_sparse_forward_holds_no_chunk_sized_intermediate(xp, backend, dtype, device):
    # Dask only: every task's output is measured while the graph computes. Before the fix the
    # label's logit was taken from the flattened shifted logits: a task per chunk held the
    # chunk's x - m. Now the selection is fused into the row reductions, chunk by chunk.
    if backend != "dask":
        pytest.skip("a Dask graph's task outputs")
    from dask.callbacks import Callback

    rows, c = 64, 256
    rng = np.random.default_rng(0)
    x_np = rng.normal(size=(8 * rows, c))
    y_np = rng.integers(0, c, size=8 * rows)
    # Persisted: the chunks of the inputs are data in the graph, not tasks that make them.
    x = _dask_rows_in_chunks(xp, x_np, dtype, rows).persist(scheduler="sync")
    y = _dask_rows_in_chunks(xp, y_np, xp.int64, rows).persist(scheduler="sync")
    sizes = []

    class TaskOutputs(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            sizes.append(getattr(result, "nbytes", 0))

    loss = xce.sparse_categorical_cross_entropy(y, x, from_logits=True)
    with TaskOutputs():
        loss.compute(scheduler="sync")
    chunk_bytes = rows * c * x.dtype.itemsize
    assert max(sizes) < 0.25 * chunk_bytes, f"a task returned {max(sizes)} bytes"
    expected = ref.sparse_categorical_cross_entropy(y_np, seen(x), from_logits=True)
    assert_close(loss, expected, xp=xp, dtype=dtype, device=device)
