"""``xce.torch`` loss modules: against the xce functions, torch's own losses, and in training.

Runs in the torch sessions (``backend`` torch, or torch_cuda on a GPU); elsewhere each test
skips with the backend's name. Every module equals its function with the same options; where
torch has the loss (``nn.CrossEntropyLoss``, ``nn.NLLLoss``, ``nn.BCEWithLogitsLoss``,
``nn.BCELoss``) the module equals it, reductions included; a few SGD steps on a tiny MLP give
the parameters torch's loss gives; the weights are buffers that follow ``.to()``; and a model
using a module compiles with ``torch.compile`` where the compiler works here.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

import xce
from xce.keras import LOSS_FUNCTIONS

TORCH_BACKENDS = ("torch", "torch_cuda")
CLASSES = ("Binary", "Categorical", "SparseCategorical", "BinaryFocal", "CategoricalFocal", "Poly1")


@pytest.fixture
def dev(backend, request):
    """The torch device under test; a skip naming the backend outside the torch sessions."""
    if backend not in TORCH_BACKENDS:
        pytest.skip(f"xce.torch modules run in the torch sessions, not under backend {backend}")
    return request.getfixturevalue("device")


@pytest.fixture
def torch(dev):
    import torch

    return torch


def _module(name, **options):
    from xce import torch as xt

    return getattr(xt, f"{name}CrossEntropy")(**options)


def _problem(torch, name, dev, *, seed=0, n=6, c=4):
    """(input, target, options) for the module ``name``: logits, and targets of its kind."""
    rng = np.random.default_rng(seed)
    logits = torch.tensor(rng.normal(size=(n, c)) * 2, dtype=torch.float64, device=dev)
    labels = rng.integers(0, c, size=n)
    if name.startswith("Binary"):
        target = torch.tensor(rng.random((n, c)) < 0.5, dtype=torch.float64, device=dev)
        extra = {"pos_weight": [2.0, 0.5, 1.0, 3.0]} if name == "Binary" else {"alpha": 0.3}
    elif name == "SparseCategorical":
        target = torch.tensor(labels, device=dev)
        extra = {"class_weight": [1.0, 2.0, 0.5, 1.5], "ignore_index": 1}
    else:
        target = torch.tensor(np.eye(c)[labels], dtype=torch.float64, device=dev)
        extra = (
            {"alpha": [0.1, 0.2, 0.3, 0.4]} if "Focal" in name else {"class_weight": [1, 2, 3, 4]}
        )
    return logits, target, {"from_logits": True, "label_smoothing": 0.1, **extra}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", CLASSES)
def test_module_equals_its_function(torch, dev, name, reduction):
    logits, target, options = _problem(torch, name, dev)
    options = {  # float64 tensors: lists would become float32 buffers (torch's default dtype)
        key: torch.tensor(value, dtype=torch.float64, device=dev)
        if isinstance(value, list)
        else value
        for key, value in options.items()
    }
    module = _module(name, reduction=reduction, **options)
    weights = torch.linspace(0.5, 2.0, logits.shape[0], dtype=torch.float64, device=dev)
    got = module(logits, target, sample_weight=weights)
    function = getattr(xce, LOSS_FUNCTIONS[f"{name}CrossEntropy"])
    expected = function(target, logits, sample_weight=weights, reduction=reduction, **options)
    assert got.dtype == torch.float64 and got.device == logits.device
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-13)


def _torch_pairs(torch, dev):
    """(name, module options, torch loss, input, target): the losses torch has too."""
    nn = torch.nn
    rng = np.random.default_rng(1)
    f64 = {"dtype": torch.float64, "device": dev}
    logits = torch.tensor(rng.normal(size=(8, 5)) * 3, **f64)
    labels = torch.tensor(rng.integers(0, 5, size=8), device=dev)
    image = torch.tensor(rng.normal(size=(3, 5, 4, 2)), **f64)
    pixels = torch.tensor(rng.integers(0, 5, size=(3, 4, 2)), device=dev)
    soft = torch.softmax(torch.tensor(rng.normal(size=(8, 5)), **f64), dim=-1)
    weight = torch.tensor([1.0, 2.0, 0.5, 1.5, 3.0], **f64)
    multi = torch.tensor(rng.random((8, 3)) < 0.5, **f64)
    pos = torch.tensor([2.0, 0.5, 1.0], **f64)
    probabilities = torch.sigmoid(logits[:, :3])
    sparse = {"from_logits": True, "class_weight": weight, "ignore_index": 2}
    return [
        ("SparseCategorical", {**sparse, "label_smoothing": 0.1},
         lambda r: nn.CrossEntropyLoss(weight=weight, ignore_index=2, label_smoothing=0.1,
                                       reduction=r), logits, labels),
        ("SparseCategorical", {"from_logits": True, "axis": 1},
         lambda r: nn.CrossEntropyLoss(reduction=r), image, pixels),
        ("SparseCategorical", {"class_weight": weight},
         lambda r: (lambda p, y: nn.NLLLoss(weight=weight, reduction=r)(torch.log(p), y)),
         torch.softmax(logits, dim=-1), labels),
        ("Categorical", {"from_logits": True, "label_smoothing": 0.2},
         lambda r: nn.CrossEntropyLoss(label_smoothing=0.2, reduction=r), logits, soft),
        ("Poly1", {"from_logits": True, "epsilon": 0.0},
         lambda r: nn.CrossEntropyLoss(reduction=r), logits, soft),
        ("CategoricalFocal", {"from_logits": True, "gamma": 0.0},
         lambda r: nn.CrossEntropyLoss(reduction=r), logits, soft),
        ("Binary", {"from_logits": True, "pos_weight": pos},
         lambda r: nn.BCEWithLogitsLoss(pos_weight=pos, reduction=r), logits[:, :3], multi),
        ("Binary", {}, lambda r: nn.BCELoss(reduction=r), probabilities, multi),
        ("BinaryFocal", {"from_logits": True, "gamma": 0.0},
         lambda r: nn.BCEWithLogitsLoss(reduction=r), logits[:, :3], multi),
    ]  # fmt: skip


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_modules_equal_torch_losses(torch, dev, reduction):
    for name, options, torch_loss, input, target in _torch_pairs(torch, dev):
        ours = _module(name, reduction=reduction, **options).to(dev)(input, target)
        theirs = torch_loss(reduction)(input, target)
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12, msg=f"{name} {options}")


def test_weights_are_buffers_that_follow_the_module(torch, dev):
    module = _module("SparseCategorical", from_logits=True, class_weight=[1, 2, 3])
    assert module.class_weight.dtype == torch.get_default_dtype()
    assert set(module.state_dict()) == {"class_weight"}
    module = module.to(dev, torch.float64)
    assert module.class_weight.device.type == torch.device(dev).type
    assert module.class_weight.dtype == torch.float64
    binary = _module("BinaryFocal", alpha=[0.2, 0.8], from_logits=True).to(dev)
    assert set(binary.state_dict()) == {"alpha"}
    assert "from_logits=True" in repr(binary)


def test_options_and_reduction_are_checked(torch):
    with pytest.raises(TypeError, match="weight= is class_weight"):
        _module("SparseCategorical", weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="reduction='batchmean' is not supported"):
        _module("Categorical", reduction="batchmean")
    with pytest.raises(TypeError, match=r"takes no return_parts=: .*LossParts"):
        _module("SparseCategorical", return_parts=True)


@pytest.mark.parametrize("name", ["SparseCategorical", "Categorical"])
def test_softcap_and_z_loss_are_module_options(torch, dev, name):
    logits, target, _ = _problem(torch, name, dev)
    options = {"from_logits": True, "softcap": 2.0, "z_loss": 1e-2}
    module = _module(name, **options)
    assert "softcap=2.0, z_loss=0.01" in repr(module)
    logits.requires_grad_(True)
    loss = module(logits, target)
    loss.backward()
    function = getattr(xce, LOSS_FUNCTIONS[f"{name}CrossEntropy"])
    value, grad = xce.value_and_grad(function)(target, logits.detach(), **options)
    plain = function(target, logits.detach(), from_logits=True)
    assert abs(float(value) - float(plain)) > 1e-3  # the options change the loss
    np.testing.assert_allclose(float(loss.detach()), float(value), rtol=1e-12)
    np.testing.assert_allclose(logits.grad.cpu().numpy(), grad.cpu().numpy(), rtol=1e-9)


def _train(torch, dev, criterion, x, y, *, units, steps=5):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 16), torch.nn.Tanh(), torch.nn.Linear(16, units)
    ).to(dev, torch.float64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(steps):
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
    return [p.detach() for p in model.parameters()]


@pytest.mark.parametrize("kind", ["sparse", "binary"])
def test_training_matches_torch_loss(torch, dev, kind):
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.normal(size=(32, 6)), dtype=torch.float64, device=dev)
    if kind == "sparse":
        y = torch.tensor(rng.integers(0, 4, size=32), device=dev)
        weight = torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=torch.float64, device=dev)
        ours = _module("SparseCategorical", from_logits=True, class_weight=weight)
        theirs = torch.nn.CrossEntropyLoss(weight=weight)
        units = 4
    else:
        y = torch.tensor(rng.random((32, 3)) < 0.5, dtype=torch.float64, device=dev)
        pos = torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64, device=dev)
        ours = _module("Binary", from_logits=True, pos_weight=pos)
        theirs = torch.nn.BCEWithLogitsLoss(pos_weight=pos)
        units = 3
    trained = _train(torch, dev, ours, x, y, units=units)
    for a, b in zip(trained, _train(torch, dev, theirs, x, y, units=units), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    start = _train(torch, dev, ours, x, y, units=units, steps=0)
    assert not torch.equal(trained[0], start[0])  # the loop did train


def test_torch_compile_of_a_model_with_a_module(torch, dev):
    """Dynamo traces the model and the module (graph breaks where xce reads values), and
    AOTAutograd differentiates it; the aot_eager backend skips Inductor's C++ build, which
    takes about a minute here and tests the compiler rather than xce."""
    model = torch.nn.Linear(6, 4).to(dev, torch.float64)
    criterion = _module("SparseCategorical", from_logits=True, label_smoothing=0.1)

    def step(x, y):
        return criterion(model(x), y)

    x = torch.randn(8, 6, dtype=torch.float64, device=dev)
    y = torch.arange(8, device=dev) % 4
    expected = step(x, y)
    (expected_grad,) = torch.autograd.grad(expected, model.weight)
    try:
        with warnings.catch_warnings():  # the compiler's chatter (errors under this suite)
            warnings.simplefilter("ignore")
            compiled = torch.compile(step, backend="aot_eager")(x, y)
            (grad,) = torch.autograd.grad(compiled, model.weight)
    except Exception as exc:  # the compiler's own failure on this machine
        pytest.skip(f"torch.compile does not work here: {type(exc).__name__}: {exc}"[:300])
    torch.testing.assert_close(compiled, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_ctc_module_equals_torch_ctc_loss(torch, dev, reduction):
    """Batch-major input, torch's argument names; torch's nn.CTCLoss (time-major) gives the
    same values and gradients ("mean" differs by design: torch divides by target lengths)."""
    from xce import torch as xt

    rng = np.random.default_rng(5)
    logits = torch.tensor(rng.normal(size=(3, 6, 4)), device=dev, requires_grad=True)
    target = torch.tensor([[1, 2, 2], [3, 1, 0], [2, 0, 0]], device=dev)
    input_lengths = torch.tensor([6, 5, 4], device=dev)
    target_lengths = torch.tensor([3, 2, 1], device=dev)
    module = xt.CTC(from_logits=True, reduction=reduction)
    ours = module(logits, target, input_lengths, target_lengths)
    theirs = torch.nn.CTCLoss(reduction=reduction)(
        torch.log_softmax(logits, -1).transpose(0, 1), target, input_lengths, target_lengths
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    (grad,) = torch.autograd.grad(ours.sum(), logits)
    (expected,) = torch.autograd.grad(theirs.sum(), logits)
    torch.testing.assert_close(grad, expected, rtol=1e-9, atol=1e-12)
    assert "ctc_loss" in type(module).__doc__


def test_importing_xce_torch_imports_no_torch():
    code = "import sys, xce, xce.torch; print(sorted({'keras', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)  # fmt: skip
    assert out.stdout.strip() == "[]"
