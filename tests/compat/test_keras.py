"""``xce.compat.keras`` against ``keras.losses`` (Keras 3 on JAX), with every backend's arrays.

Hypothesis draws targets, predictions (probabilities with exact 0s and 1s: the clipping edge;
unnormalised rows: the renormalisation) and options; Keras gets the same dtype-rounded numbers
as JAX arrays. Keras's ``ops.mean`` averages float64 losses in float32 (its dtype promotion
of ``("float64", "float32")`` is float32), so the three losses that average per sample match
Keras there to float32 precision, and match Keras's element-wise op averaged in float64 to
1e-12. Then ``jax.jit`` / ``jax.grad`` through the compat call, and the divergences.
"""

from __future__ import annotations

import numpy as np
import pytest
from compat_helpers import (
    batch_sizes,
    class_counts,
    explore,
    float_arrays,
    jax_peer_array,
    make_env,
    one_hot,
    shapes,
    softmax,
    unit_arrays,
)
from helpers import to_numpy
from hypothesis import strategies as st

from xce.compat import keras as compat

# Keras's float64 means are computed in float32 (see the module docstring).
KERAS_MEAN_F64 = {"rtol": 1e-6, "atol": 1e-6}


@pytest.fixture
def env(backend, xp, device, dtype):
    return make_env(backend, xp, device, dtype)


_j = jax_peer_array


def _mean_tolerance(env):
    return KERAS_MEAN_F64 if env.name == "float64" else {}


# ---------------------------------------------------------------------------------------------
# Binary
# ---------------------------------------------------------------------------------------------


@st.composite
def binary_problems(draw, env):
    shape = draw(shapes(env, [(2, 3), (3,), (2, 2, 3)]))
    from_logits = draw(st.booleans())
    y_pred = draw(float_arrays(shape) if from_logits else unit_arrays(shape))
    hard = draw(st.booleans())
    y_true = draw(unit_arrays(shape))
    if hard:
        y_true = np.round(y_true)
    smoothing = draw(st.sampled_from([0.0, 0.1]))
    axis = draw(st.sampled_from([-1, 0]))
    return y_true, y_pred, from_logits, smoothing, axis, hard


def test_binary_crossentropy(env, keras_peer):
    def case(problem):
        y_true, y_pred, from_logits, smoothing, axis, hard = problem
        t = env.array(y_true, "int") if hard else env.array(y_true)
        got = compat.binary_crossentropy(t, env.array(y_pred), from_logits=from_logits,
                                         label_smoothing=smoothing, axis=axis)  # fmt: skip
        kt = _j(env, y_true, "int") if hard else _j(env, y_true)
        expected = keras_peer.losses.binary_crossentropy(
            kt, _j(env, y_pred), from_logits=from_logits, label_smoothing=smoothing, axis=axis
        )
        env.check(got, expected, scale=20, **_mean_tolerance(env))
        # Keras's element-wise op, averaged in the input dtype: the exact bar.
        smoothed = _j(env, y_true) * (1.0 - smoothing) + 0.5 * smoothing
        per_output = keras_peer.ops.binary_crossentropy(smoothed, _j(env, y_pred),
                                                        from_logits=from_logits)  # fmt: skip
        import jax.numpy as jnp

        env.check(got, jnp.mean(per_output, axis=axis), scale=20)

    explore(env, binary_problems(env), case)


def test_binary_focal_crossentropy(env, keras_peer):
    @st.composite
    def problems(draw):
        base = draw(binary_problems(env))
        return (*base, draw(st.booleans()), draw(st.sampled_from([0.25, 0.6])),
                draw(st.sampled_from([0.0, 0.5, 2.0, 3.0])))  # fmt: skip

    def case(problem):
        y_true, y_pred, from_logits, smoothing, axis, _, balance, alpha, gamma = problem
        kw = {"apply_class_balancing": balance, "alpha": alpha, "gamma": gamma,
              "from_logits": from_logits, "label_smoothing": smoothing, "axis": axis}  # fmt: skip
        got = compat.binary_focal_crossentropy(env.array(y_true), env.array(y_pred), **kw)
        expected = keras_peer.losses.binary_focal_crossentropy(
            _j(env, y_true), _j(env, y_pred), **kw
        )
        env.check(got, expected, scale=20, **_mean_tolerance(env))

    explore(env, problems(), case)


# ---------------------------------------------------------------------------------------------
# Categorical and sparse
# ---------------------------------------------------------------------------------------------


