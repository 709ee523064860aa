"""Small option-free calls on logits: a classifier's batch, a few KiB.

On NumPy and CPU torch these take short paths (``xce._fast._numpy._small``, on NumPy views of
small tensors) instead of the blocked kernels: every reduction, the gradient, n-d inputs and
one sample, against the float64 oracle in ``tests/reference.py``; the inputs those paths
decline (infinite or NaN logits, bad targets, probabilities given as logits) must end as the
full path ends them. On the other backends the same calls run the generic path and must give
the same numbers. Run with ``XCE_DISABLE_FAST_PATHS=1`` too (nox does).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xce
from tests import reference
from tests.helpers import assert_close, forbid_the_full_path, to_numpy
from xce._fast import _config
from xce._fast._numpy import _lanes as numpy_lanes
from xce._fast._numpy import _small

SHAPES = [(64, 10), (5, 3), (2, 4, 7), (9,)]
SHAPE_IDS = ["64x10", "5x3", "2x4x7", "one-sample"]
REDUCTIONS = ["none", "sum", "mean"]


def _problem(shape, seed=3):
    """float32-exact logits (so that both dtypes read the oracle's inputs), labels, soft and
    binary targets."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=3.0, size=shape).astype(np.float32).astype(np.float64)
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    soft = reference.softmax(rng.normal(size=shape))
    binary = (rng.random(shape) < 0.4).astype(np.float64)
    return x, labels, soft, binary


def _tolerance(xp, dtype):
    # float32: the generic kernels' (lse - x_y, rounded) on the other backends
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == xp.float32 else {"rtol": 1e-12, "atol": 1e-14}


def _divisor(reduction, n):
    return n if reduction == "mean" else 1


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_small_calls_match_the_oracle(xp, make, dtype, device, shape, reduction, smoothing):
    """Every reduction and the gradient, with and without label smoothing (which stays in
    the plain lane): r·(softmax - q), q = (1-ε)·y + ε/C (ε/2 for binary)."""
    _check_against_the_oracle(xp, make, dtype, device, shape, reduction, smoothing, seed=3)


def _check_against_the_oracle(xp, make, dtype, device, shape, reduction, smoothing, seed):
    x, labels, soft, binary = _problem(shape, seed=seed)
    tol = _tolerance(xp, dtype)
    eps, n_classes = smoothing, shape[-1]
    rows = int(np.prod(shape[:-1], dtype=int))
    q_sparse = (1 - eps) * np.eye(n_classes)[labels] + eps / n_classes
    q_soft = (1 - eps) * soft + eps / n_classes
    q_binary = (1 - eps) * binary + eps / 2
    cases = [
        (xce.sparse_categorical_cross_entropy, make(labels, "int64"), labels,
         reference.sparse_categorical_cross_entropy,
         (reference.softmax(x) - q_sparse) / _divisor(reduction, rows)),
        (xce.categorical_cross_entropy, make(soft), soft, reference.categorical_cross_entropy,
         (reference.softmax(x) - q_soft) / _divisor(reduction, rows)),
        (xce.binary_cross_entropy, make(binary), binary, reference.binary_cross_entropy,
         (reference.sigmoid(x) - q_binary) / _divisor(reduction, x.size)),
    ]  # fmt: skip
    options = {"from_logits": True, "reduction": reduction, "label_smoothing": eps}
    for fn, y, y_np, oracle, expected_grad in cases:
        expected = oracle(y_np, x, **options)
        assert_close(fn(y, make(x), **options), expected, xp=xp, dtype=dtype, device=device,
                     **tol)  # fmt: skip
        if reduction == "none":
            continue  # value_and_grad takes a scalar loss
        value, grad = xce.value_and_grad(fn)(y, make(x), **options)
        assert_close(value, expected, xp=xp, dtype=dtype, device=device, **tol)
        assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device, **tol)


