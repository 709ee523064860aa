"""Where the twins follow their originals' rules, not the core's (issue 16's failure classes).

Each test runs on every backend and compares with the real framework: soft labels of any
value and sum, one class, TF's broadcasting of labels, torch's refusal of ``ignore_index``
with probability targets, TF's softmax gradient for rows that do not sum to 1, host data
(NumPy arrays, lists) beside another library's arrays, scikit-learn's ``y_proba`` rename and
Keras's shape message. Inputs are small and fixed: each rule is one case, not a search.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from compat_helpers import jax_peer_array, make_env

from xce.compat import keras as ckeras
from xce.compat import optax as coptax
from xce.compat import sklearn as csklearn
from xce.compat import tf as ctf
from xce.compat import torch as ctorch

LOGITS = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 3.0]])
# Soft labels outside [0, 1] and rows that do not sum to 1: the originals compute the linear
# function -Σ q·log_softmax(x); the core would refuse them.
ODD_LABELS = np.array([[-0.5, 1.8, 0.2], [0.2, 0.3, 0.1]])


@pytest.fixture
def env(backend, xp, device, dtype):
    return make_env(backend, xp, device, dtype)


_jnp = jax_peer_array


def _tf(tf, env, data, kind="float"):
    if kind == "int":
        return tf.constant(np.asarray(data, dtype=np.int64))
    return tf.constant(env.rounded(data))


def _torch(torch, env, data, kind="float"):
    if kind == "int":
        return torch.as_tensor(np.asarray(data, dtype=np.int64))
    return torch.as_tensor(env.rounded(data).copy())


def test_soft_labels_of_any_value(env, optax_peer, tf_peer, torch_peer):
    x, q = LOGITS, ODD_LABELS
    env.check(coptax.softmax_cross_entropy(env.array(x), env.array(q)),
              optax_peer.softmax_cross_entropy(_jnp(env, x), _jnp(env, q)))  # fmt: skip
    env.check(coptax.poly_loss_cross_entropy(env.array(x), env.array(q)),
              optax_peer.losses.poly_loss_cross_entropy(_jnp(env, x), _jnp(env, q)))  # fmt: skip
    tf = tf_peer
    env.check(ctf.softmax_cross_entropy_with_logits(env.array(q), env.array(x)),
              tf.nn.softmax_cross_entropy_with_logits(labels=_tf(tf, env, q),
                                                      logits=_tf(tf, env, x)))  # fmt: skip
    torch = torch_peer.torch
    env.check(ctorch.cross_entropy(env.array(x), env.array(q), reduction="none"),
              torch_peer.cross_entropy(_torch(torch, env, x), _torch(torch, env, q),
                                       reduction="none"))  # fmt: skip


@pytest.mark.filterwarnings("ignore:In loss categorical:SyntaxWarning")
@pytest.mark.filterwarnings("ignore:You are using a softmax over axis:UserWarning")  # Keras
def test_one_class_gives_what_the_original_gives(env, optax_peer, tf_peer, torch_peer,
                                                 keras_peer):  # fmt: skip
    x = np.array([[3.0], [-1.0]])
    q = np.array([[0.5], [2.0]])
    p = np.array([[0.3], [0.9]])
    labels = np.array([0, 0])
    tf, torch, losses = tf_peer, torch_peer.torch, keras_peer.losses
    env.check(ctf.softmax_cross_entropy_with_logits(env.array(q), env.array(x)),
              tf.nn.softmax_cross_entropy_with_logits(labels=_tf(tf, env, q),
                                                      logits=_tf(tf, env, x)))  # fmt: skip
    env.check(ctf.sparse_softmax_cross_entropy_with_logits(env.array(labels, "int"),
                                                           env.array(x)),
              tf.nn.sparse_softmax_cross_entropy_with_logits(
                  labels=_tf(tf, env, labels, "int"), logits=_tf(tf, env, x)))  # fmt: skip
    tx, tq, tl = _torch(torch, env, x), _torch(torch, env, q), _torch(torch, env, labels, "int")
    w = np.array([2.0])
    for kw, tkw in [({}, {}), ({"label_smoothing": 0.2}, {"label_smoothing": 0.2}),
                    ({"weight": env.array(w)}, {"weight": _torch(torch, env, w)})]:  # fmt: skip
        for target, ttarget in [(env.array(labels, "int"), tl), (env.array(q), tq)]:
            env.check(ctorch.cross_entropy(env.array(x), target, reduction="none", **kw),
                      torch_peer.cross_entropy(tx, ttarget, reduction="none", **tkw))  # fmt: skip
    env.check(ctorch.nll_loss(env.array(x), env.array(labels, "int"), reduction="sum"),
              torch_peer.nll_loss(tx, tl, reduction="sum"))  # fmt: skip
    jx, jq, jl = _jnp(env, x), _jnp(env, q), _jnp(env, labels, "int")
    for mine, theirs, target, jtarget in [
        (coptax.softmax_cross_entropy, optax_peer.softmax_cross_entropy, env.array(q), jq),
        (coptax.safe_softmax_cross_entropy, optax_peer.safe_softmax_cross_entropy,
         env.array(q), jq),
        (coptax.poly_loss_cross_entropy, optax_peer.losses.poly_loss_cross_entropy,
         env.array(q), jq),
        (coptax.softmax_cross_entropy_with_integer_labels,
         optax_peer.softmax_cross_entropy_with_integer_labels, env.array(labels, "int"), jl),
    ]:  # fmt: skip
        env.check(mine(env.array(x), target), theirs(jx, jtarget))
    jp = _jnp(env, p)
    for from_logits, pred, jpred in [(False, p, jp), (True, x, jx)]:
        for ls in (0.0, 0.2):
            env.check(ckeras.categorical_crossentropy(env.array(q), env.array(pred),
                                                      from_logits=from_logits,
                                                      label_smoothing=ls),
                      losses.categorical_crossentropy(jq, jpred, from_logits=from_logits,
                                                      label_smoothing=ls))  # fmt: skip
            env.check(ckeras.categorical_focal_crossentropy(env.array(q), env.array(pred),
                                                            from_logits=from_logits,
                                                            label_smoothing=ls),
                      losses.categorical_focal_crossentropy(jq, jpred, from_logits=from_logits,
                                                            label_smoothing=ls))  # fmt: skip
        env.check(ckeras.sparse_categorical_crossentropy(env.array(labels, "int"),
                                                         env.array(pred),
                                                         from_logits=from_logits),
                  losses.sparse_categorical_crossentropy(jl, jpred,
                                                         from_logits=from_logits))  # fmt: skip
    with pytest.warns(SyntaxWarning, match="num_classes > 1"):  # as Keras warns
        ckeras.categorical_crossentropy(env.array(q), env.array(p))
    if env.checked:  # label 1 is out of range for one class, padded or not
        with pytest.raises(ValueError, match="labels outside"):
            ctorch.cross_entropy(env.array(x), env.array([0, 1], "int"))


def test_tf_broadcasts_labels_to_logits(env, tf_peer):
    tf = tf_peer
    for q in (np.array([[0.2, 0.5, 0.3]]), np.array([0.2, 0.5, 0.3])):
        env.check(ctf.softmax_cross_entropy_with_logits(env.array(q), env.array(LOGITS)),
                  tf.nn.softmax_cross_entropy_with_logits(labels=_tf(tf, env, q),
                                                          logits=_tf(tf, env, LOGITS)))  # fmt: skip
    with pytest.raises(ValueError, match="broadcast"):  # never logits up to the labels
        ctf.softmax_cross_entropy_with_logits(env.array(LOGITS), env.array(LOGITS[:1]))
    with pytest.raises(ValueError, match="shape"):  # the sigmoid losses do not broadcast
        ctf.sigmoid_cross_entropy_with_logits(env.array(LOGITS[:1]), env.array(LOGITS))


def test_torch_refuses_ignore_index_with_probability_targets(env, torch_peer):
    torch = torch_peer.torch
    with pytest.raises(RuntimeError, match="ignore_index"):
        torch_peer.cross_entropy(_torch(torch, env, LOGITS), _torch(torch, env, ODD_LABELS),
                                 ignore_index=0)  # fmt: skip
    with pytest.raises(ValueError, match="ignore_index"):
        ctorch.cross_entropy(env.array(LOGITS), env.array(ODD_LABELS), ignore_index=0)
    # A negative ignore_index (the default -100 too) is accepted, as in PyTorch.
    x, q = LOGITS, ODD_LABELS
    env.check(ctorch.cross_entropy(env.array(x), env.array(q), ignore_index=-1),
              torch_peer.cross_entropy(_torch(torch, env, x), _torch(torch, env, q),
                                       ignore_index=-1))  # fmt: skip


def test_tf_softmax_gradient_is_p_minus_q(backend, tf_peer):
    """TF's gradient with respect to the logits is softmax - labels, also for label rows that
    do not sum to 1 (autodiff of the formula would give softmax·Σ labels - labels); with
    respect to the labels it is -log_softmax."""
    tf = tf_peer
    x, q = tf.constant(LOGITS), tf.constant(ODD_LABELS)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, q])
        total = tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(labels=q, logits=x))
    expected = tape.gradient(total, x).numpy(), tape.gradient(total, q).numpy()
    if backend == "torch":
        import torch

        tx = torch.tensor(LOGITS, requires_grad=True)
        tq = torch.tensor(ODD_LABELS, requires_grad=True)
        ctf.softmax_cross_entropy_with_logits(tq, tx).sum().backward()
        got = tx.grad.numpy(), tq.grad.numpy()
    elif backend == "jax":
        import jax
        import jax.numpy as jnp

        def loss(lg, lb):
            return jnp.sum(ctf.softmax_cross_entropy_with_logits(lb, lg))

        got = jax.grad(loss, argnums=(0, 1))(jnp.asarray(LOGITS), jnp.asarray(ODD_LABELS))
        got = tuple(np.asarray(g) for g in got)
    else:
        pytest.skip("gradients by autodiff: torch and JAX arrays")
    for mine, theirs in zip(got, expected, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)


def test_host_data_beside_other_arrays(env, optax_peer, keras_peer, tf_peer):
    """Optax, Keras and TF take NumPy arrays and lists beside their own arrays (and convert
    them); so do their twins, beside any library's arrays."""
    x, q, labels = LOGITS, np.array([[0.2, 0.5, 0.3], [0.0, 1.0, 0.0]]), np.array([1, 2])
    jx = _jnp(env, x)
    nq = env.rounded(q)
    got = coptax.softmax_cross_entropy(env.array(x), nq)
    env.check(got, optax_peer.softmax_cross_entropy(jx, nq))
    got = coptax.softmax_cross_entropy_with_integer_labels(env.array(x), labels.tolist())
    env.check(got, optax_peer.softmax_cross_entropy_with_integer_labels(jx, labels))
    p = np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    jp = _jnp(env, p)
    env.check(ckeras.categorical_crossentropy(nq, env.array(p)),
              keras_peer.losses.categorical_crossentropy(nq, jp))  # fmt: skip
    env.check(ckeras.sparse_categorical_crossentropy(labels, env.array(p)),
              keras_peer.losses.sparse_categorical_crossentropy(labels, jp))  # fmt: skip
    tf = tf_peer
    env.check(ctf.softmax_cross_entropy_with_logits(nq, env.array(x)),
              tf.nn.softmax_cross_entropy_with_logits(labels=nq,
                                                      logits=_tf(tf, env, x)))  # fmt: skip
    # The result is in the non-host argument's library, whichever argument that is.
    got = coptax.softmax_cross_entropy(env.rounded(x), env.array(q))
    assert type(got) is type(env.array(q))


