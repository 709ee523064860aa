"""The CTC twins whose originals replace log 0 by a finite ``log_epsilon``: Optax's
``ctc_loss`` and Keras's ``losses.ctc`` / ``losses.CTC`` (Keras 3 on JAX runs Optax's
algorithm), re-exported by :mod:`xce.compat.optax` and :mod:`xce.compat.keras`.

Their numbers are those of Optax's forward recursion, not of the textbook forward algorithm:
a transition CTC forbids (starting past the first label, two equal labels without a blank
between them) is allowed at the cost ``log_epsilon`` (-1e5). Wherever an alignment exists the
two agree to rounding (a term e^-1e5 smaller does not change a float), but an impossible
alignment (too few frames) gets a large finite loss, about 1e5 per forbidden step, with a
finite gradient, where the textbook loss is +inf. That value is what Optax code trains with,
so these twins run the same recursion (over the time axis with ``jax.lax.scan`` on JAX, so a
``jit`` program does not grow with T; a Python loop elsewhere), and autodiff of it gives
Optax's gradient on torch and JAX.
"""

from __future__ import annotations

from typing import Any

import xce

from .. import _agnostic as agnostic
from .._array_api import device, is_jax_array
from .._types import Array, Namespace
from ._common import as_array, checked, ensure, gather
from ._ctc_common import ctc_labels, poisoned

__all__ = ["CTC", "ctc", "ctc_loss", "epsilon_ctc"]


def _scan(step: Any, carry: tuple[Array, Array], xs: tuple[Array, ...]) -> tuple[Array, Array]:
    """``carry = step(carry, xs[.][t])`` for every t: ``jax.lax.scan`` on JAX arrays (one
    compiled step, not T of them), a loop elsewhere."""
    if is_jax_array(xs[0]):
        import jax  # only reached with JAX arrays

        return jax.lax.scan(lambda c, x: (step(c, x), None), carry, xs)[0]
    for t in range(xs[0].shape[0]):
        carry = step(carry, tuple(x[t, ...] for x in xs))
    return carry


def epsilon_ctc(
    xp: Namespace,
    log_probs: Array,
    frame_padded: Array,
    labels: Array,
    raw_labels: Array,
    label_lengths: Array,
    blank: int,
    log_epsilon: Array,
) -> Array:
    """Optax's CTC loss (N,) of ``log_probs`` (N, T, C) by its forward recursion.

    ``frame_padded`` (N, T) boolean skips frames (anywhere, not only at the end);
    ``labels`` (N, S) are in range within ``label_lengths``; ``raw_labels`` are the labels as
    given, from which, as in Optax, the repeats are found (padding included: its value can
    only change which of two equal-valued routes carries the cost).

    The states after n labels are phi[n] (last emission a blank, or none) and emit[n] (last
    emission label n); a forbidden move costs ``log_epsilon`` instead of being removed.
    """
    n, _, n_classes = log_probs.shape
    s = labels.shape[1]
    dtype, on_device = log_probs.dtype, device(log_probs)
    eps = xp.astype(log_epsilon, dtype)
    classes = xp.arange(n_classes, dtype=labels.dtype, device=on_device)
    one_hot = xp.astype(labels[:, :, None] == classes, dtype)  # (N, S, C)
    # The log-probability of each label at each frame, by a one-hot product as in Optax.
    emit_lp = xp.matmul(log_probs, xp.permute_dims(one_hot, (0, 2, 1)))  # (N, T, S)
    blank_lp = log_probs[:, :, blank : blank + 1]  # (N, T, 1)
    same = xp.astype(raw_labels[:, :-1] == raw_labels[:, 1:], dtype)
    repeat = xp.concat([same, xp.zeros((n, 1), dtype=dtype, device=on_device)], axis=1)

    def add_to_later(phi, score):  # phi[:, 1:] ⊕= score, in log space
        return xp.concat([phi[:, :1], xp.logaddexp(phi[:, 1:], score)], axis=1)

    def step(carry, frame):
        phi, emit = carry
        lp_emit, lp_blank, skip = frame
        # emit[n] -> phi[n+1] without a frame: moving on to label n+1 directly (a cost
        # where label n+1 repeats label n, which needs a blank in between).
        moved = add_to_later(phi, emit + eps * repeat)
        new_emit = xp.logaddexp(moved[:, :-1] + lp_emit, emit + lp_emit)
        new_phi = add_to_later(moved + lp_blank, emit + lp_blank + eps * (1.0 - repeat))
        skip = skip[:, None]
        return xp.where(skip, phi, new_phi), xp.where(skip, emit, new_emit)

    start = xp.zeros((n, 1), dtype=dtype, device=on_device)
    phi0 = xp.concat([start, xp.zeros((n, s), dtype=dtype, device=on_device) + eps], axis=1)
    emit0 = xp.zeros((n, s), dtype=dtype, device=on_device) + eps
    time_major = (
        xp.permute_dims(emit_lp, (1, 0, 2)),
        xp.permute_dims(blank_lp, (1, 0, 2)),
        xp.permute_dims(frame_padded, (1, 0)),
    )
    phi, emit = _scan(step, (phi0, emit0), time_major)
    final = add_to_later(phi, emit)  # (N, S + 1)
    index = xp.astype(label_lengths, labels.dtype)[:, None]
    return -agnostic.take_along_last_axis(xp, final, index)[:, 0]


