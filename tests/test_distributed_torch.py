"""Class-sharded (vocab-parallel) losses over ``torch.distributed``: gloo process groups of 2
and 4 ranks on 127.0.0.1, forked from one process that imported torch and xce (both groups
at once, so their ranks share the startup); every rank runs all the cases of
``distributed_torch_cases.py`` (sparse, categorical and linear cross entropy, every option and
reduction, float32 and float64, bfloat16, even and uneven shards) against one process's
unsharded call and the NumPy oracles, counts the collectives of typical calls and records what
bad input raises. Torch only (gloo runs on the CPU).
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

TESTS = pathlib.Path(__file__).parent
WORLDS = (2, 4)
TIMEOUT = 100  # seconds; each rank's process group gives up on a collective after 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def reports(backend, tmp_path_factory):
    """{world size: [each rank's report]}, from both groups run at once."""
    if backend != "torch":
        pytest.skip(f"{backend}: torch.distributed's gloo groups are tested on the torch backend")
    folder = tmp_path_factory.mktemp("distributed_torch")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    groups = [f"{world}={_free_port()}" for world in WORLDS]
    argv = [sys.executable, str(TESTS / "distributed_torch_worker.py"), str(folder), *groups]
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the groups did not finish in {TIMEOUT} s (a hang?)")
    log = (done.stdout + done.stderr)[-4000:]
    assert done.returncode == 0, f"{done.returncode} rank(s) failed:\n{log}"
    return {
        world: [json.loads((folder / f"{world}-{rank}.json").read_text()) for rank in range(world)]
        for world in WORLDS
    }


@pytest.mark.parametrize("world", WORLDS)
def test_sharded_losses_equal_the_unsharded_ones(reports, world):
    ranks = reports[world]
    assert [r["rank"] for r in ranks] == list(range(world))
    failures = [failure for r in ranks for failure in r["failures"]]
    assert not failures, f"{len(failures)} failed:\n" + "\n".join(failures[:10])
    assert {(r["cases"], r["planned"]) for r in ranks} == {(ranks[0]["planned"],) * 2}
    assert ranks[0]["planned"] > {2: 400, 4: 100}[world]


FORWARDS = ("forward", "forward, class weights", "value_and_grad", "categorical forward",
            "linear forward", "linear forward, autograd")  # fmt: skip


def _size(shape):
    size = 1
    for n in shape:
        size *= n
    return size


@pytest.mark.parametrize("world", WORLDS)
def test_collectives_per_call(reports, world):
    """What a call communicates (N = 4 rows, 16 classes per rank, so N·C = 64·world), as
    measured (shapes, all float32 like the logits):

    * sparse, forward: two all-reduces, (4, 1) MAX of the row maxima and (4, 2) SUM of the
      stacked partial sums; with class weights one more, (4,), the labels' weights ω;
    * value_and_grad: the same as the forward (the gradient needs no more);
    * soft targets: (4, 2) SUM of the row checks' sums, then the two of the kernel;
    * linear cross entropy: the kernel's two per chunk of rows, and under autograd one
      all-reduce of d_hidden, (N, D), in the forward;
    * autograd's backward: none (the forward made the gradient);
    * an explicit ``start``: one all-gather of (start, C_r) on the shard's first call, to
      check that the shards tile the classes.
    """
    rows, classes, d_model = 4, 16 * world, 3
    for r in reports[world]:
        calls = r["collectives"]
        for name in FORWARDS:
            kinds = {c[0] for c in calls[name]}
            assert kinds == {"all_reduce"}, (name, calls[name])
            per_row = [c for c in calls[name] if tuple(c[1]) != (rows, d_model)]
            assert 2 <= len(per_row) <= 3, (name, calls[name])
            for _, shape, dtype in calls[name]:
                assert _size(shape) <= 8 * rows < rows * classes, (name, shape)
                assert dtype == "torch.float32", (name, dtype)
        assert len(calls["forward"]) == 2
        assert len(calls["linear forward"]) == 2
        assert [tuple(c[1]) for c in calls["linear forward, autograd"]][-1] == (rows, d_model)
        assert calls["autograd backward"] == calls["linear autograd backward"] == []
        assert [c[0] for c in calls["explicit start, first call"]].count("all_gather") == 1
        assert calls["explicit start, second call"] == calls["forward"]


@pytest.mark.parametrize("world", WORLDS)
def test_bad_input_raises_on_every_rank(reports, world):
    expected = {
        "label": "ValueError",
        "from_logits=False": "ValueError",
        "overlapping starts": "ValueError: the class shards do not tile",
        "shards short of num_classes": "ValueError",
        "soft targets off by 30%": "ValueError: rows of y_true must sum to 1",
    }
    for r in reports[world]:
        errors = r["errors"]
        assert len(errors) == 6, errors
        for name, message in errors.items():
            key = "label" if name.startswith("label") else name
            assert message.startswith(expected[key]), (r["rank"], name, message)
