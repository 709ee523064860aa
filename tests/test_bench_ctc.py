"""The CTC benchmark (``python -m xce._bench.ctc``) at a tiny size: what it times is right,
and its table and accuracy line come out."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from xce._bench import ctc as bench

SIZE = (2, 6, 4, 2)


def _reference_sum(logits, labels):
    from tests.reference_ctc import forward_nll

    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    n, t, _ = logits.shape
    return forward_nll(log_probs, labels, [t] * n, [labels.shape[1]] * n, 0).sum()


def test_every_timed_call_computes_the_summed_loss():
    logits, labels = bench._data(*SIZE)
    expected = _reference_sum(logits, labels)
    calls = bench._calls(SIZE, bench.IMPLEMENTATIONS)
    assert ("xce-numpy", "forward") in calls
    for (name, mode), fn in calls.items():
        out = fn()
        value = out[0] if isinstance(out, tuple) else out  # (loss, grad) pairs
        if hasattr(value, "detach"):
            value = value.detach()
        np.testing.assert_allclose(float(value), expected, rtol=1e-4, err_msg=f"{name} {mode}")


def test_main_prints_the_table(capsys, tmp_path):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed: no reference times or accuracy check")
    out_file = tmp_path / "ctc.md"
    size = ",".join(str(v) for v in SIZE)
    argv = ["--size", size, "--impl", "xce-numpy", "--impl", "torch", "--min-time", "0.01",
            "--output", str(out_file)]  # fmt: skip
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| 2 | 6 | 4 | 2 | forward+gradient | xce-numpy |" in printed
    assert "Relative difference to torch float64" in printed
    assert out_file.read_text(encoding="utf-8").strip() == printed.strip()