def test_small_binary_calls_keep_a_confident_entrys_tiny_loss(xp, make, dtype, device):
    """Nothing cancels: a right answer at logit ±30 keeps its loss of about 1e-13, where
    log(1 + e^-30) in floating point would give 0."""
    x, y = [[30.0, -30.0, 30.0]], [[1.0, 0.0, 0.0]]
    tiny = np.log1p(np.exp(-30.0))  # by hand
    value = xce.binary_cross_entropy(make(y), make(x), from_logits=True, reduction="none")
    assert_close(value, [[tiny, tiny, 30.0 + tiny]], xp=xp, dtype=dtype, device=device,
                 rtol=1e-6, atol=0)  # fmt: skip


# The NumPy-backed generic kernels (array-api-strict, Dask) warn on inf - inf while computing
# these values; the values are what this test checks.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")
def test_small_calls_with_infinite_logits_follow_the_full_paths_rules(xp, make, dtype, device):
    """The short paths decline a non-finite result (warning-free: pytest makes warnings
    errors); the rules then give +inf for a label on a masked class, 0 for a masked class
    without target mass, NaN for a row of -inf, and 0 for a binary entry at ±inf that matches
    its target."""
    x = np.array([[2.0, -np.inf, 0.5], [0.0, 1.0, -np.inf], [-np.inf, -np.inf, -np.inf]])
    labels = np.array([0, 2, 1])
    soft = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])
    value = xce.sparse_categorical_cross_entropy(
        make(labels, "int64"), make(x), from_logits=True, reduction="none"
    )
    first = np.log1p(np.exp(-1.5))
    assert_close(value, [first, np.inf, np.nan], xp=xp, dtype=dtype, device=device)
    value = xce.categorical_cross_entropy(make(soft), make(x), from_logits=True, reduction="none")
    lse = np.log(np.exp(0.0) + np.exp(1.0))
    assert_close(value, [first, lse - 0.5, np.nan], xp=xp, dtype=dtype, device=device)
    xb = np.array([[np.inf, -np.inf, 3.0]])
    value = xce.binary_cross_entropy(
        make(np.array([[1.0, 0.0, 1.0]])), make(xb), from_logits=True, reduction="none"
    )
    assert_close(value, [[0.0, 0.0, np.log1p(np.exp(-3.0))]], xp=xp, dtype=dtype, device=device)


@pytest.mark.parametrize("bad", [1.5, -0.25, np.nan, "row sum"])
def test_small_calls_with_bad_targets_raise(xp, make, bad):
    """A bad target is the full path's error, not a number, also through the short paths;
    ``validate=True`` reads the values on every backend."""
    x, _, soft, binary = _problem((64, 10))
    for fn, y in ((xce.categorical_cross_entropy, soft), (xce.binary_cross_entropy, binary)):
        y = y.copy()
        if bad == "row sum":
            if fn is xce.binary_cross_entropy:
                continue  # binary targets have no row sum
            y[7] *= 0.5
        else:
            y[7, 3] = bad
        match = "sum to 1" if bad == "row sum" else r"outside \[0, 1\]"
        for call in (fn, xce.value_and_grad(fn)):
            with pytest.raises(ValueError, match=match):
                call(make(y), make(x), from_logits=True, validate=True)


def test_small_calls_with_probabilities_as_logits_warn(xp, make, backend):
    """The short paths decline logits whose first row looks like probabilities; the full path
    then looks at every row and warns."""
    if backend in ("jax", "dask"):
        pytest.skip(f"{backend}: values are not read, so nothing can be seen to warn about")
    _, labels, soft, _ = _problem((64, 10))
    for fn, y in ((xce.sparse_categorical_cross_entropy, make(labels, "int64")),
                  (xce.categorical_cross_entropy, make(soft))):  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fn(y, make(np.log(soft) * 3.0), from_logits=True)
        for call in (fn, xce.value_and_grad(fn)):
            with pytest.warns(UserWarning, match="from_logits=False"):
                call(y, make(soft), from_logits=True)


