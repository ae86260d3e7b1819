"""Any drawing -> a 28x28 MNIST-style array: the one place this happens.

MNIST digits were size-normalized to fit a 20x20 box (keeping the aspect ratio,
anti-aliased) and then placed in a 28x28 field with their centre of mass at the
centre. The model only knows digits that look like that, so every front sends
its drawings through :func:`preprocess`, which does the same to whatever arrives:
a canvas PNG with a transparent background, a photo of dark ink on paper, white
chalk on a dark board, a NumPy array.
"""

from __future__ import annotations

import base64
import binascii
import io
import itertools
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError
from scipy import ndimage

#: Formats we decode; others are refused before their pixels are read.
SUPPORTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "BMP", "GIF"})
#: Refuse images with more pixels than this (decompression bombs), from the header alone.
MAX_PIXELS = 16_000_000
#: Refuse encoded inputs larger than this before decoding anything.
MAX_BYTES = 10 * 1024 * 1024

# Targets measured on MNIST's training set (see README, "Preprocessing").
BOX = 20  # the digit's longer side in the 28x28 field
SIZE = 28
CENTRE = 14.0  # MNIST's mean centre of mass (row, column) is (14.0, 14.0)
MNIST_STROKE = 1.96  # median stroke width in pixels at the 20-pixel scale

# Blank detection: ink must stand out from the paper and must not be a speck.
MIN_CONTRAST = 0.15  # of the full 0..1 range
MIN_EXTENT = 0.04  # of the image's longer side
MIN_STROKES_ACROSS = 3.0  # a digit is longer than this many of its own stroke widths
INK_THRESHOLD = 0.08  # below this (after background removal), a pixel is paper

ImageInput = str | bytes | bytearray | memoryview | os.PathLike | Image.Image | np.ndarray

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*?),(?P<data>.*)$", re.S)


class PreprocessError(ValueError):
    """Base class: the input cannot become model input. The message is for the user."""


class InvalidImageError(PreprocessError):
    """Not decodable as an image (bad base64, truncated or garbage bytes, bad array)."""


class UnsupportedImageError(PreprocessError):
    """A real image in a format we do not accept."""


class ImageTooLargeError(PreprocessError):
    """Too many bytes or too many pixels (decompression bomb guard)."""


@dataclass(frozen=True)
class Preprocessed:
    image: np.ndarray  # (28, 28) float32, 0 = paper, 1 = ink: what the model sees
    blank: bool  # nothing (or only a speck) was drawn: do not predict
    box: tuple[int, int, int, int] | None  # ink bounding box (left, top, right, bottom) in the input
    source_size: tuple[int, int]  # (width, height) of the input


# ---------------------------------------------------------------- decoding


