"""Synthetic drawings with known labels, made here: for tests, evaluation, benchmarks and examples.

Two sources:

* :data:`DIGIT_STROKES`: one hand-written stroke template per digit (pen paths
  in a unit square), rendered like a browser canvas by :func:`render_strokes`.
  The browser tests replay the same paths with the mouse.
* :func:`redraw`: a real MNIST digit re-drawn as a pen drawing on a large canvas
  at a chosen size, position, stroke width and polarity. Used to measure how the
  whole pipeline copes with drawings unlike MNIST's framing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from draw2digit.canvas import Stroke, render_strokes


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 24) -> Stroke:
    """Points on an ellipse; angles in degrees, 0 = right, 90 = down (screen coordinates)."""
    t = np.radians(np.linspace(start, end, n))
    return [(float(cx + rx * np.cos(a)), float(cy + ry * np.sin(a))) for a in t]


#: Pen paths per digit in a unit square (x right, y down), one list of strokes each.
DIGIT_STROKES: dict[int, list[Stroke]] = {
    0: [_arc(0.5, 0.5, 0.28, 0.40, -90, 275, 40)],
    1: [[(0.36, 0.26), (0.56, 0.08), (0.56, 0.92)]],
    2: [[*_arc(0.5, 0.3, 0.25, 0.2, 200, 370, 18), (0.66, 0.52), (0.24, 0.92), (0.8, 0.92)]],
    3: [_arc(0.48, 0.29, 0.24, 0.2, 200, 450, 20) + _arc(0.48, 0.7, 0.28, 0.22, -90, 150, 20)],
    4: [[(0.62, 0.92), (0.62, 0.08), (0.18, 0.66), (0.84, 0.66)]],
    5: [[(0.76, 0.1), (0.32, 0.1), (0.28, 0.46), *_arc(0.5, 0.67, 0.27, 0.25, -125, 150, 22)]],
    6: [_arc(0.9, 0.6, 0.58, 0.52, -125, -180, 10) + _arc(0.52, 0.7, 0.2, 0.22, 180, 540, 30)],
    7: [[(0.2, 0.1), (0.8, 0.1), (0.42, 0.92)]],
    8: [_arc(0.5, 0.28, 0.2, 0.19, 90, -270, 26) + _arc(0.5, 0.7, 0.25, 0.22, -90, 270, 30)],
    9: [[*_arc(0.48, 0.3, 0.22, 0.2, 0, 360, 30), (0.7, 0.32), (0.64, 0.92)]],
}


def place_strokes(
    strokes: Sequence[Stroke],
    canvas: int | tuple[int, int] = 280,
    box: tuple[float, float, float, float] = (0.2, 0.1, 0.8, 0.9),
) -> list[Stroke]:
    """Map unit-square strokes into a box (left, top, right, bottom, as fractions) on a canvas.

    ``canvas`` is its side, or (width, height) for a wide one such as a number's.
    """
    w, h = (canvas, canvas) if isinstance(canvas, int) else canvas
    left, top, right, bottom = box
    return [
        [(w * (left + x * (right - left)), h * (top + y * (bottom - top))) for x, y in stroke]
        for stroke in strokes
    ]


def digit_drawing(
    digit: int,
    size: int = 280,
    width: float = 18,
    box: tuple[float, float, float, float] = (0.2, 0.1, 0.8, 0.9),
    **kwargs,
) -> Image.Image:
    """A canvas-like drawing of ``digit`` from its stroke template."""
    return render_strokes(place_strokes(DIGIT_STROKES[digit], size, box), size, width, **kwargs)


def number_drawing(number: str, overlap: float = 0.0, height: int = 200, width: float = 16) -> Image.Image:
    """``number`` written with the digit templates side by side; ``overlap`` > 0 makes neighbours touch.

    Each digit's box is 0.6 heights wide; ``overlap`` is the share of it the next digit's box covers
    (negative: a gap).
    """
    step = 0.6 * height * (1 - overlap)
    size = (round(step * (len(number) - 1) + 0.6 * height + height / 2), round(1.3 * height))
    strokes = []
    for k, ch in enumerate(number):
        left = height / 4 + k * step
        box = (left / size[0], 0.15, (left + 0.6 * height) / size[0], 0.85)
        strokes += place_strokes(DIGIT_STROKES[int(ch)], size, box)
    return render_strokes(strokes, size, width)


def redraw(
    digit_image: np.ndarray,
    *,
    canvas: int = 280,
    height: float = 0.6,
    center: tuple[float, float] = (0.5, 0.5),
    pen: float = 0.0,
    polarity: str = "canvas",
) -> Image.Image:
    """An MNIST digit as someone might draw it on a ``canvas``-pixel pad.

    ``height`` is the digit's height as a fraction of the canvas, ``center`` its
    centre (fractions), ``pen`` grows (+) or shrinks (-) the stroke by that many
    canvas pixels per side, and ``polarity`` is ``"canvas"`` (black on
    transparent), ``"paper"`` (black on white) or ``"board"`` (white on black).
    """
    rows = np.flatnonzero(digit_image.max(axis=1) > 0)
    cols = np.flatnonzero(digit_image.max(axis=0) > 0)
    crop = digit_image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32) / 255.0
    scale = height * canvas / crop.shape[0]
    big = ndimage.zoom(crop, scale, order=1)
    shape = big > 0.5  # a pen draws solid strokes
    k = round(abs(pen))
    if k:
        op = ndimage.binary_dilation if pen > 0 else ndimage.binary_erosion
        thinner = op(shape, iterations=k)
        shape = thinner if thinner.any() else shape
    layer = np.zeros((canvas, canvas), np.float32)
    bh, bw = shape.shape
    top = round(center[1] * canvas - bh / 2)
    left = round(center[0] * canvas - bw / 2)
    t0, l0 = max(0, top), max(0, left)
    t1, l1 = min(canvas, top + bh), min(canvas, left + bw)
    layer[t0:t1, l0:l1] = shape[t0 - top : t1 - top, l0 - left : l1 - left]
    ink = np.uint8(layer * 255)
    if polarity == "canvas":
        rgba = np.zeros((canvas, canvas, 4), np.uint8)
        rgba[..., 3] = ink
        return Image.fromarray(rgba, "RGBA")
    if polarity == "paper":
        return Image.fromarray(255 - ink, "L").convert("RGB")
    if polarity == "board":
        return Image.fromarray(ink, "L")
    raise ValueError(f"polarity must be canvas, paper or board, not {polarity!r}")


def random_redraw(
    digit_image: np.ndarray, rng: np.random.Generator, canvas: int = 280, tilt: float = 0.0
) -> Image.Image:
    """:func:`redraw` with a random size, place, pen and polarity, all kept on the canvas.

    ``tilt`` (degrees) also rotates and slants the drawing by up to that much each,
    as handwriting leans, about the canvas centre.
    """
    height = float(rng.uniform(0.25, 0.9))
    margin = height / 2 + 0.02
    center = (float(rng.uniform(margin, 1 - margin)), float(rng.uniform(margin, 1 - margin)))
    pen = float(rng.choice([-2, -1, 0, 0, 2, 5, 9]) * height)
    polarity = str(rng.choice(["canvas", "paper", "board"]))
    image = redraw(digit_image, canvas=canvas, height=height, center=center, pen=pen, polarity=polarity)
    if not tilt:
        return image
    angle = np.radians(rng.uniform(-tilt, tilt))
    slant = np.tan(np.radians(rng.uniform(-tilt, tilt)))
    c, s = float(np.cos(angle)), float(np.sin(angle))
    m = [c, s + slant, 0.0, -s, c, 0.0]  # output pixel -> input pixel, about the centre
    half = canvas / 2
    m[2] = half - m[0] * half - m[1] * half
    m[5] = half - m[3] * half - m[4] * half
    return image.transform(image.size, Image.AFFINE, m, Image.BILINEAR, fillcolor=image.getpixel((0, 0)))


#: The bundled examples: file name -> (digit or None for blank, how it is drawn).
EXAMPLES: dict[str, tuple[int | None, dict]] = {
    "0_canvas.png": (0, {}),
    "1_small_in_corner.png": (1, {"size": 400, "box": (0.05, 0.05, 0.2, 0.3), "width": 6}),
    "2_paper.jpg": (2, {"ink": (20, 20, 20), "background": (255, 255, 255), "mode": "RGB"}),
    "3_chalkboard.png": (3, {"ink": (240, 240, 240), "background": (30, 40, 35), "mode": "RGB"}),
    "4_thin_pen.png": (4, {"width": 3}),
    "5_thick_marker.png": (5, {"width": 46, "box": (0.18, 0.1, 0.82, 0.9)}),
    "6_wide_canvas.webp": (6, {"size": (600, 300), "box": (0.55, 0.1, 0.75, 0.9), "width": 14}),
    "7_blue_on_yellow.png": (7, {"ink": (30, 60, 200), "background": (250, 240, 170), "mode": "RGB"}),
    "8_animated.gif": (8, {"mode": "L", "ink": (0,), "background": (255,)}),
    "9_bitmap.bmp": (9, {"mode": "L", "ink": (255,), "background": (0,), "size": 140, "width": 9}),
    "blank.png": (None, {}),
}


def write_examples(folder: str | Path) -> list[Path]:
    """Render :data:`EXAMPLES` into ``folder`` (the README's and tests' example drawings)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (digit, opts) in EXAMPLES.items():
        opts = dict(opts)
        size = opts.pop("size", 280)
        box = opts.pop("box", (0.2, 0.1, 0.8, 0.9))
        width = opts.pop("width", 18)
        w, h = (size, size) if isinstance(size, int) else size
        strokes = [] if digit is None else DIGIT_STROKES[digit]
        placed = [
            [(w * (box[0] + x * (box[2] - box[0])), h * (box[1] + y * (box[3] - box[1]))) for x, y in s]
            for s in strokes
        ]
        im = render_strokes(placed, (w, h), width, **opts)
        path = folder / name
        if name.endswith(".gif"):
            blank = Image.new(im.mode, im.size, opts.get("background", (255,))[0])
            im.save(path, save_all=True, append_images=[blank], duration=500, loop=0)
        else:
            im.save(path)
        written.append(path)
    return written


