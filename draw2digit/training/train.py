"""Training: seeded, resumable, and writing everything the shipped model needs.

A run writes ``model.keras``, ``model.tflite`` (the fast inference path),
``model_card.json``, ``training_history.png`` and ``history.csv`` into its output
folder. Progress is Keras' own; a ``backup/`` folder lets an interrupted run
resume from its last finished epoch.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from draw2digit import __version__
from draw2digit._native import import_tensorflow, quiet_native_stderr
from draw2digit.artifacts import HISTORY_PLOT, read_model_card, resolve_model_path
from draw2digit.training.config import TrainConfig
from draw2digit.training.data import Split, dataset_checksums, load_split, split_train_validation
from draw2digit.training.evaluate import evaluate_arrays
from draw2digit.training.export import save_model
from draw2digit.training.history import parent_history, plot_history, read_history
from draw2digit.training.model import build_model, load_keras
from draw2digit.training.renders import extra_training_data


def set_seeds(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras, and ask TF for deterministic ops."""
    tf = import_tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _affine_coefficients(n, size, config: TrainConfig, seed: int):
    """Per image, (a, b, c0, d, e, c1): output pixel (x, y) samples input (a x + b y + c0, d x + e y + c1)."""
    tf = import_tensorflow()
    c = (size - 1.0) / 2.0

    def uniform(limit, s):
        return tf.random.stateless_uniform([n], seed=[seed, s], minval=-limit, maxval=limit)

    theta = uniform(math.radians(config.rotation_degrees), 1)
    zoom = 1.0 + uniform(config.zoom, 2)
    shear = tf.tan(uniform(math.radians(config.shear_degrees), 3))
    tx = uniform(config.shift * size, 4)
    ty = uniform(config.shift * size, 5)
    # Output pixel (x, y) samples input at A @ ((x, y) - c) + c + t, A = R(theta) S(shear) / zoom.
    cos, sin = tf.cos(theta), tf.sin(theta)
    a, b = cos / zoom, (cos * shear - sin) / zoom
    d, e = sin / zoom, (sin * shear + cos) / zoom
    return a, b, c - a * c - b * c + tx, d, e, c - d * c - e * c + ty


def random_affine(images, config: TrainConfig, seed: int):
    """One random affine transform per image, composed and resampled once.

    Rotation, zoom, shear and shift all about the image centre, so a digit is
    never sheared off the canvas and never blurred by repeated resampling.
    """
    tf = import_tensorflow()
    images = tf.convert_to_tensor(images, tf.float32)
    n = tf.shape(images)[0]
    size = tf.cast(tf.shape(images)[1], tf.float32)
    coefficients = _affine_coefficients(n, size, config, seed)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=tf.stack([*coefficients, tf.zeros([n]), tf.zeros([n])], axis=1),
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def init_weights(model, source: str | Path) -> None:
    """Copy weights layer by layer; a ten-class head seeds the first ten columns of an eleven-class one."""
    old = load_keras(resolve_model_path(source, ".keras"))
    for new_layer, old_layer in zip(model.layers, old.layers, strict=True):
        weights = old_layer.get_weights()
        if not weights:
            continue
        target = new_layer.get_weights()
        head = weights[0].ndim == 2 and weights[0].shape[0] == target[0].shape[0]
        if head and weights[0].shape[1] < target[0].shape[1]:  # grown by the "not a digit" class
            kernel, bias = target
            kernel[:, : weights[0].shape[1]], bias[: weights[1].shape[0]] = weights
            weights = [kernel, bias]
        if [w.shape for w in weights] != [w.shape for w in target]:
            raise ValueError(f"{source} has another width than this model: it cannot seed it")
        new_layer.set_weights(weights)


