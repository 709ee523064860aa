"""``xce.compat.tf`` against ``tf.nn`` (TensorFlow CPU), with every backend's arrays as input.

Hypothesis draws labels and logits; TensorFlow gets the same dtype-rounded numbers as
tensors. Besides the peer, each function is checked against TensorFlow's documented formula
(as the project's shared semantics notes record it; the formula is in each helper below)
written out in NumPy float64 (so the formulas are pinned even where TensorFlow is missing),
and against hand-computed values.
"""

from __future__ import annotations

import numpy as np
import pytest
from compat_helpers import (
    batch_sizes,
    class_counts,
    explore,
    float_arrays,
    make_env,
    shapes,
    softmax,
    unit_arrays,
)
from helpers import to_numpy
from hypothesis import strategies as st

from xce.compat import tf as compat


@pytest.fixture
def env(backend, xp, device, dtype):
    return make_env(backend, xp, device, dtype)


def _tensor(tf, env, data, kind="float"):
    if kind == "int":
        return tf.constant(np.asarray(data, dtype=np.int64))
    return tf.constant(env.rounded(data))


def _sigmoid_formula(z, x):
    """tf.nn.sigmoid_cross_entropy_with_logits: max(x, 0) - x·z + log1p(exp(-|x|))."""
    return np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))


def _weighted_formula(z, x, q):
    """tf.nn.weighted_cross_entropy_with_logits with pos_weight q:
    (1-z)·x + (1 + (q-1)·z)·(log1p(exp(-|x|)) + max(-x, 0))."""
    return (1 - z) * x + (1 + (q - 1) * z) * (np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0))


@st.composite
def binary_problems(draw, env):
    shape = draw(shapes(env, [(2, 3), (4,), (2, 2, 2)]))
    z = draw(unit_arrays(shape))
    x = draw(float_arrays(shape, -30, 30))
    q_shape = draw(st.sampled_from([(), shape[-1:], shape]))
    q = draw(float_arrays(q_shape, 0.1, 5.0))
    return z, x, q


def test_sigmoid_and_weighted(env, tf_peer):
    tf = tf_peer

    def case(problem):
        z, x, q = problem
        zs, xs, qs = (env.rounded(a).astype(np.float64) for a in (z, x, q))
        got = compat.sigmoid_cross_entropy_with_logits(env.array(z), env.array(x))
        # TF's form cancels for x < 0 (max(x,0) - x·z): a few ulps of |x| absolute.
        env.check(got, tf.nn.sigmoid_cross_entropy_with_logits(
            labels=_tensor(tf, env, z), logits=_tensor(tf, env, x)), scale=300)  # fmt: skip
        env.check(got, _sigmoid_formula(zs, xs), scale=300)
        got = compat.weighted_cross_entropy_with_logits(env.array(z), env.array(x),
                                                        env.array(q))  # fmt: skip
        env.check(got, tf.nn.weighted_cross_entropy_with_logits(
            labels=_tensor(tf, env, z), logits=_tensor(tf, env, x),
            pos_weight=_tensor(tf, env, q)), scale=300)  # fmt: skip
        env.check(got, _weighted_formula(zs, xs, qs), scale=300)

    explore(env, binary_problems(env), case)


@st.composite
def softmax_problems(draw, env):
    n, c = draw(batch_sizes(env)), draw(class_counts(env))
    x = draw(float_arrays((n, c), -20, 20))
    if draw(st.booleans()):
        x = x + draw(st.sampled_from([0.0, 1e3, -1e3]))  # large offsets
    labels = np.asarray(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    y = softmax(draw(float_arrays((n, c)))) if draw(st.booleans()) else np.eye(c)[labels]
    return x, y, labels


def test_softmax_and_sparse(env, tf_peer):
    tf = tf_peer

    def case(problem):
        x, y, labels = problem
        xs = env.rounded(x).astype(np.float64)
        m = xs.max(axis=-1, keepdims=True)
        log_p = (xs - m) - np.log(np.exp(xs - m).sum(axis=-1, keepdims=True))
        got = compat.softmax_cross_entropy_with_logits(env.array(y), env.array(x))
        env.check(got, tf.nn.softmax_cross_entropy_with_logits(
            labels=_tensor(tf, env, y), logits=_tensor(tf, env, x)), scale=20)  # fmt: skip
        env.check(got, -(env.rounded(y).astype(np.float64) * log_p).sum(axis=-1), scale=20)
        got = compat.sparse_softmax_cross_entropy_with_logits(env.array(labels, "int"),
                                                              env.array(x))  # fmt: skip
        env.check(got, tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=_tensor(tf, env, labels, "int"), logits=_tensor(tf, env, x)),
            scale=20)  # fmt: skip
        env.check(got, -np.take_along_axis(log_p, labels[:, None], axis=-1)[:, 0], scale=20)

    explore(env, softmax_problems(env), case)


def test_softmax_class_axis(env, tf_peer):
    tf = tf_peer
    x = np.arange(12.0).reshape(2, 3, 2) / 4
    y = softmax(np.cos(x), axis=1)
    got = compat.softmax_cross_entropy_with_logits(env.array(y), env.array(x), axis=1)
    assert tuple(got.shape) == (2, 2)
    env.check(got, tf.nn.softmax_cross_entropy_with_logits(
        labels=_tensor(tf, env, y), logits=_tensor(tf, env, x), axis=1))  # fmt: skip


def test_hand_computed(env):
    """Values computed by hand, independent of any library."""
    got = compat.sigmoid_cross_entropy_with_logits(env.array([1.0, 0.0, 1.0]),
                                                   env.array([0.0, 0.0, 100.0]))  # fmt: skip
    env.check(got, [np.log(2.0), np.log(2.0), 0.0], atol=1e-6)
    # pos_weight 3 on a positive at x = 0: 3·log 2; a negative at x = 0 ignores it: log 2.
    got = compat.weighted_cross_entropy_with_logits(env.array([1.0, 0.0]),
                                                    env.array([0.0, 0.0]), 3.0)  # fmt: skip
    env.check(got, [3 * np.log(2.0), np.log(2.0)])
    got = compat.sparse_softmax_cross_entropy_with_logits(
        env.array([0, 1], "int"), env.array([[0.0, 0.0], [0.0, 0.0]])
    )
    env.check(got, [np.log(2.0), np.log(2.0)])
    # Offsets of 1e8 lose nothing (float32 too): the loss of [1e8, 1e8] is log 2.
    got = compat.softmax_cross_entropy_with_logits(env.array([[1.0, 0.0]]),
                                                   env.array([[1e8, 1e8]]))  # fmt: skip
    env.check(got, [np.log(2.0)])


def test_out_of_range_label(env):
    x = env.array([[0.0, 1.0], [2.0, 0.0]])
    y = env.array([0, 2], "int")
    if env.checked:
        with pytest.raises(ValueError, match="y_true"):
            compat.sparse_softmax_cross_entropy_with_logits(y, x)
    else:
        got = to_numpy(compat.sparse_softmax_cross_entropy_with_logits(y, x))
        assert np.isfinite(got[0]) and np.isnan(got[1])
