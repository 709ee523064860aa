"""PyTorch's ``torch.nn.functional`` cross-entropy family (and its ``torch.nn`` classes) on
any array type: each function has the signature and the numbers of its namesake, computed by
the xce core. The class dimension is 1 (``(N, C)``, ``(N, C, d1, ..., dk)``), or 0 for an
unbatched ``(C,)`` input; integer targets are class indices, floating ones probabilities.
``"mean"`` with indices is Σ w[yᵢ]·ℓᵢ / Σ w[yᵢ] over the targets not ``ignore_index`` (NaN
over nothing), with probabilities it divides by N·d1···dk; label smoothing is PyTorch's.
``binary_cross_entropy`` clamps each log at -100; ``weight``/``pos_weight`` broadcast as in
PyTorch. ``kl_div`` is target·(log target - input), ``"batchmean"`` divides by N and
``"mean"`` warns as PyTorch does. As in PyTorch, one class is accepted and ``ignore_index``
≥ 0 with probability targets is an error. All run under ``torch.autograd``, ``jax.jit`` and
``jax.grad``. The classes (``CrossEntropyLoss``, ``NLLLoss``, ...) call the functions with
their stored options.

Deliberate divergences (where PyTorch raises an opaque error or returns a wrong number):

- A class index outside [0, C) other than ``ignore_index``: ``ValueError`` naming the target
  on eager host data (PyTorch: ``IndexError`` on CPU, a device-side assert on CUDA); on
  unchecked data (JAX, Dask, CUDA) a NaN in that entry, never a wrapped or clamped index.
- Binary targets or probabilities outside [0, 1], negative KL targets and negative rates for
  ``poisson_nll_loss(log_input=False)``: ``ValueError`` on eager host data (PyTorch raises
  only for ``binary_cross_entropy``). Probability targets of ``cross_entropy`` are taken as
  given, as in PyTorch.
- A zero target where the input is -inf contributes 0 to ``kl_div`` (PyTorch: NaN); likewise
  a zero probability target on a -inf logit in ``cross_entropy``.
- ``kl_div`` and ``poisson_nll_loss`` want ``input`` and ``target`` of the same shape (no
  broadcasting); index targets may be any integer dtype; the functions (not the classes) have
  no ``size_average`` and ``reduce``. float16 / bfloat16 inputs are computed in float32.
- ``ctc_loss``: a target outside [0, C) or equal to the blank within its length is an error
  (NaN row where unchecked); PyTorch reads out of bounds or counts the blank as a label.
"""

from __future__ import annotations

import math
from typing import cast

import xce

from .. import _agnostic as agnostic
from .._array_api import device, index_dtype
from .._pipeline import Prepared, class_problem, classes_last, evaluate
from .._table import LossInfo
from .._types import Array, Reduction
from .._validation import (
    check_floating,
    check_label_dtype,
    check_labels,
    check_unit_interval,
    class_weight_array,
)
from ._common import (
    checked,
    divide_or_nan,
    namespace_of,
    one_class_logits,
    one_class_padded,
)
from ._ctc_torch import CTCLoss, ctc_loss
from ._torch_linear import linear_cross_entropy
from ._torch_modules import (  # the classes; they call the functions below when called
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    KLDivLoss,
    NLLLoss,
    PoissonNLLLoss,
)
from ._torch_pointwise import kl_div, poisson_nll_loss
from ._torch_rules import (
    check_reduction,
    class_axis,
    elementwise_reduction,
    mean_over,
    same_shape,
    torch_names,
    weight_like,
)

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CTCLoss",
    "CrossEntropyLoss",
    "KLDivLoss",
    "NLLLoss",
    "PoissonNLLLoss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "ctc_loss",
    "kl_div",
    "linear_cross_entropy",
    "nll_loss",
    "poisson_nll_loss",
]


