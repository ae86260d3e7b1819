"""Latency and throughput of the serving path, piece by piece (``draw2digit bench``).

Each piece is timed on its own, so a figure says where the time goes: the
preprocessing, the LiteRT inference, and for comparison the tutorial's resize
and Keras' three ways of calling the same model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from draw2digit.artifacts import resolve_model_path
from draw2digit.canvas import to_png
from draw2digit.predictor import Predictor
from draw2digit.preprocess import preprocess
from draw2digit.training.evaluate import naive_preprocess
from draw2digit.training.model import keras_predictor, load_keras
from draw2digit.training.synthetic import digit_drawing, number_drawing


def timed(fn: Callable[[], object], runs: int) -> np.ndarray:
    """Milliseconds per call of ``fn``, after a short warm-up."""
    for _ in range(min(50, runs)):
        fn()
    out = np.empty(runs)
    for i in range(runs):
        t = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t
    return out * 1000


@dataclass
class BenchReport:
    model: str
    load_ms: float
    runs: int
    latency: dict[str, np.ndarray] = field(default_factory=dict)  # label -> ms per call
    batch64_images_per_s: float = 0.0
    first_explanation_ms: float = 0.0  # "Show why" right after the model loaded

    def table(self) -> str:
        """The report as ``draw2digit bench`` prints it."""
        lines = [f"Model {self.model} loaded in {self.load_ms:.0f} ms; 280x280 canvas PNGs, {self.runs} runs"]
        for label, ms in self.latency.items():
            lines.append(f"{label:<44} p50 {np.median(ms):7.3f} ms   p99 {np.percentile(ms, 99):7.3f} ms")
        lines.append(f"{'inference, batch 64':<44} {self.batch64_images_per_s:,.0f} images/s")
        lines.append(f"{'Show why, first after start':<44} {self.first_explanation_ms:7.1f} ms")
        return "\n".join(lines)


def benchmark(model=None, runs: int = 2000, compare_keras: bool = False) -> BenchReport:
    """Time the pieces on the ten template digits drawn as 280x280 canvas PNGs."""
    t0 = time.perf_counter()
    predictor = Predictor(model)
    report = BenchReport(str(predictor.model_path), (time.perf_counter() - t0) * 1000, runs)
    pngs = [to_png(digit_drawing(d)) for d in range(10)]
    t0 = time.perf_counter()
    predictor.saliency(predictor.predict(pngs[7]))
    report.first_explanation_ms = (time.perf_counter() - t0) * 1000
    x1 = preprocess(pngs[3]).image
    batch = np.stack([preprocess(p).image for p in pngs] * 7)[:64]
    it = iter(range(10**9))

    def png() -> bytes:
        return pngs[next(it) % 10]

    report.latency["preprocess + inference, batch 1"] = timed(lambda: predictor.predict(png()), runs)
    report.latency["  preprocess only"] = timed(lambda: preprocess(png()), runs)
    report.latency["  inference only (LiteRT)"] = timed(lambda: predictor.probabilities(x1), runs)
    report.latency["  tutorial resize only (for comparison)"] = timed(lambda: naive_preprocess(png()), runs)
    numbers = [to_png(number_drawing(n, overlap)) for n in ("20250", "86431") for overlap in (0.0, 0.35)]
    report.latency["number mode, 5 digits (some touching)"] = timed(
        lambda: predictor.predict_number(numbers[next(it) % len(numbers)]), max(20, runs // 20)
    )
    answers = [predictor.predict(p) for p in pngs]
    report.latency["Show why (occlusion), warm"] = timed(
        lambda: predictor.saliency(answers[next(it) % 10]), max(20, runs // 20)
    )
    ms64 = timed(lambda: predictor.probabilities(batch), max(20, runs // 20))
    report.batch64_images_per_s = 64 / (float(np.median(ms64)) / 1000)
    if compare_keras:
        keras_model = load_keras(resolve_model_path(model, ".keras"))
        keras_runner = keras_predictor(model)
        xb = x1[None, ..., None]
        n = max(20, runs // 10)
        report.latency["  keras model.predict(x), batch 1"] = timed(
            lambda: keras_model.predict(xb, verbose=0), n
        )
        report.latency["  keras model(x, training=False), batch 1"] = timed(
            lambda: keras_model(xb, training=False), n
        )
        report.latency["  keras tf.function, batch 1"] = timed(lambda: keras_runner.probabilities(x1), n)
    return report
