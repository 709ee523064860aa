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

import numpy as np
import pytest
import reference_ctc as ref
from helpers import assert_close, central_difference, is_lazy, to_numpy

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
