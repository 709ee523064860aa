"""Problems large enough to cross the fast paths' block and thread boundaries.

The rest of the suite uses tiny arrays, which a blocked, threaded kernel handles in one block on
one thread. Here (257, 1031) logits (265 k values) with the block size cut to 64 KiB take the
NumPy path through many row blocks on every core, with a ragged last block (and the sparse
kernel's per-row terms through chunks of 50 rows), CPU torch through
its row chunks, and the generic path through its row blocks on the other eager backends. Some
rows sit far from 0 and one label logit far below its row, so the NumPy kernel exponentiates
some blocks as they are and shifts others by each row's max. Calls without options take the
native plain-call lanes. Run with ``XCE_DISABLE_FAST_PATHS=1`` too (nox does): both paths
must match the same oracle.
"""

from __future__ import annotations

import ctypes
import sys

import numpy as np
import pytest

import xce
import xce._fast._numpy as numpy_fast
from tests import reference
from tests.helpers import assert_close
from xce._fast import _config
from xce._fast._numpy import _threads as numpy_threads

try:  # the torch fast path imports torch, which only the torch sessions install
    import xce._fast._torch as torch_fast
    from xce._fast._torch import _chunks as torch_chunks
except ModuleNotFoundError:
    torch_fast = torch_chunks = None

N_ROWS, N_CLASSES = 257, 1031


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(_config, "BLOCK_BYTES", 64 * 1024)
    monkeypatch.setattr(_config, "GRAD_BLOCK_BYTES", 64 * 1024)
    monkeypatch.setattr(_config, "FINISH_ROWS", 50)  # per-row terms in 6 chunks
    monkeypatch.setattr(_config, "PARALLEL_MIN_ELEMENTS", 1 << 14)
    monkeypatch.setattr(_config, "ROW_BLOCK_BYTES", 64 * 1024)
    monkeypatch.setattr(_config, "TORCH_CHUNK_BYTES", 64 * 1024)


