"""The drawings a run adds to MNIST: real pen digits, their cut pieces and non-digits.

Rendering tens of thousands of drawings takes minutes, so it runs in two
processes and is cached on disk under a key made of the inputs and of the code
that draws and prepares them: change either and the cache is renewed.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

import draw2digit
from draw2digit.paths import user_path
from draw2digit.preprocess import preprocess
from draw2digit.training import pendigits
from draw2digit.training.config import TrainConfig
from draw2digit.training.data import ENV_CACHE_DIR, Split
from draw2digit.training.synthetic import non_digit_drawings

NOT_A_DIGIT = 10  # the eleventh class of a model trained with non-digit drawings
NON_DIGIT_SOURCE = (
    "made here by synthetic.non_digit_drawings(family='fit'): letters and symbols in fonts that ship "
    "with matplotlib (DejaVu: Bitstream Vera license; Computer Modern: BaKoMa license), scribbles, shapes"
)
_RUNTIME = Path(draw2digit.__file__).parent
#: the code whose change renews the cache
RENDER_CODE = (
    _RUNTIME / "training" / "pendigits.py",
    _RUNTIME / "training" / "synthetic.py",
    _RUNTIME / "canvas.py",
    _RUNTIME / "preprocess.py",
    _RUNTIME / "decode.py",
    _RUNTIME / "segment.py",
)


def _render_chunk(args: tuple) -> tuple[np.ndarray, np.ndarray]:
    kind, payload, seed = args
    if kind == "pen":
        digits, copies, strength = payload
        return pendigits.render_training_set(digits, copies, seed, strength=strength)
    if kind == "pieces":
        digits, count, strength = payload
        return pendigits.render_cut_pieces(digits, count, seed, strength=strength)
    count, extra = payload
    drawings = non_digit_drawings(count, seed=seed, canvas=140, family="fit", extra_shapes=extra)
    items = [preprocess(im) for im, _ in drawings]
    images = np.stack([np.uint8(np.round(p.image * 255)) for p in items if not p.blank])
    return images, np.full(len(images), NOT_A_DIGIT, np.uint8)


def rendered(kind: str, chunks: list[tuple], key: str) -> tuple[np.ndarray, np.ndarray]:
    """The concatenated renders of ``chunks`` (one per process), from the cache when it has them."""
    folder = user_path(ENV_CACHE_DIR, "cache", "renders")
    code = b"".join(path.read_bytes() for path in RENDER_CODE)
    digest = hashlib.sha256(f"{kind}|{key}|".encode() + code).hexdigest()[:16]
    path = folder / f"{kind}-{digest}.npz"
    if path.is_file():
        with np.load(path) as f:
            return f["images"], f["labels"]
    with ProcessPoolExecutor(len(chunks), mp_context=get_context("spawn")) as pool:
        parts = list(pool.map(_render_chunk, [(kind, payload, seed) for payload, seed in chunks]))
    images, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, images=images, labels=labels)
    return images, labels


def extra_training_data(config: TrainConfig, workers: int = 2) -> tuple[Split | None, Split | None, dict]:
    """Real pen digits (augmented, drawn like a canvas) and non-digit drawings, with their card entry."""
    pen = other = None
    card: dict = {}
    seeds = [config.seed * 100 + i for i in range(workers)]
    if config.pen_copies:
        writers = config.writers
        digits = pendigits.by_writers(pendigits.load_pendigits(), writers)
        strength = config.pen_perturb
        chunks = [((digits[i::workers], config.pen_copies, strength), s) for i, s in enumerate(seeds)]
        images, labels = rendered("pen", chunks, f"{writers}|{config.pen_copies}|{strength}|{config.seed}")
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
            "perturb_strength": strength,
        }
        if config.cut_pieces:
            share = -(-config.cut_pieces // workers)
            chunks = [((digits, share, strength), s) for s in seeds]
            key = f"{writers}|{config.cut_pieces}|{strength}|{config.seed}"
            images, labels = rendered("pieces", chunks, key)
            pen = Split(np.concatenate([pen.images, images]), np.concatenate([pen.labels, labels]))
            card["pen_digits"]["cut_pieces"] = {"pairs": config.cut_pieces, "pieces": len(labels)}
    if config.non_digits:
        chunks = [((-(-config.non_digits // workers), config.extra_shapes), s) for s in seeds]
        key = f"{config.non_digits}|{config.extra_shapes}|{config.seed}"
        images, labels = rendered("non_digit", chunks, key)
        other = Split(images, labels)
        card["non_digits"] = {
            "source": NON_DIGIT_SOURCE,
            "drawings": len(labels),
            "class": NOT_A_DIGIT,
            "extra_shapes": config.extra_shapes,
        }
    return pen, other, card