@st.composite
def categorical_problems(draw, env):
    n, c = draw(batch_sizes(env)), draw(class_counts(env))
    shape = (n, c)
    from_logits = draw(st.booleans())
    kind = draw(st.sampled_from(["softmax", "one_hot", "unnormalised"]))
    raw = draw(float_arrays(shape))
    if from_logits:
        y_pred = raw
    elif kind == "softmax":
        y_pred = softmax(raw)
    elif kind == "one_hot":  # exact 0s and 1s: both clip bounds
        y_pred = one_hot(np.argmax(raw, axis=-1), c)
    else:  # positive scores that Keras renormalises
        y_pred = np.abs(raw) + 0.5
    labels = np.asarray(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    soft = draw(st.booleans())
    y_true = softmax(draw(float_arrays(shape))) if soft else one_hot(labels, c)
    smoothing = draw(st.sampled_from([0.0, 0.2]))
    return y_true, y_pred, labels, from_logits, smoothing


def test_categorical_crossentropy(env, keras_peer):
    def case(problem):
        y_true, y_pred, _, from_logits, smoothing = problem
        got = compat.categorical_crossentropy(env.array(y_true), env.array(y_pred),
                                              from_logits=from_logits,
                                              label_smoothing=smoothing)  # fmt: skip
        expected = keras_peer.losses.categorical_crossentropy(
            _j(env, y_true), _j(env, y_pred), from_logits=from_logits, label_smoothing=smoothing
        )
        env.check(got, expected, scale=20)

    explore(env, categorical_problems(env), case)


def test_sparse_categorical_crossentropy(env, keras_peer):
    @st.composite
    def problems(draw):
        _, y_pred, labels, from_logits, _ = draw(categorical_problems(env))
        label_kind = draw(st.sampled_from(["int", "float", "trailing_1"]))
        ignore = draw(st.sampled_from([None, 0, -1]))
        if ignore == -1 and labels.size:
            labels = labels.copy()
            labels[0] = -1
        return y_pred, labels, from_logits, label_kind, ignore

    def case(problem):
        y_pred, labels, from_logits, label_kind, ignore = problem
        data = labels[:, None] if label_kind == "trailing_1" else labels
        kind = "float" if label_kind == "float" else "int"
        got = compat.sparse_categorical_crossentropy(env.array(data, kind), env.array(y_pred),
                                                     from_logits=from_logits,
                                                     ignore_class=ignore)  # fmt: skip
        expected = keras_peer.losses.sparse_categorical_crossentropy(
            _j(env, data, kind), _j(env, y_pred), from_logits=from_logits, ignore_class=ignore
        )
        env.check(got, expected, scale=20)

    explore(env, problems(), case)


def test_categorical_focal_crossentropy(env, keras_peer):
    @st.composite
    def problems(draw):
        y_true, y_pred, _, from_logits, smoothing = draw(categorical_problems(env))
        c = y_pred.shape[-1]
        alpha = draw(st.sampled_from([0.25, 1.0, "per_class"]))
        if alpha == "per_class":
            alpha = list(np.linspace(0.2, 0.8, c))
        return y_true, y_pred, from_logits, smoothing, alpha, draw(st.sampled_from([0.0, 2.0]))

    def case(problem):
        y_true, y_pred, from_logits, smoothing, alpha, gamma = problem
        kw = {"alpha": alpha, "gamma": gamma, "from_logits": from_logits,
              "label_smoothing": smoothing}  # fmt: skip
        got = compat.categorical_focal_crossentropy(env.array(y_true), env.array(y_pred), **kw)
        expected = keras_peer.losses.categorical_focal_crossentropy(
            _j(env, y_true), _j(env, y_pred), **kw
        )
        env.check(got, expected, scale=20)

    explore(env, problems(), case)


# ---------------------------------------------------------------------------------------------
# KL divergence, Poisson
# ---------------------------------------------------------------------------------------------


@st.composite
def pair_problems(draw, env, low, high):
    shape = draw(shapes(env, [(2, 3), (4,)]))
    return draw(float_arrays(shape, low, high)), draw(float_arrays(shape, low, high))


def test_kl_divergence(env, keras_peer):
    """Both arguments are clipped to [1e-7, 1]: values past both ends included."""

    def case(problem):
        y_true, y_pred = problem
        got = compat.kl_divergence(env.array(y_true), env.array(y_pred))
        expected = keras_peer.losses.kl_divergence(_j(env, y_true), _j(env, y_pred))
        env.check(got, expected, scale=20)

    explore(env, pair_problems(env, -0.2, 1.2), case)


def test_poisson(env, keras_peer):
    def case(problem):
        y_true, y_pred = problem
        got = compat.poisson(env.array(y_true), env.array(y_pred))
        expected = keras_peer.losses.poisson(_j(env, y_true), _j(env, y_pred))
        env.check(got, expected, scale=20, **_mean_tolerance(env))

    explore(env, pair_problems(env, 0.0, 6.0), case)


# ---------------------------------------------------------------------------------------------
# Edge rules by hand
# ---------------------------------------------------------------------------------------------


def test_edge_rules(env, keras_peer):
    """Per-sample shapes, all-ignored rows (0), clipping at exact 0/1, unnormalised rows."""
    losses = keras_peer.losses
    p = np.array([[0.0, 1.0, 0.0], [2.0, 1.0, 1.0]])  # exact 0/1; an unnormalised row
    y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    env.check(compat.categorical_crossentropy(env.array(y), env.array(p)),
              losses.categorical_crossentropy(_j(env, y), _j(env, p)))  # fmt: skip
    labels = np.array([-1, -1])  # every entry ignored
    got = compat.sparse_categorical_crossentropy(env.array(labels, "int"), env.array(p),
                                                 ignore_class=-1)  # fmt: skip
    env.check(got, [0.0, 0.0])
    env.check(got, losses.sparse_categorical_crossentropy(_j(env, labels, "int"), _j(env, p),
                                                          ignore_class=-1))  # fmt: skip
    yb, pb = np.array([[1.0, 0.0, 1.0, 0.0]]), np.array([[1.0, 1.0, 0.0, 0.0]])
    got = compat.binary_crossentropy(env.array(yb), env.array(pb))
    assert tuple(got.shape) == (1,)  # the per-sample mean over the last axis
    env.check(got, losses.binary_crossentropy(_j(env, yb), _j(env, pb)), scale=20,
              **_mean_tolerance(env))  # fmt: skip


def test_jit_and_grad_through_compat(backend, keras_peer):
    if backend != "jax":
        pytest.skip("jax.jit and jax.grad apply to JAX arrays")
    import jax
    import jax.numpy as jnp

    losses = keras_peer.losses
    # No logit exactly 0: there the core's binary loss has a wrong JAX gradient (see
    # test_focal.py::test_jax_gradient_of_binary_logits_at_zero).
    x = jnp.asarray([[1.0, 2.0, 0.5], [0.3, -1.0, 3.0]])
    y = jnp.asarray([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]])
    labels = jnp.asarray([1, 2])
    for mine, theirs, target in [
        (compat.categorical_crossentropy, losses.categorical_crossentropy, y),
        (compat.sparse_categorical_crossentropy, losses.sparse_categorical_crossentropy, labels),
        (compat.binary_crossentropy, losses.binary_crossentropy, y),
        (compat.categorical_focal_crossentropy, losses.categorical_focal_crossentropy, y),
        (compat.binary_focal_crossentropy, losses.binary_focal_crossentropy, y),
    ]:

        def total(fn, logits, target=target):
            return jnp.sum(fn(target, logits, from_logits=True))

        jitted = jax.jit(lambda logits, fn=mine: total(fn, logits))
        np.testing.assert_allclose(jitted(x), total(theirs, x), rtol=1e-6)
        np.testing.assert_allclose(jax.grad(lambda lg, fn=mine: total(fn, lg))(x),
                                   jax.grad(lambda lg, fn=theirs: total(fn, lg))(x),
                                   rtol=1e-6, atol=1e-9)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Deliberate divergences
