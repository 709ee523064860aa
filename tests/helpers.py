"""Helpers shared by the conformance suite: assertions, data builders and the backend's cost.

Every comparison first checks what a caller relies on (namespace, dtype, device, shape) and
only then the values, against a float64 NumPy oracle.
"""

from __future__ import annotations

import contextlib

import array_api_compat
import numpy as np

from xce._backends import backend_named

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


# ---------------------------------------------------------------------------------------------
# Data, cases and the backend's cost (shared by the whole suite)
# ---------------------------------------------------------------------------------------------


def seen(arr) -> np.ndarray:
    """The numbers the library saw: ``arr`` on the host, widened to float64."""
    return to_numpy(arr).astype(np.float64)


def logits(seed, shape, scale=2.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=scale, size=shape)


def labels(seed, shape, n_classes) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n_classes, size=shape)


def one_hot(labels, n_classes, axis=-1) -> np.ndarray:
    """Integer labels as one-hot rows along ``axis``."""
    out = (np.asarray(labels)[..., None] == np.arange(n_classes)).astype(np.float64)
    return np.moveaxis(out, -1, axis)


def soft_targets(seed, shape, axis=-1, zeros=True) -> np.ndarray:
    """Rows along ``axis`` summing to 1, with some exact zeros (never an all-zero row)."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, 1.0, size=shape)
    if zeros:
        t = np.where(rng.uniform(size=shape) < 0.3, 0.0, t)
    t = np.moveaxis(t, axis, -1)
    t[..., 0] += 0.1
    t = t / t.sum(axis=-1, keepdims=True)
    return np.moveaxis(t, -1, axis)


def central_difference(total, x, step=1e-6) -> np.ndarray:
    """∂ total / ∂ x by float64 central differences (``total``: NumPy array → float)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += step
        down[i] -= step
        grad[i] = (total(up) - total(down)) / (2 * step)
    return grad


@contextlib.contextmanager
def case(label):
    """Name the failing case of a loop in the assertion report."""
    try:
        yield
    except BaseException as exc:
        if hasattr(exc, "add_note"):
            exc.add_note(f"case: {label}")
        raise


def check(got, expected, *, xp, dtype, device, rtol=None, atol=None) -> None:
    """``assert_close`` that also takes the ``(total, count)`` pair of "sum_and_count"."""
    if isinstance(expected, tuple):
        assert isinstance(got, tuple), f"expected a (total, count) tuple, got {type(got)}"
        assert len(got) == len(expected) == 2
        for g, e in zip(got, expected, strict=True):
            assert_close(g, e, xp=xp, dtype=dtype, device=device, rtol=rtol, atol=atol)
    else:
        assert_close(got, expected, xp=xp, dtype=dtype, device=device, rtol=rtol, atol=atol)


def same(got, other, *, xp, dtype, device, rtol=None, atol=None) -> None:
    """``got`` (an xce result) equals ``other`` (another xce result) to the dtype's tolerance."""
    if isinstance(other, tuple):
        assert isinstance(got, tuple) and len(got) == len(other) == 2
        for g, o in zip(got, other, strict=True):
            same(g, o, xp=xp, dtype=dtype, device=device, rtol=rtol, atol=atol)
        return
    assert_close(got, seen(other), xp=xp, dtype=dtype, device=device, rtol=rtol, atol=atol)


def is_lazy(backend: str) -> bool:
    """Whether xce leaves ``backend``'s values unread (``validate="auto"`` does not check them).

    Those are also the backends where a call is dear (JAX compiles every eager op for each new
    shape, Dask builds a task graph per call, a GPU needs a host sync to show a value): the
    suite runs a representative subset of its cases there.
    """
    return not backend_named(backend).values_read


REDUCTIONS = ("none", "sum", "mean", "sum_and_count")
LAZY_REDUCTIONS = ("none", "sum_and_count")


def reductions(backend: str) -> tuple[str, ...]:
    """Every reduction on eager backends; "none" and "sum_and_count" on lazy ones."""
    return LAZY_REDUCTIONS if is_lazy(backend) else REDUCTIONS


def pick(backend: str, full, lazy) -> list:
    """Every case on eager backends, ``lazy`` (a subset) on lazy ones."""
    return list(lazy) if is_lazy(backend) else list(full)


def build_options(options: dict, make) -> dict:
    """NumPy option values as backend arrays (bool → bool, integer → int64, else the fixture's
    floating dtype); Python numbers and None pass through."""
    out = {}
    for key, value in options.items():
        if isinstance(value, np.ndarray):
            if value.dtype == bool:
                value = make(value, "bool")
            elif np.issubdtype(value.dtype, np.integer):
                value = make(value, "int64")
            else:
                value = make(value)
        out[key] = value
    return out


def reference_options(built: dict, options: dict) -> dict:
    """The options as the reference sees them: floating arrays rounded as the library saw them."""
    return {
        key: (
            seen(built[key]) if isinstance(value, np.ndarray) and value.dtype.kind == "f" else value
        )
        for key, value in options.items()
    }


def forbid_the_full_path(monkeypatch, backend: str) -> None:
    """Make the full path's prepare step fail, so that a call proves it was answered by a
    plain lane; skips where no lane exists (other backends, or fast paths disabled)."""
    import pytest

    from xce import _pipeline
    from xce._fast import _config

    if backend not in ("numpy", "torch") or not _config.FAST_PATHS_ENABLED:
        pytest.skip(f"{backend}: no plain lane (or fast paths disabled)")

    def full_path(*args, **kwargs):
        raise AssertionError("the full path was taken")

    for name in ("prepare_labels", "prepare_soft", "prepare_binary"):
        monkeypatch.setattr(_pipeline, name, full_path)
