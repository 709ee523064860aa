"""Framework-exact twins of the frameworks' cross-entropy functions, on any array type.

``xce.compat.<framework>`` keeps each framework's names, argument order, clipping epsilon,
label-smoothing formula, weighting and reduction rules, so that code written for it gets the
same numbers while its arrays move to NumPy, PyTorch, CuPy, JAX, Dask or array-api-strict.
Every function is a thin translation onto the xce core (no second implementation of the
cross entropy); each module's docstring lists where it deliberately differs from the original
(a clear error, or a NaN row on lazy data, where the original returns a wrong number).

=================================  ===========================================================
module                             twins of
=================================  ===========================================================
:mod:`xce.compat.keras`            ``keras.losses`` (Keras 3): binary / categorical / sparse
                                   categorical, the focal losses, KL divergence, Poisson,
                                   CTC; functions and classes (``BinaryCrossentropy``, ...)
:mod:`xce.compat.torch`            ``torch.nn.functional``: ``cross_entropy``, ``nll_loss``,
                                   ``binary_cross_entropy[_with_logits]``, ``kl_div``,
                                   ``poisson_nll_loss``, ``ctc_loss``,
                                   ``linear_cross_entropy``; and ``torch.nn``'s classes
                                   (``CrossEntropyLoss``, ``NLLLoss``, ``CTCLoss``, ...)
:mod:`xce.compat.tf`               ``tf.nn``: sigmoid / weighted / softmax / sparse softmax
                                   cross entropy with logits; ``ctc_loss`` (dense labels)
:mod:`xce.compat.optax`            ``optax.losses``: softmax CE (soft, integer, safe),
                                   sigmoid BCE, sigmoid focal, poly loss, KL divergences;
                                   ``optax.ctc_loss``
:mod:`xce.compat.sklearn`          ``sklearn.metrics.log_loss``
=================================  ===========================================================

Importing ``xce.compat`` imports no framework: the modules are loaded on first use, and none
of them needs the framework it imitates.
"""

from __future__ import annotations

import importlib

__all__ = ["keras", "optax", "sklearn", "tf", "torch"]


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
