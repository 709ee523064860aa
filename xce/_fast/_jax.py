"""JAX fast path: run the generic kernels under one ``jax.jit``.

Eager JAX dispatches (and, for every new shape, compiles) each operation on its own: a
cross entropy is some 25 of them. Compiled as one program, the same generic kernel is one
dispatch and one compilation per shape, and XLA fuses the element-wise passes. Inside a
user's own ``jit`` or ``grad`` the inner ``jit`` is simply inlined. The kernel is the
generic one, so the numbers follow the same formulas.
"""

from __future__ import annotations

import functools

__all__ = ["run_kernel"]


def _is_constant(value) -> bool:
    """Python-level options (numbers, flags, ``None``) shape the program: the kernels take
    shortcuts on their values (a smoothing of 0 skips a term), so they are compile-time
    constants. An array option (a 0-d hyperparameter, maybe a tracer under the user's ``jit``,
    ``vmap`` or ``grad``) is an argument of the program like the data."""
    return value is None or isinstance(value, (bool, int, float, str))


@functools.cache
def _compiled(function, static):
    """``function`` compiled with the keywords named in ``static`` fixed: one program (and
    one cache of them) per set, e.g. a float ``smoothing`` and an array one."""
    import jax

    return jax.jit(function, static_argnums=0, static_argnames=static)


def run_kernel(xp, kernel, x, row_args, *, with_grad, grad_scale):
    """``kernel`` is a ``functools.partial`` of a generic kernel binding ``xp`` and options."""
    keywords = kernel.keywords
    static = ("with_grad", *sorted(name for name, v in keywords.items() if _is_constant(v)))
    compiled = _compiled(kernel.func, static)
    return compiled(*kernel.args, x, *row_args, **keywords, with_grad=with_grad,
                    grad_scale=grad_scale)  # fmt: skip