@pytest.fixture
def problem():
    rng = np.random.default_rng(1234)
    logits = rng.normal(scale=4.0, size=(N_ROWS, N_CLASSES))
    logits[17] += 1000.0  # row maxima outside [-20, 64]: the NumPy kernel shifts these rows
    logits[18] -= 200.0
    logits[100:104] += 70.0
    # float32-exact values, so the float32 inputs are the float64 oracle's inputs
    logits = logits.astype(np.float32).astype(np.float64)
    logits[5, 7:900] = -np.inf  # masked classes inside a block
    labels = rng.integers(0, N_CLASSES, size=N_ROWS)
    labels[5] = 3
    logits[30, labels[30]] = -75.0  # a label logit far below its block's largest
    return logits, labels, rng.uniform(0.5, 2.0, size=N_CLASSES)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "class_weight"])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_large_sparse_loss_matches_reference(
    xp, make, dtype, device, problem, smoothing, weighted, reduction
):
    logits, labels, weights = problem
    if smoothing:  # smoothing puts mass on masked classes (+inf loss): keep them finite here
        logits = np.where(np.isinf(logits), -30.0, logits)
    x = make(logits)
    options = {"from_logits": True, "label_smoothing": smoothing, "reduction": reduction}
    ref_options = dict(options)
    if weighted:
        options["class_weight"] = make(weights)
        ref_options["class_weight"] = weights
    got = xce.sparse_categorical_cross_entropy(make(labels, "int64"), x, **options)
    expected = reference.sparse_categorical_cross_entropy(labels, logits, **ref_options)
    assert_close(got, expected, xp=xp, dtype=dtype, device=device, rtol=1e-5 if
                 dtype == xp.float32 else 1e-11)  # fmt: skip


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("sample_weighted", [False, True], ids=["", "sample_weight"])
def test_large_sparse_gradient_is_scaled_softmax_minus_target(
    xp, make, dtype, device, problem, smoothing, sample_weighted
):
    logits, labels, weights = problem
    logits = np.where(np.isinf(logits), -30.0, logits) if smoothing else logits
    sample_weight = np.linspace(0.0, 2.0, N_ROWS) if sample_weighted else np.ones(N_ROWS)
    options = {"sample_weight": make(sample_weight)} if sample_weighted else {}
    grad_fn = xce.value_and_grad(xce.sparse_categorical_cross_entropy)
    loss, grad = grad_fn(
        make(labels, "int64"), make(logits), from_logits=True, class_weight=make(weights),
        label_smoothing=smoothing, **options,
    )  # fmt: skip
    # Oracle: sᵢ·((Σ_c w_c q_c)·softmax - w ⊙ q) per row, divided by Σ sᵢ·w[yᵢ] (the mean).
    q = np.full((N_ROWS, N_CLASSES), smoothing / N_CLASSES)
    q[np.arange(N_ROWS), labels] += 1 - smoothing
    wq = weights * q
    expected = wq.sum(1, keepdims=True) * reference.softmax(logits) - wq
    expected *= sample_weight[:, None] / (sample_weight * weights[labels]).sum()
    expected_loss = reference.sparse_categorical_cross_entropy(
        labels, logits, from_logits=True, class_weight=weights, label_smoothing=smoothing,
        sample_weight=sample_weight,
    )  # fmt: skip
    assert_close(loss, expected_loss, xp=xp, dtype=dtype, device=device,
                 rtol=1e-5 if dtype == xp.float32 else 1e-11)  # fmt: skip
    assert_close(grad, expected, xp=xp, dtype=dtype, device=device,
                 rtol=1e-4 if dtype == xp.float32 else 1e-10, atol=1e-9)  # fmt: skip


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_large_plain_sparse_value_and_grad(xp, make, dtype, device, problem, reduction):
    logits, labels, _ = problem
    loss, grad = xce.value_and_grad(xce.sparse_categorical_cross_entropy)(
        make(labels, "int64"), make(logits), from_logits=True, reduction=reduction
    )
    expected = reference.sparse_categorical_cross_entropy(
        labels, logits, from_logits=True, reduction=reduction
    )
    assert_close(loss, expected, xp=xp, dtype=dtype, device=device,
                 rtol=1e-5 if dtype == xp.float32 else 1e-11)  # fmt: skip
    onehot = np.eye(N_CLASSES)[labels]
    expected_grad = reference.softmax(logits) - onehot
    if reduction == "mean":
        expected_grad /= N_ROWS
    assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device,
                 rtol=1e-4 if dtype == xp.float32 else 1e-10, atol=1e-9)  # fmt: skip


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_large_soft_targets_and_gradient(xp, make, dtype, device, problem, from_logits):
    """Soft targets go through the generic kernels in row blocks on eager backends."""
    logits, _, weights = problem
    logits = np.maximum(logits, -30.0)  # no masked class, no probability under the clip
    targets = reference.softmax(np.roll(logits, 3, axis=1) / 2)
    # Probabilities well above float32's clip (eps = 1.2e-7), so no entry is clipped.
    y_pred = logits if from_logits else reference.softmax(logits / 8)
    options = {"from_logits": from_logits, "label_smoothing": 0.05}
    loss, grad = xce.value_and_grad(xce.categorical_cross_entropy)(
        make(targets), make(y_pred), class_weight=make(weights), reduction="sum", **options
    )
    expected = reference.categorical_cross_entropy(
        targets, y_pred, class_weight=weights, reduction="sum", **options
    )
    assert_close(loss, expected, xp=xp, dtype=dtype, device=device,
                 rtol=1e-5 if dtype == xp.float32 else 1e-11)  # fmt: skip
    q = 0.95 * targets + 0.05 / N_CLASSES
    if from_logits:
        wq = weights * q
        expected_grad = wq.sum(1, keepdims=True) * reference.softmax(logits) - wq
    else:
        expected_grad = -weights * q / y_pred
    # An entry where Σwq·softmax ≈ w·q (both ~0.01) is a difference of two float32-rounded
    # terms: its absolute error is a few ulp of 0.01, ~2e-9, whatever the summation order.
    assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device,
                 rtol=1e-4 if dtype == xp.float32 else 1e-10,
                 atol=1e-8 if dtype == xp.float32 else 1e-9)  # fmt: skip


