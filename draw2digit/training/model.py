"""The network: one readable Keras 3 CNN, and its export for serving.

Augmentation (``train.random_affine``) is kept out of the model so the saved file
is exactly what inference runs, and exports to LiteRT without random layers.
Keras (and TensorFlow) are imported when a function here is called, not when
this module is imported.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from draw2digit import NUM_CLASSES
from draw2digit._native import import_tensorflow
from draw2digit.artifacts import resolve_model_path
from draw2digit.predictor import Predictor

INPUT_SHAPE = (28, 28, 1)


def _keras():
    import_tensorflow()  # before Keras, which imports it too, so its start-up lines stay quiet
    import keras

    return keras


def conv_bn(x, filters: int, kernel: int, strides: int = 1, padding: str = "same", momentum: float = 0.99):
    layers = _keras().layers
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=momentum)(x)
    return layers.Activation("relu")(x)


def build_model(width: int = 32, dropout: float = 0.4, bn_momentum: float = 0.99, classes: int = NUM_CLASSES):
    """Three conv blocks (28 -> 14 -> 7 -> 1), batch norm, dropout, a softmax.

    Strided 5x5 convolutions replace max pooling: they learn their own
    downsampling, which is what lifts well-built single MNIST CNNs past 99.6 %.
    ``bn_momentum`` must let batch norm's moving statistics settle within the
    run; :func:`draw2digit.train.train` lowers it for short runs. ``classes`` is 11
    for a model that also learned "not a digit" (outlier exposure): the last class.
    """
    keras = _keras()
    layers = keras.layers
    m = bn_momentum
    inputs = keras.Input(shape=INPUT_SHAPE, name="image")
    x = conv_bn(inputs, width, 3, momentum=m)
    x = conv_bn(x, width, 3, momentum=m)
    x = conv_bn(x, width, 5, strides=2, momentum=m)  # 14x14
    x = layers.Dropout(dropout)(x)
    x = conv_bn(x, 2 * width, 3, momentum=m)
    x = conv_bn(x, 2 * width, 3, momentum=m)
    x = conv_bn(x, 2 * width, 5, strides=2, momentum=m)  # 7x7
    x = layers.Dropout(dropout)(x)
    x = conv_bn(x, 4 * width, 7, padding="valid", momentum=m)  # 1x1
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="draw2digit_cnn")


def with_features(model):
    """The classifier with a second output: the penultimate features (for the not-a-digit rule)."""
    keras = _keras()
    flatten = next(layer for layer in model.layers if isinstance(layer, keras.layers.Flatten))
    return keras.Model(model.inputs, [model.outputs[0], flatten.output], name=model.name)


def export_tflite(model, path: str | Path, *, quantize: bool = False) -> Path:
    """LiteRT flatbuffer of the classifier (probabilities and features): same numbers, fast start.

    ``quantize`` stores the weights as int8 (dynamic-range quantization): XNNPACK then runs
    the convolutions in integers, several times faster on one CPU core.
    """
    path = Path(path)
    options = {}
    if quantize:
        options["optimizations"] = [import_tensorflow().lite.Optimize.DEFAULT]
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "model.tflite"
        with_features(model).export(str(target), format="litert", verbose=False, **options)
        shutil.copyfile(target, path)
    return path


def load_keras(path: str | Path):
    """A saved Keras model, without its optimizer state."""
    return _keras().saving.load_model(path, compile=False)


class KerasRunner:
    """A traced call of the Keras copy, in the shape :class:`~draw2digit.predictor.Predictor` runs."""

    name = "keras"

    def __init__(self, path: str | Path):
        tf = import_tensorflow()
        self.model = with_features(load_keras(path))
        self._fn = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)],
        )

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs, feats = self._fn(x)
        return probs.numpy(), feats.numpy()


def keras_predictor(model: str | Path | None = None) -> Predictor:
    """A :class:`~draw2digit.predictor.Predictor` that runs the Keras copy instead of LiteRT."""
    path = resolve_model_path(model, ".keras")
    return Predictor(path, runner=KerasRunner(path))
