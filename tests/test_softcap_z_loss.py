"""Logit soft-capping, the z-loss and ``return_parts`` of the softmax cross entropies.

Every backend, against the float64 oracle ``tests/reference_softcap.py``: both losses with
the cap, the z-loss and the other options together, every reduction, the parts, the analytic
gradient (against the oracle's formula, central differences, torch.autograd and jax.grad),
numbers and 0-d arrays, bad values, inputs left alone, half-precision inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference_softcap as ref
from helpers import case, central_difference, check, soft_targets, to_numpy

import xce
from xce._backends import backend_named

# The conformance matrix's shape (tests/matrix.py): JAX compiles its operations once a session.
N, C = 6, 4
LABELS = np.array([0, 3, -100, 2, 1, 3])  # -100: ignored (sparse); excluded by ``where`` (soft)
WHERE = LABELS != -100
CLASS_WEIGHT = np.array([0.5, 2.0, 1.5, 1.0])
SAMPLE_WEIGHT = np.array([1.0, 0.5, 2.0, 1.5, 0.75, 1.25])
REDUCTIONS = ("mean", "sum", "none", "sum_and_count")

# One cap and one z-loss throughout: under JAX a number is a compile-time constant, so each
# new value would compile the kernel again.
SOFTCAP, Z_LOSS = 3.0, 0.05


def _logits(seed=0, shape=(N, C)):
    return np.random.default_rng(seed).normal(scale=3.0, size=shape)


def _problem(kind, weighted):
    """NumPy ``(y_true, options for xce, options for the oracle)``."""
    if kind == "sparse":
        y = np.where(WHERE, LABELS, 0) if not weighted else LABELS
        ours = {"ignore_index": -100} if weighted else {}
        theirs = dict(ours)
    else:
        y = soft_targets(1, (N, C))
        ours = {"where": WHERE} if weighted else {}
        theirs = {"valid": WHERE} if weighted else {}
    if weighted:
        more = {"class_weight": CLASS_WEIGHT, "sample_weight": SAMPLE_WEIGHT}
        ours.update(more, label_smoothing=0.1)
        theirs.update(more, label_smoothing=0.1)
    return y, ours, theirs


def _fn(kind):
    if kind == "sparse":
        return xce.sparse_categorical_cross_entropy, ref.sparse
    return xce.categorical_cross_entropy, ref.categorical


def _on(xp, device, data, dtype="float64"):
    """NumPy data on the backend: integers as int64, booleans as bool, else ``dtype``."""
    data = np.asarray(data)
    if data.dtype == bool:
        return xp.asarray(data, dtype=xp.bool, device=device)
    kind = "int64" if data.dtype.kind == "i" else dtype
    return xp.asarray(data, dtype=getattr(xp, kind), device=device)


def _backend_call(xp, device, kind, weighted, dtype="float64"):
    """``(y_true, options)`` on the backend."""
    y, ours, _ = _problem(kind, weighted)
    if kind == "soft":
        y = y.astype(np.float64)
    options = {k: _on(xp, device, v, dtype) if isinstance(v, np.ndarray) else v
               for k, v in ours.items()}  # fmt: skip
    return _on(xp, device, y, dtype), options


def _check(got, expected, xp, device, dtype=None, **tolerance):
    """:func:`helpers.check` in float64 unless told."""
    dtype = xp.float64 if dtype is None else dtype
    check(got, expected, xp=xp, dtype=dtype, device=device, **tolerance)


@pytest.mark.parametrize("kind", ["sparse", "soft"])
def test_loss_parts_and_gradient_equal_the_reference(backend, xp, device, kind):
    # Every option at once: class and sample weights, an excluded entry, smoothing, the cap
    # and the z-loss.
    fn, oracle = _fn(kind)
    y_np, _, theirs = _problem(kind, weighted=True)
    x_np = _logits()
    y, options = _backend_call(xp, device, kind, weighted=True)
    x = _on(xp, device, x_np)
    options.update(softcap=SOFTCAP, z_loss=Z_LOSS, from_logits=True)
    for reduction in REDUCTIONS:
        with case(reduction):
            expected = oracle(y_np, x_np, softcap=SOFTCAP, z_loss=Z_LOSS, reduction=reduction,
                              **theirs)  # fmt: skip
            _check(fn(y, x, reduction=reduction, **options), expected["loss"], xp, device)
            parts = fn(y, x, reduction=reduction, return_parts=True, **options)
            assert isinstance(parts, xce.LossParts)
            for field in ("loss", "cross_entropy", "z_loss", "log_z"):
                _check(getattr(parts, field), expected[field], xp, device)
            if reduction == "sum_and_count":  # one count for the three
                counts = [float(to_numpy(p[1])) for p in parts[:3]]
                assert counts[0] == counts[1] == counts[2]
                np.testing.assert_allclose(counts[0], expected["loss"][1], rtol=1e-12)
            if reduction == "none":
                continue
            parts, grad = xce.value_and_grad(fn)(
                y, x, reduction=reduction, return_parts=True, **options
            )
            _check(parts.loss, expected["loss"], xp, device)
            _check(parts.z_loss, expected["z_loss"], xp, device)
            _check(grad, expected["grad"], xp, device)
    np.testing.assert_array_equal(to_numpy(x), x_np)  # inputs left alone
    np.testing.assert_array_equal(to_numpy(y), y_np)


@pytest.mark.parametrize("kind", ["sparse", "soft"])
def test_gradient_equals_central_differences(backend, xp, device, kind):
    # Of the oracle's loss (float64 NumPy, no formula for the gradient), and on NumPy of
    # xce's own loss too.
    fn, oracle = _fn(kind)
    y_np, _, theirs = _problem(kind, weighted=True)
    y, options = _backend_call(xp, device, kind, weighted=True)
    options.update(softcap=SOFTCAP, z_loss=Z_LOSS, from_logits=True)
    x_np = _logits(seed=5)
    _, grad = xce.value_and_grad(fn)(y, _on(xp, device, x_np), return_parts=True, **options)

    def reference_total(a):
        return oracle(y_np, a, softcap=SOFTCAP, z_loss=Z_LOSS, **theirs)["loss"]

    numeric = central_difference(reference_total, x_np)
    np.testing.assert_allclose(to_numpy(grad), numeric, rtol=1e-6, atol=1e-8)
    if backend == "numpy":
        numeric = central_difference(lambda a: float(fn(y, a, **options)), x_np)
        np.testing.assert_allclose(to_numpy(grad), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ["sparse", "soft"])
def test_unweighted_z_loss_is_the_mean_of_cross_entropy_plus_its_term(backend, xp, device, kind):
    fn, _ = _fn(kind)
    y_np, _, _ = _problem(kind, weighted=False)
    x_np = _logits(seed=2)
    y, _ = _backend_call(xp, device, kind, weighted=False)
    got = fn(y, _on(xp, device, x_np), from_logits=True, z_loss=Z_LOSS)
    # Written out here, not by the oracle: mean over samples of CE + λ·(log Z)².
    log_z = np.log(np.sum(np.exp(x_np), axis=-1))
    target = np.eye(C)[y_np] if kind == "sparse" else y_np
    cross_entropy = np.sum(target * (log_z[:, None] - x_np), axis=-1)
    _check(got, np.mean(cross_entropy + Z_LOSS * log_z**2), xp, device)


@pytest.mark.parametrize("kind", ["sparse", "soft"])
def test_without_the_options_parts_are_the_plain_loss(backend, xp, device, kind):
    fn, _ = _fn(kind)
    y, options = _backend_call(xp, device, kind, weighted=True)
    x = _on(xp, device, _logits())
    plain = fn(y, x, from_logits=True, **options)
    parts = fn(y, x, from_logits=True, return_parts=True, **options)
    _check(parts.loss, to_numpy(plain), xp, device)
    _check(parts.cross_entropy, to_numpy(plain), xp, device)
    _check(parts.z_loss, 0.0, xp, device)


def test_array_hyperparameters_equal_numbers(backend, xp, device):
    y, options = _backend_call(xp, device, "sparse", weighted=True)
    x = _on(xp, device, _logits())
    fn = xce.sparse_categorical_cross_entropy
    numbers, grad = xce.value_and_grad(fn)(
        y, x, from_logits=True, softcap=SOFTCAP, z_loss=Z_LOSS, return_parts=True, **options
    )
    arrays, array_grad = xce.value_and_grad(fn)(
        y, x, from_logits=True, softcap=_on(xp, device, SOFTCAP), z_loss=_on(xp, device, Z_LOSS),
        return_parts=True, **options,
    )  # fmt: skip
    for got, expected in zip((*arrays, array_grad), (*numbers, grad), strict=True):
        _check(got, to_numpy(expected), xp, device)


@pytest.mark.parametrize("kind", ["sparse", "soft"])
def test_bad_values_raise(backend, xp, device, kind):
    fn, _ = _fn(kind)
    y, _ = _backend_call(xp, device, kind, weighted=False)
    x = _on(xp, device, _logits())
    bad = [("softcap", 0.0), ("softcap", -1.0), ("softcap", math.nan), ("softcap", math.inf),
           ("z_loss", -0.1), ("z_loss", math.nan), ("z_loss", math.inf)]  # fmt: skip
    for name, value in bad:
        with case(f"{name}={value}"), pytest.raises(ValueError, match=name):
            fn(y, x, from_logits=True, **{name: value})
        with case(f"{name}={value}, value_and_grad"), pytest.raises(ValueError, match=name):
            xce.value_and_grad(fn)(y, x, from_logits=True, **{name: value})
    p = xp.exp(x) / xp.sum(xp.exp(x), axis=-1, keepdims=True)
    for option in ({"softcap": 2.0}, {"z_loss": 0.1}, {"return_parts": True}):
        with case(option), pytest.raises(ValueError, match="from_logits=True"):
            fn(y, p, **option)
    with pytest.raises(TypeError, match="return_parts"):
        fn(y, x, from_logits=True, return_parts="yes")
    # Out of range as 0-d arrays: raised where values are read, the whole result NaN where not.
    for name, value in (("softcap", -1.0), ("z_loss", -0.1)):
        option = {name: _on(xp, device, value)}
        if backend_named(backend).values_read:
            with case(name), pytest.raises(ValueError, match=name):
                fn(y, x, from_logits=True, **option)
        else:
            parts, grad = xce.value_and_grad(fn)(
                y, x, from_logits=True, return_parts=True, **option
            )
            for a in (*parts, grad):
                assert np.all(np.isnan(to_numpy(a))), (name, a)


def test_half_precision_inputs_are_computed_in_float32(backend, xp, device):
    y_np, _, theirs = _problem("sparse", weighted=True)
    for dtype_name in ("float16", "bfloat16"):
        dtype = getattr(xp, dtype_name, None)
        if dtype is None:
            continue  # numpy has no bfloat16; array-api-strict and Dask's arrays no float16
        x = _on(xp, device, _logits(), dtype_name)
        y, options = _backend_call(xp, device, "sparse", weighted=True, dtype=dtype_name)
        seen = {
            k: to_numpy(options[k]).astype(np.float64) for k in ("class_weight", "sample_weight")
        }
        # The oracle sees the rounded inputs; the result is off by its own rounding only.
        expected = ref.sparse(y_np, to_numpy(x).astype(np.float64), softcap=SOFTCAP,
                              z_loss=Z_LOSS, **{**theirs, **seen})  # fmt: skip
        parts, grad = xce.value_and_grad(xce.sparse_categorical_cross_entropy)(
            y, x, from_logits=True, softcap=SOFTCAP, z_loss=Z_LOSS, return_parts=True, **options
        )
        with case(dtype_name):
            for field in ("loss", "z_loss", "log_z"):
                _check(getattr(parts, field), expected[field], xp, device, dtype)
            _check(grad, expected["grad"], xp, device, dtype)


def test_torch_autograd_equals_the_reference(backend, xp, device):
    if backend not in ("torch", "torch_cuda"):
        pytest.skip(f"torch.autograd applies to torch tensors, not {backend}")
    for kind in ("sparse", "soft"):
        fn, oracle = _fn(kind)
        y_np, _, theirs = _problem(kind, weighted=True)
        y, options = _backend_call(xp, device, kind, weighted=True)
        x = _on(xp, device, _logits()).requires_grad_(True)
        lam = _on(xp, device, Z_LOSS).requires_grad_(True)
        cap = _on(xp, device, SOFTCAP).requires_grad_(True)
        loss = fn(y, x, from_logits=True, softcap=cap, z_loss=lam, **options)
        loss.backward()
        expected = oracle(y_np, _logits(), softcap=SOFTCAP, z_loss=Z_LOSS, **theirs)
        with case(kind):
            _check(x.grad, expected["grad"], xp, device)
            # ∂loss/∂λ is the z-loss term over λ; ∂loss/∂c by central differences.
            _check(lam.grad, expected["z_loss"] / Z_LOSS, xp, device)
            up = oracle(y_np, _logits(), softcap=SOFTCAP + 1e-6, z_loss=Z_LOSS, **theirs)["loss"]
            down = oracle(y_np, _logits(), softcap=SOFTCAP - 1e-6, z_loss=Z_LOSS, **theirs)["loss"]
            _check(cap.grad, (up - down) / 2e-6, xp, device, rtol=1e-6, atol=1e-9)


def test_jax_grad_and_jit_equal_the_reference(backend, xp, device):
    if backend != "jax":
        pytest.skip(f"jax.grad and jax.jit apply to JAX arrays, not {backend}")
    import jax

    for kind in ("sparse", "soft"):
        fn, oracle = _fn(kind)
        y_np, _, theirs = _problem(kind, weighted=True)
        y, options = _backend_call(xp, device, kind, weighted=True)
        x = _on(xp, device, _logits())

        def loss(x, cap, lam, fn=fn, y=y, options=options):
            return fn(y, x, from_logits=True, softcap=cap, z_loss=lam, **options)

        value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 2)))
        value, (grad_x, grad_lam) = value_and_grad(x, SOFTCAP, Z_LOSS)
        expected = oracle(y_np, _logits(), softcap=SOFTCAP, z_loss=Z_LOSS, **theirs)
        with case(kind):
            _check(value, expected["loss"], xp, device)
            _check(grad_x, expected["grad"], xp, device)
            _check(grad_lam, expected["z_loss"] / Z_LOSS, xp, device)
            # Out of range under the trace: NaN, not a number computed from it.
            assert np.isnan(float(value_and_grad(x, -SOFTCAP, Z_LOSS)[0]))
