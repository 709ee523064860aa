"""The table of losses: one row per public loss, and everything that is read from it.

A row says what a loss is (its target kind), which kernels compute it (generic array-API
kernels on logits and on probabilities, the name of a backend's native kernel and plain
lane), and what it can do (read values to raise on bad input, run lazily, give its analytic
gradient, run under autodiff). From the rows come:

- the dispatch: the pipeline (:mod:`xce._pipeline`) runs a row's kernels, native or generic;
- :func:`xce.value_and_grad`'s list of supported losses;
- the backend-support table in each public docstring and in the README;
- the conformance suite's parametrisation (``tests/matrix.py``), with the known failures of a
  row as xfail marks that name the backend and the reason.

Adding a loss is a row here, its kernels in ``_agnostic/``, and a module with its public
function and its driver (``loss_and_gradient``, which returns ``(value, grad)``).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from . import _agnostic as agnostic
from ._backends import BACKENDS

__all__ = [
    "ALL_LOSSES",
    "KERNEL_KINDS",
    "LOSSES",
    "STRUCTURED_LOSSES",
    "SUPPORT_COLUMNS",
    "LossInfo",
    "kernel_on",
    "loss_info",
    "support_table",
]

# "sequence" (CTC: labels against a (N, T, C) sequence) and "linear" (labels against hidden
# states and an output weight) are the structured losses of STRUCTURED_LOSSES.
TargetKind = Literal["binary", "soft", "labels", "sequence", "linear"]


@dataclass(frozen=True)
class LossInfo:
    """One loss of the family.

    ``logits_kernel`` and ``probabilities_kernel`` are generic kernels ``(xp, x, target, *,
    options, with_grad, grad_scale) -> (loss, grad)``. ``native`` names a backend's native
    kernel of the same signature plus ``generic=`` (see ``xce._fast``), run on the backends
    ``native_on`` (elsewhere, or where the kernel declines an input, the generic kernel runs),
    and ``lane`` the plain lane for option-free calls. ``row_blocked`` says whether the
    generic kernel may run over row blocks (shared among threads on NumPy, compiled whole
    under JAX); a kernel that is not runs whole-array. The capabilities say whether the loss
    reads values to raise on bad input where that is free (``value_checks``), runs without
    reading values on lazy or device data (``lazy_safe``), has an analytic gradient for
    ``value_and_grad`` (``analytic_gradient``) and runs under the frameworks' autodiff
    (``autodiff``). ``known_failures`` maps a backend name to the reason the loss fails there.
    ``sharded`` is the logits kernel over one member's classes of a group (``class_shard=``,
    :mod:`xce.distributed`), for the losses that take it.
    """

    name: str
    module: str
    target: TargetKind
    logits_kernel: Callable | None
    probabilities_kernel: Callable | None
    native: str | None = None
    native_on: tuple[str, ...] = ()
    lane: str | None = None
    row_blocked: bool = False
    value_checks: bool = True
    lazy_safe: bool = True
    analytic_gradient: bool = True
    autodiff: bool = True
    known_failures: Mapping[str, str] = field(default_factory=dict)
    sharded: Callable | None = None

    @property
    def public(self) -> Callable:
        """The public function ``xce.<name>``."""
        return getattr(_module(self.module), self.name)

    @property
    def driver(self) -> Callable:
        """``loss_and_gradient(y_true, y_pred, *, options, with_grad) -> (value, grad)``."""
        return _module(self.module).loss_and_gradient


@functools.cache
def _module(name: str):
    return importlib.import_module(name)


LOSSES: tuple[LossInfo, ...] = (
    LossInfo(
        "binary_cross_entropy", "xce._binary", "binary",
        agnostic.sigmoid_bce, agnostic.probs_bce,
        native="sigmoid_bce", native_on=("numpy", "torch"), lane="plain_binary",
        row_blocked=True,
    ),
    LossInfo(
        "categorical_cross_entropy", "xce._categorical", "soft",
        agnostic.softmax_ce_soft, agnostic.probs_ce_soft,
        native="softmax_ce_soft", native_on=("numpy", "torch", "jax"), lane="plain_soft",
        row_blocked=True, sharded=agnostic.sharded_softmax_ce_soft,
    ),
    LossInfo(
        "sparse_categorical_cross_entropy", "xce._sparse", "labels",
        agnostic.softmax_ce_labels, agnostic.probs_ce_labels,
        native="softmax_ce_labels", native_on=("numpy", "torch", "torch_cuda"),
        lane="plain_sparse", row_blocked=True, sharded=agnostic.sharded_softmax_ce_labels,
    ),
    LossInfo(
        "binary_focal_cross_entropy", "xce._binary_focal", "binary",
        agnostic.sigmoid_binary_focal, agnostic.probs_binary_focal,
    ),
    LossInfo(
        "categorical_focal_cross_entropy", "xce._categorical_focal", "soft",
        agnostic.softmax_focal_soft, agnostic.probs_focal_soft,
    ),
    LossInfo(
        "poly1_cross_entropy", "xce._poly1", "soft",
        agnostic.softmax_poly1_soft, agnostic.probs_poly1_soft,
    ),
)  # fmt: skip

# The losses whose arguments are not (y_true, y_pred) over a class axis: they have their own
# kernels (no generic logits / probabilities kernel pair, hence None there) and their own
# tests, but the same driver contract (``loss_and_gradient(*arrays, **options, with_grad)``),
# value_and_grad, docstring support table and README table. The conformance matrix
# (tests/matrix.py) covers LOSSES, the classification losses.
STRUCTURED_LOSSES: tuple[LossInfo, ...] = (
    # Chunks of rows through the sparse loss's driver: its own sweep, no row-blocked kernel.
    LossInfo("linear_cross_entropy", "xce._linear", "linear", None, None),
    # Its own kernels (xce._ctc_kernels): the NumPy recursion on NumPy and CPU torch, lax.scan
    # on JAX, NumPy over batch blocks on Dask, the generic loop elsewhere.
    LossInfo(
        "ctc_loss", "xce._ctc", "sequence", None, None,
        native="ctc_numpy", native_on=("numpy", "torch"),
    ),
)  # fmt: skip

ALL_LOSSES: tuple[LossInfo, ...] = LOSSES + STRUCTURED_LOSSES

_BY_NAME = {info.name: info for info in ALL_LOSSES}


def loss_info(name: str) -> LossInfo:
    """The row of the loss ``xce.<name>``."""
    return _BY_NAME[name]


# How a loss is computed on a backend: a short name (the README's table) and its description
# (the docstrings' tables).
KERNEL_KINDS = {
    "native": "the backend's native kernel on logits",
    "threaded": "generic, threaded row blocks",
    "jit": "generic, compiled by jax.jit",
    "generic": "generic",
}


def kernel_on(info: LossInfo, backend_name: str) -> str:
    """The kind of kernel (a key of ``KERNEL_KINDS``) that computes the loss on a backend:
    its native kernel (on logits), or the generic kernel, threaded (NumPy), compiled (JAX)
    or as it is."""
    if info.native is not None and backend_name in info.native_on:
        return "native"
    if info.row_blocked and backend_name in ("numpy", "jax"):
        return "threaded" if backend_name == "numpy" else "jit"
    return "generic"


SUPPORT_COLUMNS = ("backend", "kernel", "bad values", "autodiff", "tested")


def support_table(info: LossInfo) -> list[tuple[str, str, str, str, str]]:
    """Rows (backend, kernel, bad values, autodiff, tested) of the loss's backend support:
    bad values raise where the backend's data is eager on the host; elsewhere (under
    ``validate="auto"``) the entries that break the rule are NaN: an out-of-range label, a
    target or probability outside [0, 1], a row of probabilities or soft targets whose sum is
    not 1. "tested" says where the conformance suite runs it."""
    rows = []
    for backend in BACKENDS:
        kernel = KERNEL_KINDS[kernel_on(info, backend.name)]
        if not backend.values_read and not info.lazy_safe:
            kernel = "not supported (it reads values)"
        if not info.value_checks:
            bad = "not checked"
        elif backend.values_read:
            bad = "raise"
        elif info.target == "sequence":
            bad = "NaN sequence (bad label or length)"
        elif info.target == "linear":
            bad = "NaN entry (bad label)"
        elif info.target == "labels":
            bad = "NaN entry (bad label or probability row)"
        elif info.target == "soft":
            bad = "NaN entry (bad target or probability row)"
        else:
            bad = "NaN entry (value outside [0, 1])"
        if backend.name in info.known_failures:
            bad = f"fails: {info.known_failures[backend.name]}"
        tested = "needs a GPU (not yet run)" if backend.gpu else "CI"
        autodiff = (backend.autodiff if info.autodiff else None) or "—"
        rows.append((backend.name, kernel, bad, autodiff, tested))
    return rows
