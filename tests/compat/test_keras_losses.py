"""``xce.keras`` loss objects against Keras's own, in ``model.fit``.

``KERAS_BACKEND`` must be set before Keras is imported, so each backend's training runs in a
subprocess (``keras_fit_compare.py``, both at once, with a time limit): the same small model
fit for 2 epochs with the xce loss object and with Keras's (integer labels, which Keras hands
to the loss as floats; sample weights; ``ignore_index`` against ``ignore_class``) gives the
same epoch losses. The JAX backend trains under ``jax.jit`` (values are not read there); the
torch backend eagerly on CPU. The cases are shared between the backends to keep the file
short. TensorFlow is not supported (its tensors are no array-API type): the constructor's
error is checked here with the backend name patched, without importing TensorFlow. The rest
runs in this process on Keras's JAX backend (the compat conftest selects it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).with_name("keras_fit_compare.py")
TIMEOUT_S = 300  # a loaded CI machine; about 20 s each on an idle one
CASES = {
    "jax": ("sparse", "sparse_ignore", "multilabel", "categorical_focal"),
    "torch": ("categorical", "binary", "binary_focal", "poly1_epsilon0"),
}
EPOCH_RTOL = 1e-5


@pytest.fixture(scope="module")
def fits(keras_peer):
    """The JSON reports of the two training subprocesses, by backend."""
    pytest.importorskip("torch")  # the torch backend's fits need torch (a compat peer)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(root)}
    runs = {
        backend: subprocess.Popen(
            [sys.executable, str(SCRIPT), *cases],
            env={**env, "KERAS_BACKEND": backend},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for backend, cases in CASES.items()
    }
    reports = {}
    for backend, run in runs.items():
        try:
            out, err = run.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            run.kill()
            run.communicate()
            pytest.fail(f"Keras {backend} training took more than {TIMEOUT_S} s")
        assert run.returncode == 0, f"Keras {backend} training failed:\n{err[-4000:]}"
        reports[backend] = json.loads(out.strip().splitlines()[-1])
    return reports


@pytest.mark.parametrize(
    ("keras_backend", "case"), [(b, c) for b, cases in CASES.items() for c in cases]
)
def test_fit_gives_keras_epoch_losses(fits, keras_backend, case):
    report = fits[keras_backend]
    assert report["backend"] == keras_backend
    result = report["fits"][case]
    assert len(result["xce"]) == 2
    np.testing.assert_allclose(result["xce"], result["keras"], rtol=EPOCH_RTOL)
    assert report["configs_equal"][case]


def _classes():
    from xce import keras as xk

    return xk


def test_importing_xce_keras_imports_no_framework():
    code = "import sys, xce, xce.keras; print(sorted({'keras', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)  # fmt: skip
    assert out.stdout.strip() == "[]"


CONFIG_CASES = {
    "BinaryCrossEntropy": {"from_logits": True, "pos_weight": np.array([2.0, 0.5])},
    "CategoricalCrossEntropy": {"class_weight": np.array([1.0, 2.0, 3.0]), "axis": 1},
    "SparseCategoricalCrossEntropy": {"ignore_index": -1, "class_weight": (1.0, 2.0)},
    "BinaryFocalCrossEntropy": {"gamma": 1.0, "alpha": 0.3, "label_smoothing": 0.1},
    "CategoricalFocalCrossEntropy": {"alpha": [0.2, 0.3, 0.5], "eps": 1e-6},
    "Poly1CrossEntropy": {"epsilon": -0.5, "validate": False},
}


@pytest.mark.parametrize("class_name", sorted(CONFIG_CASES))
def test_config_round_trips_with_arrays_as_lists(keras_peer, class_name):
    cls = getattr(_classes(), class_name)
    loss = cls(reduction="sum", name="mine", **CONFIG_CASES[class_name])
    config = loss.get_config()
    assert json.loads(json.dumps(config)) == config  # plain data: lists, numbers, strings
    again = cls.from_config(config)
    assert again.get_config() == config
    assert (again.name, again.reduction) == ("mine", "sum")
    assert keras_peer.losses.deserialize(keras_peer.losses.serialize(loss)).get_config() == config


def test_float_labels_from_keras_are_classes(keras_peer):
    loss = _classes().SparseCategoricalCrossEntropy(from_logits=True, reduction="none")
    logits = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]], dtype="float32")
    as_ints = np.asarray(loss(np.array([1, 2]), logits))
    as_column = np.asarray(loss(np.array([[1.0], [2.0]]), logits))  # Keras's (N, 1) labels
    np.testing.assert_allclose(as_column, as_ints, rtol=1e-6)
    # Under Keras's JAX backend values are not read: a fractional label is a NaN loss.
    assert np.isnan(np.asarray(loss(np.array([1.5, 2.0]), logits))[0])
    # On eager host data (call() itself with NumPy arrays) it raises, with Keras's hint.
    with pytest.raises(ValueError, match=r"not whole numbers.*Keras casts y_true"):
        loss.call(np.array([1.5, 2.0], dtype="float32"), logits)


def test_binary_labels_of_shape_n_go_with_predictions_of_shape_n_1(keras_peer):
    loss = _classes().BinaryCrossEntropy(from_logits=True, reduction="none")
    logits = np.array([[0.5], [-1.0], [2.0]], dtype="float32")
    expected = np.asarray(loss(np.array([[1.0], [0.0], [1.0]]), logits))
    np.testing.assert_allclose(np.asarray(loss(np.array([1.0, 0.0, 1.0]), logits)), expected)
    assert expected.shape == (3,)


def test_ignore_index_is_masked_out_of_keras_reduction(keras_peer):
    logits = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0], [2.0, 0.0, 0.0]], dtype="float32")
    labels = np.array([1, -1, 0])
    ours = _classes().SparseCategoricalCrossEntropy(from_logits=True, ignore_index=-1)
    keep = labels != -1
    theirs = keras_peer.losses.SparseCategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(
        float(ours(labels, logits)), float(theirs(labels[keep], logits[keep])), rtol=1e-6
    )


def test_keras_names_get_the_xce_option_in_the_error(keras_peer):
    cls = _classes().SparseCategoricalCrossEntropy
    with pytest.raises(TypeError, match="ignore_class= is ignore_index"):
        cls(ignore_class=0)
    with pytest.raises(TypeError, match="did you mean from_logits="):
        cls(from_logit=True)


def test_tensorflow_backend_is_refused_by_name(keras_peer, monkeypatch):
    monkeypatch.setattr(keras_peer.backend, "backend", lambda: "tensorflow")
    with pytest.raises(RuntimeError, match=r"jax, torch.*'tensorflow' backend.*KERAS_BACKEND"):
        _classes().CategoricalCrossEntropy()


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="CrossEntropyLos"):
        _classes().CrossEntropyLos  # noqa: B018
