"""``xce.compat.sklearn.log_loss`` against ``sklearn.metrics.log_loss``, with every backend's
arrays as input: the eps clipping at exact 0 and 1, weights, ``normalize``, label encoding
(strings, ``labels``, the binary 1-D form) and scikit-learn's warnings and errors.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from compat_helpers import TOLERANCE, explore, float_arrays, make_env, softmax
from hypothesis import strategies as st

from xce.compat import sklearn as compat


@pytest.fixture
def env(backend, xp, device, dtype):
    return make_env(backend, xp, device, dtype)


def _close(env, got, expected):
    assert isinstance(got, float)
    rtol, atol = TOLERANCE[env.name]
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol * 40)


@st.composite
def problems(draw, env):
    n = draw(st.sampled_from([3, 4, 6] if env.checked else [4]))
    c = draw(st.sampled_from([2, 3, 4] if env.checked else [3]))
    labels = np.asarray(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    labels[:2] = [0, 1]  # at least two classes present
    kind = draw(st.sampled_from(["softmax", "one_hot"]))
    proba = softmax(draw(float_arrays((n, c))))
    if kind == "one_hot":  # exact 0 and 1: both ends of the clip
        proba = np.eye(c)[draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n))]
    weight = draw(st.none() | float_arrays((n,), 0.1, 3.0))
    return labels, proba, weight, draw(st.booleans())


def test_log_loss(env, sklearn_peer):
    metrics = sklearn_peer

    def case(problem):
        labels, proba, weight, normalize = problem
        p = env.rounded(proba)
        c = p.shape[1]
        given = list(range(c)) if len(np.unique(labels)) < c else None
        with warnings.catch_warnings():
            # float32 rows may miss 1 by more than √eps: both sides warn alike (checked below).
            warnings.simplefilter("ignore", UserWarning)
            got = compat.log_loss(
                env.array(labels, "int"), env.array(proba), normalize=normalize,
                sample_weight=None if weight is None else env.array(weight), labels=given,
            )  # fmt: skip
            expected = metrics.log_loss(labels, p, normalize=normalize, sample_weight=(
                None if weight is None else env.rounded(weight)), labels=given)  # fmt: skip
        _close(env, got, expected)

    explore(env, problems(env), case)


def test_binary_one_column_and_string_labels(env, sklearn_peer):
    metrics = sklearn_peer
    p_pos = np.array([0.9, 0.1, 0.0, 1.0, 0.35])
    y = np.array(["spam", "ham", "ham", "spam", "spam"])
    got = compat.log_loss(y, env.array(p_pos))
    _close(env, got, metrics.log_loss(y, env.rounded(p_pos)))
    got = compat.log_loss(env.array([1, 0, 0, 1, 1], "int"), env.array(p_pos[:, None]))
    _close(env, got, metrics.log_loss([1, 0, 0, 1, 1], env.rounded(p_pos[:, None])))


def test_eps_is_the_dtype_epsilon(env):
    """A certain, correct prediction still costs eps: -log(1 - eps) ≈ eps of the dtype."""
    eps = float(np.finfo(env.np_dtype).eps)
    got = compat.log_loss(env.array([0, 1], "int"), env.array([[1.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_allclose(got, -np.log1p(-eps) if env.name == "float64" else eps,
                               rtol=1e-6)  # fmt: skip
    got = compat.log_loss(env.array([0, 1], "int"), env.array([[0.0, 1.0], [1.0, 0.0]]))
    np.testing.assert_allclose(got, -np.log(eps), rtol=1e-6)


def test_warnings_like_sklearn(env, sklearn_peer):
    metrics = sklearn_peer
    p = np.array([[0.5, 0.6], [0.2, 0.7]])  # rows do not sum to 1
    with pytest.warns(UserWarning, match="do not sum to one"):
        got = compat.log_loss(env.array([0, 1], "int"), env.array(p))
    with pytest.warns(UserWarning, match="do not sum to one"):
        expected = metrics.log_loss([0, 1], env.rounded(p))
    _close(env, got, expected)
    with pytest.warns(UserWarning, match="ordered lexicographically"):
        compat.log_loss(env.array([0, 1], "int"), env.array([[0.5, 0.5], [0.2, 0.8]]),
                        labels=[1, 0])  # fmt: skip


def test_errors_like_sklearn(env):
    p = env.array([[0.5, 0.5], [0.2, 0.8]])
    with pytest.raises(ValueError, match="only one label"):
        compat.log_loss(env.array([1, 1], "int"), p)
    with pytest.raises(ValueError, match="greater than 1"):
        compat.log_loss(env.array([0, 1], "int"), env.array([[0.5, 1.5], [0.2, 0.8]]))
    with pytest.raises(ValueError, match="lower than 0"):
        compat.log_loss(env.array([0, 1], "int"), env.array([[-0.5, 1.0], [0.2, 0.8]]))
    with pytest.raises(ValueError, match="not belonging"):
        compat.log_loss(env.array([0, 2], "int"), p, labels=[0, 1])
    with pytest.raises(ValueError, match="different number of classes"):
        compat.log_loss(env.array([0, 1, 2], "int"), env.array(np.full((3, 2), 0.5)))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        compat.log_loss(env.array([0, 1, 1], "int"), p)
    with pytest.raises(ZeroDivisionError):
        compat.log_loss(env.array([0, 1], "int"), p, sample_weight=env.array([0.0, 0.0]))


def test_indicator_matrix(env, sklearn_peer):
    y = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]])
    _close(env, compat.log_loss(env.array(y, "int"), env.array(p)),
           sklearn_peer.log_loss(y, env.rounded(p)))  # fmt: skip
