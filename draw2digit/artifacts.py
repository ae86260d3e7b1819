"""The model folder: the one place that knows its file names, how to find it, read it and write it.

A model folder holds ``model.keras`` (training, evaluation, saliency),
``model.tflite`` (serving: the same weights, no TensorFlow needed),
``model_card.json`` (where it came from and how good it is),
``calibration.json`` and the training plots. Training writes one; serving only
reads one, and never imports training code.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from draw2digit.data import Split

ENV_MODEL = "DRAW2DIGIT_MODEL"
#: In a source checkout (and an editable install) the shipped model is the repository's models/;
#: an installed wheel carries it in <prefix>/share/draw2digit/models (pyproject's data-files).
CHECKOUT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models"
INSTALLED_MODEL_DIR = Path(sys.prefix) / "share" / "draw2digit" / "models"
MODEL_FILE = "model.keras"
TFLITE_FILE = "model.tflite"
CARD_FILE = "model_card.json"
HISTORY_PLOT = "training_history.png"


class ModelNotFoundError(FileNotFoundError):
    """No model where we looked; the message says how to get one."""


def default_model_dir() -> Path:
    """The shipped model's folder: the checkout's models/, else the installed copy."""
    if (CHECKOUT_MODEL_DIR / TFLITE_FILE).is_file():
        return CHECKOUT_MODEL_DIR
    return INSTALLED_MODEL_DIR


def resolve_model_path(path: str | os.PathLike | None = None, suffix: str = ".tflite") -> Path:
    """A model file from an explicit path, ``$DRAW2DIGIT_MODEL``, or the shipped ``models/``.

    A directory means the ``model<suffix>`` inside it.
    """
    candidate = Path(path or os.environ.get(ENV_MODEL) or default_model_dir()).expanduser()
    if candidate.is_dir():
        candidate = candidate / f"model{suffix}"
    elif candidate.suffix != suffix and candidate.with_suffix(suffix).exists():
        candidate = candidate.with_suffix(suffix)
    if not candidate.is_file():
        raise ModelNotFoundError(
            f"no model at {candidate}. Train one with `draw2digit train`, or point "
            f"{ENV_MODEL} (or --model) at a folder holding model{suffix}."
        )
    return candidate


def read_model_card(folder: str | os.PathLike) -> dict:
    """The model card in a model's folder, or {} for a model trained without one."""
    card = Path(folder) / CARD_FILE
    return json.loads(card.read_text()) if card.is_file() else {}


#: the card's record of how the served LiteRT copy stores its weights
LITERT_WEIGHTS = "litert_weights"


def save_model(
    model, folder: str | os.PathLike, card: dict, *, quantize: bool = False, test: Split | None = None
) -> Path:
    """Write a Keras model with its LiteRT copy and its card: everything serving needs.

    ``quantize`` stores the LiteRT copy's weights as int8 (several times faster on a CPU,
    answers a little off the Keras copy's); the card says which (``litert_weights``).
    With int8 weights and the MNIST ``test`` split, the card's test figures are
    rescored on the copy that serves (the page and ``/api/model`` show them), and the
    Keras figure is kept as ``keras_test_accuracy``.
    """
    from draw2digit.model import export_tflite

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / MODEL_FILE)
    export_tflite(model, folder / TFLITE_FILE, quantize=quantize)
    card = {**card, LITERT_WEIGHTS: "int8 (dynamic range)" if quantize else "float32"}
    card.pop("keras_test_accuracy", None)  # a parent's, when the card was copied from one
    if quantize and test is not None:
        keras_figure = {"keras_test_accuracy": card["test_accuracy"]} if "test_accuracy" in card else {}
        card = {**card, **keras_figure, **served_test_scores(folder, test)}
    write_model_card(folder, card)
    return folder


def write_model_card(folder: str | os.PathLike, card: dict) -> Path:
    """The one writer of model cards, so that every path that rewrites one keeps the same format."""
    path = Path(folder) / CARD_FILE
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path


def served_test_scores(folder: str | os.PathLike, test: Split) -> dict:
    """MNIST test accuracy, overall and per digit, of the LiteRT copy a folder serves."""
    import numpy as np

    from draw2digit.evaluate import evaluate_arrays
    from draw2digit.predictor import Predictor

    probabilities = Predictor(folder).probabilities(
        np.asarray(test.images, np.float32) / 255.0, calibrated=False
    )
    report = evaluate_arrays(probabilities, test.labels)
    return {
        "test_accuracy": report.accuracy,
        "test_per_class_accuracy": {str(k): v for k, v in enumerate(report.per_class_accuracy)},
    }


def is_quantized(card: dict) -> bool:
    """Whether a model card says its LiteRT copy has int8 weights (cards before the field: no)."""
    return str(card.get(LITERT_WEIGHTS, "")).startswith("int8")


#: what a model folder may hold besides the model and its card; calibration is left behind on purpose
_FOLDER_EXTRAS = (HISTORY_PLOT, "history.csv", "figures")


def quantize_folder(source: str | os.PathLike, out: str | os.PathLike, test: Split | None = None) -> dict:
    """Copy a model folder with its LiteRT copy re-exported with int8 weights (training side: loads Keras).

    The copy has no calibration: its thresholds were set on the float model's answers,
    so ``draw2digit calibrate`` fits them again on the quantized ones. With the MNIST
    ``test`` split, its card's test figures are the int8 copy's own.
    """
    import shutil

    from draw2digit.model import load_keras

    source, out = Path(source), Path(out)
    model = load_keras(source / MODEL_FILE)
    out.mkdir(parents=True, exist_ok=True)
    for name in _FOLDER_EXTRAS:
        if (source / name).is_dir():
            shutil.copytree(source / name, out / name, dirs_exist_ok=True)
        elif (source / name).is_file():
            shutil.copyfile(source / name, out / name)
    for stale in ("calibration.json", "calibration_features.npz"):
        (out / stale).unlink(missing_ok=True)
    card = read_model_card(source)
    if "keras_test_accuracy" in card:  # the source serves int8 itself: start from its float figure
        card["test_accuracy"] = card["keras_test_accuracy"]
    save_model(model, out, card, quantize=True, test=test)
    return read_model_card(out)


CURRENT = "current"


def publish(candidate: str | os.PathLike, root: str | os.PathLike) -> Path:
    """Copy a model folder to ``root/<version>`` and point ``root/current`` at it, atomically.

    Servers read ``root/current`` (``DRAW2DIGIT_MODEL``) when they start, so a
    rolling restart moves them to the new model; the old versions stay for a
    rollback (point ``current`` back). Returns the published folder.
    """
    import shutil

    candidate, root = Path(candidate), Path(root)
    card = read_model_card(candidate)
    version = str(card.get("version") or "unversioned").replace("/", "_")
    target = root / version
    if target.exists() and read_model_card(target).get("created") != card.get("created"):
        stamp = "".join(ch for ch in str(card.get("created", "")) if ch.isalnum())
        version = f"{version}-{stamp or 'copy'}"  # another model with the same version number
        target = root / version
    if not target.exists():
        staging = root / f".{version}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(candidate, staging, ignore=shutil.ignore_patterns("backup", "*.partial"))
        staging.rename(target)
    link = root / f".{CURRENT}.new"
    link.unlink(missing_ok=True)
    link.symlink_to(version)
    os.replace(link, root / CURRENT)  # readers see the old or the new model, never neither
    return target
