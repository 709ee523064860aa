"""CTC: the building block ``ctc_negative_log_likelihood`` and ``xce.ctc_loss`` on every
backend, against the float64 oracle of ``tests/reference_ctc.py`` (all alignments enumerated
for tiny cases, a per-sequence log-space forward algorithm for longer ones, central
differences for gradients).

One batch holds the hard cases together: a repeated label that forces a blank between its
copies, label length 0, a single frame, varied lengths, an alignment that needs more frames
than it has (+inf), and padding past the label lengths that holds garbage, even out-of-range
values, which must be ignored.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference_ctc as ref
from helpers import assert_close, case, central_difference, check, is_lazy, to_numpy

import xce
from xce._ctc_kernels import ctc_negative_log_likelihood

T, C = 5, 3
# (labels padded to S = 3, label length, input length); the blank is 0 here, remapped below.
SEQUENCES = [
    ([1, 1, 9], 2, 5),  # "1 1" needs a blank between: 3 frames at least
    ([2, 1, -4], 2, 4),  # garbage padding, out of range
    ([1, 2, 2], 0, 1),  # label length 0, one frame: only the blank path
    ([2, 2, 2], 3, 4),  # needs 5 frames, has 4: impossible (+inf)
    ([2, 1, 2], 3, 5),
]


def batch(blank, seed=0):
    """(log_probs (N, T, C), labels, input_lengths, label_lengths) with classes moved so that
    the blank is ``blank`` (labels 1, 2 become the other two classes)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=1.5, size=(len(SEQUENCES), T, C))
    log_probs = x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
    others = [c for c in range(C) if c != blank]
    labels = np.array([s[0] for s in SEQUENCES])
    mapped = np.where(
        (labels >= 1) & (labels <= 2), np.array(others)[labels.clip(1, 2) - 1], labels
    )
    label_lengths = np.array([s[1] for s in SEQUENCES])
    input_lengths = np.array([s[2] for s in SEQUENCES])
    return log_probs, mapped, input_lengths, label_lengths


def _possible(nll):
    return np.isfinite(nll)


@pytest.mark.parametrize("blank", [0, C - 1])
def test_building_block_matches_every_alignment(blank, xp, make, dtype, device):
    log_probs, labels, input_lengths, label_lengths = batch(blank)
    lp = make(log_probs)
    seen = to_numpy(lp).astype(np.float64)
    expected = ref.brute_force_nll(seen, labels, input_lengths, label_lengths, blank)
    assert np.isinf(expected[3]) and np.isfinite(np.delete(expected, 3)).all()
    np.testing.assert_allclose(
        ref.forward_nll(seen, labels, input_lengths, label_lengths, blank), expected, rtol=1e-12
    )
    ints = [make(a, "int64") for a in (labels, input_lengths, label_lengths)]
    nll, grad = ctc_negative_log_likelihood(lp, *ints, blank=blank, with_grad=True)
    assert_close(nll, expected, xp=xp, dtype=dtype, device=device)
    alone, none = ctc_negative_log_likelihood(lp, *ints, blank=blank, with_grad=False)
    assert none is None
    assert_close(alone, expected, xp=xp, dtype=dtype, device=device)

    possible = _possible(expected)

    def total(z):
        return ref.forward_nll(z, labels, input_lengths, label_lengths, blank)[possible].sum()

    numeric = central_difference(total, seen)
    # The impossible sequence's gradient is 0 by definition (its loss is +inf everywhere
    # near); frames past an input length have no part in the loss.
    assert np.all(numeric[~possible] == 0)
    rtol, atol = (1e-6, 1e-7) if "64" in str(dtype) else (1e-4, 1e-5)
    assert_close(grad, numeric, xp=xp, dtype=dtype, device=device, rtol=rtol, atol=atol)
    # Each frame of a possible sequence spreads −1 over its classes (Σ_s γ_t(s) = 1).
    sums = to_numpy(grad).sum(axis=-1)
    frames = np.arange(T) < input_lengths[:, None]
    np.testing.assert_allclose(sums, np.where(possible[:, None] & frames, -1.0, 0.0), atol=1e-4)


