"""An independent float64 NumPy oracle for CTC (imports nothing from xce).

- :func:`brute_force_nll`: p(l | x) as the sum, over every alignment (every sequence of T
  classes), of the product of its probabilities, kept where collapsing it (merge repeats,
  drop blanks) gives l: the definition itself, for T ≤ 5 and C ≤ 3.
- :func:`forward_nll`: the textbook forward algorithm in log space, one sequence at a time,
  with explicit loops over positions (no shared code with xce's vectorised kernels).

Gradients are checked against central differences of :func:`forward_nll`
(``helpers.central_difference``).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = ["brute_force_nll", "collapse", "forward_nll", "reduce"]


def collapse(path, blank):
    out = []
    previous = None
    for c in path:
        if c != previous and c != blank:
            out.append(int(c))
        previous = c
    return out


def brute_force_nll(log_probs, labels, input_lengths, label_lengths, blank):
    """−log p per sequence by enumerating alignments (probability space)."""
    out = []
    for lp, lab, t_i, l_i in zip(log_probs, labels, input_lengths, label_lengths, strict=True):
        target = [int(v) for v in lab[:l_i]]
        probs = np.exp(np.asarray(lp, dtype=np.float64)[:t_i])
        total = 0.0
        for path in itertools.product(range(lp.shape[1]), repeat=int(t_i)):
            if collapse(path, blank) == target:
                total += math.prod(probs[t, c] for t, c in enumerate(path))
        out.append(-math.log(total) if total > 0 else math.inf)
    return np.array(out)


def _logadd(*values):
    m = max(values)
    if m == -math.inf:
        return -math.inf
    return m + math.log(sum(math.exp(v - m) for v in values))


def forward_nll(log_probs, labels, input_lengths, label_lengths, blank):
    """−log p per sequence by the log-space forward algorithm, one sequence at a time."""
    out = []
    for lp, lab, t_i, l_i in zip(log_probs, labels, input_lengths, label_lengths, strict=True):
        lp = np.asarray(lp, dtype=np.float64)
        ext = [blank]
        for v in lab[:l_i]:
            ext += [int(v), blank]
        if t_i == 0:
            out.append(0.0 if l_i == 0 else math.inf)
            continue
        alpha = [-math.inf] * len(ext)
        alpha[0] = lp[0, ext[0]]
        if len(ext) > 1:
            alpha[1] = lp[0, ext[1]]
        for t in range(1, int(t_i)):
            new = []
            for s, c in enumerate(ext):
                terms = [alpha[s]]
                if s >= 1:
                    terms.append(alpha[s - 1])
                if s >= 2 and c != blank and c != ext[s - 2]:
                    terms.append(alpha[s - 2])
                new.append(_logadd(*terms) + lp[t, c])
            alpha = new
        ends = [alpha[-1]] + ([alpha[-2]] if len(ext) > 1 else [])
        out.append(-_logadd(*ends))
    return np.array(out)


def reduce(nll, reduction, sample_weight=None, zero_infinity=False):
    """The reductions of xce.ctc_loss over per-sequence losses."""
    nll = np.asarray(nll, dtype=np.float64)
    if zero_infinity:
        nll = np.where(np.isinf(nll), 0.0, nll)
    s = np.ones_like(nll) if sample_weight is None else np.broadcast_to(sample_weight, nll.shape)
    if reduction == "none":
        return s * nll
    total = float(np.sum(s * nll))
    if reduction == "sum":
        return total
    if reduction == "sum_and_count":
        return total, float(np.sum(s))
    return total / float(np.sum(s)) if np.sum(s) else 0.0
