"""The CTC recursions on NumPy arrays (also CPU torch tensors and Dask blocks, as views).

The generic kernel (:func:`xce._agnostic._ctc.ctc_generic`) runs α and β in log space: four
transcendental functions per cell and step, which on NumPy cost far more than the rest. Here
the recursions run in probability space, rescaled at every step (the forward algorithm of
Rabiner and of Graves et al. 2006): each frame's emissions are divided by the frame's best
one (one ``exp`` over the (N, T, C) input, before the steps), α is divided by its row sum
after each step and the logs of the divisors are summed, so that a step is a few additions
and products on an (N, 2S + 1) slab, in float64. The moves s−1 → s and s−2 → s read views
of a buffer padded with two zero columns; a forbidden skip is a product by 0.

Rescaling keeps the leading paths in range at any T; a path more than ~700 nats (float64's
range) behind the best ones at some step is dropped there, which matters only if all of
those later fall further still behind it. If they all die, the result is 0: such a sequence
(or one that really is impossible) is recomputed by the exact log-space kernel.
Sequences shorter than T are not frozen step by step: each one's α is read at its own last
step, and frames past it get a zero gradient.
"""

from __future__ import annotations

import numpy as np

from ._agnostic._ctc import ctc_generic
from ._array_api import array_namespace

__all__ = ["ctc_numpy"]


def _ends(lengths):
    """{t: rows whose last frame is t}."""
    return {int(t) - 1: np.flatnonzero(lengths == t) for t in np.unique(lengths) if t > 0}


def _flat_index(ext, n_times, n_classes):
    """Index of (n, t, ext[n, s]) in the flattened (N, T, C) input, time-major (T, N, 2S+1):
    the gather of the emissions and the scatter of the gradient both use it."""
    n = ext.shape[0]
    base = (np.arange(n_times)[:, None] + np.arange(n)[None, :] * n_times) * n_classes
    return base[:, :, None] + ext[None, :, :]


def _emissions(log_probs, index):
    """Emissions of the extended labels, time-major (T, N, 2S+1), each frame divided by its
    best class, and the logs of those divisors (T, N)."""
    best = log_probs.max(axis=2, keepdims=True).astype(np.float64)
    best = np.where(np.isfinite(best), best, 0.0)
    scaled = np.exp(log_probs - best)  # in float64: frames of 700 nats keep their classes
    return np.take(scaled.reshape(-1), index), best[:, :, 0].T


def _normalise(block, ones, sums, step):
    """Divide each row by its sum (rows of zeros stay zero), kept in ``sums[step]``."""
    total = sums[step]
    np.matmul(block, ones, out=total)
    block *= (1.0 / np.maximum(total, 1e-300))[:, None]


def _forward(emit, skip, t_len, keep):
    """α̂ after each step (``keep``; rescaled, two zero columns in front), α̂ at each
    sequence's last step, and the row sums that rescaled it."""
    n_times, n, width = emit.shape
    alphas = np.zeros((n_times + 1 if keep else 2, n, width + 2))
    alphas[0][:, 2] = 1.0  # before step 0: all the mass on position 0, nothing emitted
    final = alphas[0][:, 2:].copy()  # sequences with no frame read α̂ as it starts
    sums = np.ones((n_times, n))
    ones = np.ones(width)
    skipped = np.empty((n, width))
    ends = _ends(t_len)
    for t in range(n_times):
        old, new = (alphas[t], alphas[t + 1]) if keep else (alphas[t % 2], alphas[1 - t % 2])
        alpha = new[:, 2:]
        np.add(old[:, 2:], old[:, 1:-1], out=alpha)
        np.multiply(old[:, :-2], skip, out=skipped)
        alpha += skipped
        alpha *= emit[t]
        _normalise(alpha, ones, sums, t)
        if t in ends:
            final[ends[t]] = alpha[ends[t]]
    return (alphas if keep else None), final, sums


def _log_likelihood(emit, best, skip, t_len, l_len, keep):
    """log p (N,) and α̂ of every step (``keep``), or ``None``."""
    n = emit.shape[1]
    alphas, final, sums = _forward(emit, skip, t_len, keep)
    # log p = Σ_{t < Tᵢ} (log best_t + log sum_t) + log(the mass of α̂ on the end positions).
    log_scale = np.concatenate([np.zeros((1, n)), np.cumsum(np.log(sums) + best, axis=0)])
    rows = np.arange(n)
    before = np.where(l_len > 0, final[rows, np.maximum(2 * l_len - 1, 0)], 0.0)
    mass = final[rows, 2 * l_len] + before
    return log_scale[t_len, rows] + np.log(mass), alphas


