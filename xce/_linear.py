"""Linear cross entropy: the sparse cross entropy of ``hidden @ weight.T + bias``, fused and
computed in chunks of rows so that the logits never exist whole. The public function, its
driver and its checks; the sweep is in :mod:`xce._linear_chunks`, the frameworks' autodiff
and Dask's lazy blocks in ``_linear_torch``, ``_linear_jax`` and ``_linear_dask``."""

from __future__ import annotations

import math
import numbers
from typing import Any

from . import _agnostic as agnostic
from . import _fast
from ._arguments import gather_arrays
from ._array_api import (
    device,
    index_dtype,
    is_dask_array,
    is_jax_array,
    is_numpy_namespace,
    is_torch_namespace,
)
from ._docs import document
from ._hints import keyword_hints
from ._linear_chunks import Problem, chunk_rows, map_value, rows_to_batch, sweep
from ._sharded import check_class_shard
from ._table import loss_info
from ._types import Array, Reduction, Scalar, Validate
from ._validation import (
    batch_array,
    check_floating,
    check_ignore_index,
    check_label_dtype,
    check_labels,
    check_options,
    check_where,
    class_weight_array,
    values_checked,
)
from .distributed._shard import ClassShard

__all__ = ["linear_cross_entropy", "loss_and_gradient", "prepare_linear"]

INFO = loss_info("linear_cross_entropy")


def _check_hyperparameters(softcap: Any, z_loss: Any, chunk_size: Any) -> None:
    if softcap is not None and isinstance(softcap, numbers.Real) and not float(softcap) > 0:
        raise ValueError(f"softcap={softcap} must be > 0 (the logits' bound c), or None")
    if isinstance(z_loss, numbers.Real) and not float(z_loss) >= 0:
        raise ValueError(f"z_loss={z_loss} must be ≥ 0 (the weight λ of log²Z)")
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral)
    ):
        raise TypeError(f"chunk_size must be an int (rows per chunk), got {chunk_size!r}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size} must be ≥ 1 row")


