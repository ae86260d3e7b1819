"""Strokes -> pixels, as a browser canvas draws them: round pen, anti-aliased, transparent paper.

The notebook pad renders its strokes with this for the model, and the
synthetic drawings, the pen-digit renderer and the tests use it too, so every
drawing the library makes looks like one the web page would send.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw

Stroke = list[tuple[float, float]]


def render_strokes(
    strokes: Sequence[Stroke],
    size: int | tuple[int, int] = 280,
    width: float = 18,
    *,
    ink: tuple[int, ...] = (0, 0, 0, 255),
    background: tuple[int, ...] = (0, 0, 0, 0),
    mode: str = "RGBA",
    supersample: int = 4,
    widths: Sequence[float] | None = None,
) -> Image.Image:
    """Draw pixel-space strokes with a round pen, anti-aliased, like a browser canvas.

    The default is what an HTML canvas exports: black ink on transparent paper.
    ``widths`` gives each stroke its own pen width (else all use ``width``).
    """
    w, h = (size, size) if isinstance(size, int) else size
    s = supersample
    im = Image.new(mode, (w * s, h * s), background[: len(mode)] if mode != "L" else background[0])
    draw = ImageDraw.Draw(im)
    fill = ink[: len(mode)] if mode != "L" else ink[0]
    for i, stroke in enumerate(strokes):
        pen = widths[i] if widths is not None else width
        r = pen * s / 2
        pts = [(x * s, y * s) for x, y in stroke]
        if len(pts) > 1:
            draw.line(pts, fill=fill, width=max(1, round(pen * s)), joint="curve")
        for x, y in pts[:: max(1, len(pts) - 1)] if len(pts) > 1 else pts:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)  # round caps
    return im.resize((w, h), Image.LANCZOS)


def to_png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def fit_strokes(
    strokes: Sequence[tuple[float, Stroke]],
    old_size: tuple[float, float],
    new_size: tuple[float, float],
) -> list[tuple[float, Stroke]]:
    """``(width, points)`` strokes moved from a pad of ``old_size`` onto one of ``new_size``.

    The old pad is scaled uniformly to fit inside the new one and centred, pen
    widths included, so a pad that changes shape (a mode switch, a turned
    phone) keeps every stroke on it and reads what the user sees. The page's
    ``fitStrokes`` does the same in the browser.
    """
    (ow, oh), (nw, nh) = old_size, new_size
    scale = min(nw / ow, nh / oh)
    dx, dy = (nw - ow * scale) / 2, (nh - oh * scale) / 2
    return [(w * scale, [(x * scale + dx, y * scale + dy) for x, y in pts]) for w, pts in strokes]


def percent(p: float) -> str:
    """A probability as both fronts print it: one rule for every percentage on screen.

    One decimal and a spaced "%", but never "100.0 %" for less than certain nor
    "0.0 %" for more than nothing: those read as ">99.9 %" and "<0.1 %". The page's
    ``percent`` in ``app.js`` follows the same rule (a browser test compares them).
    """
    value = 100 * float(p)
    if 99.95 <= value < 100:
        return ">99.9 %"
    if 0 < value < 0.05:
        return "<0.1 %"
    return f"{value:.1f} %"
