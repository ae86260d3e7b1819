"""Real pen-drawn digits (UCI pendigits): read, verify, split by writer, draw like a canvas.

MNIST digits were written on paper forms and scanned; Draw2Digit's users draw
with a mouse, a finger or a pen. The pendigits trajectories (30 writers, about
250 digits each, written with a stylus on a tablet) are the closest thing we
have to a user's drawing, so they are how the model is graded: always on
writers it never trained or was tuned on.

Data: E. Alpaydin and F. Alimoglu, "Pen-Based Recognition of Handwritten
Digits", UCI Machine Learning Repository (id 81), 1998, CC BY 4.0. It is not
committed here; it is read from ``$DRAW2DIGIT_PENDIGITS_DIR`` or a
``shared/data/pendigits`` folder beside the project.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from draw2digit.artifacts import ModelCard
from draw2digit.canvas import render_strokes
from draw2digit.preprocess import INK_THRESHOLD, ink_map, preprocess
from draw2digit.segment import cut_sides, piece_image
from draw2digit.training.data import DataError, DataIntegrityError

ENV_PENDIGITS_DIR = "DRAW2DIGIT_PENDIGITS_DIR"
TRAIN_FILE = "pendigits-orig.tra"
#: SHA-256 of the file as published by UCI (the shared copy's SHA256SUMS agrees).
TRAIN_SHA256 = "a66225d68d7d68591e62944df1ad33b3f5aa608e2df2505844b41f5568a80da4"
LICENSE = "CC BY 4.0; E. Alpaydin, F. Alimoglu, UCI Machine Learning Repository (id 81), 1998"
WRITERS = tuple(range(1, 31))
#: Writers kept out of every training, tuning and calibration step: all real-drawing
#: figures are measured on them. 10 of the 30, drawn once:
#: ``sorted(np.random.default_rng(10).choice(30, 10, replace=False) + 1)``.
HELDOUT_WRITERS: tuple[int, ...] = (5, 7, 14, 16, 17, 20, 22, 25, 26, 28)
TRAIN_WRITERS: tuple[int, ...] = tuple(w for w in WRITERS if w not in HELDOUT_WRITERS)
#: Of the other 20, four are kept out of the network's training to tune on: the
#: "not a digit" threshold is set on their drawings, as on a new user's
#: (``sorted(np.array(TRAIN_WRITERS)[np.random.default_rng(11).choice(20, 4, replace=False)])``).
TUNE_WRITERS: tuple[int, ...] = (3, 12, 23, 27)
FIT_WRITERS: tuple[int, ...] = tuple(w for w in TRAIN_WRITERS if w not in TUNE_WRITERS)


@dataclass(frozen=True)
class PenDigit:
    """One digit as its writer drew it: strokes of (x, y) points, y down as on a screen."""

    label: int
    writer: int
    sample: int
    strokes: tuple[np.ndarray, ...]  # each (n, 2) float32, tablet units

    @property
    def points(self) -> int:
        return sum(len(s) for s in self.strokes)


def default_dirs() -> list[Path]:
    """Where to look: the variable, else ``shared/data/pendigits`` beside the project or the cwd."""
    env = os.environ.get(ENV_PENDIGITS_DIR)
    if env:
        return [Path(env)]
    project = Path(__file__).resolve().parent.parent
    return [p / ".." / "shared" / "data" / "pendigits" for p in (project, Path.cwd())]


def find_file(folder: str | os.PathLike | None = None) -> Path:
    dirs = [Path(folder)] if folder else default_dirs()
    for d in dirs:
        if (d / TRAIN_FILE).is_file():
            return (d / TRAIN_FILE).resolve()
    where = ", ".join(str(d) for d in dirs)
    raise DataError(
        f"pen digits not found: no {TRAIN_FILE} in {where}. Put the UCI pendigits files there "
        f"or point {ENV_PENDIGITS_DIR} at their folder."
    )


def parse_unipen(text: str) -> list[PenDigit]:
    """Digits from UNIPEN text (see the data set's README): y is flipped so it points down."""
    digits: list[PenDigit] = []
    label = writer = sample = None
    strokes: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] | None = None

    def finish() -> None:
        if label is not None:
            if not strokes:
                raise DataIntegrityError(f"digit {sample} of writer {writer} has no strokes")
            arrays = tuple(np.array(s, np.float32).reshape(-1, 2) * (1, -1) for s in strokes)
            digits.append(PenDigit(label, writer, sample, arrays))

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        try:
            if line.startswith(".SEGMENT"):
                finish()
                label, strokes = int(line.rsplit('"', 2)[-2]), []
                writer = sample = None
            elif line.startswith(".COMMENT"):
                _, lab, writer, sample = line.split()
                writer, sample = int(writer), int(sample)
                if int(lab) != label:
                    raise ValueError(f"label {lab} differs from the segment's {label}")
            elif line.startswith(".PEN_DOWN"):
                current = []
            elif line.startswith(".PEN_UP"):
                if current:
                    strokes.append(current)
                current = None
            elif line.startswith("."):
                continue  # .DT, .INCLUDE, .LEXICON, .HIERARCHY: nothing we need
            elif current is not None:
                x, y = line.split()
                current.append((float(x), float(y)))
        except (ValueError, IndexError) as exc:
            raise DataIntegrityError(
                f"pen data line {lineno} is not UNIPEN ({raw.strip()!r}): {exc}"
            ) from exc
    finish()
    return digits