def mnist_number(
    digits: Sequence[np.ndarray], rng: np.random.Generator, *, height: int = 120, pen: float = 0.0
) -> Image.Image:
    """MNIST digits written side by side as one canvas drawing (black on transparent).

    Random gaps (from a slight overlap to a wide space), sizes (±15 %) and
    baselines (±10 % of the height), like a number written by hand.
    """
    pieces = []
    for d in digits:
        rows = np.flatnonzero(d.max(axis=1) > 0)
        cols = np.flatnonzero(d.max(axis=0) > 0)
        crop = d[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32) / 255.0
        scale = height * float(rng.uniform(0.85, 1.15)) / crop.shape[0]
        shape = ndimage.zoom(crop, scale, order=1) > 0.5
        if pen:
            shape = ndimage.binary_dilation(shape, iterations=int(pen))
        pieces.append(shape)
    margin = height // 3
    gaps = [int(rng.uniform(-0.06, 0.45) * height) for _ in pieces[1:]]
    width = 2 * margin + sum(p.shape[1] for p in pieces) + sum(gaps)
    canvas_h = int(height * 1.6) + 2 * margin
    layer = np.zeros((canvas_h, width), bool)
    x = margin
    for i, p in enumerate(pieces):
        y = int((canvas_h - p.shape[0]) / 2 + rng.uniform(-0.1, 0.1) * height)
        layer[y : y + p.shape[0], x : x + p.shape[1]] |= p
        x += p.shape[1] + (gaps[i] if i < len(gaps) else 0)
    rgba = np.zeros((canvas_h, width, 4), np.uint8)
    rgba[..., 3] = layer * 255
    return Image.fromarray(rgba, "RGBA")


