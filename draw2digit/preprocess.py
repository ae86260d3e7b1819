"""Any drawing -> a 28x28 MNIST-style array: the one place this happens.

MNIST digits were size-normalized to fit a 20x20 box (keeping the aspect ratio,
anti-aliased) and then placed in a 28x28 field with their centre of mass at the
centre. The model only knows digits that look like that, so every front sends
its drawings through :func:`preprocess`, which does the same to whatever arrives:
a canvas PNG with a transparent background, a photo of dark ink on paper, white
chalk on a dark board, a NumPy array. Decoding and its limits live in
:mod:`draw2digit.decode`; splitting a number into digits in :mod:`draw2digit.segment`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from draw2digit.decode import (
    MAX_PIXELS,
    ImageInput,
    ImageTooLargeError,
    InvalidImageError,
    to_pil_or_array,
)

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


@dataclass(frozen=True)
class Preprocessed:
    image: np.ndarray  # (28, 28) float32, 0 = paper, 1 = ink: what the model sees
    blank: bool  # nothing (or only a speck) was drawn: do not predict
    box: tuple[int, int, int, int] | None  # ink bounding box (left, top, right, bottom) in the input
    source_size: tuple[int, int]  # (width, height) of the input


# ---------------------------------------------------------------- ink map


def _border(a: np.ndarray) -> np.ndarray:
    if min(a.shape[:2]) < 3:
        return a.reshape(-1, *a.shape[2:])
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


def _canvas_alpha(image: Image.Image) -> np.ndarray | None:
    """The alpha channel, when the paper is transparent (the common canvas case): it is the drawing."""
    if image.mode not in ("RGBA", "LA"):
        return None
    alpha = np.asarray(image.getchannel("A"))
    return alpha.astype(np.float32) * np.float32(1 / 255) if np.median(_border(alpha)) < 128 else None


def _pil_values(image: Image.Image) -> tuple[np.ndarray, float, bool]:
    """(pixels, full-scale value, has alpha) of a decoded image, in a mode NumPy reads plainly."""
    if image.mode in ("P", "PA") or image.mode not in ("L", "LA", "RGB", "RGBA", "I", "I;16", "F", "1"):
        image = image.convert("RGBA")
    arr = np.asarray(image)
    scale = 65535.0 if image.mode.startswith("I") and arr.max() > 255 else 255.0
    if image.mode == "1":
        arr, scale = arr.astype(np.uint8), 1.0
    elif image.mode == "F":
        scale = 1.0
    return arr, scale, image.mode in ("LA", "RGBA")


def _array_values(arr: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """The same for a NumPy array, checked first: arrays come from code, and code makes mistakes."""
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
    return arr, scale, arr.ndim == 3 and arr.shape[2] in (2, 4)


def _ink_from_gray(gray: np.ndarray) -> np.ndarray:
    """The border decides which side is paper; the paper's own level is subtracted."""
    gray = np.clip(gray, 0.0, 1.0)
    paper = float(np.median(_border(gray)))
    if paper >= 0.5:  # light paper, dark ink
        ink = (paper - gray) / max(paper, 1e-6)
    else:  # dark board, light ink
        ink = (gray - paper) / max(1.0 - paper, 1e-6)
    return np.clip(ink, 0.0, 1.0)


def ink_map(image: Image.Image | np.ndarray) -> np.ndarray:
    """Float32 map in [0, 1]: 1 where there is ink, 0 on the paper.

    A transparent background (a canvas) means the alpha channel is the drawing,
    whatever the stroke colour. Otherwise the border decides which side is paper,
    so dark-on-light and light-on-dark both work, and the paper's own level is
    subtracted so a grey sheet is not taken for ink.
    """
    if isinstance(image, Image.Image):
        alpha = _canvas_alpha(image)
        if alpha is not None:
            return alpha
        arr, scale, has_alpha = _pil_values(image)
    else:
        arr, scale, has_alpha = _array_values(image)
    a = np.asarray(arr, dtype=np.float32)
    if scale != 1.0:
        a = a / scale
    if has_alpha:
        if float(np.median(_border(a[..., -1]))) < 0.5:  # transparent paper: alpha is the ink
            return np.clip(a[..., -1], 0.0, 1.0)
        a = a[..., :-1]
    if a.ndim == 3:
        gray = a[..., 0] if a.shape[2] == 1 else a[..., :3] @ np.float32([0.299, 0.587, 0.114])
    else:
        gray = a
    return _ink_from_gray(gray)


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