def make_dataset(
    split: Split,
    config: TrainConfig,
    *,
    training: bool,
    teacher=None,
    taught: np.ndarray | None = None,
    classes: int = 10,
    row_weights: np.ndarray | None = None,
):
    """Batches of (images in [0, 1], labels), shuffled and augmented for training.

    With a ``teacher`` (a model that already reads MNIST well), labels become soft
    targets: for the rows marked in ``taught``, ``config.distill_weight`` of the
    target is the teacher's answer on the same augmented image, the rest the true
    label. Learning new drawings then does not forget the old ones (Li and Hoiem,
    "Learning without Forgetting", 2016). ``row_weights`` scale each row's loss
    (``TrainConfig.mnist_class_weights``): the batches then carry a sample weight.
    """
    tf = import_tensorflow()

    x = split.images[..., None]
    flags = np.zeros(len(split.labels), bool) if taught is None else taught
    weighted = row_weights is not None
    weights = np.ones(len(split.labels), np.float32) if row_weights is None else row_weights
    ds = tf.data.Dataset.from_tensor_slices((x, split.labels.astype("int32"), flags, weights))
    if training:
        ds = ds.shuffle(len(split.labels), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size)
    ds = ds.map(lambda im, y, t, w: (tf.cast(im, tf.float32) / 255.0, y, t, w))
    if training and config.augment:
        counter = tf.data.Dataset.counter(start=config.seed * 1_000_003)

        def augment(batch, i):
            return (random_affine(batch[0], config, tf.cast(i, tf.int32)), *batch[1:])

        ds = tf.data.Dataset.zip((ds, counter)).map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    if teacher is None:
        ds = ds.map(lambda im, y, t, w: (im, y, w) if weighted else (im, y))
    else:
        weight = float(config.distill_weight)

        def soft(im, y, t, row_weight):
            target = tf.one_hot(y, classes)
            said = teacher(im, training=False)[:, :10]
            said = tf.pad(said, [[0, 0], [0, classes - 10]])
            w = weight * tf.cast(t, tf.float32)[:, None]
            target = w * said + (1.0 - w) * target
            return (im, target, row_weight) if weighted else (im, target)

        ds = ds.map(soft)
    return ds.prefetch(tf.data.AUTOTUNE)


def batch_norm_momentum(steps: int) -> float:
    """Batch norm's moving averages span ~1/(1 - momentum) steps: keep that under a tenth
    of the run, or a short run is evaluated with unsettled statistics. The floor keeps
    a run of under 20 steps from a negative momentum (a negative moving variance: NaN)."""
    return min(0.99, max(0.5, 1.0 - 10.0 / steps))


def mnist_row_weights(labels: np.ndarray, mnist_rows: int, config: TrainConfig) -> np.ndarray:
    """Each training row's weight in the loss: ``config.mnist_class_weights`` on the first
    ``mnist_rows`` (MNIST's), 1 elsewhere. Where MNIST and the pen writers draw one shape as two
    digits (a 7 with a short bar, a 1 with a flag), this says which side the network should lean to."""
    weights = np.ones(len(labels), np.float32)
    for digit, weight in config.mnist_class_weights:
        weights[:mnist_rows][labels[:mnist_rows] == int(digit)] = weight
    return weights


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int):
    """Linear warm-up, then cosine decay to zero: most of the accuracy in few epochs."""
    import keras

    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(total - 1, int(config.warmup_epochs * steps_per_epoch))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10 if warmup else config.learning_rate,
        decay_steps=total - warmup,
        alpha=0.0,
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def quiet_unless_progress_bar(verbose: int | str):
    """tf.data's C++ warnings ("NodeDef mentions attribute ...") go straight to descriptor 2 on every
    fit and predict. Without a progress bar (verbose 0, or 2 as in the lessons) they would be all that
    shows on stderr: red blocks in a notebook with nothing to act on. Python errors still propagate."""
    return quiet_native_stderr() if verbose in (0, 2) else contextlib.nullcontext()


def train(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    verbose: int | str = "auto",
    train_split: Split | None = None,
    test_split: Split | None = None,
    recipe: dict | None = None,
) -> dict:
    """Train, evaluate on the test set, and write the model with its card and plots.

    ``recipe`` (file, stage, overrides) goes into the card. Returns the model card.
    """
    with quiet_unless_progress_bar(verbose):
        return _train(
            config, out_dir, verbose=verbose, train_split=train_split, test_split=test_split, recipe=recipe
        )


