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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from draw2digit import __version__
from draw2digit._native import import_tensorflow, quiet_native_stderr
from draw2digit.artifacts import HISTORY_PLOT, is_quantized, read_model_card, resolve_model_path, save_model
from draw2digit.data import Split, dataset_checksums, load_split, split_train_validation

NOT_A_DIGIT = 10  # the eleventh class of a model trained with non-digit drawings
NON_DIGIT_SOURCE = (
    "made here by synthetic.non_digit_drawings(family='fit'): letters and symbols in fonts that ship "
    "with matplotlib (DejaVu: Bitstream Vera license; Computer Modern: BaKoMa license), scribbles, shapes"
)
RENDER_CODE = ("pendigits.py", "synthetic.py", "canvas.py", "preprocess.py", "decode.py", "segment.py")


@dataclass
class TrainConfig:
    epochs: int = 36
    batch_size: int = 128
    learning_rate: float = 2e-3
    warmup_epochs: float = 1.0
    width: int = 32
    dropout: float = 0.4
    validation_size: int = 5000
    augment: bool = True
    rotation_degrees: float = 10.0
    zoom: float = 0.10
    shift: float = 0.10
    shear_degrees: float = 10.0
    elastic: float = 0.0  # elastic distortion (Simard et al. 2003's alpha); 0 = off: 30 measured worse
    elastic_sigma: float = 4.0  # smoothness of the distortion field, pixels
    seed: int = 42
    limit: int | None = None  # train on the first N shuffled images (quick runs, tests)
    pen_copies: int = 0  # augmented canvas drawings of each real pen digit of the fit writers
    pen_writers: tuple[int, ...] | None = None  # default: pendigits.FIT_WRITERS
    pen_style_coverage: bool = False  # pendigits.restyle: styles few training writers use
    pen_perturb: float = 1.0  # pendigits.perturb's strength: how far each copy's strokes are bent
    pen_morph: float = 0.0  # share of pen copies first morphed towards another writer (pendigits.morph)
    cut_pieces: int = 0  # touching pairs of pen digits cut as the number reader cuts them (its pieces)
    non_digits: int = 0  # drawings of the "not a digit" class (outlier exposure); 0 = ten classes
    scribble_crossings: int = 0  # scribbles cross themselves at least this often (3: docs/)
    extra_shapes: bool = False  # the fit family also draws synthetic.EXTRA_FIT_SHAPES
    outlier_loss: str = "class"  # the non-digits as an 11th class, or "uniform": a flat answer taught
    outlier_weight: float = 0.5  # the uniform loss's weight on non-digits (Hendrycks et al.'s lambda)
    init_from: str | None = None  # start from this model's weights (fine-tuning a shipped model)
    distill_from: str | None = None  # keep MNIST answers close to this model's (see make_dataset)
    distill_weight: float = 0.5
    mnist_class_weights: tuple[tuple[int, float], ...] = ()  # (digit, weight): its MNIST rows' loss weight
    quantize: bool = False  # serve int8 weights (artifacts.save_model): faster, a few drawings apart
    extra: dict = field(default_factory=dict)


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


def _elastic_field(n, h, w, alpha: float, sigma: float, seed):
    """(n, h, w, 2) displacements (rows, columns): uniform noise blurred by a Gaussian, times alpha."""
    tf = import_tensorflow()
    noise = tf.random.stateless_uniform(tf.stack([n, h, w, 2]), seed=[seed, 6], minval=-1.0, maxval=1.0)
    radius = max(1, math.ceil(2.5 * sigma))
    t = np.arange(-radius, radius + 1, dtype=np.float32)
    g = np.exp(-0.5 * (t / sigma) ** 2)
    g /= g.sum()
    across = tf.constant(np.tile(g.reshape(1, -1, 1, 1), (1, 1, 2, 1)))
    down = tf.constant(np.tile(g.reshape(-1, 1, 1, 1), (1, 1, 2, 1)))
    flow = tf.nn.depthwise_conv2d(noise, across, [1, 1, 1, 1], "SAME")
    return alpha * tf.nn.depthwise_conv2d(flow, down, [1, 1, 1, 1], "SAME")


