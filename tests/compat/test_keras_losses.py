"""``xce.keras`` loss objects against Keras's own, in ``model.fit``.

``KERAS_BACKEND`` must be set before Keras is imported, so each backend's training runs in a
subprocess (``keras_fit_compare.py``, both at once, with a time limit): the same small model
fit for 2 epochs with the xce loss object and with Keras's (integer labels, which Keras hands
to the loss as floats; sample weights; ``ignore_index`` against ``ignore_class``) gives the
same epoch losses. The JAX backend trains under ``jax.jit`` (values are not read there); the
torch backend eagerly on CPU; the TensorFlow backend in a ``tf.function`` (what
``jit_compile="auto"`` gives on a CPU-only machine) and, in the ``*_xla`` cases, under XLA
(what it gives with a GPU). The cases are shared between the backends to keep the file short.
TensorFlow tensors reach xce wrapped as array-API arrays (``xce._tensorflow``): its values
and GradientTape gradients are checked here against the oracle and ``value_and_grad``,
eagerly and under ``tf.function(jit_compile=True)``. The rest runs in this process on Keras's
JAX backend (the compat conftest selects it).
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
    "jax": ("sparse", "sparse_ignore", "multilabel", "categorical_focal", "ctc"),
    "torch": ("categorical", "binary", "binary_focal", "poly1_epsilon0", "ctc"),
    "tensorflow": ("sparse", "categorical", "sparse_ignore_xla", "binary_focal_xla", "ctc_xla"),
}
EPOCH_RTOL = 1e-5


@pytest.fixture(scope="module")
def fits(keras_peer, torch_peer, tf_peer):
    """The JSON reports of the training subprocesses, by backend (the backends' libraries are
    peers: a missing one skips, or fails under XCE_REQUIRE_PEERS=1)."""
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
    "CategoricalCrossEntropy": {
        "class_weight": np.array([1.0, 2.0, 3.0]),
        "axis": 1,
        "softcap": 5.0,
    },
    "SparseCategoricalCrossEntropy": {
        "ignore_index": -1,
        "class_weight": (1.0, 2.0),
        "softcap": 30.0,
        "z_loss": 1e-4,
    },
    "BinaryFocalCrossEntropy": {"gamma": 1.0, "alpha": 0.3, "label_smoothing": 0.1},
    "CategoricalFocalCrossEntropy": {"alpha": [0.2, 0.3, 0.5], "eps": 1e-6},
    "Poly1CrossEntropy": {"epsilon": -0.5, "validate": False},
    "CTC": {"from_logits": True, "blank": 0, "zero_infinity": True},
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
    with pytest.raises(TypeError, match=r"takes no return_parts=: .*LossParts"):
        cls(return_parts=True)


def test_softcap_and_z_loss_on_keras_and_tensorflow_tensors(keras_peer, tf_peer):
    import xce
    from xce._tensorflow import unwrap, wrap

    tf = tf_peer
    data = _tf_data()
    options = {"from_logits": True, "softcap": 2.0, "z_loss": 1e-2}
    loss = _classes().SparseCategoricalCrossEntropy(reduction="none", **options)
    expected = xce.sparse_categorical_cross_entropy(data["labels"], data["x"], reduction="none",
                                                    **options)  # fmt: skip
    assert np.abs(expected - xce.sparse_categorical_cross_entropy(
        data["labels"], data["x"], from_logits=True, reduction="none")).min() > 1e-3  # fmt: skip
    np.testing.assert_allclose(np.asarray(loss(data["labels"], data["x"])), expected, rtol=1e-6)
    x = tf.constant(data["x"])
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = loss.call(tf.constant(data["labels"], tf.float32), x)
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-6)
    _, grad = xce.value_and_grad(xce.sparse_categorical_cross_entropy)(
        data["labels"], data["x"], reduction="sum", **options)  # fmt: skip
    np.testing.assert_allclose(tape.gradient(value, x).numpy(), grad, rtol=1e-5, atol=1e-7)
    assert unwrap(wrap(x)) is x


def test_other_backends_are_refused_by_name(keras_peer, monkeypatch):
    monkeypatch.setattr(keras_peer.backend, "backend", lambda: "openvino")
    with pytest.raises(RuntimeError, match=r"jax, torch, tensorflow.*'openvino' backend"):
        _classes().CategoricalCrossEntropy()


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="CrossEntropyLos"):
        _classes().CrossEntropyLos  # noqa: B018


# Keras's TensorFlow backend: xce.keras wraps its tensors (xce._tensorflow). Each loss's value
# against the oracle, and its GradientTape gradient against value_and_grad, eagerly and in a
# tf.function compiled by XLA with an unknown batch size (what model.fit traces).
TF_CASES = {
    "sparse_categorical_cross_entropy": (
        "labels", {"ignore_index": 1, "class_weight": [1.0, 2.0, 0.5, 1.5], "label_smoothing": 0.1}
    ),
    "categorical_cross_entropy": ("onehot", {"label_smoothing": 0.1, "axis": 0}),
    "binary_cross_entropy": ("multilabel", {"pos_weight": [2.0, 0.5, 1.0, 1.0]}),
    "binary_focal_cross_entropy": ("multilabel", {"gamma": 1.5, "alpha": 0.3}),
    "categorical_focal_cross_entropy": ("onehot", {"gamma": 2.0, "alpha": 0.25}),
    "poly1_cross_entropy": ("onehot", {"epsilon": 0.5}),
}  # fmt: skip


def _tf_data():
    rng = np.random.default_rng(3)
    labels = np.array([0, 1, 3, 2, 1])
    return {
        "x": rng.normal(size=(5, 4)).astype("float32"),
        "labels": labels,
        "onehot": np.eye(4, dtype="float32")[labels],
        "multilabel": (rng.random((5, 4)) < 0.5).astype("float32"),
    }


@pytest.mark.parametrize("function_name", sorted(TF_CASES))
def test_tensorflow_tensors_give_the_loss_and_its_gradient(tf_peer, function_name):
    import reference

    import xce
    from xce._tensorflow import unwrap, without_autograph, wrap

    tf = tf_peer
    target, options = TF_CASES[function_name]
    data = _tf_data()
    y, x = data[target], data["x"]
    if options.get("axis") == 0:  # classes first: the transposed arrays
        y, x = y.T.copy(), x.T.copy()
    function = getattr(xce, function_name)

    def value_and_grad(labels, logits):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = unwrap(function(wrap(labels), wrap(logits), from_logits=True, **options))
        return value, tape.gradient(value, logits)

    expected = getattr(reference, function_name)(y, x, from_logits=True, **options)
    _, expected_grad = xce.value_and_grad(function)(y, x, from_logits=True, **options)
    batch_first = options.get("axis") != 0  # the class axis has its size, as in model.fit
    y_spec = [None] * y.ndim if target == "labels" else [None, 4] if batch_first else [4, None]
    compiled = tf.function(without_autograph(value_and_grad), jit_compile=True, input_signature=[
        tf.TensorSpec(y_spec, tf.as_dtype(y.dtype)),
        tf.TensorSpec([None, 4] if batch_first else [4, None], tf.float32),
    ])  # fmt: skip
    for run in (value_and_grad, compiled):
        value, grad = run(tf.constant(y), tf.constant(x))
        np.testing.assert_allclose(value.numpy(), expected, rtol=2e-6)
        np.testing.assert_allclose(grad.numpy(), expected_grad, rtol=2e-5, atol=1e-7)


def test_keras_loss_objects_take_tensorflow_tensors(keras_peer, tf_peer):
    tf = tf_peer
    logits = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]], dtype="float32")
    loss = _classes().SparseCategoricalCrossEntropy(from_logits=True, ignore_index=0)
    expected = np.asarray(loss.call(np.array([1.0, 2.0], "float32"), logits))
    values = loss.call(tf.constant([[1.0], [2.0]]), tf.constant(logits))  # Keras's (N, 1) floats
    assert isinstance(values, tf.Tensor)
    np.testing.assert_allclose(values.numpy(), expected, rtol=1e-6)
    # Values are not read: a fractional label is a NaN loss (as under jax.jit), not an error.
    assert np.isnan(loss.call(tf.constant([1.5, 2.0]), tf.constant(logits)).numpy()[0])
    # A NaN logit in an ignored row (label 0) reaches neither the loss nor the gradient.
    x = tf.constant(np.where([[False], [True]], np.nan, logits).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        values = loss.call(tf.constant([1.0, 0.0]), x)
    grad = tape.gradient(values, x).numpy()
    np.testing.assert_allclose(values.numpy(), [expected[0], 0.0], rtol=1e-6)
    assert np.isfinite(grad).all() and not grad[1].any() and grad[0].any()
    binary = _classes().BinaryCrossEntropy(from_logits=True)
    np.testing.assert_allclose(
        binary.call(tf.constant([1.0, 0.0]), tf.constant([[0.5], [-1.0]])).numpy(),
        np.asarray(binary.call(np.array([[1.0], [0.0]]), np.array([[0.5], [-1.0]]))), rtol=1e-6
    )  # fmt: skip


def test_xce_functions_still_refuse_bare_tensorflow_tensors(tf_peer):
    import xce

    with pytest.raises(TypeError, match="y_pred must be an array"):
        xce.categorical_cross_entropy(
            tf_peer.constant([[1.0, 0.0]]), tf_peer.constant([[0.2, 0.8]])
        )