def _train(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    verbose: int | str,
    train_split: Split | None,
    test_split: Split | None,
    recipe: dict | None,
) -> dict:
    tf = import_tensorflow()
    import keras

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_seeds(config.seed)
    train_split = train_split if train_split is not None else load_split("train")
    test_split = test_split if test_split is not None else load_split("test")
    tr, va = split_train_validation(train_split, config.validation_size, config.seed, config.limit)
    mnist_train_images = len(tr.labels)
    taught = np.ones(mnist_train_images, bool)  # rows a teacher may speak for: MNIST's
    pen, other, extra_card = extra_training_data(config)
    for part in (pen, other):
        if part is not None:
            tr = Split(np.concatenate([tr.images, part.images]), np.concatenate([tr.labels, part.labels]))
            taught = np.concatenate([taught, np.zeros(len(part.labels), bool)])

    classes = 11 if config.non_digits else 10
    teacher = None
    if config.distill_from:
        teacher = load_keras(resolve_model_path(config.distill_from, ".keras"))
        teacher.trainable = False
    kwargs = {"teacher": teacher, "classes": classes}
    row_weights = None
    if config.mnist_class_weights:
        row_weights = mnist_row_weights(tr.labels, mnist_train_images, config)
    train_ds = make_dataset(tr, config, training=True, taught=taught, row_weights=row_weights, **kwargs)
    val_ds = make_dataset(va, config, training=False, **kwargs)
    steps = math.ceil(len(tr.labels) / config.batch_size)

    bn_momentum = batch_norm_momentum(config.epochs * steps)
    model = build_model(width=config.width, dropout=config.dropout, bn_momentum=bn_momentum, classes=classes)
    if config.init_from:
        init_weights(model, config.init_from)
    soft = teacher is not None  # soft targets: categorical loss on probability vectors
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate_schedule(config, steps)),
        loss="categorical_crossentropy" if soft else "sparse_categorical_crossentropy",
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy") if soft else "accuracy"],
    )
    backup = out / "backup"
    callbacks = [
        keras.callbacks.BackupAndRestore(str(backup)),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=backup.exists()),
    ]
    started = time.perf_counter()
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the dataset shuffles itself, seeded
    )
    seconds = time.perf_counter() - started
    shutil.rmtree(backup, ignore_errors=True)

    hist = read_history(out / "history.csv") or history.history
    earlier = parent_history(config.init_from, classes)
    plot_history(earlier, out / HISTORY_PLOT, then=hist)

    x_test = test_split.images.astype("float32")[..., None] / 255.0
    probs = model.predict(x_test, batch_size=512, verbose=0)[:, :10]
    report = evaluate_arrays(probs, test_split.labels)
    card = {
        "name": "draw2digit_cnn",
        "version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "framework": {"keras": keras.__version__, "tensorflow": tf.__version__},
        "data": {
            "dataset": "MNIST (LeCun, Cortes, Burges), CC BY-SA 3.0",
            "sha256": dataset_checksums(),
            "train_images": mnist_train_images,
            "validation_images": len(va.labels),
            "test_images": len(test_split.labels),
            **extra_card,
        },
        "classes": classes,
        "parameters": int(model.count_params()),
        "batch_norm_momentum": round(bn_momentum, 4),
        "config": config.to_dict(),
        **({"recipe": recipe} if recipe else {}),
        "epochs": len(hist.get("loss", [])),
        "training_seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / max(1, len(history.history["loss"])), 1),
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "python": platform.python_version(),
        },
        "test_accuracy": report.accuracy,
        "test_per_class_accuracy": {str(k): v for k, v in enumerate(report.per_class_accuracy)},
        "final_validation_accuracy": float(hist["val_accuracy"][-1]) if hist.get("val_accuracy") else None,
        "input": "28x28 grayscale, 0 = paper, 1 = ink, MNIST-centred (see draw2digit.preprocess)",
    }
    save_model(model, out, card, quantize=config.quantize, test=test_split)
    return read_model_card(out)  # as written: int8 copies' test figures are their own
