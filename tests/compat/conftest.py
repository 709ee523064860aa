"""Peers for the compatibility tests: the real libraries that ``xce.compat`` imitates.

Each ``<peer>`` fixture imports the real library. When it is not installed the tests that
need it skip with the reason, unless ``XCE_REQUIRE_PEERS=1`` (the ``compat`` nox session),
where a missing peer is a failure: a broken session must not pass green on skips.

Keras runs on its JAX backend (``KERAS_BACKEND=jax`` is set here, before Keras can be
imported) with float64 enabled, so that float64 inputs stay float64 in the peer too.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from pathlib import Path

import pytest

# The shared helpers (helpers.py, reference.py) live one level up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def peers_required() -> bool:
    return os.environ.get("XCE_REQUIRE_PEERS", "").strip().lower() in ("1", "true", "yes")


def _import_peer(module: str):
    try:
        with warnings.catch_warnings():
            # Import-time deprecation chatter of the peers is not what these tests check.
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError as exc:
        if peers_required():
            pytest.fail(
                f"XCE_REQUIRE_PEERS=1 but the peer {module!r} is not installed ({exc}); "
                "install it (the compat nox session does) or unset XCE_REQUIRE_PEERS",
                pytrace=False,
            )
        pytest.skip(f"peer {module!r} is not installed, nothing to compare with ({exc})")


def _enable_jax_x64():
    try:
        import jax
    except ImportError:
        return
    jax.config.update("jax_enable_x64", True)


@pytest.fixture(scope="session")
def torch_peer():
    """``torch.nn.functional`` (and torch itself as ``.torch``)."""
    torch = _import_peer("torch")
    functional = importlib.import_module("torch.nn.functional")
    functional.torch = torch
    return functional


@pytest.fixture(scope="session")
def keras_peer():
    _enable_jax_x64()
    keras = _import_peer("keras")
    backend = keras.backend.backend()
    if backend != "jax":
        pytest.fail(f"keras was imported with the {backend!r} backend before the compat "
                    "tests could select 'jax'", pytrace=False)  # fmt: skip
    return keras


@pytest.fixture(scope="session")
def optax_peer():
    _enable_jax_x64()
    return _import_peer("optax")


@pytest.fixture(scope="session")
def tf_peer():
    return _import_peer("tensorflow")


@pytest.fixture(scope="session")
def sklearn_peer():
    _import_peer("sklearn")
    return _import_peer("sklearn.metrics")
