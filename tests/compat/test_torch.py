"""``xce.compat.torch`` against ``torch.nn.functional``, with every backend's arrays as input.

Hypothesis draws logits, targets and options; the real PyTorch function gets the same
(dtype-rounded) numbers as torch tensors. PyTorch's edge rules (as the project's shared
semantics notes record them) are pinned by hand:
all-ignored and empty means (NaN), weights with label smoothing, probability targets with
weights (mean over N), the -100 log clamp, ``batchmean``, broadcast weights; then autograd
through the compat call, and the deliberate divergences (clear errors, NaN rows).
"""

from __future__ import annotations

import warnings

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

from xce.compat import torch as compat


@pytest.fixture
def env(backend, xp, device, dtype):
    return make_env(backend, xp, device, dtype)


def _t(F, env, data, kind="float"):
    """The same numbers as a torch tensor (the peer's input)."""
    torch = F.torch
    if kind == "int":
        return torch.as_tensor(np.asarray(data, dtype=np.int64))
    return torch.as_tensor(env.rounded(data))


def _opt(F, env, data):
    return None if data is None else _t(F, env, data)


# ---------------------------------------------------------------------------------------------
# cross_entropy and nll_loss
# ---------------------------------------------------------------------------------------------


@st.composite
def index_problems(draw, env):
    n, c = draw(batch_sizes(env)), draw(class_counts(env))
    extra = draw(shapes(env, [(), (2,)]))
    shape = (n, c, *extra)
    logits = draw(float_arrays(shape))
    labels = draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n))
    labels = np.broadcast_to(np.asarray(labels).reshape((n,) + (1,) * len(extra)), (n, *extra))
    labels = labels.copy()
    if draw(st.booleans()):  # some ignored targets
        labels.flat[0] = -100
    weight = draw(st.none() | float_arrays((c,), 0.1, 3.0))
    smoothing = draw(st.sampled_from([0.0, 0.1, 0.5]))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    return logits, labels, weight, smoothing, reduction


def test_cross_entropy_index_targets(env, torch_peer):
    explore(env, index_problems(env), lambda problem: _index_case(env, torch_peer, problem))


def _index_case(env, F, problem):
    logits, labels, weight, smoothing, reduction = problem
    got = compat.cross_entropy(
        env.array(logits), env.array(labels, "int"),
        weight=None if weight is None else env.array(weight), reduction=reduction,
        label_smoothing=smoothing,
    )  # fmt: skip
    expected = F.cross_entropy(
        _t(F, env, logits), _t(F, env, labels, "int"), weight=_opt(F, env, weight),
        reduction=reduction, label_smoothing=smoothing,
    )  # fmt: skip
    env.check(got, expected, scale=10)


@st.composite
def probability_problems(draw, env):
    n, c = draw(batch_sizes(env)), draw(class_counts(env))
    shape = (n, c, *draw(shapes(env, [(), (2,)])))
    logits = draw(float_arrays(shape))
    targets = softmax(draw(float_arrays(shape)), axis=1)
    weight = draw(st.none() | float_arrays((c,), 0.1, 3.0))
    smoothing = draw(st.sampled_from([0.0, 0.2]))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    return logits, targets, weight, smoothing, reduction


def test_cross_entropy_probability_targets(env, torch_peer):
    explore(env, probability_problems(env), lambda pr: _probability_case(env, torch_peer, pr))


def _probability_case(env, F, problem):
    logits, targets, weight, smoothing, reduction = problem
    got = compat.cross_entropy(
        env.array(logits), env.array(targets),
        weight=None if weight is None else env.array(weight), reduction=reduction,
        label_smoothing=smoothing,
    )  # fmt: skip
    expected = F.cross_entropy(
        _t(F, env, logits), _t(F, env, targets), weight=_opt(F, env, weight),
        reduction=reduction, label_smoothing=smoothing,
    )  # fmt: skip
    env.check(got, expected, scale=10)


def test_nll_loss(env, torch_peer):
    explore(env, index_problems(env), lambda problem: _nll_case(env, torch_peer, problem))


