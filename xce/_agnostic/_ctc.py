"""Connectionist temporal classification in pure array API: the extended label sequence and
the forward–backward recursions in log space.

The extended sequence of a label sequence l₁…l_L is b l₁ b l₂ … b l_L b (b the blank), of
length 2L + 1. A path may stay on a position, move to the next, or skip a blank between two
*different* labels. α_t(s) is the log-probability of the prefixes ending at position s at
time t (emission at t included); β_t(s) that of the suffixes from s after t (emission at t
excluded), so that exp(α_t(s) + β_t(s) − log p) is the posterior occupancy γ_t(s) and
∂(−log p)/∂ log_probs[t, c] = −Σ_{s: ext_s = c} γ_t(s).

The recursions loop over time on (N, 2S + 1) arrays: batch and positions are vectorised.
Each sequence reads its own end: α at t = Tᵢ − 1 and positions 2Lᵢ, 2Lᵢ − 1. Positions
past 2Lᵢ never feed earlier ones (the moves only go forward), so padding needs no mask.
"""

from __future__ import annotations

import math

from .._array_api import device
from ._blocks import log_or_neg_inf
from ._categorical import take_along_last_axis

__all__ = ["ctc_extended_labels", "ctc_generic", "ctc_scatter_classes", "logaddexp3"]


def ctc_extended_labels(xp, labels, input_lengths, label_lengths, *, blank, n_classes, n_times):
    """The extended sequences and what is wrong with each sequence.

    Returns ``(ext, skip, t_len, l_len, bad)``: ``ext`` (N, 2S+1) the extended labels (the
    entries past a label length, whatever they held, replaced by the blank), ``skip``
    (N, 2S+1) where the move s−2 → s is allowed, the lengths clipped to their ranges, and
    ``bad`` (N,) the sequences with a label outside [0, C) or equal to the blank within
    their length, or a length outside [0, S] / [0, T].
    """
    n, s_max = labels.shape
    dev = device(labels)
    positions = xp.arange(s_max, dtype=labels.dtype, device=dev)
    label_lengths = xp.astype(label_lengths, labels.dtype)
    input_lengths = xp.astype(input_lengths, labels.dtype)
    within = positions < label_lengths[:, None]
    wrong = within & ((labels < 0) | (labels >= n_classes) | (labels == blank))
    bad = (
        xp.any(wrong, axis=1)
        | (label_lengths < 0)
        | (label_lengths > s_max)
        | (input_lengths < 0)
        | (input_lengths > n_times)
    )
    blanks = xp.full((n, s_max), blank, dtype=labels.dtype, device=dev)
    clean = xp.where(within & ~wrong, labels, blanks)
    ext = _interleave(xp, blanks, clean, xp.full((n, 1), blank, dtype=labels.dtype, device=dev))
    no = xp.zeros((n, 1), dtype=xp.bool, device=dev)
    if s_max > 1:
        changed = xp.concat([no, clean[:, 1:] != clean[:, :-1]], axis=1)
    else:
        changed = xp.zeros((n, s_max), dtype=xp.bool, device=dev)
    skip = _interleave(xp, xp.zeros((n, s_max), dtype=xp.bool, device=dev), changed, no)
    zero = xp.zeros_like(label_lengths)
    l_len = xp.minimum(xp.maximum(label_lengths, zero), xp.full_like(zero, s_max))
    t_len = xp.minimum(xp.maximum(input_lengths, zero), xp.full_like(zero, n_times))
    return ext, skip, t_len, l_len, bad


def _interleave(xp, even, odd, last):
    """Columns even₀ odd₀ even₁ odd₁ … then ``last``: (N, S) twice and (N, 1) → (N, 2S+1)."""
    n, s_max = even.shape
    pairs = xp.reshape(xp.stack([even, odd], axis=2), (n, 2 * s_max))
    return xp.concat([pairs, last], axis=1)


def logaddexp3(xp, a, b, c):
    """log(eᵃ + eᵇ + eᶜ) elementwise, −inf where all three are −inf (no NaN, no warning)."""
    m = xp.maximum(xp.maximum(a, b), c)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    return m + log_or_neg_inf(xp, xp.exp(a - m) + xp.exp(b - m) + xp.exp(c - m))


def _shift_right(xp, a, k, fill):
    """Columns moved right by ``k`` (the first ``k`` filled), keeping the width."""
    width = a.shape[1]
    k = min(k, width)
    return xp.concat([fill[:, :k], a[:, : width - k]], axis=1)


