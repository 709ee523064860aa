"""NumPy fast path: cache-sized row blocks shared among threads.

The generic code makes several full passes over (N, C) temporaries that do not fit in cache.
Here each thread takes a contiguous share of the rows and walks it in blocks of about
``_config.BLOCK_BYTES``, so a block's exponentials and gradient stay in cache while they are
reused; the logits are read from memory once, and the gradient (``value_and_grad``) is written
once, directly into the array returned. This package is the fast-path interface
(:class:`xce._fast._interface.FastPath`) for ``numpy.ndarray``, split by concern:

- ``_threads``: the thread pool (:func:`spread`, which shares the row blocks of any kernel
  among the threads; the generic kernels of the losses on probabilities run through it too),
  per-thread scratch buffers, and where an array that ``exp`` writes is placed;
- ``_lanes``: the plain lanes; ``_small``: the short paths of small calls (a few KiB), which
  CPU torch tensors take too, on NumPy views; ``_probabilities``: the same for calls on
  probabilities (``from_logits=False``); ``_generic_small``: small calls of the losses
  without a native kernel (focal, poly-1), their generic kernel called directly;
- ``_sparse_kernel``, ``_dense_kernels``: the hand-fused kernels, in place on per-thread
  buffers, for the three losses on logits; ``_row_ops``: the per-row steps they share.
"""

from __future__ import annotations

import numpy as np

from ._dense_kernels import sigmoid_bce, softmax_ce_soft
from ._generic_small import generic_small
from ._lanes import plain_binary, plain_probabilities, plain_soft, plain_sparse
from ._sparse_kernel import softmax_ce_labels
from ._threads import spread

__all__ = [
    "generic_small",
    "handles",
    "plain_binary",
    "plain_probabilities",
    "plain_soft",
    "plain_sparse",
    "sigmoid_bce",
    "softmax_ce_labels",
    "softmax_ce_soft",
    "spread",
]


def handles(x) -> bool:
    """Float32 or float64 C-contiguous logits with at least one class."""
    return (
        x.dtype in (np.float32, np.float64)
        and x.ndim >= 1
        and x.shape[-1] > 0
        and x.flags.c_contiguous
    )
