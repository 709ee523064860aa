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
import reference as ref

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
