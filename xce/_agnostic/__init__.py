"""The pure array-API layer: every function takes ``xp`` and imports no backend.

The public docstrings live on the functions in :mod:`xce`; these implementations assume their
inputs were validated there (dtype, shapes, device, safe labels).
"""

from ._binary import probs_bce, sigmoid_bce
from ._blocks import (
    compute_dtype,
    entropy,
    finite_max,
    kl_divergence,
    log_or_neg_inf,
    log_sigmoid,
    log_softmax,
    logsumexp,
    sigmoid,
    softmax,
    xlogy_zero,
)
from ._categorical import (
    class_weight_of,
    probs_ce_labels,
    probs_ce_soft,
    softmax_ce_labels,
    softmax_ce_soft,
    take_along_last_axis,
)
from ._focal_poly1 import (
    probs_binary_focal,
    probs_focal_soft,
    probs_poly1_soft,
    sigmoid_binary_focal,
    softmax_focal_soft,
    softmax_poly1_soft,
)
from ._reduce import count, gradient_scale, mask_gradient, reduce_loss
from ._sharded import sharded_softmax_ce_labels, sharded_softmax_ce_soft

__all__ = [
    "class_weight_of",
    "compute_dtype",
    "count",
    "entropy",
    "finite_max",
    "gradient_scale",
    "kl_divergence",
    "log_or_neg_inf",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "mask_gradient",
    "probs_bce",
    "probs_binary_focal",
    "probs_ce_labels",
    "probs_ce_soft",
    "probs_focal_soft",
    "probs_poly1_soft",
    "reduce_loss",
    "sharded_softmax_ce_labels",
    "sharded_softmax_ce_soft",
    "sigmoid",
    "sigmoid_bce",
    "sigmoid_binary_focal",
    "softmax",
    "softmax_ce_labels",
    "softmax_ce_soft",
    "softmax_focal_soft",
    "softmax_poly1_soft",
    "take_along_last_axis",
    "xlogy_zero",
]
