"""The model folder: the one place that knows its file names, how to find it and read its card.

A model folder holds ``model.keras`` (training and evaluation), ``model.tflite``
(serving: the same weights, no TensorFlow needed), ``model_card.json`` (where it
came from and how good it is), ``calibration.json`` and the training plots.
Training writes one (``draw2digit.training.export``); serving only reads one.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class ModelCard:
    """Typed reading of ``model_card.json``: the one place that knows its keys.

    Cards written by older versions lack some fields; each property says what
    that means (no writers, no recipe) instead of every caller guessing.
    """

    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: str | os.PathLike) -> ModelCard:
        return cls(read_model_card(folder))

    def _data(self, key: str) -> dict:
        return self.raw.get("data", {}).get(key) or {}

    @property
    def name(self) -> str:
        return str(self.raw.get("name", "unknown"))

    @property
    def version(self) -> str | None:
        return self.raw.get("version")

    @property
    def created(self) -> str | None:
        return self.raw.get("created")

    @property
    def test_accuracy(self) -> float | None:
        """MNIST test accuracy of the copy that serves (int8 where quantized)."""
        return self.raw.get("test_accuracy")

    @property
    def classes(self) -> int:
        return int(self.raw.get("classes", 10))

    @property
    def config(self) -> dict:
        return self.raw.get("config", {})

    @property
    def recipe(self) -> dict:
        """The recipe file and stage this model was trained from ({} for older cards)."""
        return self.raw.get("recipe", {})

    @property
    def validation_size(self) -> int:
        return int(self.config.get("validation_size", 5000))

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 42))

    @property
    def pen_writers(self) -> list[int]:
        """The pen writers it trained on (none for an MNIST-only model)."""
        return list(self._data("pen_digits").get("writers", []))

    @property
    def extra_shapes(self) -> bool:
        """Whether its non-digits included the extra fit-family shapes."""
        return bool(self._data("non_digits").get("extra_shapes"))

    @property
    def held_back_ids(self) -> list[int]:
        """Corrections a fine-tune kept out of training to measure on."""
        return list(self.raw.get("finetune", {}).get("held_back_ids", []))

    @property
    def quantized(self) -> bool:
        return is_quantized(self.raw)


def write_model_card(folder: str | os.PathLike, card: dict) -> Path:
    """The one writer of model cards, so that every path that rewrites one keeps the same format."""
    path = Path(folder) / CARD_FILE
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path


def is_quantized(card: dict | ModelCard) -> bool:
    """Whether a model card says its LiteRT copy has int8 weights (cards before the field: no)."""
    raw = card.raw if isinstance(card, ModelCard) else card
    return str(raw.get(LITERT_WEIGHTS, "")).startswith("int8")


CURRENT = "current"


def publish(candidate: str | os.PathLike, root: str | os.PathLike) -> Path:
    """Copy a model folder to ``root/<version>`` and point ``root/current`` at it, atomically.

    Servers read ``root/current`` (``DRAW2DIGIT_MODEL``) when they start, so a
    rolling restart moves them to the new model; the old versions stay for a
    rollback (point ``current`` back). Returns the published folder.
    """
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