def test_building_block_takes_defaults_and_host_lengths(xp, make, dtype, device):
    log_probs, labels, _, _ = batch(0)
    labels = np.array([[1, 2], [2, 2], [1, 1], [2, 1], [1, 2]])
    nll, grad = ctc_negative_log_likelihood(
        make(log_probs), make(labels, "int64"), None, np.full(5, 2), blank=0, with_grad=False
    )
    seen = to_numpy(make(log_probs)).astype(np.float64)
    expected = ref.forward_nll(seen, labels, np.full(5, T), np.full(5, 2), 0)
    assert grad is None
    assert_close(nll, expected, xp=xp, dtype=dtype, device=device)


def test_building_block_bad_sequences(xp, make, backend):
    log_probs, labels, input_lengths, label_lengths = batch(0)
    cases = {
        "blank": (np.where(np.arange(3) == 0, 0, labels), input_lengths, label_lengths, "blank"),
        "class": (np.where(np.arange(3) == 0, C, labels), input_lengths, label_lengths, "outside"),
        "input": (labels, input_lengths + np.eye(5, dtype=int)[1] * 9, label_lengths, "input_"),
        "label": (labels, input_lengths, label_lengths - np.eye(5, dtype=int)[0] * 3, "label_"),
    }
    for name, (lab, il, ll, message) in cases.items():
        args = [make(a, "int64") for a in (lab, il, ll)]
        if is_lazy(backend):
            nll, _ = ctc_negative_log_likelihood(make(log_probs), *args, blank=0, with_grad=False)
            assert np.isnan(to_numpy(nll)).any(), name
        else:
            with pytest.raises(ValueError, match=message):
                ctc_negative_log_likelihood(make(log_probs), *args, blank=0, with_grad=False)
    with pytest.raises(TypeError, match="labels must be integers"):
        ctc_negative_log_likelihood(make(log_probs), make(labels), None, None, blank=0,
                                    with_grad=False)  # fmt: skip
    with pytest.raises(ValueError, match="3-D"):
        ctc_negative_log_likelihood(make(log_probs[0]), make(labels[0], "int64"), None, None,
                                    blank=0, with_grad=False)  # fmt: skip
    with pytest.raises(ValueError, match="input_lengths must have shape"):
        ctc_negative_log_likelihood(make(log_probs), make(labels, "int64"),
                                    make(input_lengths[:, None], "int64"), None, blank=0,
                                    with_grad=False)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# xce.ctc_loss: reductions, weights, zero_infinity, probabilities and logits
# ---------------------------------------------------------------------------------------------

REDUCTIONS = ("none", "sum", "mean", "sum_and_count")
# Checks that do not depend on the dtype run in float64 only: JAX compiles once per dtype.
ONE_DTYPE = pytest.mark.parametrize("dtype", ["float64"], indirect=True)
WEIGHTS = np.array([0.5, 2.0, 1.0, 1.5, 0.25])


def _log_softmax(x):
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _public_inputs(make, from_logits, blank=0):
    """(labels, y_pred, lengths) as backend arrays, and the reference's log-probabilities of
    the numbers the library saw."""
    log_probs, labels, input_lengths, label_lengths = batch(blank, seed=1)
    y_pred = make(log_probs * 1.3 if from_logits else np.exp(log_probs))
    seen = to_numpy(y_pred).astype(np.float64)
    lengths = {
        "input_lengths": make(input_lengths, "int64"),
        "label_lengths": make(label_lengths, "int64"),
    }
    reference_lp = _log_softmax(seen) if from_logits else np.log(seen)
    expected = ref.forward_nll(reference_lp, labels, input_lengths, label_lengths, blank)
    return make(labels, "int64"), y_pred, lengths, expected


