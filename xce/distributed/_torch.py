"""Class sharding over a ``torch.distributed`` process group (tensor / vocab parallelism).

Each rank of the group holds a contiguous slice of the classes; the losses reduce their
per-token scalars (the row max, a stack of partial sums) with ``all_reduce`` instead of ever
gathering the logits. Torch is imported only when a shard is made.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .._parts import LossParts
from .._types import Array
from ._shard import ClassShard

__all__ = ["TorchClassShard", "torch_class_shard"]


def torch_class_shard(
    num_classes: int, *, group: Any = None, start: int | None = None
) -> TorchClassShard:
    """The classes of a loss split over the ranks of a ``torch.distributed`` process group.

    Pass the result as ``class_shard=`` to :func:`xce.sparse_categorical_cross_entropy`,
    :func:`xce.categorical_cross_entropy` (``from_logits=True``) or
    :func:`xce.linear_cross_entropy`: each rank gives its local logits ``x⁽ʳ⁾`` of shape
    ``(..., C_r)`` (classes ``[start, start + C_r)`` of the ``C = num_classes``), or its rows
    of the output weight for linear cross entropy, and every rank gets the loss of the whole
    ``(..., C)`` problem without the logits ever being gathered::

        m = maxᵣ maxᵢ x⁽ʳ⁾ᵢ   (one all-reduce MAX of a per-row scalar),
        S = Σᵣ Σᵢ exp(x⁽ʳ⁾ᵢ - m), with the label's, the smoothing's, the class weights' and
            the z-loss's partial sums   (one all-reduce SUM of a small stack of per-row sums),
        log Z = m + log S,   ℓ = Σ_c w_c q_c (log Z - x_c) + λ·ω·(log Z)²,

    with x the soft-capped logits under ``softcap``, the global smoothing ε/C and the rank's
    slice of the class weights. With class
    weights, the label's weight ω of the ``"mean"`` denominator costs one more all-reduce SUM
    of a per-row scalar (soft targets: of their row sums, for their checks): at most three
    collectives per call, each of O(N) elements (N the number of rows), never N·C; linear
    cross entropy adds one all-reduce SUM of ``d_hidden`` (N × D) when it makes a gradient.
    The gradient with respect to the local logits (and, for linear cross entropy, the local
    weight rows) is the local slice of the unsharded one:
    ``softmax(x)⁽ʳ⁾·(Σ_c w_c q_c + 2λ·ω·log Z) - (w ⊙ q)⁽ʳ⁾``; it is made in the forward, so
    autograd's backward runs no collective.

    Parameters
    ----------
    num_classes : int
        The global class count C. Labels are global class indices in ``[0, C)``.
    group : torch.distributed.ProcessGroup, optional
        The ranks that share the classes (``None``: the default group). A rank's position in
        it is ``torch.distributed.get_rank(group)``.
    start : int, optional
        The first global class of this rank's shard, for uneven shards: the shards must tile
        ``[0, C)`` in order (checked once per local class count, with one all-gather).
        ``None``: equal contiguous shards in rank order, ``start = rank · C_r``, which needs
        ``C_r · group size = C``.

    Returns
    -------
    TorchClassShard
        The shard, for ``class_shard=``.

    Raises
    ------
    RuntimeError
        ``torch.distributed`` is not available or its default process group is not
        initialised (call ``torch.distributed.init_process_group`` first, e.g. by
        ``torchrun``).
    ValueError
        ``num_classes`` is not an integer ≥ 2, or ``start`` is not an integer in
        ``[0, num_classes)``.

    Examples
    --------
    A group of one process holds all the classes; under ``torchrun`` each rank passes its own
    slice of the logits and gets the same loss.

    >>> import socket, numpy as np, torch, torch.distributed as dist, xce
    >>> with socket.socket() as s:
    ...     _ = s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    >>> dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}",
    ...                         rank=0, world_size=1)
    >>> shard = xce.distributed.torch_class_shard(3)
    >>> logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]], requires_grad=True)
    >>> loss = xce.sparse_categorical_cross_entropy(
    ...     torch.tensor([1, 2]), logits, from_logits=True, class_shard=shard)
    >>> loss.backward()
    >>> unsharded = xce.sparse_categorical_cross_entropy(
    ...     np.array([1, 2]), logits.detach().numpy(), from_logits=True)
    >>> bool(np.isclose(loss.item(), unsharded))
    True
    >>> logits.grad.shape
    torch.Size([2, 3])
    >>> dist.destroy_process_group()
    """
    try:
        import torch.distributed as dist
    except ImportError as exc:  # pragma: no cover - torch is what makes the shard
        raise RuntimeError("torch_class_shard needs torch with torch.distributed") from exc
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            "torch_class_shard needs an initialised torch.distributed process group: call "
            "torch.distributed.init_process_group(...) first (torchrun sets up its environment)"
        )
    return TorchClassShard(num_classes, group=group, start=start)


class TorchClassShard(ClassShard):
    """A class shard over the ranks of a ``torch.distributed`` process group.

    Made by :func:`torch_class_shard`, which documents the sharded losses; ``group_size``
    and ``index`` are the group's size and this process's rank in it.

    Parameters
    ----------
    num_classes : int
        The global class count C.
    group : torch.distributed.ProcessGroup, optional
        The ranks that share the classes (``None``: the default group).
    start : int, optional
        The first global class of this rank's shard (``None``: equal contiguous shards).

    Examples
    --------
    >>> import socket, torch, torch.distributed as dist, xce
    >>> with socket.socket() as s:
    ...     _ = s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    >>> dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}",
    ...                         rank=0, world_size=1)
    >>> shard = xce.distributed.torch_class_shard(4)
    >>> shard.group_size, shard.index, shard.start(4)
    (1, 0, 0)
    >>> shard.all_max(torch.tensor([1.0, 5.0]))
    tensor([1., 5.])
    >>> dist.destroy_process_group()
    """

    def __init__(self, num_classes: int, *, group: Any = None, start: int | None = None):
        import torch.distributed as dist

        super().__init__(num_classes, start=start)
        self.group = group
        self._size = dist.get_world_size(group)
        self._rank = dist.get_rank(group)
        # The local class counts whose explicit `start` was checked to tile [0, C).
        self._tiling_checked: set[int] = set()

    @property
    def group_size(self) -> int:
        return self._size

    @property
    def index(self) -> int:
        return self._rank

    def start(self, local_classes: int) -> int:
        first = int(super().start(local_classes))
        if self.explicit_start is not None and local_classes not in self._tiling_checked:
            self._check_tiling(first, local_classes)
            self._tiling_checked.add(local_classes)
        return first

    def _check_tiling(self, first: int, local_classes: int) -> None:
        """Every rank's (start, C_r), gathered once: they must follow one another from 0 to C.

        Each rank raises the same error, so no rank waits on a collective the others skip.
        """
        import torch
        import torch.distributed as dist

        # NCCL moves CUDA tensors only; gloo (and a "cpu:gloo,cuda:nccl" group) takes these.
        on_gpu = dist.get_backend(self.group) == "nccl"
        device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else None
        mine = torch.tensor([first, local_classes], dtype=torch.int64, device=device)
        every = [torch.empty_like(mine) for _ in range(self.group_size)]
        dist.all_gather(every, mine, group=self.group)
        spans = [(int(t[0]), int(t[1])) for t in every]
        ends = [sum(count for _, count in spans[:r]) for r in range(len(spans) + 1)]
        if [first_class for first_class, _ in spans] != ends[:-1] or ends[-1] != self.num_classes:
            raise ValueError(
                f"the class shards do not tile [0, {self.num_classes}) in rank order: the "
                f"ranks hold (start, local classes) = {spans}; give each rank start = the sum "
                "of the lower ranks' local class counts"
            )

    def _reduce(self, a: Array, op: Any) -> Array:
        import torch.distributed as dist

        # A contiguous copy: all_reduce works in place and needs dense memory; the caller's
        # tensor (maybe a view of the logits) stays as it was. Detached: the backward runs no
        # collective (``differentiable`` gives autograd the gradient made in the forward).
        out = a.detach().clone(memory_format=_contiguous())
        # Looked up on the module at each call, so a test can count the collectives.
        dist.all_reduce(out, op=op, group=self.group)
        return out

    def all_max(self, a: Array) -> Array:
        import torch.distributed as dist

        return self._reduce(a, dist.ReduceOp.MAX)

    def all_sum(self, a: Array) -> Array:
        import torch.distributed as dist

        return self._reduce(a, dist.ReduceOp.SUM)

    def differentiable(
        self,
        compute: Callable[[Any, bool], tuple[Any, Any]],
        y_pred: Any,
        *,
        class_axis: int,
    ) -> Any:
        """``compute``'s value as a node of the autograd graph whose backward scales the
        gradient that ``compute(y_pred, True)`` made in the forward; ``y_pred`` is a tensor or
        a tuple of tensors (``None`` entries allowed), ``grad`` then a tuple like it."""
        import torch

        inputs = y_pred if isinstance(y_pred, tuple) else (y_pred,)
        recorded = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in inputs
        )
        if not recorded:
            return compute(y_pred, False)[0]
        box: dict[str, Any] = {}
        several = isinstance(y_pred, tuple)
        outs = _function().apply(compute, several, class_axis, box, *inputs)
        return _unflatten(box["structure"], outs)


@functools.cache
def _contiguous() -> Any:
    import torch

    return torch.contiguous_format


def _flatten(value: Any, leaves: list[Any]) -> Any:
    """``value``'s structure (an array, a tuple or a LossParts of them), its arrays appended to
    ``leaves`` once each (the count of a ``"sum_and_count"`` LossParts is one tensor in three
    fields: autograd's outputs must be distinct)."""
    if isinstance(value, LossParts):
        return ("parts", [_flatten(field, leaves) for field in value])
    if isinstance(value, tuple):
        return ("tuple", [_flatten(item, leaves) for item in value])
    for i, leaf in enumerate(leaves):
        if leaf is value:
            return ("leaf", i)
    leaves.append(value)
    return ("leaf", len(leaves) - 1)


def _unflatten(structure: Any, outs: tuple[Any, ...]) -> Any:
    kind, content = structure
    if kind == "leaf":
        return outs[content]
    items = [_unflatten(item, outs) for item in content]
    return LossParts(*items) if kind == "parts" else tuple(items)


@functools.cache
def _function() -> Any:
    """The ``torch.autograd.Function``, made on first use (importing this module needs no
    torch: the docstrings' test session imports every module)."""
    import torch

    class _ShardedLoss(torch.autograd.Function):
        """Outputs: the result's tensors, flattened; only the first (the loss, or the
        ``"sum_and_count"`` total) has a gradient, the rest are constants for logging."""

        @staticmethod
        def forward(ctx, compute, several, class_axis, box, *inputs):
            detached = tuple(t.detach() if t is not None else None for t in inputs)
            value, grad = compute(detached if several else detached[0], True)
            leaves: list[Any] = []
            box["structure"] = _flatten(value, leaves)
            grads = grad if several else (grad,)
            if leaves[0].ndim and several:
                raise ValueError(
                    "a per-sample sharded loss over several inputs has no per-sample gradient "
                    "to scale; reduce it ('mean', 'sum' or 'sum_and_count')"
                )
            ctx.class_axis = class_axis
            ctx.save_for_backward(*grads)
            ctx.mark_non_differentiable(*leaves[1:])
            return tuple(leaves)

        @staticmethod
        def backward(ctx, *grad_outputs):
            g = grad_outputs[0]
            grads = []
            for like, grad in zip(ctx.needs_input_grad[4:], ctx.saved_tensors, strict=True):
                if not like or grad is None:
                    grads.append(None)
                elif g.ndim:  # "none": the per-sample cotangent, at the class axis
                    grads.append(grad * torch.unsqueeze(g, ctx.class_axis).to(grad.dtype))
                else:
                    grads.append(grad * g.to(grad.dtype))
            return (None, None, None, None, *grads)

    return _ShardedLoss
