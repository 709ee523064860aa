"""Every generic kernel takes its scalar hyperparameters as Python numbers or as 0-d arrays.

The public losses pass an array hyperparameter (a JAX tracer, a torch tensor that requires
grad, a lazy Dask scalar) to the generic kernels as a 0-d array of the compute dtype; the
kernels must then give the same numbers as for the Python number, without reading its value,
and be differentiable with respect to it. Checked on every backend against the Python-number
call (values and analytic gradients, at the special values 0 and 1 and generic ones), and on
the autodiff backends against float64 central differences of the NumPy reference: under
``jax.jit``, ``jax.vmap`` and ``jax.grad`` on JAX, through autograd on torch.
"""

from __future__ import annotations

import functools
import itertools
import warnings

import numpy as np
import pytest
import reference as ref
from helpers import case, central_difference, is_lazy, to_numpy

from xce import _agnostic

N, C = 4, 3
CW = np.array([0.5, 0.0, 2.0])  # a zero class weight: the 0·(-log p) rule meets an array


def _logits():
    return np.random.default_rng(0).normal(scale=2.0, size=(N, C))


def _probabilities():
    """Rows of probabilities; one certain row (u = 1 - p = 0 for its class) and one entry
    below the clip's eps, for the probability kernels."""
    p = ref.softmax(_logits())
    p[1] = [1.0, 0.0, 0.0]
    p[2] = [1e-9, 0.5, 0.5 - 1e-9]
    return p


def _soft_targets():
    y = np.random.default_rng(1).uniform(size=(N, C))
    y[0] = [0.0, 0.3, 0.7]
    y[1] = [1.0, 0.0, 0.0]  # one-hot, where the certain row is right
    return y / y.sum(axis=-1, keepdims=True)


def _binary_targets():
    y = np.random.default_rng(2).uniform(size=(N, C))
    y[0] = [0.0, 1.0, 0.0]
    y[1] = [1.0, 0.0, 0.0]  # where the certain row is right: exact 0 and 1
    return y


LABELS = np.array([2, 0, 1, 1])

# name: (inputs, targets, fixed options, hyperparameters swept with their values)
GRID = {"smoothing": (0.0, 0.1), "eps": (1e-7, 0.0), "gamma": (0.0, 1.0, 2.5),
        "alpha": (0.25,), "epsilon": (0.0, 1.0, -0.5)}  # fmt: skip
KERNELS = {
    "sigmoid_bce": ("logits", "binary", {"pos_weight": None}, ("smoothing",)),
    "probs_bce": ("probs", "binary", {"pos_weight": None}, ("smoothing", "eps")),
    "softmax_ce_labels": ("logits", "labels", {"class_weight": CW}, ("smoothing",)),
    "softmax_ce_soft": ("logits", "soft", {"class_weight": CW}, ("smoothing",)),
    "probs_ce_labels": ("probs", "labels", {"class_weight": CW}, ("smoothing", "eps")),
    "probs_ce_soft": ("probs", "soft", {"class_weight": CW}, ("smoothing", "eps")),
    "sigmoid_binary_focal": ("logits", "binary", {}, ("gamma", "alpha", "smoothing")),
    "probs_binary_focal": ("probs", "binary", {}, ("gamma", "alpha", "smoothing", "eps")),
    "softmax_focal_soft": ("logits", "soft", {}, ("gamma", "alpha", "smoothing")),
    "probs_focal_soft": ("probs", "soft", {}, ("gamma", "alpha", "smoothing", "eps")),
    "softmax_poly1_soft": ("logits", "soft", {"class_weight": CW}, ("epsilon", "smoothing")),
    "probs_poly1_soft": ("probs", "soft", {"class_weight": CW}, ("epsilon", "smoothing", "eps")),
}


def _inputs(name):
    inputs, targets, fixed, swept = KERNELS[name]
    x = _logits() if inputs == "logits" else _probabilities()
    t = {"binary": _binary_targets, "soft": _soft_targets, "labels": lambda: LABELS}[targets]()
    return x, t, fixed, swept


def _build(xp, device, a, dtype=None):
    return xp.asarray(np.asarray(a), dtype=xp.float64 if dtype is None else dtype, device=device)


