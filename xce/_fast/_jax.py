"""JAX fast path: run the generic kernels under one ``jax.jit``.

Eager JAX dispatches (and, for every new shape, compiles) each operation on its own: a
cross entropy is some 25 of them. Compiled as one program, the same generic kernel is one
dispatch and one compilation per shape, and XLA fuses the element-wise passes. Inside a
user's own ``jit`` or ``grad`` the inner ``jit`` is simply inlined. The kernel is the
generic one, so the numbers follow the same formulas.
"""

from __future__ import annotations

import functools
import inspect

__all__ = ["run_kernel"]

# Python-level options: they shape the program, so they are compile-time constants.
_STATIC = ("smoothing", "eps", "with_grad")


@functools.cache
def _compiled(function):
    import jax

    static = [name for name in _STATIC if name in inspect.signature(function).parameters]
    return jax.jit(function, static_argnums=0, static_argnames=static)


def run_kernel(xp, kernel, x, row_args, *, with_grad, grad_scale):
    """``kernel`` is a ``functools.partial`` of a generic kernel binding ``xp`` and options."""
    compiled = _compiled(kernel.func)
    return compiled(*kernel.args, x, *row_args, **kernel.keywords, with_grad=with_grad,
                    grad_scale=grad_scale)  # fmt: skip
