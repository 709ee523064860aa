"""PyTorch fast path: the fast-path interface (:class:`xce._fast._interface.FastPath`) for
``torch.Tensor``, split by concern:

- ``_chunks``: the row chunks the CPU kernels walk, and huge pages for what they return;
- ``_lanes``: the plain lanes, option-free calls on CPU logits in a few torch calls;
- ``_host``: small tensors outside any graph through NumPy views (checks, and the short
  paths of ``xce._fast._numpy._small``);
- ``_kernels``: the native kernels for the three losses on logits, torch's own calls over
  row chunks, handing the rows torch's rules would get wrong to the generic kernel.

This package is imported only once a torch tensor has been seen (see ``xce._fast``), so torch
is loaded by then: its modules import torch at the top, as an import inside each function
would cost a noticeable share of a small call.
"""

from __future__ import annotations

from ._kernels import sigmoid_bce, softmax_ce_labels, softmax_ce_soft
from ._lanes import generic_small, plain_binary, plain_probabilities, plain_soft, plain_sparse

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
]


def handles(x) -> bool:
    """Any tensor with a class axis: the kernels pick their own way on GPUs and under autograd."""
    return x.ndim >= 1