def _nll_case(env, F, problem):
    logits, labels, weight, _, reduction = problem
    log_p = np.log(softmax(logits, axis=1)) if logits.size else logits
    got = compat.nll_loss(
        env.array(log_p), env.array(labels, "int"),
        weight=None if weight is None else env.array(weight), reduction=reduction,
    )  # fmt: skip
    expected = F.nll_loss(_t(F, env, log_p), _t(F, env, labels, "int"),
                          weight=_opt(F, env, weight), reduction=reduction)  # fmt: skip
    env.check(got, expected, scale=10)


def test_cross_entropy_edge_rules(env, torch_peer):
    """All ignored / empty → NaN mean and 0 sum; unbatched (C,); weights with smoothing."""
    F = torch_peer
    logits = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    cases = [
        (logits, np.array([-100, -100]), {}),  # everything ignored
        (logits, np.array([1, 2]), {"ignore_index": 2, "label_smoothing": 0.3}),
        (logits, np.array([7, 2]), {"ignore_index": 7}),  # any ignore_index, out of range
        (np.zeros((0, 3)), np.zeros((0,), dtype=np.int64), {}),  # empty batch
        (logits[0], np.array(1), {}),  # unbatched (C,) with a 0-d target
    ]
    weight = np.array([0.5, 2.0, 1.5])
    reductions = ("mean", "sum", "none") if env.checked else ("mean", "none")
    for x, y, kw in cases:
        for w in (None, weight):
            for reduction in reductions:
                got = compat.cross_entropy(
                    env.array(x), env.array(y, "int"), reduction=reduction,
                    weight=None if w is None else env.array(w), **kw,
                )  # fmt: skip
                expected = F.cross_entropy(
                    _t(F, env, x), _t(F, env, y, "int"), reduction=reduction,
                    weight=_opt(F, env, w), **kw,
                )  # fmt: skip
                env.check(got, expected, scale=10)
    # The all-ignored mean is NaN, as in PyTorch (native xce gives 0).
    assert np.isnan(
        to_numpy(compat.cross_entropy(env.array(logits), env.array([-100, -100], "int")))
    )


def test_cross_entropy_probability_targets_with_weights_divide_by_n(env, torch_peer):
    F = torch_peer
    x = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    q = np.array([[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]])
    w = np.array([0.5, 2.0, 4.0])
    got = compat.cross_entropy(env.array(x), env.array(q), weight=env.array(w),
                               label_smoothing=0.1)  # fmt: skip
    expected = F.cross_entropy(_t(F, env, x), _t(F, env, q), weight=_t(F, env, w),
                               label_smoothing=0.1)  # fmt: skip
    env.check(got, expected)
    # By hand: the per-sample losses summed and divided by N = 2, not by Σ w·q.
    qs = 0.9 * q + 0.1 / 3
    log_p = np.log(softmax(env.rounded(x).astype(np.float64)))
    env.check(got, -(w * qs * log_p).sum() / 2, rtol=1e-5 if env.name == "float32" else 1e-12)


# ---------------------------------------------------------------------------------------------
# Binary
# ---------------------------------------------------------------------------------------------


@st.composite
def binary_problems(draw, env, probabilities):
    shape = draw(shapes(env, [(2, 3), (3,), (2, 3, 2)]))
    x = draw(unit_arrays(shape) if probabilities else float_arrays(shape, -20, 20))
    t = draw(unit_arrays(shape))
    weight_shape = draw(st.sampled_from([None, (), shape[-1:], shape]))
    w = None if weight_shape is None else draw(float_arrays(weight_shape, 0.0, 3.0))
    pw_shape = draw(st.sampled_from([None, (), shape[-1:], shape]))
    pw = None if pw_shape is None else draw(float_arrays(pw_shape, 0.1, 4.0))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    return x, t, w, pw, reduction