@pytest.mark.parametrize("from_logits", [True, False])
def test_ctc_loss_reductions_weights_and_zero_infinity(from_logits, xp, make, dtype, device):
    labels, y_pred, lengths, nll = _public_inputs(make, from_logits)
    for weighted, zero_infinity in ((False, False), (True, True)):
        weight = make(WEIGHTS) if weighted else None
        for reduction in REDUCTIONS:
            got = xce.ctc_loss(
                labels, y_pred, **lengths, from_logits=from_logits, sample_weight=weight,
                reduction=reduction, zero_infinity=zero_infinity,
            )  # fmt: skip
            expected = ref.reduce(nll, reduction, WEIGHTS if weighted else None, zero_infinity)
            with case(f"{reduction} weighted={weighted} zero_infinity={zero_infinity}"):
                check(got, expected, xp=xp, dtype=dtype, device=device)


@ONE_DTYPE
def test_ctc_loss_defaults_and_half_precision(xp, make, device, backend):
    # Default lengths (all frames, all labels) and the float32 compute of half inputs.
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 4, 3))
    labels = np.array([[1, 2], [2, 1]])
    expected = ref.forward_nll(_log_softmax(logits), labels, [4, 4], [2, 2], 0).mean()
    for name in ("float16", "bfloat16"):
        if not hasattr(xp, name) or (backend == "array_api_strict" and name == "bfloat16"):
            continue
        y_pred = make(logits, name)
        got = xce.ctc_loss(make(labels, "int64"), y_pred, from_logits=True)
        assert got.dtype == getattr(xp, name)
        assert_close(got, expected, xp=xp, dtype=got.dtype, device=device, rtol=2e-2, atol=2e-2)
    # An empty batch is a mean over nothing (0); label length 0 is the all-blank path.
    empty = xce.ctc_loss(make(np.zeros((0, 2)), "int64"), make(np.zeros((0, 4, 3))))
    assert_close(empty, 0.0, xp=xp, dtype=empty.dtype, device=device)
    blanks = xce.ctc_loss(make(np.zeros((2, 0)), "int64"), make(logits), from_logits=True)
    expected = -_log_softmax(logits)[:, :, 0].sum(axis=1).mean()
    assert_close(blanks, expected, xp=xp, dtype=blanks.dtype, device=device)


# ---------------------------------------------------------------------------------------------
# Gradients: value_and_grad against central differences; the frameworks' autodiff
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("from_logits", [True, False])
def test_value_and_grad_against_central_differences(from_logits, xp, make, dtype, device):
    labels, y_pred, lengths, _ = _public_inputs(make, from_logits)
    seen = to_numpy(y_pred).astype(np.float64)
    _, host_labels, host_inputs, host_labels_len = batch(0, seed=1)
    value_and_grad = xce.value_and_grad(xce.ctc_loss)
    for reduction in ("mean", "sum_and_count"):

        def total(z, reduction=reduction):
            lp = _log_softmax(z) if from_logits else np.log(z)
            nll = ref.forward_nll(lp, host_labels, host_inputs, host_labels_len, 0)
            out = ref.reduce(nll, reduction, WEIGHTS, zero_infinity=True)
            return out[0] if reduction == "sum_and_count" else out

        loss, grad = value_and_grad(
            labels, y_pred, **lengths, from_logits=from_logits, sample_weight=make(WEIGHTS),
            reduction=reduction, zero_infinity=True,
        )  # fmt: skip
        numeric = central_difference(total, seen)
        rtol, atol = (1e-6, 1e-7) if "64" in str(dtype) else (1e-4, 1e-5)
        with case(reduction):
            check(loss, ref.reduce(ref.forward_nll(
                _log_softmax(seen) if from_logits else np.log(seen), host_labels, host_inputs,
                host_labels_len, 0), reduction, WEIGHTS, zero_infinity=True,
            ), xp=xp, dtype=dtype, device=device)  # fmt: skip
            assert_close(grad, numeric, xp=xp, dtype=dtype, device=device, rtol=rtol, atol=atol)