# Letters and symbols that no careful reader would take for a digit (so no O, I, l, S, Z, B, G, b, g, q).
NON_DIGIT_GLYPHS = "ACEFHKMNPRUVWXYacefhkmnprvwxy#@%&*?!+=<>{}[]~^"
_FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSansMono.ttf",
    "cmss10.ttf",
    "STIXGeneral.ttf",
)
#: Non-digits come in two families that share nothing: "fit" (used to train the
#: not-a-digit class and to choose the rejection rule) and "test" (other glyphs,
#: other fonts, other shapes, another kind of scribble), so the rejection rate is
#: measured on kinds of drawing the model and its rule never saw.
NON_DIGIT_FAMILIES = {
    "fit": {
        "glyphs": "ACEFHKMNPRacefhkmn#@%&*?!+",
        "fonts": (
            "DejaVuSans.ttf",
            "DejaVuSans-Bold.ttf",
            "DejaVuSans-Oblique.ttf",
            "DejaVuSerif.ttf",
            "cmss10.ttf",
            "cmtt10.ttf",
            "cmb10.ttf",
        ),
        "shapes": ("square", "triangle", "star", "cross", "spiral", "arrow", "hash", "strokes", "jagged"),
    },
    "test": {
        "glyphs": "UVWXYprvwxy=<>{}[]~^",
        "fonts": ("DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf", "STIXGeneral.ttf", "cmr10.ttf"),
        "shapes": ("pentagon", "hexagon", "heart", "zigzag", "smiley", "check", "lightning", "grid"),
    },
}
#: More shapes a user draws for the fit family (``train --extra-shapes``); none is in the test family.
EXTRA_FIT_SHAPES = ("target", "circled", "sun", "house", "wave")