def _check_shapes(
    y_true: Array, hidden: Array, weight: Array, bias: Array | None, *, sharded: bool
) -> None:
    if hidden.ndim < 1:
        raise ValueError("hidden must have shape (..., D), got a 0-d array")
    if weight.ndim != 2:
        raise ValueError(
            f"weight must have shape (V, D) (nn.Linear's layout: one row per class), got "
            f"shape {tuple(weight.shape)}"
        )
    if weight.shape[1] != hidden.shape[-1]:
        raise ValueError(
            f"weight has shape {tuple(weight.shape)} but hidden's last axis is "
            f"{hidden.shape[-1]}: weight must be (V, D) with D = hidden.shape[-1] (transpose "
            "a (D, V) matrix)"
        )
    if weight.shape[0] < 2 and not sharded:  # a member of a group may hold one class
        raise ValueError(f"weight must have at least 2 rows (classes), got {weight.shape[0]}")
    if tuple(y_true.shape) != tuple(hidden.shape[:-1]):
        raise ValueError(
            f"y_true has shape {tuple(y_true.shape)} but hidden has shape "
            f"{tuple(hidden.shape)}: y_true must be hidden's shape without its last axis "
            f"{tuple(hidden.shape[:-1])}"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(
            f"bias must have shape (V,) = ({weight.shape[0]},), got {tuple(bias.shape)}"
        )


def prepare_linear(
    y_true: Array, hidden: Array, weight: Array, *, bias: Array | None,
    ignore_index: int | None, class_weight: Array | None, sample_weight: Array | None,
    label_smoothing: Scalar, where: Array | None, softcap: Scalar | None, z_loss: Scalar,
    reduction: str, validate: Validate, class_shard: ClassShard | None = None,
) -> tuple[Problem, tuple[int, ...], Any]:  # fmt: skip
    """Check a call and flatten it: the :class:`~xce._linear_chunks.Problem`, the batch
    shape S and the output dtype. Labels are checked here where values may be read (then
    the chunks check their share again, cheaply); elsewhere an out-of-range label gives its
    row NaN in the chunks."""
    _check_hyperparameters(softcap, z_loss, None)
    xp, a = gather_arrays(
        hidden, y_true=y_true, weight=weight, bias=bias, class_weight=class_weight,
        sample_weight=sample_weight, where=where,
    )  # fmt: skip
    y_true, weight, bias = a["y_true"], a["weight"], a["bias"]
    check_options(reduction=reduction, validate=validate)
    check_floating(xp, hidden, "hidden", "")
    check_floating(xp, weight, "weight", "")
    if bias is not None:
        check_floating(xp, bias, "bias", "")
    check_label_dtype(xp, y_true, "y_true")
    check_ignore_index(ignore_index)
    check_where(xp, a["where"])
    _check_shapes(y_true, hidden, weight, bias, sharded=class_shard is not None)
    out_dtype = xp.result_type(hidden.dtype, weight.dtype)
    acc = agnostic.compute_dtype(xp, out_dtype)
    batch = tuple(hidden.shape[:-1])
    n_classes, dim = weight.shape
    cw = class_weight_array(xp, a["class_weight"], n_classes, acc)
    s = batch_array(xp, a["sample_weight"], "sample_weight", batch, acc)
    valid = batch_array(xp, a["where"], "where", batch)
    labels = xp.astype(y_true, index_dtype(xp, device(y_true)), copy=False)
    checked = values_checked(validate, y_true, hidden)
    if checked:
        label_classes = n_classes if class_shard is None else class_shard.num_classes
        check_labels(xp, labels, label_classes, ignore_index=ignore_index, where=valid)
    n_rows = math.prod(batch)

    def flat(v):
        return None if v is None else xp.reshape(v, (n_rows,))

    options: dict[str, Any] = {
        "ignore_index": ignore_index, "class_weight": cw, "label_smoothing": label_smoothing,
    }  # fmt: skip
    # Passed only when set, so that a call without them runs the sparse driver's plain lane.
    if softcap is not None:
        options["softcap"] = softcap
    if not (isinstance(z_loss, numbers.Real) and z_loss == 0):
        options["z_loss"] = z_loss
    if class_shard is not None:
        check_class_shard(class_shard, from_logits=True, loss_name=INFO.name)
        if is_dask_array(hidden):
            # The sweep runs inside Dask's tasks, where no group's collective can run.
            raise TypeError(
                "linear_cross_entropy: class_shard takes torch tensors or JAX arrays, not "
                "Dask arrays (a Dask cluster streams the unsharded loss instead)"
            )
        options["class_shard"] = class_shard
    problem = Problem(
        xp, flat(labels), xp.reshape(hidden, (n_rows, dim)), weight, bias, flat(s),
        flat(valid), options, acc, "auto" if checked else False,
    )  # fmt: skip
    return problem, batch, out_dtype


def _rows(problem: Problem, chunk_size: int | None, parts: bool) -> int:
    xp = problem.xp
    n_rows = problem.hidden.shape[0]
    itemsize = xp.finfo(problem.acc_dtype).bits // 8
    options = problem.options
    # The sparse driver's native kernels serve NumPy (Dask's blocks too) and torch; elsewhere,
    # with fast paths off, or with these options its generic kernels run.
    native = _fast.enabled() and (
        is_numpy_namespace(xp) or is_torch_namespace(xp) or is_dask_array(problem.hidden)
    )
    kind = "plain"
    if not native or parts or "softcap" in options or "z_loss" in options:
        kind = "generic"
    elif (
        problem.sample_weight is not None
        or problem.where is not None
        or options["class_weight"] is not None
        or options["ignore_index"] is not None
        or not (isinstance(options["label_smoothing"], numbers.Real)
                and options["label_smoothing"] == 0)
    ):  # fmt: skip
        kind = "options"
    return chunk_rows(n_rows, problem.weight.shape[0], itemsize, chunk_size, kind=kind)


def _finish(problem, value, grads, batch, out_dtype, reduction):
    """The sweep's results laid out (S for per-row values, hidden's shape for d_hidden) and
    cast back to the caller's dtypes."""
    xp = problem.xp
    value = rows_to_batch(xp, value, reduction, batch)
    value = map_value(lambda v: xp.astype(v, out_dtype, copy=False), value)
    if grads is None:
        return value, None
    dim = problem.hidden.shape[-1]
    likes = (problem.hidden, problem.weight, problem.bias)
    grads = (xp.reshape(grads[0], (*batch, dim)), *grads[1:])
    return value, tuple(
        xp.astype(g, like.dtype, copy=False) for g, like in zip(grads, likes, strict=False)
    )


def loss_and_gradient(
    y_true: Array, hidden: Array, weight: Array, *, bias: Array | None,
    ignore_index: int | None, class_weight: Array | None, sample_weight: Array | None,
    label_smoothing: Scalar, where: Array | None, softcap: Scalar | None, z_loss: Scalar,
    reduction: Reduction, chunk_size: int | None, validate: Validate, return_parts: bool,
    with_grad: bool, class_shard: ClassShard | None = None,
) -> tuple[Any, tuple[Array, ...] | None]:  # fmt: skip
    """:func:`linear_cross_entropy` and, with ``with_grad``, its gradients ``(d_hidden,
    d_weight[, d_bias])``, from one fused sweep over the chunks."""
    _check_hyperparameters(softcap, z_loss, chunk_size)
    problem, batch, out_dtype = prepare_linear(
        y_true, hidden, weight, bias=bias, ignore_index=ignore_index,
        class_weight=class_weight, sample_weight=sample_weight,
        label_smoothing=label_smoothing, where=where, softcap=softcap, z_loss=z_loss,
        reduction=reduction, validate=validate, class_shard=class_shard,
    )  # fmt: skip
    parts = bool(return_parts)
    how: dict[str, Any] = {
        "rows": _rows(problem, chunk_size, parts), "reduction": reduction,
        "with_grad": with_grad, "parts": parts,
    }  # fmt: skip
    if is_jax_array(hidden):
        from . import _linear_jax

        value, grads = _linear_jax.run(problem, **how)
    elif is_dask_array(hidden):
        from . import _linear_dask

        value, grads = _linear_dask.run(problem, **how)
    elif is_torch_namespace(problem.xp):
        from . import _linear_torch

        value, grads = _linear_torch.run(problem, **how)
    else:
        value, grads = sweep(problem, **how)
    return _finish(problem, value, grads, batch, out_dtype, reduction)


@keyword_hints
@document(INFO)
def linear_cross_entropy(
    y_true: Array,
    hidden: Array,
    weight: Array,
    *,
    bias: Array | None = None,
    ignore_index: int | None = None,
    class_weight: Array | None = None,
    sample_weight: Array | None = None,
    label_smoothing: Scalar = 0.0,
    where: Array | None = None,
    softcap: Scalar | None = None,
    z_loss: Scalar = 0.0,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    validate: Validate = "auto",
    return_parts: bool = False,
    class_shard: ClassShard | None = None,
) -> Any:
    """Cross entropy of a linear layer's logits against integer labels, fused and chunked.

    Exactly ``sparse_categorical_cross_entropy(y_true, hidden @ weight.T + bias,
    from_logits=True, ...)`` with the same options, but the logits z = h·Wᵀ + b (one row
    of V per token: 8192 tokens × 128k classes are 4 GB in float32) never exist whole. The
    rows of ``hidden`` are taken in chunks; for each, its logits, the sparse loss on them and
    their gradient g (in the accumulation dtype), then ∂/∂h = g·W, ∂/∂W += gᵀ·h and
    ∂/∂b += Σ g, so that the loss and all gradients come from one sweep.

    .. math::

        ℓᵢ = \\mathrm{CE}(\\mathrm{cap}(h_i W^T + b), y_i) + λ·w_{y_i}·\\log^2 Z_i,
        \\qquad \\mathrm{cap}(z) = c·\\tanh(z / c).

    Memory: besides the returned gradients, a chunk's logits and gradient. The default
    chunk's logits take at most 64 MiB and 1/32 of the full logits (1/64 with weights, a
    mask, ``ignore_index`` or label smoothing, 1/128 with ``softcap``, ``z_loss`` or
    ``return_parts`` and on backends without a native kernel: those kernels hold more
    temporaries), at least 16 rows, so that the sweep's peak stays under 1/8 of the full
    logits. Float16 / bfloat16 inputs
    accumulate in float32 (float64 in float64): a float32 copy of ``weight`` and ``bias``
    (4·V·D bytes) and, with a gradient, d_hidden and d_weight in float32 until they are cast
    back at the end (4·(N + V)·D bytes).

    Parameters
    ----------
    y_true : int array, shape S
        Class labels in [0, V): ``hidden``'s shape without its last axis.
    hidden : array, shape S + (D,)
        Hidden states, e.g. (N, D) or (N, T, D).
    weight : array, shape (V, D)
        The output layer's weight, one row per class (``nn.Linear``'s layout, a tied
        embedding matrix).
    bias : array, shape (V,), optional
        The output layer's bias.
    ignore_index : int, optional
        A label value (e.g. -100 or a padding id) whose entries are excluded.
    class_weight : array, shape (V,), optional
        Weights w, as in :func:`sparse_categorical_cross_entropy`; the ``"mean"`` denominator is
        Σ sᵢ·w[yᵢ].
    softcap : float, optional
        The cap c > 0: the logits become c·tanh(z / c) before the softmax (Gemma 2: 30); the
        gradient includes the tanh's derivative.
    z_loss : float, default 0.0
        The weight λ ≥ 0: adds λ·w[yᵢ]·(log Zᵢ)² per included token (PaLM: 1e-4), log Z
        the logsumexp of the (capped) logits, weighted by ``sample_weight`` like the cross
        entropy.
    chunk_size : int, optional
        Rows of ``hidden`` per chunk, overriding the default budget.
    return_parts : bool, default False
        Also return the z-loss term and the per-token log Z: a :class:`xce.LossParts`.
    class_shard : xce.distributed.ClassShard, optional
        ``weight`` (and ``bias``, ``class_weight``) hold this member's rows [start,
        start + V_l) of a group's V classes (vocab parallel; ``y_true`` the global labels):
        every member gets the loss over all V classes; the gradients are the full d_hidden
        (summed over the group in the forward: one all-reduce of (N, D)) and this member's
        rows of d_weight and d_bias. See :mod:`xce.distributed`.
    %COMMON%
    Raises
    ------
    TypeError
        Mixed array libraries, float or boolean labels, integer ``hidden`` or ``weight``.
    ValueError
        ``weight`` not (V, D) with D = ``hidden.shape[-1]``, ``y_true``'s shape not
        ``hidden``'s without its last axis, ``bias`` not (V,), a weight's shape,
        ``softcap`` ≤ 0, ``z_loss`` < 0, ``chunk_size`` < 1, unknown ``reduction``; on
        checked data, labels outside [0, V) (other than ``ignore_index``). On unchecked data
        (JAX, Dask, GPU) such an entry is NaN.

    Examples
    --------
    >>> import numpy as np, xce
    >>> hidden = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    >>> weight = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    >>> y = np.array([0, 1, 2])
    >>> round(float(xce.linear_cross_entropy(y, hidden, weight, chunk_size=2)), 6)
    0.728829
    >>> logits = hidden @ weight.T
    >>> round(float(xce.sparse_categorical_cross_entropy(y, logits, from_logits=True)), 6)
    0.728829
    """
    return loss_and_gradient(
        y_true, hidden, weight, bias=bias, ignore_index=ignore_index,
        class_weight=class_weight, sample_weight=sample_weight,
        label_smoothing=label_smoothing, where=where, softcap=softcap, z_loss=z_loss,
        reduction=reduction, chunk_size=chunk_size, validate=validate,
        return_parts=return_parts, with_grad=False, class_shard=class_shard,
    )[0]  # fmt: skip
