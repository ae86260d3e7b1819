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


def _rule_scores(rule: str, out: ModelOutputs, temperature: float, gaussians) -> np.ndarray:
    probs = apply_temperature(out.probabilities, temperature)
    means, precision = gaussians if gaussians is not None else (None, None)
    return score(probs, rule, out.features, means, precision, out.not_digit)


def calibrate(
    digits_fit: dict[str, tuple[ModelOutputs, np.ndarray]],
    digits_check: dict[str, tuple[ModelOutputs, np.ndarray]],
    non_digits_fit: tuple[ModelOutputs, list[str]],
    non_digits_check: tuple[ModelOutputs, list[str]],
    *,
    max_false_rejection: float = 0.01,
    gaussians: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """Fit the temperature, measure each rule, choose one, on separate sets for fitting and checking.

    ``digits_fit`` (name -> outputs, labels): real digits the threshold is set on; each
    rule rejects at most ``max_false_rejection`` of *every* set (the first one also
    fits the temperature). ``non_digits_fit`` chooses the rule (most rejected).
    ``digits_check`` and ``non_digits_check`` (drawings of other writers and of other
    non-digit generators) only measure: the rates a new user would see.
    """
    first = next(iter(digits_fit))
    t = fit_temperature(digits_fit[first][0].probabilities, digits_fit[first][1])
    everything = {**digits_fit, **digits_check}
    report: dict = {
        "temperature": t,
        "ece": {
            f"{name}_{when}": expected_calibration_error(
                apply_temperature(out.probabilities, t if when == "after" else 1.0), labels
            )
            for name, (out, labels) in everything.items()
            for when in ("before", "after")
        },
        "max_false_rejection": max_false_rejection,
        "counts": {name: len(labels) for name, (_, labels) in everything.items()}
        | {"non_digits_fit": len(non_digits_fit[1]), "non_digits_check": len(non_digits_check[1])},
        "rules": {},
    }
    out0 = digits_fit[first][0]
    rules = [
        r
        for r in RULES
        if (r != "mahalanobis" or (gaussians is not None and out0.features is not None))
        and (r != "not_digit_class" or out0.not_digit is not None)
    ]
    fit_names = list(digits_fit)
    scored = {}
    for rule in rules:
        scored[rule] = (
            {name: _rule_scores(rule, out, t, gaussians) for name, (out, _) in everything.items()},
            _rule_scores(rule, non_digits_fit[0], t, gaussians),
            _rule_scores(rule, non_digits_check[0], t, gaussians),
        )
        entry, rejected = _rates_at(max_false_rejection, *scored[rule], everything, fit_names)
        check_out, labels = non_digits_check
        entry["non_digit_rejection_by_kind"] = _rates_by(rejected, [label.split(": ")[0] for label in labels])
        entry["non_digits_passed"] = _passed(rejected, labels, check_out.probabilities)
        report["rules"][rule] = entry
    best = max(rules, key=lambda r: report["rules"][r]["non_digit_rejection_fit"])
    report["rule"] = best
    report["threshold"] = report["rules"][best]["threshold"]
    # One threshold serves two aims that pull apart, keeping real digits and catching non-digits:
    # the chosen rule at other budgets shows what moving it would trade.
    report["budgets"] = [
        {"max_false_rejection": b, **_rates_at(b, *scored[best], everything, fit_names)[0]}
        for b in sorted({*BUDGETS, max_false_rejection})
    ]
    return report


def _rates_at(budget, scores, fit_nd, check_nd, everything, fit_names) -> tuple[dict, np.ndarray]:
    """A rule's threshold for ``budget`` and its rates there; and which check non-digits it rejects."""
    threshold = min(float(np.quantile(scores[name], budget)) for name in fit_names)
    kept = {name: s >= threshold for name, s in scores.items()}
    rejected = check_nd < threshold
    rates = {
        "threshold": threshold,
        "false_rejection": {name: float((~k).mean()) for name, k in kept.items()},
        "accuracy_kept": {
            name: float(((out.probabilities.argmax(1) == labels) & kept[name]).mean())
            for name, (out, labels) in everything.items()
        },
        "non_digit_rejection_fit": float((fit_nd < threshold).mean()),
        "non_digit_rejection": float(rejected.mean()),
    }
    return rates, rejected


def _rates_by(rejected: np.ndarray, groups: list[str]) -> dict[str, float]:
    groups_ = np.array(groups)
    return {str(g): float(rejected[groups_ == g].mean()) for g in sorted(set(groups))}


def _passed(rejected: np.ndarray, labels: list[str], probabilities: np.ndarray) -> list[dict]:
    """The non-digits a rule lets through, worst first, and the digit each is taken for.

    A rate over all non-digits hides that a few shapes close to a digit (a hexagon
    for a 0) make most of the misses; this list shows which.
    """
    labels_ = np.array(labels)
    read = probabilities.argmax(axis=1)
    out = []
    for label in set(labels):
        mine = labels_ == label
        passed = mine & ~rejected
        if passed.any():
            out.append(
                {
                    "drawing": label,
                    "count": int(mine.sum()),
                    "rejected": float(rejected[mine].mean()),
                    "read_as": int(np.bincount(read[passed], minlength=10).argmax()),
                }
            )
    return sorted(out, key=lambda item: (item["rejected"], item["drawing"]))


@dataclass(frozen=True)
class CalibrationConfig:
    non_digits: int = 1500  # drawings of each non-digit family (fit, test)
    fit_images: int = 20000  # MNIST training images for the class Gaussians
    max_false_rejection: float = 0.01  # of MNIST validation digits and of tuning writers' pen digits
    seed: int = 0


def drawn_images(drawings) -> tuple[np.ndarray, np.ndarray]:
    """Canvas drawings as the network sees them (28x28 in [0, 1]), and which were not blank."""
    from draw2digit.preprocess import preprocess

    items = [preprocess(im) for im in drawings]
    keep = np.array([not it.blank for it in items])
    return np.stack([it.image for it, k in zip(items, keep, strict=True) if k]).astype(np.float32), keep


def pen_set(writers, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Real pen digits of ``writers``, drawn as ``draw2digit evaluate --pen`` draws them, with labels."""
    from draw2digit import pendigits
    from draw2digit.evaluate import pen_drawings

    digits = pendigits.by_writers(pendigits.load_pendigits(), writers)
    images, keep = drawn_images(pen_drawings(digits, seed=seed))
    return images, np.array([d.label for d in digits])[keep]


def non_digit_set(
    count: int, seed: int, family: str, scribble_crossings: int = 0, extra_shapes: bool = False
) -> tuple[np.ndarray, list[str]]:
    """Non-digit drawings of one family as the network sees them, with what each is ("shape: star")."""
    from draw2digit.synthetic import non_digit_drawings

    drawings = non_digit_drawings(
        count, seed=seed, family=family, scribble_crossings=scribble_crossings, extra_shapes=extra_shapes
    )
    images, keep = drawn_images([im for im, _ in drawings])
    return images, [kind for (_, kind), ok in zip(drawings, keep, strict=True) if ok]


def validation_split(card: dict):
    """The MNIST validation images a model was trained without (its card says which)."""
    from draw2digit.data import load_split, split_train_validation

    trained = card.get("config", {})
    return split_train_validation(
        load_split("train"), trained.get("validation_size", 5000), trained.get("seed", 42)
    )


def run_calibration(
    predictor, config: CalibrationConfig | None = None
) -> tuple[dict, tuple[np.ndarray, np.ndarray] | None]:
    """Everything ``draw2digit calibrate`` measures, for a loaded :class:`~draw2digit.predictor.Predictor`.

    Fit sets: MNIST validation images and real pen digits of the tuning writers.
    Check sets: the MNIST test set and the held-out writers' pen digits (drawn as
    ``draw2digit evaluate --pen`` draws them), and non-digits of the "test" family.
    Returns the report and the class Gaussians for the distance rule (or None).
    """
    from draw2digit import pendigits
    from draw2digit.data import load_split

    config = config or CalibrationConfig()
    non_digits, fit_images, seed = config.non_digits, config.fit_images, config.seed
    train, validation = validation_split(predictor.card)
    test = load_split("test")

    def raw(images: np.ndarray) -> ModelOutputs:
        scale = 255.0 if images.dtype == np.uint8 else 1.0
        return predictor.outputs(images.astype(np.float32) / scale, calibrated=False)

    pen_sets = {}
    for name, writers, draw_seed in (
        ("pen_tuning_writers", pendigits.TUNE_WRITERS, seed + 1),
        ("pen_heldout_writers", pendigits.HELDOUT_WRITERS, seed),
    ):
        images, labels = pen_set(writers, draw_seed)
        pen_sets[name] = (raw(images), labels)
    non = {}
    # The rule is chosen on the fit family as the network learned it
    # (``train --scribble-crossings``, ``--extra-shapes``).
    learned = predictor.card.get("data", {}).get("non_digits") or {}
    crossings = int(learned.get("scribble_crossings") or 0)
    extra = bool(learned.get("extra_shapes"))
    for family, s, k, e in (("fit", seed, crossings, extra), ("test", seed + 1, 0, False)):
        images, labels = non_digit_set(non_digits, s, family, k, e)
        non[family] = (raw(images), labels)

    gaussians = None
    val_out = raw(validation.images)
    if val_out.features is not None:
        fit = np.random.default_rng(seed).permutation(len(train.labels))[:fit_images]
        gaussians = fit_gaussians(raw(train.images[fit]).features, train.labels[fit])
    report = calibrate(
        {
            "mnist_validation": (val_out, validation.labels),
            "pen_tuning_writers": pen_sets["pen_tuning_writers"],
        },
        {
            "mnist_test": (raw(test.images), test.labels),
            "pen_heldout_writers": pen_sets["pen_heldout_writers"],
        },
        non["fit"],
        non["test"],
        max_false_rejection=config.max_false_rejection,
        gaussians=gaussians,
    )
    report["pen_writers"] = {
        "tuning": list(pendigits.TUNE_WRITERS),
        "heldout": list(pendigits.HELDOUT_WRITERS),
        "heldout_seen_in_training": pendigits.seen_in_training(predictor.card, pendigits.HELDOUT_WRITERS),
    }
    return report, gaussians


def save_calibration(report: dict, gaussians, folder: str | Path) -> Path:
    """``calibration.json`` (and the class Gaussians, when the rule needs them) into a model folder."""
    folder = Path(folder)
    if gaussians is not None:
        np.savez_compressed(folder / FEATURES_FILE, means=gaussians[0], precision=gaussians[1])
    path = folder / CALIBRATION_FILE
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