def test_large_binary_with_weights(xp, make, dtype, device, problem):
    logits, _, weights = problem
    logits = np.where(np.isinf(logits), -30.0, logits)
    targets = (logits > 0.3).astype(np.float64)
    sample_weight = np.linspace(0.5, 1.5, N_ROWS)
    loss, grad = xce.value_and_grad(xce.binary_cross_entropy)(
        make(targets), make(logits), from_logits=True, pos_weight=make(weights),
        sample_weight=make(sample_weight),
    )  # fmt: skip
    expected = reference.binary_cross_entropy(
        targets, logits, from_logits=True, pos_weight=weights, sample_weight=sample_weight
    )
    assert_close(loss, expected, xp=xp, dtype=dtype, device=device,
                 rtol=1e-5 if dtype == xp.float32 else 1e-11)  # fmt: skip
    # ∂/∂x of s·[(1-y)·softplus(x) + a·y·softplus(-x)] / Σ s = s·((1-y+a·y)·σ(x) - a·y) / Σ s
    s = np.broadcast_to(sample_weight[:, None], logits.shape)
    expected_grad = s * ((1 - targets + weights * targets) * reference.sigmoid(logits)
                         - weights * targets) / s.sum()  # fmt: skip
    assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device,
                 rtol=1e-4 if dtype == xp.float32 else 1e-10, atol=1e-10)  # fmt: skip


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("pos_weight", [None, 2.5], ids=["no_pos_weight", "pos_weight"])
def test_large_binary_extremes_per_element(xp, make, dtype, device, problem, smoothing, pos_weight):
    """Infinite logits send their blocks to the generic kernel; confident entries keep their
    tiny losses (x = ±1000 and 30 here), which a cancelling formula would round to 0."""
    logits, _, _ = problem
    targets = (logits > 0.3).astype(np.float64)
    logits[40, :3] = [np.inf, -np.inf, 30.0]  # y = 1, 0, 1: loss 0, 0, 9.4e-14 unsmoothed
    targets[40, :3] = [1.0, 0.0, 1.0]
    logits[41, :2] = [np.inf, -np.inf]  # y = 0, 1: infinite losses
    targets[41, :2] = [0.0, 1.0]
    options = {"from_logits": True, "label_smoothing": smoothing, "pos_weight": pos_weight}
    got = xce.binary_cross_entropy(make(targets), make(logits), reduction="none", **options)
    expected = reference.binary_cross_entropy(targets, logits, reduction="none", **options)
    assert_close(got, expected, xp=xp, dtype=dtype, device=device,
                 rtol=1e-5 if dtype == xp.float32 else 1e-12)  # fmt: skip
    _, grad = xce.value_and_grad(xce.binary_cross_entropy)(
        make(targets), make(logits), reduction="sum", **options
    )
    q = (1 - smoothing) * targets + smoothing / 2
    a = 1.0 if pos_weight is None else pos_weight
    expected_grad = (1 - q + a * q) * reference.sigmoid(logits) - a * q
    # σ(x) - q for a confident entry is a difference of numbers near 1: a few ulp of 1 absolute
    assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device,
                 rtol=1e-5 if dtype == xp.float32 else 1e-12,
                 atol=1e-6 if dtype == xp.float32 else 1e-14)  # fmt: skip


