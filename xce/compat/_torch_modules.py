"""PyTorch's loss modules (``torch.nn.CrossEntropyLoss``, ...) on any array type.

Plain Python classes with the constructor arguments of their ``torch.nn`` namesakes, whose
``__call__(input, target)`` (also ``forward``) is the function twin of
:mod:`xce.compat.torch` with the stored options. They import no framework: ``weight`` and
``pos_weight`` are arrays of the library the inputs will come from (stored as given, not
registered as buffers; there is no ``.to()``, ``state_dict`` or ``parameters()``).

The deprecated ``size_average`` and ``reduce`` arguments are accepted as PyTorch accepts
them: either one given overrides ``reduction`` by PyTorch's legacy rule, with its warning.
"""

from __future__ import annotations

import warnings

from .._types import Array
from ._docstrings import with_parameters

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "KLDivLoss",
    "NLLLoss",
    "PoissonNLLLoss",
]

# The constructors' and forward's arguments, as the Parameters sections give them.
TORCH_OPTIONS = {
    "weight": ("array", "Class weights (shape (C,)), or element weights broadcast to ``input``."),
    "pos_weight": ("array", "The positive term's weight, broadcast to ``input``."),
    "ignore_index": ("int", "A class index whose targets are excluded."),
    "label_smoothing": ("float", "Smoothing ε in [0, 1], PyTorch's formula."),
    "log_target": ("bool", "Whether ``target`` holds log-probabilities."),
    "log_input": ("bool", "Whether ``input`` is the log of the rate."),
    "full": ("bool", "Whether to add the Stirling approximation of log(target!)."),
    "eps": ("float", "Added to ``input`` before the log when ``log_input=False``."),
    "size_average": ("bool", "Deprecated: overrides ``reduction`` by PyTorch's legacy rule."),
    "reduce": ("bool", "Deprecated: overrides ``reduction`` by PyTorch's legacy rule."),
    "reduction": (
        "str",
        'PyTorch\'s reduction: "mean", "sum" or "none" (``KLDivLoss``: also\n"batchmean").',
    ),
    "input": ("array", "The predictions, as the function twin takes them."),
    "target": ("array", "The targets, as the function twin takes them."),
}


def legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """PyTorch's ``_Reduction.legacy_get_string``: the deprecated pair as a ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    legacy = ("mean" if size_average else "sum") if reduce else "none"
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{legacy}' "
        "instead.",
        UserWarning,
        stacklevel=4,  # the caller of the class's constructor
    )
    return legacy


class _Loss:
    """The shared part of ``torch.nn``'s losses: the reduction, ``forward`` = ``__call__``."""

    def __init__(self, size_average: bool | None, reduce: bool | None, reduction: str) -> None:
        self.reduction = legacy_reduction(size_average, reduce, reduction)

    def __call__(self, input: Array, target: Array) -> Array:
        return self.forward(input, target)

    def forward(self, input: Array, target: Array) -> Array:
        """The loss of ``input`` against ``target`` with the stored options."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@with_parameters(TORCH_OPTIONS)
class CrossEntropyLoss(_Loss):
    """Twin of ``torch.nn.CrossEntropyLoss``: :func:`~xce.compat.torch.cross_entropy`.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat.torch import CrossEntropyLoss
    >>> logits = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    >>> round(float(CrossEntropyLoss(label_smoothing=0.1)(logits, np.array([0, 2]))), 4)
    0.3639
    """

    def __init__(self, weight: Array | None = None, size_average: bool | None = None,
                 ignore_index: int = -100, reduce: bool | None = None,
                 reduction: str = "mean", label_smoothing: float = 0.0) -> None:  # fmt: skip
        super().__init__(size_average, reduce, reduction)
        self.weight, self.ignore_index, self.label_smoothing = weight, ignore_index, label_smoothing

    @with_parameters(TORCH_OPTIONS)
    def forward(self, input: Array, target: Array) -> Array:
        """Compute ``cross_entropy(input, target, ...)`` with the stored options.

        Returns
        -------
        array
            The loss, reduced by ``reduction``.
        """
        return functions.cross_entropy(
            input, target, weight=self.weight, ignore_index=self.ignore_index,
            reduction=self.reduction, label_smoothing=self.label_smoothing,
        )  # fmt: skip


@with_parameters(TORCH_OPTIONS)
class NLLLoss(_Loss):
    """Twin of ``torch.nn.NLLLoss``: :func:`~xce.compat.torch.nll_loss`.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat.torch import NLLLoss
    >>> log_probs = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]))
    >>> round(float(NLLLoss(ignore_index=1)(log_probs, np.array([0, 1]))), 4)
    0.3567
    """

    def __init__(self, weight: Array | None = None, size_average: bool | None = None,
                 ignore_index: int = -100, reduce: bool | None = None,
                 reduction: str = "mean") -> None:  # fmt: skip
        super().__init__(size_average, reduce, reduction)
        self.weight, self.ignore_index = weight, ignore_index

    @with_parameters(TORCH_OPTIONS)
    def forward(self, input: Array, target: Array) -> Array:
        """Compute ``nll_loss(input, target, ...)`` with the stored options.

        Returns
        -------
        array
            The loss, reduced by ``reduction``.
        """
        return functions.nll_loss(
            input, target, weight=self.weight, ignore_index=self.ignore_index,
            reduction=self.reduction,
        )  # fmt: skip


@with_parameters(TORCH_OPTIONS)
class BCELoss(_Loss):
    """Twin of ``torch.nn.BCELoss``: :func:`~xce.compat.torch.binary_cross_entropy`.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat.torch import BCELoss
    >>> round(float(BCELoss()(np.array([0.8, 0.3]), np.array([1.0, 0.0]))), 4)
    0.2899
    """

    def __init__(self, weight: Array | None = None, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean") -> None:  # fmt: skip
        super().__init__(size_average, reduce, reduction)
        self.weight = weight

    @with_parameters(TORCH_OPTIONS)
    def forward(self, input: Array, target: Array) -> Array:
        """Compute ``binary_cross_entropy(input, target, ...)`` with the stored options.

        Returns
        -------
        array
            The loss, reduced by ``reduction``.
        """
        return functions.binary_cross_entropy(input, target, weight=self.weight,
                                              reduction=self.reduction)  # fmt: skip


@with_parameters(TORCH_OPTIONS)
class BCEWithLogitsLoss(_Loss):
    """Twin of ``torch.nn.BCEWithLogitsLoss``, on logits.

    :func:`xce.compat.torch.binary_cross_entropy_with_logits` with the stored options.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat.torch import BCEWithLogitsLoss
    >>> loss = BCEWithLogitsLoss(pos_weight=np.array([2.0]))
    >>> round(float(loss(np.array([1.5, -0.5]), np.array([1.0, 0.0]))), 4)
    0.4385
    """

    def __init__(self, weight: Array | None = None, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean",
                 pos_weight: Array | None = None) -> None:  # fmt: skip
        super().__init__(size_average, reduce, reduction)
        self.weight, self.pos_weight = weight, pos_weight

    @with_parameters(TORCH_OPTIONS)
    def forward(self, input: Array, target: Array) -> Array:
        """Compute ``binary_cross_entropy_with_logits(input, target, ...)`` with the stored options.

        Returns
        -------
        array
            The loss, reduced by ``reduction``.
        """
        return functions.binary_cross_entropy_with_logits(
            input, target, weight=self.weight, reduction=self.reduction, pos_weight=self.pos_weight
        )


@with_parameters(TORCH_OPTIONS)
class KLDivLoss(_Loss):
    """Twin of ``torch.nn.KLDivLoss``: :func:`~xce.compat.torch.kl_div`.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat.torch import KLDivLoss
    >>> log_q = np.log(np.array([[0.4, 0.6], [0.9, 0.1]]))
    >>> p = np.array([[0.2, 0.8], [0.5, 0.5]])
    >>> round(float(KLDivLoss(reduction="batchmean")(log_q, p)), 4)
    0.3012
    """

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean", log_target: bool = False) -> None:  # fmt: skip
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    @with_parameters(TORCH_OPTIONS)
    def forward(self, input: Array, target: Array) -> Array:
        """Compute ``kl_div(input, target, ...)`` with the stored options.

        Returns
        -------
        array
            The loss, reduced by ``reduction``.
        """
        return functions.kl_div(input, target, reduction=self.reduction,
                                log_target=self.log_target)  # fmt: skip


@with_parameters(TORCH_OPTIONS)
class PoissonNLLLoss(_Loss):
    """Twin of ``torch.nn.PoissonNLLLoss``: :func:`~xce.compat.torch.poisson_nll_loss`.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat.torch import PoissonNLLLoss
    >>> log_rate, counts = np.array([0.5, 1.0, -0.2]), np.array([1.0, 3.0, 0.0])
    >>> round(float(PoissonNLLLoss()(log_rate, counts)), 4)
    0.5619
    """

    def __init__(self, log_input: bool = True, full: bool = False,
                 size_average: bool | None = None, eps: float = 1e-8,
                 reduce: bool | None = None, reduction: str = "mean") -> None:  # fmt: skip
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    @with_parameters(TORCH_OPTIONS)
    def forward(self, input: Array, target: Array) -> Array:
        """Compute ``poisson_nll_loss(input, target, ...)`` with the stored options.

        Returns
        -------
        array
            The loss, reduced by ``reduction``.
        """
        return functions.poisson_nll_loss(input, target, log_input=self.log_input,
                                          full=self.full, eps=self.eps,
                                          reduction=self.reduction)  # fmt: skip


# Last: the function module imports these classes, so whichever of the two is imported first
# finds the other complete enough (the doctest run imports this one first).
from . import torch as functions  # noqa: E402
