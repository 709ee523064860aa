"""Losses beyond one device: class-sharded (vocab-parallel) cross entropy.

When the classes of a model's output layer are split across devices, each holds the logits
of its classes only. Pass a :class:`ClassShard` as ``class_shard=`` to
:func:`xce.sparse_categorical_cross_entropy`, :func:`xce.categorical_cross_entropy` (on
logits) or :func:`xce.linear_cross_entropy`: every member gets the loss over all the
classes, and its gradient shard, with the same options as on one device and without ever
gathering the logits. Per call the forward combines per-row numbers in two all-reduces (the
row maximum; a stack of sums), plus one with class weights or soft targets' checks, and
:func:`xce.linear_cross_entropy` one more of d_hidden; the backward communicates nothing.

- :func:`torch_class_shard`: ranks of a ``torch.distributed`` process group;
- :func:`jax_class_shard`: positions along a mesh axis, inside ``jax.shard_map``.
"""

from __future__ import annotations

from typing import Any

from ._shard import ClassShard

__all__ = ["ClassShard", "jax_class_shard", "torch_class_shard"]


def __getattr__(name: str) -> Any:
    # The factories' modules are imported on first use; they import torch or JAX only
    # inside their functions, so that ``xce.distributed`` loads without either.
    if name == "torch_class_shard":
        from ._torch import torch_class_shard

        return torch_class_shard
    if name == "jax_class_shard":
        from ._jax import jax_class_shard

        return jax_class_shard
    raise AttributeError(f"module 'xce.distributed' has no attribute {name!r}")
