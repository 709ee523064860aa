"""PyTorch's element-wise relatives of cross entropy, ``kl_div`` and ``poisson_nll_loss``,
for :mod:`xce.compat.torch` (which re-exports them; its module docstring lists how they
depart from PyTorch)."""

from __future__ import annotations

import math
import warnings

from .. import _agnostic as agnostic
from .._types import Array
from .._validation import check_floating
from ._common import checked, ensure, namespace_of
from ._torch_rules import (
    check_reduction,
    elementwise_reduction,
    mean_over,
    same_shape,
    torch_names,
)

__all__ = ["kl_div", "poisson_nll_loss"]

_KL_MEAN_WARNING = (
    "reduction: 'mean' divides the total loss by both the batch size and the support size. "
    "'batchmean' divides only by the batch size, and aligns with the KL div math definition. "
    "'mean' will be changed to behave the same as 'batchmean' in the next major release."
)


@torch_names
def kl_div(input: Array, target: Array, reduction: str = "mean", log_target: bool = False) -> Array:
    """Twin of ``torch.nn.functional.kl_div``: the KL divergence on log-probabilities.

    target·(log target - input) element-wise, ``input`` being log-probabilities (with
    ``log_target``: exp(target)·(target - input)).

    ``"batchmean"`` divides the sum by N = ``input.shape[0]`` (the KL divergence per sample);
    ``"mean"`` divides by the number of elements and warns, as PyTorch does. Native, for
    probabilities p and q: ``xce.kl_divergence(p, q)``.

    Parameters
    ----------
    input : array
        Log-probabilities.
    target : array, shape like ``input``
        Probabilities, or log-probabilities with ``log_target=True``.
    reduction : {"mean", "batchmean", "sum", "none"}, default "mean"
        PyTorch's reduction of the per-element terms.
    log_target : bool, default False
        Whether ``target`` holds log-probabilities.

    Returns
    -------
    array
        0-d, or ``input``'s shape for ``reduction="none"``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import torch as F
    >>> F.kl_div(np.log(np.array([[0.9, 0.1]])), np.array([[0.5, 0.5]]), reduction="batchmean")
    array(0.51082562)
    """
    xp = namespace_of(input=input, target=target)
    check_reduction(reduction, ("none", "batchmean", "sum", "mean"))
    check_floating(xp, input, "input")
    same_shape(input, target)
    t = xp.astype(target, input.dtype)
    if log_target:
        weight = xp.exp(t)
        # exp(-inf)·(-inf - input) is 0, not NaN: a class with no target mass adds nothing.
        diff = xp.where(weight == 0, xp.zeros_like(t), t - input)
        loss = weight * diff
    else:
        if checked(input, target):
            ensure(xp, ~(t >= 0), "target holds negative or NaN probabilities")
        loss = agnostic.xlogy_zero(xp, t, t) - t * xp.where(t == 0, xp.zeros_like(input), input)
    if reduction == "mean":
        warnings.warn(_KL_MEAN_WARNING, UserWarning, stacklevel=2)
    if reduction != "batchmean":
        return elementwise_reduction(xp, loss, reduction)
    total = xp.sum(loss)
    return total if input.ndim == 0 else mean_over(xp, total, input.shape[0])


@torch_names
def poisson_nll_loss(
    input: Array,
    target: Array,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> Array:
    """Twin of ``torch.nn.functional.poisson_nll_loss``: the Poisson negative log-likelihood.

    exp(input) - target·input (``log_input``), or input - target·log(input + eps); with
    ``full`` the Stirling term t·log t - t + ½·log(2πt) is added where t > 1.

    Poisson is not a cross entropy and has no native xce loss; this is its formula.

    Parameters
    ----------
    input : array
        The predicted rate: its log with ``log_input=True``, else the rate itself.
    target : array, shape like ``input``
        Observed counts.
    log_input : bool, default True
        Whether ``input`` is the log of the rate.
    full : bool, default False
        Whether to add the Stirling approximation of log(target!).
    eps : float, default 1e-8
        Added to ``input`` before the log when ``log_input=False``.
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
    >>> F.poisson_nll_loss(np.array([0.5, 2.0]), np.array([3.0, 0.5]), full=True,
    ...                    reduction="none")
    array([1.91280281, 6.3890561 ])
    """
    xp = namespace_of(input=input, target=target)
    check_reduction(reduction)
    check_floating(xp, input, "input")
    same_shape(input, target)
    t = xp.astype(target, input.dtype)
    if log_input:
        loss = xp.exp(input) - t * input
    else:
        if checked(input, target):
            ensure(xp, ~(input >= 0), "input holds negative or NaN rates (log_input=False)")
        loss = input - t * xp.log(input + eps)
    if full:
        large = t > 1
        safe = xp.where(large, t, xp.ones_like(t))
        stirling = safe * xp.log(safe) - safe + 0.5 * xp.log(2 * math.pi * safe)
        loss = loss + xp.where(large, stirling, xp.zeros_like(stirling))
    return elementwise_reduction(xp, loss, reduction)