@ONE_DTYPE
def test_framework_autodiff_equals_value_and_grad(backend, xp, make, dtype, device):
    if backend not in ("torch", "jax"):
        pytest.skip(f"{backend}: no autodiff of its own (torch.autograd and jax.grad only)")
    labels, y_pred, lengths, _ = _public_inputs(make, True)
    options = {"from_logits": True, "sample_weight": make(WEIGHTS), "zero_infinity": True}
    _, expected = xce.value_and_grad(xce.ctc_loss)(labels, y_pred, **lengths, **options)
    if backend == "torch":
        leaf = y_pred.detach().clone().requires_grad_(True)
        xce.ctc_loss(labels, leaf, **lengths, **options).backward()
        got = leaf.grad
    else:
        import jax

        def loss(p, lab, il, ll):
            return xce.ctc_loss(lab, p, input_lengths=il, label_lengths=ll, **options)

        got = jax.jit(jax.grad(loss))(y_pred, labels, *lengths.values())
    assert_close(got, to_numpy(expected), xp=xp, dtype=dtype, device=device)


def test_torch_functional_ctc_loss_agrees(backend, make, xp, dtype, device):
    if backend != "torch":
        pytest.skip(f"{backend}: the comparison with torch's F.ctc_loss needs torch tensors")
    import torch

    log_probs, labels, input_lengths, label_lengths = batch(C - 1, seed=2)
    lp, lab = make(log_probs), make(labels, "int64")
    il, ll = make(input_lengths, "int64"), make(label_lengths, "int64")
    for zero_infinity in (False, True):
        theirs = torch.nn.functional.ctc_loss(
            lp.transpose(0, 1), lab, il, ll, blank=C - 1, reduction="none",
            zero_infinity=zero_infinity,
        )  # fmt: skip
        ours = xce.ctc_loss(
            lab, lp, input_lengths=il, label_lengths=ll, blank=C - 1, from_logits=True,
            reduction="none", zero_infinity=zero_infinity,
        )  # fmt: skip
        assert_close(ours, to_numpy(theirs), xp=xp, dtype=dtype, device=device)


@ONE_DTYPE
def test_dask_builds_lazily(backend, make, xp, dtype, device):
    if backend != "dask":
        pytest.skip(f"{backend}: laziness applies to Dask arrays")
    import dask
    import dask.array as da

    labels, y_pred, lengths, nll = _public_inputs(make, True)
    y_pred = da.rechunk(y_pred, chunks=(2, 2, -1))  # the kernel takes whole sequences

    def refuse(*args, **kwargs):
        raise AssertionError("xce computed while building the graph")

    with dask.config.set(scheduler=refuse):
        loss = xce.ctc_loss(labels, y_pred, **lengths, from_logits=True, reduction="none")
        value, grad = xce.value_and_grad(xce.ctc_loss)(
            labels, y_pred, **lengths, from_logits=True, reduction="sum", zero_infinity=True
        )
    check(loss, nll, xp=xp, dtype=dtype, device=device)
    check(value, ref.reduce(nll, "sum", zero_infinity=True), xp=xp, dtype=dtype, device=device)
    assert grad.shape == y_pred.shape and np.isfinite(to_numpy(grad)).all()


# ---------------------------------------------------------------------------------------------
# Bad input, mutation, long sequences
# ---------------------------------------------------------------------------------------------


@ONE_DTYPE
def test_ctc_loss_bad_input(backend, make):
    labels, y_pred, lengths, _ = _public_inputs(make, False)
    host_labels = batch(0, seed=1)[1]
    with pytest.raises(TypeError, match="labels must be integers"):
        xce.ctc_loss(make(host_labels), y_pred)
    with pytest.raises(ValueError, match="y_pred must be 3-D"):
        xce.ctc_loss(labels, y_pred[0, ...])
    with pytest.raises(ValueError, match="label_lengths must have shape"):
        xce.ctc_loss(labels, y_pred, label_lengths=make(np.ones((5, 1)), "int64"))
    with pytest.raises(ValueError, match="sample_weight has shape"):
        xce.ctc_loss(labels, y_pred, **lengths, sample_weight=make(np.ones((5, 1))))
    with pytest.raises(ValueError, match="blank="):
        xce.ctc_loss(labels, y_pred, **lengths, blank=C)
    too_big = make(np.full((5, T, C), 1.5))
    inside = make(np.where(np.arange(3) == 1, 0, host_labels), "int64")  # blank in sequences
    if is_lazy(backend):
        for args in ((labels, too_big), (inside, y_pred)):
            out = xce.ctc_loss(*args, **lengths, reduction="none")
            assert np.isnan(to_numpy(out)).any()
    else:
        with pytest.raises(ValueError, match="y_pred"):
            xce.ctc_loss(labels, too_big, **lengths)
        with pytest.raises(ValueError, match="blank"):
            xce.ctc_loss(inside, y_pred, **lengths)


