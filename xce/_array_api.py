"""The one module that imports array-api-compat; everything else imports from here.

array-api-compat *is* the backend registry: ``array_namespace`` turns any supported array into
its standard namespace. This module adds the questions xce asks about an array beyond that:
may its values be read cheaply (``is_eager_host``), is it a JAX tracer (``is_jax_tracer``),
and which devices does it live on (``device`` where new arrays go, ``device_set`` to compare).
"""

from __future__ import annotations

from typing import Any

from array_api_compat import (
    array_namespace,
    is_array_api_obj,
    is_array_api_strict_namespace,
    is_cupy_namespace,
    is_dask_array,
    is_dask_namespace,
    is_jax_array,
    is_jax_namespace,
    is_lazy_array,
    is_numpy_array,
    is_numpy_namespace,
    is_torch_array,
    is_torch_namespace,
    size,
    to_device,
)
from array_api_compat import device as _device

__all__ = [
    "array_namespace",
    "device",
    "device_set",
    "index_dtype",
    "is_array_api_obj",
    "is_array_api_strict_namespace",
    "is_cupy_namespace",
    "is_dask_array",
    "is_dask_namespace",
    "is_eager_host",
    "is_jax_array",
    "is_jax_namespace",
    "is_jax_tracer",
    "is_numpy_namespace",
    "is_torch_namespace",
    "library_name",
    "may_be_differentiated",
    "size",
    "to_device",
]


def is_eager_host(x) -> bool:
    """True where reading values costs no device sync and no graph evaluation.

    NumPy, array-api-strict and CPU torch tensors qualify. JAX arrays never do (they may be
    tracers), nor do Dask arrays (lazy) or GPU arrays (a read would synchronise the device).
    """
    if is_numpy_array(x):
        return True
    if is_torch_array(x):
        return x.device.type == "cpu"
    if is_lazy_array(x):
        return False
    return is_array_api_strict_namespace(array_namespace(x))


def is_jax_tracer(x) -> bool:
    """True for an abstract JAX value (inside ``jax.jit``, ``jax.grad``, ``vmap``...)."""
    if not is_jax_array(x):
        return False
    import jax

    return isinstance(x, jax.core.Tracer)


def may_be_differentiated(x) -> bool:
    """True where an autodiff system may trace through ``x``: a torch tensor that requires
    grad, or a JAX tracer (inside ``jax.grad``, ``jit``...)."""
    if is_torch_array(x):
        return x.requires_grad
    return is_jax_tracer(x)


def library_name(x) -> str:
    """The top-level package an array comes from, for error messages."""
    return type(x).__module__.split(".", 1)[0]


def index_dtype(xp: Any, on_device: Any) -> Any:
    """The namespace's default integer type for indexing on ``on_device``."""
    try:
        return xp.__array_namespace_info__().default_dtypes(device=on_device)["indexing"]
    except (AttributeError, TypeError, KeyError):
        return xp.int64


def device(x) -> Any:
    """Where to make new arrays of ``x``'s call: ``x``'s device (``None`` for a JAX tracer).

    A JAX array spread over several devices reports its sharding as its device, which fits
    only arrays of its rank (a 0-d count or a 1-D ``arange`` cannot take a batch sharding).
    New arrays then go on the same devices, replicated: the sharding's mesh with no axis
    split (an unknown kind of sharding: ``None``, JAX's default placement, which combines
    with any committed array).
    """
    d = _device(x)
    if not is_jax_array(x) or len(getattr(d, "device_set", ())) <= 1:
        return d
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(d.mesh, PartitionSpec()) if isinstance(d, NamedSharding) else None


def device_set(x) -> Any:
    """What two arrays must share to be computed together: the set of devices of a JAX
    array (one or several: a sharding over the same devices matches, whatever its layout),
    else the device (``None`` for a JAX tracer, which has none to compare)."""
    if is_jax_array(x) and not is_jax_tracer(x):
        return frozenset(x.devices())
    return _device(x)
