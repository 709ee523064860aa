"""The main job: ``python -m xce info`` and ``demo`` run and report agreement across backends."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import xce
from tests import reference
from xce._cli import main


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "xce", *args], capture_output=True, text=True, timeout=600
    )


def test_info_lists_backends_and_versions():
    done = _run("info")
    assert done.returncode == 0, done.stderr
    assert f"xce {xce.__version__}" in done.stdout
    assert "array-api-compat" in done.stdout
    numpy_line = next(line for line in done.stdout.splitlines() if line.startswith("numpy "))
    assert np.__version__ in numpy_line


def test_demo_agrees_with_an_independent_reference(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "agree" in out and "DISAGREE" not in out
    # The demo's first row is the sparse CE on its fixed problem: check the number it prints
    # against the float64 reference, not against xce.
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(8, 5))
    labels = rng.integers(0, 5, size=8)
    expected = reference.sparse_categorical_cross_entropy(labels, logits, from_logits=True)
    row = next(line for line in out.splitlines() if line.startswith("sparse CE, logits"))
    assert float(row.split()[3]) == np.round(expected, 10)


def test_demo_reports_disagreement_with_a_nonzero_exit(capsys):
    # A negative tolerance cannot be met: the command must say so and fail.
    assert main(["demo", "--tolerance", "-1"]) == 1
    assert "DISAGREE" in capsys.readouterr().out
