"""``xce.linear_cross_entropy`` on every backend: values and gradients against the float64
oracle (tests/reference_linear.py), every option alone and together, every reduction, extra
batch dimensions, chunk sizes that do not divide the rows; the frameworks' autodiff against
the naive form's; Dask lazily; the memory bound; bad input; no mutation; low precision."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import reference_linear as ref
from helpers import (
    assert_array_like,
    assert_close,
    case,
    central_difference,
    check,
    dtype_name,
    is_lazy,
    pick,
    reductions,
    seen,
)

import xce

N, D, V = 5, 3, 4
GRAD_TOL = {"float64": (1e-9, 1e-11), "float32": (1e-4, 1e-5)}


def _data(seed=0, batch=(N,)):
    rng = np.random.default_rng(seed)
    return {
        "y": rng.integers(0, V, size=batch),
        "hidden": rng.normal(size=(*batch, D)),
        "weight": rng.normal(size=(V, D)),
    }


def _case(name):
    """(data, options) of a named case, NumPy values."""
    rng = np.random.default_rng(1)
    batch = (2, 3) if name in ("extra_dims", "all") else (N,)
    data = _data(batch=batch)
    if name == "ignore_index":
        data["y"][1] = -100
    options = {
        "plain": {},
        "bias": {"bias": rng.normal(size=V)},
        "ignore_index": {"ignore_index": -100},
        "class_weight": {"class_weight": rng.uniform(0.2, 2.0, size=V)},
        "sample_weight": {"sample_weight": rng.uniform(0.2, 2.0, size=N)},
        "label_smoothing": {"label_smoothing": 0.2},
        "where": {"where": np.array([True, False, True, True, False])},
        "softcap": {"softcap": 1.5},
        "z_loss": {"z_loss": 0.1},
        "extra_dims": {"sample_weight": rng.uniform(0.2, 2.0, size=2)},
        "all": {
            "bias": rng.normal(size=V),
            "ignore_index": 3,
            "class_weight": rng.uniform(0.2, 2.0, size=V),
            "sample_weight": rng.uniform(0.2, 2.0, size=(2, 3)),
            "label_smoothing": 0.1,
            "where": np.array([True, False]),
            "softcap": 2.0,
            "z_loss": 0.05,
        },
    }[name]
    return data, options


CASES = ["plain", "bias", "ignore_index", "class_weight", "sample_weight",
         "label_smoothing", "where", "softcap", "z_loss", "extra_dims", "all"]  # fmt: skip
LAZY_CASES = ["all"]  # bias, extra dims and every option: one compilation per reduction


def _build(make, data, options):
    y = make(data["y"], "int64")
    h, w = make(data["hidden"]), make(data["weight"])
    built = {}
    for key, value in options.items():
        if isinstance(value, np.ndarray):
            value = make(value, "bool") if value.dtype == bool else make(value)
        built[key] = value
    seen_options = {
        k: seen(built[k]) if isinstance(v, np.ndarray) and v.dtype != bool else v
        for k, v in options.items()
    }
    return (y, h, w), built, (data["y"], seen(h), seen(w)), seen_options


def test_against_reference(backend, xp, make, dtype, device):
    vg = xce.value_and_grad(xce.linear_cross_entropy)
    for name in pick(backend, CASES, LAZY_CASES):
        data, options = _case(name)
        arrays, built, plain, opts = _build(make, data, options)
        for reduction in reductions(backend):
            chunks = (2,) if is_lazy(backend) else (1, 2, None)  # None: all rows at once
            for chunk_size in chunks:
                with case(f"{name}, {reduction}, chunk_size={chunk_size}"):
                    got = xce.linear_cross_entropy(
                        *arrays, **built, reduction=reduction, chunk_size=chunk_size
                    )
                    want = ref.linear_cross_entropy(*plain, **opts, reduction=reduction)
                    check(got, want, xp=xp, dtype=dtype, device=device)
            if reduction == "none":
                continue
            with case(f"{name}, {reduction}: value_and_grad"):
                loss, grads = vg(*arrays, **built, reduction=reduction, chunk_size=2)
                check(loss, want, xp=xp, dtype=dtype, device=device)
                rtol, atol = GRAD_TOL[dtype_name(xp, dtype)]
                expected = ref.gradients(*plain, **opts, reduction=reduction)
                assert len(grads) == len(expected)
                for g, e in zip(grads, expected, strict=True):
                    assert_close(g, e, xp=xp, dtype=dtype, device=device, rtol=rtol, atol=atol)


def test_gradient_central_differences(backend, xp, make, dtype, device):
    """The returned gradients against central differences of the float64 loss."""
    if dtype != xp.float64:
        pytest.skip(f"{backend}: float64 only (central differences need its precision)")
    data, options = _case("all")
    arrays, built, plain, opts = _build(make, data, options)
    _, grads = xce.value_and_grad(xce.linear_cross_entropy)(*arrays, **built, chunk_size=4)
    y, h, w = plain
    numeric = [
        central_difference(lambda a: ref.linear_cross_entropy(y, a, w, **opts), h),
        central_difference(lambda a: ref.linear_cross_entropy(y, h, a, **opts), w),
        central_difference(
            lambda a: ref.linear_cross_entropy(y, h, w, **{**opts, "bias": a}), opts["bias"]
        ),
    ]
    for g, e in zip(grads, numeric, strict=True):
        assert_close(g, e, xp=xp, dtype=dtype, device=device, rtol=1e-6, atol=1e-8)


def test_return_parts(backend, xp, make, dtype, device):
    """The parts equal the sparse loss's parts on the whole logits."""
    if is_lazy(backend) and dtype != xp.float64:
        pytest.skip(f"{backend}, {dtype}: lazy backends run the float64 case (each compiles)")
    data, options = _case("all")
    arrays, built, _, _ = _build(make, data, options)
    y, h, w = arrays
    bias = built.pop("bias")
    logits = h @ w.T + bias
    # log Z of the excluded entries: under a JAX trace (the chunks' scan) their logits are
    # zeroed first (xce.LossParts), so only the included ones are compared there.
    included = data["y"] != options["ignore_index"]
    included = included & options["where"][:, None]
    for reduction in ("sum_and_count",) if is_lazy(backend) else reductions(backend):
        with case(reduction):
            got = xce.linear_cross_entropy(y, h, w, bias=bias, **built, reduction=reduction,
                                           chunk_size=4, return_parts=True)  # fmt: skip
            want = xce.sparse_categorical_cross_entropy(
                y, logits, from_logits=True, **built, reduction=reduction, return_parts=True
            )
            assert isinstance(got, xce.LossParts)
            for g, e in zip(got[:3], want[:3], strict=True):
                check(g, to_host(e), xp=xp, dtype=dtype, device=device)
            log_z = np.where(included, seen(want.log_z), np.nan)
            got_log_z = np.where(included, seen(got.log_z), np.nan)
            assert_array_like(got.log_z, xp=xp, dtype=dtype, device=device, shape=included.shape)
            np.testing.assert_allclose(got_log_z, log_z, rtol=2e-5, equal_nan=True)