def _sample(images, sy, sx):
    """Bilinear samples of (n, h, w, 1) images at (n, h, w) row and column positions; paper outside."""
    tf = import_tensorflow()
    shape = tf.shape(images)
    n, h, w = shape[0], shape[1], shape[2]
    y0, x0 = tf.floor(sy), tf.floor(sx)
    fy, fx = sy - y0, sx - x0
    padded = tf.pad(images[..., 0], [[0, 0], [1, 1], [1, 1]])  # a ring of paper to sample outside
    flat = tf.reshape(padded, [n, -1])

    def at(yy, xx):
        yy = tf.clip_by_value(tf.cast(yy, tf.int32) + 1, 0, h + 1)
        xx = tf.clip_by_value(tf.cast(xx, tf.int32) + 1, 0, w + 1)
        return tf.gather(flat, tf.reshape(yy * (w + 2) + xx, [n, -1]), batch_dims=1)

    out = (
        at(y0, x0) * tf.reshape((1 - fy) * (1 - fx), [n, -1])
        + at(y0, x0 + 1) * tf.reshape((1 - fy) * fx, [n, -1])
        + at(y0 + 1, x0) * tf.reshape(fy * (1 - fx), [n, -1])
        + at(y0 + 1, x0 + 1) * tf.reshape(fy * fx, [n, -1])
    )
    return tf.reshape(out, shape)


def elastic_distort(images, alpha: float, sigma: float, seed, config: TrainConfig | None = None):
    """A smooth random displacement field per image (Simard, Steinkraus and Platt, 2003).

    Uniform noise in [-1, 1] per pixel and axis, blurred by a Gaussian of ``sigma``
    pixels and scaled by ``alpha``: local bends of the strokes, as one writer's hand
    varies from one digit to the next, which an affine transform cannot make.
    With a ``config``, its random affine transform is composed in, so that each
    image is resampled once: a second bilinear pass blurs every training image, and
    a network that only ever saw blurred digits misreads sharp ones (measured at
    alpha 30: chained, clean MNIST validation digits 96.2 % after 4 epochs, affine
    ones 98.8 %; composed, clean ones 98.8 % after 3).
    """
    tf = import_tensorflow()
    images = tf.convert_to_tensor(images, tf.float32)
    shape = tf.shape(images)
    n, h, w = shape[0], shape[1], shape[2]
    flow = _elastic_field(n, h, w, alpha, sigma, seed)
    ys, xs = tf.meshgrid(tf.range(h, dtype=tf.float32), tf.range(w, dtype=tf.float32), indexing="ij")
    ys, xs = ys[None], xs[None]
    if config is None:
        sy, sx = ys, xs
    else:
        a, b, c0, d, e, c1 = (
            k[:, None, None] for k in _affine_coefficients(n, tf.cast(h, tf.float32), config, seed)
        )
        sx, sy = a * xs + b * ys + c0, d * xs + e * ys + c1
    return _sample(images, sy + flow[..., 0], sx + flow[..., 1])


def _render_chunk(args: tuple) -> tuple[np.ndarray, np.ndarray]:
    kind, payload, seed = args
    if kind == "pen":
        from draw2digit.pendigits import render_training_set

        digits, copies, style_coverage, strength, morph_share = payload
        return render_training_set(
            digits, copies, seed, style_coverage=style_coverage, strength=strength, morph_share=morph_share
        )
    if kind == "pieces":
        from draw2digit.pendigits import render_cut_pieces

        digits, count, strength = payload
        return render_cut_pieces(digits, count, seed, strength=strength)
    from draw2digit.preprocess import preprocess
    from draw2digit.synthetic import non_digit_drawings

    count, crossings, extra = payload
    drawings = non_digit_drawings(
        count, seed=seed, canvas=140, family="fit", scribble_crossings=crossings, extra_shapes=extra
    )
    items = [preprocess(im) for im, _ in drawings]
    images = np.stack([np.uint8(np.round(p.image * 255)) for p in items if not p.blank])
    return images, np.full(len(images), NOT_A_DIGIT, np.uint8)


