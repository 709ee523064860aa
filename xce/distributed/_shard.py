"""What a class-sharded loss needs from its framework: the shard's place among the classes,
two collectives, and a hook into the framework's autodiff.

Each member of a group (a torch.distributed rank, a position on a JAX mesh axis) holds the
logits of a contiguous run of classes ``[start, start + local_C)`` of ``num_classes``. The
softmax cross entropy needs three things that span every class: the row maximum, the sum of
exponentials and the label's (or target's) terms. The kernels (``xce._agnostic._sharded``)
compute each member's share of them and combine the shares with :meth:`ClassShard.all_max`
and :meth:`ClassShard.all_sum`, on per-row scalars only: the logits never travel.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

from .._types import Array

__all__ = ["ClassShard"]


class ClassShard(abc.ABC):
    """The classes one member of a group holds, and the group's collectives.

    Made by :func:`xce.distributed.torch_class_shard` or
    :func:`xce.distributed.jax_class_shard` and passed as ``class_shard=`` to
    :func:`xce.sparse_categorical_cross_entropy`, :func:`xce.categorical_cross_entropy` and
    :func:`xce.linear_cross_entropy`.

    Parameters
    ----------
    num_classes : int
        C, the number of classes over the whole group.
    start : int, optional
        The first (global) class of this member's shard. ``None``: equal contiguous shards in
        group order, ``index · local_C``, which needs local_C · group size = C.

    Raises
    ------
    ValueError
        ``num_classes`` not an int ≥ 2, ``start`` not an int in [0, ``num_classes``).

    Examples
    --------
    A subclass gives the group's size, the member's index and the collectives; here a group
    of one, whose collectives are the identity (MPI, say, would all-reduce instead):

    >>> import numpy as np, xce
    >>> class Alone(xce.distributed.ClassShard):
    ...     group_size, index = 1, 0
    ...     def all_max(self, a): return a
    ...     def all_sum(self, a): return a
    ...     def differentiable(self, compute, y_pred, *, class_axis):
    ...         return compute(y_pred, False)[0]
    >>> x, y = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]]), np.array([1, 2])
    >>> sharded = xce.sparse_categorical_cross_entropy(
    ...     y, x, from_logits=True, class_shard=Alone(3))
    >>> bool(np.isclose(sharded, xce.sparse_categorical_cross_entropy(y, x, from_logits=True)))
    True
    """

    def __init__(self, num_classes: int, *, start: int | None = None) -> None:
        if type(num_classes) is not int or num_classes < 2:
            raise ValueError(f"num_classes must be an int ≥ 2, got {num_classes!r}")
        if start is not None and (type(start) is not int or not 0 <= start < num_classes):
            raise ValueError(f"start must be an int in [0, {num_classes}), got {start!r}")
        self.num_classes = num_classes
        self.explicit_start = start

    @property
    @abc.abstractmethod
    def group_size(self) -> int:
        """How many members share the classes."""

    @property
    @abc.abstractmethod
    def index(self) -> Any:
        """This member's position in the group (an int, or a traced 0-d array under JAX)."""

    def start(self, local_classes: int) -> Any:
        """The first global class of this member's ``local_classes`` classes.

        Parameters
        ----------
        local_classes : int
            How many classes this member holds (its logits' class axis).

        Returns
        -------
        int or 0-d array
            The explicit ``start``, or ``index · local_classes`` (traced under JAX).

        Raises
        ------
        ValueError
            Without an explicit ``start``, when ``local_classes`` · group size ≠
            ``num_classes`` (uneven shards need ``start``); with one, when the shard runs
            past ``num_classes``.
        """
        if self.explicit_start is None:
            if local_classes * self.group_size != self.num_classes:
                raise ValueError(
                    f"class_shard: {local_classes} local classes on each of "
                    f"{self.group_size} members do not make num_classes="
                    f"{self.num_classes}; uneven shards need an explicit start="
                )
            return self.index * local_classes
        if self.explicit_start + local_classes > self.num_classes:
            raise ValueError(
                f"class_shard: classes [{self.explicit_start}, "
                f"{self.explicit_start + local_classes}) run past num_classes="
                f"{self.num_classes}"
            )
        return self.explicit_start

    @abc.abstractmethod
    def all_max(self, a: Array) -> Array:
        """The element-wise maximum of ``a`` over the group.

        Parameters
        ----------
        a : array
            This member's values (left untouched).

        Returns
        -------
        array
            The maximum over the members, of ``a``'s shape, on every member.
        """

    @abc.abstractmethod
    def all_sum(self, a: Array) -> Array:
        """The element-wise sum of ``a`` over the group.

        Parameters
        ----------
        a : array
            This member's values (left untouched).

        Returns
        -------
        array
            The sum over the members, of ``a``'s shape, on every member.
        """

    @abc.abstractmethod
    def differentiable(
        self,
        compute: Callable[[Array, bool], tuple[Any, Array | None]],
        y_pred: Array,
        *,
        class_axis: int,
    ) -> Any:
        """The value of ``compute(y_pred, with_grad)`` connected to the framework's autodiff.

        The backward multiplies the gradient that ``compute(y_pred, True)`` returns by the
        incoming cotangent (per sample: expanded at ``class_axis``) and communicates
        nothing. The value's other arrays carry no gradient.

        Parameters
        ----------
        compute : callable
            ``compute(y_pred, with_grad) -> (value, grad)``: the value (an array, the tuple
            ``(total, count)`` or an :class:`xce.LossParts`) and, with ``with_grad``, the
            gradient of its first array with respect to ``y_pred`` (for a per-sample loss:
            of each sample's loss, scaled by its weight; else ``None``).
        y_pred : array
            This member's logits.
        class_axis : int
            ``y_pred``'s class axis (non-negative).

        Returns
        -------
        array, tuple or LossParts
            The value, differentiable in ``y_pred`` where the framework records it.
        """