@pytest.mark.parametrize("name", ["small_labels", "small_soft", "small_binary"])
def test_small_calls_take_the_short_path(xp, make, backend, monkeypatch, name):
    """On NumPy and CPU torch (outside any graph) a (64, 10) call runs the short path: the
    numbers above are its numbers. Elsewhere, and with fast paths disabled, it is never
    entered."""
    calls = []
    kernel = getattr(_small, name)

    def spy(*args, **kwargs):
        calls.append(name)
        return kernel(*args, **kwargs)

    monkeypatch.setattr(_small, name, spy)
    monkeypatch.setattr(numpy_lanes, name, spy)  # the NumPy lanes' own name for it
    x, labels, soft, binary = _problem((64, 10))
    fn, y = {
        "small_labels": (xce.sparse_categorical_cross_entropy, make(labels, "int64")),
        "small_soft": (xce.categorical_cross_entropy, make(soft)),
        "small_binary": (xce.binary_cross_entropy, make(binary)),
    }[name]
    value, grad = xce.value_and_grad(fn)(y, make(x), from_logits=True)
    expected = backend in ("numpy", "torch") and _config.FAST_PATHS_ENABLED
    assert bool(calls) == expected
    assert np.isfinite(float(to_numpy(value))) and np.all(np.isfinite(to_numpy(grad)))


def test_torch_tensors_that_require_grad_under_no_grad(backend):
    """Under ``torch.no_grad()`` nothing is recorded: tensors that require grad are read
    through detached views, and the numbers are the oracle's."""
    if backend != "torch":
        pytest.skip(f"{backend}: torch.no_grad applies to torch tensors only")
    import torch

    x_np, _, soft, binary = _problem((64, 10))
    cases = (
        (xce.categorical_cross_entropy, soft, reference.categorical_cross_entropy),
        (xce.binary_cross_entropy, binary, reference.binary_cross_entropy),
    )
    for fn, y_np, oracle in cases:
        x = torch.tensor(x_np, requires_grad=True)
        y = torch.tensor(y_np, requires_grad=True)
        with torch.no_grad():
            value = fn(y, x, from_logits=True)
        expected = oracle(y_np, x_np, from_logits=True)
        np.testing.assert_allclose(value.numpy(), expected, rtol=1e-12)


def test_torch_tensors_in_a_graph_keep_their_graph(backend):
    """A small tensor that autograd records never goes through NumPy: its loss is torch's,
    and backward gives the gradient."""
    if backend != "torch":
        pytest.skip(f"{backend}: torch.autograd applies to torch tensors only")
    import torch

    x_np, labels, soft, binary = _problem((64, 10))
    for fn, y, expected in (
        (xce.sparse_categorical_cross_entropy, torch.as_tensor(labels),
         reference.softmax(x_np) - np.eye(10)[labels]),
        (xce.categorical_cross_entropy, torch.as_tensor(soft), reference.softmax(x_np) - soft),
        (xce.binary_cross_entropy, torch.as_tensor(binary), reference.sigmoid(x_np) - binary),
    ):  # fmt: skip
        x = torch.tensor(x_np, requires_grad=True)
        fn(y, x, from_logits=True, reduction="sum").backward()
        np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-10, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# Label smoothing and ignore_index: still a plain lane
# ---------------------------------------------------------------------------------------------

OPTION_SHAPES = [(64, 10), (300, 130)]  # a short path's size, and one past it (blocked kernels)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_label_smoothing_past_the_short_paths_matches_the_oracle(
    xp, make, dtype, device, reduction
):
    """(300, 130): the blocked kernels (NumPy), torch's own call and chunked kernels."""
    _check_against_the_oracle(xp, make, dtype, device, (300, 130), reduction, 0.1, seed=5)


