"""Average a fine-tuned model's weights with the model it was fine-tuned from (WiSE-FT).

Fine-tuning on real pen digits and non-digits costs a little on MNIST; the model
that sits on the straight line between the two sets of weights keeps most of what
each is good at (Wortsman et al., 2022, "Robust fine-tuning of zero-shot models"),
because a fine-tune from the same start stays in the same basin. Batch norm's
moving statistics are averaged too. The blend weight is chosen on the tuning sets
only (MNIST validation images, the tuning writers' pen digits, the "fit" family of
non-digits): held-out writers and the MNIST test set only measure the result.

Training-side code: it imports TensorFlow; serving loads the blended model like any other.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from draw2digit import NUM_CLASSES, __version__
from draw2digit.artifacts import is_quantized, read_model_card, resolve_model_path, save_model
from draw2digit.calibration import CalibrationConfig
from draw2digit.evaluate import NOT_WORSE_TOLERANCE

#: a blend may lose at most this much MNIST validation accuracy against the base model
#: (the tolerance ``draw2digit publish`` allows)
MNIST_TOLERANCE = NOT_WORSE_TOLERANCE
#: of MNIST validation digits and of tuning writers' pen digits, as ``draw2digit calibrate`` sets it
MAX_FALSE_REJECTION = CalibrationConfig().max_false_rejection


def blended_weights(tuned: list[np.ndarray], base: list[np.ndarray], weight: float) -> list[np.ndarray]:
    """``weight`` of the fine-tuned model plus ``1 - weight`` of its base, array by array.

    A ten-class base head is padded with the tuned model's "not a digit" column, so
    that class is the fine-tuned one at every weight.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the blend weight is a share between 0 and 1, not {weight}")
    if len(tuned) != len(base):
        raise ValueError("the two models have different layers; blend a model with the one it was tuned from")
    out = []
    for t, b in zip(tuned, base, strict=True):
        if t.shape != b.shape:
            if t.shape[:-1] != b.shape[:-1] or b.shape[-1] != NUM_CLASSES or t.shape[-1] != NUM_CLASSES + 1:
                raise ValueError(f"weights of shapes {t.shape} and {b.shape} cannot be blended")
            padded = t.copy()
            padded[..., :NUM_CLASSES] = b
            b = padded
        out.append((weight * t + (1.0 - weight) * b).astype(t.dtype))
    return out


@dataclass(frozen=True)
class Candidate:
    weight: float
    mnist_validation: float  # accuracy
    pen_tuning: float  # top digit right, tuning writers
    non_digits_rejected: float  # fit family, at the threshold that keeps 99 % of both digit sets


def choose(candidates: Sequence[Candidate], base_mnist_validation: float) -> Candidate:
    """The most non-digits rejected among blends within :data:`MNIST_TOLERANCE` of the base on MNIST.

    Ties go to the better reader of the tuning writers, then to the larger weight.
    When no blend keeps MNIST, the one closest to it.
    """
    if not candidates:
        raise ValueError("no blend weights to choose from")
    keeps = [c for c in candidates if c.mnist_validation >= base_mnist_validation - MNIST_TOLERANCE - 1e-12]
    if not keeps:
        return max(candidates, key=lambda c: (c.mnist_validation, c.weight))
    return max(keeps, key=lambda c: (round(c.non_digits_rejected, 6), round(c.pen_tuning, 6), c.weight))


def _selection_sets(card: dict, non_digits: int, seed: int):
    """MNIST validation, tuning writers' pen digits, fit-family non-digits, drawn as calibrate draws them."""
    from draw2digit import pendigits
    from draw2digit.calibration import non_digit_set, pen_set, validation_split

    _, validation = validation_split(card)
    pen = pen_set(pendigits.TUNE_WRITERS, seed + 1)
    non_x, _ = non_digit_set(non_digits, seed, "fit")
    return (validation.images.astype(np.float32) / 255.0, validation.labels), pen, non_x


