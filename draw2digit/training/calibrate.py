"""Fitting ``calibration.json``: the confidence temperature and the "not a digit" rule.

A softmax network is over-confident, and it must answer one of ten digits even
for a letter or a scribble. ``draw2digit calibrate`` fits one temperature on the
held-out validation images, then scores candidate rejection rules on real digits
(rejections there are false) and on drawings that are not digits (rejections
there are right), and keeps the rule and threshold that reject the most
non-digits while rejecting at most ``max_false_rejection`` of the real digits.
The runtime half (:mod:`draw2digit.calibration`) applies what this writes.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from draw2digit.artifacts import ModelCard
from draw2digit.calibration import (
    BUDGETS,
    CALIBRATION_FILE,
    FEATURES_FILE,
    RULES,
    ModelOutputs,
    apply_temperature,
    score,
)
from draw2digit.preprocess import preprocess
from draw2digit.training import pendigits
from draw2digit.training.config import ConfigError
from draw2digit.training.data import load_split, split_train_validation
from draw2digit.training.evaluate import pen_drawings
from draw2digit.training.synthetic import non_digit_drawings


def fit_gaussians(
    features: np.ndarray, labels: np.ndarray, ridge: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """Class means and one shared precision matrix of the penultimate features (Lee et al., 2018)."""
    means = np.stack([features[labels == c].mean(axis=0) for c in range(10)])
    centred = features - means[labels]
    cov = centred.T @ centred / len(centred) + ridge * np.eye(features.shape[1])
    return means.astype(np.float32), np.linalg.inv(cov).astype(np.float32)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimizing the negative log-likelihood (Guo et al., 2017)."""

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

    def __post_init__(self) -> None:
        if not 0.0 < self.max_false_rejection < 1.0:
            raise ConfigError(
                "max_false_rejection is a share of real digits between 0 and 1 (0.01 = 1 %), "
                f"not {self.max_false_rejection}"
            )
        if self.non_digits < 1 or self.fit_images < 1:
            raise ConfigError("non_digits and fit_images must be at least 1")


def drawn_images(drawings) -> tuple[np.ndarray, np.ndarray]:
    """Canvas drawings as the network sees them (28x28 in [0, 1]), and which were not blank."""
    items = [preprocess(im) for im in drawings]
    keep = np.array([not it.blank for it in items])
    return np.stack([it.image for it, k in zip(items, keep, strict=True) if k]).astype(np.float32), keep


