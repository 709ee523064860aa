"""``xce.compat.torch``'s loss classes against ``torch.nn``'s, with every backend's arrays.

Hypothesis draws the class, its constructor arguments (weights, ``ignore_index``, label
smoothing, ``pos_weight``, ``log_target``, ``full``, reductions, the deprecated
``size_average`` / ``reduce``) and the data; the real module gets the same numbers as tensors.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from compat_helpers import batch_sizes, class_counts, explore, float_arrays, make_env, softmax
from hypothesis import strategies as st

from xce.compat import torch as compat


@pytest.fixture
def env(backend, xp, device, dtype):
    return make_env(backend, xp, device, dtype)


def _pair(env, torch, data, kind="float"):
    """The same numbers as (backend array, torch tensor)."""
    if kind == "int":
        return env.array(data, "int"), torch.as_tensor(np.asarray(data, dtype=np.int64))
    return env.array(data), torch.as_tensor(env.rounded(data).copy())


@st.composite
def problems(draw, env):
    n, c = draw(batch_sizes(env)), draw(class_counts(env))
    name = draw(st.sampled_from(["CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss",
                                 "KLDivLoss", "PoissonNLLLoss"]))  # fmt: skip
    x = draw(float_arrays((n, c), -5, 5))
    options, target, kind = {}, None, "float"
    weight = draw(st.none() | float_arrays((c,), 0.1, 3.0))
    if name in ("CrossEntropyLoss", "NLLLoss"):
        labels = np.asarray(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
        if draw(st.booleans()):
            labels[0] = -1
            options["ignore_index"] = -1
        probabilities = name == "CrossEntropyLoss" and draw(st.booleans())
        target = softmax(draw(float_arrays((n, c)))) if probabilities else labels
        kind = "float" if probabilities else "int"
        options["weight"] = weight
        if name == "CrossEntropyLoss":
            options["label_smoothing"] = draw(st.sampled_from([0.0, 0.2]))
        if name == "NLLLoss":
            x = np.log(softmax(x))
    elif name in ("BCELoss", "BCEWithLogitsLoss"):
        target = np.round(softmax(draw(float_arrays((n, c)))) * 2) / 2
        options["weight"] = weight
        if name == "BCELoss":
            x = 1 / (1 + np.exp(-x))
        else:
            options["pos_weight"] = draw(st.none() | float_arrays((c,), 0.1, 3.0))
    elif name == "KLDivLoss":
        x = np.log(softmax(x))
        options["log_target"] = draw(st.booleans())
        target = softmax(draw(float_arrays((n, c))))
        target = np.log(target) if options["log_target"] else target
    else:
        target = np.round(np.abs(draw(float_arrays((n, c)))))
        options["full"] = draw(st.booleans())
    reductions = ["mean", "sum", "none"] + (["batchmean"] if name == "KLDivLoss" else [])
    legacy = draw(st.sampled_from([None, (False, None), (None, False)]))
    return name, x, target, kind, options, draw(st.sampled_from(reductions)), legacy


def test_loss_modules(env, torch_peer):
    torch = torch_peer.torch

    def case(problem):
        name, x, target, kind, options, reduction, legacy = problem
        mine, theirs = {"reduction": reduction}, {"reduction": reduction}
        if legacy is not None:
            mine["size_average"], mine["reduce"] = theirs["size_average"], theirs["reduce"] = legacy
        for key, value in options.items():
            if value is None or isinstance(value, (bool, int, float)):
                mine[key] = theirs[key] = value
            else:
                mine[key], theirs[key] = _pair(env, torch, value)
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            ours = getattr(compat, name)(**mine)
            real = getattr(torch.nn, name)(**theirs)
        assert len(said) == (2 if legacy is not None else 0)  # the deprecation, both sides
        assert ours.reduction == real.reduction
        (ex, tx), (et, tt) = _pair(env, torch, x), _pair(env, torch, target, kind)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # KLDivLoss's "mean" warning, on both sides
            env.check(ours(ex, et), real(tx, tt), scale=10)
            env.check(ours.forward(ex, et), real.forward(tx, tt), scale=10)

    explore(env, problems(env), case, examples=30)


def test_modules_import_no_framework():
    import subprocess
    import sys

    code = ("import sys, xce.compat.torch as t, xce.compat.keras as k; t.CrossEntropyLoss(); "
            "k.BinaryCrossentropy(); assert 'torch' not in sys.modules and 'keras' not in "
            "sys.modules")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)
