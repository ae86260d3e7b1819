"""Honest confidence and "not a digit", as served: apply what ``calibration.json`` says.

A softmax network is over-confident, and it must answer one of ten digits even
for a letter or a scribble. ``draw2digit calibrate`` (``draw2digit.training.calibrate``)
fits a temperature and chooses a rejection rule and threshold; the Predictor
applies them here, with nothing but NumPy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

CALIBRATION_FILE = "calibration.json"
FEATURES_FILE = "calibration_features.npz"  # class means and shared precision, for "mahalanobis"
RULES = ("max_probability", "entropy", "mahalanobis", "not_digit_class")
# Other false-rejection budgets the chosen rule is measured at: what a stricter or looser threshold trades.
BUDGETS = (0.0025, 0.005, 0.01, 0.02)
REASONS = {
    "max_probability": "the model is not confident it is any digit",
    "entropy": "the model's answer is spread over several digits",
    "mahalanobis": "it is unlike every digit the model learned from",
    "not_digit_class": "the model reads it as something other than a digit",
}


def mahalanobis_score(features: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Minus the squared distance to the nearest class: higher means more digit-like.

    (f - m)' P (f - m) = f'Pf - 2 f'Pm + m'Pm: two matrix products for all ten classes at once.
    """
    f = np.asarray(features, np.float64)
    pm = precision @ means.T  # (d, 10)
    d = np.einsum("ij,jk,ik->i", f, precision, f)[:, None] - 2 * f @ pm + np.einsum("kj,jk->k", means, pm)
    return -d.min(axis=1)


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def score(
    probabilities: np.ndarray, rule: str, features=None, means=None, precision=None, not_digit=None
) -> np.ndarray:
    """Higher means more digit-like."""
    if rule == "not_digit_class":
        if not_digit is None:
            raise ValueError("the not_digit_class rule needs a model trained with a not-a-digit class")
        return -np.asarray(not_digit, np.float64)
    if rule == "mahalanobis":
        return mahalanobis_score(features, means, precision)
    if rule == "max_probability":
        return probabilities.max(axis=1)
    if rule == "entropy":
        p = np.clip(probabilities, 1e-12, 1)
        return (p * np.log(p)).sum(axis=1)  # minus the entropy
    raise ValueError(f"unknown rule {rule!r}")


@dataclass(frozen=True)
class Calibration:
    temperature: float = 1.0
    rule: str | None = None
    threshold: float | None = None
    means: np.ndarray | None = None
    precision: np.ndarray | None = None

    @classmethod
    def load(cls, model_dir: str | Path) -> Calibration:
        path = Path(model_dir) / CALIBRATION_FILE
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        means = precision = None
        if data.get("rule") == "mahalanobis":
            with np.load(Path(model_dir) / FEATURES_FILE) as gaussians:
                means, precision = gaussians["means"], gaussians["precision"]
        return cls(data["temperature"], data.get("rule"), data.get("threshold"), means, precision)

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        return (
            apply_temperature(probabilities, self.temperature) if self.temperature != 1.0 else probabilities
        )

    def rejects(
        self,
        probabilities: np.ndarray,
        features: np.ndarray | None = None,
        not_digit: np.ndarray | None = None,
    ) -> np.ndarray:
        """Per row: True where the drawing should not get a digit (calibrated probabilities in)."""
        if self.rule is None or self.threshold is None:
            return np.zeros(len(probabilities), bool)
        if self.rule == "mahalanobis" and features is None:
            raise ValueError("the mahalanobis rule needs the model's features (re-export the LiteRT model)")
        s = score(probabilities, self.rule, features, self.means, self.precision, not_digit)
        return s < self.threshold

    @property
    def reason(self) -> str:
        return REASONS.get(self.rule or "", "")


class ModelOutputs(NamedTuple):
    """What the network says about a batch of drawings (raw, before temperature)."""

    probabilities: np.ndarray  # (n, 10) over the digits
    features: np.ndarray | None  # (n, d) penultimate features, for the distance rule
    not_digit: np.ndarray | None  # (n,) probability of "not a digit", for models that learned it