@pytest.mark.parametrize("ignore_index", [-100, 3, 1000])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["none", "mean"])  # "sum": the small shapes' test
@pytest.mark.parametrize("shape", OPTION_SHAPES, ids=["64x10", "300x130"])
def test_ignore_index_matches_the_oracle(
    xp, make, dtype, device, shape, reduction, smoothing, ignore_index
):
    """Ignored labels count for nothing: loss and gradient 0, the mean over the others."""
    x, labels, _, _ = _problem(shape, seed=7)
    labels[::3] = ignore_index  # a padded batch: every third label ignored
    x[3, 0] = np.nan  # an ignored row's logits may be anything
    tol = _tolerance(xp, dtype)
    n_classes = shape[-1]
    valid = labels != ignore_index
    options = {"ignore_index": ignore_index, "label_smoothing": smoothing}
    expected = reference.sparse_categorical_cross_entropy(
        labels, x, from_logits=True, reduction=reduction, **options
    )
    value = xce.sparse_categorical_cross_entropy(
        make(labels, "int64"), make(x), from_logits=True, reduction=reduction, **options
    )
    assert_close(value, expected, xp=xp, dtype=dtype, device=device, **tol)
    if reduction == "none":
        return
    value, grad = xce.value_and_grad(xce.sparse_categorical_cross_entropy)(
        make(labels, "int64"), make(x), from_logits=True, reduction=reduction, **options
    )
    safe = np.where(valid, labels, 0)
    q = (1 - smoothing) * np.eye(n_classes)[safe] + smoothing / n_classes
    expected_grad = np.where(valid[:, None], reference.softmax(np.nan_to_num(x)) - q, 0.0)
    expected_grad /= _divisor(reduction, valid.sum())
    assert_close(value, expected, xp=xp, dtype=dtype, device=device, **tol)
    assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device, **tol)


def test_a_mean_over_ignored_labels_only_is_zero(xp, make, dtype, device):
    """Every label ignored: the mean is 0 (torch's own F.cross_entropy gives NaN), and so is
    its gradient."""
    x, labels, _, _ = _problem((64, 10))
    labels[:] = -100
    options = {"from_logits": True, "ignore_index": -100}
    fn = xce.sparse_categorical_cross_entropy
    assert_close(fn(make(labels, "int64"), make(x), **options), 0.0, xp=xp, dtype=dtype,
                 device=device)  # fmt: skip
    value, grad = xce.value_and_grad(fn)(make(labels, "int64"), make(x), **options)
    assert_close(value, 0.0, xp=xp, dtype=dtype, device=device)
    assert_close(grad, np.zeros_like(x), xp=xp, dtype=dtype, device=device)


def test_bad_labels_and_options_still_raise(xp, make, backend):
    """The lanes decline what they cannot take; the full path then raises its error."""
    x, labels, _, _ = _problem((64, 10))
    bad = labels.copy()
    bad[5] = 10  # out of range, and not the ignored value
    with pytest.raises(ValueError, match="labels"):
        xce.sparse_categorical_cross_entropy(
            make(bad, "int64"), make(x), from_logits=True, ignore_index=-100, validate=True
        )
    for smoothing in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="label_smoothing"):
            xce.sparse_categorical_cross_entropy(
                make(labels, "int64"), make(x), from_logits=True, label_smoothing=smoothing
            )


def test_options_take_the_plain_lane(xp, make, backend, monkeypatch):
    """On NumPy and CPU torch, label smoothing and ignore_index stay in the plain lane: the
    full path's prepare step is never reached."""
    forbid_the_full_path(monkeypatch, backend)
    x, labels, soft, binary = _problem((64, 10))
    labels[::4] = -100
    xce.sparse_categorical_cross_entropy(
        make(labels, "int64"), make(x), from_logits=True, ignore_index=-100, label_smoothing=0.1
    )
    xce.value_and_grad(xce.sparse_categorical_cross_entropy)(
        make(labels, "int64"), make(x), from_logits=True, ignore_index=-100, label_smoothing=0.1
    )
    weights = make(np.linspace(0.5, 2.0, 10))
    for smoothing in (0.0, 0.1):
        options = {"class_weight": weights, "ignore_index": -100, "label_smoothing": smoothing}
        xce.sparse_categorical_cross_entropy(make(labels, "int64"), make(x), from_logits=True,
                                             **options)  # fmt: skip
    for fn, y in ((xce.categorical_cross_entropy, soft), (xce.binary_cross_entropy, binary)):
        fn(make(y), make(x), from_logits=True, label_smoothing=0.1)
        xce.value_and_grad(fn)(make(y), make(x), from_logits=True, label_smoothing=0.1)