def _zero_one(xp: Namespace, paddings: Array, name: str) -> Array | None:
    """Paddings must be 0.0 or 1.0 (Optax mixes frames with the fraction otherwise)."""
    bad = ~((paddings == 0) | (paddings == 1))
    if checked(paddings):
        ensure(xp, bad, f"{name} must hold 0.0 (a value) or 1.0 (padding) only")
        return None
    return xp.any(bad, axis=1)


def ctc_loss(
    logits: Array,
    logit_paddings: Array,
    labels: Array,
    label_paddings: Array,
    blank_id: int = 0,
    log_epsilon: float | Array = -1e5,
) -> Array:
    """Twin of ``optax.losses.ctc_loss``: the CTC loss of each sequence, from logits.

    ``logits`` (B, T, K) are normalised here (log_softmax over K); ``logit_paddings`` (B, T)
    is 1.0 at padded frames (skipped wherever they are); ``labels`` (B, N) integer, right-
    padded, ``label_paddings`` (B, N) 1.0 at padding (a row of zeros, then ones); the blank
    is class ``blank_id``. A sequence with no alignment gets a large finite loss (about
    ``-log_epsilon`` per forbidden step), as in Optax.

    Native: ``xce.ctc_loss(labels, logits, from_logits=True, input_lengths=...,
    label_lengths=..., reduction="none")``, which gives +inf where no alignment exists.

    Parameters
    ----------
    logits : array, shape (B, T, K)
        Unnormalised scores.
    logit_paddings : array, shape (B, T)
        1.0 at padded frames, 0.0 elsewhere.
    labels : int array, shape (B, N)
        Right-padded label sequences.
    label_paddings : array, shape (B, N)
        1.0 at padding, 0.0 elsewhere (zeros, then ones).
    blank_id : int, default 0
        The blank class.
    log_epsilon : float or 0-d array, default -1e5
        The log-probability of a forbidden step.

    Returns
    -------
    array, shape (B,)
        The loss of each sequence, in ``logits``'s namespace and device.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import optax
    >>> logits = np.zeros((1, 3, 3))
    >>> optax.ctc_loss(logits, np.zeros((1, 3)), np.array([[1, 2]]), np.zeros((1, 2)))
    array([1.68639895])
    """
    xp, arrays = gather(logits=logits, logit_paddings=logit_paddings, labels=labels,
                        label_paddings=label_paddings)  # fmt: skip
    logits, labels = arrays["logits"], arrays["labels"]
    frame_pad, label_pad = arrays["logit_paddings"], arrays["label_paddings"]
    if logits.ndim != 3 or labels.ndim != 2:
        raise ValueError(f"logits must be 3-D (B, T, K) and labels 2-D (B, N), got shapes "
                         f"{tuple(logits.shape)} and {tuple(labels.shape)}")  # fmt: skip
    for name, pad, shape in (("logit_paddings", frame_pad, logits.shape[:2]),
                             ("label_paddings", label_pad, labels.shape)):  # fmt: skip
        if tuple(pad.shape) != tuple(shape):
            raise ValueError(f"{name} has shape {tuple(pad.shape)}, expected {tuple(shape)}")
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(f"Expected `labels` to have batch size {logits.shape[0]}, got "
                         f"{labels.shape[0]}.")  # fmt: skip
    n_classes = logits.shape[2]
    if not 0 <= blank_id < n_classes:
        raise ValueError(f"blank_id={blank_id} is not a class of logits (K = {n_classes})")
    log_probs = xce.log_softmax(xp.astype(logits, agnostic.compute_dtype(xp, logits.dtype)))
    label_pad = xp.astype(label_pad, log_probs.dtype)
    bad_pads = [_zero_one(xp, frame_pad, "logit_paddings"),
                _zero_one(xp, label_pad, "label_paddings")]  # fmt: skip
    out_of_order = label_pad[:, 1:] < label_pad[:, :-1]  # a value after a padding
    if checked(label_pad):
        ensure(xp, out_of_order, "labels must be right-padded: each row of label_paddings "
                                 "is zeros, then ones")  # fmt: skip
    else:
        bad_pads.append(xp.any(out_of_order, axis=1))
    label_lengths = labels.shape[1] - xp.astype(xp.sum(label_pad, axis=1), xp.int32)
    loss = _finish(
        xp, log_probs, frame_pad != 0, labels, label_lengths, blank_id,
        as_array(xp, log_epsilon, log_probs, "log_epsilon"), bad_pads, "labels",
    )  # fmt: skip
    return xp.astype(loss, logits.dtype, copy=False)


