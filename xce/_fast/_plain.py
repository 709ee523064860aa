"""The step the backends' plain lanes share: a native soft-target or binary kernel called with
every option at its default, its targets checked block by block, and the loss reduced."""

from __future__ import annotations

import functools

from .. import _agnostic
from .._array_api import array_namespace
from .._value_checks import first_row_may_be_probabilities

__all__ = ["first_row_may_be_probabilities", "generic_kernel", "run_plain"]


@functools.cache
def generic_kernel(name, xp, smoothing=0.0):
    """The generic kernel ``name`` of ``xce._agnostic`` with every option at its default but
    label smoothing."""
    options = {
        "smoothing": smoothing,
        ("pos_weight" if name == "sigmoid_bce" else "class_weight"): None,
    }
    return functools.partial(getattr(_agnostic, name), xp, **options)


def run_plain(kernel, x, y, *, reduction, with_grad, grad_scale, reduce, smoothing=0.0,
              **options):  # fmt: skip
    """A plain lane's call of a native soft-target or binary ``kernel``, options at their
    defaults but label ``smoothing``, and the targets checked block by block: ``None`` if
    they leave [0, 1] (the full path then raises), else ``(reduce(loss, reduction), grad)``.
    Non-finite blocks go to the generic kernel; ``options`` go to the kernel as they are."""
    generic = generic_kernel(kernel.__name__, array_namespace(x), float(smoothing))
    # the native kernel takes the same options as its generic twin
    result = kernel(x, y, **generic.keywords, generic=generic, with_grad=with_grad,
                    grad_scale=grad_scale, check_targets=True, **options)  # fmt: skip
    if result is None:
        return None
    return reduce(result[0], reduction), result[1]
