"""PyTorch loss modules computed by xce: ``torch.nn.Module`` criteria for a training loop.

``BinaryCrossEntropy``, ``CategoricalCrossEntropy``, ``SparseCategoricalCrossEntropy``,
``BinaryFocalCrossEntropy``, ``CategoricalFocalCrossEntropy`` and ``Poly1CrossEntropy``
compute the xce function of the same name (``xce.binary_cross_entropy``, ...; the same
classes as :mod:`xce.keras`, which lists them); ``CTC`` computes :func:`xce.ctc_loss`, with
``forward(input, target, input_lengths=None, target_lengths=None, sample_weight=None)`` on
batch-major input (N, T, C) (``nn.CTCLoss`` takes (T, N, C)).

Each constructor takes the keyword options of its xce function (``from_logits``, ``axis``,
``label_smoothing``, ``class_weight``, ``pos_weight``, ``ignore_index``, ``softcap``,
``z_loss``, ``gamma``, ``alpha``, ``epsilon``, ``blank``, ``zero_infinity``, ``eps``,
``validate``, but not ``return_parts``, whose parts no framework reduces; the same defaults
and meaning, the math in the function's docstring) and ``reduction`` (``"mean"``, the
default, ``"sum"`` or ``"none"``, with xce's rules: the mean divides by Σ sᵢ·ωᵢ, as
``nn.CrossEntropyLoss`` does with a ``weight``). ``forward(input, target,
sample_weight=None)`` takes torch's order, predictions first.

Differences from torch's own losses to keep in mind: ``from_logits`` defaults to False, as in
every xce function (``nn.CrossEntropyLoss`` and ``nn.BCEWithLogitsLoss`` take logits: pass
``from_logits=True``); no ``ignore_index`` unless given (torch's default is -100); the class
axis is ``axis`` (-1 by default; torch's (N, C, d1, ...) layout is ``axis=1``); and a mean
over nothing is 0, not NaN.

Array options (``class_weight``, ``pos_weight``, a per-class ``alpha``; lists, NumPy arrays
or tensors) are registered as buffers: ``.to(device)``, ``.double()`` and ``state_dict()``
handle them like any module's (lists and integer arrays become tensors of torch's default
dtype; a given floating tensor is kept). Importing this module imports no torch: a class is
made (and torch imported) when it is first looked up.

Examples
--------
>>> import torch
>>> from xce.torch import SparseCategoricalCrossEntropy
>>> criterion = SparseCategoricalCrossEntropy(from_logits=True, class_weight=[1.0, 2.0, 1.0])
>>> criterion
SparseCategoricalCrossEntropy(reduction='mean', from_logits=True)
>>> logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]], requires_grad=True)
>>> loss = criterion(logits, torch.tensor([1, 2]))
>>> loss.backward()
>>> round(loss.item(), 4)
0.3412
>>> criterion.class_weight
tensor([1., 2., 1.])
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any

import xce

from .keras import LOSS_FUNCTIONS, class_docstring, loss_options, merged_options

# The class names are xce.keras's (a class is made on first lookup by __getattr__ below).
__all__ = sorted(LOSS_FUNCTIONS)

REDUCTIONS = ("mean", "sum", "none")
# Options that may be arrays: registered as buffers so that they follow the module's device.
BUFFERS = ("class_weight", "pos_weight", "alpha")


def _as_buffer(torch: Any, value: Any) -> Any:
    """An array option as a floating tensor (a given floating tensor is kept as it is)."""
    tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    if not torch.is_floating_point(tensor):
        tensor = tensor.to(torch.get_default_dtype())
    return tensor


@functools.cache
def _base() -> type:
    import torch

    class CrossEntropyLoss(torch.nn.Module):
        """The shared body of the xce torch losses (the subclasses name their function)."""

        function: Callable[..., Any]

        def __init__(self, *, reduction: str = "mean", **options: Any) -> None:
            super().__init__()
            class_name = type(self).__name__
            if reduction not in REDUCTIONS:
                raise ValueError(f"{class_name}: reduction={reduction!r} is not supported; use "
                                 f"one of {', '.join(map(repr, REDUCTIONS))}")  # fmt: skip
            self.reduction = reduction
            self.defaults = loss_options(self.function)
            self.options = merged_options(class_name, self.defaults, options)
            self.buffer_names = []
            for name in BUFFERS:
                value = self.options.get(name)
                if value is not None and not isinstance(value, numbers.Real):
                    self.register_buffer(name, _as_buffer(torch, self.options.pop(name)))
                    self.buffer_names.append(name)

        def forward(self, input: Any, target: Any, sample_weight: Any = None) -> Any:
            buffers = {name: getattr(self, name) for name in self.buffer_names}
            return self.function(target, input, sample_weight=sample_weight,
                                 reduction=self.reduction, **self.options, **buffers)  # fmt: skip

        def extra_repr(self) -> str:
            changed = [
                f"{name}={value!r}"
                for name, value in self.options.items()
                if value is not self.defaults[name] and value != self.defaults[name]
            ]
            return ", ".join([f"reduction={self.reduction!r}", *changed])

    return CrossEntropyLoss


@functools.cache
def _loss_class(class_name: str) -> type:
    extra = 'reduction : {"mean", "sum", "none"}, default "mean"\n    With xce\'s rules.\n'
    call = (
        "forward(input, target, sample_weight=None)\n    Predictions first (torch's order); "
        'the shapes of the xce function: a scalar, or per sample with reduction="none".'
    )
    body: dict[str, Any] = {"function": staticmethod(getattr(xce, LOSS_FUNCTIONS[class_name]))}
    if class_name == "CTC":
        call = (
            "forward(input, target, input_lengths=None, target_lengths=None, "
            "sample_weight=None)\n    Input (N, T, C) batch-major, as xce.ctc_loss (torch's "
            "nn.CTCLoss takes (T, N, C)); target (N, S); lengths default to T and S."
        )
        body["forward"] = _ctc_forward
    return type(class_name, (_base(),), {
        "__doc__": class_docstring(class_name, "PyTorch", call, extra),
        "__module__": __name__,
        "__qualname__": class_name,
        **body,
    })  # fmt: skip


def _ctc_forward(self: Any, input: Any, target: Any, input_lengths: Any = None,
                 target_lengths: Any = None, sample_weight: Any = None) -> Any:  # fmt: skip
    """Compute the CTC module's loss: torch's ``nn.CTCLoss`` arguments, xce's layout.

    Parameters
    ----------
    input : tensor, shape (N, T, C)
        Probabilities, or logits with ``from_logits=True``, batch-major.
    target : int tensor, shape (N, S)
        Right-padded label sequences.
    input_lengths, target_lengths : int tensor, shape (N,), optional
        Frames and labels per sequence (default: T and S).
    sample_weight : tensor or number, optional
        Weights of the per-sequence losses.

    Returns
    -------
    tensor
        0-d, or shape (N,) for ``reduction="none"``.
    """
    return self.function(target, input, input_lengths=input_lengths, label_lengths=target_lengths,
                         sample_weight=sample_weight, reduction=self.reduction,
                         **self.options)  # fmt: skip


# No module __dir__ listing the classes: tools that getattr every name dir() gives (pytest's
# collection does) would import torch.
def __getattr__(name: str) -> type:
    if name in __all__:
        return _loss_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
