"""Focal and poly-1 losses against the float64 NumPy reference, on every backend.

The same conventions as the three core losses: each case runs through the ``xp`` fixture in
float32 and float64, ``assert_close`` checks namespace, dtype, device and shape before values,
and the reference (the appended section of ``reference.py``) sees the dtype-rounded inputs.
``value_and_grad`` is checked against float64 central differences of xce's own loss, and the
identities that tie the new losses to the old (γ = 0, ε₁ = 0) are checked on every backend.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from helpers import assert_close, central_difference, dtype_name, is_lazy
from helpers import case as _case
from helpers import logits as _logits
from helpers import seen as _seen

import xce

REDUCTIONS = ("none", "sum", "mean", "sum_and_count")

LOSSES = {
    "binary_focal": (xce.binary_focal_cross_entropy, ref.binary_focal_cross_entropy),
    "categorical_focal": (
        xce.categorical_focal_cross_entropy,
        ref.categorical_focal_cross_entropy,
    ),
    "poly1": (xce.poly1_cross_entropy, ref.poly1_cross_entropy),
}

N, C = 5, 4
SW = np.array([1.0, 0.5, 2.0, 0.0, 1.5])
MASK = np.array([True, False, True, True, True])
ALPHA_C = np.array([0.25, 0.5, 1.0, 0.75])
CW = np.array([0.5, 2.0, 1.0, 3.0])


def _probs(seed, shape, axis=-1):
    return ref.softmax(_logits(seed, shape), axis=axis)


def _soft(seed, shape, axis=-1):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.05, 1.0, size=shape)
    t = np.where(rng.uniform(size=shape) < 0.3, 0.0, t)
    t = np.moveaxis(t, axis, -1)
    t[..., 0] += 0.1
    return np.moveaxis(t / t.sum(axis=-1, keepdims=True), -1, axis)


def _one_hot(seed, shape_without_classes, axis=-1):
    labels = np.random.default_rng(seed).integers(0, C, size=shape_without_classes)
    return np.moveaxis((labels[..., None] == np.arange(C)).astype(np.float64), -1, axis)


class Env:
    def __init__(self, backend, xp, make, dtype, device):
        self.backend, self.xp, self.make, self.dtype, self.device = (
            backend, xp, make, dtype, device,
        )  # fmt: skip

    @property
    def lazy(self):
        return is_lazy(self.backend)

    def convert(self, value):
        if isinstance(value, np.ndarray):
            return self.make(value, "bool") if value.dtype == bool else self.make(value)
        return value

    def check(self, got, expected, rtol=None, atol=None):
        if isinstance(expected, tuple):
            assert isinstance(got, tuple) and len(got) == 2
            for g, e in zip(got, expected, strict=True):
                self.check(g, e, rtol, atol)
            return
        assert_close(
            got, expected, xp=self.xp, dtype=self.dtype, device=self.device, rtol=rtol,
            atol=atol,
        )  # fmt: skip

    def run(self, kind, y_true, y_pred, opts, reductions=None):
        fn, ref_fn = LOSSES[kind]
        if reductions is None:
            reductions = ("none", "sum_and_count") if self.lazy else REDUCTIONS
        t, p = self.make(y_true), self.make(y_pred)
        t_seen, p_seen = _seen(t), _seen(p)
        kw = {k: self.convert(v) for k, v in opts.items()}
        ref_kw = {
            k: (_seen(kw[k]) if isinstance(v, np.ndarray) and v.dtype != bool else v)
            for k, v in opts.items()
        }
        name = dtype_name(self.xp, self.dtype)
        for reduction in reductions:
            got = fn(t, p, reduction=reduction, **kw)
            expected = ref_fn(t_seen, p_seen, reduction=reduction, compute_dtype=name, **ref_kw)
            self.check(got, expected)
        np.testing.assert_array_equal(_seen(p), p_seen)  # never mutated


@pytest.fixture
def env(backend, xp, make, dtype, device):
    return Env(backend, xp, make, dtype, device)


# ---------------------------------------------------------------------------------------------
# Against the reference
# ---------------------------------------------------------------------------------------------

BINARY_OPTIONS = {
    "plain": {},
    "gamma_0": {"gamma": 0.0},
    "gamma_half": {"gamma": 0.5},
    "gamma_1": {"gamma": 1.0},
    "alpha": {"alpha": 0.25},
    "smoothing": {"label_smoothing": 0.2},
    "sample_weight": {"sample_weight": SW},
    "where": {"where": MASK},
    "eps": {"eps": 1e-3},
    "everything": {"gamma": 3.0, "alpha": 0.6, "label_smoothing": 0.1, "sample_weight": SW,
                   "where": MASK},
}  # fmt: skip


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_binary_focal(env, from_logits):
    rng = np.random.default_rng(1)
    y_true = rng.uniform(size=(N, 3))
    y_true[:2] = np.round(y_true[:2])  # hard and soft targets
    y_pred = _logits(2, (N, 3)) if from_logits else ref.sigmoid(_logits(2, (N, 3)))
    names = ["plain", "everything"] if env.lazy else BINARY_OPTIONS
    for name in names:
        with _case(name):
            env.run("binary_focal", y_true, y_pred,
                    {"from_logits": from_logits, **BINARY_OPTIONS[name]})  # fmt: skip


CATEGORICAL_OPTIONS = {
    "plain": {},
    "gamma_0": {"gamma": 0.0},
    "gamma_half": {"gamma": 0.5},
    "alpha_scalar": {"alpha": 0.25},
    "alpha_per_class": {"alpha": ALPHA_C},
    "smoothing": {"label_smoothing": 0.2},
    "sample_weight": {"sample_weight": SW},
    "where": {"where": MASK},
    "eps": {"eps": 1e-3},
    "everything": {"gamma": 1.5, "alpha": ALPHA_C, "label_smoothing": 0.1, "sample_weight": SW,
                   "where": MASK},
}  # fmt: skip

POLY_OPTIONS = {
    "plain": {},
    "epsilon_0": {"epsilon": 0.0},
    "epsilon_negative": {"epsilon": -1.0},
    "class_weight": {"class_weight": CW},
    "smoothing": {"label_smoothing": 0.2},
    "sample_weight": {"sample_weight": SW},
    "where": {"where": MASK},
    "eps": {"eps": 1e-3},
    "everything": {"epsilon": 1.0, "class_weight": CW, "label_smoothing": 0.1,
                   "sample_weight": SW, "where": MASK},
}  # fmt: skip


@pytest.mark.parametrize("targets", ["one_hot", "soft"])
@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
@pytest.mark.parametrize("kind", ["categorical_focal", "poly1"])
def test_categorical_family(env, kind, from_logits, targets):
    options = CATEGORICAL_OPTIONS if kind == "categorical_focal" else POLY_OPTIONS
    y_true = _one_hot(3, (N,)) if targets == "one_hot" else _soft(3, (N, C))
    y_pred = _logits(4, (N, C)) if from_logits else _probs(4, (N, C))
    names = ["everything"] if env.lazy else options
    for name in names:
        with _case(name):
            env.run(kind, y_true, y_pred, {"from_logits": from_logits, **options[name]})


@pytest.mark.parametrize("kind", ["categorical_focal", "poly1"])
def test_class_axis_1_and_sequences(env, kind):
    """(N, C, d) with axis=1, (N, T, C) with axis=-1, a (N,) prefix weight over S = (N, T)."""
    opts = {"from_logits": True, "sample_weight": np.array([1.0, 2.0])}
    y_pred = _logits(5, (2, C, 3))
    env.run(kind, _one_hot(6, (2, 3), axis=1), y_pred, {**opts, "axis": 1})
    env.run(kind, _soft(7, (2, 3, C)), _logits(8, (2, 3, C)), opts)


def test_binary_focal_multilabel_extra_dims(env):
    y_true = np.random.default_rng(9).integers(0, 2, size=(2, 3, 4)).astype(np.float64)
    opts = {"from_logits": True, "sample_weight": np.array([0.5, 2.0]), "alpha": 0.25}
    env.run("binary_focal", y_true, _logits(10, (2, 3, 4)), opts)


# ---------------------------------------------------------------------------------------------
# Identities and extremes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_reduce_to_cross_entropy(env, from_logits):
    """γ = 0 without α is the cross entropy; ε₁ = 0 is too."""
    make = env.make
    y_pred = make(_logits(11, (N, C)) if from_logits else _probs(11, (N, C)))
    y_soft = make(_soft(12, (N, C)))
    kw = {"from_logits": from_logits, "label_smoothing": 0.1, "sample_weight": make(SW)}
    ce = xce.categorical_cross_entropy(y_soft, y_pred, **kw)
    env.check(xce.categorical_focal_cross_entropy(y_soft, y_pred, gamma=0.0, **kw), _seen(ce))
    env.check(xce.poly1_cross_entropy(y_soft, y_pred, epsilon=0.0, **kw), _seen(ce))
    y_bin = make(np.random.default_rng(13).uniform(size=(N, C)))
    p_bin = make(_logits(14, (N, C)) if from_logits else ref.sigmoid(_logits(14, (N, C))))
    bce = xce.binary_cross_entropy(y_bin, p_bin, **kw)
    env.check(xce.binary_focal_cross_entropy(y_bin, p_bin, gamma=0.0, **kw), _seen(bce))


def test_focal_is_at_most_cross_entropy(env):
    """(1 - p_t)^γ ≤ 1 per entry: focal never exceeds cross entropy (α = None)."""
    make = env.make
    y = make(_one_hot(15, (N,)))
    x = make(_logits(16, (N, C), scale=4.0))
    focal = _seen(xce.categorical_focal_cross_entropy(y, x, from_logits=True, reduction="none"))
    ce = _seen(xce.categorical_cross_entropy(y, x, from_logits=True, reduction="none"))
    assert np.all(focal <= ce * (1 + 1e-6))


def test_extremes_are_finite(env):
    """Infinite logits on matching targets give 0; masked (-inf) classes with no target
    mass add nothing; a large offset loses nothing."""
    make = env.make
    inf = np.inf
    got = xce.binary_focal_cross_entropy(
        make([1.0, 0.0]), make([inf, -inf]), from_logits=True, reduction="none"
    )
    env.check(got, [0.0, 0.0])
    y = make([[1.0, 0.0, 0.0]])
    x = make([[1.0, -inf, 0.0]])
    expected = ref.categorical_focal_cross_entropy(
        [[1.0, 0.0, 0.0]], [[1.0, -inf, 0.0]], from_logits=True, reduction="none"
    )
    env.check(xce.categorical_focal_cross_entropy(y, x, from_logits=True, reduction="none"),
              expected)  # fmt: skip
    expected = ref.poly1_cross_entropy([[1.0, 0.0, 0.0]], [[1.0, -inf, 0.0]], from_logits=True,
                                       reduction="none")  # fmt: skip
    env.check(xce.poly1_cross_entropy(y, x, from_logits=True, reduction="none"), expected)
    offset = make([[1e8, 1e8 + 8.0, 1e8 - 8.0]])
    seen = _seen(offset)
    # The reference's lse(x) - x loses the digits at 1e8; the loss is shift-invariant.
    expected = ref.categorical_focal_cross_entropy([[1.0, 0.0, 0.0]], seen - seen.max(),
                                                   from_logits=True, reduction="none")  # fmt: skip
    env.check(xce.categorical_focal_cross_entropy(y, offset, from_logits=True,
                                                  reduction="none"), expected)  # fmt: skip


def test_mean_over_nothing_is_zero(env):
    make = env.make
    nothing = make(np.zeros(N, dtype=bool), "bool")
    y, x = make(_one_hot(17, (N,))), make(_logits(18, (N, C)))
    for fn in (xce.categorical_focal_cross_entropy, xce.poly1_cross_entropy):
        env.check(fn(y, x, from_logits=True, where=nothing), 0.0)
    env.check(xce.binary_focal_cross_entropy(y, x, from_logits=True, where=make(
        np.zeros((N, C), dtype=bool), "bool")), 0.0)  # fmt: skip


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_half_precision_computed_in_float32(xp, device, name):
    half = getattr(xp, name, None)
    if half is None:
        pytest.skip(f"no {name} in {xp.__name__}")
    x64 = _logits(19, (3, C))
    y = _one_hot(20, (3,))
    x = xp.asarray(x64, dtype=half, device=device)
    for kind in LOSSES:
        fn, ref_fn = LOSSES[kind]
        yy = xp.asarray(y, dtype=half, device=device)
        got = fn(yy, x, from_logits=True)
        assert got.dtype == half
        expected = ref_fn(y, _seen(x), from_logits=True)
        np.testing.assert_allclose(float(_seen(got)), expected, rtol=1e-2)


# ---------------------------------------------------------------------------------------------
# value_and_grad
# ---------------------------------------------------------------------------------------------

GRAD_CASES = {
    "binary_focal": [{}, {"gamma": 0.5, "alpha": 0.3}, {"label_smoothing": 0.2, "gamma": 3.0},
                     {"sample_weight": SW, "where": MASK}],
    "categorical_focal": [{}, {"gamma": 0.5, "alpha": ALPHA_C}, {"label_smoothing": 0.2},
                          {"sample_weight": SW, "where": MASK, "gamma": 1.0}],
    "poly1": [{}, {"epsilon": -1.0, "class_weight": CW}, {"label_smoothing": 0.2},
              {"sample_weight": SW, "where": MASK, "epsilon": 0.5}],
}  # fmt: skip
GRAD_TOL = {"float64": (1e-6, 1e-7), "float32": (1e-3, 1e-4)}


@pytest.mark.parametrize("reduction", ["mean", "sum", "sum_and_count"])
@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
@pytest.mark.parametrize("kind", list(LOSSES))
def test_value_and_grad(env, kind, from_logits, reduction):
    if env.lazy and reduction == "sum":
        pytest.skip("lazy backends: 'mean' and 'sum_and_count' cover the scaling")
    fn = LOSSES[kind][0]
    shape = (N, C)
    rng = np.random.default_rng(21)
    if kind == "binary_focal":
        y_true = rng.uniform(size=shape)
    else:
        y_true = _soft(22, shape)
    y_pred = rng.normal(scale=1.5, size=shape) if from_logits else rng.uniform(0.1, 0.9, shape)
    name = dtype_name(env.xp, env.dtype)
    cases = GRAD_CASES[kind]
    for opts in cases[-1:] if env.lazy else cases:  # lazy backends: the combined case
        with _case(opts):
            kw = {"from_logits": from_logits, "reduction": reduction, **opts}
            if not from_logits and kind != "binary_focal":
                kw["validate"] = False  # unnormalised rows, and steps off the simplex
            t, p = env.make(y_true), env.make(y_pred)
            backend_kw = {k: env.convert(v) for k, v in kw.items()}
            value, grad = xce.value_and_grad(fn)(t, p, **backend_kw)
            plain = fn(t, p, **backend_kw)
            if reduction == "sum_and_count":
                env.check(value, (_seen(plain[0]), _seen(plain[1])))
                kw = {**kw, "reduction": "sum"}
            else:
                env.check(value, _seen(plain))
            np_kw = {k: v for k, v in kw.items()}
            t64 = _seen(t)
            expected = central_difference(
                lambda z, t64=t64, np_kw=np_kw: float(fn(t64, z, **np_kw)), _seen(p)
            )
            rtol, atol = GRAD_TOL[name]
            assert_close(grad, expected, xp=env.xp, dtype=env.dtype, device=env.device,
                         rtol=rtol, atol=atol)  # fmt: skip


def test_value_and_grad_zero_gradient_where_excluded(env):
    make = env.make
    x = _logits(23, (N, C))
    x[1] = np.nan  # an excluded row may hold anything
    for fn in (xce.categorical_focal_cross_entropy, xce.poly1_cross_entropy):
        _, grad = xce.value_and_grad(fn)(make(_one_hot(24, (N,))), make(x), from_logits=True,
                                         where=make(MASK, "bool"))  # fmt: skip
        g = _seen(grad)
        assert np.all(g[1] == 0) and np.all(np.isfinite(g))


def test_value_and_grad_refuses_none_reduction(xp, make):
    with pytest.raises(ValueError, match="scalar"):
        xce.value_and_grad(xce.poly1_cross_entropy)(
            make(_one_hot(25, (N,))), make(_logits(26, (N, C))), reduction="none"
        )


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_bad_options(xp, make):
    y, x = make(_one_hot(27, (N,))), make(_logits(28, (N, C)))
    cat = xce.categorical_focal_cross_entropy
    with pytest.raises(ValueError, match="gamma"):
        cat(y, x, from_logits=True, gamma=-1.0)
    with pytest.raises(TypeError, match="gamma"):
        cat(y, x, from_logits=True, gamma=None)
    with pytest.raises(ValueError, match="alpha"):
        cat(y, x, from_logits=True, alpha=1.5)
    with pytest.raises(ValueError, match="alpha"):
        cat(y, x, from_logits=True, alpha=make(np.ones(C + 1)))
    with pytest.raises(ValueError, match="alpha"):
        xce.binary_focal_cross_entropy(y, x, from_logits=True, alpha=-0.1)
    with pytest.raises(ValueError, match="epsilon"):
        xce.poly1_cross_entropy(y, x, from_logits=True, epsilon=float("inf"))
    with pytest.raises(ValueError, match="reduction"):
        xce.poly1_cross_entropy(y, x, from_logits=True, reduction="batchmean")
    with pytest.raises(ValueError, match="shape"):
        cat(make(_one_hot(27, (N - 1,))), x, from_logits=True)
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        xce.poly1_cross_entropy(make(np.ones((N, 1))), make(np.zeros((N, 1))))
    with pytest.raises(ValueError, match=r"prefix|leading"):
        cat(y, x, from_logits=True, sample_weight=make(np.ones((N, 1))))


def test_bad_values_on_checked_data(backend, xp, make):
    if is_lazy(backend):
        pytest.skip("values are not read on lazy backends (validate='auto')")
    y = make(_one_hot(29, (N,)))
    with pytest.raises(ValueError, match="from_logits=True"):
        xce.categorical_focal_cross_entropy(y, make(_logits(30, (N, C))))
    with pytest.raises(ValueError, match="from_logits=True"):
        xce.binary_focal_cross_entropy(y, make(_logits(30, (N, C))))
    with pytest.raises(ValueError, match="y_true"):
        xce.poly1_cross_entropy(make(2 * _one_hot(29, (N,))), make(_probs(31, (N, C))))


def test_jax_gradient_of_binary_logits_at_zero(backend, request):
    """∂/∂x of the binary losses on logits at x = 0 under ``jax.grad``: σ(0) - q = 0.3.

    JAX takes |x|'(0) = 1 but max(x, 0)'(0) = 1/2: a softplus written with both returned
    -0.2 at exactly 0 (zero-initialised logits). The core picks both branches by x >= 0.
    """
    if backend != "jax":
        pytest.skip("a JAX autodiff property")
    import jax
    import jax.numpy as jnp

    y = jnp.asarray([0.2])
    for fn in (xce.binary_cross_entropy, xce.binary_focal_cross_entropy):
        kw = {"gamma": 0.0} if fn is xce.binary_focal_cross_entropy else {}
        grad = jax.grad(lambda x, fn=fn, kw=kw: fn(y, x, from_logits=True, **kw))(jnp.zeros(1))
        np.testing.assert_allclose(np.asarray(grad), [0.3], rtol=1e-12)
    # d/dx log σ(x) = σ(-x) = 1/2 at 0
    grad = jax.grad(lambda x: xce.log_sigmoid(x).sum())(jnp.zeros(1))
    np.testing.assert_allclose(np.asarray(grad), [0.5], rtol=1e-12)
