"""The public losses' docstrings: the options every loss shares, written once, and the backend
support table generated from the table of losses."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import TypeVar

from ._backends import BACKEND_NAMES
from ._table import ALL_LOSSES, SUPPORT_COLUMNS, LossInfo, kernel_on, support_table

__all__ = ["document", "support_table_markdown", "support_table_rst"]

F = TypeVar("F", bound=Callable)

_COMMON = """
    sample_weight : array, number or NumPy array, optional
        Weight sᵢ of each entry of the per-sample loss. Shape ``()`` or a *leading prefix* of
        the per-sample loss shape ``S``, repeated over the trailing dimensions: with ``S =
        (N, T)`` a shape ``(N,)`` weights whole sequences and ``(N, T)`` single tokens. Shapes
        are matched from the left, never broadcast from the right: ``(N, 1)`` against
        ``S = (N,)`` is an error, not an ``(N, N)`` matrix.
    label_smoothing : float or 0-d array, default 0.0
        The smoothing ε, in [0, 1]. A 0-d array may be traced (``jax.jit``, ``vmap``,
        ``grad``) or require grad; out of range there, the result is NaN.
    where : bool array, optional
        Entries to include, same shape rule as ``sample_weight``. Excluded entries contribute
        nothing (loss 0 under ``"none"``, zero gradient), whatever their values.
    reduction : {"mean", "sum", "none", "sum_and_count"}, default "mean"
        ``"none"``: sᵢ·ℓᵢ per entry (0 where excluded). ``"sum"``: Σ sᵢ·ℓᵢ. ``"mean"``:
        Σ sᵢ·ℓᵢ / Σ sᵢ·ωᵢ over the included entries, where ωᵢ is the class weight of the
        *unsmoothed* target (1 without class weights); a mean over nothing is 0.
        ``"sum_and_count"``: the pair (Σ sᵢ·ℓᵢ, Σ sᵢ·ωᵢ), to accumulate exact means over
        micro-batches or devices.
    eps : float or 0-d array, optional
        Clipping for probability inputs (``from_logits=False``); ignored for logits. Default:
        the machine epsilon of the compute dtype (1.19e-7 in float32, 2.2e-16 in float64), the
        smallest clip that keeps 1 - eps distinct from 1, bounding each term by -log(eps)
        (≈ 15.9 in float32). ``eps=0.0`` disables clipping.
    validate : {"auto", True, False}, default "auto"
        The value rules: labels in [0, C), probabilities and targets in [0, 1], rows of
        probabilities and of soft targets summing to 1 (targets: or 0). ``"auto"`` raises
        where the data is eager on the host (NumPy, array-api-strict, CPU torch); on lazy or
        device data (JAX, Dask, CuPy, CUDA torch), where a read would sync or break tracing,
        the entries that break a rule are NaN. ``True`` always reads and raises; ``False``
        reads nothing (out-of-range labels still give NaN): the way to pass unnormalised
        targets on purpose.

    Returns
    -------
    array or tuple of two arrays
        The loss, in the same namespace and device as ``y_pred``, in ``y_pred``'s dtype
        (float16 and bfloat16 inputs are computed in float32). A 0-d array (also on NumPy,
        whose own sums return scalars), or shape ``S`` for ``reduction="none"``.
"""

_BATCH_PHRASE = {
    "binary": "loss shape ``S = y_pred.shape``",
    "soft": "per-sample loss shape ``S`` (``y_pred.shape`` without ``axis``)",
    "labels": "per-sample loss shape ``S`` (``y_pred.shape`` without ``axis``)",
    "linear": "per-token loss shape ``S`` (``hidden.shape`` without its last axis)",
    "sequence": "per-sequence loss shape ``(N,)``",
}


def support_table_rst(info: LossInfo) -> str:
    """The loss's backend support as a reStructuredText simple table."""
    header = SUPPORT_COLUMNS
    rows = [header, *support_table(info)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)

    def line(row):
        return "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()

    return "\n".join([rule, line(header), rule, *(line(r) for r in rows[1:]), rule])


def support_table_markdown() -> str:
    """Every loss against every backend, as the README's Markdown table."""
    lines = [
        "| loss | " + " | ".join(BACKEND_NAMES) + " |",
        "|---|" + "---|" * len(BACKEND_NAMES),
    ]
    for info in ALL_LOSSES:
        cells = [kernel_on(info, name) for name in BACKEND_NAMES]
        lines.append(f"| `{info.name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def document(info: LossInfo) -> Callable[[F], F]:
    """Complete a public loss's docstring: ``%COMMON%`` becomes the shared options (those in
    the signature) and returns, the parameters follow the signature's order, and the backend
    support table generated from ``info`` ends the Notes section."""

    def decorate(fn: F) -> F:
        common = inspect.cleandoc(_COMMON).replace(
            "per-sample loss shape ``S``", _BATCH_PHRASE[info.target]
        )
        names = list(inspect.signature(fn).parameters)
        doc = inspect.cleandoc(fn.__doc__ or "").replace("%COMMON%", _only(common, names))
        # A section heading needs a blank line above it, also where a substituted block
        # ends right before it.
        doc = re.sub(r"(\S)\n(\w[\w ]*\n-{3,}\n)", "\\1\n\n\\2", doc)
        doc = _in_signature_order(doc, names)
        support = (
            "Backend support, generated from the table of losses: ``value_and_grad`` gives\n"
            'the analytic gradient on every backend; "autodiff" names the framework\'s own.\n\n'
            + support_table_rst(info)
            + "\n\n"
        )
        fn.__doc__ = _into_notes(doc, support) + "\n"
        return fn

    return decorate


_HEADING = re.compile(r"^(\w[\w ]*)\n-{3,}\n", re.MULTILINE)


def _entries(block: str) -> list[str]:
    # A parameter entry starts at column 0 ("name : type") and runs to the next one.
    return re.split(r"\n(?=[A-Za-z_])", block)


def _only(common: str, names: list[str]) -> str:
    """The shared block without the options the function does not take."""
    params, returns = common.split("\n\nReturns\n", 1)
    kept = [e for e in _entries(params) if e.split(" : ")[0] in names]
    return "\n".join(kept) + "\n\nReturns\n" + returns


def _in_signature_order(doc: str, names: list[str]) -> str:
    start = doc.find("Parameters\n----------\n")
    if start < 0:
        return doc
    body = start + len("Parameters\n----------\n")
    end = _next_heading(doc, body)
    block = doc[body:end].rstrip("\n")
    rank = {name: i for i, name in enumerate(names)}
    entries = sorted(_entries(block), key=lambda e: rank.get(e.split(" : ")[0], len(rank)))
    return doc[:body] + "\n".join(entries) + "\n\n" + doc[end:]


def _next_heading(doc: str, start: int) -> int:
    match = _HEADING.search(doc, start)
    return match.start() if match else len(doc)


def _into_notes(doc: str, text: str) -> str:
    """Append ``text`` to the Notes section, which is made (before References and Examples,
    numpydoc's order) if there is none."""
    notes = doc.find("Notes\n-----\n")
    if notes >= 0:
        end = _next_heading(doc, notes + len("Notes\n-----\n"))
        return doc[:end].rstrip("\n") + "\n\n" + text + doc[end:]
    at = min(
        (i for i in (doc.find("References\n----------"), doc.find("Examples\n--------")) if i >= 0),
        default=len(doc),
    )
    return doc[:at] + "Notes\n-----\n" + text + doc[at:]
