"""The CTC twins against the real libraries, with every backend's arrays as input.

``xce.compat.torch.ctc_loss`` / ``CTCLoss`` against ``F.ctc_loss`` (2-D padded and 1-D
concatenated targets, unbatched input, reductions, ``zero_infinity``, the blank at 0 and at
C - 1, and PyTorch's backward, which is not ∂loss/∂log_probs); ``xce.compat.optax.ctc_loss``
against Optax (paddings anywhere in time, the finite ``log_epsilon`` loss of an impossible
alignment); ``xce.compat.tf.ctc_loss`` against ``tf.nn.ctc_loss`` (float32: TensorFlow's dense
CTC fails on float64); ``xce.compat.keras.ctc`` / ``CTC`` against Keras on JAX. Gradients:
the twin under torch autograd and ``jax.grad`` against the original's own autodiff. Tiny
fixed problems (every eager JAX op compiles per shape).
"""

from __future__ import annotations

import numpy as np
import pytest
from compat_helpers import jax_peer_array, make_env
from helpers import to_numpy

from xce.compat import keras as keras_twin
from xce.compat import optax as optax_twin
from xce.compat import tf as tf_twin
from xce.compat import torch as torch_twin

T, N, C = 5, 3, 4
LOGITS = np.random.default_rng(18).normal(size=(N, T, C))  # batch-major
# Row 0 repeats a label (it needs a blank between: 4 frames), row 2 is empty.
LABELS = np.array([[1, 1, 2], [3, 2, 0], [0, 0, 0]])
LABEL_LENGTHS = np.array([3, 2, 0])
INPUT_LENGTHS = np.array([5, 3, 2])
# Row 0 needs 4 frames but gets 3: no alignment.
SHORT_INPUT_LENGTHS = np.array([3, 3, 2])


_PEER: dict = {}


@pytest.fixture
def env(backend, xp, device, dtype):
    return make_env(backend, xp, device, dtype)


def once(key, compute):
    """The peer's result for ``key`` as NumPy, computed on first use: it does not depend on
    the backend under test, and every new eager call of a JAX or TF peer compiles again."""
    if key not in _PEER:
        _PEER[key] = tuple(np.asarray(to_numpy(r)) for r in compute())
    return _PEER[key]


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def remap(labels, blank):
    """The labels with the blank moved from 0 to ``blank`` (class ``blank`` becomes 0)."""
    return np.where(labels == blank, 0, labels) if blank else labels


def needs_autodiff(env):
    if env.backend not in ("torch", "jax"):
        pytest.skip(f"{env.backend}: no autodiff to compare gradients with")


def grad_of(env, fn, x):
    """d Σ fn(x) / dx by the backend's autodiff (torch autograd or ``jax.grad``)."""
    needs_autodiff(env)
    if env.backend == "torch":
        x = x.detach().clone().requires_grad_(True)
        env.xp.sum(fn(x)).backward()
        return x.grad
    import jax

    return jax.grad(lambda z: env.xp.sum(fn(z)))(x)


# ---------------------------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------------------------


def _torch_case(env, F, *, blank=0, concatenated=False, input_lengths=INPUT_LENGTHS):
    torch = F.torch
    lp = log_softmax(LOGITS).transpose(1, 0, 2)  # time-major, as PyTorch takes it
    labels = remap(LABELS, blank)
    if concatenated:
        labels = np.concatenate([row[:n] for row, n in zip(labels, LABEL_LENGTHS, strict=True)])
    mine = (env.array(lp), env.array(labels, "int"), env.array(input_lengths, "int"),
            env.array(LABEL_LENGTHS, "int"))  # fmt: skip
    theirs = (torch.as_tensor(env.rounded(lp)), torch.as_tensor(labels),
              torch.as_tensor(input_lengths), torch.as_tensor(LABEL_LENGTHS))  # fmt: skip
    return mine, theirs


