"""The NumPy examples of README.md and the documentation pages (docs/) run, and the
accumulation recipe's claim holds: the pages are not doctested by Sphinx, so this keeps their
code in step with the library."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

import xce

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
# Blocks that import only NumPy and xce run here; the others need a framework or a GPU.
IMPORT = re.compile(r"^(?:import|from) (\w+)", re.M)


def _numpy_blocks():
    for page in PAGES:
        if "_build" in page.parts:
            continue
        for number, code in enumerate(BLOCK.findall(page.read_text(encoding="utf-8"))):
            modules = set(IMPORT.findall(code))
            if modules and modules <= {"numpy", "xce"}:
                yield pytest.param(code, id=f"{page.relative_to(ROOT)}:{number}")


NUMPY_BLOCKS = list(_numpy_blocks())


def test_pages_have_numpy_examples():
    # README, getting started, from_logits, reductions, bad input, autodiff, recipes, index.
    assert len(NUMPY_BLOCKS) >= 8


@pytest.mark.parametrize("code", NUMPY_BLOCKS)
def test_numpy_example_runs(code, capsys):
    exec(compile(code, "<docs>", "exec"), {})


def _block_defining(name: str) -> str:
    for param in NUMPY_BLOCKS:
        if re.search(rf"^{name} = ", param.values[0], re.M):
            return param.values[0]
    raise AssertionError(f"no example defines {name}")


def test_accumulated_mean_equals_the_mean_over_every_row():
    namespace: dict = {}
    exec(_block_defining("mean"), namespace)
    labels = np.concatenate([labels for labels, _ in namespace["batches"]])
    logits = np.concatenate([logits for _, logits in namespace["batches"]])
    rows = logits - logits.max(axis=1, keepdims=True)
    log_p = rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))
    expected = -log_p[np.arange(len(labels)), labels].mean()
    np.testing.assert_allclose(float(namespace["mean"]), expected, rtol=1e-12)
    assert float(namespace["mean"]) == pytest.approx(
        float(xce.sparse_categorical_cross_entropy(labels, logits, from_logits=True)), rel=1e-12
    )