def _score(model, sets) -> tuple[float, float, float]:
    (val_x, val_y), (pen_x, pen_y), non_x = sets

    def run(x):
        return model.predict(x.astype(np.float32)[..., None], batch_size=512, verbose=0)

    pv, pp, pn = run(val_x), run(pen_x), run(non_x)
    val_acc = float((pv[:, :NUM_CLASSES].argmax(1) == val_y).mean())
    pen_acc = float((pp[:, :NUM_CLASSES].argmax(1) == pen_y).mean())
    if pv.shape[1] <= NUM_CLASSES:
        return val_acc, pen_acc, 0.0
    # the not-a-digit-class rule as `draw2digit calibrate` sets it: reject when P(not a digit) is high
    threshold = max(float(np.quantile(p[:, NUM_CLASSES], 1 - MAX_FALSE_REJECTION)) for p in (pv, pp))
    return val_acc, pen_acc, float((pn[:, NUM_CLASSES] > threshold).mean())


def blend(
    tuned: str | Path,
    base: str | Path,
    out_dir: str | Path,
    weights: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.9),
    *,
    non_digits: int = 1500,
    seed: int = 0,
    sets=None,
    test_split=None,
    log=print,
) -> dict:
    """Try each weight on the tuning sets, keep the one :func:`choose` picks, save it with its card."""
    from draw2digit.data import load_split
    from draw2digit.evaluate import evaluate_arrays
    from draw2digit.model import load_keras

    tuned_path, base_path = resolve_model_path(tuned, ".keras"), resolve_model_path(base, ".keras")
    tuned_card, base_card = read_model_card(tuned_path.parent), read_model_card(base_path.parent)
    tuned_model, base_model = load_keras(tuned_path), load_keras(base_path)
    tuned_w, base_w = tuned_model.get_weights(), base_model.get_weights()
    blended_weights(tuned_w, base_w, 1.0)  # fails early, before the slow part, if they do not fit
    sets = sets if sets is not None else _selection_sets(tuned_card, non_digits, seed)

    base_val = _score(base_model, sets)[0]
    candidates = []
    for w in weights:
        tuned_model.set_weights(blended_weights(tuned_w, base_w, w))
        c = Candidate(w, *_score(tuned_model, sets))
        candidates.append(c)
        log(
            f"weight {w:.2f}: MNIST validation {100 * c.mnist_validation:.2f} %, tuning writers "
            f"{100 * c.pen_tuning:.2f} %, non-digits rejected {100 * c.non_digits_rejected:.1f} %"
        )
    best = choose(candidates, base_val)
    log(f"chosen: {best.weight:.2f} (base model on MNIST validation: {100 * base_val:.2f} %)")
    tuned_model.set_weights(blended_weights(tuned_w, base_w, best.weight))

    test_split = test_split if test_split is not None else load_split("test")
    x_test = test_split.images.astype("float32")[..., None] / 255.0
    report = evaluate_arrays(
        tuned_model.predict(x_test, batch_size=512, verbose=0)[:, :NUM_CLASSES], test_split.labels
    )
    stamp = _dt.datetime.now(_dt.timezone.utc)
    card = {
        **{k: v for k, v in tuned_card.items() if k not in ("test_accuracy", "test_per_class_accuracy")},
        "version": f"{tuned_card.get('version', __version__)}+blend.{stamp:%Y%m%d%H%M%S}",
        "created": stamp.isoformat(timespec="seconds"),
        "blend": {
            "method": "weight averaging with the base model (WiSE-FT), batch-norm statistics averaged too",
            "tuned": str(tuned_path.parent),
            "tuned_version": tuned_card.get("version"),
            "base": str(base_path.parent),
            "base_version": base_card.get("version"),
            "weight": best.weight,
            "chosen_on": "MNIST validation, tuning writers' pen digits, fit-family non-digits",
            "rule": f"most non-digits rejected, MNIST within {100 * MNIST_TOLERANCE:.2f} points of the base",
            "base_mnist_validation": base_val,
            "candidates": [c.__dict__ for c in candidates],
        },
        "test_accuracy": report.accuracy,
        "test_per_class_accuracy": {str(k): v for k, v in enumerate(report.per_class_accuracy)},
    }
    # served as the fine-tune was; the card as written (int8 copies' test figures are their own)
    save_model(tuned_model, out_dir, card, quantize=is_quantized(tuned_card), test=test_split)
    return read_model_card(out_dir)
