"""The network: one readable Keras 3 CNN.

Augmentation (``train.random_affine``) is kept out of the model so the saved file
is exactly what inference runs, and exports to LiteRT without random layers.
"""

from __future__ import annotations

from draw2digit._native import import_tensorflow

import_tensorflow()  # before Keras, which imports it too, so its start-up lines stay quiet
import keras  # noqa: E402
from keras import layers  # noqa: E402

from draw2digit import NUM_CLASSES  # noqa: E402

INPUT_SHAPE = (28, 28, 1)


def conv_bn(x, filters: int, kernel: int, strides: int = 1, padding: str = "same", momentum: float = 0.99):
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=momentum)(x)
    return layers.Activation("relu")(x)


def build_model(
    width: int = 32, dropout: float = 0.4, bn_momentum: float = 0.99, classes: int = NUM_CLASSES
) -> keras.Model:
    """Three conv blocks (28 -> 14 -> 7 -> 1), batch norm, dropout, a softmax.

    Strided 5x5 convolutions replace max pooling: they learn their own
    downsampling, which is what lifts well-built single MNIST CNNs past 99.6 %.
    ``bn_momentum`` must let batch norm's moving statistics settle within the
    run; :func:`draw2digit.train.train` lowers it for short runs. ``classes`` is 11
    for a model that also learned "not a digit" (outlier exposure): the last class.
    """
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
