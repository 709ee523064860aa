"""xce: the cross-entropy family of losses, written once against the Python array API.

Any array type in (NumPy, PyTorch, CuPy, JAX, Dask, array-api-strict), the same namespace,
device and dtype out; one numerics policy on every backend; clear errors instead of wrong
numbers; and the analytic gradient in the same pass with :func:`value_and_grad`.
"""

from ._binary import binary_cross_entropy
from ._binary_focal import binary_focal_cross_entropy
from ._blocks import entropy, kl_divergence, log_sigmoid, log_softmax, logsumexp, sigmoid, softmax
from ._categorical import categorical_cross_entropy
from ._categorical_focal import categorical_focal_cross_entropy
from ._ctc import ctc_loss
from ._grad import value_and_grad
from ._linear import linear_cross_entropy
from ._parts import LossParts
from ._poly1 import poly1_cross_entropy
from ._sparse import sparse_categorical_cross_entropy

__version__ = "0.1.0"

__all__ = [
    "LossParts",
    "binary_cross_entropy",
    "binary_focal_cross_entropy",
    "categorical_cross_entropy",
    "categorical_focal_cross_entropy",
    "ctc_loss",
    "entropy",
    "kl_divergence",
    "linear_cross_entropy",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "poly1_cross_entropy",
    "sigmoid",
    "softmax",
    "sparse_categorical_cross_entropy",
    "value_and_grad",
]