def _rendered(
    kind: str, payload, count_key: str, seed: int, workers: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Render in ``workers`` processes, cached on disk: the same inputs give the same file."""
    import hashlib
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from draw2digit.data import ENV_CACHE_DIR, user_path

    folder = user_path(ENV_CACHE_DIR, "cache", "renders")
    # The key covers the code that draws and prepares the images: change it and the cache is renewed.
    here = Path(__file__).parent
    code = b"".join((here / f).read_bytes() for f in RENDER_CODE)
    key = hashlib.sha256(f"{kind}|{count_key}|{seed}|".encode() + code).hexdigest()[:16]
    path = folder / f"{kind}-{key}.npz"
    if path.is_file():
        with np.load(path) as f:
            return f["images"], f["labels"]
    if kind == "pen":
        digits, copies, style_coverage, strength, morph_share = payload
        chunks = [
            ("pen", (digits[i::workers], copies, style_coverage, strength, morph_share), seed * 100 + i)
            for i in range(workers)
        ]
    elif kind == "pieces":
        digits, count, strength = payload
        share = -(-count // workers)
        chunks = [("pieces", (digits, share, strength), seed * 100 + i) for i in range(workers)]
    else:
        count, crossings, extra = payload
        chunks = [
            ("non_digit", (-(-count // workers), crossings, extra), seed * 100 + i) for i in range(workers)
        ]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        parts = list(pool.map(_render_chunk, chunks))
    images, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, images=images, labels=labels)
    return images, labels


def extra_training_data(config: TrainConfig) -> tuple[Split | None, Split | None, dict]:
    """Real pen digits (augmented, drawn like a canvas) and non-digit drawings, with their card entry."""
    pen = other = None
    card: dict = {}
    if config.pen_copies:
        from draw2digit import pendigits

        writers = tuple(config.pen_writers or pendigits.FIT_WRITERS)
        digits = pendigits.by_writers(pendigits.load_pendigits(), writers)
        style = config.pen_style_coverage
        strength = config.pen_perturb
        key = f"{writers}|{config.pen_copies}" + ("|style" if style else "")
        key += f"|perturb{strength}" if strength != 1.0 else ""  # the old key at the default
        key += f"|morph{config.pen_morph}" if config.pen_morph else ""
        payload = (digits, config.pen_copies, style, strength, config.pen_morph)
        images, labels = _rendered("pen", payload, key, config.seed)
        pen = Split(images, labels)
        card["pen_digits"] = {
            "dataset": "UCI Pen-Based Recognition of Handwritten Digits (pendigits-orig.tra), "
            + pendigits.LICENSE,
            "sha256": pendigits.TRAIN_SHA256,
            "writers": list(writers),
            # the writers this model has not seen, for its figures (none when it trained on all 30)
            "tuning_writers": [w for w in pendigits.TUNE_WRITERS if w not in writers],
            "heldout_writers": [w for w in pendigits.HELDOUT_WRITERS if w not in writers],
            "digits": len(digits),
            "augmented_drawings": len(labels),
            "copies_per_digit": config.pen_copies,
            "style_coverage": config.pen_style_coverage,
            "perturb_strength": strength,
            "morph_share": config.pen_morph,
        }
        if config.cut_pieces:
            key = f"{writers}|{config.cut_pieces}|perturb{strength}"
            images, labels = _rendered("pieces", (digits, config.cut_pieces, strength), key, config.seed)
            pen = Split(np.concatenate([pen.images, images]), np.concatenate([pen.labels, labels]))
            card["pen_digits"]["cut_pieces"] = {"pairs": config.cut_pieces, "pieces": len(labels)}
    if config.non_digits:
        crossings = config.scribble_crossings
        extra = config.extra_shapes
        # the old key when both are off
        key = str(config.non_digits) + (f"|x{crossings}" if crossings else "") + ("|shapes" if extra else "")
        images, labels = _rendered("non_digit", (config.non_digits, crossings, extra), key, config.seed)
        other = Split(images, labels)
        card["non_digits"] = {
            "source": NON_DIGIT_SOURCE,
            "drawings": len(labels),
            "class": NOT_A_DIGIT if config.outlier_loss == "class" else None,
            "loss": config.outlier_loss,
            "scribble_crossings": crossings,
            "extra_shapes": extra,
        }
    return pen, other, card


def init_weights(model, source: str | Path, *, seed: int = 0) -> None:
    """Copy weights layer by layer; a ten-class head seeds the first ten columns of an eleven-class one.

    A source narrower than ``model`` (``--width 48 --init-from`` a width-32 model) is widened
    so that it still computes the same function (Net2WiderNet, Chen, Goodfellow and Shlens
    2016): each new channel copies a random old one, the next layer splits the inputs from
    a copied channel between its copies, and 1 % noise breaks the copies' symmetry.
    """
    import keras

    old = keras.saving.load_model(resolve_model_path(source, ".keras"), compile=False)
    rng = np.random.default_rng(seed)
    mapping, shares = None, None  # old channel of each new input channel, and how many copies it has
    for new_layer, old_layer in zip(model.layers, old.layers, strict=True):
        weights = old_layer.get_weights()
        target = new_layer.get_weights()
        if not weights:
            continue
        if isinstance(old_layer, keras.layers.Conv2D):
            kernel = weights[0]
            if mapping is not None:
                kernel = kernel[:, :, mapping, :] / shares[None, None, :, None]
            have, want = kernel.shape[3], target[0].shape[3]
            if want < have:
                raise ValueError(f"{source} is wider than this model ({have} > {want} filters)")
            mapping = np.concatenate([np.arange(have), rng.integers(0, have, want - have)])
            shares = np.bincount(mapping, minlength=have)[mapping].astype(np.float32)
            kernel = kernel[..., mapping]
            if want > have:
                kernel = kernel + rng.normal(0, 0.01 * kernel.std(), kernel.shape)
            new_layer.set_weights([kernel.astype(np.float32), *weights[1:]])
        elif isinstance(old_layer, keras.layers.BatchNormalization):
            new_layer.set_weights([w[mapping] for w in weights])
        else:  # the classifier head: its inputs follow the last widening; it may have grown a class
            kernel, bias = target
            grown = weights[0][mapping, :] / shares[:, None]
            kernel[:, : grown.shape[1]], bias[: weights[1].shape[0]] = grown, weights[1]
            new_layer.set_weights([kernel, bias])


def make_dataset(
    split: Split,
    config: TrainConfig,
    *,
    training: bool,
    teacher=None,
    taught: np.ndarray | None = None,
    classes: int = 10,
    uniform_outliers: bool = False,
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
            seed = tf.cast(i, tf.int32)
            if config.elastic:  # affine and elastic in one resampling
                images = elastic_distort(batch[0], config.elastic, config.elastic_sigma, seed, config)
            else:
                images = random_affine(batch[0], config, seed)
            return (images, *batch[1:])

        ds = tf.data.Dataset.zip((ds, counter)).map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    if teacher is None and not uniform_outliers:
        ds = ds.map(lambda im, y, t, w: (im, y, w) if weighted else (im, y))
    else:
        weight = float(config.distill_weight)

        def soft(im, y, t, row_weight):
            target = tf.one_hot(y, classes)  # all zeros for NOT_A_DIGIT in a ten-class model
            if teacher is not None:
                said = teacher(im, training=False)[:, :10]
                said = tf.pad(said, [[0, 0], [0, classes - 10]])
                w = weight * tf.cast(t, tf.float32)[:, None]
                target = w * said + (1.0 - w) * target
            if not uniform_outliers:
                return (im, target, row_weight) if weighted else (im, target)
            outlier = tf.equal(y, NOT_A_DIGIT)
            target = tf.where(outlier[:, None], tf.fill(tf.shape(target), 1.0 / classes), target)
            sample_weight = tf.where(outlier, float(config.outlier_weight), 1.0) * row_weight
            return im, target, sample_weight

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


def _quiet_unless_progress_bar(verbose: int | str):
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
) -> dict:
    """Train, evaluate on the test set, and write the model with its card and plots.

    Returns the model card.
    """
    with _quiet_unless_progress_bar(verbose):
        return _train(config, out_dir, verbose=verbose, train_split=train_split, test_split=test_split)


def _train(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    verbose: int | str,
    train_split: Split | None,
    test_split: Split | None,
) -> dict:
    tf = import_tensorflow()
    import keras

    from draw2digit.evaluate import evaluate_arrays
    from draw2digit.model import build_model

    if config.outlier_loss not in ("class", "uniform"):  # before any work
        raise ValueError(f"outlier_loss is 'class' or 'uniform', not {config.outlier_loss!r}")
    for digit, weight in config.mnist_class_weights:
        if not (0 <= int(digit) <= 9 and weight > 0):
            raise ValueError(f"mnist_class_weights: a digit 0-9 and a weight over 0, not ({digit}, {weight})")
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

    uniform = bool(config.non_digits) and config.outlier_loss == "uniform"
    classes = 11 if config.non_digits and not uniform else 10
    teacher = None
    if config.distill_from:
        teacher = keras.saving.load_model(resolve_model_path(config.distill_from, ".keras"), compile=False)
        teacher.trainable = False
    kwargs = {"teacher": teacher, "classes": classes, "uniform_outliers": uniform}
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
    soft = teacher is not None or uniform  # soft targets: categorical loss on probability vectors
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

    hist = _read_history(out / "history.csv") or history.history
    earlier = parent_history(config.init_from, classes)
    plot_history(earlier, out / HISTORY_PLOT, then=hist)

    x_test = test_split.images.astype("float32")[..., None] / 255.0
    probs = model.predict(x_test, batch_size=512, verbose=0)[:, :10]
    report = evaluate_arrays(probs, test_split.labels)
    card = {
        "name": "draw2digit_cnn",
        "version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
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
        "config": asdict(config),
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


def _read_history(csv_path: Path) -> dict[str, list[float]]:
    """The whole run's history, including epochs done before a resume."""
    import csv

    if not csv_path.exists():
        return {}
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {k: [float(r[k]) for r in rows] for k in rows[0] if k != "epoch"}


def parent_history(init_from: str | None, classes: int) -> dict[str, list[float]]:
    """The history of the model a run starts from, when the run continues it (same classes).

    A second stage (``--init-from`` the first, say with ``--cut-pieces``) is one
    training in two runs, so its plot shows both; a run that grows a ten-class model
    into eleven classes starts a new training and shows its own epochs only.
    """
    if not init_from:
        return {}
    folder = resolve_model_path(init_from, ".keras").parent
    if read_model_card(folder).get("classes", 10) != classes:
        return {}
    return _read_history(folder / "history.csv")


def plot_history(
    history: dict[str, list[float]], path: str | Path, *, then: dict[str, list[float]] | None = None
) -> Path:
    """Accuracy and loss per epoch, train against validation; ``then``: a later run's, after a line."""
    from matplotlib.figure import Figure

    first = len(history.get("loss", []))
    if then:
        history = {k: [*history.get(k, []), *v] for k, v in then.items() if not history or k in history}
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, key, title in (
        (axes[0], "accuracy", "Accuracy"),
        (axes[1], "loss", "Loss"),
    ):
        ax.plot(epochs, history[key], "o-", label="train (augmented)")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "o-", label="validation")
        if then and first:
            ax.axvline(first + 0.5, color="grey", linestyle="--", label="second run starts")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    if "val_accuracy" in history:  # the first epoch's training accuracy may fall below: the rest may not
        lowest = min(*history["val_accuracy"], *(history["accuracy"][1:] or history["accuracy"]))
        axes[0].set_ylim(max(0.9, lowest - 0.01), 1.0)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)


@dataclass
class FinetuneConfig:
    epochs: int = 2
    learning_rate: float = 1e-4
    mnist_limit: int | None = None  # use only N MNIST training images (quick runs)
    holdout: float = 0.2  # share of the corrections kept back to measure on
    repeat: int = 20  # each correction counts this many times against 60,000 MNIST images
    seed: int = 42


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
    with _quiet_unless_progress_bar(verbose):
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

    from draw2digit.evaluate import correction_scores

    config = config or FinetuneConfig()
    seed, repeat, epochs = config.seed, config.repeat, config.epochs
    set_seeds(seed)
    base_keras = resolve_model_path(base, ".keras")
    base_card = read_model_card(base_keras.parent)
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

    model = keras.saving.load_model(base_keras, compile=False)
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

    stamp = _dt.datetime.now(_dt.timezone.utc)
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
    save_model(model, out, card, quantize=is_quantized(base_card), test=test_split)
    return read_model_card(out)
