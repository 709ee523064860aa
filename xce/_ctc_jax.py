"""The CTC kernel on JAX arrays: ``lax.scan`` over time inside a ``jax.custom_vjp``.

One scan step is the program whatever T (an unrolled loop would grow the program, and its
compile time, with T); the forward pass of the VJP keeps α for the backward sweep and
returns the exact gradient, so ``jax.grad`` never differentiates through the recursion.
Works under ``jax.jit`` and on tracers; compiled once per shape.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from ._agnostic._ctc import ctc_extended_labels

__all__ = ["ctc_jax"]


def _logaddexp3(a, b, c):
    return jnp.logaddexp(jnp.logaddexp(a, b), c)


def _right(a, k):
    """Columns moved right by ``k``, −inf in front."""
    k = min(k, a.shape[1])
    return jnp.concatenate([jnp.full_like(a[:, :k], -jnp.inf), a[:, : a.shape[1] - k]], axis=1)


def _left(a, k):
    k = min(k, a.shape[1])
    return jnp.concatenate([a[:, k:], jnp.full_like(a[:, :k], -jnp.inf)], axis=1)


def _compute(log_probs, ext, skip, t_len, l_len, with_grad):
    n, n_times, n_classes = log_probs.shape
    width = ext.shape[1]
    emit = jnp.take_along_axis(log_probs, jnp.broadcast_to(ext[:, None, :], (n, n_times, width)),
                               axis=2).transpose(1, 0, 2)  # fmt: skip
    no_skip = jnp.where(skip, 0.0, -jnp.inf).astype(log_probs.dtype)
    start = jnp.full((n, width), -jnp.inf, log_probs.dtype).at[:, 0].set(0.0)
    times = jnp.arange(n_times)

    def forward(alpha, step):
        t, e = step
        moved = _logaddexp3(alpha, _right(alpha, 1), _right(alpha, 2) + no_skip) + e
        alpha = jnp.where((t < t_len)[:, None], moved, alpha)
        return alpha, alpha if with_grad else None

    alpha, alphas = lax.scan(forward, start, (times, emit))
    rows = jnp.arange(n)
    before = jnp.where(l_len > 0, alpha[rows, jnp.maximum(2 * l_len - 1, 0)], -jnp.inf)
    log_p = jnp.logaddexp(alpha[rows, 2 * l_len], before)
    if not with_grad:
        return -log_p, None
    positions = jnp.arange(width)
    at_end = (positions == 2 * l_len[:, None]) | (
        (positions == 2 * l_len[:, None] - 1) & (l_len[:, None] > 0)
    )
    end = jnp.where(at_end, 0.0, -jnp.inf).astype(log_probs.dtype)
    skip_next = _left(no_skip, 2)
    # β′ of step t from β′ of t + 1 and the emission at t + 1 (the next frame's emission,
    # zero-padded past the last frame, where β′ restarts anyway).
    emit_next = jnp.concatenate([emit[1:], jnp.zeros_like(emit[:1])], axis=0)

    def backward(beta, step):
        t, e_next = step
        ahead = e_next + beta
        moved = _logaddexp3(ahead, _left(ahead, 1), _left(ahead, 2) + skip_next)
        last = (t == t_len - 1)[:, None]
        beta = jnp.where(last, end, jnp.where((t < t_len - 1)[:, None], moved, -jnp.inf))
        return beta, beta

    _, betas = lax.scan(backward, jnp.full((n, width), -jnp.inf, log_probs.dtype),
                        (times, emit_next), reverse=True)  # fmt: skip
    possible = jnp.isfinite(log_p)
    shift = jnp.where(possible, log_p, 0.0)
    gamma = jnp.exp(alphas + betas - shift[None, :, None])  # (T, N, 2S+1)
    gamma = jnp.where(possible[None, :, None], gamma, 0.0)
    one_hot = (ext[:, :, None] == jnp.arange(n_classes)).astype(log_probs.dtype)
    grad = -jnp.einsum("tns,nsc->ntc", gamma, one_hot, precision=lax.Precision.HIGHEST)
    return -log_p, grad


def _with_labels(log_probs, labels, input_lengths, label_lengths, blank, with_grad):
    """Extended labels, the recursions and NaN for bad sequences, as one compiled program."""
    _, n_times, n_classes = log_probs.shape
    ext, skip, t_len, l_len, bad = ctc_extended_labels(
        jnp, labels, input_lengths, label_lengths, blank=blank, n_classes=n_classes,
        n_times=n_times,
    )  # fmt: skip
    nll, grad = _compute(log_probs, ext, skip, t_len, l_len, with_grad)
    nll = jnp.where(bad, math.nan, nll)
    if grad is not None:
        grad = jnp.where(bad[:, None, None], math.nan, grad)
    return nll, grad


# The blank is an argument, not a constant of the program: another blank compiles nothing.
_compiled = jax.jit(_with_labels, static_argnums=5)


@jax.custom_vjp
def _nll(log_probs, labels, input_lengths, label_lengths, blank):
    return _compiled(log_probs, labels, input_lengths, label_lengths, blank, False)[0]


def _nll_forward(log_probs, labels, input_lengths, label_lengths, blank):
    return _compiled(log_probs, labels, input_lengths, label_lengths, blank, True)


def _nll_backward(grad, cotangent):
    return cotangent[:, None, None] * grad, None, None, None, None


_nll.defvjp(_nll_forward, _nll_backward)


def ctc_jax(log_probs, labels, input_lengths, label_lengths, *, blank, with_grad):
    """(nll, grad or None), NaN for bad sequences; differentiable by ``jax.grad`` in
    ``log_probs``."""
    blank = jnp.asarray(blank, dtype=labels.dtype)
    if with_grad:
        return _compiled(log_probs, labels, input_lengths, label_lengths, blank, True)
    return _nll(log_probs, labels, input_lengths, label_lengths, blank), None
