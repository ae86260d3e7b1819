"""Any image input -> a decoded image, safely: data URLs, base64, bytes, files, size limits.

Everything that arrives from outside (a browser, an upload, a file) passes
through here before a pixel is read: the format and pixel count are checked
from the header alone (decompression bombs), and text from the network is
decoded as a data URL or base64, never read as a server path. Errors carry a
message meant for the user.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

#: Formats we decode; others are refused before their pixels are read.
SUPPORTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "BMP", "GIF"})
#: Refuse images with more pixels than this (decompression bombs), from the header alone.
MAX_PIXELS = 16_000_000
#: Refuse encoded inputs larger than this before decoding anything.
MAX_BYTES = 10 * 1024 * 1024

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
