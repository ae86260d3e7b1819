"""The retraining job's last step: a candidate goes into service only if it is not worse."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from draw2digit.artifacts import CURRENT, ModelCard, publish, resolve_model_path
from draw2digit.feedback import FeedbackStore
from draw2digit.predictor import Predictor
from draw2digit.training import pendigits
from draw2digit.training.calibrate import non_digit_set
from draw2digit.training.data import DataError, load_split
from draw2digit.training.evaluate import (
    NOT_WORSE_TOLERANCE,
    compare_with_baseline,
    not_worse,
    number_accuracy,
    pen_accuracy,
    pen_drawings,
)


@dataclass(frozen=True)
class RealDrawings:
    """What the gate compares besides MNIST, drawn once for both models: held-out writers' pen digits,
    non-digits of the test family (as the network sees them) and numbers of those pen digits."""

    digits: list
    drawings: list
    non_digits: np.ndarray
    numbers: int = 100

    @classmethod
    def make(cls, non_digits: int = 1500, numbers: int = 100) -> RealDrawings:
        digits = pendigits.by_writers(pendigits.load_pendigits(), pendigits.HELDOUT_WRITERS)
        images, _ = non_digit_set(non_digits, seed=1, family="test")
        return cls(digits, pen_drawings(digits, seed=0), images, numbers)

    def scores(self, predictor: Predictor) -> dict:
        """Pen digits read right (rule on), the share turned away, non-digits rejected, numbers read."""
        pen = pen_accuracy(predictor, self.digits, drawings=self.drawings)
        out = predictor.outputs(self.non_digits)
        rejected = float(predictor.calibration.rejects(out.probabilities, out.features, out.not_digit).mean())
        labels = [d.label for d in self.digits]
        read = number_accuracy(
            predictor, self.digits, labels, count=self.numbers, compose=pendigits.pen_number
        )
        return {
            "pen_accuracy": pen.accuracy,
            "false_rejection": pen.false_rejection,
            "non_digit_rejection": rejected,
            "numbers_accuracy": sum(r["sequence_accuracy"] for r in read.values()) / len(read),
        }


@dataclass(frozen=True)
class PublishResult:
    published: bool
    message: str
    folder: Path | None = None


def publish_if_not_worse(
    candidate: str | os.PathLike,
    root: str | os.PathLike,
    *,
    corrections: str | None = None,
    tolerance: float = NOT_WORSE_TOLERANCE,
    if_empty: bool = False,
) -> PublishResult:
    """Publish ``candidate`` into ``root`` unless the model in service there is better.

    ``if_empty`` publishes only when nothing is in service yet (a first start).
    """
    resolve_model_path(candidate)  # a clear error for a folder without a model
    current = Path(root) / CURRENT
    if current.exists() and if_empty:
        return PublishResult(False, f"{current} exists ({ModelCard.read(current).version}): nothing to do")
    why = ""
    if current.exists():
        new, old = Predictor(candidate), Predictor(current)
        comparison = compare_with_baseline(new, old, load_split("test"), FeedbackStore(corrections).load())
        skipped = ""
        if not_worse(comparison, tolerance)[0]:  # worse on MNIST already: no need to draw anything
            try:  # real drawings, where the pen digits are at hand (a retraining job may not have them)
                real = RealDrawings.make()
            except DataError as exc:
                skipped = f" (real drawings not compared: {exc})"
            else:
                comparison["before"].update(real.scores(old))
                comparison["after"].update(real.scores(new))
        ok, why = not_worse(comparison, tolerance)
        if not ok:
            return PublishResult(False, f"not published: {why}{skipped}")
        why = f"not worse than the model in service: {why}{skipped}\n"
    target = publish(candidate, root)
    return PublishResult(True, f"{why}published {target} as {current}", target)
