"""Load the model once, predict fast, return plain results.

The shipped model comes in two files with the same weights: ``model.keras`` for
training and evaluation, and ``model.tflite`` for serving. The LiteRT interpreter
answers a single drawing in about a millisecond and starts without importing
TensorFlow. Training code can hand a :class:`Predictor` another runner (the
Keras copy, ``draw2digit.training.keras_runner``) to compare the two.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from draw2digit._native import quiet_native_stderr
from draw2digit.artifacts import ModelCard, resolve_model_path
from draw2digit.calibration import Calibration, ModelOutputs
from draw2digit.decode import ImageInput
from draw2digit.explain import Explainer
from draw2digit.preprocess import Preprocessed, preprocess
from draw2digit.segment import split_digits

MAX_BATCH = 256


@dataclass(frozen=True)
class Prediction:
    digit: int | None  # None when the drawing is blank or not a digit
    confidence: float  # calibrated probability of the most likely digit (0 when blank)
    probabilities: tuple[float, ...]  # ten calibrated probabilities (all 0 when blank)
    blank: bool
    image: np.ndarray = field(repr=False)  # the 28x28 the model saw
    rejected: bool = False  # drawn, but does not look like a digit (probabilities kept)
    reason: str | None = None  # why, when rejected
    features: np.ndarray | None = field(default=None, repr=False, compare=False)  # penultimate, for memories

    def to_dict(self) -> dict:
        """JSON-ready form shared by the CLI and the API."""
        return {
            "digit": self.digit,
            "confidence": round(float(self.confidence), 6),
            "probabilities": [round(float(p), 6) for p in self.probabilities],
            "blank": self.blank,
            "rejected": self.rejected,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DigitInNumber:
    """One digit of a number: where the reader cut it (its box and 28x28) and what the model read there."""

    digit: int
    confidence: float
    probabilities: tuple[float, ...]
    position: int  # from the left, 0-based
    piece: Preprocessed = field(repr=False)
    rejected: bool = False  # the piece does not look like a digit (the "not a digit" rule, as for one digit)
    features: np.ndarray | None = field(default=None, repr=False, compare=False)  # penultimate, for memories

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in the input's pixels."""
        assert self.piece.box is not None  # a cut piece always has ink
        return self.piece.box

    @property
    def image(self) -> np.ndarray:
        return self.piece.image

    def to_dict(self) -> dict:
        return {
            "digit": self.digit,
            "confidence": round(float(self.confidence), 6),
            "probabilities": [round(float(p), 6) for p in self.probabilities],
            "box": list(self.box),
            "rejected": self.rejected,
        }


@dataclass(frozen=True)
class NumberPrediction:
    number: str  # "" when nothing was drawn
    digits: tuple[DigitInNumber, ...]

    @property
    def blank(self) -> bool:
        return not self.digits

    @property
    def rejected(self) -> bool:
        """Drawn, but no piece looks like a digit: not a number at all."""
        return bool(self.digits) and all(d.rejected for d in self.digits)

    def to_dict(self) -> dict:
        return {
            "number": self.number,
            "digits": [d.to_dict() for d in self.digits],
            "blank": self.blank,
            "rejected": self.rejected,
        }


class _LiteRTRunner:
    """One interpreter per thread: LiteRT interpreters are not thread-safe."""

    def __init__(self, path: Path):
        self._path = path
        self._model = path.read_bytes()
        self._interpreter_cls = Interpreter
        self._local = threading.local()
        with quiet_native_stderr():  # "Created TensorFlow Lite XNNPACK delegate", printed once per process
            self._state()  # and fail now, not on the first request, if the file is bad

    def _state(self):
        state = getattr(self._local, "state", None)
        if state is None:
            interp = self._interpreter_cls(model_content=self._model, num_threads=1)
            interp.allocate_tensors()
            inp = interp.get_input_details()[0]
            # probabilities (10 digits, or 11 with "not a digit") first, then the features
            outs = sorted(interp.get_output_details(), key=lambda d: d["shape"][-1] not in (10, 11))
            probs = outs[0]["index"]
            feats = outs[1]["index"] if len(outs) > 1 else None  # models exported before features had one
            state = self._local.state = [interp, inp["index"], probs, feats, 1]
        return state

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        state = self._state()
        interp, inp, probs, feats, batch = state
        if len(x) != batch:
            interp.resize_tensor_input(inp, list(x.shape), strict=False)
            interp.allocate_tensors()
            state[4] = len(x)
        interp.set_tensor(inp, x)
        interp.invoke()
        return interp.get_tensor(probs).copy(), None if feats is None else interp.get_tensor(feats).copy()


#: What runs the network: (n, 28, 28, 1) floats in, raw probabilities and features (or None) out.
Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