def test_large_soft_targets_with_masked_classes(xp, make, dtype, device, problem):
    """Row 5 has -inf logits (masked classes) without target mass, which the fast kernels
    hand to the generic one (0·log 0 = 0); row 6 puts mass on a -inf logit: +inf."""
    logits, _, weights = problem
    targets = reference.softmax(np.roll(np.maximum(logits, -30.0), 3, axis=1) / 2)
    targets[5, 7:900] = 0.0
    targets[5] /= targets[5].sum()
    logits[6, 10] = -np.inf
    options = {"from_logits": True, "class_weight": weights}
    got = xce.categorical_cross_entropy(
        make(targets), make(logits), reduction="none", from_logits=True,
        class_weight=make(weights),
    )  # fmt: skip
    expected = reference.categorical_cross_entropy(targets, logits, reduction="none", **options)
    assert_close(got, expected, xp=xp, dtype=dtype, device=device,
                 rtol=1e-5 if dtype == xp.float32 else 1e-11)  # fmt: skip
    _, grad = xce.value_and_grad(xce.categorical_cross_entropy)(
        make(targets), make(logits), reduction="sum", from_logits=True,
        class_weight=make(weights),
    )  # fmt: skip
    wq = weights * targets
    expected_grad = wq.sum(1, keepdims=True) * reference.softmax(logits) - wq
    assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device,
                 rtol=1e-4 if dtype == xp.float32 else 1e-10,
                 atol=1e-8 if dtype == xp.float32 else 1e-9)  # fmt: skip


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_large_plain_soft_and_binary_value_and_grad(xp, make, dtype, device, problem, reduction):
    """Option-free calls on logits take the native plain lanes on NumPy and CPU torch."""
    logits, _, _ = problem
    logits = np.maximum(logits, -30.0)
    targets = reference.softmax(np.roll(logits, 3, axis=1) / 2)
    loss, grad = xce.value_and_grad(xce.categorical_cross_entropy)(
        make(targets), make(logits), from_logits=True, reduction=reduction
    )
    expected = reference.categorical_cross_entropy(
        targets, logits, from_logits=True, reduction=reduction
    )
    assert_close(loss, expected, xp=xp, dtype=dtype, device=device,
                 rtol=1e-5 if dtype == xp.float32 else 1e-11)  # fmt: skip
    expected_grad = (reference.softmax(logits) - targets) / (N_ROWS if reduction == "mean" else 1)
    assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device,
                 rtol=1e-4 if dtype == xp.float32 else 1e-10,
                 atol=1e-8 if dtype == xp.float32 else 1e-12)  # fmt: skip

    binary_targets = (logits > 0.3).astype(np.float64)
    loss, grad = xce.value_and_grad(xce.binary_cross_entropy)(
        make(binary_targets), make(logits), from_logits=True, reduction=reduction
    )
    expected = reference.binary_cross_entropy(
        binary_targets, logits, from_logits=True, reduction=reduction
    )
    assert_close(loss, expected, xp=xp, dtype=dtype, device=device,
                 rtol=1e-5 if dtype == xp.float32 else 1e-11)  # fmt: skip
    divisor = logits.size if reduction == "mean" else 1
    expected_grad = (reference.sigmoid(logits) - binary_targets) / divisor
    # σ(x) - y for a confident entry: a few ulp of 1, absolute (see the test above)
    assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device,
                 rtol=1e-4 if dtype == xp.float32 else 1e-10,
                 atol=(1e-6 if dtype == xp.float32 else 1e-14) / divisor)  # fmt: skip


@pytest.mark.parametrize("bad_value", [1.5, -0.25, np.nan])
@pytest.mark.parametrize("loss_fn", [xce.categorical_cross_entropy, xce.binary_cross_entropy])
def test_large_targets_outside_unit_interval_raise(xp, make, problem, loss_fn, bad_value):
    """The plain lanes check the targets block by block inside the kernel; one bad value in
    a middle block must still end in the full path's error, not a number. ``validate=True``
    reads the values on every backend (JAX and Dask skip the check by default)."""
    logits, _, _ = problem
    logits = np.maximum(logits, -30.0)
    targets = reference.softmax(logits)
    targets[150, 20] = bad_value
    for fn in (loss_fn, xce.value_and_grad(loss_fn)):
        with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
            fn(make(targets), make(logits), from_logits=True, validate=True)


def test_large_soft_targets_whose_row_does_not_sum_to_one_raise(xp, make, problem):
    """Row totals are checked too (on CPU torch through NumPy): one half-weight row in a
    middle block ends in the full path's error."""
    logits, _, _ = problem
    logits = np.maximum(logits, -30.0)
    targets = reference.softmax(logits)
    targets[150] *= 0.5
    for fn in (xce.categorical_cross_entropy, xce.value_and_grad(xce.categorical_cross_entropy)):
        with pytest.raises(ValueError, match="sum to 1"):
            fn(make(targets), make(logits), from_logits=True, validate=True)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_large_binary_total_with_infinite_logits(xp, make, dtype, device, problem, reduction):
    """A reduced binary loss sums each block as it goes (no array of entries); a block with
    infinite logits is summed from the generic kernel's entries (0 where y matches)."""
    logits, _, _ = problem
    logits = np.where(np.isinf(logits), -30.0, logits)
    targets = (logits > 0.3).astype(np.float64)
    logits[40, :2] = [np.inf, -np.inf]
    targets[40, :2] = [1.0, 0.0]
    expected = reference.binary_cross_entropy(
        targets, logits, from_logits=True, reduction=reduction
    )
    got = xce.binary_cross_entropy(make(targets), make(logits), from_logits=True,
                                   reduction=reduction)  # fmt: skip
    value, _ = xce.value_and_grad(xce.binary_cross_entropy)(
        make(targets), make(logits), from_logits=True, reduction=reduction
    )
    for result in (got, value):
        assert_close(result, expected, xp=xp, dtype=dtype, device=device,
                     rtol=1e-5 if dtype == xp.float32 else 1e-11)  # fmt: skip