def pen_set(writers, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Real pen digits of ``writers``, drawn as ``draw2digit evaluate --pen`` draws them, with labels."""

    digits = pendigits.by_writers(pendigits.load_pendigits(), writers)
    images, keep = drawn_images(pen_drawings(digits, seed=seed))
    return images, np.array([d.label for d in digits])[keep]


def non_digit_set(
    count: int, seed: int, family: str, extra_shapes: bool = False
) -> tuple[np.ndarray, list[str]]:
    """Non-digit drawings of one family as the network sees them, with what each is ("shape: star")."""
    drawings = non_digit_drawings(count, seed=seed, family=family, extra_shapes=extra_shapes)
    images, keep = drawn_images([im for im, _ in drawings])
    return images, [kind for (_, kind), ok in zip(drawings, keep, strict=True) if ok]


def validation_split(card: ModelCard):
    """The MNIST validation images a model was trained without (its card says which)."""
    return split_train_validation(load_split("train"), card.validation_size, card.seed)


def run_calibration(
    predictor, config: CalibrationConfig | None = None, not_digits: np.ndarray | None = None
) -> tuple[dict, tuple[np.ndarray, np.ndarray] | None]:
    """Everything ``draw2digit calibrate`` measures, for a loaded :class:`~draw2digit.predictor.Predictor`.

    Fit sets: MNIST validation images and real pen digits of the tuning writers.
    Check sets: the MNIST test set and the held-out writers' pen digits (drawn as
    ``draw2digit evaluate --pen`` draws them), and non-digits of the "test" family.
    ``not_digits``: drawings people corrected to "not a digit" (:meth:`FeedbackStore.not_digits`), added
    to the non-digits the rule is fitted on. Returns the report and the class Gaussians (or None).
    """

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
    # The rule is chosen on the fit family as the network learned it (with or without the extra shapes).
    for family, s, extra in (("fit", seed, predictor.card.extra_shapes), ("test", seed + 1, False)):
        images, labels = non_digit_set(non_digits, s, family, extra)
        if family == "fit" and not_digits is not None and len(not_digits):
            images = np.concatenate([images.astype(np.float32), not_digits.astype(np.float32) / 255.0])
            labels = [*labels, *["correction: not a digit"] * len(not_digits)]
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
    report["not_digit_corrections"] = 0 if not_digits is None else len(not_digits)
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


def _budget_lines(report: dict) -> list[str]:
    rows = report.get("budgets") or []
    if not rows:
        return []
    out = [
        f"\nThe chosen rule ({report['rule']}) at other budgets (draw2digit calibrate --max-false-rejection "
        "SHARE): a lower one keeps more real digits and rejects fewer non-digits.",
        f"  {'budget':>8}{'pen right, rule on':>20}{'pen rej.':>10}{'MNIST rej.':>12}{'non-digits rej.':>17}",
    ]
    for row in rows:
        fr, kept = row["false_rejection"], row["accuracy_kept"]
        mark = "   (this calibration)" if row["max_false_rejection"] == report["max_false_rejection"] else ""
        out.append(
            f"  {100 * row['max_false_rejection']:>7g}%{100 * kept['pen_heldout_writers']:>19.2f}%"
            f"{100 * fr['pen_heldout_writers']:>9.2f}%{100 * fr['mnist_test']:>11.2f}%"
            f"{100 * row['non_digit_rejection']:>16.1f}%{mark}"
        )
    return out


def render_calibration(report: dict, budget: float | None = None) -> str:
    """The report as ``draw2digit calibrate`` prints it (``budget``: the false rejection asked for)."""
    budget = report["max_false_rejection"] if budget is None else budget
    ece, n = report["ece"], report["counts"]
    out = [
        f"Temperature {report['temperature']:.3f} "
        f"(fitted on {n['mnist_validation']} MNIST validation images)",
        f"Expected calibration error: MNIST test {100 * ece['mnist_test_before']:.2f} % before, "
        f"{100 * ece['mnist_test_after']:.2f} % after; held-out pen digits "
        f"{100 * ece['pen_heldout_writers_before']:.2f} % before, "
        f"{100 * ece['pen_heldout_writers_after']:.2f} % after",
        f"\nRejection rules, each threshold set so at most {100 * budget:g} % "
        "of MNIST validation digits and of the tuning writers' pen digits are rejected.\n"
        f"Checked on the MNIST test set, {n['pen_heldout_writers']} pen digits of held-out writers, "
        f"and {n['non_digits_check']} non-digits from generators, glyphs, fonts and shapes not used "
        f"to fit ({n['non_digits_fit']} fit-family non-digits choose the rule):",
        f"  {'rule':<17}{'MNIST rej.':>11}{'pen rej.':>10}{'non-digits rej.':>17}"
        f"{'(fit family)':>14}   by kind",
    ]
    for rule, r in report["rules"].items():
        kinds = ", ".join(f"{k} {100 * v:.0f} %" for k, v in r["non_digit_rejection_by_kind"].items())
        mark = " (chosen)" if rule == report["rule"] else ""
        fr = r["false_rejection"]
        out.append(
            f"  {rule:<17}{100 * fr['mnist_test']:>10.2f}%{100 * fr['pen_heldout_writers']:>9.2f}%"
            f"{100 * r['non_digit_rejection']:>16.1f}%{100 * r['non_digit_rejection_fit']:>13.1f}%"
            f"   {kinds}{mark}"
        )
    passed = [p for p in report["rules"][report["rule"]]["non_digits_passed"] if p["rejected"] < 0.9]
    if passed:
        out.append("\nNon-digits the chosen rule lets through most (of the test family), and the digit read:")
        for p in passed:
            rate = f"{100 * p['rejected']:>5.0f} % rejected of {p['count']:>4}"
            out.append(f"  {p['drawing']:<24}{rate}, read as {p['read_as']}")
    out += _budget_lines(report)
    seen = report["pen_writers"]["heldout_seen_in_training"]
    if seen:
        out.append(
            f"\nNOTE: this model trained on the held-out writers {seen}: the pen figures above are not "
            'held-out figures; the same recipe trained without them (pen_writers = "fit") gives those.'
        )
    return "\n".join(out)