class Predictor:
    """Preprocess + model, loaded once; safe to share between threads.

    ``runner`` replaces the LiteRT interpreter (it must answer as the model file
    at ``model`` would); serving never passes one.
    """

    def __init__(self, model: str | os.PathLike | None = None, runner: Runner | None = None):
        self.model_path = resolve_model_path(model, ".tflite" if runner is None else ".keras")
        self.backend = "litert" if runner is None else getattr(runner, "name", "custom")
        self._run: Runner = _LiteRTRunner(self.model_path) if runner is None else runner
        self.card = ModelCard.read(self.model_path.parent)
        self.calibration = Calibration.load(self.model_path.parent)
        self._explainer = Explainer(self._run)

    def saliency(self, prediction: Prediction) -> np.ndarray:
        """(28, 28) map of what the answer rests on (:mod:`draw2digit.explain`), from the served model."""
        if prediction.blank:
            return np.zeros((28, 28), np.float32)
        return self._explainer.saliency(prediction.image, int(np.argmax(prediction.probabilities)))

    def probabilities(self, images: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """(n, 10) probabilities for (n, 28, 28) or (n, 28, 28, 1) MNIST-style floats in [0, 1].

        Calibrated (temperature-scaled, see ``calibration.json``) unless asked otherwise;
        the most likely digit is the same either way.
        """
        return self.outputs(images, calibrated)[0]

    def outputs(self, images: np.ndarray, calibrated: bool = True) -> ModelOutputs:
        """Probabilities, penultimate features and "not a digit" for MNIST-style images.

        A model trained with non-digit drawings has an eleventh class; its digit
        probabilities are renormalized over the ten digits, and the eleventh is
        returned apart for the rejection rule.
        """
        x = np.asarray(images, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.ndim == 3:
            x = x[..., None]
        if x.shape[1:] != (28, 28, 1):
            raise ValueError(f"expected (n, 28, 28[, 1]) images, got {np.asarray(images).shape}")
        if len(x) == 0:
            return ModelOutputs(np.zeros((0, 10), np.float32), None, None)
        parts = [self._run(x[i : i + MAX_BATCH]) for i in range(0, len(x), MAX_BATCH)]
        raw = np.concatenate([p for p, _ in parts])
        features = None if parts[0][1] is None else np.concatenate([f for _, f in parts])
        not_digit = None
        if raw.shape[1] > 10:
            not_digit = raw[:, 10].copy()
            raw = raw[:, :10] / np.maximum(raw[:, :10].sum(axis=1, keepdims=True), 1e-12)
        return ModelOutputs(self.calibration.apply(raw) if calibrated else raw, features, not_digit)

    def predict(self, source: ImageInput) -> Prediction:
        """One drawing in any form :func:`~draw2digit.preprocess.preprocess` accepts."""
        return self.predict_preprocessed([preprocess(source)])[0]

    def predict_many(self, sources: Iterable[ImageInput]) -> list[Prediction]:
        """Several drawings, preprocessed one by one and run as one batch."""
        return self.predict_preprocessed([preprocess(s) for s in sources])

    def predict_number(self, source: ImageInput) -> NumberPrediction:
        """Several digits side by side ("2025"): split, read each, left to right."""

        def confidence(images: list[np.ndarray]) -> list[float]:
            """How sure the model is that each piece is one digit (a stray bar is not)."""
            out = self.outputs(np.stack(images))
            sure = out.probabilities.max(axis=1)
            return (sure if out.not_digit is None else sure * (1 - out.not_digit)).tolist()

        parts = split_digits(source, confidence=confidence)
        preds = self.predict_preprocessed(parts)
        digits = tuple(  # inside a number every piece is read as its likeliest digit
            DigitInNumber(
                int(np.argmax(p.probabilities)),
                p.confidence,
                p.probabilities,
                i,
                part,
                rejected=p.rejected,
                features=p.features,
            )
            for i, (p, part) in enumerate(zip(preds, parts, strict=True))
        )
        return NumberPrediction("".join(str(d.digit) for d in digits), digits)

    def predict_preprocessed(self, items: Sequence[Preprocessed]) -> list[Prediction]:
        todo = [i for i, p in enumerate(items) if not p.blank]
        out = self.outputs(np.stack([items[i].image for i in todo])) if todo else None
        probs = out.probabilities if out else None
        rejected = self.calibration.rejects(probs, out.features, out.not_digit) if out else None
        results: list[Prediction] = []
        row = 0
        for p in items:
            if p.blank:
                results.append(Prediction(None, 0.0, (0.0,) * 10, True, p.image))
                continue
            pr, reject = probs[row], bool(rejected[row])
            row += 1
            best = int(pr.argmax())
            results.append(
                Prediction(
                    None if reject else best,
                    float(pr[best]),
                    tuple(float(v) for v in pr),
                    False,
                    p.image,
                    rejected=reject,
                    reason=self.calibration.reason if reject else None,
                    features=None if out.features is None else out.features[row - 1],
                )
            )
        return results
