"""The CTC recursions on NumPy arrays (also CPU torch tensors and Dask blocks, as views).

The same algorithm as :func:`xce._agnostic._ctc.ctc_generic`, arranged for NumPy's per-call
cost: the emissions of the extended labels are gathered once, time-major (T, N, 2S+1), so
each step reads one contiguous slab; α lives in a buffer with two −inf columns in front, so
the moves s−1 → s and s−2 → s are views, not copies; every step writes into buffers made
once; a forbidden skip is a −inf added, not a selection. Sequences shorter than T are not
frozen step by step: each sequence's α is read at its own last step. The recursions run in
float64 whatever the input (the error of a sum over thousands of steps stays far below
float32's resolution), and the gradient is cast back.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ctc_numpy"]


def _logaddexp3(a, b, c, out, m, scratch):
    """out = log(eᵃ + eᵇ + eᶜ) with −inf where all are −inf: shifted by the maximum, which is
    floored at a finite value so that −inf − m is −inf, never NaN."""
    np.maximum(a, b, out=m)
    np.maximum(m, c, out=m)
    np.maximum(m, -1e300, out=m)
    np.subtract(a, m, out=out)
    np.exp(out, out=out)
    np.subtract(b, m, out=scratch)
    np.exp(scratch, out=scratch)
    out += scratch
    np.subtract(c, m, out=scratch)
    np.exp(scratch, out=scratch)
    out += scratch
    np.log(out, out=out)
    out += m


def _by_length(lengths):
    """{t: rows whose length is t + 1}: the step at which each sequence ends."""
    return {int(t) - 1: np.flatnonzero(lengths == t) for t in np.unique(lengths) if t > 0}


def _end_log_likelihood(alpha, l_len):
    rows = np.arange(alpha.shape[0])
    last = alpha[rows, 2 * l_len]
    before = np.where(l_len > 0, alpha[rows, np.maximum(2 * l_len - 1, 0)], -np.inf)
    return np.logaddexp(last, before)


def ctc_numpy(log_probs, ext, skip, t_len, l_len, *, with_grad):
    """log p (N,) and, ``with_grad``, ∂(Σ −log p)/∂ log_probs (N, T, C), in ``log_probs``'
    dtype; arguments as in :func:`xce._agnostic._ctc.ctc_generic`, as NumPy arrays."""
    n, n_times, n_classes = log_probs.shape
    width = ext.shape[1]
    ext = ext.astype(np.intp, copy=False)
    rows = np.arange(n)[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        emit = np.ascontiguousarray(log_probs.transpose(1, 0, 2)[:, rows, ext], dtype=np.float64)
        no_skip = np.where(skip, 0.0, -np.inf)
        padded = np.full((n, width + 2), -np.inf)
        padded[:, 2] = 0.0  # α before step 0: on position 0, nothing emitted yet
        alpha, moved1, moved2 = padded[:, 2:], padded[:, 1:-1], padded[:, :-2]
        final = alpha.copy()  # sequences of length 0 read α as it starts
        alphas = np.empty((n_times, n, width)) if with_grad else None
        ends = _by_length(t_len)
        m, scratch, skipped, out = (np.empty((n, width)) for _ in range(4))
        for t in range(n_times):
            np.add(moved2, no_skip, out=skipped)
            _logaddexp3(alpha, moved1, skipped, out, m, scratch)
            out += emit[t]
            alpha[...] = out
            if with_grad:
                alphas[t] = out
            if t in ends:
                final[ends[t]] = out[ends[t]]
        log_p = _end_log_likelihood(final, l_len)
        if not with_grad:
            return log_p.astype(log_probs.dtype), None
        return log_p.astype(log_probs.dtype), _gradient(
            emit, alphas, log_p, ext, skip, t_len, l_len, n_classes, log_probs.dtype
        )


def _gradient(emit, alphas, log_p, ext, skip, t_len, l_len, n_classes, dtype):
    """−γ scattered onto the classes; β′ (emission at t excluded) runs backwards in a padded
    buffer like α, the moves s+1 → s and s+2 → s being views past the end."""
    n_times, n, width = emit.shape
    positions = np.arange(width)
    at_end = (positions == 2 * l_len[:, None]) | (
        (positions == 2 * l_len[:, None] - 1) & (l_len[:, None] > 0)
    )
    end = np.where(at_end, 0.0, -np.inf)
    skip_next = np.full((n, width), -np.inf)
    skip_next[:, : width - 2] = np.where(skip[:, 2:], 0.0, -np.inf)
    padded = np.full((n, width + 2), -np.inf)
    ahead, ahead1, ahead2 = padded[:, :-2], padded[:, 1:-1], padded[:, 2:]
    beta = np.full((n, width), -np.inf)
    starts = _by_length(t_len)
    gamma = alphas  # overwritten in place, step by step: α_t is not needed after step t
    m, scratch, skipped = (np.empty((n, width)) for _ in range(3))
    for t in range(n_times - 1, -1, -1):
        if t < n_times - 1:
            np.add(emit[t + 1], beta, out=ahead)
            np.add(ahead2, skip_next, out=skipped)
            _logaddexp3(ahead, ahead1, skipped, beta, m, scratch)
        if t in starts:
            beta[starts[t]] = end[starts[t]]
        gamma[t] += beta
    possible = np.isfinite(log_p)
    gamma -= np.where(possible, log_p, 0.0)[None, :, None]
    np.exp(gamma, out=gamma)
    gamma[:, ~possible] = 0.0
    # Frames past a sequence's length: α ran on over them (whatever they hold, NaN included);
    # they have no part in the loss.
    gamma[np.arange(n_times)[:, None] >= t_len[None, :]] = 0.0
    # The blanks sit at the even positions; the labels' posteriors go to their classes by a
    # product with their one-hot (a scatter-add that sums repeated labels).
    grad = np.zeros((n, n_times, n_classes))
    labels = ext[:, 1::2]
    if labels.shape[1]:
        one_hot = (labels[:, :, None] == np.arange(n_classes)).astype(np.float64)
        grad -= np.matmul(gamma[:, :, 1::2].transpose(1, 0, 2), one_hot)
    blank = ext[0, 0] if n else 0
    grad[:, :, blank] -= gamma[:, :, 0::2].sum(axis=2).T
    return grad.astype(dtype, copy=False)
