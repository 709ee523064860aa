"""Property tests whose inputs hypothesis draws as the backend's own arrays.

``hypothesis.extra.array_api`` builds arrays through the namespace under test itself (not by
converting NumPy data), so these catch what a backend's own constructors, dtypes and default
devices do to xce. Oracles: the float64 NumPy reference, and exact invariants of the gradient.
"""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import to_device
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.array_api import make_strategies_namespace

import xce
from tests import reference
from tests.helpers import assert_close, to_numpy

# torch tensors and Dask arrays carry no __array_namespace__, so hypothesis cannot confirm
# that array-api-compat's wrapper namespaces are array-API libraries; it warns and goes on.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Could not determine whether module:hypothesis.errors.HypothesisWarning"
)

SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def _problems(draw, xp, dtype):
    xps = make_strategies_namespace(xp)
    n = draw(st.integers(1, 6))
    c = draw(st.integers(2, 7))
    finite = {"min_value": -40, "max_value": 40, "allow_nan": False, "allow_infinity": False}
    logits = draw(xps.arrays(dtype=dtype, shape=(n, c), elements=finite))
    labels = draw(xps.arrays(dtype=xp.int64, shape=(n,), elements=st.integers(0, c - 1)))
    unit = {"min_value": 0, "max_value": 1, "allow_nan": False}
    targets = draw(xps.arrays(dtype=dtype, shape=(n, c), elements=unit))
    return logits, labels, targets


# Drawn logits can be a probability distribution ([[0.5, 0.5]]), which xce rightly warns
# about; the numbers are what this test checks.
@pytest.mark.filterwarnings("ignore:from_logits=True, but every row:UserWarning")
def test_sparse_loss_and_gradient_on_native_arrays(xp, dtype, device):
    @SETTINGS
    @given(problem=_problems(xp, dtype))
    def check(problem):
        logits, labels, _ = (to_device(a, device) for a in problem)
        loss, grad = xce.value_and_grad(xce.sparse_categorical_cross_entropy)(
            labels, logits, from_logits=True, reduction="sum"
        )
        expected = reference.sparse_categorical_cross_entropy(
            to_numpy(labels), to_numpy(logits), from_logits=True, reduction="sum"
        )
        assert_close(loss, expected, xp=xp, dtype=dtype, device=device,
                     rtol=1e-4 if dtype == xp.float32 else 1e-11, atol=1e-4)  # fmt: skip
        # softmax − one-hot: every row of the gradient sums to 0 and lies in [−1, 1].
        g = to_numpy(grad).astype(np.float64)
        np.testing.assert_allclose(g.sum(axis=1), 0.0, atol=1e-5)
        assert np.all(np.abs(g) <= 1 + 1e-6)

    check()


def test_binary_and_soft_losses_on_native_arrays(xp, dtype, device):
    @SETTINGS
    @given(problem=_problems(xp, dtype))
    def check(problem):
        logits, _, targets = (to_device(a, device) for a in problem)
        binary = xce.binary_cross_entropy(targets, logits, from_logits=True, reduction="none")
        expected = reference.binary_cross_entropy(
            to_numpy(targets), to_numpy(logits), from_logits=True, reduction="none"
        )
        assert_close(binary, expected, xp=xp, dtype=dtype, device=device,
                     rtol=1e-4 if dtype == xp.float32 else 1e-11, atol=1e-5)  # fmt: skip
        assert np.all(to_numpy(binary) >= 0)
        # Any rows in [0, 1], normalised or not: validate=False, the formula as given.
        soft = xce.categorical_cross_entropy(
            targets, logits, from_logits=True, reduction="none", validate=False
        )
        expected = reference.categorical_cross_entropy(
            to_numpy(targets), to_numpy(logits), from_logits=True, reduction="none"
        )
        assert_close(soft, expected, xp=xp, dtype=dtype, device=device,
                     rtol=1e-4 if dtype == xp.float32 else 1e-11, atol=1e-4)  # fmt: skip

    check()
