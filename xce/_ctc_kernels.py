"""The CTC building block: −log p of label sequences under per-frame log-probabilities, and
its gradient, on any array type. :func:`xce.ctc_loss` and the framework twins
(``xce.compat.*``) are built on it.

It checks the arrays' structure, then hands them to the backend's kernel: NumPy (and CPU
torch tensors, as views) to :mod:`xce._ctc_numpy`, JAX to :mod:`xce._ctc_jax` (``lax.scan``
in a ``custom_vjp``), Dask to :mod:`xce._ctc_dask` (lazily, over blocks of the batch),
others to the generic kernel of :mod:`xce._agnostic._ctc`; torch tensors go through an
``autograd.Function`` (:mod:`xce._ctc_torch`). Framework modules are imported only when
their array is seen.
"""

from __future__ import annotations

import math
from typing import Any

from . import _fast
from ._agnostic import compute_dtype
from ._agnostic._ctc import ctc_extended_labels, ctc_generic
from ._arguments import gather_arrays
from ._array_api import (
    device,
    is_dask_namespace,
    is_eager_host,
    is_jax_namespace,
    is_numpy_namespace,
    is_torch_namespace,
)
from ._types import Array, Namespace, Validate
from ._validation import values_checked

__all__ = ["check_ctc_arrays", "ctc_negative_log_likelihood", "raise_on_bad_sequences"]


def check_ctc_arrays(
    xp: Namespace, log_probs: Array, labels: Array, input_lengths: Array, label_lengths: Array,
    *, blank: int, pred_name: str = "log_probs",
) -> None:  # fmt: skip
    """Refuse a call whose structure is wrong (errors name the argument): ``log_probs`` not
    3-D floating, ``labels`` not (N, S) integer, a length not (N,) integer, ``blank`` not an
    integer in [0, C)."""
    if log_probs.ndim != 3:
        raise ValueError(
            f"{pred_name} must be 3-D (N, T, C): batch, time, classes; got shape "
            f"{tuple(log_probs.shape)}"
        )
    if not xp.isdtype(log_probs.dtype, "real floating"):
        raise TypeError(f"{pred_name} must have a real floating dtype, got {log_probs.dtype}")
    n, _, n_classes = log_probs.shape
    if not xp.isdtype(labels.dtype, "integral"):
        raise TypeError(
            f"labels must be integers (class indices), got {labels.dtype}; cast them with "
            "astype(int64)"
        )
    if labels.ndim != 2 or labels.shape[0] != n:
        raise ValueError(
            f"labels must be (N, S) = ({n}, S), right-padded label sequences; got shape "
            f"{tuple(labels.shape)}"
        )
    for name, lengths in (("input_lengths", input_lengths), ("label_lengths", label_lengths)):
        if not xp.isdtype(lengths.dtype, "integral"):
            raise TypeError(f"{name} must be integers, got {lengths.dtype}")
        if tuple(lengths.shape) != (n,):
            raise ValueError(
                f"{name} must have shape (N,) = ({n},), one length per sequence; got "
                f"{tuple(lengths.shape)}"
            )
    if isinstance(blank, bool) or not isinstance(blank, int) or not 0 <= blank < n_classes:
        raise ValueError(f"blank={blank!r} must be an integer class index in [0, C={n_classes})")


def raise_on_bad_sequences(
    xp: Namespace, labels: Array, input_lengths: Array, label_lengths: Array,
    *, blank: int, n_classes: int, n_times: int,
) -> None:  # fmt: skip
    """On data whose values may be read: the first broken rule, as a ValueError that names
    the argument and a sequence that breaks it."""

    def first(flags: Array) -> int | None:
        return int(xp.argmax(xp.astype(flags, xp.int8))) if bool(xp.any(flags)) else None

    s_max = labels.shape[1]
    checks = [
        ("input_lengths", input_lengths, n_times),
        ("label_lengths", label_lengths, s_max),
    ]
    for name, lengths, top in checks:
        i = first((lengths < 0) | (lengths > top))
        if i is not None:
            limit = "T" if name == "input_lengths" else "S"
            raise ValueError(f"{name}[{i}] = {int(lengths[i])} must be in [0, {limit}={top}]")
    positions = xp.arange(s_max, dtype=label_lengths.dtype, device=device(labels))
    within = positions < label_lengths[:, None]
    outside = xp.any(within & ((labels < 0) | (labels >= n_classes)), axis=1)
    i = first(outside)
    if i is not None:
        raise ValueError(
            f"labels of sequence {i} hold a class outside [0, C={n_classes}) within its "
            "label_length (entries past label_lengths are ignored, whatever they hold)"
        )
    i = first(xp.any(within & (labels == blank), axis=1))
    if i is not None:
        raise ValueError(
            f"labels of sequence {i} hold the blank ({blank}) within its label_length: the "
            "blank separates labels and cannot be one; pick another blank= or remap the labels"
        )


def _full_lengths(xp, lengths, n, size, like):
    if lengths is None:
        return xp.full((n,), size, dtype=like.dtype, device=device(like))
    return lengths


