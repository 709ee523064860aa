"""Backend fixtures for the conformance suite.

One suite runs on every array library. ``XCE_BACKENDS`` (a comma list of the names in
``xce._backends.BACKEND_NAMES``, the one list of backends) selects the libraries; asking for
one that is not installed is an error, so a broken nox session fails instead of passing green
on skips. Without ``XCE_BACKENDS`` every installed backend runs and the missing ones are
reported as skipped. GPU backends (``gpu`` in that list) skip, with a reason, where there is
no GPU.
"""

from __future__ import annotations

import importlib
import os

import pytest

from xce._backends import BACKEND_NAMES, backend_named

GPU_BACKENDS = tuple(name for name in BACKEND_NAMES if backend_named(name).gpu)


def _requested_backends() -> tuple[tuple[str, ...], bool]:
    raw = os.environ.get("XCE_BACKENDS", "").strip()
    if not raw:
        return BACKEND_NAMES, False
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    unknown = sorted(set(names) - set(BACKEND_NAMES))
    if unknown:
        raise pytest.UsageError(
            f"XCE_BACKENDS names unknown backends {unknown}; choose from {', '.join(BACKEND_NAMES)}"
        )
    return names, True


def _load_namespace(name: str):
    """Return the array namespace for ``name`` or raise ImportError / a skip reason."""
    if name == "numpy":
        import array_api_compat.numpy as xp
    elif name == "array_api_strict":
        xp = importlib.import_module("array_api_strict")
    elif name in ("torch", "torch_cuda"):
        import array_api_compat.torch as xp

        if name == "torch_cuda" and not xp.cuda.is_available():
            raise _NoGPU("torch is installed but CUDA is not available")
    elif name == "jax":
        import jax

        # Tests use float64; JAX silently truncates to float32 without this switch.
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as xp
    elif name == "dask":
        import array_api_compat.dask.array as xp
    elif name == "cupy":
        import array_api_compat.cupy as xp

        try:
            count = xp.cuda.runtime.getDeviceCount()
        except Exception as exc:  # cupy raises its own CUDARuntimeError without a driver
            raise _NoGPU(f"cupy is installed but no CUDA device is usable ({exc})") from exc
        if count == 0:
            raise _NoGPU("cupy is installed but no CUDA device is present")
    else:  # pragma: no cover - guarded by _requested_backends
        raise ValueError(name)
    return xp


class _NoGPU(Exception):
    pass


def pytest_generate_tests(metafunc):
    if "backend" not in metafunc.fixturenames:
        return
    names, _ = _requested_backends()
    metafunc.parametrize("backend", names, scope="session", ids=names)


@pytest.fixture(scope="session")
def backend(request):
    return request.param


@pytest.fixture(scope="session")
def xp(backend):
    """The array namespace of the backend under test (array-api-compat wrapped)."""
    _, explicit = _requested_backends()
    try:
        return _load_namespace(backend)
    except _NoGPU as exc:
        pytest.skip(f"{backend}: no GPU here ({exc})")
    except ImportError as exc:
        if explicit:
            pytest.fail(
                f"XCE_BACKENDS asks for {backend!r} but it is not installed ({exc}); "
                "install it or drop it from XCE_BACKENDS",
                pytrace=False,
            )
        pytest.skip(f"{backend} is not installed ({exc})")


@pytest.fixture(scope="session")
def device(xp, backend):
    """A device to build inputs on: deliberately *not* the default one where one exists.

    array-api-strict's ``Device("device1")`` catches code that forgets ``device=``.
    """
    if backend == "array_api_strict":
        return xp.Device("device1")
    if backend == "torch_cuda":
        return xp.device("cuda")
    if backend == "torch":
        return xp.device("cpu")
    if backend == "jax":
        import jax

        return jax.devices("cpu")[0]
    if backend == "cupy":
        return xp.cuda.Device(0)
    return "cpu"


@pytest.fixture(params=["float32", "float64"])
def dtype(request, xp):
    """A floating dtype of the backend under test."""
    return getattr(xp, request.param)


@pytest.fixture
def make(xp, device, dtype):
    """Build backend arrays from plain Python / NumPy data on the fixture's device.

    ``make(data)`` gives the fixture's floating dtype; ``make(data, "int64")`` or
    ``make(data, "bool")`` another dtype of the same namespace.
    """
    import numpy as np

    def build(data, dtype_name=None):
        target = dtype if dtype_name is None else getattr(xp, dtype_name)
        return xp.asarray(np.asarray(data), dtype=target, device=device)

    return build
