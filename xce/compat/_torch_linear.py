"""PyTorch's ``torch.nn.functional.linear_cross_entropy`` on any array type, through the
chunked :func:`xce.linear_cross_entropy`.

As in PyTorch: ``input`` is ``(N, in_features)`` or unbatched ``(in_features,)``,
``linear_weight`` ``(C, in_features)``, ``target`` class indices ``(N,)`` or ``()``,
``linear_bias`` ``(C,)``, ``weight`` the class weights; ``ignore_index=None`` means -100;
``"mean"`` is Σ w[yᵢ]·ℓᵢ / Σ w[yᵢ] over the targets not ignored (NaN over nothing); label
smoothing is PyTorch's. It runs under ``torch.autograd`` (a second backward with
``retain_graph=True`` works), ``jax.jit`` and ``jax.grad``.

``options`` (a ``torch.nn.LinearCrossEntropyOptions``, or any object with its attributes)
sets the chunk: ``batch_chunk_size`` rows, or ``chunking_method="aspect_ratio[:k]"`` (each
chunk's logits the size of ``input``, divided by k, as PyTorch computes it); ``"auto"`` and
``None`` take xce's memory budget. Its precision settings (``acc_policy``, ``acc_dtype``) are
not needed: float16 / bfloat16 always accumulate in float32. Unlike PyTorch, the chunked
path is never left for the whole logits (label smoothing, class weights: all chunked) and
without ``options`` the logits are chunked too (the numbers are the same).

Deliberate divergences: probability targets (floating ``target`` of the logits' shape) and
K-dimensional weights ``(C, d1, ..., dk, in_features)`` are refused with ``ValueError`` (they
need the whole logits); a class index outside [0, C) other than ``ignore_index`` raises
``ValueError`` on eager host data (NaN where values are not read).
"""

from __future__ import annotations

import math
from typing import Any, cast

import xce

from .._types import Array, Reduction
from ._common import divide_or_nan, namespace_of
from ._torch_rules import check_reduction

__all__ = ["linear_cross_entropy"]


def _chunk_size(options: Any, n_rows: int, n_classes: int, in_features: int) -> int | None:
    """Rows per chunk from a ``LinearCrossEntropyOptions`` (None: xce's budget)."""
    if options is None:
        return None
    rows = getattr(options, "batch_chunk_size", None)
    method = getattr(options, "chunking_method", "auto")
    if rows is not None and method not in (None, "auto"):
        raise ValueError(
            f"options sets both batch_chunk_size={rows} and chunking_method={method!r}; "
            "set one (chunking_method=None to use batch_chunk_size)"
        )
    if rows is not None:
        return int(rows)
    if isinstance(method, str) and method.startswith("aspect_ratio"):
        _, _, divisor = method.partition(":")
        k = int(divisor) if divisor else 1
        if k < 1:
            raise ValueError(f"chunking_method={method!r}: the divisor must be ≥ 1")
        # PyTorch's rule: chunk logits as large as the input, in powers of two rows.
        ratio = math.ceil(n_rows / math.ceil(n_classes / max(in_features, 1)))
        return max(1, 2 ** math.ceil(math.log2(max(ratio, 1))) // k)
    return None


def linear_cross_entropy(
    input: Array,
    linear_weight: Array,
    target: Array,
    *,
    linear_bias: Array | None = None,
    weight: Array | None = None,
    reduction: str = "mean",
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    options: Any = None,
) -> Array:
    """Twin of ``torch.nn.functional.linear_cross_entropy``: the output layer fused with the loss.

    The cross entropy of ``input @ linear_weight.T + linear_bias`` against class indices,
    chunked: the logits are never held whole.

    Parameters
    ----------
    input : array, shape (N, in_features) or (in_features,)
        Hidden states.
    linear_weight : array, shape (C, in_features)
        The output layer's weight.
    target : int array, shape (N,) or ()
        Class indices.
    linear_bias : array, shape (C,), optional
        The output layer's bias.
    weight : array, shape (C,), optional
        Class weights.
    reduction : {"mean", "sum", "none"}, default "mean"
        PyTorch's reduction of the per-sample losses.
    ignore_index : int or None, default -100
        A class index whose targets are excluded.
    label_smoothing : float, default 0.0
        Smoothing ε in [0, 1], PyTorch's formula.
    options : LinearCrossEntropyOptions, optional
        PyTorch's chunking options; they set the rows per chunk.

    Returns
    -------
    array
        A 0-d loss, or shape ``(N,)`` (``()`` unbatched) for ``reduction="none"``; the
        namespace, device and dtype of ``input``.

    Raises
    ------
    ValueError
        ``input`` not 1-D or 2-D, ``linear_weight`` not ``(C, in_features)``, a bias, weight
        or target shape, probability targets, unknown ``reduction`` or chunking options; a
        class index outside [0, C) on eager host data.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat.torch import linear_cross_entropy
    >>> x = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> w = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    >>> round(float(linear_cross_entropy(x, w, np.array([0, 1]))), 6)
    0.543938
    """
    xp = namespace_of(input=input, linear_weight=linear_weight, target=target,
                      linear_bias=linear_bias, weight=weight)  # fmt: skip
    check_reduction(reduction)
    if input.ndim not in (1, 2):
        raise ValueError(f"input must be (N, in_features) or (in_features,), got {input.ndim}-d")
    if linear_weight.ndim != 2:
        raise ValueError(
            f"linear_weight must be (C, in_features), got shape {tuple(linear_weight.shape)} "
            "(K-dimensional weights need the whole logits: use cross_entropy on them)"
        )
    if xp.isdtype(target.dtype, "real floating"):
        raise ValueError(
            "target holds probabilities: the chunked linear cross entropy takes class "
            "indices; use cross_entropy on input @ linear_weight.T for probability targets"
        )
    unbatched = input.ndim == 1
    if unbatched:
        input, target = xp.reshape(input, (1, -1)), xp.reshape(target, (1,))
    index = -100 if ignore_index is None else ignore_index
    chunk_size = _chunk_size(options, input.shape[0], linear_weight.shape[0], input.shape[1])
    result = xce.linear_cross_entropy(
        target, input, linear_weight, bias=linear_bias, class_weight=weight,
        ignore_index=index, label_smoothing=label_smoothing, chunk_size=chunk_size,
        reduction="sum_and_count" if reduction == "mean" else cast(Reduction, reduction),
    )  # fmt: skip
    if reduction == "mean":
        return divide_or_nan(xp, *result)
    if unbatched and reduction == "none":
        return xp.reshape(result, ())
    return result
