"""JAX fast path: run the generic kernels under one ``jax.jit``, and one native kernel.

Eager JAX dispatches (and, for every new shape, compiles) each operation on its own: a
cross entropy is some 25 of them. Compiled as one program, the same generic kernel is one
dispatch and one compilation per shape, and XLA fuses the element-wise passes. Inside a
user's own ``jit`` or ``grad`` the inner ``jit`` is simply inlined. The kernel is the
generic one, so the numbers follow the same formulas.

The soft-target kernel is the exception (:func:`softmax_ce_soft`): the generic kernel's
selects that keep its extremes exact (0 · ∞ = 0 for a class with no target mass and a -inf
logit, log 0 = -inf without a warning) sit in the loop over the classes, where XLA's CPU
code runs 3× slower than without them (measured at (4096, 32000), float32: 1.3 s against
0.4 s). The native kernel computes without them and reruns the generic kernel, under
``lax.cond``, only where its result holds a NaN: the same numbers, at the plain formula's
speed on ordinary logits.
"""

from __future__ import annotations

import functools

__all__ = ["handles", "run_kernel", "softmax_ce_soft"]


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


def handles(x) -> bool:
    """Every JAX array (the kernel is traced, whatever its dtype or sharding)."""
    return True


def softmax_ce_soft(x, y, *, class_weight, smoothing, generic, with_grad=False,
                    grad_scale=None, check_targets=False):  # fmt: skip
    """The soft-target cross entropy without selects in the loop over the classes, the
    generic kernel where that leaves a NaN; see the module's docstring.

    ℓ = Σ_c w_c q_c·(log s - z_c), z = x - m, s = Σ e^z: each term ≥ 0 (no cancellation),
    the same value as the generic log s·Σ wq - Σ wq·z to rounding. A smoothing given as an
    array (traced, differentiated) runs the generic kernel.
    """
    if not _is_constant(smoothing):
        return run_kernel(None, generic, x, (y,), with_grad=with_grad, grad_scale=grad_scale)
    program = _compiled_soft(generic.func, generic.args[0], smoothing, with_grad)
    return program(x, y, class_weight, grad_scale)


@functools.cache
def _compiled_soft(kernel, xp, smoothing, with_grad):
    import jax
    import jax.numpy as jnp

    def plain(x, y, class_weight, grad_scale):
        n_classes = x.shape[-1]
        q = y if smoothing == 0 else (1 - smoothing) * y + smoothing / n_classes
        wq = q if class_weight is None else class_weight * q
        m = jnp.max(x, axis=-1, keepdims=True)
        m = jnp.where(jnp.isfinite(m), m, 0)  # per row: not in the loop over classes
        z = x - m
        e = jnp.exp(z)
        s = jnp.sum(e, axis=-1, keepdims=True)
        loss = jnp.sum(wq * (jnp.log(s) - z), axis=-1)
        if not with_grad:
            return loss, None
        r = (
            1.0
            if grad_scale is None
            else grad_scale
            if grad_scale.ndim == 0
            else grad_scale[..., None]
        )
        mass = jnp.sum(wq, axis=-1, keepdims=True)
        return loss, e * (mass * r / s) - r * wq

    def program(x, y, class_weight, grad_scale):
        fast = plain(x, y, class_weight, grad_scale)

        def exact():
            return kernel(xp, x, y, class_weight=class_weight, smoothing=smoothing,
                          with_grad=with_grad, grad_scale=grad_scale)  # fmt: skip

        return jax.lax.cond(jnp.any(jnp.isnan(fast[0])), exact, lambda: fast)

    return jax.jit(program)