def _call(xp, device, name, x, t, fixed, hyper, *, with_grad):
    """The kernel on backend arrays; ``hyper`` values as given (numbers, arrays)."""
    target = _build(xp, device, t, xp.int64 if t.dtype.kind == "i" else None)
    options = {k: (None if v is None else _build(xp, device, v)) for k, v in fixed.items()}
    kernel = getattr(_agnostic, name)
    return kernel(xp, _build(xp, device, x), target, **options, **hyper, with_grad=with_grad)


def _sweep(swept, lazy):
    """Every combination of the grid's values; on lazy backends (where a call is dear) the
    first, second and last values of every hyperparameter together."""
    if lazy:
        combos = [{k: GRID[k][i % len(GRID[k])] for k in swept} for i in (0, 1, -1)]
        return [c for i, c in enumerate(combos) if c not in combos[:i]]
    grid = itertools.product(*(GRID[k] for k in swept))
    return [dict(zip(swept, values, strict=True)) for values in grid]


def _host(arrays):
    """Backend arrays as NumPy ones, with one computation for all of them on Dask."""
    if type(arrays[0]).__module__.startswith("dask"):
        import dask

        return [np.asarray(a) for a in dask.compute(*arrays)]
    return [to_numpy(a) for a in arrays]


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_array_hyperparameters_equal_python_numbers(backend, xp, device, name):
    x, t, fixed, swept = _inputs(name)
    for numbers in _sweep(swept, is_lazy(backend)):
        arrays = {k: _build(xp, device, v) for k, v in numbers.items()}
        # Unclipped probabilities of 0 with target mass: an infinite loss and gradient, the
        # same in both forms (NumPy's divide warning is not what is checked here).
        with case(numbers), warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = _call(xp, device, name, x, t, fixed, numbers, with_grad=True)
            got = _call(xp, device, name, x, t, fixed, arrays, with_grad=True)
            host = _host([*got, *expected])
            for g, e in zip(host[:2], host[2:], strict=True):
                assert g.shape == e.shape
                np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# Autodiff with respect to the hyperparameter, against the float64 reference
# ---------------------------------------------------------------------------------------------


def _reference_total(name, x, t, fixed, hyper):
    """Σ ℓ of the kernel ``name`` by the NumPy reference, options named as the public API."""
    options = {"from_logits": KERNELS[name][0] == "logits", "reduction": "sum"}
    renamed = {"smoothing": "label_smoothing", "pos_weight": None}
    for key, value in {**fixed, **hyper}.items():
        if renamed.get(key, key) is not None:
            options[renamed.get(key, key)] = value
    targets = KERNELS[name][1]
    if "gamma" in hyper:
        family = {"binary": ref.binary_focal_cross_entropy,
                  "soft": ref.categorical_focal_cross_entropy}  # fmt: skip
    elif "epsilon" in hyper:
        family = {"soft": ref.poly1_cross_entropy}
    else:
        family = {"binary": ref.binary_cross_entropy, "soft": ref.categorical_cross_entropy,
                  "labels": ref.sparse_categorical_cross_entropy}  # fmt: skip
    loss = family[targets]
    return float(loss(t, x, **options))


def _interior(name):
    """Inputs with every probability inside (0, 1), so that every derivative is finite."""
    x, t, fixed, swept = _inputs(name)
    if KERNELS[name][0] == "probs":
        x = ref.softmax(_logits())
        x[2] = [1e-4, 0.5, 0.5 - 1e-4]  # below an eps of 1e-3: clipped
    return x, t, fixed, swept


# (kernel, the hyperparameter differentiated, its value, the other hyperparameters)
AUTODIFF_CASES = [
    *(("sigmoid_binary_focal", "gamma", g, {"alpha": 0.25, "smoothing": 0.1}) for g in (0.0, 2.5)),
    *(("softmax_focal_soft", "gamma", g, {"alpha": 0.25, "smoothing": 0.1}) for g in (1.0, 0.5)),
    *((k, "gamma", 2.5, {"alpha": 0.25, "smoothing": 0.0, "eps": 1e-7})
      for k in ("probs_binary_focal", "probs_focal_soft")),
    ("sigmoid_bce", "smoothing", 0.0, {}),
    ("softmax_ce_labels", "smoothing", 0.1, {}),
    ("softmax_ce_soft", "smoothing", 0.0, {}),
    ("softmax_focal_soft", "smoothing", 0.0, {"gamma": 2.0, "alpha": 0.25}),
    ("probs_ce_labels", "smoothing", 0.1, {"eps": 1e-7}),
    ("probs_bce", "eps", 1e-3, {"smoothing": 0.1}),
    ("probs_ce_soft", "eps", 1e-3, {"smoothing": 0.0}),
    *(("softmax_poly1_soft", "epsilon", e, {"smoothing": 0.1}) for e in (0.0, 1.0)),
    ("probs_poly1_soft", "epsilon", 1.0, {"smoothing": 0.1, "eps": 1e-7}),
]  # fmt: skip


