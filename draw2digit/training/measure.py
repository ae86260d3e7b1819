"""``draw2digit evaluate``: every figure of one model, gathered as data and rendered as text."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from draw2digit.feedback import FeedbackStore
from draw2digit.predictor import Predictor
from draw2digit.training import pendigits
from draw2digit.training.data import load_split
from draw2digit.training.evaluate import (
    compare_with_baseline,
    evaluate_arrays,
    number_accuracy,
    paired_comparison,
    pen_accuracy,
    plot_confusion,
    plot_mistakes,
    plot_per_class,
    redrawn_accuracy,
)
from draw2digit.training.model import keras_predictor
from draw2digit.training.online import run_online


@dataclass(frozen=True)
class EvaluateOptions:
    model: str | None = None
    backend: str = "litert"  # or "keras": the Keras copy, to compare with the served one
    writers: tuple[int, ...] = pendigits.HELDOUT_WRITERS
    pen: bool = False
    numbers: int = 0
    numbers_from: str = "pen"
    redrawn: int = 0
    ablation: bool = False
    tilt: float = 0.0
    seed: int = 0
    baseline: str | None = None
    corrections: str | None = None
    figures: str | None = None
    personal: bool = False  # with pen: online, one user per writer, learning from their corrections
    correct_share: float = 1.0  # of the wrong answers, the share the writer corrects


def _predictor(model: str | None, backend: str) -> Predictor:
    return keras_predictor(model) if backend == "keras" else Predictor(model)


def run_evaluation(opts: EvaluateOptions) -> dict:
    """Score a model on MNIST and, as asked, on pen digits, numbers and re-drawn digits."""
    predictor = _predictor(opts.model, opts.backend)
    test = load_split("test")
    started = time.perf_counter()
    probs = predictor.probabilities(test.images.astype("float32") / 255.0)
    seconds = time.perf_counter() - started
    report = evaluate_arrays(probs, test.labels)
    result: dict = {
        "model": str(predictor.model_path),
        "backend": opts.backend,
        "accuracy": report.accuracy,
        "errors": report.errors,
        "per_class_accuracy": report.per_class_accuracy,
        "confusion": report.confusion.tolist(),
        "seconds": round(seconds, 2),
        "_report": report,
    }
    if opts.redrawn:
        result["redrawn"] = redrawn_accuracy(
            predictor, test.images, test.labels, count=opts.redrawn, ablation=opts.ablation, tilt=opts.tilt
        )
    baseline = Predictor(opts.baseline) if opts.baseline else None
    if baseline is not None:
        corrections = FeedbackStore(opts.corrections).load()
        result["baseline"] = compare_with_baseline(predictor, baseline, test, corrections)
    pen = []
    if opts.pen or opts.numbers:
        pen = pendigits.by_writers(pendigits.load_pendigits(), opts.writers)
    seen = pendigits.seen_in_training(predictor.card, opts.writers)
    if opts.pen or (opts.numbers and opts.numbers_from != "mnist"):
        result["pen_writers_seen_in_training"] = seen
    if opts.pen:
        pen_report = pen_accuracy(predictor, pen, seed=opts.seed)
        result["pen"] = pen_report.to_dict()
        result["_pen_report"] = pen_report
        if baseline is not None:  # the same drawings, so the two figures compare drawing by drawing
            result["pen_baseline"] = paired_comparison(
                pen_report, pen_accuracy(baseline, pen, seed=opts.seed)
            )
    if opts.personal:
        online = run_online(opts.model, opts.writers, seed=opts.seed, correct_share=opts.correct_share)
        result["personal"] = online.to_dict()
        result["_personal"] = online
    if opts.numbers:
        if opts.numbers_from == "mnist":
            result["numbers"] = number_accuracy(predictor, test.images, test.labels, count=opts.numbers)
        else:
            labels = [d.label for d in pen]
            result["numbers"] = number_accuracy(
                predictor, pen, labels, count=opts.numbers, seed=opts.seed, compose=pendigits.pen_number
            )
    if opts.figures:
        fig_dir = Path(opts.figures)
        fig_dir.mkdir(parents=True, exist_ok=True)
        result["figures"] = [
            str(plot_confusion(report, fig_dir / "confusion_matrix.png")),
            str(plot_per_class(report, fig_dir / "per_class_accuracy.png")),
            str(plot_mistakes(test.images, report, fig_dir / "worst_mistakes.png")),
        ]
    return result


def as_json(result: dict) -> dict:
    """The result without its report objects: what ``--json`` prints and ``--save`` keeps."""
    return {k: v for k, v in result.items() if not k.startswith("_")}


def before_after_lines(before: dict, after: dict) -> list[str]:
    lines = [f"{'':<32}{'before':>10}{'after':>10}"]
    names = {"mnist_test_accuracy": "MNIST test set", "heldout_corrections_accuracy": "held-back corrections"}
    for key, label in names.items():
        if key in before:
            lines.append(f"{label:<32}{100 * before[key]:>9.2f}%{100 * after[key]:>9.2f}%")
    return lines


def render_evaluation(result: dict, opts: EvaluateOptions) -> str:
    """The result as ``draw2digit evaluate`` prints it."""
    out = [f"Model: {result['model']} ({opts.backend}), scored in {result['seconds']:.1f} s\n"]
    seen = result.get("pen_writers_seen_in_training")
    if seen:
        out.append(
            f"NOTE: this model trained on writers {seen}: their figures below are not held-out figures. "
            'Measure the same recipe trained without them (pen_writers = "fit") for those.\n'
        )
    if opts.pen:
        out += [result["_pen_report"].table()]
    if opts.personal:
        out += ["", result["_personal"].table()]
    if opts.pen:
        out += ["\nMNIST test set"]
    out.append(result["_report"].table())
    if opts.redrawn:
        r = result["redrawn"]
        tilted = f", tilted up to {opts.tilt:g} degrees" if opts.tilt else ""
        out.append(
            f"\nRe-drawn test digits (random size, place, pen, polarity{tilted}), {r['count']} drawings,"
        )
        out.append("top digit right:")
        out.append(f"  {'this pipeline':<28} {100 * r['accuracy']:6.2f} %")
        for name, acc in r.items():
            if name not in ("count", "accuracy", "blank", "rejected", "accepted_accuracy"):
                out.append(f"  {name:<28} {100 * acc:6.2f} %")
        out.append(
            f"  called not a digit: {r['rejected']}; right with those counted wrong: "
            f"{100 * r['accepted_accuracy']:.2f} %"
        )
    if opts.baseline:
        out.append(f"\nAgainst the baseline {opts.baseline} (before) — this model is after:")
        out += before_after_lines(result["baseline"]["before"], result["baseline"]["after"])
        if opts.pen:
            c = result["pen_baseline"]
            chance = ": could well be chance" if c["p_value"] >= 0.05 else ""
            out.append(
                f"{'held-out pen digits, rule on':<32}{100 * c['before_accuracy']:>9.2f}%"
                f"{100 * c['after_accuracy']:>9.2f}%\n"
                f"  of the same drawings, {c['gained']} read right only after and {c['lost']} only before "
                f"(exact McNemar p = {c['p_value']:.2g}{chance})"
            )
    if opts.numbers:
        source = "MNIST test digits" if opts.numbers_from == "mnist" else "held-out writers' pen digits"
        out.append(f"\nNumbers of {source} written side by side (number mode), {opts.numbers} per length:")
        for n, r in result["numbers"].items():
            out.append(
                f"  {n} digits: {100 * r['sequence_accuracy']:6.2f} % read exactly "
                f"(digit count right: {100 * r['digit_count_correct']:.1f} %)"
            )
    out += [f"Wrote {f}" for f in result.get("figures", [])]
    return "\n".join(out)
