"""The network: one readable Keras 3 CNN, and the augmentation it is trained with.

Augmentation is kept out of the model so the saved file is exactly what inference
runs, and so the same classifier can be exported to LiteRT without random layers.
"""

from __future__ import annotations

import keras
from keras import layers

from draw2digit import NUM_CLASSES

INPUT_SHAPE = (28, 28, 1)


def conv_bn(x, filters: int, kernel: int, strides: int = 1, padding: str = "same", momentum: float = 0.99):
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=momentum)(x)
    return layers.Activation("relu")(x)


def build_model(width: int = 32, dropout: float = 0.4, bn_momentum: float = 0.99) -> keras.Model:
    """Three conv blocks (28 -> 14 -> 7 -> 1), batch norm, dropout, a softmax.

    Strided 5x5 convolutions replace max pooling: they learn their own
    downsampling, which is what lifts well-built single MNIST CNNs past 99.6 %.
    ``bn_momentum`` must let batch norm's moving statistics settle within the
    run; :func:`draw2digit.train.train` lowers it for short runs.
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
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="draw2digit_cnn")


def build_augmentation(
    rotation_degrees: float = 10.0,
    zoom: float = 0.10,
    shift: float = 0.10,
    shear_degrees: float = 8.0,
    seed: int = 0,
) -> keras.Sequential:
    """Random affine changes of the kind hand drawings show.

    Keras' rotation factor is a fraction of a full turn, so 10 degrees is 10/360;
    ``fill_mode="constant"`` keeps the paper empty instead of mirroring the ink.
    """
    fill = {"fill_mode": "constant", "fill_value": 0.0}
    return keras.Sequential(
        [
            layers.RandomRotation(rotation_degrees / 360.0, seed=seed, **fill),
            layers.RandomZoom(zoom, zoom, seed=seed + 1, **fill),
            layers.RandomTranslation(shift, shift, seed=seed + 2, **fill),
            layers.RandomShear(x_factor=shear_degrees / 90.0, y_factor=0.0, seed=seed + 3, **fill),
        ],
        name="augmentation",
    )