def test_numpy_exp_outputs_are_placed_clear_of_their_input(monkeypatch):
    """exp(x, out=o) from memory ran 3.5× slower on the project machine with o 16-128 bytes
    past x modulo 1 MiB (glibc's heap puts one array 16 bytes after another). The NumPy kernel
    places the gradient and the scratch blocks that exp writes from x at least 512 bytes past
    x modulo 4 KiB, or exactly on it. Checked for x at every 16-byte offset in a page (the
    size below which the kernels skip the check is lowered to this test's x)."""
    monkeypatch.setattr(_config, "ALIAS_MIN_BYTES", 0)

    raw = np.empty(64 * 1000 + 1024, dtype=np.float32)
    for offset in range(0, 4096, 16):
        x = raw[offset // 4 : offset // 4 + 64 * 1000].reshape(64, 1000)
        x_address = x.ctypes.data
        out = numpy_threads.empty_clear_of(x)
        scratch = numpy_threads.scratch_for(16, 1000, np.float32, slot=7, clear_of=x_address)
        for buffer in (out, scratch):
            gap = (buffer.ctypes.data - x_address) % 4096
            assert gap == 0 or gap >= 512, (offset, gap)
            assert buffer.flags.c_contiguous and buffer.dtype == x.dtype
        assert out.shape == x.shape and scratch.shape == (16, 1000)


def _never_generic(*args, **kwargs):
    raise AssertionError("finite inputs must not reach the generic kernel")


def test_torch_cpu_kernels_advise_huge_pages_for_what_they_return(monkeypatch):
    """torch's CPU allocator gives no huge-page advice (NumPy gives it from 4 MiB), and a fresh
    (4096, 32000) float32 gradient faulted in 4 KiB at a time made ``value_and_grad`` on torch
    tensors ~1.4× slower. The torch kernels advise it for each full-size array they return
    (gradients; the binary loss's entries), over the array's own memory."""
    torch = pytest.importorskip("torch")
    fast = torch_fast
    advised = []

    def spy(address, size):
        advised.append((address, size))

    monkeypatch.setattr(torch_chunks, "advise_huge_pages", spy)
    monkeypatch.setattr(_config, "HUGE_PAGE_MIN_BYTES", 64 * 1024)  # this test's (257, 1031)
    rng = np.random.default_rng(7)
    x = torch.asarray(rng.normal(size=(N_ROWS, N_CLASSES)), dtype=torch.float32)
    labels = torch.asarray(rng.integers(0, N_CLASSES, size=N_ROWS))
    soft = torch.softmax(torch.asarray(rng.normal(size=(N_ROWS, N_CLASSES))), dim=-1).float()
    bits = (torch.rand(N_ROWS, N_CLASSES) > 0.5).float()

    def memory(t):
        storage = t.untyped_storage()
        return storage.data_ptr(), storage.nbytes()

    _, grad = fast.softmax_ce_labels(x, labels, class_weight=None, smoothing=0.0, with_grad=True)
    assert advised == [memory(grad)]
    _, grad = fast.softmax_ce_soft(x, soft, class_weight=None, smoothing=0.0,
                                   generic=_never_generic, with_grad=True)  # fmt: skip
    assert advised[1:] == [memory(grad)]
    entries, grad = fast.sigmoid_bce(x, bits, pos_weight=None, smoothing=0.0,
                                     generic=_never_generic, with_grad=True)  # fmt: skip
    assert advised[2:] == [memory(entries), memory(grad)]
    assert memory(grad)[1] == N_ROWS * N_CLASSES * 4
    advised.clear()
    fast.softmax_ce_labels(x[:10], labels[:10], class_weight=None, smoothing=0.0, with_grad=True)
    assert advised == []  # 41 KB: below the size that gets the advice


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="madvise and /proc/self/smaps are Linux's")  # fmt: skip
def test_huge_page_advice_reaches_the_kernel():
    """The advice marks the mapping (``hg`` in its VmFlags), over whole pages only."""
    import mmap

    pytest.importorskip("torch")  # the advice is the torch kernels'
    region = mmap.mmap(-1, 8 * mmap.PAGESIZE)  # a mapping of its own, never advised before
    address = ctypes.addressof(ctypes.c_char.from_buffer(region))
    assert "hg" not in _vm_flags(address)
    torch_chunks.advise_huge_pages(address + 100, 5 * mmap.PAGESIZE)
    assert "hg" not in _vm_flags(address)  # the partial first page is left alone
    assert "hg" in _vm_flags(address + mmap.PAGESIZE)
    assert "hg" in _vm_flags(address + 4 * mmap.PAGESIZE)
    assert "hg" not in _vm_flags(address + 5 * mmap.PAGESIZE)  # nor the partial last