_CACHE: dict[Path, list[PenDigit]] = {}


def load_pendigits(folder: str | os.PathLike | None = None, *, verify: bool = True) -> list[PenDigit]:
    """All 7,494 training-writer digits, checked against the published SHA-256 first."""
    path = find_file(folder)
    if path in _CACHE:
        return _CACHE[path]
    data = path.read_bytes()
    if verify and hashlib.sha256(data).hexdigest() != TRAIN_SHA256:
        raise DataIntegrityError(
            f"{path} does not match its published SHA-256 ({TRAIN_SHA256[:12]}...): "
            "the file is damaged or not the UCI original; fetch it again"
        )
    digits = parse_unipen(data.decode("ascii", errors="strict"))
    _CACHE[path] = digits
    return digits


def seen_in_training(card: ModelCard, writers: Sequence[int]) -> list[int]:
    """Which of ``writers`` a model (by its card) trained on: their figures are not held-out figures."""
    return sorted(set(card.pen_writers) & set(writers))


def by_writers(digits: Sequence[PenDigit], writers: Sequence[int]) -> list[PenDigit]:
    keep = set(writers)
    return [d for d in digits if d.writer in keep]


# ---------------------------------------------------------------- drawing


@dataclass(frozen=True)
class Style:
    """How one person puts a digit on the pad: all sizes are fractions of the canvas."""

    height: float = 0.6  # the ink's height
    center: tuple[float, float] = (0.5, 0.5)
    pen: float = 18.0  # pen width in canvas pixels
    slant: float = 0.0  # degrees, positive leans right
    rotation: float = 0.0  # degrees
    aspect: float = 1.0  # width stretch
    smooth: bool = True  # draw like the page: curves through the sampled points


def random_style(rng: np.random.Generator, canvas: int = 280, tilt: float = 12.0) -> Style:
    """Sizes, places, pens and slants as users vary them on a ``canvas``-pixel pad."""
    height = float(rng.uniform(0.3, 0.85))
    margin = height / 2 + 0.03
    return Style(
        height=height,
        center=(float(rng.uniform(margin, 1 - margin)), float(rng.uniform(margin, 1 - margin))),
        pen=float(rng.uniform(0.025, 0.12) * canvas * max(height, 0.45)),
        slant=float(rng.uniform(-tilt, tilt)),
        rotation=float(rng.uniform(-tilt / 2, tilt / 2)),
        aspect=float(np.exp(rng.uniform(-0.15, 0.15))),
        smooth=bool(rng.random() < 0.7),
    )


def _smooth(points: np.ndarray, per_segment: int = 4) -> np.ndarray:
    """The page's quadratic curves through midpoints, sampled: a marker-like line."""
    if len(points) < 3:
        return points
    mids = (points[:-1] + points[1:]) / 2
    out = [points[0], mids[0]]
    t = np.linspace(0, 1, per_segment + 1)[1:, None]
    for i in range(1, len(points) - 1):
        a, c, b = mids[i - 1], points[i], mids[i]
        out.extend((1 - t) ** 2 * a + 2 * (1 - t) * t * c + t**2 * b)
    out.append(points[-1])
    return np.asarray(out, np.float32)


def place(digit: PenDigit, style: Style, canvas: int | tuple[int, int] = 280) -> list[np.ndarray]:
    """The digit's strokes in canvas pixels: slanted, rotated, scaled and moved as ``style`` says."""
    w, h = (canvas, canvas) if isinstance(canvas, int) else canvas
    pts = np.concatenate(digit.strokes)
    centre = (pts.min(0) + pts.max(0)) / 2
    a, s = np.radians(style.rotation), np.tan(np.radians(style.slant))
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
    shear = np.array([[style.aspect, -s], [0.0, 1.0]], np.float32)  # y down: -s leans the top right
    m = rot @ shear
    moved = [(st - centre) @ m.T for st in digit.strokes]
    allp = np.concatenate(moved)
    ink_h = max(float(np.ptp(allp[:, 1])), 1e-6)
    ink_w = float(np.ptp(allp[:, 0]))
    scale = style.height * h / ink_h
    if ink_w * scale > 0.92 * w:  # a wide digit (a flat 7, a long 1 stroke) still fits the pad
        scale = 0.92 * w / max(ink_w, 1e-6)
    mid = (allp.min(0) + allp.max(0)) / 2
    target = np.array([style.center[0] * w, style.center[1] * h], np.float32)
    placed = [(st - mid) * scale + target for st in moved]
    return [_smooth(p) if style.smooth else p for p in placed]


