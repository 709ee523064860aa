"""A class-sharded call (``class_shard=``) through a loss's driver: its checks, and the
framework's autodiff around the prepare-and-evaluate steps.

The kernels compute each member's gradient in the forward (:mod:`xce._agnostic._sharded`),
so a framework's autodiff is given that gradient through
:meth:`xce.distributed.ClassShard.differentiable` rather than differentiating through the
collectives: the backward communicates nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._types import Array
from .distributed._shard import ClassShard

__all__ = ["check_class_shard", "run_sharded"]


def check_class_shard(class_shard: Any, *, from_logits: bool, loss_name: str) -> None:
    """Raise unless ``class_shard`` is a :class:`~xce.distributed.ClassShard` and the call
    is on logits."""
    if not isinstance(class_shard, ClassShard):
        raise TypeError(
            "class_shard must come from xce.distributed.torch_class_shard or "
            f"jax_class_shard, got {type(class_shard).__name__}"
        )
    if not from_logits:
        raise ValueError(
            f"{loss_name} with class_shard needs from_logits=True: a shard of probabilities "
            "cannot be checked or clipped without its row's other classes"
        )


def run_sharded(
    compute: Callable[[Array, bool], tuple[Any, Array | None]],
    y_pred: Array,
    *,
    class_shard: ClassShard,
    axis: int,
    with_grad: bool,
    constants: tuple[Any, ...] = (),
) -> tuple[Any, Array | None]:
    """``(value, grad)`` of a sharded call: ``compute(y_pred, with_grad)`` as it is for
    :func:`xce.value_and_grad`, else the value hooked into the framework's autodiff.

    ``constants`` are the call's other arguments (targets, weights, hyperparameters): the
    hook differentiates ``y_pred`` alone, so a torch tensor among them that autograd would
    record raises instead of silently getting no gradient (under JAX, ``jax.grad`` with
    respect to one of them is refused by JAX itself)."""
    recorded = [a for a in constants if getattr(a, "requires_grad", False)]
    if recorded and not with_grad:
        import torch  # a tensor that requires grad: torch is here

        if torch.is_grad_enabled():
            raise ValueError(
                "with class_shard, autograd differentiates y_pred only; targets, weights "
                "and array options that require grad would get no gradient: detach them"
            )
    if with_grad:
        return compute(y_pred, True)
    class_axis = axis % y_pred.ndim if y_pred.ndim else 0
    return class_shard.differentiable(compute, y_pred, class_axis=class_axis), None