def to_host(value):
    return tuple(seen(v) for v in value) if isinstance(value, tuple) else seen(value)


def test_torch_autograd(backend, xp, make, dtype, device):
    """torch.autograd through the chunked loss equals autograd of the naive form."""
    if backend not in ("torch", "torch_cuda"):
        pytest.skip(f"{backend}: torch.autograd is torch's")
    import torch
    import torch.nn.functional as F

    data, options = _case("all")
    (y, h, w), built, _, _ = _build(make, data, options)
    bias = built.pop("bias")
    for reduction in ("mean", "sum", "none"):
        leaves = [t.clone().requires_grad_(True) for t in (h, w, bias)]
        got = xce.linear_cross_entropy(y, leaves[0], leaves[1], bias=leaves[2], **built,
                                       reduction=reduction, chunk_size=4)  # fmt: skip
        naive = [t.clone().requires_grad_(True) for t in (h, w, bias)]
        want = xce.sparse_categorical_cross_entropy(
            y, F.linear(naive[0], naive[1], naive[2]), from_logits=True, **built,
            reduction=reduction,
        )  # fmt: skip
        cotangent = torch.rand(got.shape, dtype=got.dtype, device=got.device) + 0.5
        (got * cotangent).sum().backward()
        (want * cotangent).sum().backward()
        with case(reduction):
            for a, b in zip(leaves, naive, strict=True):
                assert_close(a.grad, seen(b.grad), xp=xp, dtype=dtype, device=device)