def _font(name: str, size: int):
    """A font that matplotlib ships, so this works on machines without system fonts."""
    import matplotlib
    from PIL import ImageFont

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)


def non_digit_drawings(
    count: int,
    seed: int = 0,
    canvas: int = 280,
    family: str | None = None,
    extra_shapes: bool = False,
) -> list[tuple[Image.Image, str]]:
    """Drawings that are not digits, each with what it is: ``"kind: name"``.

    The kind (letter or symbol, scribble, shape) groups the rates; the name (the
    glyph, the shape) says which drawings get through, e.g. ``"shape: hexagon"``.

    Letters and symbols come in several fonts and stroke widths; scribbles are
    random pen paths; shapes are polygons, stars, crosses, spirals, arrows and the
    like (no circles or single lines: those are fair 0s and 1s). ``family`` is
    ``"fit"`` or ``"test"`` (see :data:`NON_DIGIT_FAMILIES`); ``None`` mixes the
    fit family's shapes with every glyph and font, as before the split.
    ``extra_shapes``: the fit family also draws :data:`EXTRA_FIT_SHAPES` (rings, suns, houses, waves).
    """
    if family is not None and family not in NON_DIGIT_FAMILIES:
        raise ValueError(f"family must be one of {sorted(NON_DIGIT_FAMILIES)}, not {family!r}")
    if extra_shapes and family == "test":
        raise ValueError("extra_shapes widens the fit family; the test family must stay unseen")
    spec = NON_DIGIT_FAMILIES.get(family or "fit")
    shapes = spec["shapes"] + (EXTRA_FIT_SHAPES if extra_shapes else ())
    glyphs = NON_DIGIT_GLYPHS if family is None else spec["glyphs"]
    fonts = _FONTS if family is None else spec["fonts"]
    rng = np.random.default_rng(seed)
    out: list[tuple[Image.Image, str]] = []
    kinds = ["glyph", "scribble", "shape"]
    for k in range(count):
        kind = kinds[k % 3]
        if kind == "glyph":
            im = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
            glyph = str(rng.choice(list(glyphs)))
            if family == "fit" and rng.random() < 0.25:  # two glyphs close together
                glyph += str(rng.choice(list(glyphs)))
            font = _font(str(rng.choice(fonts)), int(rng.uniform(0.45, 0.8) * canvas))
            draw = ImageDraw.Draw(im)
            x, y = canvas * rng.uniform(0.3, 0.7), canvas * rng.uniform(0.35, 0.65)
            draw.text(
                (x, y),
                glyph,
                font=font,
                fill=(0, 0, 0, 255),
                anchor="mm",
                stroke_width=int(rng.choice([0, 0, 2, 5])),
                stroke_fill=(0, 0, 0, 255),
            )
            out.append((im, f"letter or symbol: {glyph}"))
        elif kind == "scribble":
            looping = family == "test"
            path = _turtle_scribble(rng, canvas) if looping else _smooth_scribble(rng, canvas)
            name = "looping" if looping else "smooth"
            out.append((render_strokes([path], canvas, float(rng.uniform(6, 26))), f"scribble: {name}"))
        else:
            name = str(rng.choice(shapes))
            strokes = _shape(rng, canvas, name)
            out.append((render_strokes(strokes, canvas, float(rng.uniform(6, 26))), f"shape: {name}"))
    return out


def _smooth_scribble(rng: np.random.Generator, canvas: int) -> Stroke:
    """A smooth random pen path through a handful of random points."""
    n = int(rng.integers(6, 14))
    pts = rng.uniform(0.15, 0.85, size=(n, 2)) * canvas
    t = np.linspace(0, n - 1, 12 * n)
    path = np.stack([np.interp(t, np.arange(n), pts[:, 0]), np.interp(t, np.arange(n), pts[:, 1])], 1)
    path = ndimage.gaussian_filter1d(path, 4, axis=0)
    return [tuple(p) for p in path]


