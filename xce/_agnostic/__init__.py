"""The pure array-API layer: every function takes ``xp`` and imports no backend.

The public docstrings live on the functions in :mod:`xce`; these implementations assume their
inputs were validated there (dtype, shapes, device, safe labels).
"""

from ._binary import probs_bce, sigmoid_bce
from ._blocks import (
    compute_dtype,
    entropy,
    kl_divergence,
    log_sigmoid,
    log_softmax,
    logsumexp,
    sigmoid,
    softmax,
)
from ._categorical import probs_ce_labels, probs_ce_soft, softmax_ce_labels, softmax_ce_soft
from ._reduce import count, gradient_scale, mask_gradient, reduce_loss
from ._rows import in_row_blocks

__all__ = [
    "compute_dtype",
    "count",
    "entropy",
    "gradient_scale",
    "in_row_blocks",
    "kl_divergence",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "mask_gradient",
    "probs_bce",
    "probs_ce_labels",
    "probs_ce_soft",
    "reduce_loss",
    "sigmoid",
    "sigmoid_bce",
    "softmax",
    "softmax_ce_labels",
    "softmax_ce_soft",
]
