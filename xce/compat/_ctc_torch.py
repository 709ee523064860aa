"""PyTorch's ``F.ctc_loss`` and ``nn.CTCLoss`` on any array type, re-exported by
:mod:`xce.compat.torch` (whose docstring lists how the twins depart from PyTorch).

The value is the building block's −log p (:func:`xce._ctc_kernels.ctc_negative_log_likelihood`)
of the log-probabilities *as given*, as PyTorch takes them. The gradient is PyTorch's, which is
not ∂loss/∂log_probs: its CPU and CUDA backward (``ctc_loss_backward_cpu_template``) return
exp(log_probs) − γ at each frame of a sequence (γ the posterior occupancy of each class), the
gradient with respect to the logits of a log_softmax, whether or not the inputs were
normalised; 0 past a sequence's input length; NaN over an impossible sequence (its loss is
+inf), or 0 there under ``zero_infinity``. The twin gives the same under ``torch.autograd``
and ``jax.grad``.
"""

from __future__ import annotations

from .._array_api import device, is_numpy_namespace
from .._types import Array, Namespace
from ._common import checked, ensure, namespace_of, stop_gradient
from ._ctc_common import ctc_labels, lengths_array, poisoned
from ._ctc_gradient import framework_ctc
from ._torch_rules import check_reduction

__all__ = ["CTCLoss", "ctc_loss"]


def _padded_targets(xp: Namespace, targets: Array, lengths: Array) -> tuple[Array, Array | None]:
    """1-D concatenated targets as (N, S) right-padded rows, S = len(targets), by a gather
    from each sequence's offset (no value read: it works on lazy arrays). PyTorch requires
    len(targets) = Σ lengths: an error on eager host data, else every row is poisoned."""
    total, n = targets.shape[0], lengths.shape[0]
    mismatch = xp.sum(lengths) != total
    if checked(lengths):
        expected = int(xp.sum(lengths))
        ensure(xp, mismatch, "targets (1-D, the sequences concatenated) must have size "
                             f"sum(target_lengths) = {expected}, got {total}")  # fmt: skip
    bad = None if checked(lengths) else xp.broadcast_to(mismatch, (n,))
    if total == 0:  # every sequence is empty
        return xp.zeros((n, 1), dtype=targets.dtype, device=device(targets)), bad
    ends = xp.cumulative_sum(lengths)
    positions = xp.arange(total, dtype=lengths.dtype, device=device(lengths))
    index = xp.clip((ends - lengths)[:, None] + positions[None, :], 0, total - 1)
    rows = xp.reshape(xp.take(targets, xp.reshape(index, (-1,)), axis=0), (n, total))
    return rows, bad