def test_torch_ctc_loss(env, torch_peer):
    F = torch_peer
    mine, theirs = _torch_case(env, F)
    for reduction in ("none", "sum", "mean"):
        got = torch_twin.ctc_loss(*mine, reduction=reduction)
        env.check(got, F.ctc_loss(*theirs, reduction=reduction))
        # An array of the input's library, 0-d when reduced (on NumPy too, not a scalar)
        assert type(got) is type(mine[0])
        assert tuple(got.shape) == (() if reduction != "none" else (len(LABEL_LENGTHS),))
    # 1-D concatenated targets, the blank last, lengths as a tuple and a list.
    mine, theirs = _torch_case(env, F, blank=C - 1, concatenated=True)
    tuples = (tuple(INPUT_LENGTHS.tolist()), list(LABEL_LENGTHS.tolist()))
    got = torch_twin.ctc_loss(mine[0], mine[1], *tuples, blank=C - 1, reduction="none")
    env.check(got, F.ctc_loss(*theirs, blank=C - 1, reduction="none"))
    # No alignment for row 0: +inf, or 0 with zero_infinity; the class.
    mine, theirs = _torch_case(env, F, input_lengths=SHORT_INPUT_LENGTHS)
    for zero_infinity in (False, True):
        module = torch_twin.CTCLoss(reduction="none", zero_infinity=zero_infinity)
        got = module(*mine)
        assert (to_numpy(got)[0] == np.inf) is not zero_infinity
        env.check(got, F.ctc_loss(*theirs, reduction="none", zero_infinity=zero_infinity))
    got = torch_twin.ctc_loss(*mine, zero_infinity=True)
    env.check(got, F.ctc_loss(*theirs, zero_infinity=True))


def test_torch_ctc_loss_unbatched(env, torch_peer):
    F, torch = torch_peer, torch_peer.torch
    lp = log_softmax(LOGITS[1])
    got = torch_twin.ctc_loss(env.array(lp), env.array(LABELS[1, :2], "int"), (3,), (2,),
                              reduction="none")  # fmt: skip
    expected = F.ctc_loss(torch.as_tensor(env.rounded(lp)), torch.as_tensor(LABELS[1, :2]),
                          (3,), (2,), reduction="none")  # fmt: skip
    assert tuple(got.shape) == ()
    env.check(got, expected)


