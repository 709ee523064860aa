"""What a backend's fast-path module offers, written down as protocols.

A backend's fast path is a module (``xce._fast._numpy``, ``xce._fast._torch``) that provides
the functions below with exactly these signatures; :mod:`xce._fast` finds it for a namespace
or an array type and hands it to the pipeline, which calls nothing else of it. Every function
matches the generic array-API code's numbers on the inputs it accepts (the suite runs with
``XCE_DISABLE_FAST_PATHS=1`` too), and hands what it cannot do exactly to the generic kernel
it is given, or declines with ``None``.

``generic`` is always the agnostic kernel of the same loss with the same options bound
(``functools.partial(xce._agnostic.softmax_ce_soft, xp, class_weight=..., smoothing=...)``),
called as ``generic(x_rows, y_rows, with_grad=, grad_scale=)``. ``grad_scale`` is the
gradient's factor: ``None`` (1), a number or 0-d array, or one value per row of ``x``
(``x.shape[:-1]``; per entry, ``x.shape``, for the binary loss).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Array", "FastPath", "LossAndGrad", "PlainLanes", "RowRunner"]

Array = Any
LossAndGrad = tuple[Array, Array | None]
"""A loss (per entry, or reduced) and its gradient with respect to the logits, or ``None``."""


class PlainLanes(Protocol):
    """Calls on logits with no option besides label smoothing (a number, ``smoothing``) and
    the sparse loss's ``ignore_index`` and class weights, served in a few calls (the common
    case); the same on probabilities (``plain_probabilities``), and small calls of the losses
    without a native kernel (``generic_small``). Sample weights and masks are the pipeline's:
    it applies them to a lane's per-sample answer (``xce._fast._weighted``).

    Each lane takes the targets and the logits ``x``, of the one exact array type it was found
    for, runs its quick checks (types, dtypes, shapes, the labels' range; soft and binary targets
    are checked against [0, 1] block by block inside the kernel; the sparse and soft-target
    lanes decline logits whose first row looks like probabilities, see
    ``xce._value_checks.first_row_may_be_probabilities``) and returns ``None`` the moment one
    fails: the pipeline then takes its full path, which raises the proper error for bad input
    (and warns about probabilities given as logits). Otherwise it returns ``(value, grad)``:
    the loss reduced by ``reduction`` (``"none"``, ``"sum"`` or ``"mean"``, as the shared
    reduction would) and, with ``with_grad``, its gradient with respect to ``x`` (else
    ``None``).
    """

    def plain_sparse(
        self, labels: Array, x: Array, /, *, reduction: str, with_grad: bool,
        smoothing: float = 0.0, ignore_index: int | None = None,
        class_weight: Array | None = None,
    ) -> LossAndGrad | None:  # fmt: skip
        """Integer labels, softmax over the last axis (sparse categorical on logits); labels
        equal to ``ignore_index`` count for nothing (loss and gradient 0, and the mean is
        over the others: 0 over none); with ``class_weight`` (which the lane checks, or
        declines) the mean divides by the counted labels' weights."""

    def plain_soft(
        self, y: Array, x: Array, /, *, reduction: str, with_grad: bool, smoothing: float = 0.0
    ) -> LossAndGrad | None:
        """Soft targets shaped like the logits, softmax over the last axis."""

    def plain_binary(
        self, y: Array, x: Array, /, *, reduction: str, with_grad: bool, smoothing: float = 0.0
    ) -> LossAndGrad | None:
        """Binary targets shaped like the logits, a sigmoid per entry."""

    def plain_probabilities(
        self, lane: str, y: Array, p: Array, /, *, reduction: str, with_grad: bool,
        smoothing: float = 0.0, ignore_index: int | None = None,
    ) -> LossAndGrad | None:  # fmt: skip
        """The loss whose lane on logits is ``lane`` (``"plain_sparse"``, ``"plain_soft"``,
        ``"plain_binary"``) on probabilities ``p`` (``from_logits=False``), clipped to the
        default ``eps`` as the generic kernels clip them; its gradient is with respect to
        ``p``. A lane may serve only some calls (small ones) and decline the rest."""

    def generic_small(
        self, kernel: Callable[..., LossAndGrad], y: Array, x: Array, /, *, binary: bool,
        from_logits: bool, reduction: str, with_grad: bool, **options: float | None,
    ) -> LossAndGrad | None:  # fmt: skip
        """A small call of a loss without a native kernel (focal, poly-1): its generic
        ``kernel`` called on the whole input with ``options`` (Python numbers the caller
        checked), after the full path's value checks of targets shaped like ``x`` and of
        ``x`` (logits, or probabilities with ``from_logits=False``); ``binary``: one loss
        per entry, else per row."""