@pytest.mark.parametrize("ignore_index", [None, -100])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["none", "mean"])  # "sum": the small shapes' test
@pytest.mark.parametrize("shape", OPTION_SHAPES, ids=["64x10", "300x130"])
def test_class_weights_match_the_oracle(
    xp, make, dtype, device, shape, reduction, smoothing, ignore_index
):
    """Class weights stay in the sparse lane: ℓ = (1-ε)·w_y·(lse - x_y) + (ε/C)·Σ_c w_c·
    (lse - x_c), the mean over Σ w_y of the counted labels, the gradient
    (Σ_c w_c q_c)·softmax - w ⊙ q over the same."""
    x, labels, _, _ = _problem(shape, seed=9)
    n_classes = shape[-1]
    weights = np.random.default_rng(9).uniform(0.5, 2.0, size=n_classes)
    weights = weights.astype(np.float32).astype(np.float64)  # float32-exact, as x
    if ignore_index is not None:
        labels[::5] = ignore_index
    valid = labels != ignore_index if ignore_index is not None else np.ones(labels.shape, bool)
    tol = _tolerance(xp, dtype)
    options = {"label_smoothing": smoothing, "ignore_index": ignore_index}
    expected = reference.sparse_categorical_cross_entropy(
        labels, x, from_logits=True, reduction=reduction, class_weight=weights, **options
    )
    call = {"from_logits": True, "reduction": reduction, **options}
    value = xce.sparse_categorical_cross_entropy(
        make(labels, "int64"), make(x), class_weight=make(weights), **call
    )
    assert_close(value, expected, xp=xp, dtype=dtype, device=device, **tol)
    if reduction == "none":
        return
    value, grad = xce.value_and_grad(xce.sparse_categorical_cross_entropy)(
        make(labels, "int64"), make(x), class_weight=make(weights), **call
    )
    safe = np.where(valid, labels, 0)
    wq = weights * ((1 - smoothing) * np.eye(n_classes)[safe] + smoothing / n_classes)
    expected_grad = wq.sum(axis=-1, keepdims=True) * reference.softmax(x) - wq
    expected_grad = np.where(valid[:, None], expected_grad, 0.0)
    if reduction == "mean":
        expected_grad /= weights[safe][valid].sum()
    assert_close(value, expected, xp=xp, dtype=dtype, device=device, **tol)
    assert_close(grad, expected_grad, xp=xp, dtype=dtype, device=device, **tol)


def test_a_mean_over_zero_weights_is_zero(xp, make, dtype, device, backend):
    """Every counted label of weight 0: the mean is 0 and so is its gradient."""
    x, labels, _, _ = _problem((64, 10))
    weights = np.ones(10)
    weights[np.unique(labels)] = 0.0
    fn = xce.sparse_categorical_cross_entropy
    options = {"from_logits": True, "class_weight": make(weights)}
    assert_close(fn(make(labels, "int64"), make(x), **options), 0.0, xp=xp, dtype=dtype,
                 device=device)  # fmt: skip
    value, grad = xce.value_and_grad(fn)(make(labels, "int64"), make(x), **options)
    assert_close(value, 0.0, xp=xp, dtype=dtype, device=device)
    assert_close(grad, np.zeros_like(x), xp=xp, dtype=dtype, device=device)
    if backend == "torch":  # autograd still reaches the logits, with a zero gradient
        import torch

        logits = torch.tensor(x, requires_grad=True)
        fn(torch.as_tensor(labels), logits, **options).backward()
        assert torch.equal(logits.grad, torch.zeros_like(logits))