@ONE_DTYPE
def test_inputs_are_not_mutated(make):
    labels, y_pred, lengths, _ = _public_inputs(make, True)
    before = [to_numpy(a).copy() for a in (labels, y_pred, *lengths.values())]
    xce.value_and_grad(xce.ctc_loss)(labels, y_pred, **lengths, from_logits=True, reduction="sum")
    xce.ctc_loss(labels, y_pred, **lengths, zero_infinity=True, from_logits=True)
    after = [to_numpy(a) for a in (labels, y_pred, *lengths.values())]
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


def test_float32_is_stable_over_2000_frames(backend):
    if backend != "numpy":
        pytest.skip(f"{backend}: the long-sequence check runs on NumPy only (it takes time)")
    rng = np.random.default_rng(7)
    n_times, n_classes, n_labels = 2000, 6, 40
    logits = rng.normal(scale=3.0, size=(2, n_times, n_classes)).astype(np.float32)
    labels = rng.integers(1, n_classes, size=(2, n_labels))
    lengths = {"input_lengths": np.array([2000, 1500]), "label_lengths": np.array([40, 25])}
    got = xce.ctc_loss(labels, logits, **lengths, from_logits=True, reduction="none")
    expected = ref.forward_nll(
        _log_softmax(logits.astype(np.float64)), labels, *lengths.values(), 0
    )
    np.testing.assert_allclose(got.astype(np.float64), expected, rtol=1e-5)


def test_paths_far_behind_the_best_one_count(xp, make, dtype, device):
    # The only alignments of "1" are ~800 nats below the best path (all blanks): a kernel
    # that scales by the best path (NumPy's) must not lose them. Shapes as in ``batch``.
    log_probs, labels, input_lengths, label_lengths = batch(0)
    log_probs[0] = np.where(np.arange(C) == 0, 0.0, -800.0)
    labels[0], label_lengths[0], input_lengths[0] = [1, 0, 0], 1, 2
    ints = [make(a, "int64") for a in (labels, input_lengths, label_lengths)]
    nll, _ = ctc_negative_log_likelihood(make(log_probs), *ints, blank=0, with_grad=True)
    expected = ref.forward_nll(log_probs, labels, input_lengths, label_lengths, 0)
    assert abs(expected[0] - (800 - math.log(2))) < 1e-9
    assert_close(nll, expected, xp=xp, dtype=dtype, device=device)


@ONE_DTYPE
def test_jax_program_does_not_grow_with_time(backend, xp, make):
    if backend != "jax":
        pytest.skip(f"{backend}: the program size applies to JAX's traced program")
    import jax

    def size(jaxpr):
        """Equations, counted into every sub-program (scan bodies, jit calls)."""
        total = 0
        for eqn in jaxpr.eqns:
            total += 1
            for param in eqn.params.values():
                inner = getattr(param, "jaxpr", param)
                if hasattr(inner, "eqns"):
                    total += size(inner)
        return total

    def program(n_times):
        y_pred = make(np.zeros((2, n_times, 3)))
        labels = make(np.ones((2, 2)), "int64")
        grad = jax.grad(lambda p: xce.ctc_loss(labels, p, from_logits=True))
        return size(jax.make_jaxpr(grad)(y_pred).jaxpr)

    assert program(4) == program(40)