def test_jax_grad_under_jit(backend, xp, make, dtype, device):
    """jax.grad (under jax.jit) of the chunked loss equals that of the naive form."""
    if backend != "jax" or dtype != xp.float64:
        pytest.skip(f"{backend}, {dtype}: jax.grad is JAX's, tested in float64 (compiles)")
    import jax

    data, options = _case("all")
    (y, h, w), built, _, _ = _build(make, data, options)
    bias = built.pop("bias")

    def chunked(h, w, b):
        return xce.linear_cross_entropy(y, h, w, bias=b, **built, chunk_size=4)

    def naive(h, w, b):
        return xce.sparse_categorical_cross_entropy(y, h @ w.T + b, from_logits=True, **built)

    got = jax.jit(jax.grad(chunked, argnums=(0, 1, 2)))(h, w, bias)
    want = jax.grad(naive, argnums=(0, 1, 2))(h, w, bias)
    for a, b in zip(got, want, strict=True):
        assert_close(a, seen(b), xp=xp, dtype=dtype, device=device)
    # Per token: the backward sweeps again with the cotangents as sample weights.
    weights = xp.arange(6, dtype=dtype).reshape(2, 3)
    got = jax.grad(
        lambda h, w: (
            xce.linear_cross_entropy(y, h, w, reduction="none", chunk_size=4) * weights
        ).sum(),
        argnums=(0, 1),
    )(h, w)
    want = jax.grad(
        lambda h, w: (
            xce.sparse_categorical_cross_entropy(y, h @ w.T, from_logits=True, reduction="none")
            * weights
        ).sum(),
        argnums=(0, 1),
    )(h, w)
    for a, b in zip(got, want, strict=True):  # fmt: skip
        assert_close(a, seen(b), xp=xp, dtype=dtype, device=device)


def test_dask_is_lazy(backend, xp, make, dtype, device):
    """On Dask the call builds a graph (no compute), equal to the reference once computed."""
    if backend != "dask":
        pytest.skip(f"{backend}: laziness is Dask's")
    import dask

    data, options = _case("all")
    (y, h, w), built, plain, opts = _build(make, data, options)
    h = h.rechunk((1, 2, D))

    def refuse(*args, **kwargs):
        raise AssertionError("linear_cross_entropy computed a Dask array during the call")

    with dask.config.set(scheduler=refuse):
        loss, grads = xce.value_and_grad(xce.linear_cross_entropy)(y, h, w, **built)
        per_token = xce.linear_cross_entropy(y, h, w, **built, reduction="none")
    check(loss, ref.linear_cross_entropy(*plain, **opts), xp=xp, dtype=dtype, device=device)
    check(per_token, ref.linear_cross_entropy(*plain, **opts, reduction="none"), xp=xp,
          dtype=dtype, device=device)  # fmt: skip
    for g, e in zip(grads, ref.gradients(*plain, **opts), strict=True):
        assert_close(g, e, xp=xp, dtype=dtype, device=device, rtol=1e-4, atol=1e-5)


def test_memory_bound(backend, xp, dtype):
    """Peak extra memory (tracemalloc, NumPy) ≤ 1/8 of the full logits plus the gradients."""
    if backend != "numpy" or dtype != xp.float32:
        pytest.skip(f"{backend}, {dtype}: tracemalloc sees NumPy's allocations; float32 case")
    n, d, v = 2048, 16, 2048
    rng = np.random.default_rng(0)
    y = rng.integers(0, v, size=n)
    h = rng.normal(size=(n, d)).astype(np.float32)
    w = (0.1 * rng.normal(size=(v, d))).astype(np.float32)
    every = {"bias": rng.normal(size=v).astype(np.float32), "label_smoothing": 0.1,
             "class_weight": rng.uniform(0.5, 1.5, size=v).astype(np.float32),
             "sample_weight": rng.uniform(size=n).astype(np.float32),
             "where": rng.uniform(size=n) > 0.1, "softcap": 30.0, "z_loss": 1e-4}  # fmt: skip
    native = {k: every[k] for k in ("bias", "label_smoothing", "class_weight", "where")}
    vg = xce.value_and_grad(xce.linear_cross_entropy)
    vg(y[:64], h[:64], w)  # imports and thread pools outside the measurement
    bound = n * v * 4 / 8
    for name, options in {"plain": {}, "native options": native, "every option": every}.items():
        tracemalloc.start()
        try:
            _, grads = vg(y, h, w, **options)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        returned = sum(g.nbytes for g in grads)
        assert peak <= bound + returned, f"{name}: peak {peak} > {bound} + {returned}"