def _autodiff_grad(backend, xp, device, name, x, t, fixed, param, value, others):
    """d Σ ℓ / d ``param`` by the backend's autodiff."""
    if backend == "jax":
        import jax

        def total(v):
            hyper = {**others, param: v}
            return xp.sum(_call(xp, device, name, x, t, fixed, hyper, with_grad=False)[0])

        return float(jax.grad(total)(xp.asarray(value, dtype=xp.float64)))
    import torch

    v = torch.tensor(value, dtype=torch.float64, requires_grad=True)
    loss = _call(xp, device, name, x, t, fixed, {**others, param: v}, with_grad=False)[0]
    loss.sum().backward()
    return float(v.grad)


@pytest.mark.parametrize("name, param, value, others", AUTODIFF_CASES,
                         ids=[f"{c[0]}-{c[1]}={c[2]}" for c in AUTODIFF_CASES])  # fmt: skip
def test_autodiff_with_respect_to_hyperparameter(backend, xp, device, name, param, value, others):
    if backend not in ("jax", "torch"):
        pytest.skip("autodiff backends only")
    x, t, fixed, _ = _interior(name)
    got = _autodiff_grad(backend, xp, device, name, x, t, fixed, param, value, others)

    def reference(v):
        return _reference_total(name, x, t, fixed, {**others, param: float(v)})

    expected = float(central_difference(reference, np.asarray(value, dtype=np.float64)))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# JAX: the kernels, and the JAX fast path's compiled kernels, under jit and vmap
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, param, values, others",
    [
        ("sigmoid_binary_focal", "gamma", (0.0, 1.0, 2.5), {"alpha": 0.25, "smoothing": 0.1}),
        ("softmax_ce_labels", "smoothing", (0.0, 0.1), {}),
    ],
)  # fmt: skip
def test_jax_jit_and_vmap_over_hyperparameter(backend, xp, device, name, param, values, others):
    if backend != "jax":
        pytest.skip("JAX only")
    import jax

    from xce._fast._jax import run_kernel

    x, t, fixed, _ = _inputs(name)
    expected = [_call(xp, device, name, x, t, fixed, {**others, param: v}, with_grad=True)
                for v in values]  # fmt: skip
    options = {k: (None if v is None else _build(xp, device, v)) for k, v in fixed.items()}
    target = _build(xp, device, t, xp.int64 if t.dtype.kind == "i" else None)

    def fast(v):  # the fast path: the kernel compiled with the array hyperparameter traced
        kernel = functools.partial(getattr(_agnostic, name), xp, **options, **others, **{param: v})
        return run_kernel(xp, kernel, _build(xp, device, x), (target,), with_grad=True,
                          grad_scale=None)  # fmt: skip

    def direct(v):
        return _call(xp, device, name, x, t, fixed, {**others, param: v}, with_grad=True)

    stacked = xp.asarray(values, dtype=xp.float64)
    for how, run in {"jit": jax.jit(direct), "fast path": fast}.items():
        for v, e in zip(values, expected, strict=True):
            with case((how, v)):
                got = run(xp.asarray(v, dtype=xp.float64))
                for g, w in zip(got, e, strict=True):
                    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12,
                                               atol=1e-14)  # fmt: skip
    # d Σ ℓ / d hyperparameter through the compiled kernel, against the eager one
    for v in values:
        with case(("grad through the fast path", v)):
            got = jax.grad(lambda h: xp.sum(fast(h)[0]))(xp.asarray(v, dtype=xp.float64))
            want = jax.grad(lambda h: xp.sum(direct(h)[0]))(xp.asarray(v, dtype=xp.float64))
            np.testing.assert_allclose(float(got), float(want), rtol=1e-10)
    batched = jax.vmap(fast)(stacked)
    for i, e in enumerate(expected):
        with case(("vmap of the fast path", values[i])):
            for g, w in zip(batched, e, strict=True):
                np.testing.assert_allclose(np.asarray(g[i]), np.asarray(w), rtol=1e-12,
                                           atol=1e-14)  # fmt: skip