class FastPath(PlainLanes, Protocol):
    """A backend's native kernels for the three losses on logits, and its plain lanes.

    The kernels are taken only for arrays ``handles`` accepts; they run whole-array (they walk
    the rows their own way) and return ``(loss per entry, gradient or None)``, the loss shaped
    ``x.shape[:-1]`` (``x.shape`` for the binary loss).
    """

    def handles(self, x: Array) -> bool:
        """Whether the native kernels take logits ``x`` (dtype, layout, device)."""

    def softmax_ce_labels(
        self, x: Array, labels: Array, /, *, class_weight: Array | None, smoothing: float,
        with_grad: bool = False, grad_scale: Array | float | None = None,
        generic: Callable[..., LossAndGrad] | None = None,
    ) -> LossAndGrad:  # fmt: skip
        """ℓ = (1-ε)·w_y·(lse - x_y) + (ε/C)·Σ_c w_c·(lse - x_c) for safe integer ``labels``.

        ``generic`` takes the rows the kernel cannot do exactly, where it has no rule of its
        own for them (non-finite logits).
        """

    def softmax_ce_soft(
        self, x: Array, y: Array, /, *, class_weight: Array | None, smoothing: float,
        generic: Callable[..., LossAndGrad], with_grad: bool = False,
        grad_scale: Array | float | None = None, check_targets: bool = False,
    ) -> LossAndGrad | None:  # fmt: skip
        """ℓ = Σ_c w_c q_c (lse - x_c), q = (1-ε)·y + ε/C, for soft targets ``y``.

        Rows whose result is not finite go to ``generic``. With ``check_targets`` the targets
        are checked against [0, 1] (NaN fails) as the kernel reads them, and the result is
        ``None`` if one is outside.
        """

    def sigmoid_bce(
        self, x: Array, y: Array, /, *, pos_weight: Array | float | None, smoothing: float,
        generic: Callable[..., LossAndGrad], with_grad: bool = False,
        grad_scale: Array | float | None = None, check_targets: bool = False,
        summed: bool = False,
    ) -> LossAndGrad | None:  # fmt: skip
        """ℓ = (1-q)·max(x, 0) + a·q·max(-x, 0) + (1-q+a·q)·log1p(e^-|x|), element-wise.

        q = (1-ε)·y + ε/2, a = ``pos_weight``. Entries whose result is not finite go to
        ``generic``; ``check_targets`` as in :meth:`softmax_ce_soft`. With ``summed`` the loss
        returned is the total Σ ℓ, and no array of entries is made.
        """


class RowRunner(Protocol):
    """How a generic kernel runs over logits ``x``: in row blocks, or whole-array."""

    def __call__(
        self, xp: Any, kernel: Callable[..., LossAndGrad], x: Array, row_args: tuple | list,
        /, *, with_grad: bool, grad_scale: Array | None,
    ) -> LossAndGrad:  # fmt: skip
        """``kernel(x, *row_args, with_grad=, grad_scale=)``, however it is split.

        ``row_args`` and ``grad_scale`` hold one value per row of ``x`` (``x.shape[:-1]``) or
        per entry (``x.shape``), or are 0-d or ``None``.
        """