def _turtle_scribble(rng: np.random.Generator, canvas: int) -> Stroke:
    """A pen that keeps turning: loops and curls, kept inside the pad."""
    pos = np.array([0.5, 0.5]) * canvas
    heading, turn = rng.uniform(0, 2 * np.pi), 0.0
    step = canvas * rng.uniform(0.012, 0.02)
    pts = [tuple(pos)]
    for _ in range(int(rng.integers(120, 260))):
        turn = 0.85 * turn + rng.normal(0, 0.12)
        heading += turn
        pos = np.clip(pos + step * np.array([np.cos(heading), np.sin(heading)]), 0.12 * canvas, 0.88 * canvas)
        pts.append(tuple(pos))
    return [(float(x), float(y)) for x, y in pts]


def _shape(rng: np.random.Generator, canvas: int, name: str) -> list[Stroke]:
    c = canvas / 2 + rng.uniform(-0.1, 0.1, 2) * canvas
    r = canvas * rng.uniform(0.22, 0.38)
    rot = rng.uniform(0, 2 * np.pi)

    def polygon(radii: list[float], turns: int = 1) -> Stroke:
        k = len(radii)
        angles = rot + np.arange(k * turns + 1) * 2 * np.pi / k
        return [
            (float(c[0] + radii[i % k] * np.cos(a)), float(c[1] + radii[i % k] * np.sin(a)))
            for i, a in enumerate(angles)
        ]

    if name == "square":
        return [polygon([r] * 4)]
    if name == "triangle":
        return [polygon([r] * 3)]
    if name == "strokes":  # a few unrelated pen strokes
        out = []
        for _ in range(int(rng.integers(2, 5))):
            a, b = rng.uniform(0.15, 0.85, (2, 2)) * canvas
            bend = rng.normal(0, 0.15, 2) * canvas
            t = np.linspace(0, 1, 12)[:, None]
            path = (1 - t) ** 2 * a + 2 * (1 - t) * t * ((a + b) / 2 + bend) + t**2 * b
            out.append([(float(x), float(y)) for x, y in path])
        return out
    if name == "jagged":  # an irregular spiky outline: long and short corners in turn
        k = int(rng.integers(4, 8))
        spikes = np.stack([rng.uniform(0.7, 1.0, k), rng.uniform(0.2, 0.5, k)], 1).ravel()
        return [polygon(list(r * spikes))]
    if name == "target":  # two or three rings, one inside the other
        rings = int(rng.integers(2, 4))
        return [
            _arc(c[0], c[1], r * f, r * f * rng.uniform(0.8, 1.1), 0, 360, 40)
            for f in np.linspace(1, 0.45, rings)
        ]
    if name == "circled":  # a ring with a small mark inside: a plus, an x, dots or a bar
        ring = _arc(c[0], c[1], r, r * rng.uniform(0.85, 1.1), 0, 360, 48)
        a, mark = 0.35 * r, str(rng.choice(["plus", "x", "dots", "bar"]))
        if mark == "plus":
            inner = [[(c[0] - a, c[1]), (c[0] + a, c[1])], [(c[0], c[1] - a), (c[0], c[1] + a)]]
        elif mark == "x":
            inner = [
                [(c[0] - a, c[1] - a), (c[0] + a, c[1] + a)],
                [(c[0] + a, c[1] - a), (c[0] - a, c[1] + a)],
            ]
        elif mark == "dots":
            inner = [
                [(float(c[0] + x), float(c[1] + y))]
                for x, y in rng.uniform(-a, a, (int(rng.integers(1, 4)), 2))
            ]
        else:
            inner = [[(c[0] - a, c[1]), (c[0] + a, c[1])]]
        return [ring, *inner]
    if name == "sun":  # a small ring with rays all around
        core = 0.45 * r
        rays = int(rng.integers(6, 11))
        angles = rot + np.arange(rays) * 2 * np.pi / rays
        return [_arc(c[0], c[1], core, core, 0, 360, 32)] + [
            [
                (float(c[0] + 1.3 * core * np.cos(t)), float(c[1] + 1.3 * core * np.sin(t))),
                (float(c[0] + r * np.cos(t)), float(c[1] + r * np.sin(t))),
            ]
            for t in angles
        ]
    if name == "house":  # a box with a roof, sometimes a door
        w, h = r * rng.uniform(0.6, 0.9), r * rng.uniform(0.5, 0.8)
        box = [(c[0] - w, c[1] - h / 2), (c[0] - w, c[1] + h), (c[0] + w, c[1] + h), (c[0] + w, c[1] - h / 2)]
        roof = [box[0], (c[0], c[1] - h / 2 - r * rng.uniform(0.5, 0.8)), box[-1], box[0]]
        door = [
            (c[0] - 0.2 * w, c[1] + h),
            (c[0] - 0.2 * w, c[1] + 0.3 * h),
            (c[0] + 0.2 * w, c[1] + 0.3 * h),
            (c[0] + 0.2 * w, c[1] + h),
        ]
        return [box, roof] + ([door] if rng.random() < 0.5 else [])
    if name == "wave":  # a wavy line across: two to four swings
        t = np.linspace(0, 1, 60)
        swings = rng.uniform(2, 4)
        amp = r * rng.uniform(0.2, 0.4)
        path = [(c[0] - r + 2 * r * u, c[1] + amp * np.sin(2 * np.pi * swings * u)) for u in t]
        return [[(float(x), float(y)) for x, y in path]]
    if name == "pentagon":
        return [polygon([r] * 5)]
    if name == "hexagon":
        return [polygon([r] * 6)]
    if name == "heart":
        t = np.linspace(0, 2 * np.pi, 80)
        x, y = 16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return [[(float(c[0] + r * a / 16), float(c[1] + r * b / 16)) for a, b in zip(x, y, strict=True)]]
    if name == "zigzag":
        k = int(rng.integers(4, 7))
        return [[(float(c[0] - r + 2 * r * i / k), float(c[1] + (r / 2) * (-1) ** i)) for i in range(k + 1)]]
    if name == "smiley":
        face = _arc(c[0], c[1], r, r, 0, 360, 48)
        mouth = _arc(c[0], c[1], 0.55 * r, 0.5 * r, 20, 160, 16)
        eyes = [[(c[0] - 0.35 * r, c[1] - 0.3 * r)], [(c[0] + 0.35 * r, c[1] - 0.3 * r)]]
        return [face, mouth, *eyes]
    if name == "check":
        return [[(c[0] - r, c[1]), (c[0] - 0.3 * r, c[1] + 0.7 * r), (c[0] + r, c[1] - r)]]
    if name == "lightning":
        return [
            [
                (c[0] + 0.3 * r, c[1] - r),
                (c[0] - 0.4 * r, c[1] + 0.1 * r),
                (c[0] + 0.4 * r, c[1] - 0.1 * r),
                (c[0] - 0.3 * r, c[1] + r),
            ]
        ]
    if name == "grid":
        lines = np.linspace(-r, r, 4)
        return [[(c[0] + v, c[1] - r), (c[0] + v, c[1] + r)] for v in lines] + [
            [(c[0] - r, c[1] + v), (c[0] + r, c[1] + v)] for v in lines
        ]
    if name == "star":
        return [polygon([r, 0.4 * r] * 5)]
    if name == "cross":
        return [[(c[0] - r, c[1] - r), (c[0] + r, c[1] + r)], [(c[0] + r, c[1] - r), (c[0] - r, c[1] + r)]]
    if name == "hash":
        a = 0.35 * r
        return [
            [(c[0] - a, c[1] - r), (c[0] - a, c[1] + r)],
            [(c[0] + a, c[1] - r), (c[0] + a, c[1] + r)],
            [(c[0] - r, c[1] - a), (c[0] + r, c[1] - a)],
            [(c[0] - r, c[1] + a), (c[0] + r, c[1] + a)],
        ]
    if name == "arrow":
        return [
            [(c[0] - r, c[1]), (c[0] + r, c[1])],
            [(c[0] + 0.4 * r, c[1] - 0.5 * r), (c[0] + r, c[1]), (c[0] + 0.4 * r, c[1] + 0.5 * r)],
        ]
    t = np.linspace(0, 3 * 2 * np.pi, 120)
    rad = r * t / t[-1]
    return [
        [
            (float(c[0] + q * np.cos(a + rot)), float(c[1] + q * np.sin(a + rot)))
            for q, a in zip(rad, t, strict=True)
        ]
    ]
