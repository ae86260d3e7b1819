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