def _finish(xp, log_probs, frame_padded, labels, label_lengths, blank, eps, bad_rows, name):
    raw = labels
    labels, bad = ctc_labels(xp, labels, label_lengths, log_probs.shape[2], blank, name=name,
                             check=checked(labels, label_lengths))  # fmt: skip
    if xp.isdtype(raw.dtype, "real floating"):
        raw = labels  # whole floats (fractional ones poison their row anyway)
    loss = epsilon_ctc(xp, log_probs, frame_padded, labels, raw, label_lengths, blank, eps)
    for rows in [bad, *bad_rows]:
        loss = poisoned(xp, loss, rows)
    return loss


def ctc(y_true: Array, y_pred: Array) -> Array:
    """Twin of ``keras.losses.ctc``: the CTC loss of each sequence, shape (N,), Keras 3's rules.

    ``y_true`` (N, S) labels right-padded with 0, the blank (its length is the count of
    entries that are not 0); ``y_pred`` (N, T, C) logits (normalised here), every frame
    used. As on Keras's JAX backend (Optax's algorithm) a sequence with no alignment gets a
    large finite loss (Keras on torch: +inf). float16 / bfloat16 are computed in float32,
    float64 in float64 (Keras converts float64 logits to float32).

    Native: ``xce.ctc_loss(y_true, y_pred, from_logits=True, label_lengths=...,
    reduction="none")``.

    Parameters
    ----------
    y_true : int array, shape (N, S)
        Labels right-padded with 0, the blank.
    y_pred : array, shape (N, T, C)
        Logits.

    Returns
    -------
    array, shape (N,)
        The loss of each sequence.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import keras
    >>> keras.ctc(np.array([[1, 2, 0]]), np.zeros((1, 3, 3)))
    array([1.68639895])
    """
    xp, arrays = gather(y_pred=y_pred, y_true=y_true)
    y_pred, y_true = arrays["y_pred"], arrays["y_true"]
    if y_true.ndim != 2:
        raise ValueError(
            "Targets `y_true` are expected to be a tensor of shape `(batch_size, max_length)` "
            f"in integer format. Received: y_true.shape={tuple(y_true.shape)}"
        )
    if y_pred.ndim != 3:
        raise ValueError(
            "Logits `y_pred` are expected to be a tensor of shape "
            f"`(batch_size, max_length, num_classes)`. Received: y_pred.shape="
            f"{tuple(y_pred.shape)}"
        )
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(f"y_true has {y_true.shape[0]} sequences but y_pred has "
                         f"{y_pred.shape[0]}")  # fmt: skip
    dtype = agnostic.compute_dtype(xp, y_pred.dtype)  # float32 at least, as Keras
    log_probs = xce.log_softmax(xp.astype(y_pred, dtype), axis=-1)
    label_lengths = xp.sum(xp.astype(y_true != 0, xp.int32), axis=1)
    frames = xp.zeros(y_pred.shape[:2], dtype=xp.bool, device=device(y_pred))
    eps = xp.asarray(-1e5, dtype=dtype, device=device(y_pred))
    return _finish(xp, log_probs, frames, y_true, label_lengths, 0, eps, [], "y_true")