def test_torch_ctc_gradient(backend, xp, device, torch_peer):
    """PyTorch's backward: exp(log_probs) - γ (not ∂loss/∂log_probs), NaN over a sequence
    with no alignment, 0 there under zero_infinity. Unnormalised log-probabilities show the
    difference."""
    env = make_env(backend, xp, device, xp.float64)  # float32 values are tested above
    needs_autodiff(env)
    F, torch = torch_peer, torch_peer.torch
    lp = LOGITS.transpose(1, 0, 2) * 0.5  # not normalised
    labels, lengths = LABELS, (SHORT_INPUT_LENGTHS, LABEL_LENGTHS)
    for zero_infinity in (False, True):
        kw = {"reduction": "mean", "zero_infinity": zero_infinity}

        def loss(x, kw=kw):
            mine = (env.array(labels, "int"), *(env.array(v, "int") for v in lengths))
            return torch_twin.ctc_loss(x, *mine, **kw)

        got = grad_of(env, loss, env.array(lp))
        x = torch.as_tensor(env.rounded(lp)).requires_grad_(True)
        F.ctc_loss(x, torch.as_tensor(labels), *map(torch.as_tensor, lengths), **kw).backward()
        expected = to_numpy(x.grad)
        assert np.isnan(expected[:, 0]).all() is not zero_infinity
        np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Optax and Keras (Optax's recursion, with its finite log_epsilon)
# ---------------------------------------------------------------------------------------------


def _paddings():
    frames = (np.arange(T) >= INPUT_LENGTHS[:, None]).astype(float)
    frames[0, 1] = 1.0  # a padded frame inside a sequence: Optax skips it
    labels = (np.arange(3) >= LABEL_LENGTHS[:, None]).astype(float)
    return frames, labels


def test_optax_ctc_loss(env, optax_peer):
    frames, label_pad = _paddings()
    short = frames.copy()
    short[0, 2] = 1.0  # row 0: three frames for a label sequence that needs four
    for blank, log_epsilon, frame_pad in ((0, -1e5, frames), (C - 1, -50.0, short)):
        labels = remap(LABELS, blank)
        got = optax_twin.ctc_loss(
            env.array(LOGITS), env.array(frame_pad), env.array(labels, "int"),
            env.array(label_pad), blank_id=blank, log_epsilon=log_epsilon,
        )  # fmt: skip

        def peer(frame_pad=frame_pad, labels=labels, blank=blank, log_epsilon=log_epsilon):
            return [optax_peer.ctc_loss(
                jax_peer_array(env, LOGITS), jax_peer_array(env, frame_pad),
                jax_peer_array(env, labels, "int"), jax_peer_array(env, label_pad),
                blank_id=blank, log_epsilon=log_epsilon,
            )]  # fmt: skip

        (expected,) = once(("optax", env.name, blank), peer)
        env.check(got, expected, scale=10)
    assert to_numpy(got)[0] > 50  # impossible: large and finite, as in Optax


def test_optax_and_keras_gradients(backend, xp, device, optax_peer, keras_peer):
    import jax

    env = make_env(backend, xp, device, xp.float64)  # float32 values are tested above
    needs_autodiff(env)
    frames, label_pad = _paddings()
    frames[0, 2:] = 1.0  # row 0: two frames for three labels, Optax's finite loss
    y_true = np.where(np.arange(3) < LABEL_LENGTHS[:, None], LABELS, 0)

    def peer():
        args = (jax_peer_array(env, frames), jax_peer_array(env, LABELS, "int"),
                jax_peer_array(env, label_pad))  # fmt: skip
        x = jax_peer_array(env, LOGITS)
        return (jax.grad(lambda z: optax_peer.ctc_loss(z, *args).sum())(x),
                jax.grad(lambda z: keras_peer.losses.ctc(y_true, z).sum())(x))  # fmt: skip

    expected_optax, expected_keras = once(("gradients", env.name), peer)
    args = (env.array(frames), env.array(LABELS, "int"), env.array(label_pad))
    got = to_numpy(grad_of(env, lambda x: optax_twin.ctc_loss(x, *args), env.array(LOGITS)))
    np.testing.assert_allclose(got, expected_optax, rtol=1e-10, atol=1e-12)
    got = grad_of(env, lambda x: keras_twin.ctc(env.array(y_true, "int"), x), env.array(LOGITS))
    # Keras on JAX computes the loss of float64 logits in float32.
    np.testing.assert_allclose(to_numpy(got), expected_keras, rtol=1e-4, atol=1e-5)


def test_keras_ctc(env, keras_peer):
    y_true = np.where(np.arange(3) < LABEL_LENGTHS[:, None], LABELS, 0)
    y_short = np.array([[1, 1, 2], [3, 2, 0], [2, 1, 3]])  # row 0 needs 4 of 3 frames
    y_pred = LOGITS[:, :3]
    weights = np.array([0.5, 2.0, 1.0])
    reductions = ("sum_over_batch_size", "sum", "mean_with_sample_weight", None)

    def peer():
        x = jax_peer_array(env, y_pred)
        functions = [keras_peer.losses.ctc(labels, x) for labels in (y_true, y_short)]
        classes = [keras_peer.losses.CTC(reduction=r)(y_true, x, sample_weight=weights)
                   for r in reductions]  # fmt: skip
        return functions + classes

    expected = once(("keras", env.name), peer)
    for labels, value in zip((y_true, y_short), expected[:2], strict=True):
        got = keras_twin.ctc(env.array(labels, "int"), env.array(y_pred))
        env.check(got, value, rtol=1e-5, scale=10)  # Keras on JAX computes in float32
    assert 1e4 < to_numpy(got)[0] < np.inf  # impossible: large and finite, as on JAX
    for reduction, value in zip(reductions, expected[2:], strict=True):
        mine = keras_twin.CTC(reduction=reduction)
        assert mine.get_config() == keras_peer.losses.CTC(reduction=reduction).get_config()
        got = mine(env.array(y_true, "int"), env.array(y_pred), sample_weight=env.array(weights))
        env.check(got, value, rtol=1e-5, scale=10)


# ---------------------------------------------------------------------------------------------
# TensorFlow (float32 only in the peer: its dense CTC fails on float64 in its gradient mask)
# ---------------------------------------------------------------------------------------------


def _tf_call(tf, labels, logits, *, blank_index, time_major=True, lengths=INPUT_LENGTHS):
    x = tf.constant(logits.astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.nn.ctc_loss(labels, x, LABEL_LENGTHS, lengths,
                              logits_time_major=time_major, blank_index=blank_index)  # fmt: skip
    return loss.numpy(), tape.gradient(loss, x).numpy()


def test_tf_ctc_loss(env, tf_peer):
    time_major = LOGITS.transpose(1, 0, 2)
    for logits, major, blank_index in ((time_major, True, None), (LOGITS, False, -1)):
        labels = remap(LABELS, C - 1) if blank_index == -1 else LABELS
        expected, expected_grad = once(("tf", major), lambda lg=logits, y=labels, b=blank_index,
                                       m=major: _tf_call(tf_peer, y, lg, blank_index=b,
                                                         time_major=m))  # fmt: skip

        def loss(x, major=major, labels=labels, blank_index=blank_index):
            return tf_twin.ctc_loss(env.array(labels, "int"), x, env.array(LABEL_LENGTHS, "int"),
                                    env.array(INPUT_LENGTHS, "int"), logits_time_major=major,
                                    blank_index=blank_index)  # fmt: skip

        env.check(loss(env.array(logits)), expected, rtol=1e-5, scale=10)
        if env.backend in ("torch", "jax"):
            got = grad_of(env, loss, env.array(logits))
            np.testing.assert_allclose(to_numpy(got), expected_grad, rtol=1e-4, atol=1e-5)
    # No alignment: TensorFlow's stand-in for log 0 (log 1e-307) gives about 707 + more; the
    # twin gives +inf (a departure, listed in xce.compat.tf).
    short, _ = once(("tf-short",), lambda: _tf_call(
        tf_peer, LABELS, time_major, blank_index=None, lengths=SHORT_INPUT_LENGTHS
    ))  # fmt: skip
    got = tf_twin.ctc_loss(env.array(LABELS, "int"), env.array(time_major),
                           LABEL_LENGTHS.tolist(), SHORT_INPUT_LENGTHS.tolist())  # fmt: skip
    got = to_numpy(got)
    assert short[0] > 700 and got[0] == np.inf
    np.testing.assert_allclose(got[1:], short[1:], rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Bad input: errors on eager host data, NaN rows elsewhere
# ---------------------------------------------------------------------------------------------


def test_bad_labels_and_lengths(env, torch_peer):
    lp = env.array(log_softmax(LOGITS).transpose(1, 0, 2))
    in_len, lab_len = env.array(INPUT_LENGTHS, "int"), env.array(LABEL_LENGTHS, "int")
    frames, label_pad = (env.array(a) for a in _paddings())
    cases = {
        "blank inside": np.array([[1, 0, 2], [3, 2, 0], [0, 0, 0]]),
        "label >= C": np.array([[1, 4, 2], [3, 2, 0], [0, 0, 0]]),
    }
    for labels in cases.values():
        y, x = env.array(labels, "int"), env.array(LOGITS)
        calls = [
            (torch_twin.ctc_loss, (lp, y, in_len, lab_len), {"reduction": "none"}),
            (optax_twin.ctc_loss, (x, frames, y, label_pad), {}),
            (tf_twin.ctc_loss, (y, x, lab_len, in_len), {"logits_time_major": False}),
            (keras_twin.ctc, (y, x), {}),
        ]
        for fn, args, kw in calls:
            if env.checked:
                with pytest.raises(ValueError, match="label"):
                    fn(*args, **kw)
            else:
                got = to_numpy(fn(*args, **kw))
                assert np.isnan(got[0]) and not np.isnan(got[1])
    # Lengths out of range: PyTorch raises too.
    too_long = env.array(np.array([6, 3, 2]), "int")
    torch = torch_peer.torch
    with pytest.raises(RuntimeError, match="input_lengths"):
        torch_peer.ctc_loss(torch.zeros(T, N, C), torch.as_tensor(LABELS), (6, 3, 2), (3, 2, 0))
    if env.checked:
        with pytest.raises(ValueError, match="input_lengths"):
            torch_twin.ctc_loss(lp, env.array(LABELS, "int"), too_long, lab_len)
    else:
        got = to_numpy(torch_twin.ctc_loss(lp, env.array(LABELS, "int"), too_long, lab_len,
                                           reduction="none"))  # fmt: skip
        assert np.isnan(got[0]) and not np.isnan(got[1])
    with pytest.raises(ValueError, match="blank"):
        torch_twin.ctc_loss(lp, env.array(LABELS, "int"), in_len, lab_len, blank=C)


def test_structure_errors_as_the_originals(env, optax_peer, keras_peer, tf_peer):
    """Shapes the originals refuse are refused, with the originals' exception types."""
    x, y = env.array(LOGITS), env.array(LABELS, "int")
    frames, label_pad = _paddings()
    with pytest.raises((ValueError, AssertionError)):
        optax_peer.ctc_loss(LOGITS, frames[:, :2], LABELS, label_pad)
    with pytest.raises(ValueError, match="logit_paddings"):
        optax_twin.ctc_loss(x, env.array(frames[:, :2]), y, env.array(label_pad))
    with pytest.raises(ValueError, match="y_pred"):
        keras_peer.losses.ctc(LABELS, LOGITS[0])
    with pytest.raises(ValueError, match="y_pred"):
        keras_twin.ctc(y, env.array(LOGITS[0]))
    sparse = tf_peer.sparse.from_dense(LABELS)
    with pytest.raises(TypeError, match="dense"):
        tf_twin.ctc_loss(sparse, x, None, env.array(INPUT_LENGTHS, "int"))
