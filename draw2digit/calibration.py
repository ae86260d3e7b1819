"""Honest confidence and "not a digit": temperature scaling plus a measured rejection rule.

A softmax network is over-confident, and it must answer one of ten digits even
for a letter or a scribble. ``draw2digit calibrate`` fits one temperature on the
held-out validation images (the log of a softmax output is a logit up to a
constant, so the model file is untouched), then scores candidate rejection rules
on the MNIST test set (rejections there are false) and on drawings that are not
digits (rejections there are right), and keeps the rule and threshold that
reject the most non-digits while rejecting at most ``max_false_rejection`` of MNIST.
The result is ``calibration.json`` beside the model; the Predictor applies it.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CALIBRATION_FILE = "calibration.json"
FEATURES_FILE = "calibration_features.npz"  # class means and shared precision, for "mahalanobis"
RULES = ("max_probability", "entropy", "mahalanobis")
REASONS = {
    "max_probability": "the model is not confident it is any digit",
    "entropy": "the model's answer is spread over several digits",
    "mahalanobis": "it is unlike every digit the model learned from",
}


def fit_gaussians(
    features: np.ndarray, labels: np.ndarray, ridge: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """Class means and one shared precision matrix of the penultimate features (Lee et al., 2018)."""
    means = np.stack([features[labels == c].mean(axis=0) for c in range(10)])
    centred = features - means[labels]
    cov = centred.T @ centred / len(centred) + ridge * np.eye(features.shape[1])
    return means.astype(np.float32), np.linalg.inv(cov).astype(np.float32)


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


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimizing the negative log-likelihood (Guo et al., 2017)."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        p = apply_temperature(probabilities, float(np.exp(log_t)))
        return float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, 1)).mean())

    return float(np.exp(minimize_scalar(nll, bounds=(np.log(0.05), np.log(20)), method="bounded").x))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    conf = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs(conf[inside].mean() - correct[inside].mean())
    return float(total)


def score(probabilities: np.ndarray, rule: str, features=None, means=None, precision=None) -> np.ndarray:
    """Higher means more digit-like."""
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

    def rejects(self, probabilities: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """Per row: True where the drawing should not get a digit (calibrated probabilities in)."""
        if self.rule is None or self.threshold is None:
            return np.zeros(len(probabilities), bool)
        if self.rule == "mahalanobis" and features is None:
            raise ValueError("the mahalanobis rule needs the model's features (re-export the LiteRT model)")
        return score(probabilities, self.rule, features, self.means, self.precision) < self.threshold

    @property
    def reason(self) -> str:
        return REASONS.get(self.rule or "", "")


def calibrate(
    validation: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    non_digits: np.ndarray,
    non_digit_kinds: list[str],
    *,
    max_false_rejection: float = 0.01,
    features: dict | None = None,
) -> dict:
    """Fit the temperature, measure each rule, choose one. Inputs are raw (n, 10) probabilities.

    ``features`` (penultimate-layer features: "train" and "train_labels" to fit the class
    Gaussians, "validation", "test", "non_digits") adds the mahalanobis rule; the fitted
    means and precision are returned under ``"gaussians"`` (not JSON: saved apart).
    """
    val_p, val_y = validation
    test_p, test_y = test
    t = fit_temperature(val_p, val_y)
    val_cal, test_cal, ood_cal = (apply_temperature(p, t) for p in (val_p, test_p, non_digits))
    report: dict = {
        "temperature": t,
        "ece": {
            "validation_before": expected_calibration_error(val_p, val_y),
            "validation_after": expected_calibration_error(val_cal, val_y),
            "test_before": expected_calibration_error(test_p, test_y),
            "test_after": expected_calibration_error(test_cal, test_y),
        },
        "max_false_rejection": max_false_rejection,
        "rules": {},
        "non_digit_count": len(non_digits),
        "mnist_test_count": len(test_y),
    }
    kinds = np.array(non_digit_kinds)
    rules = RULES if features is not None else tuple(r for r in RULES if r != "mahalanobis")
    if features is not None:
        means, precision = fit_gaussians(features["train"], features["train_labels"])
        report["gaussians"] = {"means": means, "precision": precision}
    for rule in rules:
        if rule == "mahalanobis":
            s_val, s_test, s_ood = (
                mahalanobis_score(features[k], means, precision) for k in ("validation", "test", "non_digits")
            )
        else:
            s_val, s_test, s_ood = score(val_cal, rule), score(test_cal, rule), score(ood_cal, rule)
        # The threshold comes from validation images; the rates are then measured on test and non-digits.
        threshold = float(np.quantile(s_val, max_false_rejection))
        report["rules"][rule] = {
            "threshold": threshold,
            "mnist_false_rejection": float((s_test < threshold).mean()),
            "non_digit_rejection": float((s_ood < threshold).mean()),
            "non_digit_rejection_by_kind": {
                str(k): float((s_ood[kinds == k] < threshold).mean()) for k in sorted(set(non_digit_kinds))
            },
            "mnist_accuracy_kept": float((test_cal.argmax(1) == test_y)[s_test >= threshold].mean()),
        }
    best = max(rules, key=lambda r: report["rules"][r]["non_digit_rejection"])
    report["rule"] = best
    report["threshold"] = report["rules"][best]["threshold"]
    return report