def draw_pen_digit(
    digit: PenDigit,
    style: Style | None = None,
    canvas: int | tuple[int, int] = 280,
    *,
    supersample: int = 2,
) -> Image.Image:
    """A canvas PNG-like drawing (black on transparent) of a real pen digit."""
    style = style or Style()
    strokes = [[(float(x), float(y)) for x, y in p] for p in place(digit, style, canvas)]
    return render_strokes(strokes, canvas, style.pen, supersample=supersample)


def perturb(digit: PenDigit, rng: np.random.Generator, strength: float = 1.0) -> PenDigit:
    """Stroke-level augmentation: the same digit as the writer might have drawn it another time.

    Each stroke is resampled (faster or slower writing: fewer or more points),
    its points jittered, and the whole digit bent by a smooth random warp, so
    the network learns the writer's shape, not one trace of it.
    """
    pts = np.concatenate(digit.strokes)
    size = max(float(np.ptp(pts[:, 0])), float(np.ptp(pts[:, 1])), 1.0)
    lo = pts.min(0)
    # A smooth warp: a random low-frequency displacement field over the digit's box.
    k = rng.normal(0, 0.04 * strength, size=(2, 2, 2)) * size
    out = []
    for st in digit.strokes:
        if len(st) > 3 and rng.random() < 0.5:  # another writing speed: keep a random subset
            keep = np.sort(
                rng.choice(len(st), size=max(3, int(len(st) * rng.uniform(0.5, 1.0))), replace=False)
            )
            keep[0], keep[-1] = 0, len(st) - 1
            st = st[np.unique(keep)]
        u = (st - lo) / size
        disp = np.stack(
            [
                k[0, 0, 0] * np.sin(np.pi * u[:, 0]) + k[0, 0, 1] * np.sin(np.pi * u[:, 1]),
                k[1, 1, 0] * np.sin(np.pi * u[:, 0]) + k[1, 1, 1] * np.sin(np.pi * u[:, 1]),
            ],
            1,
        )
        jitter = rng.normal(0, 0.008 * strength * size, size=st.shape)
        out.append((st + disp + jitter).astype(np.float32))
    return PenDigit(digit.label, digit.writer, digit.sample, tuple(out))


