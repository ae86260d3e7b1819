"""Fine-tuning on the stored corrections: a new versioned model, measured before and after."""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from draw2digit import __version__
from draw2digit._native import import_tensorflow
from draw2digit.artifacts import ModelCard, resolve_model_path
from draw2digit.training.config import ConfigError, TrainConfig
from draw2digit.training.data import Split, load_split
from draw2digit.training.evaluate import correction_scores
from draw2digit.training.export import save_model
from draw2digit.training.model import load_keras
from draw2digit.training.train import make_dataset, quiet_unless_progress_bar, set_seeds


@dataclass
class FinetuneConfig:
    epochs: int = 2
    learning_rate: float = 1e-4
    mnist_limit: int | None = None  # use only N MNIST training images (quick runs)
    holdout: float = 0.2  # share of the corrections kept back to measure on
    repeat: int = 20  # each correction counts this many times against 60,000 MNIST images
    seed: int = 42

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.repeat < 1:
            raise ConfigError("epochs and repeat must be at least 1")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be over 0, not {self.learning_rate}")
        if self.mnist_limit is not None and self.mnist_limit < 1:
            raise ConfigError(f"mnist_limit must be at least 1, not {self.mnist_limit}")
        if not 0.0 <= self.holdout < 1.0:
            raise ConfigError(f"holdout is a share from 0 to below 1, not {self.holdout}")


def finetune(
    base: str | Path,
    corrections,
    out_dir: str | Path,
    config: FinetuneConfig | None = None,
    *,
    verbose: int | str = "auto",
    train_split: Split | None = None,
    test_split: Split | None = None,
) -> dict:
    """Fine-tune a model on MNIST plus user corrections; write a new versioned model.

    A seeded ``holdout`` share of the corrections is kept out of training so the
    card can say, before and after, how the model does on corrections it never
    saw. Corrections are repeated ``repeat`` times so a handful of them count
    against 60,000 MNIST images. Batch norm stays frozen, as usual for fine-tuning.
    """
    with quiet_unless_progress_bar(verbose):
        return _finetune(
            base,
            corrections,
            out_dir,
            config,
            verbose=verbose,
            train_split=train_split,
            test_split=test_split,
        )


def _finetune(
    base: str | Path,
    corrections,
    out_dir: str | Path,
    config: FinetuneConfig | None,
    *,
    verbose: int | str,
    train_split: Split | None,
    test_split: Split | None,
) -> dict:
    tf = import_tensorflow()
    import keras

    config = config or FinetuneConfig()
    seed, repeat, epochs = config.seed, config.repeat, config.epochs
    set_seeds(seed)
    base_keras = resolve_model_path(base, ".keras")
    base_card = ModelCard.read(base_keras.parent).raw
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    n = len(corrections.labels)
    if n == 0:
        raise ValueError("there are no corrections to learn from")
    order = np.random.default_rng(seed).permutation(n)
    n_held = round(config.holdout * n) if n >= 5 else 0
    held, used = order[:n_held], order[n_held:]

    train_split = train_split if train_split is not None else load_split("train")
    test_split = test_split if test_split is not None else load_split("test")
    x_mnist, y_mnist = train_split.images, train_split.labels
    if config.mnist_limit is not None:
        pick = np.random.default_rng(seed).permutation(len(y_mnist))[: config.mnist_limit]
        x_mnist, y_mnist = x_mnist[pick], y_mnist[pick]
    x = np.concatenate([x_mnist, np.repeat(corrections.images[used], repeat, axis=0)])
    y = np.concatenate([y_mnist, np.repeat(corrections.labels[used], repeat, axis=0)])

    model = load_keras(base_keras)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False

    def scores(m) -> dict:
        def probs(images):
            return m.predict(images.astype("float32")[..., None] / 255.0, batch_size=512, verbose=0)

        return correction_scores(probs, test_split, corrections, held)

    before = scores(model)
    ds = make_dataset(Split(x, y), TrainConfig(epochs=epochs, batch_size=128, seed=seed), training=True)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate), loss="sparse_categorical_crossentropy"
    )
    started = time.perf_counter()
    model.fit(ds, epochs=epochs, verbose=verbose, shuffle=False)
    seconds = time.perf_counter() - started
    after = scores(model)

    stamp = _dt.datetime.now(_dt.UTC)
    card = {
        **{k: v for k, v in base_card.items() if k not in ("test_accuracy", "test_per_class_accuracy")},
        "name": base_card.get("name", "draw2digit_cnn"),
        "version": f"{base_card.get('version', __version__)}+ft.{stamp:%Y%m%d%H%M%S}",
        "created": stamp.isoformat(timespec="seconds"),
        "framework": {"keras": keras.__version__, "tensorflow": tf.__version__},
        "finetune": {
            "parent": str(base_keras.parent),
            "parent_version": base_card.get("version"),
            "corrections_used": len(used),
            "corrections_held_back": int(n_held),
            "held_back_ids": [int(i) for i in corrections.ids[held]],
            "repeat": repeat,
            "mnist_images": len(y_mnist),
            "epochs": epochs,
            "learning_rate": config.learning_rate,
            "seconds": round(seconds, 1),
            "before": before,
            "after": after,
        },
        "test_accuracy": after["mnist_test_accuracy"],
    }
    # served as its parent was; the card as written (int8 copies' test figures are their own)
    save_model(model, out, card, quantize=ModelCard(base_card).quantized, test=test_split)
    return ModelCard.read(out).raw
