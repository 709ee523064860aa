"""The soft-target and binary kernels' arithmetic at the edges its shortcuts must hold.

The NumPy binary kernel forms log1p(e^-|x|) from a vectorised log as log u + (t - (u - 1))/u
(t = e^-|x|, u = 1 + t) and σ(x) as max(t, [x > 0]) / u; the soft-target kernel takes the
targets' row sums from its own check as the loss's target mass. Here every magnitude of t,
from 1 down to far below the dtype's resolution, both signs of x and x = 0 exactly, rows that
sum to 1 only within the tolerance, and rows of no target mass, are held to the float64 oracle
on every backend; a plain log(1 + t) would miss it by a factor of up to 1/t. The block size
is cut so the NumPy kernels run these inputs in several blocks on every thread, large enough
that the binary kernel takes the vectorised log (a small call's block takes log1p).
"""

from __future__ import annotations

import numpy as np
import pytest

import xce
from tests import reference
from tests.helpers import assert_close
from xce._fast import _config


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(_config, "SMALL_BLOCK_BYTES", 16 * 1024)
    monkeypatch.setattr(_config, "PARALLEL_MIN_ELEMENTS", 1 << 10)
    monkeypatch.setattr(_config, "ROW_BLOCK_BYTES", 4 * 1024)
    monkeypatch.setattr(_config, "TORCH_ELEMENTWISE_CHUNK_BYTES", 4 * 1024)


def _rtol(xp, dtype):
    return 2e-6 if dtype == xp.float32 else 1e-13


def _magnitudes():
    """Logits of every magnitude, both signs, 0 exactly, and targets 0, 1 and between."""
    size = np.geomspace(1e-6, 80.0, 97)  # e^-80: float32 still normal
    x = np.concatenate([size, -size, [0.0, 0.5, -0.5]])
    x = x.astype(np.float32).astype(np.float64)  # float32-exact: the oracle sees the same
    y = np.tile([[1.0], [0.0], [0.25]], (8, x.size))  # blocks of 2048-4096 entries and less
    return np.broadcast_to(x, y.shape).copy(), y


@pytest.mark.parametrize("pos_weight", [None, 3.0], ids=["plain", "pos_weight"])
def test_binary_loss_and_gradient_at_every_magnitude(xp, make, dtype, device, pos_weight):
    x, y = _magnitudes()
    options = {"from_logits": True, "pos_weight": pos_weight}
    rtol = _rtol(xp, dtype)
    got = xce.binary_cross_entropy(make(y), make(x), reduction="none", **options)
    expected = reference.binary_cross_entropy(y, x, reduction="none", **options)
    # relative to each entry, down to e^-80 ≈ 1.8e-35 (x = 80, y = 1)
    assert_close(got, expected, xp=xp, dtype=dtype, device=device, rtol=rtol, atol=1e-300)
    total, grad = xce.value_and_grad(xce.binary_cross_entropy)(
        make(y), make(x), reduction="sum", **options
    )
    assert_close(total, expected.sum(), xp=xp, dtype=dtype, device=device, rtol=rtol)
    a = 1.0 if pos_weight is None else pos_weight
    expected_grad = (1 - y + a * y) * reference.sigmoid(x) - a * y
    # (1-y+a·y)·σ(x) - a·y is a difference of numbers up to 3: a few ulp of 3 absolute
    eps = float(xp.finfo(dtype).eps)
    assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device, rtol=rtol, atol=16 * eps)


def test_soft_targets_within_the_row_sum_tolerance(xp, make, dtype, device):
    """Rows that sum to 1 within the shared tolerance (not exactly) and rows of no target
    mass: the loss weighs each row by its own target mass, and so does the gradient."""
    rng = np.random.default_rng(20)
    x = rng.normal(scale=3.0, size=(96, 67)).astype(np.float32).astype(np.float64)
    y = reference.softmax(rng.normal(size=x.shape))
    y[::4] *= 1 + 5e-5  # inside the tolerance (1e-4), either side of 1
    y[1::4] *= 1 - 5e-5
    y[2] = 0.0  # no target: loss 0, gradient 0
    y = y.astype(np.float32).astype(np.float64)
    rtol = _rtol(xp, dtype)
    got = xce.categorical_cross_entropy(make(y), make(x), from_logits=True, reduction="none")
    expected = reference.categorical_cross_entropy(y, x, from_logits=True, reduction="none")
    assert_close(got, expected, xp=xp, dtype=dtype, device=device,
                 rtol=10 * rtol, atol=1e-12)  # fmt: skip
    _, grad = xce.value_and_grad(xce.categorical_cross_entropy)(
        make(y), make(x), from_logits=True, reduction="sum"
    )
    expected_grad = y.sum(1, keepdims=True) * reference.softmax(x) - y
    assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device,
                 rtol=1e-5 if dtype == xp.float32 else 1e-12,
                 atol=1e-7 if dtype == xp.float32 else 1e-15)  # fmt: skip
