"""The CTC recursions on NumPy arrays (also CPU torch tensors and Dask blocks, as views).

The generic kernel (:func:`xce._agnostic._ctc.ctc_generic`) runs α and β in log space: four
transcendental functions per cell and step, which on NumPy cost far more than the rest. Here
the recursions run in probability space, rescaled (the forward algorithm of Rabiner and of
Graves et al. 2006): each frame's emissions are divided by the frame's best one (one ``exp``
over the (N, T, C) input, before the steps), and a row of α is divided by its sum whenever
that sum leaves [1e-100, 1e100], the logs of the divisors summed; a step is then a few
additions and products on an (N, 2S + 1) slab, in float64. The moves s−1 → s and s−2 → s
read views of a buffer padded with two zero columns; a forbidden skip is a product by 0.

Rescaling keeps the leading paths in range at any T; a path over ~460 nats behind the
leading ones at some step can underflow there, which matters only if all of those later fall
further still behind it. If they all die, the result is 0: such a sequence (or one that
really is impossible) is recomputed by the exact log-space kernel. Sequences shorter than T
are not frozen step by step: each one's α is read at its own last step, and frames past it
get a zero gradient.
"""

from __future__ import annotations

import numpy as np

from ._agnostic._ctc import ctc_generic
from ._array_api import array_namespace

__all__ = ["ctc_numpy"]


def _ends(lengths):
    """{t: rows whose last frame is t}."""
    return {int(t) - 1: np.flatnonzero(lengths == t) for t in np.unique(lengths) if t > 0}


def _label_index(ext, n_times, n_classes):
    """Index of (n, t, label k of n) in the flattened (N, T, C) input, time-major (T, N, S):
    the gather of the labels' emissions and the scatter of their gradient both use it."""
    n = ext.shape[0]
    base = (np.arange(n_times)[:, None] + np.arange(n)[None, :] * n_times) * n_classes
    return base[:, :, None] + ext[None, :, 1::2]


def _emissions(log_probs, index, blank):
    """Emissions of the extended labels, time-major (T, N, 2S+1), each frame divided by its
    best class, and the logs of those divisors (T, N). The blank's (the even positions) is
    one column, spread; only the labels' are gathered."""
    n, n_times, _ = log_probs.shape
    best = log_probs.max(axis=2, keepdims=True).astype(np.float64)
    best = np.where(np.isfinite(best), best, 0.0)
    scaled = np.exp(log_probs - best)  # in float64: frames of 700 nats keep their classes
    emit = np.empty((n_times, n, 2 * index.shape[2] + 1))
    emit[:, :, 0::2] = scaled[:, :, blank].T[:, :, None]
    emit[:, :, 1::2] = np.take(scaled.reshape(-1), index)
    return emit, best[:, :, 0].T


# Rows are rescaled only when their sum leaves [LOW, HIGH]: a step multiplies it by at most 3
# (each position feeds three) and the leading paths' emissions are near 1, so this happens
# every few hundred steps on typical data, and saves a division per step. A path is then
# dropped only where it is below 1e-308, over ~460 nats behind the leading ones.
LOW, HIGH = 1e-100, 1e100


def _keep_in_range(block, ones, total, log_scale):
    """Rescale the rows of ``block`` whose sum left [LOW, HIGH], adding the log of the
    divisor to ``log_scale``. A row of zeros (no path left) or of NaN is set to ones, its
    scale to −inf or NaN, so that it does not ask again and its result stays right."""
    np.matmul(block, ones, out=total)
    if LOW <= total.min() and total.max() <= HIGH:
        return
    broken = ~((total > 0) & (total < np.inf))
    if broken.any():
        log_scale[broken] = np.where(total[broken] == 0, -np.inf, np.nan)
        block[broken] = 1.0
        total[broken] = block.shape[1]
    log_scale += np.log(total)
    block *= (1.0 / total)[:, None]


def _forward(emit, skip, t_len, keep):
    """α̂ after each step (``keep``; rescaled, two zero columns in front), and at each
    sequence's last step α̂ and the log of its scale."""
    n_times, n, width = emit.shape
    alphas = np.zeros((n_times + 1 if keep else 2, n, width + 2))
    alphas[0][:, 2] = 1.0  # before step 0: all the mass on position 0, nothing emitted
    final = alphas[0][:, 2:].copy()  # sequences with no frame read α̂ as it starts
    log_scale, final_scale, total = np.zeros(n), np.zeros(n), np.empty(n)
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
        _keep_in_range(alpha, ones, total, log_scale)
        if t in ends:
            final[ends[t]] = alpha[ends[t]]
            final_scale[ends[t]] = log_scale[ends[t]]
    return (alphas if keep else None), final, final_scale


def _log_likelihood(emit, best, skip, t_len, l_len, keep):
    """log p (N,) and α̂ of every step (``keep``), or ``None``."""
    n = emit.shape[1]
    alphas, final, final_scale = _forward(emit, skip, t_len, keep)
    # log p = Σ_{t < Tᵢ} log best_t + the log scale + log(α̂'s mass on the end positions).
    best_sum = np.concatenate([np.zeros((1, n)), np.cumsum(best, axis=0)])
    rows = np.arange(n)
    before = np.where(l_len > 0, final[rows, np.maximum(2 * l_len - 1, 0)], 0.0)
    mass = final[rows, 2 * l_len] + before
    return best_sum[t_len, rows] + final_scale + np.log(mass), alphas


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
    scale, total = np.zeros(n), np.empty(n)  # β′'s scale cancels: γ is normalised per frame
    ones = np.ones(width)
    starts = _ends(t_len)
    skipped = np.empty((n, width))
    for t in range(n_times - 1, -1, -1):
        if t < n_times - 1:
            np.multiply(emit[t + 1], beta, out=ahead)
            np.add(ahead, padded[:, 1:-1], out=beta)
            np.multiply(padded[:, 2:], skip_next, out=skipped)
            beta += skipped
            _keep_in_range(beta, ones, total, scale)
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
        index.ravel(), weights=gamma[:, :, 3::2].ravel(),
        minlength=n * n_times * n_classes,
    )  # fmt: skip
    labels = labels.astype(np.float64, copy=False)  # an empty count is integer
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
    if log_probs.shape[0] == 0:  # an empty batch: no step has a row to rescale
        return np.zeros(0, log_probs.dtype), np.zeros_like(log_probs) if with_grad else None
    ext = ext.astype(np.intp, copy=False)
    t_len = t_len.astype(np.intp, copy=False)
    l_len = l_len.astype(np.intp, copy=False)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        blank = int(ext[0, 0]) if ext.shape[0] else 0
        index = _label_index(ext, log_probs.shape[1], n_classes)
        emit, best = _emissions(log_probs, index, blank)
        skip_factor = skip.astype(np.float64)
        log_p, alphas = _log_likelihood(emit, best, skip_factor, t_len, l_len, with_grad)
        grad = None
        if with_grad:
            gamma = _posteriors(emit, alphas, skip_factor, t_len, l_len)
            possible = np.isfinite(log_p)
            grad = _gradient(gamma, index, blank, t_len, possible, n_classes, log_probs.dtype)
            grad[np.isnan(log_p)] = np.nan  # a NaN input: no gradient to speak of
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