def _vm_flags(address):
    """The VmFlags of the mapping holding ``address``, from /proc/self/smaps."""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            first = line.split(" ", 1)[0]
            if "-" in first and ":" not in first:
                start, end = (int(v, 16) for v in first.split("-"))
                inside = start <= address < end
            elif inside and line.startswith("VmFlags:"):
                return line.split()[1:]
    raise AssertionError(f"no mapping holds {address:#x}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 7), (9,)], ids=["2d", "3d", "one-sample"])
def test_numpy_small_sparse_lane_matches_the_blocked_kernel(monkeypatch, dtype, shape):
    """Plain sparse calls on a few KiB of NumPy logits take a short path; it must give what
    the blocked kernel gives, row by row, warning-free (pytest turns warnings into errors),
    including rows with +inf, NaN or only -inf logits, which it hands to the kernel."""
    fast = numpy_fast
    rng = np.random.default_rng(11)
    x = rng.normal(scale=3.0, size=shape).astype(dtype)
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    flat, flat_labels = x.reshape(-1, shape[-1]), labels.reshape(-1)
    flat[0, flat_labels[0]] = -np.inf  # a label on a masked class: +inf
    if flat.shape[0] > 1:
        flat[1, (flat_labels[1] + 1) % shape[-1]] = -np.inf  # a masked class elsewhere
    with_non_finite = x.copy()
    rows = with_non_finite.reshape(-1, shape[-1])
    if rows.shape[0] >= 4:
        rows[2, (flat_labels[2] + 1) % shape[-1]] = np.inf  # +inf off the label: +inf
        rows[3] = -np.inf  # nothing but -inf: NaN
        rows[-1, 0] = np.nan
    small_lane_bytes = _config.SMALL_LANE_BYTES
    assert x.nbytes <= small_lane_bytes
    for logits in (x, with_non_finite):
        results = {}
        for name, limit in (("small", small_lane_bytes), ("kernel", 0)):
            monkeypatch.setattr(_config, "SMALL_LANE_BYTES", limit)
            loss = fast.plain_sparse(labels, logits, reduction="none", with_grad=False)[0]
            total, grad = fast.plain_sparse(labels, logits, reduction="mean", with_grad=True)
            results[name] = (loss, total, grad)
        for small, kernel in zip(results["small"], results["kernel"], strict=True):
            assert small.dtype == kernel.dtype and small.shape == kernel.shape
            np.testing.assert_allclose(small, kernel, rtol=4e-7 if dtype == "float32" else 1e-15,
                                       atol=0, equal_nan=True)  # fmt: skip
    loss = results["small"][0].reshape(-1)
    if loss.size >= 4:
        assert loss[0] == np.inf and loss[2] == np.inf and np.isnan(loss[3])


# The NumPy-backed generic kernels (array-api-strict, Dask) warn on inf - inf while computing
# these values; the values are what this test checks.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")
@pytest.mark.parametrize("plain", [True, False], ids=["plain", "sample_weight"])
def test_large_sparse_with_a_positive_inf_logit(xp, make, dtype, device, problem, plain):
    """Row 40 gets a +inf logit off its label: its loss is +inf and its gradient row r·(onehot
    at the +inf class - onehot at the label), NaN at the +inf class itself, on every backend
    and through every chunk (torch's log-softmax alone would make it all NaN). The other rows
    keep their values."""
    logits, labels, _ = problem
    logits = logits.copy()
    off_label = (labels[40] + 1) % N_CLASSES
    logits[40, off_label] = np.inf
    finite = np.delete(np.arange(N_ROWS), 40)
    sample_weight = np.ones(N_ROWS) if plain else np.linspace(0.5, 2.0, N_ROWS)
    options = {} if plain else {"sample_weight": make(sample_weight)}
    y_true, y_pred = make(labels, "int64"), make(logits)
    rtol = 1e-5 if dtype == xp.float32 else 1e-11
    loss = xce.sparse_categorical_cross_entropy(y_true, y_pred, from_logits=True,
                                                reduction="none", **options)  # fmt: skip
    expected = (
        reference.sparse_categorical_cross_entropy(
            labels[finite], logits[finite], from_logits=True, reduction="none"
        )
        * sample_weight[finite]
    )
    assert_close(loss, np.insert(expected, 40, np.inf), xp=xp, dtype=dtype, device=device,
                 rtol=rtol)  # fmt: skip
    _, grad = xce.value_and_grad(xce.sparse_categorical_cross_entropy)(
        y_true, y_pred, from_logits=True, reduction="sum", **options
    )
    expected_grad = reference.softmax(logits) - np.eye(N_CLASSES)[labels]
    expected_grad *= sample_weight[:, None]
    expected_grad[40] = 0.0
    expected_grad[40, off_label] = np.nan
    expected_grad[40, labels[40]] = -sample_weight[40]
    assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device, rtol=10 * rtol,
                 atol=1e-9)  # fmt: skip


