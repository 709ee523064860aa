"""The array libraries xce is tested on: the one list that the test fixtures, nox, the CLI and
the docstrings' support tables read.

This module imports nothing (not even xce), so that ``noxfile.py`` can load it by path before
xce is installed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BACKENDS", "BACKEND_NAMES", "Backend", "backend_named"]


@dataclass(frozen=True)
class Backend:
    """One array library, on one kind of device, as the suite runs it.

    ``values_read`` says whether ``validate="auto"`` reads values there (eager host data);
    where it does not, a bad value makes its entries NaN instead of raising. ``fast_path``
    says whether xce has a native path for it (nox then reruns the suite without it).
    """

    name: str
    package: str
    gpu: bool
    values_read: bool
    fast_path: bool
    autodiff: str | None = None


BACKENDS: tuple[Backend, ...] = (
    Backend("numpy", "numpy", gpu=False, values_read=True, fast_path=True),
    Backend("array_api_strict", "array_api_strict", gpu=False, values_read=True, fast_path=False),
    Backend("torch", "torch", gpu=False, values_read=True, fast_path=True, autodiff="autograd"),
    Backend("jax", "jax", gpu=False, values_read=False, fast_path=True, autodiff="jax.grad"),
    Backend("dask", "dask", gpu=False, values_read=False, fast_path=False),
    Backend("cupy", "cupy", gpu=True, values_read=False, fast_path=False),
    Backend(
        "torch_cuda", "torch", gpu=True, values_read=False, fast_path=True, autodiff="autograd"
    ),
)
BACKEND_NAMES: tuple[str, ...] = tuple(backend.name for backend in BACKENDS)


def backend_named(name: str) -> Backend:
    for backend in BACKENDS:
        if backend.name == name:
            return backend
    raise KeyError(f"unknown backend {name!r}; choose from {', '.join(BACKEND_NAMES)}")
