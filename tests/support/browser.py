"""Drawing on a pad in headless Chromium: shared by the browser tests and the page benchmarks.

Debian's chromium is driven by Playwright with these flags (Playwright's own
browser download is never used); strokes in the unit square are drawn with the
mouse inside a frame of the pad, as a person would.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

CHROMIUM = os.environ.get("DRAW2DIGIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
Frame = tuple[float, float, float, float]  # left, top, right, bottom as shares of the pad
MIDDLE: Frame = (0.2, 0.1, 0.8, 0.9)


def canvas_points(box: dict, strokes: Sequence, frame: Frame = MIDDLE) -> list[list[tuple[float, float]]]:
    """Unit-square strokes -> page coordinates inside an element's bounding box."""
    left, top, right, bottom = frame
    return [
        [
            (
                box["x"] + box["width"] * (left + x * (right - left)),
                box["y"] + box["height"] * (top + y * (bottom - top)),
            )
            for x, y in stroke
        ]
        for stroke in strokes
    ]


def draw_with_mouse(page, selector: str, strokes: Sequence, frame: Frame = MIDDLE) -> None:
    """Press, move and release the mouse along each stroke (a Playwright page)."""
    box = page.locator(selector).bounding_box()
    for stroke in canvas_points(box, strokes, frame):
        page.mouse.move(*stroke[0])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(x, y, steps=3)
        page.mouse.up()
