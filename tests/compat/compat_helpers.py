"""Shared pieces of the compatibility tests: settings, strategies and the comparison.

Every test builds NumPy data (from hypothesis or by hand), rounds it to the dtype under test,
hands the *same* numbers to the real library (its own arrays) and to ``xce.compat`` (the
backend's arrays, from the ``xp`` fixture), and compares: namespace, dtype, device and shape
first, then the values at float64 1e-12 / float32 1e-5 relative (the issue's bar).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from helpers import assert_close, dtype_name, to_numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from xce._backends import backend_named

COMPAT_SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# (rtol, atol) per dtype: the relative bar, and an absolute floor for losses near 0.
TOLERANCE = {"float64": (1e-12, 1e-13), "float32": (1e-5, 1e-6)}


@dataclass
class Env:
    backend: str
    xp: object
    device: object
    dtype: object

    @property
    def name(self) -> str:
        return dtype_name(self.xp, self.dtype)

    @property
    def np_dtype(self):
        return np.dtype(self.name)

    @property
    def checked(self) -> bool:
        """Whether xce reads values here (eager host data)."""
        return backend_named(self.backend).values_read

    def rounded(self, data) -> np.ndarray:
        """Floating NumPy data as the dtype under test sees it."""
        return np.asarray(data, dtype=np.float64).astype(self.np_dtype)

    def array(self, data, kind="float"):
        """A backend array on the fixture's device: ``kind`` "float", "int" or "bool"."""
        # Fresh writable copies: torch warns on read-only (broadcast) NumPy views.
        if kind == "int":
            return self.xp.asarray(np.array(data, dtype=np.int64), device=self.device)
        if kind == "bool":
            return self.xp.asarray(np.array(data, dtype=bool), device=self.device)
        return self.xp.asarray(self.rounded(data).copy(), dtype=self.dtype, device=self.device)

    def check(self, got, expected, *, rtol=None, atol=None, scale=1.0):
        """``got`` (a backend array) against the peer's result (any array or number)."""
        default_rtol, default_atol = TOLERANCE[self.name]
        if isinstance(expected, (list, tuple)):
            expected = np.asarray(expected, dtype=np.float64)
        if type(expected).__module__.startswith("tensorflow"):
            expected = expected.numpy()
        expected = np.asarray(to_numpy(expected), dtype=np.float64)
        assert_close(
            got, expected, xp=self.xp, dtype=self.dtype, device=self.device,
            rtol=default_rtol if rtol is None else rtol,
            atol=(default_atol if atol is None else atol) * scale,
        )  # fmt: skip


def jax_peer_array(env: Env, data, kind="float"):
    """The same numbers as a JAX array, for the JAX-based peers (Keras on JAX, Optax)."""
    import jax.numpy as jnp

    if kind == "int":
        return jnp.asarray(np.asarray(data, dtype=np.int64))
    return jnp.asarray(env.rounded(data))


def make_env(backend, xp, device, dtype) -> Env:
    return Env(backend, xp, device, dtype)


def explore(env: Env, strategy, body, *, examples=20):
    """Run ``body(drawn)`` on hypothesis examples of ``strategy``.

    On the lazy backends each eager JAX op compiles per shape and each Dask call builds a
    graph, so they run fewer examples (the strategies also draw fewer shapes there); the
    eager backends run the full count.
    """
    count = examples if env.checked else max(4, examples // 5)

    @settings(COMPAT_SETTINGS, max_examples=count)
    @given(strategy)
    def run(drawn):
        body(drawn)

    run()


# ---------------------------------------------------------------------------------------------
# Strategies: small shapes (JAX compiles every eager op per shape), finite values
# ---------------------------------------------------------------------------------------------


def values(low=-8.0, high=8.0):
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def float_arrays(shape, low=-8.0, high=8.0):
    return hnp.arrays(np.float64, shape, elements=values(low, high))


def unit_arrays(shape):
    """Values in [0, 1], the ends included (the clipping edge). Nothing below 1e-30: a
    float32 subnormal is flushed to 0 by XLA on CPU, a difference of JAX, not of xce."""
    return hnp.arrays(np.float64, shape, elements=st.just(0.0) | st.floats(1e-30, 1.0))


def batch_sizes(env):
    return st.sampled_from([1, 3] if env.checked else [2])


def class_counts(env):
    return st.sampled_from([2, 5] if env.checked else [3])


def shapes(env, options):
    """One of ``options`` (the first only on the lazy backends)."""
    return st.sampled_from(list(options) if env.checked else list(options)[:1])


def softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def one_hot(labels, n_classes, axis=-1):
    out = (np.asarray(labels)[..., None] == np.arange(n_classes)).astype(np.float64)
    return np.moveaxis(out, -1, axis)
