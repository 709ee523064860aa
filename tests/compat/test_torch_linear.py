"""``xce.compat.torch.linear_cross_entropy`` against PyTorch's
``torch.nn.functional.linear_cross_entropy``, every backend's arrays as input: values for
each option and reduction, with PyTorch's reference path and its chunked one (``options``);
gradients through torch.autograd and jax.grad; the options honoured; the divergences."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import assert_close, case, is_lazy, seen

from xce.compat import torch as compat

N, D, C = 5, 3, 4


def _data():
    rng = np.random.default_rng(3)
    return {
        "input": rng.normal(size=(N, D)),
        "linear_weight": rng.normal(size=(C, D)),
        "target": rng.integers(0, C, size=N),
        "linear_bias": rng.normal(size=C),
        "weight": rng.uniform(0.3, 2.0, size=C),
    }


CASES = {
    "plain": {},
    "bias": {"linear_bias": True},
    "weight": {"weight": True},
    "ignored": {"ignore": True},
    "smoothing": {"label_smoothing": 0.2},
    "all": {"linear_bias": True, "weight": True, "ignore": True, "label_smoothing": 0.1},
    "all_ignored": {"all_ignored": True},
}


def _arrays(case_options, data, make):
    target = data["target"].copy()
    if case_options.get("ignore"):
        target[1] = -100
    if case_options.get("all_ignored"):
        target[:] = -100
    ours = {"input": make(data["input"]), "linear_weight": make(data["linear_weight"]),
            "target": make(target, "int64")}  # fmt: skip
    for name in ("linear_bias", "weight"):
        if case_options.get(name):
            ours[name] = make(data[name])
    extra = {"label_smoothing": case_options.get("label_smoothing", 0.0)}
    return ours, extra


def _peer_call(F, ours, extra, reduction, options):
    torch = F.torch
    theirs = {k: torch.as_tensor(seen(v)) if k != "target" else torch.as_tensor(seen(v)).long()
              for k, v in ours.items()}  # fmt: skip
    with warnings.catch_warnings():
        # PyTorch warns that its chunked path leaves label smoothing to the reference path.
        warnings.simplefilter("ignore")
        return F.linear_cross_entropy(
            theirs.pop("input"), theirs.pop("linear_weight"), theirs.pop("target"), **theirs,
            **extra, reduction=reduction, options=options,
        )  # fmt: skip


def test_values_against_torch(torch_peer, backend, xp, make, dtype, device):
    F = torch_peer
    chunked = F.torch.nn.LinearCrossEntropyOptions(batch_chunk_size=2, chunking_method=None)
    lazy = is_lazy(backend)  # a compilation / graph per call: the cases that cover the rest
    for name, case_options in CASES.items():
        if lazy and name not in ("all", "all_ignored"):
            continue
        ours, extra = _arrays(case_options, _data(), make)
        for reduction in ("mean", "none") if lazy else ("mean", "sum", "none"):
            for options in (chunked,) if lazy else (None, chunked):
                with case(f"{name}, {reduction}, options={options is not None}"):
                    got = compat.linear_cross_entropy(
                        ours["input"], ours["linear_weight"], ours["target"],
                        **{k: v for k, v in ours.items() if k in ("linear_bias", "weight")},
                        **extra, reduction=reduction, options=options,
                    )  # fmt: skip
                    want = _peer_call(F, ours, extra, reduction, options)
                    assert_close(got, want.numpy(), xp=xp, dtype=dtype, device=device)


def test_unbatched(torch_peer, backend, xp, make, dtype, device):
    data = _data()
    x, w, y = make(data["input"][0]), make(data["linear_weight"]), make(data["target"][0], "int64")
    for reduction in ("mean", "none"):
        got = compat.linear_cross_entropy(x, w, y, reduction=reduction)
        want = torch_peer.linear_cross_entropy(
            torch_peer.torch.as_tensor(seen(x)), torch_peer.torch.as_tensor(seen(w)),
            torch_peer.torch.as_tensor(data["target"][0]), reduction=reduction,
        )  # fmt: skip
        assert_close(got, want.numpy(), xp=xp, dtype=dtype, device=device)


def test_gradients_against_torch(torch_peer, backend, xp, make, dtype, device):
    """torch.autograd (a second backward included) or jax.grad through the twin equal
    PyTorch's autograd through its chunked function."""
    if backend not in ("torch", "jax"):
        pytest.skip(f"{backend}: autodiff is torch's and JAX's")
    torch = torch_peer.torch
    ours, extra = _arrays(CASES["all"], _data(), make)
    leaves = ("input", "linear_weight", "linear_bias")
    peer = {k: torch.as_tensor(seen(v)).requires_grad_(k in leaves) for k, v in ours.items()}
    peer["target"] = peer["target"].long()
    options = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=2, chunking_method=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = torch_peer.linear_cross_entropy(
            peer["input"], peer["linear_weight"], peer["target"], linear_bias=peer["linear_bias"],
            weight=peer["weight"], **extra, options=options,
        )  # fmt: skip
    want = torch.autograd.grad(loss, [peer[k] for k in leaves])

    def twin(x, w, b):
        return compat.linear_cross_entropy(
            x, w, ours["target"], linear_bias=b, weight=ours["weight"], **extra, options=options
        )

    if backend == "jax":
        import jax

        got = jax.grad(twin, argnums=(0, 1, 2))(*(ours[k] for k in leaves))
    else:
        args = [ours[k].clone().requires_grad_(True) for k in leaves]
        value = twin(*args)
        got = torch.autograd.grad(value, args, retain_graph=True)
        again = torch.autograd.grad(value, args)  # retain_graph: the saved gradients stay
        for g, h in zip(got, again, strict=True):
            assert torch.equal(g, h)
    for g, e in zip(got, want, strict=True):
        assert_close(g, e.detach().numpy(), xp=xp, dtype=dtype, device=device)


def test_options_honoured(backend, xp, make, dtype, device):
    class Options:  # the attributes of torch.nn.LinearCrossEntropyOptions
        batch_chunk_size = None
        chunking_method = "aspect_ratio:2"

    data = _data()
    x, w, y = make(data["input"]), make(data["linear_weight"]), make(data["target"], "int64")
    plain = compat.linear_cross_entropy(x, w, y)
    assert_close(compat.linear_cross_entropy(x, w, y, options=Options()), seen(plain), xp=xp,
                 dtype=dtype, device=device)  # fmt: skip
    both = Options()
    both.batch_chunk_size = 2
    with pytest.raises(ValueError, match="batch_chunk_size"):
        compat.linear_cross_entropy(x, w, y, options=both)


def test_divergences(backend, xp, make, dtype, device):
    data = _data()
    x, w = make(data["input"]), make(data["linear_weight"])
    with pytest.raises(ValueError, match="probabilities"):
        compat.linear_cross_entropy(x, w, make(np.full((N, C), 1 / C)))
    with pytest.raises(ValueError, match="input must be"):
        compat.linear_cross_entropy(make(np.zeros((2, N, D))), w, make(np.zeros((2, N)), "int64"))
    with pytest.raises(ValueError, match="linear_weight"):
        compat.linear_cross_entropy(x, make(np.zeros((C, 2, D))), make(data["target"], "int64"))