def decode_base64(text: str) -> bytes:
    """Base64 with or without padding, whitespace or line breaks; URL-safe too."""
    cleaned = re.sub(r"\s+", "", text)
    if not cleaned:
        raise InvalidImageError("the image data is empty")
    if len(cleaned) > MAX_BYTES * 4 // 3 + 4:
        raise ImageTooLargeError(f"the image is larger than {MAX_BYTES // (1024 * 1024)} MB")
    cleaned = cleaned.rstrip("=")
    if len(cleaned) % 4 == 1:
        raise InvalidImageError("the image data is not valid base64 (wrong length)")
    cleaned += "=" * (-len(cleaned) % 4)
    altchars = b"-_" if ("-" in cleaned or "_" in cleaned) else None
    try:
        return base64.b64decode(cleaned, altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImageError("the image data is not valid base64") from exc


def decode_data_url(text: str) -> bytes:
    match = _DATA_URL.match(text.strip())
    if not match:
        raise InvalidImageError("malformed data URL (expected data:image/...;base64,...)")
    mime = (match["mime"] or "").lower()
    if mime and not mime.startswith("image/"):
        raise UnsupportedImageError(f"data URL has type {mime!r}, not an image")
    if ";base64" not in (match["params"] or "").lower():
        raise InvalidImageError("data URL is not base64-encoded")
    return decode_base64(match["data"])


def decode_image_text(text: str) -> bytes:
    """Image bytes from a data URL or base64 text, never from the filesystem.

    For text that arrives over the network: a string that happens to name a file
    on the server must not be read.
    """
    stripped = text.strip()
    return decode_data_url(stripped) if stripped.startswith("data:") else decode_base64(stripped)


def _from_string(text: str) -> bytes:
    stripped = text.strip()
    if stripped.startswith("data:"):
        return decode_data_url(stripped)
    if len(stripped) < 4096 and "\n" not in stripped:
        path = Path(stripped).expanduser()
        try:
            if path.is_file():
                return _read_file(path)
        except OSError:
            pass
    try:
        return decode_base64(stripped)
    except InvalidImageError:
        if len(stripped) < 4096 and ("/" in stripped or "." in stripped):
            raise InvalidImageError(f"no such file, and not base64 image data: {stripped[:80]!r}") from None
        raise


def _read_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidImageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if size > MAX_BYTES:
        raise ImageTooLargeError(f"{path} is larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidImageError(f"cannot read {path}: {exc.strerror or exc}") from exc


def open_image(data: bytes) -> Image.Image:
    """Decode bytes after checking format and pixel count from the header alone."""
    if len(data) > MAX_BYTES:
        raise ImageTooLargeError(f"the image is larger than {MAX_BYTES // (1024 * 1024)} MB")
    if not data:
        raise InvalidImageError("the image data is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))  # lazy: reads the header only
    except UnidentifiedImageError as exc:
        raise InvalidImageError("the data is not an image we can read") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"the image has too many pixels (limit {MAX_PIXELS:,})") from exc
    except Exception as exc:
        raise InvalidImageError(f"the data is not a readable image ({exc})") from exc
    _check_image(im)
    try:
        if getattr(im, "is_animated", False):
            im = next(iter(ImageSequence.Iterator(im)))
        im.load()
    except Exception as exc:
        raise InvalidImageError(f"the image data is corrupt or truncated ({exc})") from exc
    return im


def _check_image(im: Image.Image) -> None:
    if im.format is not None and im.format not in SUPPORTED_FORMATS:
        raise UnsupportedImageError(f"{im.format} images are not supported; send PNG, JPEG, WebP, BMP or GIF")
    w, h = im.size
    if w * h > MAX_PIXELS:
        raise ImageTooLargeError(f"the image has {w}x{h} pixels, more than the limit of {MAX_PIXELS:,}")
    if w < 1 or h < 1:
        raise InvalidImageError("the image has no pixels")


def to_pil_or_array(source: ImageInput) -> Image.Image | np.ndarray:
    """Turn any accepted input into a decoded PIL image or a 2-D/3-D array."""
    if isinstance(source, Image.Image):
        _check_image(source)
        return source
    if isinstance(source, np.ndarray):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if data[:5] == b"data:":
            data = decode_data_url(data.decode("ascii", "replace"))
        return open_image(data)
    if isinstance(source, os.PathLike):
        return open_image(_read_file(Path(source)))
    if isinstance(source, str):
        return open_image(_from_string(source))
    raise InvalidImageError(f"cannot read an image from {type(source).__name__}")


# ---------------------------------------------------------------- ink map


def _border(a: np.ndarray) -> np.ndarray:
    if min(a.shape[:2]) < 3:
        return a.reshape(-1, *a.shape[2:])
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


def ink_map(image: Image.Image | np.ndarray) -> np.ndarray:
    """Float32 map in [0, 1]: 1 where there is ink, 0 on the paper.

    A transparent background (a canvas) means the alpha channel is the drawing,
    whatever the stroke colour. Otherwise the border decides which side is paper,
    so dark-on-light and light-on-dark both work, and the paper's own level is
    subtracted so a grey sheet is not taken for ink.
    """
    if isinstance(image, Image.Image) and image.mode in ("RGBA", "LA"):
        alpha = np.asarray(image.getchannel("A"))
        if np.median(_border(alpha)) < 128:  # transparent paper: alpha is the ink (the common canvas case)
            return alpha.astype(np.float32) * np.float32(1 / 255)
    if isinstance(image, Image.Image):
        if image.mode in ("P", "PA") or image.mode not in ("L", "LA", "RGB", "RGBA", "I", "I;16", "F", "1"):
            image = image.convert("RGBA")
        arr = np.asarray(image)
        scale = 65535.0 if image.mode.startswith("I") and arr.max() > 255 else 255.0
        if image.mode == "1":
            arr, scale = arr.astype(np.uint8), 1.0
        elif image.mode == "F":
            scale = 1.0
        has_alpha = image.mode in ("LA", "RGBA")
    else:
        arr = image
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
            raise InvalidImageError(f"an image array must be (h, w) or (h, w, 1-4 channels), not {arr.shape}")
        if arr.size == 0:
            raise InvalidImageError("the image array is empty")
        if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
            raise ImageTooLargeError(f"the image has more than {MAX_PIXELS:,} pixels")
        if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
            raise InvalidImageError(f"an image array must be numeric, not {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise InvalidImageError("the image array contains NaN or infinity")
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
        scale = 255.0 if arr.dtype == np.uint8 or float(arr.max(initial=0)) > 1.0 else 1.0
        if arr.dtype == np.uint16:
            scale = 65535.0
        has_alpha = arr.ndim == 3 and arr.shape[2] in (2, 4)

    a = np.asarray(arr, dtype=np.float32)
    if scale != 1.0:
        a = a / scale
    if has_alpha:
        alpha = a[..., -1]
        if float(np.median(_border(alpha))) < 0.5:  # transparent paper: alpha is the ink
            return np.clip(alpha, 0.0, 1.0)
        a = a[..., :-1]
    if a.ndim == 3:
        gray = a[..., 0] if a.shape[2] == 1 else a[..., :3] @ np.float32([0.299, 0.587, 0.114])
    else:
        gray = a
    gray = np.clip(gray, 0.0, 1.0)
    paper = float(np.median(_border(gray)))
    if paper >= 0.5:  # light paper, dark ink
        ink = (paper - gray) / max(paper, 1e-6)
    else:  # dark board, light ink
        ink = (gray - paper) / max(1.0 - paper, 1e-6)
    return np.clip(ink, 0.0, 1.0)


# ---------------------------------------------------------------- MNIST recipe


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask: ink area over the number of runs.

    Every row and column crossing a stroke starts one run; summed over both
    directions that is about the stroke's length (times 1 to 1.4 by angle).
    """
    m = mask.astype(bool, copy=False)
    runs = (
        np.count_nonzero(m[:, 1:] & ~m[:, :-1])
        + np.count_nonzero(m[:, 0])
        + np.count_nonzero(m[1:] & ~m[:-1])
        + np.count_nonzero(m[0])
    )
    return np.count_nonzero(m) / runs if runs else 0.0


def normalize_stroke(ink: np.ndarray, box_side: int, width: float | None = None) -> np.ndarray:
    """Thicken hairlines and thin marker blobs towards MNIST's stroke width.

    The width that matters is the width after scaling to 20 pixels, so the
    target in the input's pixels is MNIST's width times box_side / 20.
    """
    target = MNIST_STROKE * box_side / BOX
    width = stroke_width(ink > 0.5) if width is None else width
    if width <= 0:
        return ink
    if width < 0.7 * target:  # thinner than 90 % of MNIST digits
        k = round(target - width)
        if k >= 1:
            return ndimage.grey_dilation(ink, size=(k + 1, k + 1))
    elif width > 1.45 * target:  # thicker than 90 % of MNIST digits
        k = round(width - 1.15 * target)
        if k >= 1 and k + 1 < min(ink.shape):
            thinner = ndimage.grey_erosion(ink, size=(k + 1, k + 1))
            if thinner.max() > 0.5:  # never erode a drawing away
                return thinner
    return ink


def _crop_to_ink(a: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(a.max(axis=1) > INK_THRESHOLD)
    cols = np.flatnonzero(a.max(axis=0) > INK_THRESHOLD)
    return a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def to_mnist(ink: np.ndarray, *, normalize_strokes: bool = True) -> Preprocessed:
    """The MNIST recipe on an ink map: blank check, crop, fit 20x20, centre of mass."""
    h, w = ink.shape
    source_size = (int(w), int(h))
    empty = Preprocessed(np.zeros((SIZE, SIZE), np.float32), True, None, source_size)
    if float(ink.max(initial=0.0)) < MIN_CONTRAST:
        return empty
    mask = ink > max(INK_THRESHOLD, 0.25 * float(ink.max()))
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    extent = max(bottom - top, right - left)
    if extent < max(2, MIN_EXTENT * max(h, w)):
        return empty
    crop = np.where(ink[top:bottom, left:right] > INK_THRESHOLD, ink[top:bottom, left:right], np.float32(0))
    crop = crop / np.float32(crop.max())
    width = stroke_width(crop > 0.5)  # measured once: for the dab check and for normalization
    if extent < MIN_STROKES_ACROSS * width:
        return empty  # one dab or blob of the pen (a disc is ~2.5 widths across), not a digit
    if normalize_strokes:
        pad = int(MNIST_STROKE * extent / BOX) + 1  # room to grow without clipping
        crop = _crop_to_ink(normalize_stroke(np.pad(crop, pad), extent, width))

    ch, cw = crop.shape
    scale = BOX / max(ch, cw)
    nh, nw = max(1, round(ch * scale)), max(1, round(cw * scale))
    small = Image.fromarray(np.uint8(np.clip(crop, 0, 1) * 255 + 0.5)).resize(
        (nw, nh),
        Image.LANCZOS,
        reducing_gap=3.0,  # box-reduce most of the way first: same look, faster
    )
    digit = np.asarray(small, dtype=np.float32) / 255.0
    peak = float(digit.max())
    if peak <= 0:
        return empty
    digit /= peak  # hairlines come out faint after anti-aliasing; MNIST ink reaches 1

    mass = digit.sum()
    cy = float((digit.sum(axis=1) * np.arange(nh)).sum() / mass)
    cx = float((digit.sum(axis=0) * np.arange(nw)).sum() / mass)
    oy = int(np.clip(round(CENTRE - cy), 0, SIZE - nh))
    ox = int(np.clip(round(CENTRE - cx), 0, SIZE - nw))
    out = np.zeros((SIZE, SIZE), np.float32)
    out[oy : oy + nh, ox : ox + nw] = digit
    return Preprocessed(out, False, (int(left), int(top), int(right), int(bottom)), source_size)


def preprocess(source: ImageInput, *, normalize_strokes: bool = True) -> Preprocessed:
    """Any accepted input -> :class:`Preprocessed` (28x28 image, blank flag, box).

    Raises a :class:`PreprocessError` subclass, with a message meant for the user,
    for anything that is not a usable image.
    """
    decoded = to_pil_or_array(source)
    return to_mnist(ink_map(decoded), normalize_strokes=normalize_strokes)


# ---------------------------------------------------------------- several digits


def _merge_overlapping(boxes: list[list[int]]) -> list[list[int]]:
    """Merge boxes whose column spans mostly overlap: pieces of one digit drawn apart.

    A 5's top bar, a 4 drawn in two strokes and a 7's crossbar sit above or across
    their digit; neighbouring digits overlap at most at their edges.
    """
    merged = True
    while merged:
        merged = False
        boxes.sort(key=lambda b: b[0])
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                overlap = min(a[2], b[2]) - max(a[0], b[0])
                narrower = min(a[2] - a[0], b[2] - b[0])
                if narrower > 0 and overlap > 0.3 * narrower:
                    boxes[i] = [
                        min(a[0], b[0]),
                        min(a[1], b[1]),
                        max(a[2], b[2]),
                        max(a[3], b[3]),
                        *a[4:],
                        *b[4:],
                    ]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def _merge_flat_pieces(boxes: list[list[int]], tallest: int) -> list[list[int]]:
    """A flat stroke on its own (a 5's bar, a 7's crossbar) joins the nearest digit."""
    flat = [b for b in boxes if b[3] - b[1] < 0.3 * tallest and len(boxes) > 1]
    for piece in flat:
        others = [b for b in boxes if b is not piece]
        if not others:
            break

        gaps = [max(0, max(b[0], piece[0]) - min(b[2], piece[2])) for b in others]
        target = others[int(np.argmin(gaps))]
        if min(gaps) > 0.5 * tallest:
            continue
        boxes.remove(piece)
        target[:4] = [
            min(target[0], piece[0]),
            min(target[1], piece[1]),
            max(target[2], piece[2]),
            max(target[3], piece[3]),
        ]
        target.extend(piece[4:])
    return boxes


def _split_wide(mask: np.ndarray, box: list[int], digit_height: float) -> list[tuple[int, int]]:
    """Column ranges of the digits inside one over-wide component (touching digits).

    A single handwritten digit can be a little wider than tall, so only a
    component about 1.5 digit heights wide or more is split, and only where the
    ink thins to a real valley (at most half the typical column's ink).
    """
    left, top, right, bottom = box[:4]
    width = right - left
    count = max(1, round(width / max(digit_height, 1)))
    if count == 1:
        return [(left, right)]
    columns = mask[top:bottom, left:right].sum(axis=0).astype(float)
    typical = float(np.median(columns[columns > 0])) if (columns > 0).any() else 0.0
    cuts = []
    for k in range(1, count):
        centre = k * width / count
        lo, hi = int(centre - 0.25 * width / count), int(centre + 0.25 * width / count) + 1
        cut = lo + int(np.argmin(columns[lo:hi]))
        if columns[cut] <= 0.5 * typical:
            cuts.append(cut)
    edges = [0, *cuts, width]
    return [(left + a, left + b) for a, b in itertools.pairwise(edges) if b > a]


def _best_valley(mask: np.ndarray, left: int, right: int) -> int | None:
    """The emptiest column in the middle half of a component, if the ink thins there."""
    columns = mask[:, left:right].sum(axis=0).astype(float)
    width = right - left
    lo, hi = width // 4, 3 * width // 4 + 1
    if hi - lo < 2:
        return None
    cut = lo + int(np.argmin(columns[lo:hi]))
    return left + cut if columns[cut] < 0.8 * float(np.median(columns[columns > 0])) else None


def split_digits(
    source: ImageInput,
    *,
    normalize_strokes: bool = True,
    confidence: Callable[[list[np.ndarray]], list[float]] | None = None,
) -> list[Preprocessed]:
    """Several digits written side by side -> one :class:`Preprocessed` per digit, left to right.

    Each digit's ``box`` is in the input's pixels. An empty drawing gives ``[]``.
    Touching digits are one blob of ink; given ``confidence`` (28x28 images ->
    the classifier's confidence in each), a blob that could be two digits is cut
    at its thinnest column when the classifier is surer of both halves than of
    the whole.
    """
    ink = ink_map(to_pil_or_array(source))
    if float(ink.max(initial=0.0)) < MIN_CONTRAST:
        return []
    mask = ink > max(INK_THRESHOLD, 0.25 * float(ink.max()))
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count == 0:
        return []
    slices = ndimage.find_objects(labels)
    boxes = [[s[1].start, s[0].start, s[1].stop, s[0].stop, i + 1] for i, s in enumerate(slices)]
    tallest = max(b[3] - b[1] for b in boxes)
    areas = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
    # Specks (noise, a stray dot) are neither digits nor parts of one.
    boxes = [
        b
        for b in boxes
        if max(b[2] - b[0], b[3] - b[1]) >= 0.3 * tallest or areas[b[4] - 1] >= 0.05 * areas.max()
    ]
    boxes = _merge_flat_pieces(_merge_overlapping(boxes), tallest)
    heights = sorted(b[3] - b[1] for b in boxes)
    digit_height = heights[len(heights) // 2]
    size = (ink.shape[1], ink.shape[0])

    def digit_in(keep: np.ndarray, left: int, right: int) -> Preprocessed | None:
        part = np.where(keep[:, left:right], ink[:, left:right], np.float32(0.0))
        rows = np.flatnonzero(part.max(axis=1) > INK_THRESHOLD)
        if rows.size == 0:
            return None
        item = to_mnist(part[rows[0] : rows[-1] + 1], normalize_strokes=normalize_strokes)
        if item.blank:
            return None
        l0, t0, r0, b0 = item.box
        return Preprocessed(
            item.image, False, (left + l0, int(rows[0]) + t0, left + r0, int(rows[0]) + b0), size
        )

    results = []
    for b in boxes:
        keep = np.isin(labels, b[4:])  # only this digit's own strokes, not a neighbour's edge
        for left, right in _split_wide(mask & keep, b, digit_height):
            whole = digit_in(keep, left, right)
            if whole is None:
                continue
            cut = (
                _best_valley(mask & keep, left, right)
                if confidence and right - left > 0.8 * digit_height
                else None
            )
            halves = [digit_in(keep, left, cut), digit_in(keep, cut, right)] if cut else [None]
            if all(h is not None for h in halves):
                whole_conf, *half_conf = confidence([whole.image] + [h.image for h in halves])
                if min(half_conf) > whole_conf:
                    results.extend(halves)
                    continue
            results.append(whole)
    results.sort(key=lambda p: (p.box[0] + p.box[2]) / 2)
    return results
