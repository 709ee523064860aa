"""Run by ``test_keras_losses.py`` in a subprocess, one per Keras backend (``KERAS_BACKEND``
must be set before Keras is imported): the same small model trained with ``model.fit`` for 2
epochs with an ``xce.keras`` loss object and with Keras's own loss object; prints the epoch
losses of both as JSON on the last line of stdout. On a backend xce does not support it prints
the constructor's error instead. Arguments: the names of the cases to run (default: all).

``model.compile`` keeps its defaults (``jit_compile="auto"``: XLA under JAX, eager torch, and
on TensorFlow a ``tf.function`` without XLA on a CPU-only machine, with XLA where there is a
GPU); the ``*_xla`` cases ask for ``jit_compile=True``, which TensorFlow then honours on CPU.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.simplefilter("ignore")  # the frameworks' import-time chatter is not under test

import keras  # noqa: E402

import xce.keras  # noqa: E402

N, FEATURES, CLASSES, EPOCHS = 48, 5, 4, 2
FRAMES, LABELS = 6, 3  # CTC: frames per sequence, labels per sequence (right-padded with 0)


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, FEATURES)).astype("float32")
    labels = rng.integers(0, CLASSES, size=N)
    return {
        "x": x,
        "labels": labels,  # integers: Keras casts them to float32 for the loss
        "onehot": np.eye(CLASSES, dtype="float32")[labels],
        "binary": (rng.random(N) < 0.4).astype("float32"),
        "multilabel": (rng.random((N, 3)) < 0.5).astype("float32"),
        "weights": rng.uniform(0.5, 2.0, size=N).astype("float32"),
        "frames": rng.normal(size=(N, FRAMES, FEATURES)).astype("float32"),
        # labels 1..C-1 (0 is Keras's blank), the last ones of some sequences padding
        "sequences": rng.integers(1, CLASSES, size=(N, LABELS))
        * (np.arange(LABELS) < rng.integers(1, LABELS + 1, size=(N, 1))),
    }


def _cases():
    """name: (xce loss, Keras's loss, target key, output units, fit keywords)."""
    k, x = keras.losses, xce.keras
    sw = {"sample_weight": "weights"}
    xla = {"jit_compile": True}  # a compile keyword, not fit's
    return {
        "sparse": (x.SparseCategoricalCrossEntropy(from_logits=True),
                   k.SparseCategoricalCrossentropy(from_logits=True), "labels", CLASSES, sw),
        "sparse_ignore": (x.SparseCategoricalCrossEntropy(from_logits=True, ignore_index=0),
                          k.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
                          "labels", CLASSES, {}),
        "categorical": (x.CategoricalCrossEntropy(from_logits=True, label_smoothing=0.1),
                        k.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
                        "onehot", CLASSES, sw),
        "binary": (x.BinaryCrossEntropy(from_logits=True),
                   k.BinaryCrossentropy(from_logits=True), "binary", 1, sw),
        "multilabel": (x.BinaryCrossEntropy(from_logits=True, label_smoothing=0.1),
                       k.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
                       "multilabel", 3, {}),
        "binary_focal": (x.BinaryFocalCrossEntropy(from_logits=True, gamma=1.5),
                         k.BinaryFocalCrossentropy(from_logits=True, gamma=1.5),
                         "multilabel", 3, sw),
        "categorical_focal": (
            x.CategoricalFocalCrossEntropy(from_logits=True, gamma=2.0, alpha=0.25),
            k.CategoricalFocalCrossentropy(from_logits=True, gamma=2.0, alpha=0.25),
            "onehot", CLASSES, {}),
        "poly1_epsilon0": (x.Poly1CrossEntropy(from_logits=True, epsilon=0.0),
                           k.CategoricalCrossentropy(from_logits=True), "onehot", CLASSES, {}),
        "sparse_ignore_xla": (x.SparseCategoricalCrossEntropy(from_logits=True, ignore_index=0),
                              k.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
                              "labels", CLASSES, {**sw, **xla}),
        "binary_focal_xla": (x.BinaryFocalCrossEntropy(from_logits=True, gamma=1.5),
                             k.BinaryFocalCrossentropy(from_logits=True, gamma=1.5),
                             "multilabel", 3, xla),
        "ctc": (x.CTC(from_logits=True), k.CTC(), "sequences", CLASSES, sw),
        "ctc_xla": (x.CTC(from_logits=True), k.CTC(), "sequences", CLASSES, xla),
    }  # fmt: skip


def _fit(loss, data, target, units, fit_keywords):
    keras.utils.set_random_seed(0)  # the same initial weights for both losses
    inputs = data["frames"] if target == "sequences" else data["x"]  # CTC: per frame
    model = keras.Sequential([keras.Input(inputs.shape[1:]),
                              keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(units)])  # fmt: skip
    compile_keywords = {key: fit_keywords[key] for key in ("jit_compile",) if key in fit_keywords}
    model.compile(optimizer=keras.optimizers.SGD(0.2), loss=loss, **compile_keywords)
    assert model.jit_compile == compile_keywords.get("jit_compile", model.jit_compile)
    keywords = {key: data[value] for key, value in fit_keywords.items() if key != "jit_compile"}
    history = model.fit(inputs, data[target], batch_size=16, epochs=EPOCHS, shuffle=False,
                        verbose=0, **keywords)  # fmt: skip
    return history.history["loss"]


def _auto_jit_compile() -> bool:
    """What ``jit_compile="auto"`` resolved to for this backend and machine."""
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return bool(model.jit_compile)


def main() -> None:
    backend = keras.backend.backend()
    try:
        cases = _cases()
    except RuntimeError as exc:
        print(json.dumps({"backend": backend, "error": str(exc)}))
        return
    cases = {name: cases[name] for name in sys.argv[1:] or cases}
    data = _data()
    results = {}
    for name, (ours, theirs, target, units, fit_keywords) in cases.items():
        results[name] = {
            "xce": _fit(ours, data, target, units, fit_keywords),
            "keras": _fit(theirs, data, target, units, fit_keywords),
        }
    configs_equal = {
        name: type(ours).from_config(ours.get_config()).get_config() == ours.get_config()
        for name, (ours, *_) in cases.items()
    }
    print(json.dumps({"backend": backend, "fits": results, "configs_equal": configs_equal,
                      "auto_jit_compile": _auto_jit_compile()}))  # fmt: skip


if __name__ == "__main__":
    main()
    sys.stdout.flush()