def test_binary_cross_entropy(env, torch_peer):
    """Probabilities include exact 0 and 1: PyTorch's -100 clamp of the log."""
    explore(env, binary_problems(env, probabilities=True),
            lambda problem: _bce_case(env, torch_peer, problem))  # fmt: skip


def _bce_case(env, F, problem):
    p, t, w, _, reduction = problem
    got = compat.binary_cross_entropy(env.array(p), env.array(t),
                                      weight=None if w is None else env.array(w),
                                      reduction=reduction)  # fmt: skip
    expected = F.binary_cross_entropy(_t(F, env, p), _t(F, env, t), weight=_opt(F, env, w),
                                      reduction=reduction)  # fmt: skip
    env.check(got, expected, scale=100)


def test_binary_cross_entropy_with_logits(env, torch_peer):
    explore(env, binary_problems(env, probabilities=False),
            lambda problem: _bce_logits_case(env, torch_peer, problem))  # fmt: skip


def _bce_logits_case(env, F, problem):
    x, t, w, pw, reduction = problem
    got = compat.binary_cross_entropy_with_logits(
        env.array(x), env.array(t), weight=None if w is None else env.array(w),
        reduction=reduction, pos_weight=None if pw is None else env.array(pw),
    )  # fmt: skip
    expected = F.binary_cross_entropy_with_logits(
        _t(F, env, x), _t(F, env, t), weight=_opt(F, env, w), reduction=reduction,
        pos_weight=_opt(F, env, pw),
    )  # fmt: skip
    # PyTorch evaluates (1-t)·x + ... with a cancellation for negative x: an absolute
    # difference of a few ulps of |x| is PyTorch's rounding, not a different loss.
    env.check(got, expected, scale=100)


def test_binary_edge_rules(env, torch_peer):
    """The -100 clamp at p = 0 and 1, and a spatial pos_weight of shape (C, 1, 1)."""
    F = torch_peer
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.5])
    got = compat.binary_cross_entropy(env.array(p), env.array(t), reduction="none")
    env.check(got, [100.0, 100.0, 0.0, 0.0, np.log(2.0)], atol=1e-6)
    env.check(got, F.binary_cross_entropy(_t(F, env, p), _t(F, env, t), reduction="none"))
    rng = np.random.default_rng(0)
    x, z = rng.normal(size=(2, 3, 2, 2)), rng.uniform(size=(2, 3, 2, 2))
    pw = np.array([1.0, 2.0, 0.5]).reshape(3, 1, 1)
    got = compat.binary_cross_entropy_with_logits(
        env.array(x), env.array(z), pos_weight=env.array(pw), reduction="none"
    )
    expected = F.binary_cross_entropy_with_logits(
        _t(F, env, x), _t(F, env, z), pos_weight=_t(F, env, pw), reduction="none"
    )
    env.check(got, expected)


# ---------------------------------------------------------------------------------------------
# kl_div and poisson_nll_loss
# ---------------------------------------------------------------------------------------------


@st.composite
def kl_problems(draw, env):
    shape = draw(shapes(env, [(2, 3), (3, 2, 2), (4,)]))
    reduction = draw(st.sampled_from(["batchmean", "sum", "none"]))
    return shape, reduction, draw(st.booleans()), draw(st.data())


def test_kl_div(env, torch_peer):
    explore(env, kl_problems(env), lambda problem: _kl_case(env, torch_peer, *problem))


def _kl_case(env, F, shape, reduction, log_target, data):
    log_q = np.log(softmax(data.draw(float_arrays(shape)), axis=-1))
    p = softmax(data.draw(float_arrays(shape)), axis=-1)
    p[..., 0] = 0.0  # a zero target contributes 0
    target = np.log(np.maximum(p, 1e-300)) if log_target else p
    got = compat.kl_div(env.array(log_q), env.array(target), reduction=reduction,
                        log_target=log_target)  # fmt: skip
    expected = F.kl_div(_t(F, env, log_q), _t(F, env, target), reduction=reduction,
                        log_target=log_target)  # fmt: skip
    env.check(got, expected, scale=10)


