"""Autodiff with respect to the targets and the weights (issue 23), against the reference.

Every loss is linear in its target: d loss / d y_c = -log p_c (times its weights), also where
y_c is exactly 0 or 1. A zero coefficient may hide an infinite -log p (0·inf = 0), but must
not hide the derivative with respect to the coefficient where -log p is finite. Checked by
torch autograd (fast paths on, and the generic kernels with fast paths off: the two paths
must agree, class weights that require grad included) and ``jax.grad``, against float64
central differences of the NumPy reference, for every loss of the table.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from helpers import central_difference

import xce
from xce._fast import _config

N, C = 3, 3
X = np.array([[1.0, 2.0, 0.5], [1.5, -2.0, 0.0], [-0.5, 0.25, 3.0]])
SOFT = np.array([[0.0, 1.0, 0.0], [0.25, 0.0, 0.75], [0.2, 0.3, 0.5]])  # exact 0s, a 1
BINARY = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.3], [0.6, 0.0, 1.0]])
LABELS = np.array([1, 2, 0])
SAMPLE_WEIGHT = np.array([1.0, 0.5, 2.0])
CLASS_WEIGHT = np.array([0.5, 2.0, 1.0])

# loss name: (targets, the weight option it takes, its extra hyperparameters)
LOSSES = {
    "binary_cross_entropy": (BINARY, "pos_weight", {}),
    "categorical_cross_entropy": (SOFT, "class_weight", {}),
    "sparse_categorical_cross_entropy": (LABELS, "class_weight", {}),
    "binary_focal_cross_entropy": (BINARY, None, {"gamma": 1.5, "alpha": 0.25}),
    "categorical_focal_cross_entropy": (SOFT, None, {"gamma": 1.5}),
    "poly1_cross_entropy": (SOFT, "class_weight", {"epsilon": 1.5}),
}


def _inputs(from_logits):
    return X if from_logits else ref.softmax(X)


def _reference_grads(name, from_logits):
    """Central differences of the reference w.r.t. targets (not labels) and each weight."""
    targets, weight_name, hyper = LOSSES[name]
    arrays = {"sample_weight": SAMPLE_WEIGHT}
    if weight_name is not None:
        arrays[weight_name] = CLASS_WEIGHT
    if targets.dtype.kind == "f":
        arrays["y_true"] = targets
    x = _inputs(from_logits)

    def total(**changed):
        values = {**arrays, **changed}
        y = values.pop("y_true", targets)
        return float(getattr(ref, name)(y, x, from_logits=from_logits, **values, **hyper))

    return {key: central_difference(lambda a, k=key: total(**{k: a}), value)
            for key, value in arrays.items()}  # fmt: skip


def _torch_grads(name, from_logits, x_requires_grad):
    import torch

    targets, weight_name, hyper = LOSSES[name]

    def tensor(a, grad=True):
        return torch.tensor(a, dtype=torch.float64, requires_grad=grad)

    arrays = {"sample_weight": tensor(SAMPLE_WEIGHT)}
    if weight_name is not None:
        arrays[weight_name] = tensor(CLASS_WEIGHT)
    y = torch.tensor(targets) if targets.dtype.kind == "i" else tensor(targets)
    x = tensor(_inputs(from_logits), grad=x_requires_grad)
    loss = getattr(xce, name)(y, x, from_logits=from_logits, **arrays, **hyper)
    loss.backward()
    if y.is_floating_point():
        arrays["y_true"] = y
    return {key: a.grad.numpy() for key, a in arrays.items()}


def _jax_grads(name, from_logits):
    import jax
    import jax.numpy as jnp

    targets, weight_name, hyper = LOSSES[name]
    arrays = {"sample_weight": jnp.asarray(SAMPLE_WEIGHT)}
    if weight_name is not None:
        arrays[weight_name] = jnp.asarray(CLASS_WEIGHT)
    if targets.dtype.kind == "f":
        arrays["y_true"] = jnp.asarray(targets)
    labels = jnp.asarray(targets)
    x = jnp.asarray(_inputs(from_logits))

    def total(values):
        values = dict(values)
        y = values.pop("y_true", labels)
        return getattr(xce, name)(y, x, from_logits=from_logits, **values, **hyper)

    return {key: np.asarray(g) for key, g in jax.grad(total)(arrays).items()}


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probabilities"])
@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "generic"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients_with_respect_to_targets_and_weights(
    backend, xp, name, fast_paths, from_logits, monkeypatch
):
    if backend not in ("torch", "jax"):
        pytest.skip("autodiff backends only")
    monkeypatch.setattr(_config, "FAST_PATHS_ENABLED", fast_paths)
    expected = _reference_grads(name, from_logits)
    if backend == "jax":
        runs = {"x constant": _jax_grads(name, from_logits)}
    else:
        runs = {f"x requires grad: {flag}": _torch_grads(name, from_logits, flag)
                for flag in (False, True)}  # fmt: skip
    for how, got in runs.items():
        assert got.keys() == expected.keys(), how
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-8,
                                       err_msg=f"d loss / d {key} ({how})")  # fmt: skip