def _keras_rules() -> Any:
    """The class twins' module (Keras's reductions and dtype rule). Imported on use, through
    xce.compat.keras: that module imports this one, and _keras_classes imports it back."""
    from . import _keras_classes, keras  # noqa: F401

    return _keras_classes


class CTC:
    """Twin of ``keras.losses.CTC``: :func:`ctc`, reduced by Keras's rules.

    ``sample_weight``, then ``"sum_over_batch_size"`` by default, ``"sum"``, ``"mean"``,
    ``"mean_with_sample_weight"``, ``"none"`` / ``None``; ``get_config`` / ``from_config``.

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
        Keras's reduction of the per-sequence losses.
    name : str, default "ctc"
        Stored, as Keras's loss name.
    dtype : str or dtype, optional
        The dtype ``y_pred`` is cast to; None computes in ``y_pred``'s dtype (Keras:
        ``floatx()``).

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat.keras import CTC
    >>> CTC(reduction="none")(np.array([[1, 2, 0]]), np.zeros((1, 3, 3)))
    array([1.68639895])
    """

    def __init__(self, reduction: Any = "sum_over_batch_size", name: str = "ctc",
                 dtype: Any = None) -> None:  # fmt: skip
        _keras_rules().check_keras_reduction(reduction)
        self.name, self.reduction, self.dtype = name, reduction, dtype

    def __call__(self, y_true: Array, y_pred: Array, sample_weight: Array | None = None) -> Array:
        """Compute the reduced loss.

        Parameters
        ----------
        y_true : int array, shape (N, S)
            Labels right-padded with 0, the blank.
        y_pred : array, shape (N, T, C)
            Logits.
        sample_weight : array or number, optional
            Weights of the per-sequence losses.

        Returns
        -------
        array
            0-d, or shape (N,) for ``reduction="none"``.
        """
        xp, arrays = gather(y_pred=y_pred, y_true=y_true, sample_weight=sample_weight)
        rules = _keras_rules()
        y_pred = rules.cast_to_keras_dtype(xp, arrays["y_pred"], self.dtype)
        values = ctc(arrays["y_true"], y_pred)
        return rules.reduce_weighted(xp, values, arrays["sample_weight"], None, self.reduction)

    def get_config(self) -> dict[str, Any]:
        """Return the constructor's arguments, as Keras's ``Loss.get_config`` does.

        Returns
        -------
        dict
            The name and the reduction.
        """
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CTC:
        """Make a new instance from :meth:`get_config`'s dictionary.

        Parameters
        ----------
        config : dict
            The constructor's arguments.

        Returns
        -------
        CTC
            The loss object.
        """
        return cls(**config)