BAD = [
    ({"weight": np.zeros((V, D, 1))}, ValueError, "weight must have shape"),
    ({"weight": np.zeros((V, D + 1))}, ValueError, "D = hidden.shape"),
    ({"y": np.zeros((N + 1,), int)}, ValueError, "y_true has shape"),
    ({"y": np.zeros((N,))}, TypeError, "integer class labels"),
    ({"y": np.full((N,), V)}, ValueError, "y_true"),
    ({"y": np.full((N,), -1)}, ValueError, "y_true"),
    ({"bias": np.zeros((V + 1,))}, ValueError, "bias must have shape"),
    ({"softcap": 0.0}, ValueError, "softcap"),
    ({"softcap": -1.0}, ValueError, "softcap"),
    ({"z_loss": -0.1}, ValueError, "z_loss"),
    ({"chunk_size": 0}, ValueError, "chunk_size"),
    ({"chunk_size": 1.5}, TypeError, "chunk_size"),
    ({"reduction": "avg"}, ValueError, "reduction"),
]


def test_bad_input(backend, xp, make, dtype, device):
    """Clear errors; on lazy data an out-of-range label is a NaN loss instead."""
    data = _data()
    for change, error, match in BAD:
        lazy_label = "y" in change and change["y"].dtype.kind == "i" and change["y"].shape == (N,)
        with case(f"{change}"):
            arrays = {**data, **{k: v for k, v in change.items() if k in data}}
            options = {k: v for k, v in change.items() if k not in data}
            if "bias" in options:
                options["bias"] = make(options["bias"])
            y = make(arrays["y"], "int64" if arrays["y"].dtype.kind == "i" else None)
            args = (y, make(arrays["hidden"]), make(arrays["weight"]))
            if lazy_label and is_lazy(backend):
                assert np.isnan(seen(xce.linear_cross_entropy(*args, **options)))
                continue
            with pytest.raises(error, match=match):
                xce.linear_cross_entropy(*args, **options)


def test_inputs_not_mutated(backend, xp, make, dtype, device):
    if backend == "jax":
        pytest.skip("jax: its arrays are immutable")
    data, options = _case("all")
    arrays, built, _, _ = _build(make, data, options)
    before = [seen(a) for a in (*arrays, *(v for v in built.values() if hasattr(v, "shape")))]
    xce.value_and_grad(xce.linear_cross_entropy)(*arrays, **built, chunk_size=4)
    after = [seen(a) for a in (*arrays, *(v for v in built.values() if hasattr(v, "shape")))]
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


def test_low_precision_accumulates_in_float32(backend, xp, device):
    """float16 / bfloat16 inputs: float32 accumulation, near the float64 reference."""
    names = [n for n in ("float16", "bfloat16") if getattr(xp, n, None) is not None]
    if backend == "jax":
        names = ["bfloat16"]  # each dtype compiles the sweep again
    if backend in ("dask", "array_api_strict") or not names:
        pytest.skip(f"{backend}: no half-precision matmul tested here (NumPy's float16 is)")
    data, options = _case("all")
    options.pop("z_loss")  # keeps the comparison about rounding of the inputs
    for name in names:
        low = getattr(xp, name)

        def make(a, kind=None, low=low):
            return xp.asarray(np.asarray(a), dtype=getattr(xp, kind) if kind else low,
                              device=device)  # fmt: skip

        arrays, built, plain, opts = _build(make, data, options)
        loss, grads = xce.value_and_grad(xce.linear_cross_entropy)(*arrays, **built,
                                                                   chunk_size=4)  # fmt: skip
        with case(name):
            assert_close(loss, ref.linear_cross_entropy(*plain, **opts), xp=xp, dtype=low,
                         device=device, rtol=1e-2, atol=1e-2)  # fmt: skip
            for g, e in zip(grads, ref.gradients(*plain, **opts), strict=True):
                assert_close(g, e, xp=xp, dtype=low, device=device, rtol=2e-2, atol=2e-2)
