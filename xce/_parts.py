"""``LossParts``: a softmax cross entropy's loss with its terms, for logging without a second
pass (``return_parts=True``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

__all__ = ["LossParts", "document_logit_options"]

F = TypeVar("F", bound=Callable[..., Any])

# The softmax cross entropies' logit options, as their docstrings give them; {omega} is the
# loss's class weight of a sample, the ω of its "mean" denominator.
_LOGIT_OPTIONS = """softcap : float or 0-d array, optional
        The cap c > 0, finite: logit soft-capping (logits only). Every term (label smoothing,
        weights, z-loss) is computed from x̃ = c·tanh(x / c) instead of x, and the gradient
        goes back through the cap: ∂x̃/∂x = 1 - tanh²(x / c). Gemma 2 uses 30. ``None``: off.
    z_loss : float or 0-d array, default 0.0
        The weight λ ≥ 0, finite (logits only): adds λ·ωᵢ·(log Zᵢ)² to each sample's loss, with
        log Zᵢ = logsumexp of the (capped) logits over the classes and ωᵢ the sample's class
        weight, as in the ``"mean"`` denominator: {omega} (1 without class
        weights). The sample weight applies through the reduction as for the cross entropy,
        so ``"mean"`` is Σ sᵢ·ℓᵢ / Σ sᵢ·ωᵢ: without class weights, mean(CE + λ·log²Z) over
        the included samples. Its gradient is 2λ·ωᵢ·log Zᵢ·softmax(x̃). PaLM uses 1e-4.
    return_parts : bool, default False
        Return a :class:`xce.LossParts` ``(loss, cross_entropy, z_loss, log_z)`` instead of
        the loss: the two terms reduced like the loss (``loss = cross_entropy + z_loss``)
        and log Z per sample, shape ``S``, excluded samples included (logits only). With
        :func:`xce.value_and_grad` the pair is ``(LossParts, ∂loss/∂y_pred)``.
    class_shard : xce.distributed.ClassShard, optional
        ``y_pred`` holds this member's classes [start, start + C_l) of a group's C (logits
        only; ``y_true`` the global labels, or the soft targets' matching slice;
        ``class_weight`` the member's slice): every member gets the loss over all C classes,
        and the gradient of its own logits, from per-row all-reduces (see
        :mod:`xce.distributed`). Made by :func:`xce.distributed.torch_class_shard` or
        :func:`xce.distributed.jax_class_shard`."""


def document_logit_options(*, omega: str) -> Callable[[F], F]:
    """Put the logit options' entries in place of ``%LOGIT_OPTIONS%`` in a loss's docstring
    (before :func:`xce._docs.document` completes it)."""

    def decorate(fn: F) -> F:
        text = _LOGIT_OPTIONS.format(omega=omega)
        fn.__doc__ = (fn.__doc__ or "").replace("%LOGIT_OPTIONS%", text)
        return fn

    return decorate


class LossParts(NamedTuple):
    """What ``return_parts=True`` returns: the loss, its two terms and the per-sample log Z.

    ``loss`` is what the call returns without the flag. ``cross_entropy`` and ``z_loss`` are
    the cross-entropy and z-loss terms, reduced the same way (weighted, masked, divided by the
    same count for ``"mean"``), so that ``loss = cross_entropy + z_loss`` up to rounding; for
    ``"sum_and_count"`` each of the three is a ``(total, count)`` pair with the same count.
    ``log_z`` is log Z = logsumexp of the (soft-capped) logits over the class axis, shape S
    (the per-sample loss shape), for *every* sample: the excluded ones (``ignore_index``,
    ``where``) too, for logging. Under an autodiff trace (JAX, torch tensors that require
    grad) the excluded rows' logits are zeroed before the math, so their log Z is log C there.
    Entries that the loss marks NaN (bad input on unchecked data, an out-of-range array
    hyperparameter) are NaN in ``log_z`` too.

    Parameters
    ----------
    loss : array or tuple of two arrays
        The loss, as the call returns it without ``return_parts``.
    cross_entropy : array or tuple of two arrays
        The cross-entropy term, reduced like ``loss``.
    z_loss : array or tuple of two arrays
        The z-loss term, reduced like ``loss``.
    log_z : array, shape S
        The log Z of every sample, excluded ones included.

    Examples
    --------
    >>> import numpy as np, xce
    >>> x = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    >>> parts = xce.sparse_categorical_cross_entropy(
    ...     np.array([1, 2]), x, from_logits=True, z_loss=1e-2, return_parts=True
    ... )
    >>> bool(np.isclose(parts.loss, parts.cross_entropy + parts.z_loss))
    True
    >>> parts.log_z.shape
    (2,)
    """

    loss: Any
    cross_entropy: Any
    z_loss: Any
    log_z: Any
