"""Connectionist temporal classification (CTC): the public function and its driver.

The driver turns ``y_pred`` into log-probabilities (``log_softmax`` of logits, ``log`` of
probabilities), runs the building block :func:`xce._ctc_kernels.ctc_negative_log_likelihood`
(−log p per sequence, and −γ, the gradient with respect to the log-probabilities), applies
``zero_infinity`` and the family's weighting and reduction rule, and carries the gradient
back through ``log_softmax`` (g − softmax·Σ_c g) or ``log`` (g / p).
"""

from __future__ import annotations

import math

from . import _agnostic as agnostic
from . import _fast
from ._arguments import gather_arrays
from ._array_api import device, is_torch_namespace, library_name
from ._ctc_kernels import ctc_negative_log_likelihood
from ._docs import document
from ._table import loss_info
from ._types import Array, Reduction, Validate
from ._validation import batch_array, check_options, check_unit_interval, values_checked

__all__ = ["ctc_loss", "loss_and_gradient"]

INFO = loss_info("ctc_loss")


def _log_probabilities(xp, x, *, from_logits, checked):
    """log-probabilities of the compute-dtype ``x``, and the sequences whose probabilities
    break [0, 1] unseen (``None`` where they were checked or are logits)."""
    if from_logits:
        if is_torch_namespace(xp):  # one fused kernel instead of five passes
            from ._ctc_torch import log_softmax

            return log_softmax(x), None
        return agnostic.log_softmax(xp, x, axis=-1), None
    if checked:
        check_unit_interval(xp, x, "y_pred", " (probabilities; pass from_logits=True for logits)")
        outside = None
    else:
        outside = xp.any(~((x >= 0) & (x <= 1)), axis=(1, 2))
    # log(0) = −inf is allowed: a class that cannot occur at that frame.
    return agnostic.log_or_neg_inf(xp, x), outside


def _gradient_of_y_pred(xp, g, x, log_probs, *, from_logits):
    """∂/∂y_pred from g = ∂/∂ log_probs: through log_softmax, g − softmax·Σ_c g; through log,
    g / p (0 where p = 0: no path with a nonzero probability goes through that entry)."""
    if from_logits:
        return g - xp.exp(log_probs) * xp.sum(g, axis=-1, keepdims=True)
    zero = x == 0
    return xp.where(zero, xp.zeros_like(g), g / xp.where(zero, xp.ones_like(x), x))


def loss_and_gradient(
    labels: Array,
    y_pred: Array,
    *,
    input_lengths: Array | None,
    label_lengths: Array | None,
    blank: int,
    from_logits: bool,
    sample_weight: Array | None,
    reduction: Reduction,
    zero_infinity: bool,
    validate: Validate,
    with_grad: bool,
) -> tuple[Array | tuple[Array, Array], Array | None]:
    """:func:`ctc_loss` and, with ``with_grad``, its gradient with respect to ``y_pred``."""
    options = {
        "input_lengths": input_lengths, "label_lengths": label_lengths, "blank": blank,
        "from_logits": from_logits, "sample_weight": sample_weight, "reduction": reduction,
        "zero_infinity": zero_infinity, "validate": validate, "with_grad": with_grad,
    }  # fmt: skip
    if _fast.enabled() and library_name(y_pred) == "torch":
        from ._ctc_torch import on_numpy_views

        result = on_numpy_views(loss_and_gradient, (labels, y_pred), options)
        if result is not None:
            return result
    check_options(reduction=reduction, validate=validate)
    xp, arrays = gather_arrays(y_pred, labels=labels, sample_weight=sample_weight)
    if y_pred.ndim != 3:
        raise ValueError(
            f"y_pred must be 3-D (N, T, C): batch, time, classes; got shape "
            f"{tuple(y_pred.shape)}. For torch's time-major (T, N, C) log-probs, pass "
            "moveaxis(log_probs, 1, 0) with from_logits=True"
        )
    if not xp.isdtype(y_pred.dtype, "real floating"):
        raise TypeError(f"y_pred must have a real floating dtype, got {y_pred.dtype}")
    out_dtype = y_pred.dtype
    work = agnostic.compute_dtype(xp, out_dtype)
    x = xp.astype(y_pred, work, copy=False)
    n = x.shape[0]
    weight = batch_array(xp, arrays["sample_weight"], "sample_weight", (n,), work)
    checked = values_checked(validate, y_pred, arrays["labels"])
    log_probs, outside = _log_probabilities(xp, x, from_logits=from_logits, checked=checked)
    nll, g = ctc_negative_log_likelihood(
        log_probs, arrays["labels"], input_lengths, label_lengths, blank=blank,
        with_grad=with_grad, validate=validate,
    )  # fmt: skip
    if outside is not None:
        nll = xp.where(outside, xp.full_like(nll, math.nan), nll)
    if zero_infinity:
        # +inf only: a NaN (a sequence that broke a rule unchecked) stays NaN.
        infinite = nll == math.inf
        nll = xp.where(infinite, xp.zeros_like(nll), nll)
        if g is not None:
            g = xp.where(infinite[:, None, None], xp.zeros_like(g), g)
    total_count = None
    if reduction in ("mean", "sum_and_count"):
        total_count = agnostic.count(
            xp, nll, work, device(x), weight=weight, valid=None, omega=None
        )
    value = agnostic.reduce_loss(
        xp, nll, weight=weight, valid=None, bad=None, reduction=reduction,
        total_count=total_count,
    )  # fmt: skip
    value = tuple(xp.astype(v, out_dtype) for v in value) if isinstance(value, tuple) else (
        xp.astype(value, out_dtype)
    )  # fmt: skip
    if g is None:
        return value, None
    grad = _gradient_of_y_pred(xp, g, x, log_probs, from_logits=from_logits)
    if outside is not None:
        grad = xp.where(outside[:, None, None], xp.full_like(grad, math.nan), grad)
    scale = agnostic.gradient_scale(xp, total_count, weight=weight, reduction=reduction)
    if scale is not None:
        grad = grad * (scale[:, None, None] if scale.ndim else scale)
    return value, xp.astype(grad, out_dtype, copy=False)


