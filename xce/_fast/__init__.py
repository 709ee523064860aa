"""Native fast paths, one module per backend, chosen once per namespace.

A fast path is taken only where its semantics match the generic array-API code exactly; the
conformance suite runs with ``XCE_DISABLE_FAST_PATHS=1`` too, proving that both agree.
A backend module is itself imported only once an array of its framework has been seen, so
importing xce imports no backend.
"""

from __future__ import annotations

import functools
import os

from .. import _agnostic
from .._agnostic import in_row_blocks
from .._compat import array_namespace, is_jax_namespace, is_numpy_namespace, is_torch_namespace

DISABLE_ENV = "XCE_DISABLE_FAST_PATHS"


# Read once, when xce is imported: the switch is for test runs and benchmarks, and an
# environment lookup on every call would cost as much as a small loss itself.
_ENABLED = os.environ.get(DISABLE_ENV, "").strip().lower() in ("", "0", "false", "no")


def enabled() -> bool:
    return _ENABLED


@functools.cache
def _native_for(xp):
    if is_torch_namespace(xp):
        from . import _torch

        return _torch
    if is_numpy_namespace(xp):
        from . import _numpy

        return _numpy
    return None


def native(xp):
    """The fast-path module for ``xp``, or ``None`` (none exists, or disabled by the env)."""
    return _native_for(xp) if enabled() else None


@functools.cache
def _plain_lanes_for(array_type):
    # Exact types only: subclasses (torch.nn.Parameter, np.matrix...) take the full path.
    name = f"{array_type.__module__}.{array_type.__qualname__}"
    if name == "numpy.ndarray":
        from . import _numpy

        return _numpy
    if name == "torch.Tensor":
        from . import _torch

        return _torch
    return None


def plain_lanes(array_type):
    """The backend module whose ``plain_sparse``, ``plain_soft`` and ``plain_binary`` serve an
    option-free call on logits of ``array_type`` in few calls, each ``(y_true, logits, *,
    reduction, with_grad)`` returning ``None`` where its quick checks do not all pass. ``None``
    when there is none (or fast paths are disabled)."""
    return _plain_lanes_for(array_type) if _ENABLED else None


@functools.cache
def _generic(name, xp):
    """The generic kernel ``name`` (soft targets or binary) with every option at its default."""
    options = {"smoothing": 0.0, ("pos_weight" if name == "sigmoid_bce" else "class_weight"): None}
    return functools.partial(getattr(_agnostic, name), xp, **options)


def run_plain(kernel, x, y, *, reduction, with_grad, grad_scale, reduce, **options):
    """A plain lane's call of a native soft-target or binary ``kernel``, options at their
    defaults and the targets checked block by block: ``None`` if they leave [0, 1] (the full
    path then raises), else ``(reduce(loss, reduction), grad)``. Non-finite blocks go to the
    generic kernel; ``options`` go to the kernel as they are."""
    generic = _generic(kernel.__name__, array_namespace(x))
    # the native kernel takes the same default options as its generic twin
    result = kernel(x, y, **generic.keywords, generic=generic, with_grad=with_grad,
                    grad_scale=grad_scale, check_targets=True, **options)  # fmt: skip
    if result is None:
        return None
    return reduce(result[0], reduction), result[1]


def kernel_runner(xp):
    """How to run a generic kernel over ``x``: compiled whole (JAX), or in row blocks, shared
    among threads on NumPy."""
    return _runner_for(xp) if enabled() else in_row_blocks


@functools.cache
def _runner_for(xp):
    if is_jax_namespace(xp):
        from ._jax import run_kernel

        return run_kernel
    if is_numpy_namespace(xp):
        from ._numpy import spread

        return functools.partial(in_row_blocks, spread=spread)
    return in_row_blocks
