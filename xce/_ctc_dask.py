"""The CTC building block on Dask arrays: the NumPy path over blocks of the batch, lazily.

Each sequence needs all its frames, classes and labels, so time, classes and labels are one
chunk and the batch keeps its chunks; nothing is computed by the call. A sequence that
breaks a rule gets NaN (values are not read). With the gradient, a block returns one array,
(n, T, C + 1), the gradient with the loss in an extra column, sliced apart lazily, so that
each block runs once.
"""

from __future__ import annotations

import math

import dask.array as da
import numpy as np

from ._agnostic._ctc import ctc_extended_labels
from ._ctc_numpy import ctc_numpy

__all__ = ["ctc_dask"]


def _block(log_probs, labels, input_lengths, label_lengths, *, blank, with_grad):
    n, n_times, n_classes = log_probs.shape
    ext, skip, t_len, l_len, bad = ctc_extended_labels(
        np, labels, input_lengths, label_lengths, blank=blank, n_classes=n_classes,
        n_times=n_times,
    )  # fmt: skip
    log_p, grad = ctc_numpy(log_probs, ext, skip, t_len, l_len, with_grad=with_grad)
    nll = np.where(bad, math.nan, -log_p).astype(log_probs.dtype)
    if not with_grad:
        return nll
    packed = np.zeros((n, n_times, n_classes + 1), dtype=log_probs.dtype)
    packed[:, :, :n_classes] = np.where(bad[:, None, None], math.nan, grad)
    packed[:, 0, n_classes] = nll
    return packed


def ctc_dask(log_probs, labels, input_lengths, label_lengths, *, blank, with_grad):
    """(nll, grad or None), lazy Dask arrays."""
    log_probs = log_probs.rechunk({1: -1, 2: -1})
    rows = log_probs.chunks[0]
    labels = labels.rechunk((rows, -1))
    input_lengths = input_lengths.rechunk((rows,))
    label_lengths = label_lengths.rechunk((rows,))
    n_classes = log_probs.shape[2]

    def run(lp, lab, il, ll):
        return _block(lp, lab, il, ll, blank=blank, with_grad=with_grad)

    arrays = (log_probs, "ntc", labels, "ns", input_lengths, "n", label_lengths, "n")
    if not with_grad:
        nll = da.blockwise(run, "n", *arrays, dtype=log_probs.dtype, concatenate=True)
        return nll, None
    packed = da.blockwise(
        run, "ntc", *arrays, dtype=log_probs.dtype, concatenate=True,
        adjust_chunks={"c": n_classes + 1},
    )  # fmt: skip
    return packed[:, 0, n_classes], packed[:, :, :n_classes]