def test_lanes_are_found_for_exact_array_types_only(monkeypatch):
    """``lanes`` serves exactly ``numpy.ndarray`` and ``torch.Tensor``, never a subclass, and
    nothing once fast paths are off (read at call time, so one patch of the config does it)."""
    from xce import _fast

    monkeypatch.setattr(_config, "FAST_PATHS_ENABLED", True)
    assert _fast.lanes(np.ndarray) is numpy_fast
    assert _fast.lanes(np.matrix) is None
    assert _fast.lanes(list) is None
    if torch_fast is not None:
        import torch

        assert _fast.lanes(torch.Tensor) is torch_fast
        assert _fast.lanes(torch.nn.Parameter) is None
    monkeypatch.setattr(_config, "FAST_PATHS_ENABLED", False)
    assert _fast.lanes(np.ndarray) is None


def test_backend_offers_native_kernels_and_a_row_runner(monkeypatch):
    """``backend(xp)`` is never ``None``: its native kernel where the backend has one and takes
    ``x``, its row runner always (NumPy's shares the blocks among threads); with fast paths off
    no native kernel, and the generic runner."""
    from xce import _fast
    from xce._array_api import array_namespace
    from xce._fast._rows import in_row_blocks

    xp = array_namespace(np.zeros(1))
    x = np.zeros((3, 4), dtype=np.float32)
    monkeypatch.setattr(_config, "FAST_PATHS_ENABLED", True)
    numpy_backend = _fast.backend(xp)
    assert numpy_backend is _fast.backend(xp)
    for name in ("softmax_ce_labels", "softmax_ce_soft", "sigmoid_bce"):
        assert numpy_backend.native_kernel(name, x) is getattr(numpy_fast, name)
    assert numpy_backend.native_kernel("softmax_ce_labels", x.astype(np.int32)) is None
    assert numpy_backend.native_kernel("softmax_ce_labels", x.T) is None  # not C-contiguous
    assert numpy_backend.native_kernel("no_such_kernel", x) is None
    assert numpy_backend.run_rows.keywords == {"spread": numpy_fast.spread}
    monkeypatch.setattr(_config, "FAST_PATHS_ENABLED", False)
    generic_backend = _fast.backend(xp)
    assert generic_backend.native_kernel("softmax_ce_labels", x) is None
    assert generic_backend.run_rows is in_row_blocks
    assert generic_backend.fast_path is None


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_fast_path_modules_offer_the_written_interface(name):
    """Every function of the ``FastPath`` protocol exists in each backend's module with the
    protocol's parameters and defaults, and nothing else is exported."""
    import inspect

    from xce._fast._interface import FastPath

    module = numpy_fast if name == "numpy" else torch_fast
    if module is None:
        pytest.skip("torch is not installed")
    wanted = {n for n in dir(FastPath) if not n.startswith("_")}
    assert wanted <= set(module.__all__)
    assert set(module.__all__) - wanted <= {"spread"}
    for function_name in wanted:
        spec = inspect.signature(getattr(FastPath, function_name)).parameters
        got = inspect.signature(getattr(module, function_name)).parameters
        expected = [(p.name, p.default) for p in list(spec.values())[1:]]  # without self
        assert [(p.name, p.default) for p in got.values()] == expected, function_name


def test_importing_xce_imports_no_backend_fast_path():
    """The NumPy and torch fast paths (and torch itself) load only once one of their arrays
    is seen."""
    import subprocess

    code = (
        "import sys, xce; "
        "print(sorted(m for m in sys.modules if m == 'torch' or "
        "m.startswith(('xce._fast._numpy', 'xce._fast._torch', 'xce._fast._jax'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
