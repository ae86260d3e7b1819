"""The retraining job's last step: a candidate goes into service only if it is not worse."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from draw2digit.artifacts import CURRENT, ModelCard, publish, resolve_model_path
from draw2digit.feedback import FeedbackStore
from draw2digit.predictor import Predictor
from draw2digit.training.data import load_split
from draw2digit.training.evaluate import NOT_WORSE_TOLERANCE, compare_with_baseline, not_worse


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
        comparison = compare_with_baseline(
            Predictor(candidate), Predictor(current), load_split("test"), FeedbackStore(corrections).load()
        )
        ok, why = not_worse(comparison, tolerance)
        if not ok:
            return PublishResult(False, f"not published: {why}")
        why = f"not worse than the model in service: {why}\n"
    target = publish(candidate, root)
    return PublishResult(True, f"{why}published {target} as {current}", target)