def _shift_left(xp, a, k, fill):
    width = a.shape[1]
    k = min(k, width)
    return xp.concat([a[:, k:], fill[:, :k]], axis=1)


def _end_log_likelihood(xp, alpha, l_len):
    """log p = logaddexp(α(2L), α(2L − 1)), the second only where L ≥ 1."""
    last = take_along_last_axis(xp, alpha, 2 * l_len[:, None])[:, 0]
    before = take_along_last_axis(
        xp, alpha, xp.maximum(2 * l_len - 1, xp.zeros_like(l_len))[:, None]
    )
    before = xp.where(l_len > 0, before[:, 0], xp.full_like(last, -math.inf))
    m = xp.maximum(last, before)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    return m + log_or_neg_inf(xp, xp.exp(last - m) + xp.exp(before - m))


def ctc_scatter_classes(xp, gamma, ext, n_classes):
    """Σ_{s: ext_s = c} γ[..., s] for every class c: (N, T, 2S+1) → (N, T, C), by a product
    with the one-hot of ``ext`` (the standard has no scatter-add; repeated labels add up)."""
    classes = xp.arange(n_classes, dtype=ext.dtype, device=device(ext))
    one_hot = xp.astype(ext[:, :, None] == classes, gamma.dtype)
    return xp.matmul(gamma, one_hot)


def ctc_generic(xp, log_probs, ext, skip, t_len, l_len, *, with_grad):
    """log p of each sequence (N,) and, ``with_grad``, ∂(Σ −log p)/∂ log_probs (N, T, C).

    ``log_probs`` (N, T, C) as given; the other arguments from :func:`ctc_extended_labels`.
    An impossible sequence (log p = −inf) gets a zero gradient.
    """
    n, n_times, n_classes = log_probs.shape
    width = ext.shape[1]
    dev = device(log_probs)
    index = xp.broadcast_to(ext[:, None, :], (n, n_times, width))
    emit = xp.take_along_axis(log_probs, index, axis=2)  # (N, T, 2S+1)
    fill = xp.full((n, 2), -math.inf, dtype=log_probs.dtype, device=dev)
    no_skip = xp.full((n, width), -math.inf, dtype=log_probs.dtype, device=dev)
    # α before the first step: all the mass on position 0 ("nothing emitted yet"), so that
    # step 0 starts a path on the first blank or the first label, and Tᵢ = 0 reads it as is.
    alpha = xp.concat([xp.zeros((n, 1), dtype=log_probs.dtype, device=dev), no_skip[:, 1:]], axis=1)
    alphas = []
    for t in range(n_times):
        moved = logaddexp3(
            xp, alpha, _shift_right(xp, alpha, 1, fill),
            xp.where(skip, _shift_right(xp, alpha, 2, fill), no_skip),
        )  # fmt: skip
        alpha = xp.where((t < t_len)[:, None], moved + emit[:, t, :], alpha)
        if with_grad:
            alphas.append(alpha)
    log_p = _end_log_likelihood(xp, alpha, l_len)
    if not with_grad:
        return log_p, None
    if n_times == 0:
        return log_p, xp.zeros_like(log_probs)
    positions = xp.arange(width, dtype=l_len.dtype, device=dev)
    at_end = (positions == 2 * l_len[:, None]) | (
        (positions == 2 * l_len[:, None] - 1) & (l_len[:, None] > 0)
    )
    end = xp.where(at_end, xp.zeros_like(no_skip), no_skip)
    skip_next = _shift_left(xp, skip, 2, xp.zeros((n, 2), dtype=xp.bool, device=dev))
    possible = xp.isfinite(log_p)
    shift = xp.where(possible, log_p, xp.zeros_like(log_p))[:, None]
    beta = no_skip
    gammas = [None] * n_times
    for t in range(n_times - 1, -1, -1):
        if t < n_times - 1:
            ahead = emit[:, t + 1, :] + beta
            moved = logaddexp3(
                xp, ahead, _shift_left(xp, ahead, 1, fill),
                xp.where(skip_next, _shift_left(xp, ahead, 2, fill), no_skip),
            )  # fmt: skip
        else:
            moved = no_skip
        last = (t == t_len - 1)[:, None]
        beta = xp.where(last, end, xp.where((t < t_len - 1)[:, None], moved, no_skip))
        gammas[t] = xp.exp(alphas[t] + beta - shift)
    gamma = xp.where(possible[:, None, None], xp.stack(gammas, axis=1), xp.zeros_like(emit))
    return log_p, -ctc_scatter_classes(xp, gamma, ext, n_classes)