def ctc_negative_log_likelihood(
    log_probs: Array,
    labels: Array,
    input_lengths: Array | None,
    label_lengths: Array | None,
    *,
    blank: int,
    with_grad: bool,
    validate: Validate = "auto",
) -> tuple[Array, Array | None]:
    """−log p(labelsᵢ | log_probsᵢ) per sequence by the CTC forward algorithm in log space,
    and with ``with_grad`` its gradient.

    Parameters
    ----------
    log_probs : array (N, T, C)
        Per-frame log-probabilities, batch-major, used as given (not normalised: as in
        torch's ``F.ctc_loss``). float16 / bfloat16 are computed in float32.
    labels : integer array (N, S)
        Right-padded label sequences; entries past ``label_lengths`` are ignored whatever
        they hold. NumPy arrays and sequences are converted to ``log_probs``' library.
    input_lengths, label_lengths : integer arrays (N,), or None for T / S
        Frames and labels of each sequence.
    blank : int
        The blank class, in [0, C).
    with_grad : bool
        Whether to return the gradient too.
    validate : {"auto", True, False}
        ``"auto"`` raises on bad values where they can be read for free (NumPy, CPU torch,
        array-api-strict); elsewhere a sequence that breaks a rule gets NaN.

    Returns
    -------
    nll : array (N,)
        −log p per sequence in ``log_probs``' dtype; +inf where no alignment is possible
        (too few frames, a −inf on every path); NaN for a sequence that breaks a rule and
        was not checked.
    grad : array (N, T, C) or None
        ∂(Σᵢ nllᵢ)/∂ log_probs = −γ, the posterior occupancy of each class at each frame
        (summed over the positions of the extended labels that hold it): 0 at frames
        t ≥ input_lengthᵢ and 0 for an impossible sequence (its loss is +inf: no direction
        makes it possible), NaN for a bad one.

    Raises
    ------
    TypeError, ValueError
        Bad structure (see :func:`check_ctc_arrays`), and on read values: lengths out of
        range, a label outside [0, C) or equal to the blank within its length.

    Notes
    -----
    Under ``torch.autograd`` and ``jax.grad`` / ``jax.jit`` the loss has a custom backward
    that uses the gradient computed with the forward pass; on JAX the time loop is one
    ``lax.scan`` (the program does not grow with T).
    """
    xp, arrays = gather_arrays(
        log_probs, labels=labels, input_lengths=input_lengths, label_lengths=label_lengths
    )
    labels = arrays["labels"]
    if labels is None or not hasattr(labels, "ndim"):
        raise TypeError("labels must be an integer array (N, S)")
    n, n_times, n_classes = log_probs.shape if log_probs.ndim == 3 else (0, 0, 0)
    input_lengths = _full_lengths(xp, arrays["input_lengths"], n, n_times, labels)
    label_lengths = _full_lengths(xp, arrays["label_lengths"], n, labels.shape[-1], labels)
    check_ctc_arrays(xp, log_probs, labels, input_lengths, label_lengths, blank=blank)
    checked = values_checked(validate, log_probs, labels, input_lengths, label_lengths)
    if checked:
        raise_on_bad_sequences(
            xp, labels, input_lengths, label_lengths, blank=blank, n_classes=n_classes,
            n_times=n_times,
        )  # fmt: skip
    out_dtype = log_probs.dtype
    work = compute_dtype(xp, out_dtype)
    x = xp.astype(log_probs, work, copy=False)
    if is_dask_namespace(xp) or is_jax_namespace(xp):
        # Their own wrappers: Dask over blocks of the batch, JAX as one compiled program.
        if is_dask_namespace(xp):
            from ._ctc_dask import ctc_dask as lazy_kernel
        else:
            from ._ctc_jax import ctc_jax as lazy_kernel
        nll, grad = lazy_kernel(
            x, labels, input_lengths, label_lengths, blank=blank, with_grad=with_grad
        )
    else:
        ext, skip, t_len, l_len, bad = ctc_extended_labels(
            xp, labels, input_lengths, label_lengths, blank=blank, n_classes=n_classes,
            n_times=n_times,
        )  # fmt: skip
        nll, grad = _kernel(xp, x, ext, skip, t_len, l_len, with_grad=with_grad)
        if not checked:  # checked data raised on any bad sequence
            nll = xp.where(bad, xp.full_like(nll, math.nan), nll)
            if grad is not None:
                grad = xp.where(bad[:, None, None], xp.full_like(grad, math.nan), grad)
    if grad is not None:
        grad = xp.astype(grad, out_dtype, copy=False)
    return xp.astype(nll, out_dtype, copy=False), grad


def _kernel(xp: Namespace, x: Array, ext, skip, t_len, l_len, *, with_grad: bool) -> Any:
    """(nll, grad) from the backend's kernel."""
    if is_torch_namespace(xp):
        from ._ctc_torch import ctc_torch

        return ctc_torch(x, ext, skip, t_len, l_len, with_grad=with_grad, fast=_fast.enabled())
    if is_numpy_namespace(xp) and _fast.enabled() and is_eager_host(x):
        from ._ctc_numpy import ctc_numpy

        log_p, grad = ctc_numpy(x, ext, skip, t_len, l_len, with_grad=with_grad)
    else:
        log_p, grad = ctc_generic(xp, x, ext, skip, t_len, l_len, with_grad=with_grad)
    return -log_p, grad
