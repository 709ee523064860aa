"""Native fast paths, entered at one point: :func:`lanes` for an array type, :func:`backend`
for a namespace.

A fast path is taken only where its semantics match the generic array-API code exactly; the
conformance suite runs with ``XCE_DISABLE_FAST_PATHS=1`` too, proving that both agree. What a
backend's fast-path module offers is written down in :mod:`xce._fast._interface`; its tuning
settings are read in :mod:`xce._fast._config`. A backend's module is imported only once an
array of its framework has been seen, so importing xce imports no backend.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from .._array_api import is_jax_namespace, is_numpy_namespace, is_torch_namespace
from . import _config
from ._interface import FastPath, PlainLanes, RowRunner
from ._rows import block_rows, in_row_blocks
from ._weighted import weighted, weights_fit

__all__ = [
    "Backend",
    "FastPath",
    "PlainLanes",
    "RowRunner",
    "backend",
    "enabled",
    "lanes",
    "sharded_block_rows",
    "sharded_in_place",
    "weighted",
    "weights_fit",
]


def enabled() -> bool:
    """Whether the native fast paths are on (``XCE_DISABLE_FAST_PATHS`` unset or false)."""
    return _config.FAST_PATHS_ENABLED


def lanes(array_type: type) -> PlainLanes | None:
    """The plain lanes for arrays of exactly ``array_type`` (``numpy.ndarray``,
    ``torch.Tensor``), or ``None``: other types, subclasses, or fast paths disabled.

    Called on every loss call, so it costs one cached lookup: a (64, 10) call is a few µs.
    """
    return _lanes_for(array_type) if _config.FAST_PATHS_ENABLED else None


@functools.cache
def _lanes_for(array_type):
    # Exact types only: subclasses (torch.nn.Parameter, np.matrix...) take the full path.
    name = f"{array_type.__module__}.{array_type.__qualname__}"
    if name == "numpy.ndarray":
        from . import _numpy

        return _numpy
    if name == "torch.Tensor":
        from . import _torch

        return _torch
    return None


@dataclass(frozen=True)
class Backend:
    """What a namespace's fast paths offer the pipeline.

    ``fast_path`` is the backend's fast-path module (``None`` where it has none, or fast
    paths are disabled). ``run_rows(xp, kernel, x, row_args, *, with_grad, grad_scale)`` runs
    a generic kernel over logits ``x`` (see :class:`RowRunner`): compiled whole under JAX, in
    row blocks shared among threads on NumPy, in row blocks in order on other eager backends,
    whole-array on Dask (and on JAX with fast paths disabled).
    """

    fast_path: FastPath | None
    run_rows: RowRunner

    def native_kernel(self, name: str, x) -> Callable | None:
        """The backend's native kernel ``name`` (``"softmax_ce_labels"``,
        ``"softmax_ce_soft"``, ``"sigmoid_bce"``) if it has one and takes ``x``, else
        ``None``. It runs whole-array (it walks the rows its own way) and hands what it
        cannot do exactly to the ``generic=`` kernel it is given."""
        fast_path = self.fast_path
        if fast_path is None or not fast_path.handles(x):
            return None
        return getattr(fast_path, name, None)


def sharded_block_rows(xp, x) -> int | None:
    """Rows per block for the class-sharded kernels, which walk the rows in passes
    themselves (``xce._agnostic._sharded``): torch's chunk budget on torch, the row
    runner's elsewhere; ``None`` (whole-array) where the row runner would not block."""
    budget = _config.TORCH_CHUNK_BYTES if is_torch_namespace(xp) else None
    return block_rows(xp, x, budget)


def sharded_in_place(xp, x):
    """The class-sharded kernels' in-place passes for ``x``'s library (CPU torch tensors:
    the module ``xce._fast._torch._sharded``), or ``None``: the generic passes, also with
    fast paths disabled."""
    if not _config.FAST_PATHS_ENABLED or not is_torch_namespace(xp) or not x.is_cpu:
        return None
    from ._torch import _sharded

    return _sharded


def backend(xp) -> Backend:
    """The fast paths of namespace ``xp``; never ``None``, made once per namespace."""
    return _backend_for(xp, _config.FAST_PATHS_ENABLED)


@functools.cache
def _backend_for(xp, enabled):
    if not enabled:
        return Backend(None, in_row_blocks)
    if is_torch_namespace(xp):
        from . import _torch

        return Backend(_torch, in_row_blocks)
    if is_numpy_namespace(xp):
        from . import _numpy

        return Backend(_numpy, functools.partial(in_row_blocks, spread=_numpy.spread))
    if is_jax_namespace(xp):
        from . import _jax

        return Backend(_jax, _jax.run_kernel)
    return Backend(None, in_row_blocks)
