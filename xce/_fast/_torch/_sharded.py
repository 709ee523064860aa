"""The class-sharded kernels' passes on CPU torch tensors, in place.

The generic pass (``xce._agnostic._sharded``) makes a block's exponentials, its gradient as a
new array, the label's one-hot mask and a selection, and copies the block into the output:
five passes over the block and as many temporaries. Here the block is written where it
belongs, e = exp(x̃ - m) straight into the output, scaled and shifted in place, and the
label's share added by one ``scatter_add_`` per row: the same operations in the same order
as the generic formula (e·a - shift, less ``hard`` at the label, times the cap's slope), so
the same numbers.
"""

from __future__ import annotations

import torch

__all__ = ["exp_", "labels_gradient"]


def exp_(z):
    """e = exp(z) written over ``z`` (a block's shifted logits, no longer needed): no new
    block, whose first touch would cost the kernel as much as the exponentials."""
    return z.exp_()


def labels_gradient(out, x, m, *, softcap, coefficient, shift, hard, owned, local):
    """Write the gradient of a block of rows into ``out`` (the output's rows, (n, C_l)).

    ``x`` the block's logits, ``m`` the rows' global maximum (n, 1), ``coefficient`` a and
    ``shift`` (``None``, a number, (n, 1) or (n, C_l)) as in
    :func:`xce._agnostic._categorical.labels_loss_and_grad`, ``hard`` the label's share (a
    number or (n, 1)), ``owned`` (n, 1) whether this member holds the row's label and
    ``local`` (n, 1) its local index (0 where not held). Returns ``out``.
    """
    with torch.no_grad():
        t = None
        if softcap is None:
            torch.sub(x, m, out=out)
        else:
            t = torch.tanh(x / softcap)
            torch.mul(t, softcap, out=out)
            out.sub_(m)
        out.exp_()
        out.mul_(coefficient)
        if shift is not None:
            out.sub_(shift)
        zero = torch.zeros((), dtype=out.dtype)
        share = torch.where(owned, torch.as_tensor(hard, dtype=out.dtype), zero)
        # where another member holds the label: 0 added at column 0, an exact no-op
        out.scatter_add_(1, local, -share.expand(local.shape))
        if t is not None:
            out.mul_(1 - t * t)
    return out
