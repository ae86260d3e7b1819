from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from draw2digit import decode
from draw2digit import preprocess as pp
from draw2digit.canvas import render_strokes, to_png
from draw2digit.training.synthetic import DIGIT_STROKES, digit_drawing, place_strokes


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two 28x28 images, blind to sub-pixel and one-pixel shifts."""
    a, b = ndimage.gaussian_filter(a, 1.0), ndimage.gaussian_filter(b, 1.0)
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.fixture(scope="module")
def reference() -> dict[int, np.ndarray]:
    return {d: pp.preprocess(digit_drawing(d)).image for d in (2, 4, 7)}


def test_output_is_mnist_framed(reference):
    img = reference[2]
    assert img.shape == (28, 28) and img.dtype == np.float32
    assert img.min() >= 0 and img.max() == pytest.approx(1.0)
    rows = np.flatnonzero(img.max(axis=1) > 0.05)
    cols = np.flatnonzero(img.max(axis=0) > 0.05)
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (19, 20, 21)
    ys, xs = np.mgrid[:28, :28]
    assert abs((img * ys).sum() / img.sum() - 14) < 0.75
    assert abs((img * xs).sum() / img.sum() - 14) < 0.75


VARIANTS = {
    "small, top-left": {"size": 400, "box": (0.02, 0.02, 0.2, 0.25), "width": 6},
    "huge canvas, bottom-right": {"size": 900, "box": (0.55, 0.5, 0.95, 0.98), "width": 40},
    "dark on white paper": {"ink": (0, 0, 0), "background": (255, 255, 255), "mode": "RGB"},
    "white on black board": {"ink": (255, 255, 255), "background": (0, 0, 0), "mode": "RGB"},
    "grey paper, blue ink": {"ink": (40, 40, 160), "background": (200, 200, 190), "mode": "RGB"},
    "red on transparent": {"ink": (255, 0, 0, 255)},
    "hairline pen": {"width": 2},
    "fat marker": {"width": 44},
    "wide canvas": {"size": (700, 240), "box": (0.1, 0.05, 0.3, 0.95), "width": 12},
}


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("digit", [2, 4, 7])
def test_same_digit_any_way_drawn_gives_nearly_same_input(reference, digit, name):
    opts = dict(VARIANTS[name])
    size = opts.pop("size", 280)
    box = opts.pop("box", (0.2, 0.1, 0.8, 0.9))
    w, h = (size, size) if isinstance(size, int) else size
    strokes = [
        [(w * (box[0] + x * (box[2] - box[0])), h * (box[1] + y * (box[3] - box[1]))) for x, y in s]
        for s in DIGIT_STROKES[digit]
    ]
    drawn = render_strokes(strokes, (w, h), opts.pop("width", 18), **opts)
    out = pp.preprocess(drawn)
    assert not out.blank
    assert similarity(out.image, reference[digit]) > 0.85, name


def test_stroke_normalization_pulls_widths_together():
    thin = digit_drawing(4, width=2)
    fat = digit_drawing(4, width=44)
    raw_gap = abs(
        pp.preprocess(thin, normalize_strokes=False).image.sum()
        - pp.preprocess(fat, normalize_strokes=False).image.sum()
    )
    norm_gap = abs(pp.preprocess(thin).image.sum() - pp.preprocess(fat).image.sum())
    assert norm_gap < 0.6 * raw_gap


def test_stroke_width_estimate():
    for width in (4, 10, 20):
        im = render_strokes(place_strokes(DIGIT_STROKES[7]), 280, width)
        est = pp.stroke_width(np.asarray(im)[..., 3] > 127)
        assert 0.7 * width < est < 1.3 * width


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGBA", (280, 280), (0, 0, 0, 0)),
        Image.new("RGB", (280, 280), (255, 255, 255)),
        Image.new("L", (50, 90), 0),
    ],
    ids=["transparent canvas", "white paper", "black board"],
)
def test_empty_drawings_are_blank(image):
    out = pp.preprocess(image)
    assert out.blank and out.box is None and not out.image.any()


def test_speck_and_faint_noise_are_blank(rng):
    speck = render_strokes([[(140, 140)]], 280, 6)
    assert pp.preprocess(speck).blank
    dab = render_strokes([[(140, 140), (143, 141)]], 280, 18)  # one click with the page's brush
    assert pp.preprocess(dab).blank
    dash = render_strokes([[(110, 140), (170, 140)]], 280, 18)  # ... but a stroke is a drawing
    assert not pp.preprocess(dash).blank
    noisy = np.clip(235 + rng.normal(0, 6, (280, 280)), 0, 255).astype(np.uint8)  # grey paper grain
    assert pp.preprocess(noisy).blank
    # ... but a real stroke on that same paper is not.
    noisy[60:220, 138:146] = 30
    assert not pp.preprocess(noisy).blank


def test_box_reports_where_the_ink_is():
    im = render_strokes([[(50, 40), (50, 200)]], 280, 10)
    left, top, right, bottom = pp.preprocess(im).box
    assert 40 <= left <= 46 and 54 <= right <= 60 and 30 <= top <= 36 and 204 <= bottom <= 210


def _encoded(fmt: str, image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def drawing():
    return digit_drawing(3)


def test_every_input_form_gives_the_same_image(drawing, tmp_path):
    png = to_png(drawing)
    b64 = base64.b64encode(png).decode()
    path = tmp_path / "three.png"
    path.write_bytes(png)
    forms = {
        "data URL": "data:image/png;base64," + b64,
        "bare base64": b64,
        "base64, no padding": b64.rstrip("="),
        "base64 with line breaks": "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)) + "\n",
        "url-safe base64": base64.urlsafe_b64encode(png).decode(),
        "bytes": png,
        "data URL as bytes": ("data:image/png;base64," + b64).encode(),
        "path string": str(path),
        "Path": path,
        "PIL": drawing,
        "RGBA array": np.asarray(drawing),
        "float array": np.asarray(drawing)[..., 3].astype(np.float32) / 255,
    }
    expected = pp.preprocess(drawing).image
    for name, form in forms.items():
        np.testing.assert_allclose(pp.preprocess(form).image, expected, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_formats(drawing, fmt):
    flat = Image.new("RGB", drawing.size, "white")
    flat.paste(drawing, mask=drawing.getchannel("A"))
    out = pp.preprocess(_encoded(fmt, flat if fmt in ("JPEG", "BMP") else drawing))
    assert not out.blank
    assert similarity(out.image, pp.preprocess(drawing).image) > 0.9


def test_gif_uses_first_frame(drawing):
    frames = [drawing.getchannel("A"), Image.new("L", drawing.size, 0)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    assert not pp.preprocess(buf.getvalue()).blank


def _png_with_header_size(width: int, height: int) -> bytes:
    png = bytearray(to_png(Image.new("L", (1, 1), 0)))
    ihdr = struct.pack(">II", width, height) + bytes(png[24:29])
    png[16:29] = ihdr
    png[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(png)


def test_decompression_bomb_refused_from_header():
    with pytest.raises(decode.ImageTooLargeError, match="pixels"):
        pp.preprocess(_png_with_header_size(30000, 30000))
    with pytest.raises(decode.ImageTooLargeError):
        pp.preprocess(_png_with_header_size(5000, 4000))


def test_too_many_bytes_refused():
    with pytest.raises(decode.ImageTooLargeError):
        pp.preprocess(b"\x89PNG" + b"\x00" * (decode.MAX_BYTES + 1))


@pytest.mark.parametrize(
    "bad, error",
    [
        (b"", decode.InvalidImageError),
        (b"hello, I am not an image", decode.InvalidImageError),
        ("!!!not base64!!!", decode.InvalidImageError),
        ("abcde", decode.InvalidImageError),
        ("data:image/png;base64,", decode.InvalidImageError),
        ("data:image/png,rawpixels", decode.InvalidImageError),
        ("data:text/plain;base64,aGVsbG8=", decode.UnsupportedImageError),
        ("no/such/file.png", decode.InvalidImageError),
        (np.zeros((3, 3, 7)), decode.InvalidImageError),
        (np.array([[np.nan, 1.0]]), decode.InvalidImageError),
        (np.array([["a", "b"]]), decode.InvalidImageError),
        (12345, decode.InvalidImageError),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, (bytes, str)) else repr(v)[:30],
)
def test_garbage_is_rejected_with_a_specific_error(bad, error):
    with pytest.raises(error) as err:
        pp.preprocess(bad)
    assert isinstance(err.value, decode.PreprocessError) and str(err.value)


def test_truncated_and_unsupported_images(drawing):
    png = to_png(drawing)
    with pytest.raises(decode.InvalidImageError):
        pp.preprocess(png[: len(png) // 2])
    with pytest.raises(decode.UnsupportedImageError, match="TIFF"):
        pp.preprocess(_encoded("TIFF", drawing))
