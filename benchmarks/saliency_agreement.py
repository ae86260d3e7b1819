"""How far "Show why" (occlusion on the served LiteRT model) agrees with integrated gradients.

    python -m benchmarks.saliency_agreement [--drawings 100]

Integrated gradients on the Keras copy (TensorFlow; what "Show why" used before) against the occlusion map
the server answers with, on real pen drawings of the held-out writers: the Spearman rank correlation of
the two maps per drawing, over all 784 pixels and over the ink alone, and the time per map.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from scipy import stats

from draw2digit.artifacts import resolve_model_path
from draw2digit.predictor import Predictor
from draw2digit.preprocess import preprocess
from draw2digit.training import pendigits
from draw2digit.training.evaluate import pen_drawings

STEPS = 32


def integrated_gradients(model_path):
    """The explainer "Show why" used before: integrated gradients on the Keras copy, from an empty canvas."""
    import tensorflow as tf

    from draw2digit.training.model import load_keras

    model = load_keras(model_path)
    alphas = tf.reshape(tf.linspace(1.0 / STEPS, 1.0, STEPS), (STEPS, 1, 1, 1))

    @tf.function(input_signature=[tf.TensorSpec([28, 28, 1], tf.float32), tf.TensorSpec([], tf.int32)])
    def attributions(x, target):
        path = alphas * x[None]
        with tf.GradientTape() as tape:
            tape.watch(path)
            scores = model(path, training=False)[:, target]
        return tf.reduce_mean(tape.gradient(scores, path), axis=0) * x

    def saliency(image: np.ndarray, target: int) -> np.ndarray:
        a = np.clip(
            attributions(image.reshape(28, 28, 1).astype(np.float32), target).numpy()[..., 0], 0, None
        )
        return a / a.max() if a.max() > 0 else a

    return saliency


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drawings", type=int, default=100)
    args = parser.parse_args()
    predictor = Predictor()
    digits = pendigits.by_writers(pendigits.load_pendigits(), pendigits.HELDOUT_WRITERS)
    pick = np.random.default_rng(0).choice(len(digits), args.drawings, replace=False)
    items = [preprocess(d) for d in pen_drawings([digits[i] for i in pick], seed=0)]
    answers = predictor.predict_preprocessed(items)
    ig = integrated_gradients(resolve_model_path(None, ".keras"))
    every, ink, ms = [], [], []
    for answer in answers:
        started = time.perf_counter()
        occlusion = predictor.saliency(answer)
        ms.append(1000 * (time.perf_counter() - started))
        gradients = ig(answer.image, int(np.argmax(answer.probabilities)))
        on_ink = answer.image > 0.05
        every.append(stats.spearmanr(occlusion.ravel(), gradients.ravel())[0])
        ink.append(stats.spearmanr(occlusion[on_ink], gradients[on_ink])[0])
    print(f"{len(answers)} real pen drawings of held-out writers, occlusion against integrated gradients:")
    print(f"  rank correlation over all pixels: median {statistics.median(every):.2f}")
    print(f"  rank correlation over the ink:    median {statistics.median(ink):.2f}")
    print(f"  occlusion map: median {statistics.median(ms):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