def render_training_set(
    digits: Sequence[PenDigit],
    copies: int,
    seed: int,
    *,
    canvas: int = 140,
    strength: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``copies`` augmented drawings of each digit, preprocessed exactly as the server does.

    Returns (images uint8 (n, 28, 28), labels uint8). ``strength`` scales
    :func:`perturb`'s warp and jitter. A small canvas keeps this fast; the
    preprocessing rescales every drawing to MNIST's framing anyway.
    """
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for _ in range(copies):
        for d in digits:
            drawing = draw_pen_digit(perturb(d, rng, strength), random_style(rng, canvas), canvas)
            p = preprocess(drawing)
            if p.blank:
                continue
            images.append(np.uint8(np.round(p.image * 255)))
            labels.append(d.label)
    return np.stack(images), np.array(labels, np.uint8)


def _layout(
    digits: Sequence[PenDigit],
    rng: np.random.Generator,
    height: float,
    gaps: tuple[float, float] = (-0.06, 0.45),
) -> tuple[list[list[np.ndarray]], tuple[int, int], float]:
    """Where :func:`pen_number` writes each digit: (strokes per digit, canvas size, pen width)."""
    slant = float(rng.uniform(-10, 10))
    pen = float(rng.uniform(0.06, 0.14) * height)
    pieces = []
    for d in digits:
        style = Style(height=1.0, center=(0.5, 0.5), pen=pen, slant=slant, smooth=True)
        h = height * float(rng.uniform(0.85, 1.15))
        strokes = place(d, style, (10_000, round(h)))  # a wide pad, so no digit is squeezed
        pts = np.concatenate(strokes)
        left = pts[:, 0].min()
        pieces.append([s - (left, 0) for s in strokes])
    margin = height / 3
    canvas_h = int(height * 1.6 + 2 * margin)
    x = margin
    placed = []
    for i, strokes in enumerate(pieces):
        if i:  # the gap is between the ink's edges: the pen's width is added to the centre lines'
            x += float(rng.uniform(*gaps)) * height + pen
        far = np.concatenate(strokes).max(axis=0)  # (right, bottom): the pieces start at x = 0
        y = (canvas_h - max(float(far[1]), 1.0)) / 2 + float(rng.uniform(-0.1, 0.1)) * height
        placed.append([s + np.array([x, y], np.float32) for s in strokes])
        x += float(far[0])
    return placed, (int(x + margin), canvas_h), pen


def _draw(strokes: Sequence[np.ndarray], size: tuple[int, int], pen: float) -> Image.Image:
    return render_strokes([[(float(a), float(b)) for a, b in s] for s in strokes], size, pen)


def pen_number(digits: Sequence[PenDigit], rng: np.random.Generator, *, height: float = 120.0) -> Image.Image:
    """Real pen digits written side by side as one canvas drawing (black on transparent).

    One writer's pen and slant for the whole number; per digit, random sizes
    (±15 %) and baselines (±10 % of the height), and gaps from a slight overlap
    to a wide space, as numbers are written by hand.
    """
    placed, size, pen = _layout(digits, rng, height)
    return _draw([s for strokes in placed for s in strokes], size, pen)


def touching_pair(
    digits: Sequence[PenDigit], rng: np.random.Generator, strength: float = 1.0, height: float = 80.0
) -> tuple[Image.Image, list[Image.Image], list[PenDigit]]:
    """Two of ``digits``, bent by :func:`perturb`, written so that they touch or overlap.

    Returns the drawing, each digit drawn alone on the same canvas (whose ink is whose),
    and the two digits.
    """
    pair = [perturb(digits[i], rng, strength) for i in rng.choice(len(digits), 2, replace=False)]
    placed, size, pen = _layout(pair, rng, height, gaps=(-0.15, 0.0))
    drawing = _draw([s for strokes in placed for s in strokes], size, pen)
    return drawing, [_draw(strokes, size, pen) for strokes in placed], pair


def render_cut_pieces(
    digits: Sequence[PenDigit],
    count: int,
    seed: int,
    *,
    strength: float = 1.0,
    height: float = 80.0,
    whole_share: float = 0.8,
    foreign_share: float = 0.2,
) -> tuple[np.ndarray, np.ndarray]:
    """Digits as the number reader cuts them out of touching pairs, labelled by whose ink they hold.

    ``count`` pairs of two digits are written so that they touch or overlap and cut
    at every place the reader tries (:func:`draw2digit.segment.cut_sides`; the reader
    also retries each cut with the ink near it on both halves, not learned here). A
    piece holding at least ``whole_share`` of one digit's ink, with at most
    ``foreign_share`` of its own ink from the neighbour, is that digit: the network
    learns that a digit missing the edge its neighbour took is still itself, so the
    reader's right cut wins over a wrong one. Other pieces are left out.
    Returns (images uint8 (n, 28, 28), labels uint8), prepared as the reader does.
    """

    rng = np.random.default_rng(seed)
    images, labels = [], []
    for _ in range(count):
        drawing, alone, pair = touching_pair(digits, rng, strength, height)
        ink = ink_map(drawing)
        owners = [ink_map(a) for a in alone]
        mask = ink > max(INK_THRESHOLD, 0.25 * float(ink.max(initial=0.0)))
        blobs, n = ndimage.label(mask, structure=np.ones((3, 3)))
        if n == 0:
            continue
        biggest = 1 + int(np.argmax(ndimage.sum_labels(mask, blobs, np.arange(1, n + 1))))
        keep = blobs == biggest
        totals = [float((o * mask).sum()) for o in owners]
        inside = [float((o * keep).sum()) for o in owners]
        if min(totals) == 0 or any(i < 0.9 * t for i, t in zip(inside, totals, strict=True)):
            continue  # not touching: the reader would not cut it
        cols = np.flatnonzero(keep.any(axis=0))
        left, right = int(cols[0]), int(cols[-1]) + 1
        top, bottom, sides = cut_sides(ink, mask, keep, left, right)
        for side in sides:
            for half in (side, ~side):
                piece = np.zeros_like(keep)
                piece[top:bottom, left:right] = keep[top:bottom, left:right] & half
                held = [float((o * piece).sum()) for o in owners]
                k = int(np.argmax(held))
                if held[k] < whole_share * totals[k] or held[1 - k] > foreign_share * sum(held):
                    continue
                cols = np.flatnonzero(piece.any(axis=0))
                item = piece_image(ink, piece, int(cols[0]), int(cols[-1]) + 1)
                if item is not None:
                    images.append(np.uint8(np.round(item.image * 255)))
                    labels.append(pair[k].label)
    if not images:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8)
    return np.stack(images), np.array(labels, np.uint8)
