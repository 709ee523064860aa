"""Assertion helpers shared by the conformance suite.

Every comparison first checks what a caller relies on (namespace, dtype, device, shape) and
only then the values, against a float64 NumPy oracle.
"""

from __future__ import annotations

import array_api_compat
import numpy as np

# Relative tolerances for results computed in the given dtype.
RTOL = {"float32": 2e-5, "float64": 1e-12, "float16": 2e-3, "bfloat16": 2e-2}
ATOL = {"float32": 2e-6, "float64": 1e-13, "float16": 2e-3, "bfloat16": 2e-2}


def dtype_name(xp, dtype) -> str:
    for name in ("float16", "bfloat16", "float32", "float64"):
        if getattr(xp, name, None) is not None and dtype == getattr(xp, name):
            return name
    return str(dtype)


def to_numpy(x) -> np.ndarray:
    """Any backend's array (or Python scalar) as a NumPy array on the host."""
    if isinstance(x, (int, float, bool, np.ndarray, np.generic)):
        return np.asarray(x)
    if array_api_compat.is_torch_array(x):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        return x.numpy()
    if array_api_compat.is_dask_array(x):
        return np.asarray(x.compute())
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if array_api_compat.is_array_api_strict_namespace(array_api_compat.array_namespace(x)):
        import array_api_strict

        return np.asarray(x.to_device(array_api_strict.Device("CPU_DEVICE")))
    return np.asarray(x)


def assert_array_like(actual, *, xp, dtype, device, shape) -> None:
    """Namespace, dtype, device and shape of ``actual``."""
    got_xp = array_api_compat.array_namespace(actual)
    assert got_xp.__name__ == xp.__name__, f"namespace {got_xp.__name__} != {xp.__name__}"
    assert actual.dtype == dtype, f"dtype {actual.dtype} != {dtype}"
    assert array_api_compat.device(actual) == device, (
        f"device {array_api_compat.device(actual)} != {device}"
    )
    assert tuple(actual.shape) == tuple(shape), f"shape {tuple(actual.shape)} != {tuple(shape)}"


def assert_close(actual, expected, *, xp, dtype, device, rtol=None, atol=None) -> None:
    """``actual`` is an ``xp`` array of ``dtype`` on ``device`` matching ``expected`` (NumPy)."""
    expected = np.asarray(expected, dtype=np.float64)
    assert_array_like(actual, xp=xp, dtype=dtype, device=device, shape=expected.shape)
    name = dtype_name(xp, dtype)
    np.testing.assert_allclose(
        to_numpy(actual).astype(np.float64),
        expected,
        rtol=RTOL.get(name, 1e-5) if rtol is None else rtol,
        atol=ATOL.get(name, 1e-6) if atol is None else atol,
        equal_nan=True,
    )