@torch_names
def cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Array:
    """Twin of ``torch.nn.functional.cross_entropy``: softmax cross entropy on logits.

    Logits ``input`` of shape (C,), (N, C) or (N, C, d1, ..., dk), with class-index or
    class-probability targets.

    Native: ``xce.sparse_categorical_cross_entropy(target, input, from_logits=True, axis=1,
    class_weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing)`` (whose
    mean over nothing is 0, not NaN), or ``xce.categorical_cross_entropy`` for probabilities.

    Parameters
    ----------
    input : array, shape (C,), (N, C) or (N, C, d1, ..., dk)
        Logits, classes on axis 1 (axis 0 for a single sample of shape (C,)).
    target : array
        Class indices, shape ``input.shape`` without the class axis, or class probabilities
        of ``input``'s shape.
    weight : array, shape (C,), optional
        Class weights.
    ignore_index : int, default -100
        A class index whose targets are excluded (class-index targets only).
    reduction : {"mean", "sum", "none"}, default "mean"
        PyTorch's reduction of the per-element losses.
    label_smoothing : float, default 0.0
        Smoothing ε in [0, 1], PyTorch's formula.

    Returns
    -------
    array
        0-d, or ``input``'s shape without the class axis for ``reduction="none"``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import torch as F
    >>> F.cross_entropy(np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]]), np.array([1, 2]))
    array(0.27964587)
    """
    xp = namespace_of(input=input, target=target, weight=weight)
    check_reduction(reduction)
    axis = class_axis(input)
    floating = xp.isdtype(target.dtype, "real floating")
    if floating and ignore_index >= 0:
        raise ValueError(
            f"ignore_index={ignore_index} is not supported for probability (floating) targets, "
            "as in PyTorch; ignore samples with a zero weight, or give class indices"
        )
    if input.shape[axis] == 1:  # one class: PyTorch returns 0 (the core refuses it)
        input, target, weight = _one_class(xp, input, target, weight, axis, ignore_index)
        label_smoothing = 0.0  # every smoothed term is 0 with one class
    if not floating:
        # reduction is one of REDUCTIONS (checked above)
        core_reduction = cast(Reduction, "sum_and_count" if reduction == "mean" else reduction)
        out = xce.sparse_categorical_cross_entropy(
            target, input, from_logits=True, axis=axis, ignore_index=ignore_index,
            class_weight=weight, label_smoothing=label_smoothing, reduction=core_reduction,
        )  # fmt: skip
        return divide_or_nan(xp, *out) if reduction == "mean" else out
    per_sample = xce.categorical_cross_entropy(
        target, input, from_logits=True, axis=axis, class_weight=weight,
        label_smoothing=label_smoothing, reduction="none", validate=False,  # any targets
    )  # fmt: skip
    if reduction == "none":
        return per_sample
    total = xp.sum(per_sample)
    # With probability targets PyTorch's mean divides by the number of samples, not Σ w.
    return total if reduction == "sum" else mean_over(xp, total, math.prod(per_sample.shape))


def _one_class(xp, input, target, weight, axis, ignore_index):
    """One class as two (see ``one_class_logits``); the pad class weighs 1."""
    if weight is not None:
        weight = one_class_padded(xp, xp.reshape(weight, (-1,)), 0, 1.0)
    return (*one_class_logits(xp, input, target, axis, ignore=ignore_index), weight)


def _nll_kernel(xp, x, labels, *, class_weight, with_grad, grad_scale=None):
    """-w[y]·x[y], gathered by index: NLL is a weighted pick, there is no log to take."""
    picked = agnostic.take_along_last_axis(xp, x, labels[..., None])[..., 0]
    if class_weight is not None:
        w_y = xp.reshape(xp.take(class_weight, xp.reshape(labels, (-1,))), labels.shape)
        picked = w_y * picked
    return -picked, None


# nll_loss runs through the core's pipeline with its own kernel (it is no row of the table
# of losses: it takes no softmax, so it is not a cross entropy of its own).
_NLL = LossInfo("nll_loss", __name__, "labels", _nll_kernel, _nll_kernel)


