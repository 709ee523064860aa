"""``xce.compat.keras``'s loss classes against ``keras.losses``'s (Keras 3 on JAX), with every
backend's arrays.

Hypothesis draws the class, its constructor arguments, the reduction (Keras's
``sum_over_batch_size``, ``sum``, ``mean``, ``mean_with_sample_weight``, ``none``, ``None``)
and ``sample_weight`` (none, per sample, (N, 1), a number); Keras's class computes in the
dtype under test (``dtype=``), the twin in ``y_pred``'s. Then ``get_config`` / ``from_config``.
"""

from __future__ import annotations

import warnings

import compat_helpers as ch
import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from xce.compat import keras as compat

CLASSES = ["BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
           "BinaryFocalCrossentropy", "CategoricalFocalCrossentropy", "KLDivergence",
           "Poisson"]  # fmt: skip
REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None]
# Keras's ops.mean averages float64 losses in float32 (the per-sample mean of the binary
# losses and Poisson), so float64 matches to float32 precision there.
F64_MEAN = ("BinaryCrossentropy", "BinaryFocalCrossentropy", "Poisson")


@pytest.fixture
def env(backend, xp, device, dtype):
    return ch.make_env(backend, xp, device, dtype)


def _weights(shape):
    """Sample weights: 0, or at least 1e-3. A tinier weight times a loss is a float32
    subnormal, which XLA on CPU (Keras's JAX backend) flushes to 0 and the eager backends keep:
    "mean_with_sample_weight" then gives 0 against the loss (a rare draw: the flake seen)."""
    return hnp.arrays(np.float64, shape, elements=st.just(0.0) | st.floats(1e-3, 3.0))


@st.composite
def problems(draw, env):
    n, c = draw(ch.batch_sizes(env)), draw(ch.class_counts(env))
    name = draw(st.sampled_from(CLASSES))
    from_logits = draw(st.booleans()) and name not in ("KLDivergence", "Poisson")
    x = draw(ch.float_arrays((n, c), -5, 5))
    y_pred = x if from_logits else ch.softmax(x)
    options = {"from_logits": from_logits} if name not in ("KLDivergence", "Poisson") else {}
    labels = np.asarray(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    y_true, kind = np.eye(c)[labels], "float"
    if name == "SparseCategoricalCrossentropy":
        y_true, kind = labels, "int"
        if draw(st.booleans()):
            y_true[0] = -1
            options["ignore_class"] = -1
    elif name in ("BinaryCrossentropy", "CategoricalCrossentropy", "BinaryFocalCrossentropy",
                  "CategoricalFocalCrossentropy"):  # fmt: skip
        options["label_smoothing"] = draw(st.sampled_from([0.0, 0.1]))
    if name.endswith("FocalCrossentropy"):
        options["gamma"] = draw(st.sampled_from([0.0, 2.0]))
        options["alpha"] = draw(st.sampled_from([0.25, 0.6]))
    if name == "BinaryFocalCrossentropy":
        options["apply_class_balancing"] = draw(st.booleans())
    if name == "KLDivergence":
        y_true = ch.softmax(draw(ch.float_arrays((n, c))))
    if name == "Poisson":
        y_true = np.round(np.abs(draw(ch.float_arrays((n, c)))))
    weight = draw(st.sampled_from([None, "per sample", "column", "number"]))
    sample_weight = {None: None, "number": 2.5, "per sample": draw(_weights((n,))),
                     "column": draw(_weights((n, 1)))}[weight]  # fmt: skip
    return name, y_true, kind, y_pred, options, draw(st.sampled_from(REDUCTIONS)), sample_weight


def test_loss_classes(env, keras_peer):
    def case(problem):
        name, y_true, kind, y_pred, options, reduction, sample_weight = problem
        ours = getattr(compat, name)(reduction=reduction, **options)
        real = getattr(keras_peer.losses, name)(reduction=reduction, dtype=env.name, **options)
        assert ours.get_config() == real.get_config()
        again = type(ours).from_config(ours.get_config())
        assert again.get_config() == ours.get_config()
        mine_weight = theirs_weight = sample_weight
        if isinstance(sample_weight, np.ndarray):
            mine_weight = env.array(sample_weight)
            theirs_weight = ch.jax_peer_array(env, sample_weight)
        got = ours(env.array(y_true, kind), env.array(y_pred), sample_weight=mine_weight)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras's dtype chatter on int labels
            expected = real(ch.jax_peer_array(env, y_true, kind), ch.jax_peer_array(env, y_pred),
                            sample_weight=theirs_weight)  # fmt: skip
        loose = env.name == "float64" and name in F64_MEAN
        env.check(got, expected, scale=10, **({"rtol": 1e-6, "atol": 1e-6} if loose else {}))

    ch.explore(env, problems(env), case, examples=30)


def test_bad_reduction_and_host_data(env, keras_peer):
    for cls in (compat.Poisson, keras_peer.losses.Poisson):
        with pytest.raises(ValueError, match="reduction"):
            cls(reduction="batchmean")
    # Host targets and weights beside the backend's predictions, as Keras takes them.
    p = np.array([[0.2, 0.8], [0.6, 0.4]])
    got = compat.CategoricalCrossentropy()(
        [[0.0, 1.0], [1.0, 0.0]], env.array(p), sample_weight=[1.0, 3.0]
    )
    expected = keras_peer.losses.CategoricalCrossentropy(dtype=env.name)(
        np.array([[0.0, 1.0], [1.0, 0.0]]), ch.jax_peer_array(env, p), sample_weight=[1.0, 3.0]
    )
    env.check(got, expected)
