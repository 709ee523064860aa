"""The three losses against the float64 NumPy reference, across options, shapes and reductions.

Every case runs on every backend (``xp`` fixture) in float32 and float64; ``assert_close`` checks
namespace, dtype, device and shape before the values. The reference (``reference.py``) is fed
the numbers the library saw (inputs rounded to the dtype under test), so only the library's own
rounding is left.

Cost on the lazy backends: JAX compiles every eager op anew for each new shape and Dask builds
and runs a task graph per call, about 50-100 ms a call against about 1 ms on NumPy. There the
option matrices run a representative subset (the combined "everything" cases still exercise
every option) and the per-option cases check the "none" and "sum_and_count" reductions;
NumPy, array-api-strict and torch run every case with every reduction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import reference as ref
from helpers import assert_close, dtype_name, is_lazy
from helpers import case as _case
from helpers import check as _check
from helpers import labels as _labels
from helpers import logits as _logits
from helpers import one_hot as _one_hot
from helpers import seen as _seen
from helpers import soft_targets as _soft_targets

import xce

REDUCTIONS = ("none", "sum", "mean", "sum_and_count")
LAZY_REDUCTIONS = ("none", "sum_and_count")

LOSSES = {
    "binary": (xce.binary_cross_entropy, ref.binary_cross_entropy),
    "categorical": (xce.categorical_cross_entropy, ref.categorical_cross_entropy),
    "sparse": (xce.sparse_categorical_cross_entropy, ref.sparse_categorical_cross_entropy),
}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _probs(seed, shape, axis=-1):
    return ref.softmax(_logits(seed, shape), axis=axis)


@dataclass
class Env:
    backend: str
    xp: object
    make: object
    dtype: object
    device: object

    @property
    def lazy(self) -> bool:
        return is_lazy(self.backend)

    def pick(self, full, lazy):
        """Every case on the eager backends, ``lazy`` (a subset) on JAX / Dask."""
        return list(lazy) if self.lazy else list(full)

    def _convert(self, value):
        """NumPy option values become backend arrays; Python scalars / None pass through."""
        if isinstance(value, np.ndarray):
            if value.dtype == bool:
                return self.make(value, "bool")
            if np.issubdtype(value.dtype, np.integer):
                return self.make(value, "int64")
            return self.make(value)
        return value

    def run(
        self,
        kind,
        y_true,
        y_pred,
        opts,
        *,
        label_dtype="int64",
        full=False,
        reductions=None,
        rtol=None,
        atol=None,
    ):
        """Run loss ``kind`` on backend arrays built from NumPy data and compare each reduction
        with the reference; return the reference results by reduction."""
        if reductions is None:
            reductions = REDUCTIONS if (full or not self.lazy) else LAZY_REDUCTIONS
        fn, ref_fn = LOSSES[kind]
        if kind == "sparse":
            t = self.make(y_true, label_dtype)
            t_ref = np.asarray(y_true)
        else:
            t = self.make(y_true)
            t_ref = _seen(t)
        p = self.make(y_pred)
        p_seen = _seen(p)
        kw = {k: self._convert(v) for k, v in opts.items()}
        ref_kw = {
            k: (_seen(kw[k]) if isinstance(v, np.ndarray) and v.dtype != bool else v)
            for k, v in opts.items()
        }
        name = dtype_name(self.xp, self.dtype)
        results = {}
        for reduction in reductions:
            got = fn(t, p, reduction=reduction, **kw)
            expected = ref_fn(t_ref, p_seen, reduction=reduction, compute_dtype=name, **ref_kw)
            _check(
                got,
                expected,
                xp=self.xp,
                dtype=self.dtype,
                device=self.device,
                rtol=rtol,
                atol=atol,
            )
            results[reduction] = expected
        # The caller's arrays are never mutated.
        np.testing.assert_array_equal(_seen(p), p_seen)
        return results


@pytest.fixture
def env(backend, xp, make, dtype, device):
    return Env(backend, xp, make, dtype, device)


def _eps_of(env) -> float:
    return float(np.finfo(np.float32 if env.dtype == env.xp.float32 else np.float64).eps)


# ---------------------------------------------------------------------------------------------
# Sparse categorical
# ---------------------------------------------------------------------------------------------

N, C = 6, 4
CW = np.array([0.5, 2.0, 1.0, 3.0])
SW = np.array([1.0, 0.5, 2.0, 0.0, 1.5, 3.0])
MASK = np.array([True, False, True, True, False, True])
LAB = np.array([0, 3, 1, 2, 3, 1])
LAB_IGN = np.array([0, -100, 1, 2, -100, 1])

SPARSE_OPTIONS = {
    "plain": (LAB, {}),
    "class_weight": (LAB, {"class_weight": CW}),
    "sample_weight": (LAB, {"sample_weight": SW}),
    "sample_weight_0d": (LAB, {"sample_weight": np.array(2.5)}),
    "where": (LAB, {"where": MASK}),
    "where_0d": (LAB, {"where": np.array(True)}),
    "ignore_index": (LAB_IGN, {"ignore_index": -100}),
    "ignore_index_in_range": (LAB, {"ignore_index": 3}),  # a real class can be the ignored one
    "label_smoothing": (LAB, {"label_smoothing": 0.2}),
    "label_smoothing_1": (LAB, {"label_smoothing": 1.0}),
    "weights_and_smoothing": (
        LAB,
        {"class_weight": CW, "sample_weight": SW, "label_smoothing": 0.1},
    ),
    "everything": (
        LAB_IGN,
        {
            "class_weight": CW,
            "sample_weight": SW,
            "label_smoothing": 0.3,
            "where": MASK,
            "ignore_index": -100,
        },
    ),
}


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_sparse_2d(env, from_logits):
    y_pred = _logits(10, (N, C)) if from_logits else _probs(10, (N, C))
    for name in env.pick(SPARSE_OPTIONS, ["where_0d", "everything"]):
        labels, opts = SPARSE_OPTIONS[name]
        with _case(name):
            env.run(
                "sparse",
                labels,
                y_pred,
                {"from_logits": from_logits, **opts},
                full=name == "everything",
            )


def test_sparse_int32_labels_and_default_reduction(xp, make, dtype, device):
    x = make(_logits(11, (N, C)))
    t = make(LAB, "int32")
    got = xce.sparse_categorical_cross_entropy(t, x, from_logits=True)
    expected = ref.sparse_categorical_cross_entropy(LAB, _seen(x), from_logits=True)
    assert_close(got, expected, xp=xp, dtype=dtype, device=device)
    # Keywords for the two arrays work too.
    got_kw = xce.sparse_categorical_cross_entropy(y_true=t, y_pred=x, from_logits=True)
    assert_close(got_kw, expected, xp=xp, dtype=dtype, device=device)


def test_sparse_hand_computed(xp, make, dtype, device):
    # Two samples, four classes, written out by hand.
    x = np.array([[1.0, 2.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    lse0 = np.log(np.exp(1.0) + np.exp(2.0) + np.exp(3.0) + 1.0)
    l0, l1 = lse0 - 1.0, np.log(4.0)  # labels 0 and 2
    w = np.array([2.0, 1.0, 0.5, 1.0])
    t = make([0, 2], "int64")
    got = xce.sparse_categorical_cross_entropy(t, make(x), from_logits=True, reduction="none")
    assert_close(got, [l0, l1], xp=xp, dtype=dtype, device=device)
    got = xce.sparse_categorical_cross_entropy(t, make(x), from_logits=True, class_weight=make(w))
    assert_close(got, (2.0 * l0 + 0.5 * l1) / 2.5, xp=xp, dtype=dtype, device=device)
    # probabilities
    p = np.array([[0.2, 0.3, 0.4, 0.1], [0.1, 0.05, 0.8, 0.05]])
    got = xce.sparse_categorical_cross_entropy(t, make(p), reduction="sum")
    assert_close(got, -np.log(0.2) - np.log(0.8), xp=xp, dtype=dtype, device=device)


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_sparse_spatial_axis1(env, from_logits):
    # (N, C, d1, d2) with the class axis at 1; S = (N, d1, d2).
    shape = (3, 4, 2, 3)
    S = (3, 2, 3)
    y_pred = _logits(12, shape) if from_logits else _probs(12, shape, axis=1)
    labels = _labels(13, S, 4)
    rng = np.random.default_rng(14)
    ignored = np.where(rng.uniform(size=S) < 0.3, -1, labels)
    cases = {
        "plain": (labels, {}),
        "sw_N": (labels, {"sample_weight": np.array([1.0, 2.0, 0.5])}),
        "sw_Nd1": (labels, {"sample_weight": rng.uniform(0.0, 2.0, size=(3, 2))}),
        "sw_full": (labels, {"sample_weight": rng.uniform(0.0, 2.0, size=S)}),
        "where_Nd1": (labels, {"where": np.array([[True, False], [True, True], [False, True]])}),
        "ignore": (ignored, {"ignore_index": -1}),
        "class_weight_smoothing": (
            labels,
            {
                "class_weight": CW,
                "label_smoothing": 0.15,
                "sample_weight": np.array([1.0, 0.0, 2.0]),
            },
        ),
    }
    for name in env.pick(cases, ["sw_Nd1", "ignore"]):
        y, opts = cases[name]
        with _case(name):
            env.run("sparse", y, y_pred, {"axis": 1, "from_logits": from_logits, **opts})


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_sparse_sequence_NTC(env, from_logits):
    # (N, T, C) with the class axis last; padding positions ignored and masked.
    shape = (3, 5, 4)
    y_pred = _logits(15, shape) if from_logits else _probs(15, shape)
    labels = _labels(16, (3, 5), 4)
    labels[0, 3:] = -100
    labels[2, 1:] = -100
    lengths_mask = labels != -100
    cases = [
        {"ignore_index": -100},
        {"ignore_index": -100, "sample_weight": np.array([1.0, 2.0, 0.5])},
        {"where": lengths_mask, "class_weight": CW},
        {"ignore_index": -100, "where": np.array([True, False, True]), "label_smoothing": 0.1},
        {
            "ignore_index": -100,
            "sample_weight": np.random.default_rng(17).uniform(size=(3, 5)),
            "class_weight": CW,
            "label_smoothing": 0.2,
        },
    ]
    for i in env.pick(range(len(cases)), [2, 4]):
        with _case(sorted(cases[i])):
            env.run("sparse", labels, y_pred, {"from_logits": from_logits, **cases[i]}, full=i == 4)


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_sparse_class_axis_first(env, from_logits):
    # (C, N) with axis=0 and a negative spelling of the same axis.
    y_pred = _logits(18, (C, N)) if from_logits else _probs(18, (C, N), axis=0)
    for axis in env.pick((0, -2), (0,)):
        with _case(f"axis={axis}"):
            env.run(
                "sparse",
                LAB,
                y_pred,
                {"axis": axis, "from_logits": from_logits, "class_weight": CW, "sample_weight": SW},
            )


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_sparse_scalar_sample(env, from_logits):
    # One sample without a batch axis: y_pred (C,), label 0-d, S = ().
    y_pred = _logits(19, (C,)) if from_logits else _probs(19, (C,))
    cases = [
        {},
        {"sample_weight": np.array(2.5)},
        {"class_weight": CW},
        {"where": np.array(True), "label_smoothing": 0.1},
    ]
    for i in env.pick(range(len(cases)), [2]):
        with _case(sorted(cases[i])):
            env.run("sparse", np.array(2), y_pred, {"from_logits": from_logits, **cases[i]})
    # 0-d where=False → nothing valid.
    res = env.run(
        "sparse",
        np.array(2),
        y_pred,
        {"from_logits": from_logits, "where": np.array(False)},
        full=True,
    )
    assert res["mean"] == 0.0 and res["sum_and_count"] == (0.0, 0.0)


# ---------------------------------------------------------------------------------------------
# Mean over nothing → 0.0
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sparse", "categorical", "binary"])
@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_empty_batch(env, kind, from_logits):
    shape = (0, C)
    y_pred = np.zeros(shape) if from_logits else np.full(shape, 0.25)
    y_true = np.zeros((0,), dtype=np.int64) if kind == "sparse" else np.zeros(shape)
    opts = {"from_logits": from_logits}
    if kind != "binary":
        opts["class_weight"] = CW
    extras = [{}, {"sample_weight": np.zeros((0,))}, {"where": np.zeros((0,), dtype=bool)}]
    for extra in env.pick(extras, extras[:1]):
        with _case(sorted(extra)):
            res = env.run(kind, y_true, y_pred, {**opts, **extra}, full=True)
            assert res["none"].shape == ((0,) if kind != "binary" else (0, C))
            assert res["sum"] == 0.0 and res["mean"] == 0.0
            assert res["sum_and_count"] == (0.0, 0.0)


def test_sparse_mean_over_nothing_is_zero(env):
    cases = {
        "all_ignored": (np.full(N, -100), {"ignore_index": -100}),
        "all_masked": (LAB, {"where": np.zeros(N, dtype=bool)}),
        "all_zero_weight": (LAB, {"sample_weight": np.zeros(N)}),
        "zero_class_weight": (
            np.array([1, 1, 2, 2, 1, 2]),
            {"class_weight": np.array([1.0, 0.0, 0.0, 1.0])},
        ),
    }
    for name, (labels, opts) in cases.items():
        with _case(name):
            res = env.run(
                "sparse",
                labels,
                _logits(20, (N, C)),
                {"from_logits": True, **opts},
                reductions=env.pick(REDUCTIONS, ("mean", "sum_and_count")),
            )
            assert res["mean"] == 0.0
            assert res["sum_and_count"][1] == 0.0


def test_categorical_and_binary_mean_over_nothing_is_zero(env):
    reds = env.pick(REDUCTIONS, ("mean", "sum_and_count"))
    t = _soft_targets(21, (N, C))
    env.run(
        "categorical",
        t,
        _logits(22, (N, C)),
        {"from_logits": True, "where": np.zeros(N, dtype=bool)},
        reductions=reds,
    )
    env.run("categorical", t, _probs(22, (N, C)), {"sample_weight": np.zeros(N)}, reductions=reds)
    tb = (np.random.default_rng(23).uniform(size=(N, C)) < 0.5).astype(float)
    res = env.run(
        "binary",
        tb,
        _logits(24, (N, C)),
        {"from_logits": True, "where": np.zeros((N, C), dtype=bool)},
        reductions=reds,
    )
    assert res["mean"] == 0.0


def test_sparse_masked_rows_ignore_nonfinite_logits(env):
    # Invalid entries contribute 0 even when their logits are inf/NaN.
    x = _logits(25, (N, C))
    x[1] = np.nan
    x[4, 2] = np.inf
    labels = LAB_IGN.copy()
    labels[4] = 3
    res = env.run(
        "sparse",
        labels,
        x,
        {
            "from_logits": True,
            "ignore_index": -100,
            "where": np.array([True, True, True, True, False, True]),
        },
        full=True,
    )
    assert np.isfinite(res["mean"]) and res["none"][1] == 0.0 and res["none"][4] == 0.0


# ---------------------------------------------------------------------------------------------
# Categorical
# ---------------------------------------------------------------------------------------------

CATEGORICAL_OPTIONS = {
    "plain": {},
    "class_weight": {"class_weight": CW},
    "sample_weight": {"sample_weight": SW},
    "where": {"where": MASK},
    "label_smoothing": {"label_smoothing": 0.25},
    "weights_and_smoothing": {"class_weight": CW, "sample_weight": SW, "label_smoothing": 0.1},
    "everything": {"class_weight": CW, "sample_weight": SW, "label_smoothing": 0.05, "where": MASK},
}


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_categorical_2d(env, from_logits):
    targets = {"soft": _soft_targets(30, (N, C)), "one_hot": _one_hot(LAB, C)}
    y_pred = _logits(31, (N, C)) if from_logits else _probs(31, (N, C))
    cases = [(o, t) for o in CATEGORICAL_OPTIONS for t in targets]
    for option, target in env.pick(cases, [("everything", "soft"), ("class_weight", "one_hot")]):
        with _case(f"{option}, {target} targets"):
            env.run(
                "categorical",
                targets[target],
                y_pred,
                {"from_logits": from_logits, **CATEGORICAL_OPTIONS[option]},
                full=option == "everything",
            )


def test_categorical_hand_computed_soft_targets_with_class_weights(xp, make, dtype, device):
    # ℓᵢ = −Σ_c w_c q_ic log p_ic and ωᵢ = Σ_c w_c q_ic (unsmoothed).
    q = np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 0.25, 0.75, 0.0]])
    p = np.array([[0.25, 0.5, 0.125, 0.125], [0.5, 0.25, 0.125, 0.125]])
    w = np.array([1.0, 2.0, 4.0, 8.0])
    l0 = -(0.5 * 1.0 * np.log(0.25) + 0.5 * 2.0 * np.log(0.5))
    l1 = -(0.25 * 2.0 * np.log(0.25) + 0.75 * 4.0 * np.log(0.125))
    o0, o1 = 0.5 * 1.0 + 0.5 * 2.0, 0.25 * 2.0 + 0.75 * 4.0
    kw = {"class_weight": make(w)}
    f = xce.categorical_cross_entropy
    assert_close(
        f(make(q), make(p), reduction="none", **kw), [l0, l1], xp=xp, dtype=dtype, device=device
    )
    assert_close(
        f(make(q), make(p), **kw), (l0 + l1) / (o0 + o1), xp=xp, dtype=dtype, device=device
    )
    total, count = f(make(q), make(p), reduction="sum_and_count", **kw)
    assert_close(total, l0 + l1, xp=xp, dtype=dtype, device=device)
    assert_close(count, o0 + o1, xp=xp, dtype=dtype, device=device)


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_categorical_spatial_axis1(env, from_logits):
    shape = (3, 4, 2, 3)
    y_true = _soft_targets(32, shape, axis=1)
    y_pred = _logits(33, shape) if from_logits else _probs(33, shape, axis=1)
    rng = np.random.default_rng(34)
    cases = [
        {},
        {"sample_weight": np.array([1.0, 2.0, 0.5]), "class_weight": CW},
        {"sample_weight": rng.uniform(size=(3, 2)), "label_smoothing": 0.1},
        {"where": rng.uniform(size=(3, 2, 3)) < 0.6, "class_weight": CW, "label_smoothing": 0.2},
    ]
    for i in env.pick(range(len(cases)), [2, 3]):
        with _case(sorted(cases[i])):
            env.run(
                "categorical", y_true, y_pred, {"axis": 1, "from_logits": from_logits, **cases[i]}
            )


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_categorical_sequence_NTC_and_axis0(env, from_logits):
    shape = (3, 5, 4)
    y_true = _soft_targets(35, shape)
    y_pred = _logits(36, shape) if from_logits else _probs(36, shape)
    cases = [
        {"sample_weight": np.array([1.0, 0.0, 2.0])},
        {"where": np.random.default_rng(37).uniform(size=(3, 5)) < 0.5, "class_weight": CW},
    ]
    for i in env.pick(range(len(cases)), [1]):
        with _case(sorted(cases[i])):
            env.run("categorical", y_true, y_pred, {"from_logits": from_logits, **cases[i]})
    # Class axis first.
    y_true0 = _soft_targets(38, (C, N), axis=0)
    y_pred0 = _logits(39, (C, N)) if from_logits else _probs(39, (C, N), axis=0)
    env.run(
        "categorical",
        y_true0,
        y_pred0,
        {"axis": 0, "from_logits": from_logits, "class_weight": CW, "sample_weight": SW},
    )


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_categorical_scalar_sample(env, from_logits):
    y_true = _soft_targets(40, (C,))
    y_pred = _logits(41, (C,)) if from_logits else _probs(41, (C,))
    cases = [{}, {"sample_weight": np.array(0.5), "class_weight": CW}, {"label_smoothing": 0.3}]
    for i in env.pick(range(len(cases)), [1]):
        with _case(sorted(cases[i])):
            env.run("categorical", y_true, y_pred, {"from_logits": from_logits, **cases[i]})


def test_categorical_eps_clipping(env):
    # Probabilities with exact zeros and ones; the clip is to [eps, 1] (default finfo.eps).
    # A zero probability under a zero target contributes 0 whatever eps is.
    p = np.array(
        [[0.0, 0.5, 0.5, 0.0], [1.0, 0.0, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 1.0, 0.0]]
    )
    for eps in env.pick([None, 1e-3, 0.0, 0.25], [None, 0.25]):
        q = np.array(
            [[0.0, 0.5, 0.5, 0.0], [1.0, 0.0, 0.0, 0.0], [0.3, 0.3, 0.2, 0.2], [0.0, 0.0, 1.0, 0.0]]
        )
        if eps != 0.0:
            q[1] = [0.5, 0.0, 0.5, 0.0]  # p = 0 under q > 0: −log(eps)
            q[3] = [0.0, 1.0, 0.0, 0.0]
        with _case(f"eps={eps}"):
            res = env.run("categorical", q, p, {} if eps is None else {"eps": eps}, full=True)
            if eps == 0.0:
                assert res["none"][1] == 0.0 and res["none"][3] == 0.0
            else:
                e = _eps_of(env) if eps is None else eps
                np.testing.assert_allclose(res["none"][3], -np.log(e), rtol=1e-12)


# eps=0.0 on a zero probability under a positive target is −log 0 = +inf; whether NumPy's
# RuntimeWarnings (log 0, 0·inf) escape is not part of the contract.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_categorical_eps_zero_gives_inf_on_zero_probability(env):
    p = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
    q = np.array([[0.5, 0.0, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0], [0.3, 0.3, 0.2, 0.2]])
    res = env.run("categorical", q, p, {"eps": 0.0}, full=True)
    assert res["none"][0] == np.inf and res["none"][1] == np.inf
    assert np.isfinite(res["none"][2])


def test_sparse_eps_clipping(env):
    p = np.array([[0.0, 0.5, 0.5, 0.0], [1.0, 0.0, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
    labels = np.array([0, 0, 2])
    for eps in env.pick([None, 1e-4], [None]):
        with _case(f"eps={eps}"):
            opts = {} if eps is None else {"eps": eps}
            env.run("sparse", labels, p, {**opts, "class_weight": CW}, full=True)


def test_categorical_probabilities_not_renormalised(env):
    # Rows summing to 0.5, passed on purpose (validate=False; validate="auto" refuses them,
    # see test_habits.py): −log p is taken as given, no division by the row sum.
    p = 0.5 * _probs(42, (N, C))
    q = _soft_targets(43, (N, C))
    t, x = env.make(q), env.make(p)
    got = xce.categorical_cross_entropy(t, x, reduction="sum", validate=False)
    p_seen, q_seen = _seen(x), _seen(t)
    name = dtype_name(env.xp, env.dtype)
    expected = ref.categorical_cross_entropy(q_seen, p_seen, reduction="sum", compute_dtype=name)
    _check(got, expected, xp=env.xp, dtype=env.dtype, device=env.device)
    renormalised = ref.categorical_cross_entropy(q_seen, 2.0 * p_seen, reduction="sum")
    assert abs(expected - renormalised - np.log(2.0) * q_seen.sum()) < 1e-6


def test_categorical_logits_with_neg_inf_on_zero_targets(env):
    x = _logits(44, (N, C))
    x[0, 1] = -np.inf
    x[2, 0] = x[2, 3] = -np.inf
    q = _soft_targets(45, (N, C))
    q[0] = [0.5, 0.0, 0.25, 0.25]
    q[2] = [0.0, 0.5, 0.5, 0.0]
    res = env.run("categorical", q, x, {"from_logits": True, "class_weight": CW})
    assert np.all(np.isfinite(res["none"]))


# ---------------------------------------------------------------------------------------------
# Binary
# ---------------------------------------------------------------------------------------------

K = 4
PW = np.array([1.0, 2.5, 0.5, 4.0])
SW_NK = np.random.default_rng(50).uniform(0.0, 2.0, size=(N, K))
MASK_NK = np.random.default_rng(51).uniform(size=(N, K)) < 0.7

BINARY_OPTIONS = {
    "plain": {},
    "pos_weight_float": {"pos_weight": 2.5},
    "pos_weight_int": {"pos_weight": 3},
    "pos_weight_0d": {"pos_weight": np.array(0.5)},
    "pos_weight_K": {"pos_weight": PW},
    "sample_weight_N": {"sample_weight": SW},
    "sample_weight_NK": {"sample_weight": SW_NK},
    "sample_weight_0d": {"sample_weight": np.array(1.5)},
    "where_N": {"where": MASK},
    "where_NK": {"where": MASK_NK},
    "where_0d": {"where": np.array(True)},
    "label_smoothing": {"label_smoothing": 0.2},
    "everything": {"pos_weight": PW, "sample_weight": SW, "where": MASK_NK, "label_smoothing": 0.1},
}


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_binary_multilabel(env, from_logits):
    rng = np.random.default_rng(52)
    soft = rng.uniform(size=(N, K))
    targets = {"soft": soft, "hard": (soft < 0.5).astype(np.float64)}
    y_pred = _logits(53, (N, K), scale=3.0)
    if not from_logits:
        y_pred = ref.sigmoid(y_pred)
    cases = [(o, t) for o in BINARY_OPTIONS for t in targets]
    lazy = [("everything", "hard"), ("pos_weight_0d", "soft"), ("where_N", "soft")]
    for option, target in env.pick(cases, lazy):
        with _case(f"{option}, {target} targets"):
            env.run(
                "binary",
                targets[target],
                y_pred,
                {"from_logits": from_logits, **BINARY_OPTIONS[option]},
                full=option == "everything",
            )


def test_binary_hand_computed(xp, make, dtype, device):
    y = np.array([1.0, 0.0, 1.0, 0.0])
    p = np.array([0.8, 0.3, 0.5, 0.9])
    per = -np.array([np.log(0.8), np.log(0.7), np.log(0.5), np.log(0.1)])
    f = xce.binary_cross_entropy
    assert_close(f(make(y), make(p), reduction="none"), per, xp=xp, dtype=dtype, device=device)
    assert_close(f(make(y), make(p)), per.mean(), xp=xp, dtype=dtype, device=device)
    # pos_weight multiplies the positive term only.
    per_pw = per * np.array([2.0, 1.0, 2.0, 1.0])
    assert_close(
        f(make(y), make(p), pos_weight=2.0, reduction="sum"),
        per_pw.sum(),
        xp=xp,
        dtype=dtype,
        device=device,
    )
    # Logits: softplus(x) for y = 0, softplus(−x) for y = 1.
    x = np.array([2.0, -1.0, 0.0, 3.0])
    per_x = np.array(
        [np.log1p(np.exp(-2.0)), np.log1p(np.exp(-1.0)), np.log(2.0), np.log1p(np.exp(3.0))]
    )
    assert_close(
        f(make(y), make(x), from_logits=True, reduction="none"),
        per_x,
        xp=xp,
        dtype=dtype,
        device=device,
    )


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_binary_shapes(env, from_logits):
    rng = np.random.default_rng(54)

    def pred(shape):
        x = rng.normal(scale=2.0, size=shape)
        return x if from_logits else ref.sigmoid(x)

    y1 = (rng.uniform(size=(N,)) < 0.5).astype(float)
    p1 = pred((N,))
    y3 = rng.uniform(size=(3, 5, K))
    p3 = pred((3, 5, K))
    p0 = pred(())
    cases = [
        # 1-D (N,): pos_weight as a vector has length y_pred.shape[-1] = N
        ("1d", y1, p1, {}),
        ("1d", y1, p1, {"sample_weight": SW}),
        ("1d", y1, p1, {"where": MASK, "pos_weight": 2.0}),
        ("1d", y1, p1, {"pos_weight": np.linspace(0.5, 3.0, N)}),
        # 0-d
        ("0d", np.array(1.0), p0, {}),
        ("0d", np.array(0.0), p0, {"sample_weight": np.array(2.0)}),
        ("0d", np.array(1.0), p0, {"where": np.array(True), "pos_weight": 1.5}),
        # (N, T, K) with prefix-broadcast weights and masks
        ("NTK", y3, p3, {"sample_weight": np.array([1.0, 0.5, 2.0])}),
        ("NTK", y3, p3, {"sample_weight": rng.uniform(size=(3, 5)), "pos_weight": PW}),
        ("NTK", y3, p3, {"where": rng.uniform(size=(3, 5)) < 0.5, "label_smoothing": 0.1}),
    ]
    for i in env.pick(range(len(cases)), [1, 6, 8]):
        label, y, p, opts = cases[i]
        with _case(f"{label} {sorted(opts)}"):
            env.run("binary", y, p, {"from_logits": from_logits, **opts})


def test_binary_eps_clipping(env):
    # Probabilities 0 and 1 exactly are clipped to [eps, 1 − eps].
    y = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.5, 0.3]])
    p = np.array([[0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.05, 0.97]])
    for eps in env.pick([None, 1e-3, 0.1], [None]):
        with _case(f"eps={eps}"):
            res = env.run(
                "binary",
                y,
                p,
                {"pos_weight": 2.0, **({} if eps is None else {"eps": eps})},
                full=True,
            )
            e = _eps_of(env) if eps is None else eps
            np.testing.assert_allclose(res["none"][0, 0], -2.0 * np.log(e), rtol=1e-12)
            np.testing.assert_allclose(res["none"][0, 1], -np.log(e), rtol=1e-12)


def test_binary_eps_zero_keeps_exact_probabilities(env):
    y = np.array([1.0, 0.0, 0.25, 0.75])
    p = np.array([0.999, 0.001, 0.5, 0.25])
    env.run("binary", y, p, {"eps": 0.0})


def test_binary_infinite_logits_with_matching_targets(env):
    y = np.array([1.0, 0.0, 1.0, 0.0])
    x = np.array([np.inf, -np.inf, 2.0, -3.0])
    res = env.run("binary", y, x, {"from_logits": True, "pos_weight": PW})
    assert res["none"][0] == 0.0 and res["none"][1] == 0.0


# ---------------------------------------------------------------------------------------------
# Reduced values are 0-d arrays of the caller's array type
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "sample_weight"])
def test_reductions_are_0d_arrays_of_the_callers_type(loss, xp, make, dtype, device, weighted):
    """The "sum", "mean" and both "sum_and_count" values are 0-d arrays of the input's type,
    with and without the gradient, for every loss of the table: NumPy's own sum returns a
    scalar, and the sum of a NumPy loss was one while its mean was a 0-d array."""
    fn, ref_fn = loss.call, loss.expected
    logits = _logits(3, (6, 4))
    targets = _labels(4, (6,), 4) if loss.target == "labels" else _probs(4, (6, 4))
    if loss.target == "binary":
        targets = (targets > 0.25).astype(np.float64)
    x = make(logits)
    y = loss.make_y_true(make, targets)
    options = {"from_logits": True}
    if weighted:
        options["sample_weight"] = np.linspace(0.5, 1.5, 6)
    for reduction in ("sum", "mean", "sum_and_count"):
        call = {**options, "reduction": reduction}
        expected = ref_fn(targets, logits, **call)
        if weighted:
            call["sample_weight"] = make(options["sample_weight"])
        value = fn(y, x, **call)
        with_grad, _ = xce.value_and_grad(loss.fn)(y, x, **loss.hyper, **call)
        for result in (value, with_grad):
            parts = result if reduction == "sum_and_count" else (result,)
            for part in parts:
                assert type(part) is type(x), (reduction, type(part))
                assert part.shape == ()
            wanted = expected if reduction == "sum_and_count" else (expected,)
            for part, value in zip(parts, wanted, strict=True):
                assert_close(part, value, xp=xp, dtype=dtype, device=device)
