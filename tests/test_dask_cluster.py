"""The Dask backend on a ``dask.distributed`` cluster: the loss and the gradient of logits
larger than a worker's memory limit, streamed block by block.

Two worker processes (one thread each, on 127.0.0.1, spilling to disk switched off) get a
memory limit below the size of the lazily generated (N, C) float64 inputs; ``xce.value_and_grad``
builds the graph, the workers compute the loss and write the gradient into a memmap on disk
block by block (``da.store``), and the numbers equal the float64 NumPy oracle, computed block
by block in this process from the same seeds. With spilling off, a graph that needed the
logits in one task (or kept many blocks alive) would pause its worker at 80 % of the limit
(a non-streaming graph, the same logits rechunked into one block, does) and have it killed
at 95 %: the tests check that each worker's peak memory stayed under the pause threshold and
that no worker was removed or restarted.

Only the dask session runs it (it starts worker processes); the other backends skip it.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest
import reference_softcap
from dask_disk import MemmapTarget, peak_rss

import xce

# A worker takes about 60 MiB idle and 110 MiB once NumPy, Dask and xce have run; a task on
# a block of 512 × 4096 float64 (16 MiB) peaks about 190 MiB above that, under the pause
# threshold (80 % of 400 MiB). So a worker has room for about 210 MiB of data, both together
# for 420 MiB: less than the sparse case's 512 MiB of logits, and less than the categorical
# case's 256 MiB of logits plus 256 MiB of soft targets (each more than one worker's room).
N, C, ROWS = 16 * 1024, 4 * 1024, 512
WORKER_MEMORY = 400 * 2**20
PAUSE = 0.8  # distributed.worker.memory.pause (the default), set explicitly below
TIMEOUT = 60  # seconds, on the client: a paused worker fails the test instead of hanging CI


@pytest.fixture(scope="module")
def client(backend):
    if backend != "dask":
        pytest.skip(f"{backend}: the dask.distributed cluster test runs in the dask session only")
    import dask

    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        # As for the backends (conftest.py): missing is a failure where the run asked for Dask.
        if "dask" in os.environ.get("XCE_BACKENDS", "").replace(" ", "").split(","):
            raise
        pytest.skip(f"dask: distributed is not installed ({exc})")

    # No spilling: a worker over its limit pauses, and is killed at "terminate".
    memory = {"target": False, "spill": False, "pause": PAUSE, "terminate": 0.95}
    settings = {f"distributed.worker.memory.{key}": value for key, value in memory.items()}
    with contextlib.ExitStack() as stack:
        stack.enter_context(dask.config.set(settings))
        cluster = stack.enter_context(
            LocalCluster(
                processes=True, n_workers=2, threads_per_worker=1, memory_limit=WORKER_MEMORY,
                host="127.0.0.1", dashboard_address=None,
                # Without a dashboard the scheduler still serves HTTP (health, metrics): on a
                # free port of 127.0.0.1, not on 8787, which a second run may hold.
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            )
        )  # fmt: skip
        yield stack.enter_context(Client(cluster, timeout=TIMEOUT))


@pytest.fixture
def grad_file(tmp_path):
    """Where the workers write the gradient; removed after the test (hundreds of MiB)."""
    path = tmp_path / "grad.f64"
    yield path
    path.unlink(missing_ok=True)


def _compute(client, loss, grad, path):
    """The loss, computed, and the gradient, written by the workers into a memmap at ``path``
    in the same graph; then the checks that the workers streamed."""
    from distributed import wait

    target = MemmapTarget.create(str(path), grad.shape)
    workers = set(client.scheduler_info()["workers"])
    futures = client.compute([loss, grad.store(target, lock=False, compute=False)])
    wait(futures, timeout=TIMEOUT)
    value = futures[0].result()
    assert set(client.scheduler_info()["workers"]) == workers  # none restarted
    removed = [e for _, e in client.get_events("all") if "remove" in str(e.get("action", ""))]
    assert not removed, removed
    peaks = client.run(peak_rss)
    assert max(peaks.values()) < PAUSE * WORKER_MEMORY, peaks
    return value, target.open()


def _compare_blocks(got, arrays, oracle, scale=1.0):
    """Check ``got`` (the memmapped gradient) against ``scale * oracle(*blocks)["grad"]``, one
    block of rows at a time (regenerated here from the seeds); return the summed (total,
    count) of the oracle's "sum_and_count"."""
    total = count = 0.0
    for i in range(arrays[0].numblocks[0]):
        ref = oracle(*(a.blocks[i].compute(scheduler="synchronous") for a in arrays))
        total, count = total + ref["loss"][0], count + ref["loss"][1]
        expected = scale * ref["grad"]
        rows = slice(i * ROWS, (i + 1) * ROWS)
        # Entries near a cancellation (p·Σwq ≈ wq) get an absolute tolerance.
        atol = 1e-13 * np.max(np.abs(expected))
        np.testing.assert_allclose(got[rows], expected, rtol=1e-11, atol=atol)
    return total, count


def test_sparse_mean_with_class_weights_and_ignore_index(client, grad_file):
    import dask.array as da

    x = da.random.default_rng(19).normal(scale=2.0, size=(N, C), chunks=(ROWS, C))
    labels = da.random.default_rng(20).integers(0, C, size=(N,), chunks=ROWS)
    labels = da.where(da.arange(N, chunks=ROWS) % 7 == 0, -100, labels)
    class_weight = np.random.default_rng(21).uniform(0.5, 2.0, size=C)
    loss, grad = xce.value_and_grad(xce.sparse_categorical_cross_entropy)(
        labels, x, from_logits=True, ignore_index=-100, class_weight=class_weight
    )
    assert x.nbytes > WORKER_MEMORY
    value, got = _compute(client, loss, grad, grad_file)

    # The mean's denominator Σ ω over the kept rows, which scales every block's gradient.
    kept = labels.compute(scheduler="synchronous")
    count = np.sum(class_weight[kept[kept != -100]])

    def oracle(x_block, label_block):
        return reference_softcap.sparse(
            label_block, x_block, ignore_index=-100, class_weight=class_weight,
            reduction="sum_and_count",
        )  # fmt: skip

    total, oracle_count = _compare_blocks(got, (x, labels), oracle, scale=1 / count)
    np.testing.assert_allclose(oracle_count, count, rtol=1e-13)
    np.testing.assert_allclose(float(value), total / count, rtol=1e-12)


def test_categorical_sum_and_count_with_smoothing_and_sample_weights(client, grad_file):
    import dask.array as da

    n = N // 2
    x = da.random.default_rng(22).normal(scale=2.0, size=(n, C), chunks=(ROWS, C))
    u = da.random.default_rng(23).uniform(0.0, 1.0, size=(n, C), chunks=(ROWS, C))
    y = u / da.sum(u, axis=1, keepdims=True)
    s = da.random.default_rng(24).uniform(0.0, 2.0, size=(n,), chunks=ROWS)
    (total, count), grad = xce.value_and_grad(xce.categorical_cross_entropy)(
        y, x, from_logits=True, label_smoothing=0.1, sample_weight=s, reduction="sum_and_count"
    )
    assert x.nbytes + y.nbytes > WORKER_MEMORY
    value, got = _compute(client, da.stack([total, count]), grad, grad_file)

    def oracle(x_block, y_block, s_block):
        return reference_softcap.categorical(
            y_block, x_block, sample_weight=s_block, label_smoothing=0.1,
            reduction="sum_and_count",
        )  # fmt: skip

    np.testing.assert_allclose(value, _compare_blocks(got, (x, y, s), oracle), rtol=1e-12)
