"""Small per-row operations that the NumPy lanes and kernels share: row sums, row indices, and
the gradient's scale cut to a block of rows."""

from __future__ import annotations

import numpy as np

__all__ = ["flat_scale", "row_numbers", "row_sums", "rows_of", "scale_rows"]

# Enough for the sparse kernel's per-row terms and the small lane, made once.
_ROW_NUMBERS = np.arange(1 << 16)


def row_numbers(n):
    """The row indices 0 … n-1 (shared: never write into them)."""
    return _ROW_NUMBERS[:n] if n <= _ROW_NUMBERS.size else np.arange(n)


def row_sums(a, out=None):
    """Σ over each row of the 2-d ``a``."""
    # einsum's SIMD reduction is several times faster than add.reduce's scalar pairwise loop
    # over a row; its error (≈1e-6 relative at C = 256000 in float32) stays below torch's own
    # logsumexp.
    return np.einsum("ij->i", a, out=out)


def flat_scale(grad_scale, shape, flat_shape, dtype):
    """The gradient's scale as ``None``, one float, or ``shape``'s values in ``flat_shape``."""
    if grad_scale is None or isinstance(grad_scale, float):
        return grad_scale
    grad_scale = np.asarray(grad_scale, dtype=dtype)
    if grad_scale.ndim == 0:
        return float(grad_scale)
    return np.broadcast_to(grad_scale, shape).reshape(flat_shape)


def rows_of(scale, lo, hi):
    """Rows lo:hi of a scale that is ``None``, one float, or one value per row."""
    return scale if scale is None or isinstance(scale, float) else scale[lo:hi]


def scale_rows(a, r):
    """a ·= r, where r is ``None`` (1), one float, or one value per row or per entry of ``a``."""
    if r is None or (isinstance(r, float) and r == 1.0):
        return
    a *= r if isinstance(r, float) or r.ndim == a.ndim else r[:, None]