def test_kl_div_mean_warns_like_torch(env, torch_peer):
    F = torch_peer
    log_q = np.log(np.array([[0.9, 0.1], [0.3, 0.7]]))
    p = np.array([[0.5, 0.5], [0.0, 1.0]])
    with pytest.warns(UserWarning, match="batchmean"):
        got = compat.kl_div(env.array(log_q), env.array(p))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = F.kl_div(_t(F, env, log_q), _t(F, env, p))
    env.check(got, expected)


@st.composite
def poisson_problems(draw, env):
    shape = draw(shapes(env, [(2, 3), (3,)]))
    log_input, full = draw(st.booleans()), draw(st.booleans())
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    return shape, log_input, full, reduction, draw(st.data())


def test_poisson_nll_loss(env, torch_peer):
    explore(env, poisson_problems(env), lambda problem: _poisson_case(env, torch_peer, *problem))


def _poisson_case(env, F, shape, log_input, full, reduction, data):
    x = data.draw(float_arrays(shape, -3, 3) if log_input else float_arrays(shape, 0, 5))
    t = data.draw(float_arrays(shape, 0, 6))
    got = compat.poisson_nll_loss(env.array(x), env.array(t), log_input=log_input, full=full,
                                  reduction=reduction)  # fmt: skip
    expected = F.poisson_nll_loss(_t(F, env, x), _t(F, env, t), log_input=log_input, full=full,
                                  reduction=reduction)  # fmt: skip
    env.check(got, expected, scale=10)


# ---------------------------------------------------------------------------------------------
# Composition with autograd, and the deliberate divergences
# ---------------------------------------------------------------------------------------------


def test_torch_autograd_through_compat(backend, torch_peer):
    if backend not in ("torch", "torch_cuda"):
        pytest.skip("autograd is a property of torch tensors")
    torch, F = torch_peer.torch, torch_peer
    x = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], dtype=torch.float64)
    y = torch.tensor([1, -100])
    w = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    for fn, peer, target, kw in [
        (compat.cross_entropy, F.cross_entropy, y, {"weight": w, "label_smoothing": 0.2}),
        (compat.nll_loss, F.nll_loss, y, {"weight": w}),
        (compat.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits,
         torch.rand(2, 3, dtype=torch.float64), {"pos_weight": w}),
    ]:  # fmt: skip
        mine = x.clone().requires_grad_(True)
        theirs = x.clone().requires_grad_(True)
        fn(mine, target, **kw).backward()
        peer(theirs, target, **kw).backward()
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-12, atol=1e-14)


def test_out_of_range_index_is_an_error_or_nan(env):
    x = env.array(np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]))
    y = env.array(np.array([1, 3]), "int")
    for fn in (compat.cross_entropy, compat.nll_loss):
        if env.checked:
            with pytest.raises(ValueError, match=r"target|y_true"):
                fn(x, y)
        else:
            got = to_numpy(fn(x, y, reduction="none"))
            assert np.isnan(got[1]) and np.isfinite(got[0])


def test_invalid_values_are_errors_on_checked_data(env):
    if not env.checked:
        pytest.skip("values are not read on lazy backends")
    p = env.array(np.array([0.2, 1.5]))
    t = env.array(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        compat.binary_cross_entropy(p, t)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        compat.binary_cross_entropy(t, p)
    with pytest.raises(ValueError, match="negative"):
        compat.kl_div(t, env.array(np.array([-0.5, 1.5])))
    with pytest.raises(ValueError, match="negative"):
        compat.poisson_nll_loss(env.array(np.array([-1.0, 1.0])), t, log_input=False)


def test_argument_errors(env):
    x = env.array(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="reduction"):
        compat.cross_entropy(x, env.array(np.array([0, 1]), "int"), reduction="batchmean")
    with pytest.raises(ValueError, match="shape"):
        compat.binary_cross_entropy_with_logits(x, env.array(np.zeros((2, 1))))
    with pytest.raises(ValueError, match="shape"):
        compat.nll_loss(x, env.array(np.array([0, 1, 2]), "int"))