def _posteriors(emit, alphas, skip, t_len, l_len):
    """α̂·β̂′ (T, N, 2S+1) in place of α̂ (unnormalised γ), β′ excluding the emission at t."""
    n_times, n, width = emit.shape
    positions = np.arange(width)
    end = ((positions == 2 * l_len[:, None]) | (
        (positions == 2 * l_len[:, None] - 1) & (l_len[:, None] > 0)
    )).astype(np.float64)  # fmt: skip
    skip_next = np.zeros((n, width))
    skip_next[:, : width - 2] = skip[:, 2:]
    padded = np.zeros((n, width + 2))
    ahead = padded[:, :-2]
    beta = np.zeros((n, width))
    sums = np.ones((1, n))
    ones = np.ones(width)
    starts = _ends(t_len)
    skipped = np.empty((n, width))
    for t in range(n_times - 1, -1, -1):
        if t < n_times - 1:
            np.multiply(emit[t + 1], beta, out=ahead)
            np.add(ahead, padded[:, 1:-1], out=beta)
            np.multiply(padded[:, 2:], skip_next, out=skipped)
            beta += skipped
            _normalise(beta, ones, sums, 0)  # β′'s scale cancels: γ is normalised per frame
        if t in starts:
            beta[starts[t]] = end[starts[t]]
        alphas[t + 1][:, 2:] *= beta
    return alphas[1:]


def _gradient(gamma, index, blank, t_len, possible, n_classes, dtype):
    """−γ on the classes (N, T, C), γ normalised per frame. The labels (odd positions) reach
    their classes by a count weighted by γ, summing repeats (a scatter-add); the blank takes
    the rest of each frame's mass."""
    n_times, n, padded_width = gamma.shape
    total = gamma.reshape(n_times * n, padded_width) @ np.ones(padded_width)
    total = total.reshape(n_times, n).T
    labels = np.bincount(
        index[:, :, 1::2].ravel(), weights=gamma[:, :, 3::2].ravel(),
        minlength=n * n_times * n_classes,
    )  # fmt: skip
    grad = labels.reshape(n, n_times, n_classes)
    blank_mass = total - grad.sum(axis=2)
    grad[:, :, blank] += blank_mass
    keep = (np.arange(n_times)[None, :] < t_len[:, None]) & possible[:, None] & (total > 0)
    grad *= (-1.0 / np.where(keep, total, 1.0))[:, :, None]
    # Frames past a sequence's length (α and β ran on over whatever they hold) and impossible
    # sequences: 0, selected (a product would keep a NaN).
    grad[~keep] = 0.0
    return grad.astype(dtype, copy=False)


def ctc_numpy(log_probs, ext, skip, t_len, l_len, *, with_grad):
    """log p (N,) and, ``with_grad``, ∂(Σ −log p)/∂ log_probs (N, T, C), in ``log_probs``'
    dtype; arguments as in :func:`xce._agnostic._ctc.ctc_generic`, as NumPy arrays."""
    n_classes = log_probs.shape[2]
    ext = ext.astype(np.intp, copy=False)
    t_len = t_len.astype(np.intp, copy=False)
    l_len = l_len.astype(np.intp, copy=False)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        index = _flat_index(ext, log_probs.shape[1], n_classes)
        emit, best = _emissions(log_probs, index)
        skip_factor = skip.astype(np.float64)
        log_p, alphas = _log_likelihood(emit, best, skip_factor, t_len, l_len, with_grad)
        grad = None
        if with_grad:
            gamma = _posteriors(emit, alphas, skip_factor, t_len, l_len)
            grad = _gradient(
                gamma,
                index,
                ext[0, 0] if ext.shape[0] else 0,
                t_len,
                np.isfinite(log_p),
                n_classes,
                log_probs.dtype,
            )
    lost = np.flatnonzero(log_p == -np.inf)
    if lost.size:
        exact, exact_grad = ctc_generic(
            array_namespace(log_probs), log_probs[lost], ext[lost], skip[lost], t_len[lost],
            l_len[lost], with_grad=with_grad,
        )  # fmt: skip
        log_p[lost] = exact
        if grad is not None:
            grad[lost] = exact_grad
    return log_p.astype(log_probs.dtype), grad