@torch_names
def nll_loss(
    input: Array,
    target: Array,
    weight: Array | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Array:
    """Twin of ``torch.nn.functional.nll_loss``: the negative log-likelihood of the targets.

    -weight[target]·input[target] on log-probabilities ``input`` of shape (C,), (N, C) or
    (N, C, d1, ..., dk); no softmax is taken.

    ``"mean"`` divides by Σ weight[target] over the non-ignored targets (NaN when none is
    left). Native, for normalised log-probabilities:
    ``xce.sparse_categorical_cross_entropy(target, input, from_logits=True, axis=1, ...)``.

    Parameters
    ----------
    input : array, shape (C,), (N, C) or (N, C, d1, ..., dk)
        Log-probabilities, classes on axis 1 (axis 0 for a single sample).
    target : int array
        Class indices, shape ``input.shape`` without the class axis.
    weight : array, shape (C,), optional
        Class weights.
    ignore_index : int, default -100
        A class index whose targets are excluded.
    reduction : {"mean", "sum", "none"}, default "mean"
        PyTorch's reduction of the per-element losses.

    Returns
    -------
    array
        0-d, or ``input``'s shape without the class axis for ``reduction="none"``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import torch as F
    >>> F.nll_loss(np.log(np.array([[0.2, 0.8], [0.5, 0.5]])), np.array([1, -100]))
    array(0.22314355)
    """
    xp = namespace_of(input=input, target=target, weight=weight)
    check_reduction(reduction)
    check_floating(xp, input, "input")
    check_label_dtype(xp, target, "target")
    if input.ndim and input.shape[class_axis(input)] == 1:  # one class: -input[0]
        input, target, weight = _one_class(xp, input, target, weight, class_axis(input),
                                           ignore_index)  # fmt: skip
    axis, n_classes, batch = class_problem(input, class_axis(input), "nll_loss")
    if tuple(target.shape) != batch:
        raise ValueError(
            f"target has shape {tuple(target.shape)} but input of shape {tuple(input.shape)} "
            f"needs class indices of shape {batch}"
        )
    dtype = agnostic.compute_dtype(xp, input.dtype)
    cw = class_weight_array(xp, weight, n_classes, dtype)
    labels = xp.astype(target, index_dtype(xp, device(target)), copy=False)
    valid = labels != ignore_index
    bad = None
    if checked(target, input):
        check_labels(xp, labels, n_classes, ignore_index=ignore_index, where=None)
        labels = xp.where(valid, labels, xp.zeros_like(labels))
    else:  # an out-of-range index poisons its entry, never wraps
        in_range = (labels >= 0) & (labels < n_classes)
        bad = ~in_range & valid
        labels = xp.where(in_range, labels, xp.zeros_like(labels))
    omega = None if cw is None else xp.reshape(xp.take(cw, xp.reshape(labels, (-1,))), batch)
    inputs = Prepared(
        xp, classes_last(xp, input, axis, dtype), labels, batch, dtype, input.dtype,
        device(input), from_logits=True, eps=0.0, class_axis=axis, n_classes=n_classes,
        valid=valid, omega=omega, bad=bad, class_weight=cw,
    )  # fmt: skip
    core_reduction = "sum_and_count" if reduction == "mean" else reduction
    value, _ = evaluate(
        _NLL, inputs, options={"class_weight": cw}, reduction=core_reduction, with_grad=False
    )
    return divide_or_nan(xp, *value) if reduction == "mean" else value


@torch_names
def binary_cross_entropy(
    input: Array, target: Array, weight: float | Array | None = None, reduction: str = "mean"
) -> Array:
    """Twin of ``torch.nn.functional.binary_cross_entropy``, on probabilities.

    -(t·log p + (1-t)·log(1-p)) with each log clamped at -100, element-wise, times
    ``weight`` (broadcast to ``input``).

    Native: ``xce.binary_cross_entropy(target, input, sample_weight=...)``, which clips p to
    [eps, 1 - eps] instead of clamping the log.

    Parameters
    ----------
    input : array
        Probabilities in [0, 1].
    target : array, shape like ``input``
        Targets in [0, 1].
    weight : float or array, optional
        Weights broadcast to ``input``'s shape.
    reduction : {"mean", "sum", "none"}, default "mean"
        PyTorch's reduction of the per-element losses.

    Returns
    -------
    array
        0-d, or ``input``'s shape for ``reduction="none"``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import torch as F
    >>> F.binary_cross_entropy(np.array([0.0, 0.5, 1.0]), np.array([1.0, 1.0, 1.0]),
    ...                        reduction="none")
    array([100.        ,   0.69314718,   0.        ])
    """
    xp = namespace_of(input=input, target=target, weight=weight)
    check_reduction(reduction)
    check_floating(xp, input, "input")
    same_shape(input, target)
    if checked(input, target):
        check_unit_interval(xp, target, "target", " (binary targets are 0/1 or in between)")
    # The two logs separately (xce's loss with targets 1 and 0, unclipped), so that each can
    # be clamped at -100 as PyTorch does; the first call checks that input lies in [0, 1].
    neg_log_p = xce.binary_cross_entropy(
        xp.ones_like(input), input, eps=0.0, reduction="none", validate=checked(input, target)
    )
    neg_log_not_p = xce.binary_cross_entropy(
        xp.zeros_like(input), input, eps=0.0, reduction="none", validate=False
    )
    t = xp.astype(target, input.dtype)
    loss = t * xp.clip(neg_log_p, max=100.0) + (1 - t) * xp.clip(neg_log_not_p, max=100.0)
    w = weight_like(xp, weight, input)
    return elementwise_reduction(xp, loss if w is None else loss * w, reduction)


@torch_names
def binary_cross_entropy_with_logits(
    input: Array,
    target: Array,
    weight: float | Array | None = None,
    reduction: str = "mean",
    pos_weight: float | Array | None = None,
) -> Array:
    """Twin of ``torch.nn.functional.binary_cross_entropy_with_logits``.

    The stable sigmoid cross entropy, element-wise, with ``weight`` and ``pos_weight``
    broadcast against ``input``.

    Native: ``xce.binary_cross_entropy(target, input, from_logits=True,
    pos_weight=pos_weight, sample_weight=weight)`` (``pos_weight`` of shape (C,), the last
    axis; ``sample_weight`` by the prefix rule, and ``"mean"`` divides by Σ weight).

    Parameters
    ----------
    input : array
        Logits.
    target : array, shape like ``input``
        Targets in [0, 1].
    weight : float or array, optional
        Weights broadcast to ``input``'s shape.
    reduction : {"mean", "sum", "none"}, default "mean"
        PyTorch's reduction of the per-element losses.
    pos_weight : float or array, optional
        The positive term's weight, broadcast to ``input``'s shape.

    Returns
    -------
    array
        0-d, or ``input``'s shape for ``reduction="none"``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import torch as F
    >>> F.binary_cross_entropy_with_logits(np.array([2.0, -1.0]), np.array([1.0, 0.0]),
    ...                                    pos_weight=np.array(3.0))
    array(0.34702286)
    """
    xp = namespace_of(input=input, target=target, weight=weight, pos_weight=pos_weight)
    check_reduction(reduction)
    check_floating(xp, input, "input")
    same_shape(input, target)
    shape = tuple(input.shape)
    # Element-wise loss: flattening lets every weight shape PyTorch broadcasts reach the
    # core as one weight per element.
    flat = (-1,)
    w = weight_like(xp, weight, input)
    pw = weight_like(xp, pos_weight, input, "pos_weight")
    loss = xce.binary_cross_entropy(
        xp.reshape(target, flat), xp.reshape(input, flat), from_logits=True,
        pos_weight=None if pw is None else xp.reshape(pw, flat),
        sample_weight=None if w is None else xp.reshape(w, flat),
        reduction="none" if reduction == "none" else "sum", validate=checked(input, target),
    )  # fmt: skip
    if reduction == "none":
        return xp.reshape(loss, shape)
    return loss if reduction == "sum" else mean_over(xp, loss, math.prod(shape))
