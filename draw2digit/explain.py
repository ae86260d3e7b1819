"""Why the model reads what it reads: integrated gradients on the 28x28 input.

Grad-CAM needs a spatial feature map at the last convolution, and this network's
last convolution reduces 7x7 to 1x1, so its map would be one pixel. Integrated
gradients (Sundararajan et al., 2017) attribute the predicted class's score to
each input pixel instead: the gradient averaged along the path from an empty
canvas to the drawing, times the drawing. The result is as sharp as the input.
"""

from __future__ import annotations

import base64
import io
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from draw2digit._native import import_tensorflow

STEPS = 32


class ExplanationUnavailable(RuntimeError):
    """This install cannot explain: serving works without TensorFlow, explanations need it."""


class Explainer:
    """Integrated gradients for the Keras copy of the model (loaded on first use)."""

    def __init__(self, keras_path: str | Path):
        self.keras_path = Path(keras_path)
        self._fn = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._fn is None:
                try:
                    tf = import_tensorflow()
                    import keras
                except ImportError as exc:
                    raise ExplanationUnavailable(
                        "explanations need TensorFlow, which this server does not have "
                        "(pip install 'draw2digit[train]')"
                    ) from exc
                model = keras.saving.load_model(self.keras_path, compile=False)
                alphas = tf.reshape(tf.linspace(1.0 / STEPS, 1.0, STEPS), (STEPS, 1, 1, 1))

                @tf.function(
                    input_signature=[tf.TensorSpec([28, 28, 1], tf.float32), tf.TensorSpec([], tf.int32)]
                )
                def integrated_gradients(x, target):
                    path = alphas * x[None]  # baseline: the empty canvas (all zeros)
                    with tf.GradientTape() as tape:
                        tape.watch(path)
                        scores = model(path, training=False)[:, target]
                    grads = tape.gradient(scores, path)
                    return tf.reduce_mean(grads, axis=0) * x

                self._fn = integrated_gradients
        return self._fn

    def saliency(self, image: np.ndarray, target: int) -> np.ndarray:
        """(28, 28) map in [0, 1]: how much each pixel pushed the model towards ``target``."""
        fn = self._load()
        x = np.asarray(image, np.float32).reshape(28, 28, 1)
        attributions = fn(x, np.int32(target)).numpy()[..., 0]
        positive = np.clip(attributions, 0, None)
        peak = float(positive.max())
        return positive / peak if peak > 0 else positive


def overlay_png(image: np.ndarray, saliency: np.ndarray, scale: int = 4) -> bytes:
    """The 28x28 input in grey with the saliency as a red-to-yellow glow on top, as PNG."""
    gray = np.clip(image, 0, 1)[..., None] * np.array([0.55, 0.55, 0.55])
    s = np.clip(saliency, 0, 1)[..., None]
    heat = np.concatenate([np.ones_like(s[..., :1]), s[..., :1], np.zeros_like(s[..., :1])], axis=-1)
    rgb = gray * (1 - 0.85 * s) + heat * 0.85 * s
    im = Image.fromarray(np.uint8(np.clip(rgb, 0, 1) * 255), "RGB").resize(
        (28 * scale, 28 * scale), Image.NEAREST
    )
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def overlay_data_url(image: np.ndarray, saliency: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(overlay_png(image, saliency)).decode()