def ctc_loss(
    log_probs: Array,
    targets: Array,
    input_lengths: Array | tuple[int, ...] | list[int],
    target_lengths: Array | tuple[int, ...] | list[int],
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Array:
    """Twin of ``torch.nn.functional.ctc_loss``: the CTC loss of time-major log-probabilities.

    ``log_probs`` (T, N, C), or (T, C) unbatched, used as given (normally a log_softmax);
    ``targets`` (N, S) right-padded, or 1-D: the N sequences concatenated (sum of
    ``target_lengths`` entries); lengths as integer arrays of shape (N,) (0-d unbatched) or
    tuples / lists. ``"mean"`` divides each loss by its target length (at least 1), then
    averages; ``"sum"``; ``"none"`` gives (N,). An impossible alignment gives +inf, or 0 with
    a zero gradient under ``zero_infinity``. Under autograd the gradient is PyTorch's (see
    the module docstring).

    Native: ``xce.ctc_loss(targets, permute_dims(log_probs, (1, 0, 2)), from_logits=True,
    input_lengths=..., label_lengths=...)``, whose ``"mean"`` weighs sequences alike.

    Parameters
    ----------
    log_probs : array, shape (T, N, C) or (T, C)
        Log-probabilities, used as given.
    targets : int array, shape (N, S) or (sum(target_lengths),)
        Right-padded label sequences, or the sequences concatenated.
    input_lengths : int array, tuple or list, shape (N,)
        Frames per sequence.
    target_lengths : int array, tuple or list, shape (N,)
        Labels per sequence.
    blank : int, default 0
        The blank class.
    reduction : {"mean", "sum", "none"}, default "mean"
        PyTorch's reduction: ``"mean"`` divides each loss by its target length first.
    zero_infinity : bool, default False
        Whether an impossible alignment's +inf becomes 0, with a zero gradient.

    Returns
    -------
    array
        0-d, or shape (N,) for ``reduction="none"``.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import torch as F
    >>> log_probs = np.log(np.full((3, 1, 3), 1 / 3))
    >>> F.ctc_loss(log_probs, np.array([[1, 2]]), (3,), (2,), reduction="none")
    array([1.68639895])
    """
    arrays = {"input_lengths": input_lengths, "target_lengths": target_lengths}
    xp = namespace_of(log_probs=log_probs, targets=targets,
                      **{k: v for k, v in arrays.items() if hasattr(v, "dtype")})  # fmt: skip
    check_reduction(reduction)
    if log_probs.ndim not in (2, 3):
        raise ValueError(f"log_probs must be (T, N, C) or (T, C) unbatched, got shape "
                         f"{tuple(log_probs.shape)}")  # fmt: skip
    unbatched = log_probs.ndim == 2
    if unbatched:
        log_probs = log_probs[:, None, :]  # 1-D targets stay 1-D: one concatenated sequence
    n_times, n, n_classes = log_probs.shape
    if isinstance(blank, bool) or not 0 <= blank < n_classes:
        raise ValueError("blank must be in label range")
    in_len = xp.reshape(lengths_array(xp, input_lengths, log_probs, "input_lengths"), (-1,))
    tg_len = xp.reshape(lengths_array(xp, target_lengths, log_probs, "target_lengths"), (-1,))
    for name, lengths in (("input_lengths", in_len), ("target_lengths", tg_len)):
        if lengths.shape[0] != n:
            raise ValueError(f"{name} must be of size batch_size ({n}), got "
                             f"{lengths.shape[0]}")  # fmt: skip
    bad_rows = []
    if targets.ndim == 1:
        targets, overrun = _padded_targets(xp, targets, tg_len)
        bad_rows.append(overrun)
    elif targets.ndim != 2 or targets.shape[0] != n:
        raise ValueError(f"targets must be (N, S) = ({n}, S) or 1-D concatenated, got shape "
                         f"{tuple(targets.shape)}")  # fmt: skip
    for name, lengths, top in (("input_lengths", in_len, n_times),
                               ("target_lengths", tg_len, targets.shape[1])):  # fmt: skip
        bad = (lengths < 0) | (lengths > top)
        if checked(lengths):
            ensure(xp, bad, f"{name} must hold values in [0, {top}] (as PyTorch requires), "
                            f"got {lengths}")  # fmt: skip
        else:
            bad_rows.append(bad)
    clipped_tg = xp.clip(tg_len, 0, targets.shape[1])
    labels, bad = ctc_labels(xp, targets, clipped_tg, n_classes, blank, name="targets",
                             check=checked(targets, tg_len))  # fmt: skip
    clipped_in = xp.clip(in_len, 0, n_times)
    time_major = xp.permute_dims(stop_gradient(log_probs), (1, 0, 2))
    loss = framework_ctc(
        xp, log_probs, time_major, labels, clipped_in, clipped_tg, blank, time_major=True,
        infinite_rows=0.0 if zero_infinity else float("nan"),
    )  # fmt: skip
    for rows in [bad, *bad_rows]:
        loss = poisoned(xp, loss, rows)
    if zero_infinity:
        loss = xp.where(loss == float("inf"), xp.zeros_like(loss), loss)
    if reduction == "none":
        return loss[0] if unbatched else loss
    if reduction == "sum":
        total = xp.sum(loss)
    else:
        per_label = xp.astype(xp.clip(tg_len, 1, None), loss.dtype)
        total = xp.mean(loss / per_label)
    # NumPy's reductions return a NumPy scalar; PyTorch (and every other twin) a 0-d array
    return xp.asarray(total) if is_numpy_namespace(xp) else total


class CTCLoss:
    """Twin of ``torch.nn.CTCLoss``: :func:`ctc_loss` with the stored options.

    Called as ``forward(log_probs, targets, input_lengths, target_lengths)``.

    Parameters
    ----------
    blank : int, default 0
        The blank class.
    reduction : {"mean", "sum", "none"}, default "mean"
        PyTorch's reduction: ``"mean"`` divides each loss by its target length first.
    zero_infinity : bool, default False
        Whether an impossible alignment's +inf becomes 0, with a zero gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat.torch import CTCLoss
    >>> log_probs = np.log(np.full((3, 1, 3), 1 / 3))
    >>> round(float(CTCLoss(reduction="sum")(log_probs, np.array([[1, 2]]), (3,), (2,))), 6)
    1.686399
    """

    def __init__(self, blank: int = 0, reduction: str = "mean",
                 zero_infinity: bool = False) -> None:  # fmt: skip
        self.blank, self.reduction, self.zero_infinity = blank, reduction, zero_infinity

    def __call__(self, log_probs: Array, targets: Array, input_lengths: Array,
                 target_lengths: Array) -> Array:  # fmt: skip
        return self.forward(log_probs, targets, input_lengths, target_lengths)

    def forward(self, log_probs: Array, targets: Array, input_lengths: Array,
                target_lengths: Array) -> Array:  # fmt: skip
        """Compute ``ctc_loss(log_probs, targets, ...)`` with the stored options.

        Parameters
        ----------
        log_probs : array, shape (T, N, C) or (T, C)
            Log-probabilities, used as given.
        targets : int array, shape (N, S) or (sum(target_lengths),)
            Right-padded label sequences, or the sequences concatenated.
        input_lengths : int array, tuple or list, shape (N,)
            Frames per sequence.
        target_lengths : int array, tuple or list, shape (N,)
            Labels per sequence.

        Returns
        -------
        array
            0-d, or shape (N,) for ``reduction="none"``.
        """
        return ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=self.blank,
                        reduction=self.reduction, zero_infinity=self.zero_infinity)  # fmt: skip

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
