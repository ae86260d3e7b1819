"""Writing model folders: the Keras model, its LiteRT copy and its card (training side: loads Keras)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from draw2digit.artifacts import (
    HISTORY_PLOT,
    LITERT_WEIGHTS,
    MODEL_FILE,
    TFLITE_FILE,
    read_model_card,
    write_model_card,
)
from draw2digit.predictor import Predictor
from draw2digit.training.data import Split
from draw2digit.training.evaluate import evaluate_arrays
from draw2digit.training.model import export_tflite, load_keras


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


def served_test_scores(folder: str | os.PathLike, test: Split) -> dict:
    """MNIST test accuracy, overall and per digit, of the LiteRT copy a folder serves."""
    probabilities = Predictor(folder).probabilities(
        np.asarray(test.images, np.float32) / 255.0, calibrated=False
    )
    report = evaluate_arrays(probabilities, test.labels)
    return {
        "test_accuracy": report.accuracy,
        "test_per_class_accuracy": {str(k): v for k, v in enumerate(report.per_class_accuracy)},
    }


#: what a model folder may hold besides the model and its card; calibration is left behind on purpose
_FOLDER_EXTRAS = (HISTORY_PLOT, "history.csv", "figures")


def quantize_folder(source: str | os.PathLike, out: str | os.PathLike, test: Split | None = None) -> dict:
    """Copy a model folder with its LiteRT copy re-exported with int8 weights (training side: loads Keras).

    The copy has no calibration: its thresholds were set on the float model's answers,
    so ``draw2digit calibrate`` fits them again on the quantized ones. With the MNIST
    ``test`` split, its card's test figures are the int8 copy's own.
    """
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
