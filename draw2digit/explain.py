"""Why the model reads what it reads: occlusion on the LiteRT model that serves, no TensorFlow.

Each patch of the drawing that holds ink is painted over in turn (``PATCH``
pixels square, every ``STRIDE`` pixels), all of them in one batch through the
served model, and the drop in the answer's log-odds is shared among the ink
pixels of that patch: what the answer rests on glows, paper never does. It
explains the int8 copy that gives the answer, in milliseconds, where integrated
gradients need TensorFlow and the Keras copy (``make bench-why`` measures how far
the two maps agree on real pen drawings).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import numpy as np
from PIL import Image

PATCH, STRIDE = 4, 2
INK = 0.05  # input values above this are ink


class Explainer:
    """Occlusion maps from a runner of the served model: (n, 28, 28, 1) in, (probabilities, features) out."""

    def __init__(self, run: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]):
        self._run = run

    def saliency(self, image: np.ndarray, target: int) -> np.ndarray:
        """(28, 28) map in [0, 1]: how much each ink pixel holds the answer ``target`` up."""
        x = np.asarray(image, np.float32).reshape(28, 28)
        ink = x > INK
        corners = [
            (r, c)
            for r in range(0, 28 - PATCH + 1, STRIDE)
            for c in range(0, 28 - PATCH + 1, STRIDE)
            if ink[r : r + PATCH, c : c + PATCH].any()
        ]
        batch = np.repeat(x[None], len(corners) + 1, axis=0)
        for k, (r, c) in enumerate(corners, 1):
            batch[k, r : r + PATCH, c : c + PATCH] = 0.0
        odds = self._log_odds(batch[..., None], int(target))
        total, count = np.zeros((28, 28)), np.zeros((28, 28))
        for drop, (r, c) in zip(odds[0] - odds[1:], corners, strict=True):
            total[r : r + PATCH, c : c + PATCH] += drop
            count[r : r + PATCH, c : c + PATCH] += 1
        held = np.clip(np.where(count > 0, total / np.maximum(count, 1), 0.0) * x, 0.0, None)
        peak = float(held.max())
        return (held / peak if peak > 0 else held).astype(np.float32)

    def _log_odds(self, images: np.ndarray, target: int) -> np.ndarray:
        """log p(target) - log p(anything else), precise even where the answer is near certain."""
        probs = np.concatenate([self._run(images[i : i + 256])[0] for i in range(0, len(images), 256)])
        probs = probs.astype(np.float64)
        rest = probs.sum(axis=1) - probs[:, target]
        return np.log(np.maximum(probs[:, target], 1e-30)) - np.log(np.maximum(rest, 1e-30))


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