# ---------------------------------------------------------------------------------------------


def test_out_of_range_and_fractional_labels(env):
    p = env.array(np.array([[0.2, 0.8], [0.5, 0.5]]))
    for labels, kind in [(np.array([1, 2]), "int"), (np.array([1.0, 0.5]), "float")]:
        y = env.array(labels, kind)
        if env.checked:
            with pytest.raises(ValueError, match="y_true"):
                compat.sparse_categorical_crossentropy(y, p)
        else:  # Keras on JAX would silently give 0 (or truncate 0.5 to class 0)
            got = to_numpy(compat.sparse_categorical_crossentropy(y, p))
            assert np.isfinite(got[0]) and np.isnan(got[1])


def test_invalid_probabilities(env):
    y = env.array(np.array([[0.0, 1.0], [1.0, 0.0]]))
    negative = env.array(np.array([[-0.5, 1.5], [0.5, 0.5]]))
    zeros = env.array(np.array([[0.0, 0.0], [0.5, 0.5]]))
    if env.checked:
        with pytest.raises(ValueError, match="from_logits=True"):
            compat.categorical_crossentropy(y, negative)
        with pytest.raises(ValueError, match="zeros"):
            compat.categorical_crossentropy(y, zeros)
        with pytest.raises(ValueError, match="from_logits=True"):
            compat.binary_crossentropy(y, negative)
        with pytest.raises(ValueError, match="negative"):
            compat.poisson(y, negative)
    else:  # a row of zeros is NaN, as in Keras, never a made-up number
        got = to_numpy(compat.categorical_crossentropy(y, zeros))
        assert np.isnan(got[0]) and np.isfinite(got[1])