@document(INFO)
def ctc_loss(
    labels: Array,
    y_pred: Array,
    *,
    input_lengths: Array | None = None,
    label_lengths: Array | None = None,
    blank: int = 0,
    from_logits: bool = False,
    sample_weight: Array | None = None,
    reduction: Reduction = "mean",
    zero_infinity: bool = False,
    validate: Validate = "auto",
) -> Array:
    """Connectionist temporal classification: −log p(labels | y_pred) over all alignments.

    For sequence problems where the alignment of the labels to the frames is unknown
    (speech, handwriting). An alignment π is a class (or the blank b) per frame; collapsing
    it (merge repeats, drop blanks) must give the labels l. With per-frame log-probabilities
    log y_{t,c},

    .. math::

        ℓᵢ = -\\log \\sum_{π:\\ \\mathcal{B}(π) = l_i} \\prod_{t < T_i} y_{t, π_t},

    computed by the forward algorithm in log space over the extended sequence b l₁ b … l_L b
    (stable over thousands of frames), with the exact gradient from the backward sweep.
    A label repeated back to back needs a blank between its copies, so at least
    L + (number of repeats) frames: with fewer the alignment is impossible and ℓᵢ = +inf.

    Parameters
    ----------
    labels : int array, shape (N, S)
        Label sequences, right-padded: the entries past ``label_lengths`` are ignored,
        whatever they hold. No label may be the blank.
    y_pred : array, shape (N, T, C)
        Batch-major per-frame probabilities (their log is taken; 0 is allowed and means
        "impossible"), or with ``from_logits=True`` logits or log-probabilities
        (``log_softmax`` over C is applied; on log-probabilities it changes nothing).
        torch's ``F.ctc_loss`` takes (T, N, C): move the axis first.
    input_lengths : int array, shape (N,), optional
        Frames of each sequence (Tᵢ ≤ T); frames past it are ignored. Default: T.
    label_lengths : int array, shape (N,), optional
        Labels of each sequence (Lᵢ ≤ S; 0 is allowed: only blanks). Default: S.
    blank : int, default 0
        The blank class, in [0, C).
    from_logits : bool, default False
        Whether ``y_pred`` holds logits (or log-probabilities).
    sample_weight : array or number, optional
        Weight sᵢ of each sequence: shape () or (N,) (never (N, 1)).
    reduction : {"mean", "sum", "none", "sum_and_count"}, default "mean"
        ``"none"``: sᵢ·ℓᵢ per sequence (N,). ``"sum"``: Σ sᵢ·ℓᵢ. ``"mean"``: Σ sᵢ·ℓᵢ / Σ sᵢ
        (over sequences; torch's ``"mean"`` also divides each ℓᵢ by its target length);
        ``"sum_and_count"``: (Σ sᵢ·ℓᵢ, Σ sᵢ), to accumulate exact means.
    zero_infinity : bool, default False
        Impossible alignments give 0 (and a zero gradient) instead of +inf.
    validate : {"auto", True, False}, default "auto"
        The value rules: lengths in [0, T] / [0, S], labels in [0, C) and not the blank
        within their length, probabilities in [0, 1]. ``"auto"`` raises on eager host data
        (NumPy, array-api-strict, CPU torch); on JAX and Dask a sequence that breaks a rule
        is NaN. ``True`` always reads and raises; ``False`` reads nothing (NaN then).

    Returns
    -------
    array or tuple of two arrays
        The loss, in the same namespace and device as ``y_pred``, in its dtype (float16 and
        bfloat16 are computed in float32): 0-d, shape (N,) for ``"none"``, a pair for
        ``"sum_and_count"``.

    Raises
    ------
    TypeError
        Float labels or lengths, integer ``y_pred``, arrays of different libraries.
    ValueError
        ``y_pred`` not 3-D, ``labels`` not (N, S), lengths not (N,), ``blank`` outside
        [0, C), a weight's shape, an unknown ``reduction``; on checked data, a length out of
        range, a label outside [0, C) or equal to the blank within its length, a
        probability outside [0, 1]. Too few frames is not an error: the loss is +inf.

    See Also
    --------
    xce.value_and_grad : The loss and its analytic gradient with respect to ``y_pred``.

    Examples
    --------
    >>> import numpy as np, xce
    >>> y_pred = np.full((1, 3, 3), 1 / 3)  # 3 frames, blank + 2 classes, uniform
    >>> labels = np.array([[1, 2]])
    >>> round(float(xce.ctc_loss(labels, y_pred)), 6)  # 5 alignments of 27: -log(5/27)
    1.686399
    """
    return loss_and_gradient(
        labels, y_pred, input_lengths=input_lengths, label_lengths=label_lengths,
        blank=blank, from_logits=from_logits, sample_weight=sample_weight,
        reduction=reduction, zero_infinity=zero_infinity, validate=validate, with_grad=False,
    )[0]  # fmt: skip
