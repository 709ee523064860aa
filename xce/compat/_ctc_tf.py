"""TensorFlow's ``tf.nn.ctc_loss`` (TF 2, dense labels) on any array type, re-exported by
:mod:`xce.compat.tf` (whose docstring lists how the twins depart from TensorFlow).

TensorFlow normalises the logits (log_softmax over the classes) and runs its own
forward-backward; its gradient with respect to the logits, softmax − γ at the frames of a
sequence and 0 past its length, is the true gradient of the loss. The twin computes the loss
with the building block (:func:`xce._ctc_kernels.ctc_negative_log_likelihood`) and gives that
gradient under ``torch.autograd`` and ``jax.grad``. A sequence with no alignment has loss
+inf (TensorFlow: a large finite number, see :mod:`xce.compat.tf`) and the gradient
softmax at its frames (no path carries occupancy).
"""

from __future__ import annotations

import xce

from .._types import Array
from ._common import checked, ensure, gather, stop_gradient
from ._ctc_common import ctc_labels, lengths_array, poisoned
from ._ctc_gradient import framework_ctc

__all__ = ["ctc_loss"]


def ctc_loss(
    labels: Array,
    logits: Array,
    label_length: Array | tuple[int, ...] | list[int],
    logit_length: Array | tuple[int, ...] | list[int],
    logits_time_major: bool = True,
    unique: object = None,
    blank_index: int | None = None,
    name: str | None = None,
) -> Array:
    """Twin of ``tf.nn.ctc_loss`` with dense labels: the CTC loss of each sequence, shape (N,).

    ``labels`` (N, S) integer, right-padded; ``logits`` (T, N, C) (``logits_time_major``,
    the default) or (N, T, C), unnormalised (a log_softmax is taken over C); lengths (N,).
    ``blank_index`` None is 0, as for TF's dense labels; a negative one counts from C (-1:
    the last class). ``unique`` (TF's speed hint for TPUs) does not change the result and
    is not read; ``name`` is not used. float16 / bfloat16 are computed in float32.

    Native: ``xce.ctc_loss(labels, logits, from_logits=True, input_lengths=logit_length,
    label_lengths=label_length, blank=..., reduction="none")`` (batch-major).

    Parameters
    ----------
    labels : int array, shape (N, S)
        Right-padded label sequences.
    logits : array, shape (T, N, C) or (N, T, C)
        Unnormalised scores; the layout is set by ``logits_time_major``.
    label_length : int array, tuple or list, shape (N,)
        Labels per sequence.
    logit_length : int array, tuple or list, shape (N,)
        Frames per sequence.
    logits_time_major : bool, default True
        Whether ``logits`` is (T, N, C).
    unique : object, optional
        TF's speed hint for TPUs; not read.
    blank_index : int, optional
        The blank class; None is 0, a negative one counts from C.
    name : str, optional
        TF's op name; not used.

    Returns
    -------
    array, shape (N,)
        The loss of each sequence, in ``logits``'s namespace and device.

    Examples
    --------
    >>> import numpy as np
    >>> from xce.compat import tf
    >>> tf.ctc_loss(np.array([[1, 2]]), np.zeros((3, 1, 3)), [2], [3])
    array([1.68639895])
    """
    if type(labels).__name__ == "SparseTensor" or hasattr(labels, "dense_shape"):
        raise TypeError(
            "labels is a SparseTensor: xce.compat.tf.ctc_loss takes dense labels only, (N, S) "
            "right-padded with label_length; convert with tf.sparse.to_dense"
        )
    if label_length is None:
        raise ValueError("label_length is required with dense labels")
    lengths = {"label_length": label_length, "logit_length": logit_length}
    xp, arrays = gather(logits=logits, labels=labels,
                        **{k: v for k, v in lengths.items() if hasattr(v, "dtype")})  # fmt: skip
    logits, labels = arrays["logits"], arrays["labels"]
    if logits.ndim != 3:
        raise ValueError(f"logits must be 3-D, (T, N, C) time-major or (N, T, C), got shape "
                         f"{tuple(logits.shape)}")  # fmt: skip
    n_classes = logits.shape[2]
    blank = 0 if blank_index is None else blank_index + (n_classes if blank_index < 0 else 0)
    if not 0 <= blank < n_classes:
        raise ValueError(f"blank_index={blank_index} is not a class of logits (C = {n_classes})")
    constant = stop_gradient(logits)
    if logits_time_major:
        constant = xp.permute_dims(constant, (1, 0, 2))
    n, n_times = constant.shape[:2]
    log_probs = xce.log_softmax(constant, axis=-1)
    lab_len = lengths_array(xp, arrays.get("label_length", label_length), logits,
                            "label_length")  # fmt: skip
    in_len = lengths_array(xp, arrays.get("logit_length", logit_length), logits, "logit_length")
    if labels.ndim != 2 or labels.shape[0] != n:
        raise ValueError(f"labels must be (N, S) = ({n}, S), got shape {tuple(labels.shape)}")
    bad_rows = []
    for what, lengths, top in (("label_length", lab_len, labels.shape[1]),
                               ("logit_length", in_len, n_times)):  # fmt: skip
        if tuple(lengths.shape) != (n,):
            raise ValueError(f"{what} must have shape ({n},), got {tuple(lengths.shape)}")
        bad = (lengths < 0) | (lengths > top)
        if checked(lengths):
            ensure(xp, bad, f"{what} must hold values in [0, {top}], got {lengths}")
        else:
            bad_rows.append(bad)
    lab_len, in_len = xp.clip(lab_len, 0, labels.shape[1]), xp.clip(in_len, 0, n_times)
    labels, bad = ctc_labels(xp, labels, lab_len, n_classes, blank, name="labels",
                             check=checked(labels, lab_len))  # fmt: skip
    loss = framework_ctc(xp, logits, log_probs, labels, in_len, lab_len, blank,
                         time_major=logits_time_major, infinite_rows=None)  # fmt: skip
    for rows in [bad, *bad_rows]:
        loss = poisoned(xp, loss, rows)
    return loss