def test_sklearn_y_proba_and_the_deprecated_y_pred(env, sklearn_peer):
    y, p = [0, 1], np.array([[0.9, 0.1], [0.2, 0.8]])
    expected = sklearn_peer.log_loss(y, y_proba=env.rounded(p))
    got = csklearn.log_loss(env.array(y, "int"), y_proba=env.array(p))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    with pytest.warns(FutureWarning, match="y_proba"):
        got = csklearn.log_loss(env.array(y, "int"), y_pred=env.array(p))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    for log_loss in (sklearn_peer.log_loss, csklearn.log_loss):
        with pytest.raises(ValueError, match="both"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            log_loss(y, y_proba=env.rounded(p), y_pred=env.rounded(p))
        with pytest.raises(ValueError, match="y_prob contains values greater than 1"):
            log_loss(y, np.array([[0.5, 1.5], [0.2, 0.8]]))


def test_keras_shape_message(env, keras_peer):
    a, b = np.ones((2, 3)) / 3, np.ones((2, 4)) / 4
    for name in ("binary_crossentropy", "categorical_crossentropy"):
        with pytest.raises(ValueError, match="must have the same shape"):
            getattr(keras_peer.losses, name)(a, b)
        with pytest.raises(ValueError, match="must have the same shape"):
            getattr(ckeras, name)(env.array(a), env.array(b))
    for name in ("kl_divergence", "poisson", "categorical_focal_crossentropy"):
        with pytest.raises(ValueError, match="must have the same shape"):
            getattr(ckeras, name)(env.array(a), env.array(b))


def _torch_error(call):
    """The message a twin raises, checked to use torch's argument names only."""
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    message = str(info.value)
    for core_name in ("y_true", "y_pred", "class_weight", "sample_weight", "from_logits",
                      "where=", "axis="):  # fmt: skip
        assert core_name not in message, message
    return message


def test_torch_twins_name_input_and_target(env):
    x, labels = env.array(LOGITS), env.array([1, 2], "int")
    both = lambda message: "input" in message and "target" in message  # noqa: E731
    assert both(_torch_error(lambda: ctorch.cross_entropy(x, env.array([0, 1, 2, 1], "int"))))
    message = _torch_error(lambda: ctorch.CrossEntropyLoss(weight=env.array([1.0, 2.0]))(x, labels))
    assert message.startswith("weight has shape (2,)")
    message = _torch_error(lambda: ctorch.cross_entropy(labels, x))  # torch's order swapped
    assert message.startswith("input must have a real floating dtype")
    assert "take (input, target)" in message
    assert both(_torch_error(lambda: ctorch.NLLLoss()(x, env.array(LOGITS[:, :1], "int"))))
    if env.checked:  # values are read: out-of-range labels and probabilities are errors
        message = _torch_error(lambda: ctorch.nll_loss(x, env.array([0, 9], "int")))
        assert (
            message.startswith("target holds labels outside") and "class axis of input" in message
        )
        message = _torch_error(lambda: ctorch.BCELoss()(x, env.array(np.ones_like(LOGITS))))
        assert message.startswith("input holds values outside [0, 1]")
        assert "binary_cross_entropy_with_logits" in message
        message = _torch_error(lambda: ctorch.binary_cross_entropy_with_logits(x, x))
        assert message.startswith("target holds values outside [0, 1]")
