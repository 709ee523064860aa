"""Class-sharded losses inside ``jax.shard_map``: the shard of a mesh axis, its collectives
(``lax.pmax``, ``lax.psum``) and a ``jax.custom_vjp`` that keeps the backward free of them.

Imported only when :func:`jax_class_shard` is called, so that ``import xce`` needs no JAX.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from .._types import Array
from ._shard import ClassShard

__all__ = ["JaxClassShard", "jax_class_shard"]


class JaxClassShard(ClassShard):
    """The classes one position of a ``shard_map`` mesh axis holds (see
    :func:`jax_class_shard`). Its group size, index and collectives are those of the axis,
    so it is made and used inside the mapped function."""

    def __init__(self, num_classes: int, axis_name: Hashable | tuple[Hashable, ...], *,
                 start: Any = None) -> None:  # fmt: skip
        # Every position runs the same code on as many classes, so a start that differs
        # between positions is a traced integer (from ``lax.axis_index``): kept as given,
        # as its value is unknown while tracing.
        traced = start is not None and type(start) is not int
        if traced and (getattr(start, "ndim", None) != 0 or start.dtype.kind not in "iu"):
            raise ValueError(f"start must be an int or a 0-d integer array, got {start!r}")
        super().__init__(num_classes, start=None if traced else start)
        self.axis_name = axis_name
        self.traced_start = start if traced else None

    @property
    def group_size(self) -> int:
        """The size of the mesh axis (the product over a tuple of axes): a Python int."""
        from jax import lax

        return int(lax.axis_size(self.axis_name))

    @property
    def index(self) -> Any:
        """This position along the axis, a traced 0-d integer (row-major over a tuple)."""
        from jax import lax

        return lax.axis_index(self.axis_name)

    def start(self, local_classes: int) -> Any:
        if self.traced_start is not None:
            return self.traced_start
        return super().start(local_classes)

    def all_max(self, a: Array) -> Array:
        from jax import lax

        return lax.pmax(a, self.axis_name)

    def all_sum(self, a: Array) -> Array:
        from jax import lax

        return lax.psum(a, self.axis_name)

    def differentiable(self, compute: Callable[..., Any], y_pred: Array, *, class_axis: int) -> Any:
        """``compute(y_pred, False)[0]``, differentiated by its own gradient.

        Autodiff through the forward would transpose its ``psum``: under
        ``check_vma=False`` that is a ``psum`` again, which counts each member's gradient
        group-size times (and communicates in the backward). The custom VJP instead keeps
        the local gradient that the forward already computed (the global row statistics are
        all it needs) and only scales it by the cotangent.
        """
        return _custom_loss(compute, class_axis)(y_pred)


def _first(value):
    """The array that carries the gradient: the loss, the total of ``(total, count)``, or
    the ``loss`` field of :class:`xce.LossParts` (a tuple too, hence the test order)."""
    from .._parts import LossParts

    if isinstance(value, LossParts):
        return value.loss
    return value[0] if isinstance(value, tuple) else value


def _custom_loss(compute, class_axis):
    """A ``jax.custom_vjp`` of ``y_pred`` alone. ``compute`` may close over the other inputs
    (labels, weights: tracers of the enclosing ``shard_map`` / ``jit``); they get no
    gradient, and JAX refuses (rather than silently zeroing) a ``jax.grad`` taken with
    respect to one of them."""
    import jax
    import jax.numpy as jnp

    @jax.custom_vjp
    def loss(y_pred):
        return compute(y_pred, False)[0]

    def forward(y_pred):
        value, grad = compute(y_pred, True)
        return value, grad

    def backward(grad, cotangent):
        g = _first(cotangent)
        if g.ndim:  # a per-sample loss: its cotangent meets each sample's class axis
            g = jnp.expand_dims(g, class_axis % grad.ndim)
        return (grad * g.astype(grad.dtype),)

    loss.defvjp(forward, backward)
    return loss


def jax_class_shard(
    num_classes: int, axis_name: Hashable | tuple[Hashable, ...], *, start: Any = None
) -> JaxClassShard:
    """The class shard of a ``jax.shard_map`` mesh axis, for a loss over local logits.

    Inside a function mapped with ``jax.shard_map`` whose logits are split along the class
    axis over the mesh axis ``axis_name`` (``in_specs`` ``P(None, axis_name)``), each
    position holds the classes ``[start, start + C_l)`` of C = ``num_classes``. Passed as
    ``class_shard=`` to :func:`xce.sparse_categorical_cross_entropy`,
    :func:`xce.categorical_cross_entropy` (``from_logits=True``; targets: the matching
    slice) or :func:`xce.linear_cross_entropy` (weight: the local rows), the loss is that
    of the whole logits, the same on every position:

    .. math::

        ℓᵢ = \\log \\sum_{r} \\sum_{c ∈ r} e^{x_{ic} - m_i} - (x_{i y_i} - m_i),
        \\qquad m_i = \\max_r \\max_{c ∈ r} x_{ic},

    the max over the positions r by one ``lax.pmax`` and the sums (of exp, of the label's
    shifted logit where r holds the label, of the smoothing's and the class weights' terms)
    by one ``lax.psum`` of per-row scalars, plus at most one more ``psum`` of per-row
    scalars when class weights or soft targets are given: never the logits.

    Gradients: ``xce.value_and_grad`` returns this position's slice of ∂ℓ/∂x, and
    ``jax.grad`` taken inside the mapped function gives the same slice through a
    ``jax.custom_vjp`` that reuses the forward's gradient: the backward scales it by the
    cotangent and communicates nothing, under ``check_vma`` True or False (differentiating
    through the forward's ``psum`` would, with the check off, count every position's share
    group-size times). ``jax.grad`` of the whole ``shard_map`` (taken outside it) is right
    with ``check_vma=True``, the default; with the check off, JAX divides an unmapped
    output's cotangent by the group size and expects the backward to ``psum`` it, so take
    the gradient inside the mapped function there. Of a sharded sparse or categorical
    cross entropy only ``y_pred`` is differentiated: a ``jax.grad`` with respect to its soft
    targets or weights is refused by JAX (an ``UnexpectedTracerError``: the custom VJP
    closes over them) rather than answered with zeros.

    Parameters
    ----------
    num_classes : int
        C, the number of classes over the whole axis.
    axis_name : hashable or tuple of hashables
        The mesh axis (or axes, row-major) that splits the classes, as in ``lax.psum``.
    start : int or 0-d int array, optional
        This position's first class. Every position of a ``shard_map`` holds as many
        classes, so a layout other than the default is a traced integer computed from
        ``lax.axis_index`` (not checked: its value is unknown while tracing). ``None``:
        equal contiguous shards in axis order, ``axis_index · C_l``, which needs C_l · axis
        size = C.

    Returns
    -------
    JaxClassShard
        A :class:`xce.distributed.ClassShard`; made and used inside the mapped function (the
        axis is known only there).

    Raises
    ------
    ValueError
        ``num_classes`` not an int ≥ 2, ``start`` not an int in [0, C) nor a 0-d integer
        array; at the loss call, equal
        shards that do not make C (C_l · axis size ≠ C) without ``start``.

    Examples
    --------
    Two classes on each of the mesh's positions (one here; the same code runs on several,
    e.g. with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``):

    >>> import jax, numpy as np, xce
    >>> from jax.sharding import Mesh, PartitionSpec as P
    >>> mesh = Mesh(np.array(jax.devices()[:1]), ("classes",))
    >>> x = np.array([[1.0, 2.0], [0.0, 3.0]], dtype=np.float32)
    >>> y = np.array([1, 0])
    >>> def loss(labels, local_logits):
    ...     shard = xce.distributed.jax_class_shard(2, "classes")
    ...     return xce.sparse_categorical_cross_entropy(
    ...         labels, local_logits, from_logits=True, class_shard=shard)
    >>> sharded = jax.shard_map(loss, mesh=mesh, in_specs=(P(), P(None, "classes")),
    ...                         out_specs=P())
    >>> round(float(sharded(y, x)), 5)
    1.68092
    >>> round(float(xce.sparse_categorical_cross_entropy(y, x, from_logits=True)), 5)
    1.68092
    """
    return JaxClassShard(num_classes, axis_name, start=start)
